"""Every exception cedx raises, in one place. The tree (see ``cedx._exceptions`` for the picture)::

    CedxError ─┬─ TransportError (ConnectionFailed, RequestTimeout)
               ├─ InvalidResponseError
               ├─ ApiError ─┬─ AuthError (AuthenticationError 401, ForbiddenError 403)
               │            ├─ BadRequestError, NotFoundError, NotAcceptableError, ConflictError,
               │            │  PayloadTooLargeError, UnsupportedMediaTypeError, UnprocessableError,
               │            │  RateLimitedError
               │            └─ ServerError
               ├─ ValidationError (local, before anything is sent)
               ├─ ConfigurationError
               └─ TrustError ─┬─ InvalidKey, InvalidSignature, DecryptionError, CertificateError,
                              │  TimestampError, ReplayError, ChainError, BackendUnavailable
                              └─ SignatureVerificationError ── ReceiptMismatch

``ApiError`` and ``ValidationError`` carry ``code``, ``errors`` (path, code, message, rule),
``rules`` and ``paths``.
"""

from ._exceptions import CedxError, ConfigurationError, TrustError
from .runtime.errors import (
    ApiError,
    AuthenticationError,
    AuthError,
    BadRequestError,
    ConflictError,
    ConnectionFailed,
    ForbiddenError,
    InvalidResponseError,
    NotAcceptableError,
    NotFoundError,
    PayloadTooLargeError,
    ProblemItem,
    RateLimitedError,
    ReceiptMismatch,
    RequestTimeout,
    ServerError,
    SignatureVerificationError,
    TransportError,
    UnprocessableError,
    UnsupportedMediaTypeError,
    ValidationError,
)
from .trust.errors import (
    BackendUnavailable,
    CertificateError,
    ChainError,
    DecryptionError,
    InvalidKey,
    InvalidSignature,
    ReplayError,
    TimestampError,
)

__all__ = [
    "ApiError", "AuthError", "AuthenticationError", "BackendUnavailable", "BadRequestError", "CedxError",
    "CertificateError", "ChainError", "ConfigurationError", "ConflictError", "ConnectionFailed",
    "DecryptionError", "ForbiddenError", "InvalidKey", "InvalidResponseError", "InvalidSignature",
    "NotAcceptableError", "NotFoundError", "PayloadTooLargeError", "ProblemItem", "RateLimitedError",
    "ReceiptMismatch", "ReplayError", "RequestTimeout", "ServerError", "SignatureVerificationError", "TimestampError",
    "TransportError", "TrustError", "UnprocessableError", "UnsupportedMediaTypeError", "ValidationError",
]
