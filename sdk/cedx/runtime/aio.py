"""The asyncio client runtime (httpx) behind ``cedx.generated.aio`` — for MES/ERP software built
on asyncio. Install with ``pip install 'cedx[async]'``.

It shares everything but the exchange with the blocking runtime (``cedx.runtime.client``):
serialisation, validation before signing, sign-on-send, verify-on-receive, problem+json as
typed exceptions, the retry policy and the error tree (httpx errors become ``TransportError``
subclasses). Each client owns one ``httpx.AsyncClient`` (a connection pool) unless one is passed;
use ``async with`` or ``await client.aclose()``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import quote, urlencode

try:
    import httpx
except ImportError as exc:  # the `async` extra is not installed: say which one
    raise ModuleNotFoundError("the asyncio clients need httpx: pip install 'cedx[async]'", name="httpx") from exc

from .. import trust
from .client import (
    BaseClient,
    Format,
    RetryPolicy,
    TokenProvider,
    _query_value,
    log,
    token_from_response,
)
from .errors import (
    ApiError,
    ConfigurationError,
    ConnectionFailed,
    InvalidResponseError,
    RequestTimeout,
    TransportError,
)
from .operations import OperationInfo

if TYPE_CHECKING:
    from typing_extensions import Self


def _transport_error(exc: httpx.HTTPError, method: str, url: str, attempts: int = 1) -> TransportError:
    what = f"{method} {url}: {type(exc).__name__}: {exc}" + (f" ({attempts} attempts)" if attempts > 1 else "")
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeout(what)
    if isinstance(exc, (httpx.ConnectError, httpx.NetworkError, httpx.RemoteProtocolError)):
        return ConnectionFailed(what)
    return TransportError(what)


_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_T = TypeVar("_T")


async def _send_with_retry(policy: RetryPolicy, send: Callable[[], Awaitable[httpx.Response]], method: str,
                           url: str) -> httpx.Response:
    attempt = 0
    while True:
        try:
            resp = await send()
        except _TRANSIENT as exc:
            attempt += 1
            if attempt >= policy.attempts:
                raise _transport_error(exc, method, url, attempt) from exc
            wait = policy.delay(attempt)
            log.warning("%s %s: %s; retry %d in %.2f s", method, url, type(exc).__name__, attempt, wait)
            await _sleep(policy, wait)
            continue
        except httpx.HTTPError as exc:
            raise _transport_error(exc, method, url) from exc
        if resp.status_code in policy.RETRY_STATUSES and attempt + 1 < policy.attempts:
            attempt += 1
            wait = policy.delay(attempt, resp.headers.get("Retry-After"))
            log.warning("%s %s: HTTP %d; retry %d in %.2f s", method, url, resp.status_code, attempt, wait)
            await _sleep(policy, wait)
            continue
        return resp


async def _sleep(policy: RetryPolicy, seconds: float) -> None:
    """The policy's injected sleep (tests) when it is not time.sleep; else a non-blocking one."""
    if policy.sleep is time.sleep:
        await asyncio.sleep(seconds)
    else:
        policy.sleep(seconds)


class AsyncTokenProvider:
    """OAuth2 client-credentials tokens for the asyncio clients (refreshed before expiry,
    fetched once at a time, retried like every other call)."""

    def __init__(self, token_url: str, client_id: str, client_secret: str, scope: str | None = None,
                 *, client: httpx.AsyncClient | None = None, timeout: float = 30, verify: Any = True,
                 refresh_margin: float = 60, retry: RetryPolicy | None = None):
        self.token_url, self.client_id, self._secret, self.scope = token_url, client_id, client_secret, scope
        self._owns_client = client is None
        self._http = client or httpx.AsyncClient(timeout=timeout, verify=verify)
        self._margin = refresh_margin
        self.retry = retry or RetryPolicy()
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def token(self, force: bool = False) -> str:
        async with self._lock:
            if force or self._token is None or time.monotonic() > self._expires - self._margin:
                data = {"grant_type": "client_credentials", "client_id": self.client_id,
                        "client_secret": self._secret}
                if self.scope:
                    data["scope"] = self.scope
                resp = await _send_with_retry(self.retry, lambda: self._http.post(self.token_url, data=data),
                                              "POST", self.token_url)
                self._token, lifetime = token_from_response(resp, self.token_url, self.client_id)
                self._expires = time.monotonic() + lifetime
            return self._token

    async def aclose(self) -> None:
        if self._owns_client:
            await self._http.aclose()


class AsyncBaseClient(BaseClient):
    """Common machinery of AsyncReportingClient, AsyncAcquisitionClient and AsyncCommonClient.
    Options as ``cedx.runtime.client.BaseClient``; ``client`` is an optional ``httpx.AsyncClient``."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        token_provider: AsyncTokenProvider | None = None,
        signing_key: trust.SM2PrivateKey | None = None,
        signing_certificate: bytes | None = None,
        trust_anchors: list[bytes] | None = None,
        format: Format = Format.JSON,
        client: httpx.AsyncClient | None = None,
        timeout: float = 30,
        verify: Any = True,
        retry: RetryPolicy | None = None,
        verify_signatures: bool = True,
        validate: bool = True,
        signature_algorithm: str = "SM2-with-SM3-prehash",
    ):
        if isinstance(token_provider, TokenProvider):
            raise ConfigurationError(f"{type(self).__name__} takes a cedx.AsyncTokenProvider; cedx.TokenProvider "
                                     "is for the blocking clients (cedx.ReportingClient...)")
        http = client or httpx.AsyncClient(timeout=timeout, verify=verify)
        super().__init__(base_url, token=token, signing_key=signing_key, signing_certificate=signing_certificate,
                         trust_anchors=trust_anchors, format=format, session=http,  # type: ignore[arg-type]
                         timeout=timeout, verify=verify, retry=retry, verify_signatures=verify_signatures,
                         validate=validate, signature_algorithm=signature_algorithm)
        self._owns_session = client is None
        self.http = http
        self._async_tokens = token_provider

    def close(self) -> None:  # the blocking close does not apply
        raise TypeError("use 'await client.aclose()' or 'async with' for an asyncio client")

    async def aclose(self) -> None:
        """Release the connection pool (of a client this object created) and the token provider's."""
        if self._owns_session:
            await self.http.aclose()
        if self._async_tokens is not None:
            await self._async_tokens.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _auth_header_async(self) -> dict[str, str]:
        if self._async_tokens is not None:
            return {"Authorization": f"Bearer {await self._async_tokens.token()}"}
        if self._token:
            return {"Authorization": f"Bearer {self._token}"}
        return {}

    async def _call(self, op: OperationInfo, *, path_params: dict[str, Any] | None = None,  # type: ignore[override]
                    query: dict[str, Any] | None = None, headers: dict[str, Any] | None = None, body: Any = None,
                    format: Format | None = None, model: Callable[[Any], _T] | None = None) -> _T:
        fmt = Format(format or self.format)
        form = op.body_media == ("application/x-www-form-urlencoded",)
        if not form:
            self._validate_document(op, body)
        self._check_verifiable(op)
        path = op.path
        for name, value in (path_params or {}).items():
            path = path.replace("{" + name + "}", quote(str(value), safe=""))
        q = {k: _query_value(v) for k, v in (query or {}).items() if v is not None}
        query_string = urlencode(q)
        hdrs = {"Accept": f"{fmt.value}, application/problem+json"}
        hdrs.update(await self._auth_header_async())
        hdrs.update({k: v for k, v in (headers or {}).items() if v is not None})
        data = b""
        envelope: Any = None
        if body is not None:
            if form:
                data = urlencode(self._record(body)).encode()
                hdrs["Content-Type"] = "application/x-www-form-urlencoded"
                hdrs["Accept"] = "application/json"
            else:
                # the blocking client's sign-once-per-idempotency-key, where the runtime has it
                signed_once = getattr(self, "_signed_once", None)
                envelope = (signed_once(op, body, (headers or {}).get("Idempotency-Key")) if signed_once
                            else self._sign_body(op, body))
                data = self._encode(op, envelope, fmt)
                hdrs["Content-Type"] = f"{fmt.value}; charset=utf-8"
        if op.idempotent and "Idempotency-Key" not in hdrs:
            hdrs["Idempotency-Key"] = str(uuid.uuid4())
        checks_receipt = envelope is not None and self._checks_receipt(op)
        # as the blocking client: the JSON body hashed once, for the request signature and the receipt
        sent = trust.PrefixDigests(data) if checks_receipt and fmt is Format.JSON else None
        resp = await self._send_async(op, path, query_string, hdrs, data, body_sm3=sent.digest if sent else None)
        if resp.status_code >= 400:
            try:
                problem = resp.json()
            except ValueError:
                problem = {"code": "HTTP_ERROR", "title": resp.reason_phrase or "", "detail": resp.text[:300]}
            raise ApiError.from_problem(resp.status_code, problem if isinstance(problem, dict) else {})
        try:
            record = self._decode(resp, op)  # type: ignore[arg-type]  # same surface as requests'
        except ValueError as exc:
            raise InvalidResponseError(f"{op.operation_id}: unreadable answer: {exc}", resp.status_code) from exc
        if op.signed_response and self.verify_signatures and isinstance(record, dict):
            self.verify_signed(record)
            if checks_receipt:
                self._check_receipt(op, record, envelope, sent)
        if model is None:
            return cast(_T, record)  # no model: the logical record itself
        try:
            return model(record)
        except ValueError as exc:
            raise InvalidResponseError(f"{op.operation_id}: answer does not match the spec: {exc}",
                                       resp.status_code) from exc

    async def _send_async(self, op: OperationInfo, path: str, query_string: str, hdrs: dict[str, Any],
                          data: bytes, body_sm3: bytes | None = None) -> httpx.Response:
        """As the blocking client: retried on transient failures, signed afresh per attempt (the
        body hashed once, ``body_sm3`` if given), one token refresh on 401."""
        url = f"{self.base_url}{path}" + (f"?{query_string}" if query_string else "")
        refreshed = False
        if self.signing_key is not None and op.request_signature and body_sm3 is None:
            body_sm3 = trust.sm3(data)

        async def send() -> httpx.Response:
            if self.signing_key is not None and op.request_signature:
                # the full request path, the base URL's path included (profile §5, §11)
                hdrs.update(trust.sign_request(self.signing_key, op.method, trust.reqsign.request_path(self.base_url, path),
                                               query_string, data, body_sm3=body_sm3))
            return await self.http.request(op.method, url, content=data or None, headers=hdrs)

        while True:
            resp = await _send_with_retry(self.retry, send, op.method, url)
            if resp.status_code == 401 and self._async_tokens is not None and not refreshed:
                refreshed = True  # the token may have expired between fetch and use
                hdrs["Authorization"] = f"Bearer {await self._async_tokens.token(force=True)}"
                continue
            return resp

    async def _pages(self, fetch: Callable[..., Any], items: str = "items",  # type: ignore[override]
                     **kwargs: Any) -> AsyncIterator[Any]:
        cursor = None
        while True:
            page = await fetch(cursor=cursor, **kwargs)
            for item in getattr(page, items):
                yield item
            cursor = page.next_cursor
            if not cursor:
                return


__all__ = ["AsyncBaseClient", "AsyncTokenProvider"]
