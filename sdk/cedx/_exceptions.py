"""The roots of cedx's exception tree (no imports: the trust layer and the runtime share them).

The whole tree, importable from ``cedx`` and ``cedx.errors``::

    CedxError
    ├── TransportError            no HTTP answer (connection refused, DNS, TLS, timeout)
    │   ├── ConnectionFailed      (also a requests.ConnectionError, for older handlers)
    │   └── RequestTimeout        (also a requests.Timeout)
    ├── InvalidResponseError      an answer that is not what the spec says (bad JSON/XML, wrong shape)
    ├── ApiError                  a problem+json answer: status, code, title, detail, errors, rules, paths
    │   ├── AuthError             the credentials: AuthenticationError (401, token refused), ForbiddenError (403)
    │   ├── BadRequestError 400, NotFoundError 404, NotAcceptableError 406, ConflictError 409,
    │   │   PayloadTooLargeError 413, UnsupportedMediaTypeError 415, UnprocessableError 422,
    │   │   RateLimitedError 429
    │   └── ServerError           5xx
    ├── ValidationError           local: the document breaks the schema or a quality rule; nothing was sent
    ├── ConfigurationError        the client is missing something (signing key, trust anchors)
    └── TrustError                keys, signatures, certificates, time-stamps, chains
        ├── InvalidKey, InvalidSignature, DecryptionError, CertificateError, TimestampError,
        │   ReplayError, ChainError, BackendUnavailable
        └── SignatureVerificationError   a signed answer did not verify against the trust anchors
            └── ReceiptMismatch          a receipt that verifies but is for another document than the one sent
"""

from __future__ import annotations


class CedxError(Exception):
    """Root of every exception cedx raises on purpose: ``except cedx.CedxError`` catches them all."""


class ConfigurationError(CedxError, ValueError):
    """The client lacks what an operation needs (a signing key, trust anchors...)."""


class TrustError(CedxError):
    """Something about keys, signatures, certificates or time-stamps is wrong."""
