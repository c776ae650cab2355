"""Native backend over tongsuopy (Tongsuo, the OpenSSL fork with SM2 built in).

Signing and verification call EVP_PKEY_sign / EVP_PKEY_verify on the digest e directly, so the
Z value (and with it any caller-given user ID) is computed by the shared code, while the
constant-time scalar work stays in C. A fixed k (test vectors only) goes through
EC_POINT_mul plus the textbook formula, since OpenSSL offers no way to inject k.
"""

from __future__ import annotations

import threading
from typing import Any, cast

from tongsuopy.backends.tongsuo.backend import backend as _tb
from tongsuopy.crypto.asymciphers import ec as _ec

from ..curve import GX, GY, N, Point
from ..der import encode_signature

_lib = _tb._lib
_ffi = _tb._ffi
_NID_SM2 = _lib.NID_sm2 if hasattr(_lib, "NID_sm2") else _lib.OBJ_sn2nid(b"SM2")


class _Group:
    """The SM2 EC_GROUP, created once per process."""

    def __init__(self) -> None:
        group = _lib.EC_GROUP_new_by_curve_name(_NID_SM2)
        _tb.openssl_assert(group != _ffi.NULL)
        self.ptr = _ffi.gc(group, _lib.EC_GROUP_free)


class _KeyHandle:
    """A tongsuopy key plus one initialised EVP_PKEY_CTX per thread (contexts are not
    thread-safe, and creating one per call costs about a tenth of a verification)."""

    def __init__(self, key: Any, private: bool):
        self.key = key
        self._private = private
        self._local = threading.local()

    def ctx(self) -> Any:
        ctx = getattr(self._local, "ctx", None)
        if ctx is None:
            ctx = _ffi.gc(_lib.EVP_PKEY_CTX_new(self.key._evp_pkey, _ffi.NULL), _lib.EVP_PKEY_CTX_free)
            init = _lib.EVP_PKEY_sign_init if self._private else _lib.EVP_PKEY_verify_init
            _tb.openssl_assert(init(ctx) == 1)
            self._local.ctx = ctx
        return ctx


class NativeBackend:
    name = "native"

    def __init__(self) -> None:
        self._group = _Group()

    def public_point(self, d: int) -> Point:
        nums = _ec.derive_private_key(d, _ec.SM2()).public_key().public_numbers()
        return nums.x, nums.y

    def private_handle(self, d: int, q: Point) -> _KeyHandle:
        return _KeyHandle(_ec.derive_private_key(d, _ec.SM2()), private=True)

    def public_handle(self, q: Point) -> _KeyHandle:
        key = _ec.EllipticCurvePublicNumbers(q[0], q[1], _ec.SM2()).public_key()
        return _KeyHandle(key, private=False)

    def sign_digest(self, handle: Any, e: bytes, k: int | None = None) -> bytes:
        if k is not None:
            return encode_signature(*self._sign_with_fixed_k(handle, e, k))
        ctx = handle.ctx()
        buflen = _ffi.new("size_t *", 80)
        buf = _ffi.new("unsigned char[]", 80)
        _tb.openssl_assert(_lib.EVP_PKEY_sign(ctx, buf, buflen, e, len(e)) == 1)
        return bytes(_ffi.buffer(buf)[: buflen[0]])  # OpenSSL emits minimal DER

    def verify_digest(self, handle: Any, e: bytes, der: bytes, r: int, s: int) -> bool:
        ok = _lib.EVP_PKEY_verify(handle.ctx(), der, len(der), e, len(e))
        if ok != 1:
            _tb._consume_errors()
        return cast(bool, ok == 1)

    def multiply(self, k: int, point: Point) -> Point:
        g = self._group.ptr
        with _tb._tmp_bn_ctx() as bn_ctx:
            src = _ffi.gc(_lib.EC_POINT_new(g), _lib.EC_POINT_free)
            bx, by = _tb._int_to_bn(point[0]), _tb._int_to_bn(point[1])
            bx, by = _ffi.gc(bx, _lib.BN_free), _ffi.gc(by, _lib.BN_free)
            if _lib.EC_POINT_set_affine_coordinates_GFp(g, src, bx, by, bn_ctx) != 1:
                _tb._consume_errors()
                raise ArithmeticError("point is not on the SM2 curve")
            scalar = _ffi.gc(_tb._int_to_bn(k % N), _lib.BN_free)
            out = _ffi.gc(_lib.EC_POINT_new(g), _lib.EC_POINT_clear_free)
            _tb.openssl_assert(_lib.EC_POINT_mul(g, out, _ffi.NULL, src, scalar, bn_ctx) == 1)
            if _lib.EC_POINT_is_at_infinity(g, out) == 1:
                raise ArithmeticError("point at infinity")
            ox, oy = _lib.BN_CTX_get(bn_ctx), _lib.BN_CTX_get(bn_ctx)
            _tb.openssl_assert(
                _lib.EC_POINT_get_affine_coordinates_GFp(g, out, ox, oy, bn_ctx) == 1
            )
            return _tb._bn_to_int(ox), _tb._bn_to_int(oy)

    def _sign_with_fixed_k(self, handle: Any, e: bytes, k: int) -> tuple[int, int]:
        d = handle.key.private_numbers().private_value
        x1, _ = self.multiply(k, (GX, GY))
        r = (int.from_bytes(e, "big") + x1) % N
        if r == 0 or r + k == N:
            raise ValueError("the given k produces an invalid signature")
        s = (pow(1 + d, -1, N) * (k - r * d)) % N
        if s == 0:
            raise ValueError("the given k produces an invalid signature")
        return r, s
