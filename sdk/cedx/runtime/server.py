"""The server runtime the generated routers build on (FastAPI / Starlette).

For every request: content negotiation (406, and 400 for a malformed Accept), authentication
then the rate limit (keyed on who was authenticated), parameters (400), the body read with a
streaming size limit (413), hardened JSON/XML parsing (400: depth, duplicate keys and other
non-I-JSON input), spec validation with field paths and rule IDs (422), request and document
signatures, the implementer's service method, and the answer in the negotiated format. All
blocking and CPU-heavy work (hooks, parsing, validation, verification, the service) runs in
worker threads, never on the event loop. Every failure is problem+json with a code from the
spec's error-code table; `install_problem_handlers` gives unknown routes (404) and methods
(405, with a correct Allow header) the same form.

A service method decorated with `as_received` gets the body as the validated record exactly as
received (a dict) instead of the generated model: for implementations that store documents as
they came (signed documents must be), so no model is built and turned back into a dict.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote_plus

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from .. import spec
from ..spec.xmlcodec import XmlError
from .errors import OAuthError, Problem, ProblemItem
from .operations import OperationInfo

try:  # the `server` extra: parses bodies several times faster (see _fast_parse)
    import orjson as _orjson
except ImportError:  # pragma: no cover - the standard library's parser alone gives the same answers
    _orjson = None  # type: ignore[assignment]

log = logging.getLogger("cedx.server")
JSON, XML, PROBLEM = "application/json", "application/xml", "application/problem+json"
FORM = "application/x-www-form-urlencoded"  # RFC 6749 token requests: errors in RFC 6749 form
DEFAULT_MAX_BODY = 10 * 1024 * 1024
MAX_JSON_DEPTH = 64          # nesting of arrays and objects; the spec's documents need about 8
MAX_OAUTH_DESCRIPTION = 500  # OAuthError.error_description maxLength in the spec

F = TypeVar("F")


def as_received(method: F) -> F:
    """Mark a service method that takes the body as the validated record (dict) as received."""
    method.__cedx_as_received__ = True  # type: ignore[attr-defined]
    return method


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
    body_format: str | None = None        # media type of the body received (JSON, XML, FORM)
    principal: Any = None                 # set by ServerHooks.authenticate
    record: Any = None                    # the parsed logical body
    encoded: Any = None                   # what the JSON parser proved about it (trust.canonical.EncodedRecord)
    body_digests: Any = None              # SM3 of raw_body with its prefix states (trust.sm3.PrefixDigests)
    verified: Any = None                  # what ServerHooks.verify_document found, for the service
    response_headers: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)


class ServerHooks:
    """Override to plug in authentication, signatures and limits. Defaults accept everything.
    Called in this order, in a worker thread: authenticate, rate_limit (so that the limit can be
    keyed on the authenticated client), verify_request_signature, verify_document."""

    max_body_bytes = DEFAULT_MAX_BODY

    def authenticate(self, ctx: RequestContext) -> None:
        """Set ctx.principal or raise Problem (TOKEN_MISSING, SCOPE_INSUFFICIENT, ...)."""

    def verify_request_signature(self, ctx: RequestContext) -> None:
        """Check the X-Cedx-* headers when the operation requires them; raise Problem."""

    def verify_document(self, ctx: RequestContext, record: dict[str, Any]) -> None:
        """Verify a signed request document (x-cedx-signed); raise Problem(SIGNATURE_INVALID)."""

    def rate_limit(self, ctx: RequestContext) -> None:
        """Raise Problem(RATE_LIMITED, headers={"Retry-After": ...}) and set RateLimit-* headers."""


_QVALUE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")
_INTEGER = re.compile(r"-?[0-9]{1,18}")


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
        if not bits[0]:
            continue
        q = 1.0
        for b in bits[1:]:
            if b[:2].lower() == "q=":
                if not _QVALUE.fullmatch(b[2:]):
                    raise Problem("INVALID_PARAMETER", "header Accept: a q-value is 0 to 1 with at most three "
                                  "decimals (RFC 9110 §12.4.2)", [ProblemItem("header.Accept", "RFC9110-QVALUE",
                                                                              "malformed q-value")])
                q = float(b[2:])
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


def _issues_problem(issues: list[Any], package: str) -> Problem:
    items = list(issues)
    schema_level = {r["id"] for r in spec.context(package).index.rules if r.get("kind") == "schema"}
    is_schema = any(i.code.startswith("SCHEMA-") or i.code in schema_level for i in issues)
    code = "SCHEMA_VIOLATION" if is_schema else "RULE_VIOLATION"
    return Problem(code, f"{len(items)} problem(s) in the document", items)


def _coerce_param(value: str, wire: str, kind: str) -> Any:
    if kind == "integer":
        # Decimal digits only: int() would also take " 5", "5_0" and other scripts' digits.
        if not _INTEGER.fullmatch(value):
            raise Problem("INVALID_PARAMETER", f"parameter {wire} must be a decimal integer (digits only, no spaces)",
                          [ProblemItem(f"query.{wire}", "SCHEMA-TYPE", "not a decimal integer")])
        return int(value)
    return value


async def handle(request: Request, op: OperationInfo, method: Callable[..., Any], hooks: ServerHooks,
                 params: dict[str, tuple[Any, ...]], body_model: Callable[[Any], Any] | None = None) -> Response:
    """Run one operation. ``params``: python name → (wire name, location, schema ref, kind,
    required); ``body_model`` builds the typed body the service method receives (unless the
    method is marked `as_received`)."""
    instance = request.url.path
    try:
        if not op.body_schema:  # one worker-thread hop
            return await run_in_threadpool(_admit_and_run, request, op, method, hooks, params, None, None)
        if _declared_length(request) <= EARLY_BODY_BYTES:
            # A small body has come with the headers (or will at once): read it first and make
            # one worker-thread hop instead of two (issue 14); it is parsed only after admission.
            raw = await read_body(request, hooks.max_body_bytes)
            return await run_in_threadpool(_admit_and_run, request, op, method, hooks, params, raw, body_model)
        ctx, kwargs = await run_in_threadpool(_admit, request, op, hooks, params)
        # Only after authentication: nobody unauthenticated makes the server buffer a large body.
        ctx.raw_body = await read_body(request, hooks.max_body_bytes)
        return await run_in_threadpool(_run, ctx, op, method, hooks, kwargs, body_model)
    except OAuthError as err:
        return oauth_error_response(err)
    except Problem as problem:
        if op.body_media == (FORM,) and problem.code in ("MALFORMED_BODY", "UNSUPPORTED_MEDIA_TYPE", "PAYLOAD_TOO_LARGE"):
            return oauth_error_response(OAuthError("invalid_request", problem.detail.split(":")[0]))
        return problem_response(problem, instance, op.spec_package)
    except Exception:  # a server fault, never the client's: log it, answer 500 without details
        log.exception("%s %s failed", op.method, instance)
        return problem_response(Problem("INTERNAL_ERROR", "the server failed to process the request"),
                                instance, op.spec_package)


def _admit(request: Request, op: OperationInfo, hooks: ServerHooks,
           params: dict[str, tuple[Any, ...]]) -> tuple[RequestContext, dict[str, Any]]:
    fmt = negotiate(request.headers.get("accept"), op.response_media or (JSON,))
    if fmt is None:
        raise Problem("NOT_ACCEPTABLE", f"available: {', '.join(op.response_media)}")
    ctx = RequestContext(request=request, operation=op, format=fmt)
    hooks.authenticate(ctx)
    hooks.rate_limit(ctx)
    return ctx, _read_params(request, params, op.spec_package)


def _admit_and_run(request: Request, op: OperationInfo, method: Callable[..., Any], hooks: ServerHooks,
                   params: dict[str, tuple[Any, ...]], raw_body: bytes | None,
                   body_model: Callable[[Any], Any] | None) -> Response:
    ctx, kwargs = _admit(request, op, hooks, params)
    if raw_body is not None:
        ctx.raw_body = raw_body
    return _run(ctx, op, method, hooks, kwargs, body_model)


def _declared_length(request: Request) -> int:
    """Content-Length, or a value above every threshold when absent (chunked) or malformed."""
    declared = request.headers.get("content-length", "")
    return int(declared) if declared.isascii() and declared.isdigit() else 1 << 62  # not '²'


def _run(ctx: RequestContext, op: OperationInfo, method: Callable[..., Any], hooks: ServerHooks, kwargs: dict[str, Any],
         body_model: Callable[[Any], Any] | None) -> Response:
    request = ctx.request
    if op.request_signature == "required" or request.headers.get("x-cedx-signature"):
        hooks.verify_request_signature(ctx)
    if op.body_schema:
        ctx.body_format = _media(request.headers.get("content-type", ""))
        if op.signed_request and ctx.body_format == JSON and JSON in op.body_media:
            # a signed document: the parser's proof spares its verification a type scan and
            # a second encoding (trust.verify_document's ``encoded``)
            record, ctx.encoded = parse_json_encoded(ctx.raw_body)
        else:
            record = _parse_body(request, op, ctx.raw_body)
        issues = spec.context(op.spec_package).validator.validate(op.body_schema, record)
        if issues and op.body_media == (FORM,):
            # Paths and rule codes only: a message could quote the submitted value (a secret).
            raise OAuthError("invalid_request", "; ".join(f"{i.path} ({i.code})" for i in issues[:5]))
        if issues:
            raise _issues_problem(issues, op.spec_package)
        ctx.record = record
        if op.signed_request:
            hooks.verify_document(ctx, record)
        as_is = body_model is None or getattr(method, "__cedx_as_received__", False)
        kwargs["body"] = record if as_is or body_model is None else body_model(record)
    result = method(ctx, **kwargs)
    if isinstance(result, Response):  # the service streams its own body, already encoded
        result.headers.update(ctx.response_headers)
        return result
    reply = result if isinstance(result, Reply) else Reply(result)
    record = _record(reply.body)
    headers = {**ctx.response_headers, **reply.headers}
    return Response(encode(record, op.response_schema, ctx.format, op.spec_package),
                    status_code=reply.status or op.success_status,
                    media_type=f"{ctx.format}; charset=utf-8", headers=headers)


def oauth_error_response(err: OAuthError) -> Response:
    """RFC 6749 §5.2: {error, error_description}; the description bounded by the spec's limit."""
    body = {"error": err.error}
    if err.description:
        body["error_description"] = err.description[:MAX_OAUTH_DESCRIPTION]
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache", **err.headers}
    if err.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="token", charset="UTF-8"'
    return Response(json.dumps(body), status_code=err.status, media_type=JSON, headers=headers)


def client_credentials(ctx: RequestContext, form: dict[str, Any]) -> tuple[str, str]:
    """The client's ID and secret from HTTP Basic (RFC 6749 §2.3.1: each form-urlencoded, then
    base64) or from the form body, never both; OAuthError otherwise."""
    header = ctx.header("authorization") or ""
    in_form = "client_id" in form or "client_secret" in form
    if header[:6].lower() == "basic ":
        if in_form:
            raise OAuthError("invalid_request", "send client credentials either in HTTP Basic or in the form, not both")
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
            client_id, secret = decoded.split(":", 1)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise OAuthError("invalid_client", "malformed HTTP Basic credentials", 401) from None
        return unquote_plus(client_id), unquote_plus(secret)
    form_id, form_secret = form.get("client_id"), form.get("client_secret")
    if not form_id or not form_secret:
        raise OAuthError("invalid_client", "client authentication is required (HTTP Basic or client_id and client_secret)",
                         401)
    return str(form_id), str(form_secret)


def allowed_methods(app: Any, scope: Mapping[str, Any]) -> list[str]:
    """Every method some route serves at this path (for 405's Allow header)."""
    methods: set[str] = set()
    scope = {**scope, "type": "http"}

    def walk(routes: Any, path: str) -> None:
        for route in routes:
            included = getattr(route, "original_router", None)  # FastAPI ≥ 0.16x nests included routers
            if included is not None:
                prefix = getattr(getattr(route, "include_context", None), "prefix", "") or ""
                if path.startswith(prefix):
                    walk(included.routes, path[len(prefix):])
                continue
            if hasattr(route, "routes") and not hasattr(route, "methods"):
                walk(route.routes, path)
                continue
            match, _ = route.matches({**scope, "path": path})
            if match in (Match.FULL, Match.PARTIAL):
                methods.update(getattr(route, "methods", None) or ())

    walk(getattr(app, "routes", []), scope["path"])
    return sorted(methods)


def install_problem_handlers(app: Any, package: str = spec.BUNDLE_PACKAGE) -> None:
    """Unknown routes (404), unsupported methods (405 with Allow) and any other HTTP error the
    framework raises answer problem+json like every other failure."""

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        path = request.url.path
        if status == 405:
            allow = ", ".join(allowed_methods(request.app, request.scope))
            return problem_response(Problem("METHOD_NOT_ALLOWED", f"{request.method} is not supported here; allowed: "
                                            f"{allow}", headers={"Allow": allow}), path, package)
        if status == 404:
            return problem_response(Problem("NOT_FOUND", "no resource at this address"), path, package)
        code = {400: "MALFORMED_BODY", 413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE"}.get(status, "INTERNAL_ERROR")
        return problem_response(Problem(code, "", status=status if status < 500 else 500), path, package)

    app.add_exception_handler(HTTPException, http_error)


def _read_params(request: Request, params: dict[str, tuple[Any, ...]], package: str) -> dict[str, Any]:
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


def _inline_issues(schema: dict[str, Any] | None, value: Any) -> list[Any]:
    if not schema:
        return []
    from jsonschema import Draft202012Validator

    return [ProblemItem("$", f"SCHEMA-{str(e.validator).upper()}", e.message)
            for e in Draft202012Validator(schema).iter_errors(value)]


#: Bodies announced at most this long are read before admission (see ``handle``): about what a
#: server buffers for request headers anyway, so an unauthenticated client gains nothing.
EARLY_BODY_BYTES = 64 * 1024


async def read_body(request: Request, limit: int) -> bytes:
    """The body, read chunk by chunk and refused (413) as soon as it passes ``limit`` — whether
    Content-Length announced it or it arrives chunked. Every route that reads a body uses this."""
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
        return parse_form(raw)
    if ctype == XML:
        try:
            _, record = spec.context(op.spec_package).xml_codec.loads(raw, op.body_schema)
        except XmlError as exc:
            status = {"MALFORMED_BODY": 400, "XML_FORBIDDEN_CONSTRUCT": 400, "PAYLOAD_TOO_LARGE": 413}.get(exc.code, 422)
            code = exc.code if exc.code != "SCHEMA_VIOLATION" else "SCHEMA_VIOLATION"
            raise Problem(code, str(exc), [ProblemItem(exc.path, exc.code, str(exc))], status) from exc
        except (RecursionError, ValueError, TypeError, KeyError, IndexError) as exc:
            log.info("XML body refused: %r", exc)
            raise Problem("MALFORMED_BODY", "the XML body cannot be read") from None
        return record
    return parse_json(raw)


def parse_form(raw: bytes) -> dict[str, str]:
    """application/x-www-form-urlencoded; a repeated field is refused (RFC 6749 §3.2)."""
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError):
        # The parser's message would quote the body (it may hold a secret).
        raise Problem("MALFORMED_BODY", "the form body cannot be read as UTF-8 application/x-www-form-urlencoded") from None
    form = dict(pairs)
    if len(form) != len(pairs):
        raise Problem("MALFORMED_BODY", "a form field is repeated")
    return form


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_NOT_MARKS = bytes(b for b in range(256) if b not in b'[]{}"')
_ONE_BRACKET = bytes.maketrans(b"{}", b"[]")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_MAX_SAFE_INTEGER = 2**53 - 1
# Characters XML 1.0 cannot carry, escaped in JSON, or raw U+FFFE/U+FFFF (raw control characters
# are already invalid JSON; these two noncharacters are not): refused, so that every accepted
# document can be answered in both formats.
# (a prefilter: an escaped backslash before "b" or "u0008" matches too, and only costs the exact
# look at the decoded strings)
_RAW_NONCHARACTER = re.compile(rb"\xef\xbf[\xbe\xbf]")  # U+FFFE, U+FFFF in UTF-8
_NON_XML_ESCAPE = re.compile(rb"\\u(00(0[0-8bBcCeEfF]|1[0-9a-fA-F])|[fF]{3}[eEfF])|\\[bf]|" + _RAW_NONCHARACTER.pattern)
_NON_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# the two escape prefilters in one pass beginning with a backslash (the fast path looks for raw
# noncharacters on its own): an escaped surrogate or a character XML cannot carry
_LEFT_ESCAPE = re.compile(rb"\\(?:u(?:00(?:0[0-8bBcCeEfF]|1[0-9a-fA-F])|[fF]{3}[eEfF]|[dD][89a-fA-F])|[bf])")


def _non_xml_path(value: Any, path: str = "$") -> str | None:
    """The JSON path of the first key or string holding a character XML 1.0 cannot carry."""
    stack = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str):
            if _NON_XML_CHAR.search(node):
                return where
        elif isinstance(node, dict):
            for k, v in node.items():
                if _NON_XML_CHAR.search(k):
                    return where
                stack.append((v, f"{where}.{k}"))
        elif isinstance(node, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(node))
    return None


def _outside_strings(raw: bytes) -> bytes:
    """The bytes of a well-formed JSON text that lie outside its strings (quotes removed).

    In well-formed JSON a backslash occurs only inside a string and starts a two-character
    escape, so removing the escapes ``\\\\`` then ``\\"`` left to right pairs backslashes exactly
    as a parser does; every remaining quote then delimits a string, and the even pieces
    between quotes are what is outside. Only C-speed bytes operations (on malformed input
    the result is meaningless, which is fine: see ``_fast_parse``)."""
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    return b"".join(raw.split(b'"')[::2])


def _nests_deeper(shape: bytes, limit: int) -> bool:
    depth = 0
    for b in shape.translate(None, _NOT_BRACKETS):
        if b in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _plain_nests_deeper(raw: bytes, limit: int) -> bool:
    """Whether a well-formed JSON text without any backslash nests deeper than ``limit``.

    Without a backslash every quote delimits a string. Of the text only brackets (``{}`` read
    as ``[]``) and quotes are kept. Removing two adjacent quotes either drops a string with no
    bracket inside or joins two strings with nothing between them, so quotes still alternate
    opening and closing and no bracket changes side; what is left (few quotes: field paths
    such as ``units[0]``) is split at the quotes and its even pieces are the brackets outside
    strings. Each removal of every ``[]`` then takes away exactly the containers with nothing
    left inside (``replace`` does not rescan what it joined), so the text is empty after
    ``limit`` rounds exactly when no container nests deeper than ``limit``. C-speed bytes
    operations only: no re-encoding of the body and no Python step per bracket."""
    marks = raw.translate(_ONE_BRACKET, _NOT_MARKS).replace(b'""', b"")
    if b'"' in marks:
        marks = b"".join(marks.split(b'"')[::2])
    for _ in range(limit):
        if not marks:
            return False
        marks = marks.replace(b"[]", b"")
    return bool(marks)


def json_depth_exceeds(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when arrays/objects nest deeper than ``limit`` — decided before parsing, so no
    recursion ever starts; brackets inside strings do not count."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    return _nests_deeper(_JSON_STRING.sub(b"", raw), limit)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise ValueError(f"duplicate object key {json.dumps(dup[:64], ensure_ascii=True)} (RFC 7493 §2.3)")
    return obj


def _integer(text: str) -> int:
    value = int(text)
    if abs(value) > _MAX_SAFE_INTEGER:
        raise ValueError("an integer beyond ±(2^53−1) cannot be exchanged exactly (RFC 7493 §2.2); send a decimal string")
    return value


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError("a number beyond the IEEE 754 double range (RFC 7493 §2.2)")
    return value


def parse_json(raw: bytes) -> Any:
    """I-JSON (RFC 7493): UTF-8, no duplicate keys, no lone surrogates, numbers within IEEE
    754 double precision, no NaN/Infinity; nesting at most MAX_JSON_DEPTH. Every failure is a
    400 MALFORMED_BODY, never a parser exception reaching a 500.

    A body that passes ``_fast_parse`` (orjson, when installed) is returned from there; every
    other body, and every refusal, goes through the standard library's parser below, so the
    answers and their messages are those of one implementation."""
    if _orjson is not None:
        value = _fast_parse(raw)
        if value is not _UNDECIDED:
            return value
    return _parse_json_exact(raw)


def parse_json_encoded(raw: bytes) -> tuple[Any, Any]:
    """``parse_json`` (the same answers and refusals), and, when the fast path can prove it,
    the record's RFC 8785 bytes before instant rewriting (``EncodedRecord``: only JSON types,
    integers within I-JSON, no floats, no member name above U+FFFF), for the verification of a
    signed document."""
    if _orjson is not None:
        found = _fast_parse(raw, encoded=True)
        if found is not _UNDECIDED:
            value, encoding = found
            if encoding is None:
                return value, None
            # imported late: serving requests that carry no signed document needs no trust layer
            from ..trust.canonical import EncodedRecord

            return value, EncodedRecord(value, encoding)
    return _parse_json_exact(raw), None


_UNDECIDED = object()
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
# In compact JSON every number follows '":' (a member's value) or '[' or ',' (an array item).
# With digits and '-' read as '0' and '[' and ',' as ':', a number with a fraction or an
# exponent is ':0+[.eE]'; so is an instant's seconds ("10:30:00.5"), but there the colon
# follows a digit, never the quote that ends a member name. (Written ':00*': the search then
# skips on the two-byte prefix ':0' instead of stopping at every comma and colon.)
_NUMBER_MARKS = bytes.maketrans(b"-0123456789[,", b"00000000000::")
_FLOAT_TOKEN = re.compile(rb":00*[.eE]")
# two adjacent members with scalar values: a cheap look at a body's first members (_looks_sorted)
_MEMBER_PAIR = re.compile(rb'"([^"\\]*)":(?:"[^"\\]*"|[^"{}\[\],]*),"([^"\\]*)":')
_SHORT_ESCAPES = frozenset(b'"\\/nrt')  # \b and \f: characters XML cannot carry
_HEX4 = re.compile(rb"[0-9a-fA-F]{4}")
_INDENTED = (b'{\n  "', b"[\n  ")
# '.' and '-' written as escapes of themselves: the same strings, but a number holding one (a
# fraction, an exponent's sign, a minus) is no longer JSON; '+' likewise, see _exponent_plus
_AS_ESCAPES = ((b".", b"\\u002e"), (b"-", b"\\u002d"))
_COLON, _QUOTE = ord(":"), ord('"')
_ABOVE_BMP = (b"\xf0", b"\xf1", b"\xf2", b"\xf3", b"\xf4")  # lead bytes of 4-byte UTF-8


_wrap: int | None = None


def _depth_wrap() -> int:
    """How many arrays to wrap a record in so that orjson refuses to encode it exactly when it
    nests deeper than MAX_JSON_DEPTH, or 0 (then the nesting is checked on the bytes). orjson
    writes at most a fixed number of nested containers (254 in orjson 3) and raises beyond;
    that limit is measured here once, on first use, rather than assumed."""
    global _wrap
    if _wrap is None:
        value: Any = []
        limit = 0
        for depth in range(1, 4097):
            try:
                _orjson.dumps(value)
            except _orjson.JSONEncodeError:
                limit = depth - 1
                break
            value = [value]
        _wrap = limit - MAX_JSON_DEPTH if limit > MAX_JSON_DEPTH else 0
    return _wrap


_signed: bool | None = None


def _floats_signed() -> bool:
    """Whether orjson writes every float with a '.', '+' or '-' (a fraction or a signed
    exponent: 1.0, 1e+16, 1e-7); older orjson writes 1e16. Measured once, on first use,
    over floats of every magnitude, rather than assumed: the writer's style is one for all values."""
    global _signed
    if _signed is None:
        floats = [0.0, -0.0, 5e-324, 1.7976931348623157e308] + [10.0**e for e in range(-323, 309)]
        floats += [2.0**e for e in range(-1074, 1024)] + [1.5 * 10.0**e for e in range(-320, 308)]
        _signed = all(b"." in t or b"+" in t or b"-" in t for t in _orjson.dumps(floats)[1:-1].split(b","))
    return _signed


def _exponent_plus(raw: bytes) -> bool:
    """Whether a '+' in the body may be an exponent's sign (follows 'e' or 'E'). '+' is rare
    (an instant's offset, base64), so each is found by memchr; past 64, assume so. Sparing the
    escaped reading (_fast_parse) a third copy of the body."""
    i = raw.find(b"+")
    for _ in range(64):
        if i < 0:
            return False
        if raw[i - 1:i] in (b"e", b"E"):
            return True
        i = raw.find(b"+", i + 1)
    return i >= 0


def _looks_sorted(raw: bytes) -> bool:
    """Whether the first two pairs of adjacent members in a body's first 4 KiB are in code
    point order, as in orjson's sorted encoding (UTF-8 byte order is code point order). Only a
    guess at whether the escaped reading can pay off (_fast_parse); either answer is safe."""
    for n, pair in enumerate(_MEMBER_PAIR.finditer(raw, 0, 4096)):
        if n == 2 or pair[1] >= pair[2]:
            return n == 2
    return True


def _raw_noncharacter(raw: bytes) -> bool:
    """Whether a body holds U+FFFE or U+FFFF raw (EF BF BE, EF BF BF). Their middle byte 0xBF
    is rare even in Chinese text (about one character in 32 holds one), so each is found by
    memchr and its neighbours looked at; where they have come more often than one per KiB the
    regex takes the rest (its byte-by-byte scan is then the cheaper)."""
    i = raw.find(b"\xbf")
    steps = 0
    while i >= 0:
        steps += 1
        if steps > 16 + i // 1024:
            return _RAW_NONCHARACTER.search(raw, i - 1) is not None
        if raw[i - 1:i] == b"\xef" and raw[i + 1:i + 2] in (b"\xbe", b"\xbf"):
            return True
        i = raw.find(b"\xbf", i + 1)
    return False


def _escapes(raw: bytes) -> int | None:
    """Walks a JSON text's escapes as a parser pairs them (left to right from the first
    backslash; outside a string a backslash is malformed anyway). None when one is left to the
    exact path: not a JSON escape, an escaped surrogate, or a character XML 1.0 cannot carry
    (exactly what _SURROGATE_ESCAPE and _NON_XML_ESCAPE look for, without their false alarms
    after an escaped backslash). Else the offset where the walk stopped: ``len(raw)`` when it
    saw every escape, less where escapes have come more often than one per 256 bytes (a text
    escaped throughout, e.g. an ASCII client's \\uXXXX, is left to the prefilters from there:
    a Python step per escape costs about what their scan spends on 256 bytes). One bytes.find
    (memchr) per escape instead of two regex passes over the body."""
    end = len(raw)
    i = raw.find(b"\\")
    steps = 0
    while i >= 0:
        steps += 1
        if steps > 16 + i // 256:
            return i
        kind = raw[i + 1] if i + 1 < end else 0
        if kind == 0x75:  # u
            if not _HEX4.match(raw, i + 2):
                return None
            code = int(raw[i + 2:i + 6], 16)
            if (code < 0x20 and code not in (0x09, 0x0A, 0x0D)) or 0xD800 <= code <= 0xDFFF or code >= 0xFFFE:
                return None
            i = raw.find(b"\\", i + 6)
        elif kind in _SHORT_ESCAPES:
            i = raw.find(b"\\", i + 2)
        else:
            return None
    return end


def _has_float(compact: bytes, value: Any) -> bool:
    """Whether orjson's compact encoding of ``value`` holds a number with a fraction or an
    exponent (orjson writes every float so, and reads so every integer beyond 64 bits). A
    colon not after a quote is inside a string (an instant's seconds) and is passed over; any
    other look-alike inside a string (``"a,1.5"``) counts, as do more than 64 passed over: a
    false alarm only costs the slower way."""
    if type(value) is float:
        return True
    for n, found in enumerate(_FLOAT_TOKEN.finditer(compact.translate(_NUMBER_MARKS))):
        i = found.start()
        if n == 64 or compact[i] != _COLON or compact[i - 1] == _QUOTE:
            return True
    return False


def _simple_numbers(shape: bytes) -> bool:
    """Outside strings, only integers of at most 15 digits (so within 2^53 - 1): a fraction,
    an exponent or a longer integer is left to the exact path."""
    if b"." in shape or b"0" * 16 in shape.translate(_DIGITS_AS_ZERO):
        return False
    if b"e" in shape or b"E" in shape:
        return b"e" not in shape.replace(b"true", b"").replace(b"false", b"") and b"E" not in shape
    return True


def _members(shape: bytes) -> int:
    """Object members in a well-formed JSON text, given what of it is outside strings
    (``_outside_strings``): its colons. (Counting '":' in the text itself also counts every
    string that begins with ':'.)"""
    return shape.count(b":")


def _fast_parse(raw: bytes, encoded: bool = False) -> Any:
    """The parsed body when orjson's reading of it is certainly the exact path's, else
    ``_UNDECIDED``. orjson (RFC 8259, strict UTF-8, no NaN, no lone surrogates) differs from
    I-JSON only where it takes the last of duplicate keys and reads large integers as floats.
    Escaped surrogates and escaped characters XML cannot carry are left to the exact path.

    Most bodies are compact JSON exactly as orjson writes it (cedx's client sends that): when
    orjson's re-encoding of the result, with integers held to 53 bits, is the body itself, no
    key was dropped, every integer is in range and every number is the shortest text of its
    double (so Python reads the same double); only the depth is left to check: the record is
    re-encoded wrapped in as many arrays as make orjson's own nesting limit MAX_JSON_DEPTH for
    the record (``_depth_wrap``), else on the bytes or the indented re-encoding (a container
    nested 65 deep starts a line indented 128 spaces). Any other body
    is checked on its bytes outside strings: members counted (a colon is a member) against the
    re-encoding, only short integers, the nesting. Cost: C-speed bytes operations instead of a
    Python hook per object.

    ``encoded``: return (value, encoding or None) instead, the re-encoding made with sorted
    keys so that it is the record's RFC 8785 form when there are no floats and no member name
    above U+FFFF. A body whose members are not in that order is then no longer equal to it;
    instead it is decided by length: every part of orjson's encoding is at most as long as the
    text it was read from (whitespace dropped, strings with the fewest escapes, integers
    without "-0"), except floats ("1e6" is "1000000.0"), and a duplicate key's dropped
    member makes it strictly shorter. So without floats an encoding as long as the body proves
    what equality proves: no duplicate key, no whitespace (the depth check below holds).

    A body indented by two spaces as orjson indents (JSON.stringify(v, null, 2)) is compared
    with that re-encoding, in its own member order: equal, it proves what equality to the
    compact one proves, and is not scanned outside its strings.

    Floats, for a body that may be one of orjson's encodings: orjson writes every float with
    '.', '+' or '-' (``_floats_signed``), so the body is read with each of those three written
    as its \\u escape (memchr-speed replaces; '+' only where one follows 'e' or 'E', as an
    exponent's sign does): the strings are the same, but a float no longer parses (the body is
    then read again as it is). A body read so and equal to a re-encoding holds no float: no
    translation and regex pass over it (``_has_float``). Safe because every escape of the body
    was walked and none escapes '.', '+' or '-' (not JSON escapes): no backslash before one is
    ever paired with the inserted one."""
    end = len(raw)
    # one memchr first: escapes are rare in bodies that are not escaped throughout
    walked = _escapes(raw) if b"\\" in raw else end
    if walked is None:
        return _UNDECIDED
    if walked < end and _LEFT_ESCAPE.search(raw, walked):
        return _UNDECIDED
    if _raw_noncharacter(raw):  # raw U+FFFE/U+FFFF: refused by the exact path
        return _UNDECIDED
    wrap = _depth_wrap()
    # 2-space indentation as orjson writes it (JSON.stringify(v, null, 2); Python's json with
    # indent=2, ensure_ascii=False), compared below in the body's own member order
    indented = raw.startswith(_INDENTED)
    # another indentation, or another member order, is never one of orjson's encodings
    escaped = (encoded and walked == end and _floats_signed()
               and (indented or b"\n" not in raw and _looks_sorted(raw)))
    try:
        if escaped:
            text = raw
            for mark, escape in _AS_ESCAPES:
                if mark in text:  # memchr; a copy of the body only for a mark it holds
                    text = text.replace(mark, escape)
            if _exponent_plus(raw):
                text = text.replace(b"+", b"\\u002b")
            try:
                value = _orjson.loads(text)
            except _orjson.JSONDecodeError:  # a float or a negative number (or malformed)
                escaped = False
        if not escaped:
            value = _orjson.loads(raw)
        options = _orjson.OPT_STRICT_INTEGER | (_orjson.OPT_SORT_KEYS if encoded else 0)
        if wrap:  # the nesting is checked by the encoder itself (see _depth_wrap)
            wrapped = value
            for _ in range(wrap):
                wrapped = [wrapped]
            out = _orjson.dumps(wrapped, option=options)
            # compared in place: no copy of the encoding when it is the body
            same = len(out) == end + 2 * wrap and out.startswith(raw, wrap)
            compact = raw if same else out[wrap:-wrap]
        else:
            compact = _orjson.dumps(value, option=options)
            same = compact == raw
        if not same and indented:  # equal to it, the body proves what equality to compact proves
            same = _orjson.dumps(value, option=_orjson.OPT_INDENT_2 | _orjson.OPT_STRICT_INTEGER) == raw
    except (_orjson.JSONDecodeError, _orjson.JSONEncodeError):  # an integer beyond 2^53 - 1, too deep
        return _UNDECIDED
    # the body is one of orjson's encodings and held no '.', '+', '-' in a number: no float
    floats = False if same and escaped else None
    if not same and encoded and len(compact) == end:
        floats = _has_float(compact, value)
        same = not floats
    if same:
        if wrap:
            pass  # nests at most MAX_JSON_DEPTH deep, or the encoder had refused it
        elif b"\\" not in raw:  # decided from the bytes, no re-encoding
            if _plain_nests_deeper(raw, MAX_JSON_DEPTH):
                return _UNDECIDED
        else:
            deep = raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH
            if deep and b"\n" + b" " * (2 * MAX_JSON_DEPTH) in _orjson.dumps(value, option=_orjson.OPT_INDENT_2):
                return _UNDECIDED
    else:
        shape = _outside_strings(raw)
        if not _simple_numbers(shape):
            return _UNDECIDED
        # with wrap the encoder has refused a record nested too deep, whatever the body's form
        deep = not wrap and raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH
        if deep and _nests_deeper(shape, MAX_JSON_DEPTH):
            return _UNDECIDED
        members = _members(shape)
        if members and _members(_outside_strings(compact)) != members:
            return _UNDECIDED  # a duplicate key
    if not encoded:
        return value
    if floats is None:
        floats = _has_float(compact, value)
    plain = not floats and not any(lead in raw for lead in _ABOVE_BMP)
    return value, (compact if plain else None)


def _parse_json_exact(raw: bytes) -> Any:
    if json_depth_exceeds(raw):
        raise Problem("MALFORMED_BODY", f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        text = raw.decode("utf-8")
        if text[:1] == "\ufeff":
            raise ValueError("a byte order mark is not allowed (RFC 8259 §8.1)")
        value = json.loads(text, object_pairs_hook=_object, parse_int=_integer, parse_float=_float,
                           parse_constant=_reject_constant)
        if _SURROGATE_ESCAPE.search(raw):
            # Escaped surrogates must pair up into real characters; a lone one cannot be encoded.
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeError:
        raise Problem("MALFORMED_BODY", "the JSON body is not valid UTF-8 or holds an unpaired surrogate "
                      "(RFC 7493 §2.1)") from None
    except (ValueError, RecursionError) as exc:
        raise Problem("MALFORMED_BODY", f"the body is not well-formed I-JSON: {str(exc)[:300]}") from None
    if _NON_XML_ESCAPE.search(raw):
        where = _non_xml_path(value)
        if where:
            raise Problem("MALFORMED_BODY", f"{where} holds a character that XML 1.0 cannot carry (a control "
                          "character other than TAB, LF, CR, or U+FFFE/U+FFFF)",
                          [ProblemItem(where, "CHARACTER-NOT-ALLOWED",
                                       "control character other than TAB, LF, CR, or U+FFFE/U+FFFF")])
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
