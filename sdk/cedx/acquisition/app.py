"""The reference acquisition source as an ASGI app (cedx serve acquisition).

Callers present a bearer token from the source's configured list (the accounting systems it
serves), with scope acquisition:read. The source signs with its own key; its certificate chain
is published in /v1/acquisition/source and in every batch.
"""

from __future__ import annotations

import datetime as dt
import hmac
import os
from pathlib import Path

from fastapi import FastAPI

from ..generated.server import ServerHooks, build_acquisition_router
from ..instants import CST
from ..runtime.errors import Problem
from ..trust import x509 as tx
from ..trust.keys import SM2PrivateKey
from .source import Source


class SourceHooks(ServerHooks):
    def __init__(self, tokens: list[str]):
        self.tokens = [t for t in tokens if t]

    def authenticate(self, ctx) -> None:
        header = ctx.header("authorization") or ""
        if not header.lower().startswith("bearer "):
            raise Problem("TOKEN_MISSING", "send Authorization: Bearer <token>", headers={"WWW-Authenticate": "Bearer"})
        if not any(hmac.compare_digest(header[7:].strip(), t) for t in self.tokens):
            raise Problem("TOKEN_INVALID", "the token is not known to this source")


def init_source_pki(pki_dir: Path, site: str) -> None:
    pki_dir.mkdir(parents=True, exist_ok=True)
    if (pki_dir / "source.pem").exists():
        return
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=400)
    ca_key = SM2PrivateKey.generate()
    ca = tx.create_ca(ca_key, {"country_name": "CN", "common_name": f"cedx metering CA ({site})"}, not_before=start)
    key = SM2PrivateKey.generate()
    cert = tx.issue_certificate(tx.create_csr(key, {"country_name": "CN", "common_name": f"cedx source {site}"}),
                                ca, ca_key, not_before=start, days=3650)
    (pki_dir / "ca.pem").write_bytes(tx.to_pem(ca))
    (pki_dir / "source.key.pem").write_bytes(key.to_pem())
    (pki_dir / "source.key.pem").chmod(0o600)
    (pki_dir / "source.pem").write_bytes(tx.to_pem(cert))


def create_source_app(site: str | None = None, data_dir: Path | None = None, tokens: list[str] | None = None,
                      commissioned: dt.datetime | None = None, seed: str = "cedx") -> FastAPI:
    site = site or os.environ.get("CEDX_SOURCE_SITE", "power")
    data_dir = Path(data_dir or os.environ.get("CEDX_SOURCE_DIR", f"cedx-source-{site}"))
    tokens = tokens if tokens is not None else os.environ.get("CEDX_SOURCE_TOKENS", "").split(",")
    if commissioned is None:
        month = os.environ.get("CEDX_SOURCE_COMMISSIONED")
        commissioned = (dt.datetime.fromisoformat(f"{month}-01T00:00:00+08:00") if month
                        else dt.datetime.now(CST).replace(day=1, hour=0, minute=0, second=0, microsecond=0))
    init_source_pki(data_dir / "pki", site)
    key = SM2PrivateKey.from_bytes((data_dir / "pki" / "source.key.pem").read_bytes())
    chain = [tx.load_certificate((data_dir / "pki" / n).read_bytes()).dump() for n in ("source.pem", "ca.pem")]
    source = Source(site, key, chain, commissioned=commissioned, seed=seed)
    synthetic = int(os.environ.get("CEDX_SOURCE_SYNTHETIC_POINTS", "0"))  # load tests only
    if synthetic:
        source.add_synthetic_points(synthetic)
    app = FastAPI(title=f"cedx reference acquisition source ({site})", openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(build_acquisition_router(source, SourceHooks(tokens)))
    app.state.source = source
    return app
