"""Strict DER for SM2 signatures and ciphertexts (GB/T 35276 §7).

Parsing re-encodes and compares, so any non-minimal or indefinite-length encoding, trailing byte
or wrong type is refused rather than silently accepted.
"""

from __future__ import annotations

from typing import cast

from asn1crypto import core

from .curve import N
from .errors import DecryptionError, InvalidSignature


class SM2Ciphertext(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """SEQUENCE { XCoordinate INTEGER, YCoordinate INTEGER, HASH OCTET STRING(32), CipherText }"""

    _fields = [
        ("x", core.Integer),
        ("y", core.Integer),
        ("hash", core.OctetString),
        ("ciphertext", core.OctetString),
    ]


def _encode_int(value: int) -> bytes:
    body = value.to_bytes((value.bit_length() + 8) // 8 or 1, "big")  # room for a sign bit
    if len(body) > 1 and body[0] == 0 and body[1] < 0x80:
        body = body[1:]
    return b"\x02" + bytes([len(body)]) + body


def encode_signature(r: int, s: int) -> bytes:
    """DER SEQUENCE { r INTEGER, s INTEGER } (at most 72 bytes, so short-form lengths)."""
    body = _encode_int(r) + _encode_int(s)
    return b"\x30" + bytes([len(body)]) + body


def _decode_int(data: bytes, pos: int) -> tuple[int, int]:
    if pos + 2 > len(data) or data[pos] != 0x02:
        raise InvalidSignature("signature is not a DER SEQUENCE of two INTEGERs")
    length = data[pos + 1]
    start, end = pos + 2, pos + 2 + length
    if length == 0 or length >= 0x80 or end > len(data):
        raise InvalidSignature("signature INTEGER has an invalid length")
    if data[start] >= 0x80:
        raise InvalidSignature("signature INTEGER is negative")
    if data[start] == 0 and length > 1 and data[start + 1] < 0x80:
        raise InvalidSignature("signature DER is not minimal (non-canonical encoding)")
    return int.from_bytes(data[start:end], "big"), end


def decode_signature(data: bytes) -> tuple[int, int]:
    """Return (r, s) of a DER SM2 signature, refusing anything not strictly valid DER.

    Hand-written because it sits on the verification hot path; the grammar is two INTEGERs.
    """
    if len(data) < 8 or data[0] != 0x30:
        raise InvalidSignature("signature is not a DER SEQUENCE of two INTEGERs")
    if data[1] >= 0x80:
        raise InvalidSignature("signature DER is not minimal (non-canonical encoding)")
    if data[1] != len(data) - 2:
        raise InvalidSignature("signature DER length does not match its size")
    r, pos = _decode_int(data, 2)
    s, pos = _decode_int(data, pos)
    if pos != len(data):
        raise InvalidSignature("signature has trailing data")
    if not (1 <= r < N and 1 <= s < N):
        raise InvalidSignature("signature r or s is outside [1, n-1]")
    return r, s


def encode_ciphertext(x: int, y: int, c3: bytes, c2: bytes) -> bytes:
    return cast(bytes, SM2Ciphertext({"x": x, "y": y, "hash": c3, "ciphertext": c2}).dump())


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
