"""problem+json responses as typed exceptions (client side) and as raisable problems (server side)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..spec.issue import Issue

#: One field-level problem (path, code, message, rule): the validator's Issue is exactly what a
#: problem+json ``errors`` item carries, so the server, the client and the validator share it.
ProblemItem = Issue


class ApiError(Exception):
    """A problem+json answer: ``status``, ``code`` (error-code table), ``errors`` (field items)."""

    status = 0

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str = "",
        errors: list[ProblemItem] | None = None,
        body: dict | None = None,
    ):
        self.status, self.code, self.title, self.detail = status, code, title, detail
        self.errors = errors or []
        self.body = body or {}
        super().__init__(f"{status} {code}: {detail or title}")

    @property
    def rules(self) -> list[str]:
        return [e.rule for e in self.errors if e.rule]

    @property
    def paths(self) -> list[str]:
        return [e.path for e in self.errors]

    @classmethod
    def from_problem(cls, status: int, body: dict) -> ApiError:
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


class AuthenticationError(ApiError):
    status = 401


class ForbiddenError(ApiError):
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


class SignatureVerificationError(Exception):
    """A signed response did not verify against the configured trust anchors."""


class OAuthError(Exception):
    """An RFC 6749 §5.2 error, answered as {error, error_description} (token endpoint only)."""

    def __init__(self, error: str, description: str = "", status: int = 400):
        super().__init__(f"{error}: {description}")
        self.error, self.description, self.status = error, description, status


@dataclass
class Problem(Exception):
    """Raised by server-side code to answer with problem+json."""

    code: str
    detail: str = ""
    errors: list[ProblemItem] = field(default_factory=list)
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"
