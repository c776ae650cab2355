"""problem+json responses as typed exceptions (client side) and as raisable problems (server side).

Client-side exceptions all derive from ``cedx.CedxError`` (the tree is in ``cedx._exceptions``);
``requests`` exceptions never reach the caller raw: they become ``TransportError`` subclasses
that keep the original as ``__cause__``.
"""

from __future__ import annotations

from typing import Any

import requests

from .._exceptions import CedxError, ConfigurationError, TrustError
from ..spec.issue import Issue

#: One field-level problem (path, code, message, rule): the validator's Issue is exactly what a
#: problem+json ``errors`` item carries, so the server, the client and the validator share it.
ProblemItem = Issue


class _Issues:
    """``rules`` and ``paths`` of the field items, shared by ApiError and ValidationError."""

    errors: list[ProblemItem]

    @staticmethod
    def _shown(errors: list[ProblemItem]) -> str:
        """The first field items for the message (what a log line of ``str(exc)`` shows)."""
        shown = "; ".join(f"{e.path}: {e.code} {e.message}" for e in errors[:3])
        return shown + (f" (+{len(errors) - 3} more)" if len(errors) > 3 else "")

    @property
    def rules(self) -> list[str]:
        """Rule IDs of the field items (e.g. ``R-FUEL-001``), in order, without repeats."""
        return list(dict.fromkeys(e.rule for e in self.errors if e.rule))

    @property
    def paths(self) -> list[str]:
        """JSON paths of the field items (e.g. ``$.payload.combustion[0].emission``)."""
        return [e.path for e in self.errors]


class TransportError(CedxError):
    """No HTTP answer: connection refused, name resolution, TLS, timeout, malformed URL.
    Raised after the retry policy gave up; the ``requests``/``httpx`` error is ``__cause__``."""


class ConnectionFailed(TransportError, requests.ConnectionError):
    """The connection could not be made or broke (also a ``requests.ConnectionError``)."""


class RequestTimeout(TransportError, requests.Timeout):
    """The server did not answer in time (also a ``requests.Timeout``)."""


class InvalidResponseError(CedxError):
    """The server answered, but not with what the spec says (unreadable JSON/XML, wrong shape)."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


class ValidationError(_Issues, CedxError):
    """Checked locally before signing: the document breaks the schema, a unit list or a quality
    rule. Nothing was sent. ``code``, ``errors`` (path, code, message, rule), ``rules``, ``paths``
    are those the platform would answer in its 422 problem+json."""

    code = "VALIDATION_FAILED"

    def __init__(self, schema: str, errors: list[ProblemItem]):
        self.schema, self.errors = schema, list(errors)
        super().__init__(f"{schema} is invalid: {self._shown(self.errors)}")


class SignatureVerificationError(TrustError):
    """A signed response did not verify against the configured trust anchors."""


class ReceiptMismatch(SignatureVerificationError):
    """A receipt that verifies but is not for the document sent: its ``documentDigest`` (or
    ``reportId``, ``period``...) is another document's. The platform may or may not have stored
    the document sent: look it up (``list_submissions``) before relying on it. ``field``, ``got``
    (the receipt's), ``expected`` (the document sent's) and ``receipt`` (the record) say which."""

    def __init__(self, message: str, *, field: str, got: Any, expected: Any, receipt: Any = None):
        super().__init__(message)
        self.field, self.got, self.expected, self.receipt = field, got, expected, receipt


class ApiError(_Issues, CedxError):
    """A problem+json answer: ``status``, ``code`` (error-code table), ``title``, ``detail``,
    ``errors`` (field items), ``rules`` and ``paths`` (of the items), ``body`` (as received)."""

    status = 0

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str = "",
        errors: list[ProblemItem] | None = None,
        body: dict[str, Any] | None = None,
    ):
        self.status, self.code, self.title, self.detail = status, code, title, detail
        self.errors = errors or []
        self.body = body or {}
        items = f": {self._shown(self.errors)}" if self.errors else ""
        # a 404 names the path asked for: a base URL with a path of its own shows at once
        where = f" ({self.body['instance']})" if status == 404 and isinstance(self.body.get("instance"), str) else ""
        super().__init__(f"{status} {code}: {detail or title}{where}{items}")

    @classmethod
    def from_problem(cls, status: int, body: dict[str, Any]) -> ApiError:
        items = [
            ProblemItem(e.get("path", "$"), e.get("code", ""), e.get("message", ""), e.get("rule"))
            for e in body.get("errors", [])
            if isinstance(e, dict)
        ]
        kind = ERROR_CLASSES.get(status) or (ServerError if status >= 500 else ApiError)
        return kind(
            status,
            str(body.get("code", "")),
            str(body.get("title", "")),
            str(body.get("detail", "")),
            items,
            body,
        )


class BadRequestError(ApiError):
    status = 400


class AuthError(ApiError):
    """The credentials were refused: AuthenticationError (401) or ForbiddenError (403)."""


class AuthenticationError(AuthError):
    """401, or the token endpoint refused the client's credentials (``code`` is the OAuth error)."""

    status = 401


class ForbiddenError(AuthError):
    """403: authenticated, but not allowed (scope, entity)."""

    status = 403


class NotFoundError(ApiError):
    status = 404


class NotAcceptableError(ApiError):
    status = 406


class ConflictError(ApiError):
    status = 409


class PayloadTooLargeError(ApiError):
    status = 413


class UnsupportedMediaTypeError(ApiError):
    status = 415


class UnprocessableError(ApiError):
    status = 422


class RateLimitedError(ApiError):
    status = 429


class ServerError(ApiError):
    status = 500


ERROR_CLASSES = {
    c.status: c
    for c in (
        BadRequestError,
        AuthenticationError,
        ForbiddenError,
        NotFoundError,
        NotAcceptableError,
        ConflictError,
        PayloadTooLargeError,
        UnsupportedMediaTypeError,
        UnprocessableError,
        RateLimitedError,
    )
}


class OAuthError(Exception):
    """An RFC 6749 §5.2 error, answered as {error, error_description} (token endpoint only)."""

    def __init__(self, error: str, description: str = "", status: int = 400, headers: dict[str, str] | None = None):
        super().__init__(f"{error}: {description}")
        self.error, self.description, self.status = error, description, status
        self.headers = dict(headers or {})


class Problem(Exception):
    """Raised by server-side code to answer with problem+json. (A plain class, not a dataclass:
    importing the client stays clear of dataclasses and inspect; issue 14, target 4.)"""

    def __init__(self, code: str, detail: str = "", errors: list[ProblemItem] | None = None,
                 status: int | None = None, headers: dict[str, str] | None = None):
        super().__init__(code, detail)
        self.code, self.detail, self.status = code, detail, status
        self.errors: list[ProblemItem] = [] if errors is None else errors
        self.headers: dict[str, str] = {} if headers is None else headers

    def _fields(self) -> tuple[Any, ...]:
        return self.code, self.detail, self.errors, self.status, self.headers

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # equal by value, like the dataclass it was

    def __repr__(self) -> str:
        return (f"Problem(code={self.code!r}, detail={self.detail!r}, errors={self.errors!r}, "
                f"status={self.status!r}, headers={self.headers!r})")

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


__all__ = [
    "ERROR_CLASSES", "ApiError", "AuthError", "AuthenticationError", "BadRequestError", "CedxError",
    "ConfigurationError", "ConflictError", "ConnectionFailed", "ForbiddenError", "InvalidResponseError",
    "NotAcceptableError", "NotFoundError", "OAuthError", "PayloadTooLargeError", "Problem", "ProblemItem",
    "RateLimitedError", "ReceiptMismatch", "RequestTimeout", "ServerError", "SignatureVerificationError",
    "TransportError", "TrustError", "UnprocessableError", "UnsupportedMediaTypeError", "ValidationError",
]
