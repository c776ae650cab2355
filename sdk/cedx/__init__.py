"""cedx — Carbon Emission Data eXchange.

SDK and reference implementation of the carbon-emission accounting data interfaces
(碳排放核算数据自动化获取报送接口技术规范, draft). The names an integrator needs are here::

    import cedx

    with cedx.ReportingClient(url, token_provider=cedx.TokenProvider(...), ...) as client:
        receipt = client.submit_monthly_report(report)   # a cedx.models.MonthlyReport

Everything is loaded on first use (``import cedx`` itself is cheap); deep imports such as
``cedx.generated.client`` keep working. Exceptions: ``cedx.CedxError`` and the tree in
``cedx.errors``.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# A library never configures logging for the application; without a handler of its own the
# records would reach Python's "last resort" stderr handler.
logging.getLogger(__name__).addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from . import errors, trust
    from ._exceptions import CedxError, ConfigurationError, TrustError
    from .generated import models
    from .generated.aio import AsyncAcquisitionClient, AsyncCommonClient, AsyncReportingClient
    from .generated.client import AcquisitionClient, CommonClient, ReportingClient
    from .runtime.aio import AsyncTokenProvider
    from .runtime.client import NO_RETRY, Format, RetryPolicy, TokenProvider
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
    from .runtime.outbox import AddressFollower, Outbox, OutboxItem
    from .trust.keys import SM2PrivateKey, SM2PublicKey, load_private_key, load_public_key

# public name -> (module, attribute or None for the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "ReportingClient": ("cedx.generated.client", "ReportingClient"),
    "AcquisitionClient": ("cedx.generated.client", "AcquisitionClient"),
    "CommonClient": ("cedx.generated.client", "CommonClient"),
    "TokenProvider": ("cedx.runtime.client", "TokenProvider"),
    # asyncio (httpx: pip install 'cedx[async]')
    "AsyncReportingClient": ("cedx.generated.aio", "AsyncReportingClient"),
    "AsyncAcquisitionClient": ("cedx.generated.aio", "AsyncAcquisitionClient"),
    "AsyncCommonClient": ("cedx.generated.aio", "AsyncCommonClient"),
    "AsyncTokenProvider": ("cedx.runtime.aio", "AsyncTokenProvider"),
    "Format": ("cedx.runtime.client", "Format"),
    "RetryPolicy": ("cedx.runtime.client", "RetryPolicy"),
    "NO_RETRY": ("cedx.runtime.client", "NO_RETRY"),
    "Outbox": ("cedx.runtime.outbox", "Outbox"),
    "OutboxItem": ("cedx.runtime.outbox", "OutboxItem"),
    "AddressFollower": ("cedx.runtime.outbox", "AddressFollower"),
    "models": ("cedx.generated.models", None),
    "trust": ("cedx.trust", None),
    "errors": ("cedx.errors", None),
    "SM2PrivateKey": ("cedx.trust.keys", "SM2PrivateKey"),
    "SM2PublicKey": ("cedx.trust.keys", "SM2PublicKey"),
    "load_private_key": ("cedx.trust.keys", "load_private_key"),
    "load_public_key": ("cedx.trust.keys", "load_public_key"),
    "CedxError": ("cedx._exceptions", "CedxError"),
    "ConfigurationError": ("cedx._exceptions", "ConfigurationError"),
    "TrustError": ("cedx._exceptions", "TrustError"),
}
for _name in (
    "ApiError", "AuthError", "AuthenticationError", "BadRequestError", "ConflictError", "ConnectionFailed",
    "ForbiddenError", "InvalidResponseError", "NotAcceptableError", "NotFoundError", "PayloadTooLargeError",
    "RateLimitedError", "ReceiptMismatch", "RequestTimeout", "ServerError", "SignatureVerificationError",
    "TransportError", "UnprocessableError", "UnsupportedMediaTypeError", "ValidationError",
):
    _LAZY[_name] = ("cedx.runtime.errors", _name)
del _name

__all__ = [
    "NO_RETRY", "AcquisitionClient", "AsyncAcquisitionClient", "AsyncCommonClient", "AsyncReportingClient",
    "AsyncTokenProvider", "AddressFollower", "ApiError", "AuthError", "AuthenticationError",
    "BadRequestError", "CedxError", "CommonClient", "ConfigurationError", "ConflictError", "ConnectionFailed",
    "ForbiddenError", "Format", "InvalidResponseError", "NotAcceptableError", "NotFoundError", "Outbox",
    "OutboxItem", "PayloadTooLargeError", "RateLimitedError", "ReceiptMismatch", "ReportingClient", "RequestTimeout",
    "RetryPolicy",
    "SM2PrivateKey", "SM2PublicKey", "ServerError", "SignatureVerificationError", "TokenProvider",
    "TransportError", "TrustError", "UnprocessableError", "UnsupportedMediaTypeError", "ValidationError",
    "__version__", "errors", "load_private_key", "load_public_key", "models", "trust",
]


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'cedx' has no attribute {name!r}") from None
    value = importlib.import_module(module)
    if attr is not None:
        value = getattr(value, attr)
    globals()[name] = value  # cached: the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
