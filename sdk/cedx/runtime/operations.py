"""Operation metadata: what the generated client and server stubs hand to the runtime. A
NamedTuple, not a dataclass: importing the client stays clear of dataclasses and inspect
(issue 14, target 4)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from ..spec import BUNDLE_PACKAGE

_NO_QUERY: Mapping[str, str] = MappingProxyType({})


class OperationInfo(NamedTuple):
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
    query_params: Mapping[str, str] = _NO_QUERY  # python name -> wire name
    spec_package: str = BUNDLE_PACKAGE  # whose bundled spec validates and maps this operation
