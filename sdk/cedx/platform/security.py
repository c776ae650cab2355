"""Client secrets (scrypt, stored hashed), bearer tokens (stored as SM3), and the server hooks:
authentication, scopes, request signatures with a database nonce store, document signatures
against the entity's registered certificates, and a per-client rate limit."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import secrets
import threading
import time

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from .. import trust
from ..runtime.errors import Problem, ProblemItem
from ..runtime.server import RequestContext, ServerHooks
from ..trust import x509 as tx
from .db import CertificateRow, NonceRow, TokenRow


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


class Principal:
    def __init__(self, credit_code: str, scopes: set[str], client_id: str):
        self.credit_code, self.scopes, self.client_id = credit_code, scopes, client_id


class DbNonceStore:
    """Nonces shared by every worker process through the database."""

    def __init__(self, sessions):
        self.sessions = sessions

    def add(self, nonce: str, expires_at: float) -> bool:
        with self.sessions() as s:
            now = time.time()
            if secrets.randbelow(100) == 0:  # occasionally forget expired nonces
                s.execute(delete(NonceRow).where(NonceRow.expires_at < now))
            existing = s.get(NonceRow, nonce)
            if existing is not None and existing.expires_at > now:
                return False
            if existing is not None:
                existing.expires_at = int(expires_at)
            else:
                s.add(NonceRow(nonce=nonce, expires_at=int(expires_at)))
            try:
                s.commit()
            except IntegrityError:  # another worker recorded it first
                return False
            return True


class RateLimiter:
    """Fixed one-minute windows per client, in process (each worker counts its own share)."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def hit(self, who: str) -> tuple[bool, int, int]:
        window = int(time.time() // 60)
        with self._lock:
            if len(self._counts) > 10000:
                self._counts = {k: v for k, v in self._counts.items() if k[1] == window}
            n = self._counts.get((who, window), 0) + 1
            self._counts[(who, window)] = n
        reset = 60 - int(time.time() % 60)
        return n <= self.per_minute, max(0, self.per_minute - n), reset


class PlatformHooks(ServerHooks):
    #: Verified entity keys are remembered this long: a revocation or expiry takes effect
    #: within this many seconds, and a busy platform does not re-validate chains per request.
    KEY_CACHE_SECONDS = 60

    def __init__(self, sessions, pki, settings):
        self.sessions, self.pki, self.settings = sessions, pki, settings
        self._keys: dict[tuple[str, str], tuple[float, trust.SM2PublicKey | None, str | None]] = {}
        self.max_body_bytes = settings.max_body_bytes
        self.limiter = RateLimiter(settings.rate_limit_per_minute)
        self.nonces = DbNonceStore(sessions)

    def rate_limit(self, ctx: RequestContext) -> None:
        who = ctx.header("authorization") or (ctx.request.client.host if ctx.request.client else "?")
        ok, remaining, reset = self.limiter.hit(who)
        ctx.response_headers.update({"RateLimit-Limit": str(self.limiter.per_minute),
                                     "RateLimit-Remaining": str(remaining), "RateLimit-Reset": str(reset)})
        if not ok:
            raise Problem("RATE_LIMITED", f"more than {self.limiter.per_minute} requests a minute",
                          headers={"Retry-After": str(reset), **ctx.response_headers})

    def authenticate(self, ctx: RequestContext) -> None:
        if not ctx.operation.scopes and ctx.operation.interface == "common":
            return
        header = ctx.header("authorization") or ""
        if not header.lower().startswith("bearer "):
            raise Problem("TOKEN_MISSING", "send Authorization: Bearer <token>", headers={"WWW-Authenticate": "Bearer"})
        with self.sessions() as s:
            row = s.get(TokenRow, token_hash(header[7:].strip()))
        if row is None:
            raise Problem("TOKEN_INVALID", "the token is not known", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=dt.timezone.utc)
        if expires <= dt.datetime.now(dt.timezone.utc):
            raise Problem("TOKEN_EXPIRED", f"the token expired at {expires.isoformat()}",
                          headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        scopes = set(row.scopes.split())
        missing = [s for s in ctx.operation.scopes if s not in scopes]
        if missing:
            raise Problem("SCOPE_INSUFFICIENT", f"this operation needs scope {' '.join(missing)}")
        ctx.principal = Principal(row.credit_code, scopes, row.client_id)

    def _entity_key_checked(self, credit_code: str, key_id: str) -> tuple[trust.SM2PublicKey | None, str | None]:
        """(key, None) for a registered, valid certificate of the entity, else (None, reason)."""
        now = time.monotonic()
        hit = self._keys.get((credit_code, key_id))
        if hit and hit[0] > now:
            return hit[1], hit[2]
        with self.sessions() as s:
            row = s.get(CertificateRow, key_id)
        if row is None or row.credit_code != credit_code:
            result = (None, "the signing key has no certificate registered for this entity")
        elif row.revoked:
            result = (None, "the signing certificate has been revoked")
        else:
            try:
                result = (tx.validate_chain(row.der, trust_anchors=self.pki.anchors), None)
            except trust.CertificateError as exc:
                result = (None, str(exc))
        if len(self._keys) > 10000:
            self._keys.clear()
        self._keys[(credit_code, key_id)] = (now + self.KEY_CACHE_SECONDS, *result)
        return result

    def _entity_key(self, credit_code: str, key_id: str) -> trust.SM2PublicKey | None:
        return self._entity_key_checked(credit_code, key_id)[0]

    def verify_request_signature(self, ctx: RequestContext) -> None:
        principal = ctx.principal
        verifier = trust.RequestVerifier(
            lambda key_id: self._entity_key(principal.credit_code, key_id) if principal else None,
            nonce_store=self.nonces,
        )
        try:
            verifier.verify(ctx.request.method, ctx.request.url.path, ctx.request.url.query,
                            ctx.request.headers, ctx.raw_body)
        except trust.ReplayError as exc:
            raise Problem("REQUEST_REPLAYED", str(exc)) from exc
        except trust.TrustError as exc:
            raise Problem("REQUEST_SIGNATURE_INVALID", str(exc)) from exc

    def verify_document(self, ctx: RequestContext, record: dict) -> None:
        principal = ctx.principal
        payload = record.get("payload", {})
        if principal is None or payload.get("creditCode") != principal.credit_code:
            raise Problem("ENTITY_FORBIDDEN", "the document is for another entity than the token's",
                          [ProblemItem("$.payload.creditCode", "ENTITY_FORBIDDEN", "does not match the token")])
        key_id = record["signature"]["keyId"]
        public, reason = self._entity_key_checked(principal.credit_code, key_id)
        if public is None:
            raise Problem("CERTIFICATE_INVALID", reason or "certificate invalid",
                          [ProblemItem("$.signature.keyId", "CERTIFICATE_INVALID", reason or "certificate invalid")])
        try:
            trust.verify_document(record, public)
        except trust.InvalidSignature as exc:
            raise Problem("SIGNATURE_INVALID", str(exc),
                          [ProblemItem("$.signature.value", "SIGNATURE_INVALID", str(exc))]) from exc
