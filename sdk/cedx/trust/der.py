"""Strict DER for SM2 signatures and ciphertexts (GB/T 35276 §7).

Parsing re-encodes and compares, so any non-minimal or indefinite-length encoding, trailing byte
or wrong type is refused rather than silently accepted.
"""

from __future__ import annotations

from asn1crypto import core
from asn1crypto.algos import DSASignature

from .curve import N
from .errors import DecryptionError, InvalidSignature


class SM2Ciphertext(core.Sequence):
    """SEQUENCE { XCoordinate INTEGER, YCoordinate INTEGER, HASH OCTET STRING(32), CipherText }"""

    _fields = [
        ("x", core.Integer),
        ("y", core.Integer),
        ("hash", core.OctetString),
        ("ciphertext", core.OctetString),
    ]


def encode_signature(r: int, s: int) -> bytes:
    return DSASignature({"r": r, "s": s}).dump()


def decode_signature(data: bytes) -> tuple[int, int]:
    """Return (r, s) of a DER SM2 signature, refusing anything not strictly valid."""
    try:
        sig = DSASignature.load(data, strict=True)
        r, s = int(sig["r"].native), int(sig["s"].native)
        canonical = DSASignature({"r": r, "s": s}).dump()
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidSignature(f"signature is not a DER SEQUENCE of two INTEGERs: {exc}") from exc
    if canonical != data:
        raise InvalidSignature("signature DER is not minimal (non-canonical encoding)")
    if not (1 <= r < N and 1 <= s < N):
        raise InvalidSignature("signature r or s is outside [1, n-1]")
    return r, s


def encode_ciphertext(x: int, y: int, c3: bytes, c2: bytes) -> bytes:
    return SM2Ciphertext({"x": x, "y": y, "hash": c3, "ciphertext": c2}).dump()


def decode_ciphertext(data: bytes) -> tuple[int, int, bytes, bytes]:
    try:
        ct = SM2Ciphertext.load(data, strict=True)
        x, y = int(ct["x"].native), int(ct["y"].native)
        c3, c2 = bytes(ct["hash"].native), bytes(ct["ciphertext"].native)
        canonical = encode_ciphertext(x, y, c3, c2)
    except (ValueError, TypeError, KeyError) as exc:
        raise DecryptionError(f"ciphertext is not GB/T 35276 DER C1C3C2: {exc}") from exc
    if canonical != data:
        raise DecryptionError("ciphertext DER is not minimal (non-canonical encoding)")
    if len(c3) != 32:
        raise DecryptionError("ciphertext HASH (C3) must be 32 bytes")
    return x, y, c3, c2
