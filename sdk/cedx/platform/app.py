"""The reference platform as an ASGI app: `cedx serve platform` or any ASGI server
(`uvicorn --factory cedx.platform.app:create_served_app`, several workers against PostgreSQL)."""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from .. import spec
from ..generated.server import build_common_router, build_reporting_router
from ..runtime.errors import OAuthError, Problem
from ..runtime.serve import tune_gc_for_serving
from ..runtime.server import (
    FORM,
    install_problem_handlers,
    oauth_error_response,
    parse_form,
    problem_response,
    read_body,
)
from .db import SqlStore
from .security import PlatformHooks, RateLimiter
from .service import Platform
from .settings import PlatformSettings, init_pki, load_pki, private_dir

TSA_QUERY_LIMIT = 4096   # an RFC 3161 query is a hash and a few fields
REVOKE_LIMIT = 8192


def create_app(settings: PlatformSettings | None = None) -> FastAPI:
    settings = settings or PlatformSettings()
    private_dir(settings.data_dir)
    init_pki(settings.pki_dir)
    pki = load_pki(settings.pki_dir)
    store = SqlStore.from_url(settings.url)
    limiter = RateLimiter(store, settings.rate_limit_per_minute, settings.auth_failures_per_minute)
    platform = Platform(store, pki, settings, limiter)
    hooks = PlatformHooks(store, pki, settings, limiter)
    app = FastAPI(title="cedx reference platform", openapi_url=None, docs_url=None, redoc_url=None)
    install_problem_handlers(app)
    app.include_router(build_common_router(platform, hooks))
    app.include_router(build_reporting_router(platform, hooks))
    app.state.platform, app.state.settings, app.state.store, app.state.hooks = platform, settings, store, hooks

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> JSONResponse:
        return JSONResponse(spec.bundled_spec())

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(resources.files("cedx.generated").joinpath("reference.html").read_text(encoding="utf-8"))

    def _limited(request: Request) -> None:
        limiter.hit(f"addr:{request.client.host if request.client else 'unknown'}")

    @app.post("/tsa", include_in_schema=False)
    async def timestamp(request: Request) -> Response:
        """RFC 3161 over HTTP: application/timestamp-query in, application/timestamp-reply out."""
        try:
            if request.headers.get("content-type", "").split(";")[0].strip() != "application/timestamp-query":
                raise Problem("UNSUPPORTED_MEDIA_TYPE", "expected application/timestamp-query")
            await run_in_threadpool(_limited, request)
            body = await read_body(request, TSA_QUERY_LIMIT)
        except Problem as problem:
            return problem_response(problem, request.url.path)
        reply = await run_in_threadpool(platform.tsa.respond, body)
        return Response(reply, media_type="application/timestamp-reply")

    @app.post("/oauth/revoke", include_in_schema=False)
    async def revoke(request: Request) -> Response:
        """RFC 7009 token revocation (announced in the signed configuration document)."""
        try:
            if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
                raise OAuthError("invalid_request", f"expected {FORM}")
            body = await read_body(request, REVOKE_LIMIT)

            def run() -> None:
                from ..runtime.server import RequestContext

                ctx = RequestContext(request=request, operation=None, format="application/json")  # type: ignore[arg-type]
                platform.revoke_token(ctx, parse_form(body))

            await run_in_threadpool(run)
        except Problem as problem:
            if problem.code == "RATE_LIMITED":
                return problem_response(problem, request.url.path)
            return oauth_error_response(OAuthError("invalid_request", problem.detail[:200]))
        except OAuthError as err:
            return oauth_error_response(err)
        return Response(b"", status_code=200, headers={"Cache-Control": "no-store"})

    @app.get("/pki/crl", include_in_schema=False)
    async def crl(request: Request) -> Response:
        """The platform CA's CRL (DER), current the moment a revocation is committed."""
        try:
            await run_in_threadpool(_limited, request)
        except Problem as problem:
            return problem_response(problem, request.url.path)
        der = await run_in_threadpool(platform.crl)
        return Response(der, media_type="application/pkix-crl", headers={"Cache-Control": "no-cache"})

    @app.get("/health", include_in_schema=False)
    def health() -> Response:
        return Response("ok", media_type="text/plain")

    return app


def create_served_app() -> FastAPI:
    """The app for a server process of its own (each worker calls this factory): ``create_app``
    with the process's collector tuned for serving."""
    app = create_app()
    tune_gc_for_serving()
    return app
