"""The reference acquisition source as an ASGI app (cedx serve acquisition).

Callers authenticate with OAuth 2.0 client credentials at the source's own ``/oauth/token``
(scope ``acquisition:read``, as the spec declares) or, for simple set-ups, with a bearer token
from the source's configured list. Every answer carries RateLimit-* headers (per client, fixed
window; failed authentication is limited per address); paginated answers carry an RFC 8288
``Link: <…>; rel="next"``. ``/.well-known/cedx-configuration`` is a configuration document
signed with the source's data-signing key, advertising the address the request reached (or
``public_url``). Data lives in a SealedStore (SQLite in the data directory, or a database URL);
the simulation of a site is one writer of it, the HJ 212 bridge can be another.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import trust
from ..generated import models
from ..generated.constants import SPEC_VERSION
from ..generated.server import (
    CommonService,
    Reply,
    ServerHooks,
    build_acquisition_router,
    build_common_router,
)
from ..instants import CST
from ..runtime.errors import OAuthError, Problem
from ..runtime.server import RequestContext, client_credentials, install_problem_handlers
from ..trust import x509 as tx
from ..trust.keys import SM2PrivateKey
from .batches import Signer
from .simulate import SITES, Simulation, synthetic_points
from .source import Source
from .store import SealedStore

log = logging.getLogger("cedx.acquisition")
SCOPE = "acquisition:read"
TOKEN_LIFETIME = 3600


class RateLimiter:
    """Fixed-window counter per key (client id, or address for failed authentication)."""

    def __init__(self, limit: int, window: int = 60):
        self.limit, self.window = limit, window
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> tuple[bool, dict[str, str]]:
        now = int(time.time())
        slot = now // self.window
        with self._lock:
            if len(self._counts) > 10000:
                self._counts = {k: v for k, v in self._counts.items() if k[1] == slot}
            n = self._counts.get((key, slot), 0) + 1
            self._counts[(key, slot)] = n
        reset = (slot + 1) * self.window - now
        headers = {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(max(0, self.limit - n)),
                   "RateLimit-Reset": str(reset)}
        if n > self.limit:
            headers["Retry-After"] = str(reset)
            return False, headers
        return True, headers


class TokenIssuer(CommonService):
    """The source's token endpoint and signed configuration document."""

    def __init__(self, clients: dict[str, str], signer: Signer, name: str, public_url: str | None):
        self.clients = {cid: hashlib.sha256(secret.encode()).digest() for cid, secret in clients.items()}
        self.signer, self.name, self.public_url = signer, name, public_url
        self.tokens: dict[bytes, tuple[str, float]] = {}
        self._configs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.sessions: Any = None  # the source's SessionTable, set by create_source_app

    def issue_token(self, ctx: RequestContext, *, body: models.TokenRequest) -> Any:
        # HTTP Basic or form fields (RFC 6749 §2.3.1), as at the platform.
        client_id, secret = client_credentials(ctx, body.model_dump(exclude_none=True))
        expected = self.clients.get(client_id)
        given = hashlib.sha256(secret.encode()).digest()
        if expected is None or not hmac.compare_digest(expected, given):
            raise OAuthError("invalid_client", "unknown client or wrong secret", 401)
        scopes = set((body.scope or SCOPE).split())
        if scopes != {SCOPE}:
            raise OAuthError("invalid_scope", f"this source grants only {SCOPE}")
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = time.time()
            self.tokens = {k: v for k, v in self.tokens.items() if v[1] > now}
            self.tokens[hashlib.sha256(token.encode()).digest()] = (client_id, now + TOKEN_LIFETIME)
        return Reply({"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME, "scope": SCOPE},
                     headers={"Cache-Control": "no-store"})

    def lookup(self, token: str) -> tuple[str | None, bool]:
        """(client id, expired) for an issued token; (None, False) when unknown."""
        entry = self.tokens.get(hashlib.sha256(token.encode()).digest())
        if entry is None:
            return None, False
        return entry[0], entry[1] <= time.time()

    def get_configuration(self, ctx: RequestContext) -> Any:
        base = (self.public_url or str(ctx.request.base_url)).rstrip("/")
        with self._lock:
            doc = self._configs.get(base)
            if doc is None:
                payload = {"platformId": self.signer.source_id, "platformName": self.name,
                           "validFrom": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                           "endpoints": {"acquisition": f"{base}/v1/acquisition", "token": f"{base}/oauth/token"},
                           "supportedSpecVersions": [SPEC_VERSION],
                           "signingCertificates": [base64.b64encode(c).decode() for c in self.signer.certificate_chain]}
                doc = self._configs[base] = trust.sign_document(  # SM2-with-SM3: as the platform's answers
                    payload, self.signer.key, certificate_chain=self.signer.certificate_chain,
                    envelope_fields={"specVersion": SPEC_VERSION}, algorithm=trust.ALGORITHM)
        return Reply(doc, headers={"Cache-Control": "max-age=300"})


class SourceHooks(ServerHooks):
    def __init__(self, tokens: list[str], issuer: TokenIssuer, limiter: RateLimiter):
        self.tokens = [t for t in tokens if t]
        self.issuer, self.limiter = issuer, limiter

    def _limit(self, ctx: RequestContext, key: str) -> None:
        ok, headers = self.limiter.hit(key)
        ctx.response_headers.update(headers)
        if not ok:
            raise Problem("RATE_LIMITED", "too many requests; retry after the time in Retry-After", headers=headers)

    def authenticate(self, ctx: RequestContext) -> None:
        if not ctx.operation.scopes:   # the spec's public operations (security: []), as on the platform
            client = ctx.request.client
            self._limit(ctx, f"addr:{client.host if client else '?'}")
            return
        header = ctx.header("authorization") or ""
        address = ctx.request.client.host if ctx.request.client else "?"
        if not header.lower().startswith("bearer "):
            self._limit(ctx, f"addr:{address}")
            raise Problem("TOKEN_MISSING", "send Authorization: Bearer <token>", headers={"WWW-Authenticate": "Bearer"})
        token = header[7:].strip()
        client_id, expired = self.issuer.lookup(token)
        if client_id is None:
            for i, t in enumerate(self.tokens):
                if hmac.compare_digest(token.encode(), t.encode()):
                    client_id = f"configured-token-{i}"
        if client_id is None or expired:
            self._limit(ctx, f"addr:{address}")
            if expired:
                raise Problem("TOKEN_EXPIRED", "the token has expired; obtain a new one",
                              headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
            raise Problem("TOKEN_INVALID", "the token is not known to this source",
                          headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        ctx.principal = client_id
        self._limit(ctx, f"client:{client_id}")
        sessions = getattr(self.issuer, "sessions", None)
        if sessions is not None and sessions.required and ctx.operation.operation_id == "listMeasurementBatches":
            raise Problem("CONFIDENTIALITY_REQUIRED", "this source serves batches only in the confidentiality mode "
                                                      "(openConfidentialSession, listEncryptedBatches)")


class DisconnectWatch:
    """ASGI middleware: marks ``scope["cedx.disconnected"]`` (a threading.Event) when the client
    goes away, so work running in a worker thread can stop instead of finishing for nobody."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        flag = threading.Event()
        scope["cedx.disconnected"] = flag
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=4)   # bounded: the body still streams

        async def pump() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    flag.set()
                await queue.put(message)
                if message["type"] == "http.disconnect":
                    return

        task = asyncio.create_task(pump())
        try:
            await self.app(scope, queue.get, send)
        finally:
            task.cancel()


def init_source_pki(pki_dir: Path, site: str) -> None:
    pki_dir.mkdir(parents=True, exist_ok=True)
    pki_dir.chmod(0o700)
    if (pki_dir / "source.pem").exists():
        return
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=400)
    ca_key = SM2PrivateKey.generate()
    ca = tx.create_ca(ca_key, {"country_name": "CN", "common_name": f"cedx metering CA ({site})"}, not_before=start)
    key = SM2PrivateKey.generate()
    cert = tx.issue_certificate(tx.create_csr(key, {"country_name": "CN", "common_name": f"cedx source {site}"}),
                                ca, ca_key, not_before=start, days=3650)
    (pki_dir / "ca.pem").write_bytes(tx.to_pem(ca))
    fd = os.open(pki_dir / "source.key.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.to_pem())
    (pki_dir / "source.pem").write_bytes(tx.to_pem(cert))


def create_source_app(site: str | None = None, data_dir: str | Path | None = None, tokens: list[str] | None = None,
                      commissioned: dt.datetime | None = None, seed: str = "cedx", *,
                      clients: dict[str, str] | None = None, database_url: str | None = None,
                      public_url: str | None = None, rate_limit: int | None = None,
                      clock: Callable[[], dt.datetime] | None = None,
                      seal_interval: float = 0, seal_lag: float = 120,
                      client_trust_anchors: list[bytes] | None = None, confidential_only: bool = False) -> FastAPI:
    """The source app. ``site`` ("power", "cement") runs that simulation as a writer of the
    store; ``site="none"`` serves only what other writers (e.g. the HJ 212 bridge) store.
    With ``seal_interval`` (seconds; needs a server running the lifespan) the source seals the
    points of other writers up to ``seal_lag`` seconds before now, so late telegrams still fit.
    ``client_trust_anchors`` (DER; or PEM files in CEDX_SOURCE_CLIENT_CA, comma-separated) enable
    the confidentiality mode; ``confidential_only`` then refuses clear batch pages."""
    site = site or os.environ.get("CEDX_SOURCE_SITE", "power")
    data_dir = Path(data_dir or os.environ.get("CEDX_SOURCE_DIR", f"cedx-source-{site}"))
    tokens = tokens if tokens is not None else os.environ.get("CEDX_SOURCE_TOKENS", "").split(",")
    if clients is None:
        clients = dict(c.split(":", 1) for c in os.environ.get("CEDX_SOURCE_CLIENTS", "").split(",") if ":" in c)
    if commissioned is None:
        month = os.environ.get("CEDX_SOURCE_COMMISSIONED")
        commissioned = (dt.datetime.fromisoformat(f"{month}-01T00:00:00+08:00") if month
                        else dt.datetime.now(CST).replace(day=1, hour=0, minute=0, second=0, microsecond=0))
    rate_limit = rate_limit or int(os.environ.get("CEDX_SOURCE_RATE_LIMIT", "1200"))
    init_source_pki(data_dir / "pki", site)
    key = SM2PrivateKey.from_bytes((data_dir / "pki" / "source.key.pem").read_bytes())
    chain = [tx.load_certificate((data_dir / "pki" / n).read_bytes()).dump() for n in ("source.pem", "ca.pem")]
    signer = Signer(f"SRC-{site.upper()}-01", key, chain)
    store = SealedStore(database_url or os.environ.get("CEDX_SOURCE_DATABASE_URL") or data_dir / "source.db",
                        signer=signer)
    simulation = None
    if site in SITES:
        models = SITES[site](commissioned)
        synthetic = int(os.environ.get("CEDX_SOURCE_SYNTHETIC_POINTS", "0"))  # load tests only
        if synthetic:
            models = models[:1] + synthetic_points(models[0], synthetic)
        simulation = Simulation(models, commissioned, seed)
    name = f"参考数据源（{site}） / reference source ({site})"
    source = Source(store, signer, name=name, simulation=simulation, clock=clock)
    source.public_url = public_url
    issuer = TokenIssuer(clients, signer, name, public_url)
    if client_trust_anchors is None:
        client_trust_anchors = [tx.load_certificate(Path(f).read_bytes()).dump()
                                for f in os.environ.get("CEDX_SOURCE_CLIENT_CA", "").split(",") if f]
    if client_trust_anchors:
        source.enable_confidentiality(client_trust_anchors, user_id=signer.source_id, key=key, chain=chain,
                                      required=confidential_only or os.environ.get("CEDX_SOURCE_CONFIDENTIAL_ONLY") == "1",
                                      base_url=public_url)
    hooks = SourceHooks(tokens, issuer, RateLimiter(rate_limit))

    def sealer() -> None:  # points fed by other writers (e.g. the HJ 212 bridge): seal what is due
        while not source.stopping.wait(seal_interval):
            try:
                source.catch_up()
                simulated = set(simulation.models) if simulation else set()
                until = source.clock() - dt.timedelta(seconds=seal_lag)
                for doc in store.points():
                    if doc["pointId"] not in simulated:
                        store.seal(doc["pointId"], until=until)
            except Exception:  # keep sealing on the next round; the cause is logged
                log.exception("sealing round failed")

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if seal_interval > 0:
            threading.Thread(target=sealer, daemon=True, name="cedx-sealer").start()
        yield
        source.stopping.set()   # long computations in worker threads and the sealer stop at once
        store.close()

    app = FastAPI(title=f"cedx reference acquisition source ({site})", openapi_url=None, docs_url=None,
                  redoc_url=None, lifespan=lifespan)
    app.include_router(build_common_router(issuer, hooks))
    app.include_router(build_acquisition_router(source, hooks))
    app.add_middleware(DisconnectWatch)

    install_problem_handlers(app)  # unknown routes (404) and methods (405 with every allowed method): problem+json

    app.state.source = source
    app.state.issuer = issuer
    issuer.sessions = source.sessions   # the hooks refuse clear pages when confidentiality is required
    return app
