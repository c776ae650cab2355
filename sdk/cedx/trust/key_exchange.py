"""SM2 key exchange with key confirmation (GB/T 32918.3-2016 §6), on any prime-field
short-Weierstrass curve whose parameters are given as data (sm2p256v1 by default).

Both sides hold a long-term key pair (d, P) and draw an ephemeral pair (r, R = [r]G) per
exchange; they swap IDs, public keys and R, then call ``agree`` with their role. With
initiator A, responder B, w = ⌈⌈log2 n⌉/2⌉ - 1 and x̄ = 2^w + (x mod 2^w):

    t_A = (d_A + x̄1·r_A) mod n                 t_B = (d_B + x̄2·r_B) mod n
    U = [h·t_A](P_B + [x̄2]R_B)                 V = [h·t_B](P_A + [x̄1]R_A)      (U = V)
    K = KDF(x_U ‖ y_U ‖ Z_A ‖ Z_B, klen)
    S_B = SM3(0x02 ‖ y_V ‖ SM3(x_V ‖ Z_A ‖ Z_B ‖ x1 ‖ y1 ‖ x2 ‖ y2))   sent by B, checked by A
    S_A = SM3(0x03 ‖ y_U ‖ SM3(x_U ‖ Z_A ‖ Z_B ‖ x1 ‖ y1 ‖ x2 ‖ y2))   sent by A, checked by B

where (x1, y1) = R_A, (x2, y2) = R_B and Z_A, Z_B are the Z values of GB/T 32918.2 §5.5 (always
initiator first). Peer points are checked (uncompressed, on the curve, not the point at
infinity) before use; a U/V at infinity aborts the exchange.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from .ec import SM2P256V1, Curve, Point
from .errors import InvalidKey, TrustError
from .sm3 import kdf, sm3

Role = Literal["initiator", "responder"]


class KeyExchangeError(TrustError):
    """The exchange cannot complete (bad peer data, or key confirmation failed)."""


@dataclass(frozen=True)
class Agreement:
    """Result of one side: the shared key and the two confirmation hashes."""

    key: bytes
    confirmation: bytes  # what this side sends: S_A (initiator) or S_B (responder)
    expected_confirmation: bytes  # what the peer must send: S_B (initiator) or S_A (responder)

    def confirm(self, received: bytes) -> None:
        """Check the peer's confirmation in constant time; raise KeyExchangeError if wrong."""
        if not hmac.compare_digest(received, self.expected_confirmation):
            raise KeyExchangeError("key confirmation failed: the peer derived a different key")

    def __repr__(self) -> str:  # never print the key
        return f"<Agreement key={len(self.key)} bytes>"


def encode_point(point: Point, curve: Curve = SM2P256V1) -> bytes:
    size = curve.size
    return b"\x04" + point[0].to_bytes(size, "big") + point[1].to_bytes(size, "big")


def decode_point(data: bytes, curve: Curve = SM2P256V1, what: str = "public key") -> Point:
    """Strict 04‖X‖Y; on the curve (so never the point at infinity, which has no such form)."""
    size = curve.size
    if not isinstance(data, (bytes, bytearray)) or len(data) != 1 + 2 * size:
        raise InvalidKey(f"{what} must be {1 + 2 * size} bytes (04‖X‖Y)")
    if data[0] != 0x04:
        raise InvalidKey(f"{what} must use the uncompressed form (leading byte 04)")
    point = (int.from_bytes(data[1:1 + size], "big"), int.from_bytes(data[1 + size:], "big"))
    if not curve.contains(point):
        raise InvalidKey(f"{what} is not a point on {curve.name}")
    if curve.h != 1 and curve.multiply(curve.h, point) is None:
        raise InvalidKey(f"{what} has small order")
    return point


def _scalar(value: int, curve: Curve, what: str, upper: int) -> int:
    if not isinstance(value, int) or not 1 <= value <= upper:
        raise InvalidKey(f"{what} is outside [1, n-{curve.n - upper}]")
    return value


def public_key_of(private_key: int, curve: Curve = SM2P256V1) -> bytes:
    """[d]G as 04‖X‖Y (65 bytes on a 256-bit curve)."""
    point = curve.multiply_base(_scalar(private_key, curve, "private key", curve.n - 1))
    assert point is not None  # d in [1, n-1]
    return encode_point(point, curve)


def generate_ephemeral(curve: Curve = SM2P256V1) -> tuple[int, bytes]:
    """A fresh ephemeral key pair (r, R = [r]G) with r from the operating system's CSPRNG.

    Use each r for one exchange only; discard it afterwards."""
    r = secrets.randbelow(curve.n - 1) + 1
    return r, public_key_of(r, curve)


def z_value(uid: bytes, point: Point, curve: Curve = SM2P256V1) -> bytes:
    """Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xP ‖ yP) (GB/T 32918.2 §5.5)."""
    if len(uid) * 8 > 0xFFFF:
        raise InvalidKey("user ID longer than 8191 bytes")
    size = curve.size
    fields = (curve.a, curve.b, curve.gx, curve.gy, point[0], point[1])
    return sm3((len(uid) * 8).to_bytes(2, "big") + uid + b"".join(v.to_bytes(size, "big") for v in fields))


def agree(
    role: Role,
    own_id: bytes,
    own_private_key: int,
    own_ephemeral_private_key: int,
    peer_id: bytes,
    peer_public_key: bytes,
    peer_ephemeral_public_key: bytes,
    key_length: int,
    *,
    curve: Curve = SM2P256V1,
) -> Agreement:
    """One side of the SM2 key exchange; ``key_length`` in bytes."""
    if role not in ("initiator", "responder"):
        raise ValueError("role must be 'initiator' or 'responder'")
    if not isinstance(key_length, int) or key_length < 1:
        raise ValueError("key_length must be a positive number of bytes")
    n = curve.n
    d = _scalar(own_private_key, curve, "own private key", n - 2)
    r = _scalar(own_ephemeral_private_key, curve, "own ephemeral private key", n - 1)
    peer_p = decode_point(peer_public_key, curve, "peer public key")
    peer_r = decode_point(peer_ephemeral_public_key, curve, "peer ephemeral public key")
    own_p = curve.multiply_base(d)
    own_r = curve.multiply_base(r)
    assert own_p is not None and own_r is not None  # scalars in range

    w = (n.bit_length() + 1) // 2 - 1  # ⌈⌈log2 n⌉/2⌉ - 1 (n is never a power of two)
    low = (1 << w) - 1

    def x_bar(point: Point) -> int:
        return (1 << w) + (point[0] & low)

    t = (d + x_bar(own_r) * r) % n
    base = curve.add(peer_p, curve.multiply(x_bar(peer_r), peer_r))
    shared = None if base is None else curve.multiply(curve.h * t, base)
    if shared is None:
        raise KeyExchangeError("the shared point is the point at infinity; start a new exchange")

    size = curve.size
    xs, ys = shared[0].to_bytes(size, "big"), shared[1].to_bytes(size, "big")
    z_own, z_peer = z_value(own_id, own_p, curve), z_value(peer_id, peer_p, curve)
    if role == "initiator":
        z_a, z_b, r_a, r_b = z_own, z_peer, own_r, peer_r
    else:
        z_a, z_b, r_a, r_b = z_peer, z_own, peer_r, own_r
    key = kdf(xs + ys + z_a + z_b, key_length)
    inner = sm3(
        xs + z_a + z_b + b"".join(v.to_bytes(size, "big") for v in (*r_a, *r_b))
    )
    s_b = sm3(b"\x02" + ys + inner)
    s_a = sm3(b"\x03" + ys + inner)
    if role == "initiator":
        return Agreement(key, s_a, s_b)
    return Agreement(key, s_b, s_a)


__all__ = [
    "Agreement",
    "KeyExchangeError",
    "agree",
    "generate_ephemeral",
    "public_key_of",
    "z_value",
]
