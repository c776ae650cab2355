"""Client secrets (scrypt, stored hashed), bearer tokens (stored as SM3), and the server hooks:
authentication with the client's state checked on every request, a rate limiter shared by all
workers and hosts through the store, request signatures with nonces in the store, document
signatures against the entity's registered certificates (revocation effective at once), and
the freshness rule on a document's signing time (applied by the service, after the idempotent
replay lookup: a replay was checked when first received)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import secrets
import threading
import time
from typing import Any

from .. import trust
from ..runtime.errors import Problem, ProblemItem
from ..runtime.server import RequestContext, ServerHooks
from ..trust import x509 as tx
from ..trust.reqsign import signed_path
from .settings import PlatformPki, PlatformSettings
from .store import Store

UTC = dt.timezone.utc


def hash_secret(secret: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt$16384$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_secret(secret: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        got = hashlib.scrypt(secret.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p))
        return hmac.compare_digest(got, base64.b64decode(digest))
    except (ValueError, TypeError):
        return False


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return trust.sm3(token.encode()).hex()


#: the rate limit's key prefix of an authenticated client
CLIENT_KEY = "client:"


class Principal:
    def __init__(self, credit_code: str, scopes: set[str], client_id: str):
        self.credit_code, self.scopes, self.client_id = credit_code, scopes, client_id


class StoreNonces:
    """The request verifier's nonce store, kept in the platform's store (shared by all workers)."""

    def __init__(self, store: Store):
        self.store = store

    def add(self, nonce: str, expires_at: float) -> bool:
        return self.store.add_nonce(nonce, expires_at)


def client_address(ctx: RequestContext) -> str:
    return ctx.request.client.host if ctx.request.client else "unknown"


class RateLimiter:
    """Fixed one-minute windows counted in the store, so every worker process and every host of
    a deployment sees the same count. Requests are keyed on the authenticated client, or on the
    address before authentication; failed authentications have their own, lower limit per
    client ID and per address."""

    WINDOW = 60

    def __init__(self, store: Store, per_minute: int, failures_per_minute: int):
        self.store, self.per_minute, self.failures_per_minute = store, per_minute, failures_per_minute

    def window(self) -> tuple[int, int]:
        """The current window's start and the whole seconds until its end."""
        now = time.time()
        start = int(now // self.WINDOW) * self.WINDOW
        return start, max(1, int(start + self.WINDOW - now + 0.999))  # whole seconds, never 0

    def hit(self, key: str) -> dict[str, str]:
        """Count one request; raise RATE_LIMITED beyond the limit. The RateLimit-* headers."""
        window, reset = self.window()
        return self.answer(self.store.hit(key, window), reset)

    def answer(self, n: int, reset: int) -> dict[str, str]:
        """The RateLimit-* headers for a hit counted ``n`` in a window ending in ``reset`` s;
        raise RATE_LIMITED beyond the limit."""
        headers = {"RateLimit-Limit": str(self.per_minute), "RateLimit-Remaining": str(max(0, self.per_minute - n)),
                   "RateLimit-Reset": str(reset)}
        if n > self.per_minute:
            raise Problem("RATE_LIMITED", f"more than {self.per_minute} requests a minute; retry in {reset} s",
                          headers={"Retry-After": str(reset), **headers})
        return headers

    def check_failures(self, *keys: str, strictly_over: bool = False) -> None:
        """Refuse (before any secret is checked) when a key has failed too often this minute."""
        window, reset = self.window()
        limit = self.failures_per_minute + (1 if strictly_over else 0)
        for key in keys:
            if self.store.count(f"fail:{key}", window) >= limit:
                raise Problem("RATE_LIMITED", f"too many failed authentications; retry in {reset} s",
                              headers={"Retry-After": str(reset), "RateLimit-Limit": str(self.failures_per_minute),
                                       "RateLimit-Remaining": "0", "RateLimit-Reset": str(reset)})

    def failed(self, *keys: str) -> None:
        window, _ = self.window()
        for key in keys:
            self.store.hit(f"fail:{key}", window)


def _bearer_problem(code: str, detail: str) -> Problem:
    return Problem(code, detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class PlatformHooks(ServerHooks):
    #: Verified entity keys are remembered this long at most (never past the certificate's
    #: expiry); any revocation empties the cache of every worker on its next signed request,
    #: because the store's revocation counter is read on each of them.
    KEY_CACHE_SECONDS = 60

    def __init__(self, store: Store, pki: PlatformPki, settings: PlatformSettings, limiter: RateLimiter | None = None):
        self.store, self.pki, self.settings = store, pki, settings
        self._keys: dict[tuple[str, str], tuple[float, trust.SM2PublicKey | None, str | None]] = {}
        self._keys_counter = -1
        self._keys_lock = threading.Lock()
        self.max_body_bytes = settings.max_body_bytes
        self.limiter = limiter or RateLimiter(store, settings.rate_limit_per_minute, settings.auth_failures_per_minute)
        self.nonces = StoreNonces(store)

    # --- authentication and limits ----------------------------------------------------------
    def rate_limit(self, ctx: RequestContext) -> None:
        counted = getattr(ctx, "cedx_rate_hit", None)
        if counted is not None:  # counted with the token's lookup (_principal)
            ctx.response_headers.update(self.limiter.answer(*counted))
            return
        who = f"{CLIENT_KEY}{ctx.principal.client_id}" if ctx.principal else f"addr:{client_address(ctx)}"
        ctx.response_headers.update(self.limiter.hit(who))

    def authenticate(self, ctx: RequestContext) -> None:
        if not ctx.operation.scopes and ctx.operation.interface == "common":
            return
        try:
            ctx.principal = self._principal(ctx)
        except Problem as problem:
            if problem.code.startswith("TOKEN_"):
                # Counted per address; past the limit the answer is 429 until the window ends.
                # (A valid token costs no extra query; guessing 256-bit tokens is hopeless anyway.)
                address = f"addr:{client_address(ctx)}"
                self.limiter.failed(address)
                self.limiter.check_failures(address, strictly_over=True)
            raise

    def _principal(self, ctx: RequestContext) -> Principal:
        header = ctx.header("authorization") or ""
        if not header[:7].lower() == "bearer ":
            raise Problem("TOKEN_MISSING", "send Authorization: Bearer <token>", headers={"WWW-Authenticate": "Bearer"})
        hashed, now = token_hash(header[7:].strip()), dt.datetime.now(UTC)
        hits = None
        if self.store.token_and_hit_merged and self.limiter.store is self.store:
            # the rate limit's hit counted in the same statement when the store can (PostgreSQL:
            # one round trip less), only if the checks below pass; rate_limit answers with it
            window, reset = self.limiter.window()
            token, hits = self.store.token_and_hit(hashed, tuple(ctx.operation.scopes), now, CLIENT_KEY, window)
        else:
            token = self.store.token(hashed)
        if token is None:
            raise _bearer_problem("TOKEN_INVALID", "the token is not known (or was revoked)")
        if token.revocations is not None:  # read with the token: no second query for _entity_key_checked
            ctx.cedx_revocations = token.revocations  # type: ignore[attr-defined]
        if not token.client_active:
            raise _bearer_problem("TOKEN_INVALID", "the token's client is disabled")
        if token.expires_at <= now:
            raise _bearer_problem("TOKEN_EXPIRED", f"the token expired at {token.expires_at.isoformat()}")
        scopes = set(token.scopes.split())
        missing = [s for s in ctx.operation.scopes if s not in scopes]
        if missing:
            raise Problem("SCOPE_INSUFFICIENT", f"this operation needs scope {' '.join(missing)}")
        if hits is not None:
            ctx.cedx_rate_hit = (hits, reset)  # type: ignore[attr-defined]
        return Principal(token.credit_code, scopes, token.client_id)

    # --- entity keys ------------------------------------------------------------------------
    def _entity_key_checked(self, credit_code: str, key_id: str,
                            ctx: RequestContext | None = None) -> tuple[trust.SM2PublicKey | None, str | None]:
        """(key, None) for a registered, valid certificate of the entity, else (None, reason)."""
        counter = getattr(ctx, "cedx_revocations", None)  # read once per request
        if counter is None:
            counter = self.store.revocation_counter()
            if ctx is not None:
                ctx.cedx_revocations = counter  # type: ignore[attr-defined]
        now = time.monotonic()
        with self._keys_lock:
            if counter != self._keys_counter or len(self._keys) > 10000:
                self._keys.clear()
                self._keys_counter = counter
            hit = self._keys.get((credit_code, key_id))
        if hit and hit[0] > now:
            return hit[1], hit[2]
        cert = self.store.certificate(key_id)
        keep = float(self.KEY_CACHE_SECONDS)
        result: tuple[trust.SM2PublicKey | None, str | None]
        if cert is None or cert.credit_code != credit_code:
            result = (None, "the signing key has no certificate registered for this entity")
        elif cert.revoked_at is not None:
            result = (None, f"the signing certificate was revoked at {cert.revoked_at.isoformat()}")
        else:
            try:
                result = (tx.validate_chain(cert.der, trust_anchors=self.pki.anchors), None)
                not_after = tx.load_certificate(cert.der)["tbs_certificate"]["validity"]["not_after"].native
                keep = min(keep, max(0.0, (not_after - dt.datetime.now(UTC)).total_seconds()))
            except trust.CertificateError as exc:
                result = (None, str(exc))
        with self._keys_lock:
            if self._keys_counter == counter:
                self._keys[(credit_code, key_id)] = (now + keep, *result)
        return result

    def _entity_key(self, credit_code: str, key_id: str, ctx: RequestContext | None = None) -> trust.SM2PublicKey | None:
        return self._entity_key_checked(credit_code, key_id, ctx)[0]

    # --- signatures -------------------------------------------------------------------------
    def verify_request_signature(self, ctx: RequestContext) -> None:
        principal = ctx.principal

        def resolve(key_id: str) -> trust.SM2PublicKey | None:
            if principal is None:
                return None
            key, reason = self._entity_key_checked(principal.credit_code, key_id, ctx)
            if key is None:  # why, for the integrator: not registered, revoked, expired...
                raise trust.InvalidSignature(f"request signing key {key_id}: {reason}")
            return key

        verifier = trust.RequestVerifier(resolve, nonce_store=self.nonces)
        # the body's SM3 with prefix states: the receipt's documentDigest resumes from them
        ctx.body_digests = trust.PrefixDigests(ctx.raw_body)
        try:
            # the full path the client sent: behind a proxy that removes the base URL's path (§11)
            path = signed_path(ctx.request.url.path, self.settings.base_url)
            verifier.verify(ctx.request.method, path, ctx.request.url.query,
                            ctx.request.headers, ctx.raw_body, body_sm3=ctx.body_digests.digest)
        except trust.ReplayError as exc:
            raise Problem("REQUEST_REPLAYED", str(exc)) from exc
        except trust.TrustError as exc:
            raise Problem("REQUEST_SIGNATURE_INVALID", str(exc)) from exc

    def verify_document(self, ctx: RequestContext, record: dict[str, Any]) -> None:
        principal = ctx.principal
        payload = record.get("payload", {})
        if principal is None or payload.get("creditCode") != principal.credit_code:
            raise Problem("ENTITY_FORBIDDEN", "the document is for another entity than the token's",
                          [ProblemItem("$.payload.creditCode", "ENTITY_FORBIDDEN", "does not match the token")])
        key_id = record["signature"]["keyId"]
        public, reason = self._entity_key_checked(principal.credit_code, key_id, ctx)
        if public is None:
            raise Problem("CERTIFICATE_INVALID", reason or "certificate invalid",
                          [ProblemItem("$.signature.keyId", "CERTIFICATE_INVALID", reason or "certificate invalid")])
        try:
            # kept for the service: the receipt's documentDigest comes from the same canonical bytes;
            # ``encoded``: the parser's proof, so the document is neither scanned nor encoded again
            ctx.verified = trust.verify_document(record, public, encoded=ctx.encoded, body=ctx.body_digests)
        except trust.InvalidSignature as exc:
            raise Problem("SIGNATURE_INVALID", str(exc),
                          [ProblemItem("$.signature.value", "SIGNATURE_INVALID", str(exc))]) from exc


def check_signing_time(record: dict[str, Any], settings: PlatformSettings, now: dt.datetime | None = None) -> None:
    """The trust profile's freshness rule (docs/trust-profile.md §9), bounds from the settings:
    signingTime ≤ receipt + 300 s, ≥ receipt − 7 days, ≥ payload.preparedAt − 300 s."""
    s = settings
    now = now or dt.datetime.now(UTC)
    signed = _instant(record["signature"]["signingTime"])
    prepared = record.get("payload", {}).get("preparedAt")
    problem = None
    if signed > now + dt.timedelta(seconds=s.signing_time_future_seconds):
        problem = f"signingTime is more than {s.signing_time_future_seconds} s after the time of receipt"
    elif signed < now - dt.timedelta(seconds=s.signing_time_max_age_seconds):
        problem = (f"signingTime is more than {s.signing_time_max_age_seconds // 86400} days before the time of "
                   "receipt; sign the document again (with a new Idempotency-Key)")
    elif prepared and signed < _instant(prepared) - dt.timedelta(seconds=s.signing_time_before_prepared_seconds):
        problem = f"signingTime is more than {s.signing_time_before_prepared_seconds} s before preparedAt"
    if problem:
        raise Problem("SIGNATURE_INVALID", problem, [ProblemItem("$.signature.signingTime", "SIGNATURE_STALE", problem)])


def _instant(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
