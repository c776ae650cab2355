"""Request-level signatures for HTTP calls, with a replay window and a nonce cache.

Headers (names from the spec's ``x-cedx-request-signature``):

    X-Cedx-Timestamp   RFC 3339 UTC instant of signing
    X-Cedx-Nonce       32 hex digits, never reused within the replay window
    X-Cedx-Key-Id      hex SM3 fingerprint of the signer's public key
    X-Cedx-Signature   base64 DER SM2-with-SM3 over the string to sign

String to sign (UTF-8, lines joined by LF):

    CEDX-SM2-SM3
    <METHOD upper-case>
    <path, as sent, percent-encoded>
    <query: pairs sorted by name then value, RFC 3986 encoded, joined by &>
    <timestamp>
    <nonce>
    <hex SM3 of the body bytes>
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol
from urllib.parse import parse_qsl, quote, urlsplit

from ..instants import INSTANT_PATTERN
from .canonical import format_instant
from .errors import InvalidSignature, ReplayError
from .keys import SM2PrivateKey, SM2PublicKey
from .sm3 import sm3

SCHEME = "CEDX-SM2-SM3"
H_TIMESTAMP = "X-Cedx-Timestamp"
H_NONCE = "X-Cedx-Nonce"
H_KEY_ID = "X-Cedx-Key-Id"
H_SIGNATURE = "X-Cedx-Signature"
DEFAULT_WINDOW = 300  # seconds either side of the verifier's clock
# What the headers may hold (trust profile section 5); the spec declares them only in the
# requestSignature security scheme, so the verifier checks their form itself.
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_TIMESTAMP = INSTANT_PATTERN


def canonical_query(query: str | Iterable[tuple[str, str]]) -> str:
    pairs = parse_qsl(query, keep_blank_values=True) if isinstance(query, str) else list(query)
    enc = sorted((quote(k, safe="-._~"), quote(v, safe="-._~")) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in enc)


def request_path(base_url: str, path: str) -> str:
    """The path a client signs (§5 line 3): its base URL's path followed by the operation's path."""
    return urlsplit(base_url).path.rstrip("/") + path


def signed_path(received: str, base_url: str | None) -> str:
    """The request path the client signed (docs/trust-profile.md §5 line 3, §11): the full path
    it sent, including its base URL's path. A server whose announced base URL has a path runs
    behind a reverse proxy that removes that path, so it receives the rest only and puts the
    base path back before verifying; a path that already starts with it is taken as it is."""
    prefix = urlsplit(base_url).path.rstrip("/") if base_url else ""
    if not prefix or received == prefix or received.startswith(prefix + "/"):
        return received
    return prefix + received


def string_to_sign(
    method: str, path: str, query: str | Iterable[tuple[str, str]], timestamp: str, nonce: str,
    body: bytes, *, body_sm3: bytes | None = None,
) -> bytes:
    """``body_sm3``: SM3 of ``body`` when the caller has it already."""
    digest = sm3(body) if body_sm3 is None else body_sm3
    lines = [SCHEME, method.upper(), path, canonical_query(query), timestamp, nonce, digest.hex()]
    return "\n".join(lines).encode("utf-8")


def sign_request(
    key: SM2PrivateKey,
    method: str,
    path: str,
    query: str | Iterable[tuple[str, str]] = "",
    body: bytes = b"",
    *,
    now: _dt.datetime | None = None,
    nonce: str | None = None,
    body_sm3: bytes | None = None,
) -> dict[str, str]:
    """Return the four headers that sign this request. ``body_sm3``: SM3 of ``body`` when the
    caller has it already (a client hashes a body once for all its attempts, and compares a
    receipt's documentDigest with it)."""
    timestamp = format_instant(now or _dt.datetime.now(_dt.timezone.utc))
    nonce = nonce or secrets.token_hex(16)
    sig = key.sign(string_to_sign(method, path, query, timestamp, nonce, body, body_sm3=body_sm3))
    return {
        H_TIMESTAMP: timestamp,
        H_NONCE: nonce,
        H_KEY_ID: key.public_key().fingerprint(),
        H_SIGNATURE: base64.b64encode(sig).decode("ascii"),
    }


class NonceStore(Protocol):
    def add(self, nonce: str, expires_at: float) -> bool:
        """Record a nonce; return False when it was already seen and not yet expired."""
        ...


class MemoryNonceStore:
    """Thread-safe in-process nonce cache; entries expire with the replay window.

    A platform running several worker processes passes a shared store (the reference
    platform keeps nonces in its database) instead.
    """

    def __init__(self, max_entries: int = 1_000_000):
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._max = max_entries

    def add(self, nonce: str, expires_at: float) -> bool:
        now = time.time()
        with self._lock:
            expiry = self._seen.get(nonce)
            if expiry is not None and expiry > now:
                return False
            if len(self._seen) >= self._max:
                self._seen = {n: e for n, e in self._seen.items() if e > now}
                if len(self._seen) >= self._max:
                    raise ReplayError("nonce cache is full; refusing to accept more requests")
            self._seen[nonce] = expires_at
            return True


def _header(headers: Mapping[str, str], name: str) -> str:
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get(name.lower())
    if not value:
        raise InvalidSignature(f"missing request signature header {name}")
    return value


class RequestVerifier:
    """Verify signed requests: header presence, replay window, nonce freshness, signature."""

    def __init__(
        self,
        resolve_key: Callable[[str], SM2PublicKey | None],
        *,
        window_seconds: int = DEFAULT_WINDOW,
        nonce_store: NonceStore | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self._resolve = resolve_key
        self._window = window_seconds
        self._nonces = nonce_store or MemoryNonceStore()
        self._clock = clock

    def verify(
        self,
        method: str,
        path: str,
        query: str | Iterable[tuple[str, str]],
        headers: Mapping[str, str],
        body: bytes,
        *,
        body_sm3: bytes | None = None,
    ) -> SM2PublicKey:
        """``body_sm3``: SM3 of ``body`` when the caller has it already (e.g. from a
        ``PrefixDigests`` it keeps for the document's digest)."""
        timestamp = _header(headers, H_TIMESTAMP)
        nonce = _header(headers, H_NONCE)
        key_id = _header(headers, H_KEY_ID)
        sig_b64 = _header(headers, H_SIGNATURE)
        if not _NONCE.match(nonce):
            raise InvalidSignature("request nonce must be 16 to 64 characters from A-Z a-z 0-9 _ -")
        try:
            if not _TIMESTAMP.match(timestamp):
                raise ValueError("not an RFC 3339 instant with an offset")
            signed_at = _dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidSignature(f"{H_TIMESTAMP} is not an RFC 3339 instant") from exc
        skew = abs(self._clock() - signed_at.timestamp())
        if skew > self._window:
            raise ReplayError(
                f"request timestamp is {int(skew)} s away from server time "
                f"(window {self._window} s)"
            )
        key = self._resolve(key_id)
        if key is None:
            raise InvalidSignature(f"unknown request signing key {key_id}")
        try:
            sig = base64.b64decode(sig_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidSignature(f"{H_SIGNATURE} is not valid base64") from exc
        signed = string_to_sign(method, path, query, timestamp, nonce, body, body_sm3=body_sm3)
        try:
            key.verify(sig, signed)
        except InvalidSignature as exc:
            raise InvalidSignature(f"{exc}{key.why_not(sig, signed)}") from exc
        # Record the nonce only after the signature holds, so forged requests cannot
        # poison the cache with nonces a legitimate client is about to use.
        if not self._nonces.add(f"{key_id}:{nonce}", signed_at.timestamp() + self._window):
            raise ReplayError("request nonce has already been used (replay)")
        return key
