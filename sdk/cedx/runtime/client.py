"""The client runtime the generated clients build on (requests-based).

It turns one operation call into one HTTP exchange: path and query, JSON or XML body, bearer
token, request-signature headers, an idempotency key, sign-on-send of documents the spec marks
as signed, verify-on-receive of signed responses, and problem+json answers as typed exceptions.

Connection pooling: each client keeps one ``requests.Session`` (a pool of keep-alive
connections per host, 10 by default; pass your own ``session`` with a larger
``HTTPAdapter(pool_maxsize=...)`` for many threads). A client is safe to share between threads
and should be reused; ``close()`` (or ``with``) releases the pool if the client created it.
"""

from __future__ import annotations

import collections
import email.utils
import functools
import json
import logging
import random
import re
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator, Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import quote, urlencode

import requests
import requests.cookies
import requests.sessions
from requests.cookies import RequestsCookieJar
from requests.hooks import default_hooks
from requests.structures import CaseInsensitiveDict
from requests.utils import get_netrc_auth

from .. import _optional as optional
from .errors import (
    ApiError,
    AuthenticationError,
    ConfigurationError,
    ConnectionFailed,
    InvalidResponseError,
    ReceiptMismatch,
    RequestTimeout,
    SignatureVerificationError,
    TransportError,
)
from .errors import ValidationError as DocumentInvalid
from .lazy import LazyModule
from .operations import OperationInfo

if TYPE_CHECKING:
    from typing_extensions import Self

    from .. import spec, trust
    from ..trust import x509 as tx
else:  # the spec (bundle, XML codec) and the trust layer (asn1crypto, cryptography, SM2) load when
    # a client first needs them: importing the client costs little more than requests
    spec = LazyModule("cedx.spec")
    trust = LazyModule("cedx.trust")
    tx = LazyModule("cedx.trust.x509")

log = logging.getLogger("cedx.client")
_T = TypeVar("_T")  # what an operation's model makes of the answer


class Format(str, Enum):
    """The wire format of a call: JSON or XML (per client, or per call with ``format=``)."""

    JSON = "application/json"
    XML = "application/xml"

    @classmethod
    def _missing_(cls, value: object) -> Format | None:
        """``format="xml"`` / ``"JSON"``: the member's name, as a newcomer writes it."""
        if isinstance(value, str):
            return cls.__members__.get(value.strip().upper())
        return None


def _query_value(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


_orjson = optional.orjson  # the module or None, imported on first use


def _json_types_only(value: Any) -> bool:
    """Whether ``value`` holds exact JSON types only: dict with str keys, list, str, int within
    64 bits, bool, None. For these orjson writes, byte for byte, what the json module writes
    compact with ensure_ascii=False and sort_keys (same escapes, code point key order, int
    digits). Floats (orjson writes 1e-05 as 0.00001, NaN as null), subclasses (enums) and other
    types are left to the json module."""
    t = type(value)
    if t is dict:
        try:
            "".join(value)  # TypeError for a key that is not a str; one C pass
        except TypeError:
            return False
        members: Any = value.values()
    elif t is list:
        members = value
    else:
        return t is str or t is bool or value is None or (t is int and -2**63 <= value < 2**64)
    for v in members:
        tv = type(v)
        if tv is str:
            continue
        if tv is dict or tv is list:
            if not _json_types_only(v):
                return False
        elif not (tv is bool or v is None or (tv is int and -2**63 <= v < 2**64)):
            return False
    return True


def sorted_json(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """``json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True,
    default=default)`` in UTF-8; the same bytes from orjson (the `fast` extra) when ``value``
    has JSON types only (issue 14: ~12x faster, 90 µs of a 2-unit report's 11 kB)."""
    fast = _orjson()
    if fast is not None:
        try:
            if _json_types_only(value):
                out: bytes = fast.dumps(value, option=fast.OPT_SORT_KEYS)
                return out
        except (TypeError, RecursionError):  # an unpaired surrogate, deep nesting, a cycle
            pass
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True,
                      default=default).encode("utf-8")


def _from_token_endpoint(exc: ApiError) -> ApiError:
    """Marks an error as the token endpoint's answer (``exc.token_endpoint``): it is about the
    client's credentials or configuration, never about a document (the outbox keeps its items)."""
    exc.token_endpoint = True  # type: ignore[attr-defined]
    return exc


def token_from_response(resp: Any, token_url: str, client_id: str) -> tuple[str, float]:
    """(access token, lifetime in seconds) of a token endpoint's answer (a requests or httpx
    response), or the typed error it stands for; shared by the blocking and asyncio providers."""
    try:
        body = resp.json() if resp.content else {}
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise InvalidResponseError(f"token endpoint {token_url} answered HTTP {resp.status_code} "
                                   "without a JSON object", resp.status_code)
    if resp.status_code != 200:
        if "error" not in body and "code" in body:  # problem+json, not RFC 6749: e.g. 404 for a wrong token URL
            problem = ApiError.from_problem(resp.status_code, body)
            raise _from_token_endpoint(type(problem)(
                problem.status, problem.code, problem.title,
                f"token endpoint {token_url}: {problem.detail or problem.title}", problem.errors, body))
        error = str(body.get("error") or "TOKEN_INVALID")
        detail = str(body.get("error_description") or body.get("detail") or "")
        kind = AuthenticationError if resp.status_code in (400, 401, 403) else ApiError
        raise _from_token_endpoint(kind(resp.status_code, error, f"token request refused ({client_id})", detail, body=body))
    if not isinstance(body.get("access_token"), str):
        raise InvalidResponseError("token response has no access_token", resp.status_code)
    return body["access_token"], float(body.get("expires_in", 3600))


def environment_session(url: str, verify: Any = None) -> tuple[requests.Session, Any]:
    """A session for one server with the environment read once, and the ``verify`` to send with.

    What requests would read from the environment on every request is resolved here for
    ``url``: the proxy (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY) and, when ``verify`` is
    True or None, the CA bundle (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE). The session then stops
    re-reading the environment (~0.5 ms of CPU per request, issue 14) and never adds ~/.netrc
    credentials, which would replace the bearer token. A session passed by the caller is used
    as it is. The proxy is resolved for ``url``'s host only: the clients send every request there."""
    session = requests.Session()
    settings = session.merge_environment_settings(url, {}, None, verify, None)
    session.proxies.update(settings["proxies"])
    session.trust_env = False
    return session, settings["verify"]


# requests' own merge functions (untyped in types-requests), used as Session.prepare_request does
_merge_cookies: Callable[..., Any] = requests.cookies.merge_cookies
_merge_hooks: Callable[..., Any] = requests.sessions.merge_hooks
_merge_setting: Callable[..., Any] = requests.sessions.merge_setting

# The requests.Session steps that send_prepared stands in for: a session whose class or instance
# has another function for one of them (a subclass's override, an instrumentation's wrapper of
# Session.request) is sent through its own ``request`` instead.
_SESSION_STEPS = ("request", "prepare_request", "merge_environment_settings")


def _requests_own(fn: Any, name: str) -> bool:
    return (type(fn) is types.FunctionType and fn.__module__ == "requests.sessions"
            and fn.__code__.co_name == name)  # a functools.wraps wrapper keeps only the first two


@functools.lru_cache(maxsize=512)
def _prepared_url(url: str) -> str:
    """What ``PreparedRequest.prepare_url`` makes of ``url`` without params: a pure function of
    it (parsing, IDNA, requoting), so computed once per URL. Errors are not cached (re-raised)."""
    p = requests.PreparedRequest()
    p.prepare_url(url, None)
    return cast(str, p.url)


def _fast_path_ok(session: requests.Session) -> bool:
    """Whether ``send_prepared`` gives exactly what ``session.request`` would."""
    if not isinstance(session, requests.Session) or session.params:
        return False  # session params are appended to the query: left to requests
    own = getattr(session, "__dict__", {})
    cls = type(session)
    if any(name in own or not _requests_own(getattr(cls, name), name) for name in _SESSION_STEPS):
        return False
    return (isinstance(session.headers, (dict, CaseInsensitiveDict))
            and isinstance(session.cookies, RequestsCookieJar) and isinstance(session.proxies, dict))


def send_prepared(session: requests.Session, method: str, url: str, data: bytes, headers: Mapping[str, Any],
                  timeout: Any, verify: Any) -> requests.Response:
    """``session.request(method, url, data=data or None, headers=headers, timeout=timeout,
    verify=verify)``, with what requests recomputes on every call done more cheaply (issue 14:
    ~0.1 ms of client CPU per request, mostly ``to_key_val_list``'s Protocol isinstance checks
    in ``merge_setting`` and the URL's parsing). The session's headers, cookies, auth (and
    ~/.netrc when it trusts the environment), hooks, proxies, stream/verify/cert and mounted
    adapters apply as in requests' ``prepare_request`` / ``merge_environment_settings``, step
    for step; the request goes out through ``session.send``. A session this cannot honour
    exactly goes through its ``request``."""
    if not _fast_path_ok(session):
        return session.request(method, url, data=data or None, headers=headers, timeout=timeout, verify=verify)
    # merge_setting(headers, session.headers, CaseInsensitiveDict): session's first, ours
    # replace by lower-case name in place, None removes
    merged: dict[Any, tuple[Any, Any]] = {}
    for items in (session.headers.items(), headers.items()):
        for name, value in items:
            merged[name.lower()] = (name, value)
    cookies = _merge_cookies(RequestsCookieJar(), session.cookies)  # a copy: redirects add to it
    auth = None
    if session.trust_env and not session.auth:
        auth = get_netrc_auth(url)
    p = requests.PreparedRequest()
    # PreparedRequest.prepare's steps, in its order
    p.prepare_method(method)
    p.url = _prepared_url(url)
    p.prepare_headers({name: value for name, value in merged.values() if value is not None})
    p.prepare_cookies(cookies)
    p.prepare_body(data or {}, None, None)
    p.prepare_auth(_merge_setting(auth, session.auth), url)
    p.prepare_hooks(_merge_hooks(default_hooks(), session.hooks))
    if session.trust_env:
        settings = session.merge_environment_settings(p.url, {}, None, verify, None)
    else:  # merge_environment_settings without the environment: the same merge_setting results
        settings = {"proxies": collections.OrderedDict((k, v) for k, v in session.proxies.items() if v is not None),
                    "stream": session.stream, "verify": _merge_setting(verify, session.verify),
                    "cert": session.cert}
    return session.send(p, timeout=timeout, allow_redirects=True, **settings)


class TokenProvider:
    """OAuth2 client-credentials tokens, fetched on demand and refreshed before they expire."""

    def __init__(self, token_url: str, client_id: str, client_secret: str, scope: str | None = None,
                 *, session: requests.Session | None = None, timeout: float = 30, verify: Any = None,
                 refresh_margin: float = 60, retry: RetryPolicy | None = None):
        # verify=None: the session's own setting (a given session's verify, e.g. a private CA
        # bundle, is kept; requests' default True otherwise), as requests merges it
        self.token_url, self.client_id, self._secret, self.scope = token_url, client_id, client_secret, scope
        self._owns_session = session is None
        if session is None:
            session, verify = environment_session(token_url, verify)
        elif verify is None and session.verify is not True:
            verify = session.verify  # as the clients: kept over the CA-bundle environment variables
        self._session = session
        self.retry = retry or RetryPolicy()
        self._timeout, self._verify, self._margin = timeout, verify, refresh_margin
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def token(self, force: bool = False) -> str:
        with self._lock:
            if force or self._token is None or time.monotonic() > self._expires - self._margin:
                data = {"grant_type": "client_credentials", "client_id": self.client_id,
                        "client_secret": self._secret}
                if self.scope:
                    data["scope"] = self.scope
                resp = _send_with_retry(self.retry, lambda: self._session.post(
                    self.token_url, data=data, timeout=self._timeout, verify=self._verify), "POST", self.token_url)
                self._token, lifetime = token_from_response(resp, self.token_url, self.client_id)
                self._expires = time.monotonic() + lifetime
            return self._token

    def close(self) -> None:
        """Release the connection pool (only a session this provider created)."""
        if self._owns_session:
            self._session.close()


class RetryPolicy:
    """Exponential backoff with full jitter on connection errors, 429 and 5xx; a Retry-After
    answer is honoured (capped). ``sleep`` is injectable for tests."""

    RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

    def __init__(self, attempts: int = 6, base: float = 0.25, cap: float = 20.0,
                 retry_after_cap: float = 120.0, sleep: Callable[[float], None] = time.sleep):
        self.attempts, self.base, self.cap, self.retry_after_cap, self.sleep = attempts, base, cap, retry_after_cap, sleep

    def __repr__(self) -> str:
        return (f"RetryPolicy(attempts={self.attempts}, base={self.base}, cap={self.cap}, "
                f"retry_after_cap={self.retry_after_cap})")

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after:
            try:
                return min(float(retry_after), self.retry_after_cap)
            except ValueError:
                try:
                    when = email.utils.parsedate_to_datetime(retry_after)
                    return min(max(0.0, when.timestamp() - time.time()), self.retry_after_cap)
                except (TypeError, ValueError):
                    pass
        return random.uniform(0, min(self.cap, self.base * (2 ** attempt)))


NO_RETRY = RetryPolicy(attempts=1)


def _transport_error(exc: requests.RequestException, method: str, url: str, attempts: int = 1) -> TransportError:
    """A requests exception as cedx's own (the original stays as ``__cause__``). The message
    gives the system's reason ("Connection refused", "Name or service not known") when there is
    one, rather than urllib3's pool text around it, and how many attempts were made."""
    errno = re.search(r"\[Errno -?\d+\] ([^'\")(]+)", str(exc))
    reason = errno.group(1).strip() if errno else f"{type(exc).__name__}: {exc}"
    what = f"{method} {url}: {reason}" + (f" ({attempts} attempts)" if attempts > 1 else "")
    if isinstance(exc, requests.Timeout) and not isinstance(exc, requests.ConnectionError):
        return RequestTimeout(what)
    if isinstance(exc, requests.ConnectionError):
        return ConnectionFailed(what)
    return TransportError(what)


def _send_with_retry(policy: RetryPolicy, send: Callable[[], requests.Response], method: str,
                     url: str) -> requests.Response:
    """Connection errors, timeouts, 429 and 5xx retried per the policy (token requests)."""
    attempt = 0
    while True:
        try:
            resp = send()
        except (requests.ConnectionError, requests.Timeout) as exc:
            attempt += 1
            if attempt >= policy.attempts:
                raise _transport_error(exc, method, url, attempt) from exc
            wait = policy.delay(attempt)
            log.warning("%s %s: %s; retry %d in %.2f s", method, url, type(exc).__name__, attempt, wait)
            policy.sleep(wait)
            continue
        except requests.RequestException as exc:
            raise _transport_error(exc, method, url) from exc
        if resp.status_code in policy.RETRY_STATUSES and attempt + 1 < policy.attempts:
            attempt += 1
            wait = policy.delay(attempt, resp.headers.get("Retry-After"))
            log.warning("%s %s: HTTP %d; retry %d in %.2f s", method, url, resp.status_code, attempt, wait)
            policy.sleep(wait)
            continue
        return resp


def _certificate_bytes(value: Any, what: str) -> bytes:
    """A certificate as the clients take it, PEM or DER bytes; anything else (a file name, PEM
    text) is named here, when the client is made, not deep in the trust layer after sending."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    hint = "; read the file first: Path(...).read_bytes()" if isinstance(value, str) or hasattr(value, "__fspath__") else ""
    raise ConfigurationError(f"{what} must be a certificate as PEM or DER bytes, not {type(value).__name__}{hint}")


# cedx.trust.ALGORITHMS, written out so that making a client does not import the trust layer
# (tests/runtime/test_lazy_imports.py; a test checks that the two agree)
SIGNATURE_ALGORITHMS = ("SM2-with-SM3-prehash", "SM2-with-SM3")


class BaseClient:
    """Common machinery of ReportingClient, AcquisitionClient and CommonClient.

    ``trust_anchors`` (PEM/DER CA certificates) verify every signed answer on arrival; an
    operation with a signed answer is refused (``ConfigurationError``, before sending) unless
    they are given or ``verify_signatures=False`` is chosen explicitly (logged as a warning).
    ``validate=True`` (default) checks a document against the schema, the allowed units and the
    quality rules before signing; a failure raises ``ValidationError`` and nothing is sent.
    ``signature_algorithm``: how documents are signed (docs/trust-profile.md §2); the default
    ``SM2-with-SM3-prehash``, or ``SM2-with-SM3`` for a platform on a cedx release before it.
    Use the client as a context manager, or call ``close()``, to release its connections.
    """

    operations: Mapping[str, OperationInfo] = {}  # set by each generated client: operationId -> info

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        token_provider: TokenProvider | None = None,
        signing_key: trust.SM2PrivateKey | None = None,
        signing_certificate: bytes | None = None,
        trust_anchors: list[bytes] | None = None,
        format: Format = Format.JSON,
        session: requests.Session | None = None,
        timeout: float = 30,
        verify: Any = None,
        retry: RetryPolicy | None = None,
        verify_signatures: bool = True,
        validate: bool = True,
        signature_algorithm: str = "SM2-with-SM3-prehash",
    ):
        self.base_url = base_url.rstrip("/")
        if signature_algorithm not in SIGNATURE_ALGORITHMS:
            raise ConfigurationError(f"signature_algorithm must be one of {', '.join(SIGNATURE_ALGORITHMS)}")
        self.signature_algorithm = signature_algorithm
        self.verify_signatures, self.validate = verify_signatures, validate
        if not verify_signatures:
            log.warning("%s for %s: verify_signatures=False, signed answers are NOT verified",
                        type(self).__name__, base_url)
        self.retry = retry or RetryPolicy()
        aio = sys.modules.get("cedx.runtime.aio")  # loaded if the caller holds an AsyncTokenProvider
        if aio is not None and isinstance(token_provider, aio.AsyncTokenProvider):
            raise ConfigurationError(f"{type(self).__name__} takes a cedx.TokenProvider; cedx.AsyncTokenProvider "
                                     "is for the asyncio clients (cedx.AsyncReportingClient...)")
        if token is not None and not isinstance(token, str):
            raise ConfigurationError("token is the bearer token itself (a str); a cedx.TokenProvider goes in token_provider=")
        if token_provider is not None and not callable(getattr(token_provider, "token", None)):
            raise ConfigurationError("token_provider is a cedx.TokenProvider(token_url, client_id, client_secret), "
                                     f"not {type(token_provider).__name__}")
        self._token, self._tokens = token, token_provider
        if isinstance(signing_key, (bytes, bytearray, str)) or hasattr(signing_key, "__fspath__"):
            raise ConfigurationError("signing_key is a key object, not the key file or its bytes: "
                                     "signing_key=cedx.load_private_key(Path('entity.key.pem').read_bytes())")
        self.signing_key = signing_key
        if signing_certificate is not None:
            _certificate_bytes(signing_certificate, "signing_certificate")
        self.signing_certificate = signing_certificate
        if isinstance(trust_anchors, (bytes, str)):
            raise ConfigurationError("trust_anchors is a list of CA certificates: trust_anchors=[ca_pem]")
        for n, anchor in enumerate(trust_anchors or []):
            _certificate_bytes(anchor, f"trust_anchors[{n}]")
        self.trust_anchors = trust_anchors or []
        self._resolver: tx.ChainResolver | None = None
        # (operationId, Idempotency-Key) -> (SM3 of the unsigned record, signed envelope):
        # a retried write with the same key re-sends the same signed document (see _signed_once)
        self._signed_by_key: collections.OrderedDict[tuple[str, str], tuple[bytes, Any]] = collections.OrderedDict()
        self._signed_lock = threading.Lock()
        self.format = Format(format)
        self._owns_session = session is None
        if session is None:
            session, verify = environment_session(self.base_url, verify)
        elif verify is None and session.verify is not True:
            # requests would let REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace it (trust_env): the
            # caller's own choice on the session is kept
            verify = session.verify
        self.session = session
        self.timeout, self.verify = timeout, verify

    # --- lifetime -------------------------------------------------------------------------
    def close(self) -> None:
        """Release the pooled connections (of a session this client created) and the token
        provider's. The client must not be used afterwards."""
        if self._owns_session:
            self.session.close()
        if self._tokens is not None:
            self._tokens.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- serialisation --------------------------------------------------------------------
    @staticmethod
    def _record(value: Any) -> Any:
        if hasattr(value, "model_dump"):
            # warnings=False: a model changed with model_copy(update=...) holds what it was given
            # (a str for a UUID...); it is dumped as given and validated as JSON right after
            return value.model_dump(mode="json", by_alias=True, exclude_none=True, warnings=False)
        return value

    def _encode(self, op: OperationInfo, record: Any, fmt: Format) -> bytes:
        if fmt is Format.XML and op.body_schema:
            return spec.context(op.spec_package).xml_codec.dumps(op.body_schema, record, pretty=False)
        # Members in RFC 8785 order (code point order, as the canonical form sorts every name
        # this spec uses): a platform then finds a signed document's bytes nearly equal to its
        # canonical form, and resumes the receipt digest from the body's (issue 14).
        return sorted_json(record)

    def _decode(self, resp: requests.Response, op: OperationInfo) -> Any:
        ctype = resp.headers.get("Content-Type", "").split(";")[0].strip()
        if ctype.endswith("xml"):
            _, record = spec.context(op.spec_package).xml_codec.loads(resp.content, op.response_schema)
            return record
        return resp.json() if resp.content else None

    # --- trust ----------------------------------------------------------------------------
    def _sign_body(self, op: OperationInfo, body: Any) -> Any:
        """Sign-on-send: a payload (not yet an envelope) is signed with the client's key."""
        record = self._record(body)
        if not op.signed_request or (isinstance(record, dict) and "signature" in record):
            return record
        if self.signing_key is None:
            raise ConfigurationError(f"{op.operation_id} sends a signed document: configure signing_key, e.g. "
                                     "signing_key=cedx.load_private_key(Path('entity.key.pem').read_bytes())")
        chain = [self.signing_certificate] if self.signing_certificate else None
        version = spec.context(op.spec_package).index.spec_version
        return trust.sign_document(record, self.signing_key, certificate_chain=chain,
                                   envelope_fields={"specVersion": version}, algorithm=self.signature_algorithm)

    SIGNED_BY_KEY_MAX = 4096

    def _signed_once(self, op: OperationInfo, body: Any, idempotency_key: str | None) -> Any:
        """Sign once per idempotency key: a caller retrying ``submit_*(report,
        idempotency_key=K)`` after a lost acknowledgement sends the very same signed document
        (same signingTime and value), so the platform replays the stored receipt instead of
        answering 409. Another document under the same key is signed afresh (and the platform
        rightly answers 409)."""
        record = self._record(body)
        if not idempotency_key or not op.signed_request or (isinstance(record, dict) and "signature" in record):
            return self._sign_body(op, record)
        unsigned = trust.sm3(sorted_json(record, default=str))
        slot = (op.operation_id, idempotency_key)
        with self._signed_lock:
            known = self._signed_by_key.get(slot)
            if known is not None and known[0] == unsigned:
                self._signed_by_key.move_to_end(slot)
                return known[1]
        envelope = self._sign_body(op, record)
        with self._signed_lock:
            self._signed_by_key[slot] = (unsigned, envelope)
            while len(self._signed_by_key) > self.SIGNED_BY_KEY_MAX:
                self._signed_by_key.popitem(last=False)
        return envelope

    def _validate_document(self, op: OperationInfo, body: Any) -> None:
        """Validate before signing: an unsigned payload against its payload schema, a signed
        envelope against the body schema; raises ValidationError (nothing is sent)."""
        if op.body_schema and (isinstance(body, (str, bytes, bytearray)) or hasattr(body, "__fspath__")):
            name = op.signed_request["payload"] if op.signed_request else op.body_schema
            raise ConfigurationError(
                f"{op.operation_id} takes a cedx.models.{name} (or the same record as a dict), not "
                f"{type(body).__name__}: read the file first, e.g. "
                f"cedx.models.{name}.model_validate_json(Path('report.json').read_bytes())")
        if not self.validate or not op.body_schema or body is None:
            return
        record = self._record(body)
        schema = op.body_schema
        if op.signed_request and not (isinstance(record, dict) and "signature" in record):
            schema = op.signed_request["payload"]
        issues = spec.context(op.spec_package).validator.validate(schema, record)
        if issues:
            raise DocumentInvalid(schema, issues)

    def _check_verifiable(self, op: OperationInfo) -> None:
        """Before sending: an operation whose answer is signed needs trust anchors that are
        certificates (otherwise a submission would be stored and only its receipt refused)."""
        if op.signed_response and self.verify_signatures:
            if not self.trust_anchors:
                raise ConfigurationError(
                    f"{op.operation_id} answers a signed document: give trust_anchors=[CA certificate] to verify it "
                    "(or verify_signatures=False to skip verification, not recommended)")
            self._chain_resolver()

    def _chain_resolver(self) -> tx.ChainResolver:
        """The resolver over the trust anchors, made again when they change."""
        if self._resolver is None or self._resolver.trust_anchors != self.trust_anchors:
            for n, anchor in enumerate(self.trust_anchors):
                try:
                    tx.load_certificate(_certificate_bytes(anchor, f"trust_anchors[{n}]"))
                except trust.CertificateError as exc:
                    raise ConfigurationError(f"trust_anchors[{n}] is not a CA certificate (PEM or DER): {exc}") from exc
            self._resolver = tx.ChainResolver(self.trust_anchors)
        return self._resolver

    def verify_signed(self, record: dict[str, Any]) -> trust.VerifiedDocument:
        """Verify-on-receive against the trust anchors (certificate chain in the block)."""
        resolver = self._chain_resolver()
        try:
            return trust.verify_document(record, resolver)
        except (trust.InvalidSignature, trust.CertificateError) as exc:
            raise SignatureVerificationError(str(exc)) from exc

    #: whether receipts are checked against the document sent; cedx's inspector turns this off
    #: for its clients: it judges a receipt's digest as an item of its own (2.3), rather than
    #: every case that submits a report failing on it
    _receipts_checked = True

    def _checks_receipt(self, op: OperationInfo) -> bool:
        """Whether the answer is a receipt for a signed document this call sends, to be checked
        against it (``_check_receipt``): not when signed answers are not verified at all."""
        return bool(self.verify_signatures and self._receipts_checked and op.signed_request and op.signed_response
                    and op.signed_response.get("payload") == "Receipt")

    #: Receipt members that repeat the document's own (the spec's Receipt schema)
    RECEIPT_ECHOES = ("reportId", "creditCode", "submissionKind")

    def _check_receipt(self, op: OperationInfo, receipt: Any, envelope: Any,
                       sent: trust.PrefixDigests | None) -> None:
        """A verified receipt must be for the document sent (docs/trust-profile.md §3): its
        ``documentDigest`` that of the whole signed document as sent (``trust.binds_document``:
        from the body's SM3, which signing the request computed, when the body is the canonical
        form), and its document type, period, reportId, creditCode and submissionKind the
        document's. Raises ReceiptMismatch."""
        payload = receipt.get("payload") if isinstance(receipt, dict) else None
        if not isinstance(payload, dict):
            return  # not a receipt's shape: refused as such by the model
        document = envelope.get("payload") if isinstance(envelope, dict) else None
        document = document if isinstance(document, dict) else {}
        got = payload.get("documentDigest")
        if not (isinstance(got, str) and trust.binds_document(got, envelope, sent=sent)):
            try:
                expected = trust.document_digest(envelope)
            except trust.CanonicalizationError as exc:
                expected = f"none ({exc})"
            raise self._receipt_mismatch(op, "documentDigest", got, expected, receipt, document)
        from ..spec.facts import submission_period  # here: importing the client stays light

        wanted = {name: document.get(name) for name in self.RECEIPT_ECHOES}
        wanted["documentType"] = spec.context(op.spec_package).index.facts.document_operations.get(op.operation_id)
        try:
            wanted["period"] = submission_period(document)
        except KeyError:
            pass
        for name, value in wanted.items():
            if value is not None and name in payload and str(payload[name]) != str(value):
                raise self._receipt_mismatch(op, name, payload[name], value, receipt, document)

    @staticmethod
    def _receipt_mismatch(op: OperationInfo, name: str, got: Any, expected: Any, receipt: Any,
                          document: dict[str, Any]) -> ReceiptMismatch:
        where = document.get("period") or document.get("year")
        look = f"list_submissions(period={str(where)!r})" if where else "list_submissions()"
        return ReceiptMismatch(
            f"{op.operation_id}: the platform's receipt is not for the document sent: its {name} is {got!r}, "
            f"the document sent's is {expected!r} (docs/trust-profile.md §3). The platform may or may not "
            f"have stored the document sent: look it up ({look}) before relying on it. Sending it again is "
            "safe only with the idempotency_key= this call was given (the Outbox keeps one per item); a call "
            "without one signs the document anew under a new key",
            field=name, got=got, expected=expected, receipt=receipt)

    # --- the exchange ---------------------------------------------------------------------
    def _auth_header(self) -> dict[str, str]:
        if self._tokens is not None:
            return {"Authorization": f"Bearer {self._tokens.token()}"}
        if self._token:
            return {"Authorization": f"Bearer {self._token}"}
        return {}

    def _call(self, op: OperationInfo, *, path_params: dict[str, Any] | None = None,
              query: dict[str, Any] | None = None, headers: dict[str, Any] | None = None, body: Any = None, format: Format | None = None,
              model: Callable[[Any], _T] | None = None) -> _T:
        fmt = Format(format or self.format)
        if op.body_media != ("application/x-www-form-urlencoded",):
            self._validate_document(op, body)
        self._check_verifiable(op)
        path = op.path
        for name, value in (path_params or {}).items():
            path = path.replace("{" + name + "}", quote(str(value), safe=""))
        q = {k: _query_value(v) for k, v in (query or {}).items() if v is not None}
        query_string = urlencode(q)
        hdrs = {"Accept": f"{fmt.value}, application/problem+json"}
        hdrs.update(self._auth_header())
        hdrs.update({k: v for k, v in (headers or {}).items() if v is not None})
        data = b""
        envelope: Any = None
        if body is not None:
            if op.body_media == ("application/x-www-form-urlencoded",):
                data = urlencode(self._record(body)).encode()
                hdrs["Content-Type"] = "application/x-www-form-urlencoded"
                hdrs["Accept"] = "application/json"
            else:
                envelope = self._signed_once(op, body, (headers or {}).get("Idempotency-Key"))
                data = self._encode(op, envelope, fmt)
                hdrs["Content-Type"] = f"{fmt.value}; charset=utf-8"
        if op.idempotent and "Idempotency-Key" not in hdrs:
            import uuid  # here: importing the client stays light (issue 14, target 4)

            hdrs["Idempotency-Key"] = str(uuid.uuid4())
        checks_receipt = envelope is not None and self._checks_receipt(op)
        # a JSON body's SM3, with its states: signs the request and, usually, is the receipt's digest
        sent = trust.PrefixDigests(data) if checks_receipt and fmt is Format.JSON else None
        resp = self._send(op, path, query_string, hdrs, data, body_sm3=sent.digest if sent else None)
        if resp.status_code >= 400:
            try:
                problem = resp.json()
            except ValueError:
                problem = {"code": "HTTP_ERROR", "title": resp.reason or "", "detail": resp.text[:300]}
            raise ApiError.from_problem(resp.status_code, problem if isinstance(problem, dict) else {})
        try:
            record = self._decode(resp, op)
        except ValueError as exc:  # JSON or XML that does not parse or map
            raise InvalidResponseError(f"{op.operation_id}: unreadable answer: {exc}", resp.status_code) from exc
        if op.signed_response and self.verify_signatures and isinstance(record, dict):
            self.verify_signed(record)
            if checks_receipt:
                self._check_receipt(op, record, envelope, sent)
        if model is None:
            return cast(_T, record)  # no model: the logical record itself
        try:
            return model(record)
        except ValueError as exc:  # pydantic.ValidationError: the answer has the wrong shape
            raise InvalidResponseError(f"{op.operation_id}: answer does not match the spec: {exc}",
                                       resp.status_code) from exc

    def _send(self, op: OperationInfo, path: str, query_string: str, hdrs: dict[str, str], data: bytes,
              body_sm3: bytes | None = None) -> requests.Response:
        """One logical request, retried on transient failures. Retrying is safe: reads are
        idempotent and every write carries an idempotency key or is a PUT; each attempt is
        signed afresh (new timestamp and nonce; the body hashed once, ``body_sm3`` if given)."""
        refreshed = False
        attempt = 0
        while True:
            if self.signing_key is not None and op.request_signature:
                body_sm3 = trust.sm3(data) if body_sm3 is None else body_sm3
                # the full request path, the base URL's path included (profile §5, §11)
                hdrs.update(trust.sign_request(self.signing_key, op.method, trust.reqsign.request_path(self.base_url, path),
                                               query_string, data, body_sm3=body_sm3))
            url = f"{self.base_url}{path}" + (f"?{query_string}" if query_string else "")
            try:
                resp = send_prepared(self.session, op.method, url, data, hdrs, self.timeout, self.verify)
            except (requests.ConnectionError, requests.Timeout) as exc:
                attempt += 1
                if attempt >= self.retry.attempts:
                    raise _transport_error(exc, op.method, url, attempt) from exc
                wait = self.retry.delay(attempt)
                log.warning("%s %s: %s; retry %d in %.2f s", op.method, path, type(exc).__name__, attempt, wait)
                self.retry.sleep(wait)
                continue
            except requests.RequestException as exc:  # invalid URL, too many redirects...
                raise _transport_error(exc, op.method, url) from exc
            if resp.status_code == 401 and self._tokens is not None and not refreshed:
                refreshed = True  # the token may have expired between fetch and use
                hdrs.update({"Authorization": f"Bearer {self._tokens.token(force=True)}"})
                continue
            if resp.status_code in self.retry.RETRY_STATUSES and attempt + 1 < self.retry.attempts:
                attempt += 1
                wait = self.retry.delay(attempt, resp.headers.get("Retry-After"))
                log.warning("%s %s: HTTP %d; retry %d in %.2f s", op.method, path, resp.status_code, attempt, wait)
                self.retry.sleep(wait)
                continue
            return resp

    def _pages(self, fetch: Callable[..., Any], items: str = "items", **kwargs: Any) -> Iterator[Any]:
        cursor = None
        while True:
            page = fetch(cursor=cursor, **kwargs)
            yield from getattr(page, items)
            cursor = page.next_cursor
            if not cursor:
                return
