"""The server runtime the generated routers build on (FastAPI / Starlette).

For every request: content negotiation (406) and content type (415), body size (413), hardened
JSON/XML parsing (400), spec validation with field paths and rule IDs (422), the hooks an
implementation plugs in (authentication, request signatures, document signatures, rate limits),
then the implementer's service method in a worker thread, and the answer in the negotiated
format. Every failure is problem+json with a code from the spec's error-code table.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from .. import spec
from ..spec.xmlcodec import XmlError
from .errors import OAuthError, Problem, ProblemItem
from .operations import OperationInfo

log = logging.getLogger("cedx.server")
JSON, XML, PROBLEM = "application/json", "application/xml", "application/problem+json"
FORM = "application/x-www-form-urlencoded"  # RFC 6749 token requests: errors in RFC 6749 form
DEFAULT_MAX_BODY = 10 * 1024 * 1024


@dataclass
class Reply:
    """A service result with a status or headers other than the operation's defaults."""

    body: Any
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class RequestContext:
    request: Request
    operation: OperationInfo
    format: str
    raw_body: bytes = b""
    principal: Any = None                 # set by ServerHooks.authenticate
    record: Any = None                    # the parsed logical body
    response_headers: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)


class ServerHooks:
    """Override to plug in authentication, signatures and limits. Defaults accept everything."""

    max_body_bytes = DEFAULT_MAX_BODY

    def authenticate(self, ctx: RequestContext) -> None:
        """Set ctx.principal or raise Problem (TOKEN_MISSING, SCOPE_INSUFFICIENT, ...)."""

    def verify_request_signature(self, ctx: RequestContext) -> None:
        """Check the X-Cedx-* headers when the operation requires them; raise Problem."""

    def verify_document(self, ctx: RequestContext, record: dict) -> None:
        """Verify a signed request document (x-cedx-signed); raise Problem(SIGNATURE_INVALID)."""

    def rate_limit(self, ctx: RequestContext) -> None:
        """Raise Problem(RATE_LIMITED, headers={"Retry-After": ...}) and set RateLimit-* headers."""


def _media(value: str) -> str:
    return value.split(";")[0].strip().lower()


def negotiate(accept: str | None, offered: tuple[str, ...]) -> str | None:
    """Pick a media type from Accept (q-values honoured; */* and application/* accepted)."""
    if not offered:
        return JSON
    if not accept:
        return offered[0]
    choices = []
    for i, part in enumerate(accept.split(",")):
        bits = [b.strip() for b in part.split(";")]
        q = 1.0
        for b in bits[1:]:
            if b.startswith("q="):
                try:
                    q = float(b[2:])
                except ValueError:
                    q = 0.0
        choices.append((q, -i, bits[0].lower()))
    for q, _, media in sorted(choices, reverse=True):
        if q <= 0:
            continue
        if media in ("*/*", "application/*"):
            return offered[0]
        if media in offered:
            return media
        if media == PROBLEM:
            continue
    return None


def problem_response(problem: Problem, instance: str = "", package: str = spec.BUNDLE_PACKAGE) -> Response:
    index = spec.context(package).index
    table = index.error_codes
    entry = table.get(problem.code, {"status": problem.status or 500, "zh": problem.code, "en": problem.code})
    status = problem.status or entry["status"]
    body = {
        "specVersion": index.spec_version,
        "type": f"https://cedx.example.cn/problems/{problem.code.lower().replace('_', '-')}",
        "title": f"{entry['zh']} / {entry['en']}",
        "status": status,
        "code": problem.code,
    }
    if problem.detail:
        body["detail"] = problem.detail[:2000]
    if instance:
        body["instance"] = instance[:300]
    if problem.errors:
        body["errors"] = [
            {k: v for k, v in (("path", e.path), ("rule", e.rule), ("code", e.code), ("message", e.message[:1000])) if v}
            for e in problem.errors[:100]
        ]
    headers = dict(problem.headers)
    return Response(json.dumps(body, ensure_ascii=False), status_code=status,
                    media_type=PROBLEM, headers=headers)


def encode(record: Any, schema: str | None, fmt: str, package: str = spec.BUNDLE_PACKAGE) -> bytes:
    if fmt == XML and schema:
        return spec.context(package).xml_codec.dumps(schema, record, pretty=False)
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _record(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    return value


def _issues_problem(issues, package: str) -> Problem:
    items = list(issues)
    schema_level = {r["id"] for r in spec.context(package).index.rules if r.get("kind") == "schema"}
    is_schema = any(i.code.startswith("SCHEMA-") or i.code in schema_level for i in issues)
    code = "SCHEMA_VIOLATION" if is_schema else "RULE_VIOLATION"
    return Problem(code, f"{len(items)} problem(s) in the document", items)


def _coerce_param(value: str, wire: str, kind: str) -> Any:
    if kind == "integer":
        try:
            return int(value)
        except ValueError:
            raise Problem("INVALID_PARAMETER", f"parameter {wire} must be an integer") from None
    return value


async def handle(request: Request, op: OperationInfo, method, hooks: ServerHooks,
                 params: dict[str, tuple], body_model=None) -> Response:
    """Run one operation. ``params``: python name → (wire name, location, schema ref, kind,
    required); ``body_model`` builds the typed body the service method receives."""
    instance = request.url.path
    try:
        fmt = negotiate(request.headers.get("accept"), op.response_media or (JSON,))
        if fmt is None:
            raise Problem("NOT_ACCEPTABLE", f"available: {', '.join(op.response_media)}")
        ctx = RequestContext(request=request, operation=op, format=fmt)
        hooks.rate_limit(ctx)
        hooks.authenticate(ctx)
        kwargs = _read_params(request, params, op.spec_package)
        if op.body_schema:
            ctx.raw_body = await _read_body(request, hooks.max_body_bytes)
        if op.request_signature == "required" or request.headers.get("x-cedx-signature"):
            hooks.verify_request_signature(ctx)
        if op.body_schema:
            record = _parse_body(request, op, ctx.raw_body)
            issues = spec.context(op.spec_package).validator.validate(op.body_schema, record)
            if issues and op.body_media == (FORM,):
                # Field and rule only: a message may quote the value, and the value may be a secret.
                raise OAuthError("invalid_request", "; ".join(f"{i.path}: {i.code}" for i in issues[:5]))
            if issues:
                raise _issues_problem(issues, op.spec_package)
            ctx.record = record
            if op.signed_request:
                hooks.verify_document(ctx, record)
            kwargs["body"] = body_model(record) if body_model else record
        result = await run_in_threadpool(method, ctx, **kwargs)
        if isinstance(result, Response):  # the service streams its own body, already encoded
            result.headers.update(ctx.response_headers)
            return result
        reply = result if isinstance(result, Reply) else Reply(result)
        record = _record(reply.body)
        headers = {**ctx.response_headers, **reply.headers}
        return Response(encode(record, op.response_schema, fmt, op.spec_package), status_code=reply.status or op.success_status,
                        media_type=f"{fmt}; charset=utf-8", headers=headers)
    except OAuthError as err:
        body = {"error": err.error, **({"error_description": err.description[:500]} if err.description else {})}
        headers = {"Cache-Control": "no-store"}
        if err.status == 401:
            headers["WWW-Authenticate"] = "Basic"
        return Response(json.dumps(body), status_code=err.status, media_type=JSON, headers=headers)
    except Problem as problem:
        if op.body_media == (FORM,) and problem.code in ("MALFORMED_BODY", "UNSUPPORTED_MEDIA_TYPE"):
            return Response(json.dumps({"error": "invalid_request", "error_description": problem.detail}),
                            status_code=400, media_type=JSON, headers={"Cache-Control": "no-store"})
        return problem_response(problem, instance, op.spec_package)
    except Exception:  # a server fault, never the client's: log it, answer 500 without details
        log.exception("%s %s failed", op.method, instance)
        return problem_response(Problem("INTERNAL_ERROR", "the server failed to process the request"),
                                instance, op.spec_package)


def _read_params(request: Request, params, package: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    validator = spec.context(package).validator
    for python_name, (wire, location, ref, kind, required, inline) in params.items():
        if location == "path":
            raw = request.path_params.get(wire)
        elif location == "query":
            raw = request.query_params.get(wire)
        else:
            raw = request.headers.get(wire)
        if raw is None:
            if required:
                code = "IDEMPOTENCY_KEY_REQUIRED" if wire == "Idempotency-Key" else "INVALID_PARAMETER"
                raise Problem(code, f"{location} parameter {wire} is required")
            out[python_name] = None
            continue
        value = _coerce_param(raw, wire, kind)
        issues = validator.schema_issues(ref, value) if ref else _inline_issues(inline, value)
        if issues:
            raise Problem("NOT_FOUND" if location == "path" else "INVALID_PARAMETER",
                          f"{location} parameter {wire}: {issues[0].message}",
                          [ProblemItem(f"{location}.{wire}", i.code, i.message, i.rule) for i in issues])
        out[python_name] = value
    return out


def _inline_issues(schema: dict | None, value: Any) -> list:
    if not schema:
        return []
    from jsonschema import Draft202012Validator

    return [ProblemItem("$", f"SCHEMA-{str(e.validator).upper()}", e.message)
            for e in Draft202012Validator(schema).iter_errors(value)]


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Problem("PAYLOAD_TOO_LARGE", f"the body has {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem("PAYLOAD_TOO_LARGE", f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_body(request: Request, op: OperationInfo, raw: bytes) -> Any:
    ctype = _media(request.headers.get("content-type", ""))
    if ctype not in op.body_media:
        raise Problem("UNSUPPORTED_MEDIA_TYPE",
                      f"Content-Type {ctype or '(none)'} is not one of {', '.join(op.body_media)}")
    if ctype == FORM:
        from urllib.parse import parse_qsl

        try:
            return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw)))
        except (UnicodeDecodeError, ValueError) as exc:
            raise Problem("MALFORMED_BODY", f"the form body cannot be read: {exc}") from exc
    if ctype == XML:
        try:
            _, record = spec.context(op.spec_package).xml_codec.loads(raw, op.body_schema)
        except XmlError as exc:
            status = {"MALFORMED_BODY": 400, "XML_FORBIDDEN_CONSTRUCT": 400, "PAYLOAD_TOO_LARGE": 413}.get(exc.code, 422)
            code = exc.code if exc.code != "SCHEMA_VIOLATION" else "SCHEMA_VIOLATION"
            raise Problem(code, str(exc), [ProblemItem(exc.path, exc.code, str(exc))], status) from exc
        return record
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Problem("MALFORMED_BODY", f"the body is not well-formed JSON: {exc}") from exc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")

