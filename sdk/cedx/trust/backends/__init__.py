"""Interchangeable SM2 backends behind one small interface.

A backend only does elliptic-curve work on the SM2 curve: derive a public point, sign and verify
a 32-byte digest e, multiply a point. Everything around it (Z value, encodings, range checks,
encryption) is shared code in cedx.trust, so both backends run the same test vectors.

Choice: ``CEDX_SM2_BACKEND=native|portable``; default native when tongsuopy imports, else portable.
"""

from __future__ import annotations

import os
import sys
import warnings
from functools import cache
from typing import Any, Protocol

from ..curve import Point
from ..errors import BackendUnavailable

ENV_VAR = "CEDX_SM2_BACKEND"
NAMES = ("native", "portable")


class PerformanceWarning(UserWarning):
    """cedx runs, but slower than it could on this machine (e.g. the portable SM2 backend)."""


class Backend(Protocol):
    name: str

    def public_point(self, d: int) -> Point: ...

    def private_handle(self, d: int, q: Point) -> Any: ...

    def public_handle(self, q: Point) -> Any: ...

    def sign_digest(self, handle: Any, e: bytes, k: int | None = None) -> bytes:
        """DER signature of the digest e. ``k`` fixes the nonce, for test vectors only."""
        ...

    def verify_digest(self, handle: Any, e: bytes, signature: bytes, r: int, s: int) -> bool:
        """``signature`` is strict DER of (r, s), already checked and range-checked."""
        ...

    def multiply(self, k: int, point: Point) -> Point: ...


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside cedx: the warning then names the caller's
    line (``report = ...``), not a line of cedx.trust.keys."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_globals.get("__name__", "").partition(".")[0] == "cedx":
        frame, level = frame.f_back, level + 1
    return level


@cache
def get_backend(name: str | None = None) -> Backend:
    """Return a backend by name, or the configured/default one when name is None."""
    name = name or os.environ.get(ENV_VAR) or None
    if name is None:
        try:
            return get_backend("native")
        except BackendUnavailable as exc:
            # once per process (get_backend is cached); an explicit CEDX_SM2_BACKEND=portable is quiet
            warnings.warn(f"cedx: using the portable (pure Python, slower) SM2 backend: {exc}; "
                          f"set {ENV_VAR}=portable to silence this", PerformanceWarning, stacklevel=_caller_level())
            return get_backend("portable")
    if name == "native":
        try:
            from . import native
        except ImportError as exc:  # tongsuopy has no wheel for this platform
            raise BackendUnavailable(
                "native SM2 backend needs tongsuopy (pip install 'cedx[fast]')"
            ) from exc
        return native.NativeBackend()
    if name == "portable":
        from . import portable

        return portable.PortableBackend()
    raise BackendUnavailable(f"unknown SM2 backend {name!r}; choose one of {', '.join(NAMES)}")


def available_backends() -> list[str]:
    names = []
    for name in NAMES:
        try:
            get_backend(name)
        except BackendUnavailable:
            continue
        names.append(name)
    return names
