"""Portable pure-Python backend over gmssl 3.2.2, with the library's known flaws wrapped.

gmssl is used only for its curve arithmetic (CryptSM2.sign / verify / _kg). cedx supplies what
gmssl gets wrong: k comes from ``secrets`` (gmssl draws it from ``random``), the public key is
set after construction (its constructor's ``lstrip("04")`` eats leading 0/4 digits of X), and
r, s ranges and the public point are checked by the shared code before gmssl sees them.
Encryption does not use gmssl at all (it skips C3 and defaults to C1C2C3).
"""

from __future__ import annotations

import secrets

from gmssl import sm2 as _gmssl_sm2

from ..curve import GX, GY, N, Point
from ..der import encode_signature

_G_HEX = f"{GX:064x}{GY:064x}"


def _engine(private_hex: str = "", public_hex: str = "") -> _gmssl_sm2.CryptSM2:
    eng = _gmssl_sm2.CryptSM2(private_key="00", public_key="00" * 64)
    eng.private_key = private_hex
    eng.public_key = public_hex  # bypasses the constructor's lstrip("04") bug
    return eng


def _point_hex(point: Point) -> str:
    return f"{point[0]:064x}{point[1]:064x}"


def _parse_point(hex_point: str | None) -> Point:
    if not hex_point:
        raise ArithmeticError("point at infinity")
    return int(hex_point[:64], 16), int(hex_point[64:128], 16)


class PortableBackend:
    name = "portable"

    def __init__(self) -> None:
        self._eng = _engine()

    def public_point(self, d: int) -> Point:
        return self.multiply(d, (GX, GY))

    def private_handle(self, d: int, q: Point) -> _gmssl_sm2.CryptSM2:
        return _engine(private_hex=f"{d:064x}", public_hex=_point_hex(q))

    def public_handle(self, q: Point) -> _gmssl_sm2.CryptSM2:
        return _engine(public_hex=_point_hex(q))

    def sign_digest(self, handle: _gmssl_sm2.CryptSM2, e: bytes, k: int | None = None) -> bytes:
        while True:
            nonce = k if k is not None else secrets.randbelow(N - 1) + 1
            sig = handle.sign(e, f"{nonce:064x}")
            if sig is not None:
                return encode_signature(int(sig[:64], 16), int(sig[64:], 16))
            if k is not None:  # a fixed k that yields r = 0 or s = 0 cannot be used
                raise ValueError("the given k produces an invalid signature")

    def verify_digest(
        self, handle: _gmssl_sm2.CryptSM2, e: bytes, der: bytes, r: int, s: int
    ) -> bool:
        try:
            return bool(handle.verify(f"{r:064x}{s:064x}", e))
        except (TypeError, ValueError):  # gmssl fails on degenerate intermediate points
            return False

    def multiply(self, k: int, point: Point) -> Point:
        return _parse_point(self._eng._kg(k % N, _point_hex(point)))
