"""The reference platform as an ASGI app: `cedx serve platform` or any ASGI server
(`uvicorn --factory cedx.platform.app:create_app`, several workers against PostgreSQL)."""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from .. import spec
from ..generated.server import build_common_router, build_reporting_router
from .db import make_engine, make_sessions
from .security import PlatformHooks
from .service import Platform
from .settings import PlatformSettings, init_pki, load_pki


def create_app(settings: PlatformSettings | None = None) -> FastAPI:
    settings = settings or PlatformSettings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    init_pki(settings.pki_dir)
    pki = load_pki(settings.pki_dir)
    sessions = make_sessions(make_engine(settings.url))
    platform = Platform(sessions, pki, settings)
    hooks = PlatformHooks(sessions, pki, settings)
    app = FastAPI(title="cedx reference platform", openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(build_common_router(platform, hooks))
    app.include_router(build_reporting_router(platform, hooks))
    app.state.platform, app.state.settings, app.state.sessions = platform, settings, sessions

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> JSONResponse:
        return JSONResponse(spec.bundled_spec())

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(resources.files("cedx.generated").joinpath("reference.html").read_text(encoding="utf-8"))

    @app.post("/tsa", include_in_schema=False)
    async def timestamp(request: Request) -> Response:
        """RFC 3161 over HTTP: application/timestamp-query in, application/timestamp-reply out."""
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/timestamp-query":
            return Response("expected application/timestamp-query", status_code=415, media_type="text/plain")
        body = await request.body()
        if len(body) > 4096:
            return Response("time-stamp request too large", status_code=413, media_type="text/plain")
        return Response(platform.tsa.respond(body), media_type="application/timestamp-reply")

    @app.get("/health", include_in_schema=False)
    def health() -> Response:
        return Response("ok", media_type="text/plain")

    return app
