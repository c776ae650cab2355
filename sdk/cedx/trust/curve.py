"""The SM2 recommended curve (GB/T 32918.5) and the pure arithmetic every backend shares.

Backends differ only in how fast they multiply points; the surrounding algorithm steps
(Z value, e, range checks, point validation, encodings) live here once.
"""

from __future__ import annotations

from .errors import InvalidKey
from .sm3 import sm3

P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0

#: Default user ID of GB/T 35276 §10 ("1234567812345678").
DEFAULT_ID = b"1234567812345678"

# Object identifiers (GB/T 33560 / GM/T 0006).
OID_SM2 = "1.2.156.10197.1.301"
OID_SM3 = "1.2.156.10197.1.401"
OID_SM2_WITH_SM3 = "1.2.156.10197.1.501"
OID_SM4_CBC = "1.2.156.10197.1.104.2"

Point = tuple[int, int]


def is_on_curve(point: Point) -> bool:
    x, y = point
    if not (0 <= x < P and 0 <= y < P):
        return False
    return (y * y - (x * x * x + A * x + B)) % P == 0


def validate_public_point(point: Point) -> Point:
    """Reject points that are not valid SM2 public keys (GB/T 32918.1 §6.2)."""
    if not is_on_curve(point):
        raise InvalidKey("public key point is not on the SM2 curve")
    # The curve has cofactor 1, so any on-curve affine point (never the point at infinity
    # here) is in the prime-order group.
    return point


def encode_point(point: Point) -> bytes:
    """Uncompressed encoding 04 || X || Y (GB/T 35276 §6)."""
    return b"\x04" + point[0].to_bytes(32, "big") + point[1].to_bytes(32, "big")


def decode_point(data: bytes) -> Point:
    """Decode an uncompressed point, strictly: 65 bytes, leading 04, on the curve."""
    if len(data) != 65:
        raise InvalidKey(f"SM2 public key must be 65 bytes (04||X||Y), got {len(data)}")
    if data[0] != 0x04:
        raise InvalidKey("SM2 public key must use the uncompressed form (leading byte 04)")
    point = (int.from_bytes(data[1:33], "big"), int.from_bytes(data[33:], "big"))
    return validate_public_point(point)


def validate_private_scalar(d: int) -> int:
    # d = n - 1 is excluded: the signature formula divides by (1 + d).
    if not 1 <= d <= N - 2:
        raise InvalidKey("SM2 private key is outside [1, n-2]")
    return d


def z_value(public: Point, uid: bytes = DEFAULT_ID) -> bytes:
    """Z_A = SM3(ENTL || ID || a || b || xG || yG || xA || yA) (GB/T 32918.2 §5.5)."""
    if len(uid) * 8 > 0xFFFF:
        raise ValueError("SM2 user ID longer than 8191 bytes")
    parts = [(len(uid) * 8).to_bytes(2, "big"), uid]
    parts += [v.to_bytes(32, "big") for v in (A, B, GX, GY, public[0], public[1])]
    return sm3(b"".join(parts))

