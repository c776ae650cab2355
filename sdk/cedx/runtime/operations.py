"""Operation metadata: what the generated client and server stubs hand to the runtime."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..spec import BUNDLE_PACKAGE


@dataclass(frozen=True)
class OperationInfo:
    operation_id: str
    method: str
    path: str
    interface: str
    body_schema: str | None = None
    body_media: tuple[str, ...] = ()
    response_schema: str | None = None
    response_media: tuple[str, ...] = ()
    success_status: int = 200
    scopes: tuple[str, ...] = ()
    request_signature: str | None = None
    idempotent: bool = False
    paginated: bool = False
    signed_request: dict[str, Any] | None = None
    signed_response: dict[str, Any] | None = None
    path_params: tuple[str, ...] = ()
    query_params: dict[str, str] = field(default_factory=dict)  # python name -> wire name
    spec_package: str = BUNDLE_PACKAGE  # whose bundled spec validates and maps this operation
