"""cedx.spec — the specification at run time.

The bundled spec (generated from spec/ into ``cedx/generated/openapi.json``) drives the
validator, the quality-rule engine and the JSON ⇄ XML codec, so the SDK, the platform and the
inspector apply exactly the rules the spec states.
"""

from __future__ import annotations

import json
from functools import cache, cached_property
from importlib import resources
from typing import TYPE_CHECKING, Any

from .schema import SchemaIndex

if TYPE_CHECKING:
    from .issue import Issue
    from .validate import Validator
    from .xmlcodec import XmlCodec, XmlError

# The validator (rule engine) and the XML codec (lxml) load on first use: a client that only
# sends JSON never pays for them at import.
_LAZY = {"Issue": "issue", "Validator": "validate", "XmlCodec": "xmlcodec", "XmlError": "xmlcodec"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value

BUNDLE_PACKAGE = "cedx.generated"
BUNDLE_FILE = "openapi.json"
XSD_FILE = "cedx.xsd"


class SpecContext:
    """The index, validator and XML codec of one generated package's bundled spec."""

    def __init__(self, package: str):
        self.package = package
        text = resources.files(package).joinpath(BUNDLE_FILE).read_text(encoding="utf-8")
        self.spec: dict[str, Any] = json.loads(text)
        self.index = SchemaIndex(self.spec)

    @cached_property
    def validator(self) -> Validator:
        from .validate import Validator

        return Validator(self.index)

    @cached_property
    def xml_codec(self) -> XmlCodec:
        from .xmlcodec import XmlCodec

        return XmlCodec(self.index)

    def xsd_bytes(self) -> bytes:
        return resources.files(self.package).joinpath(XSD_FILE).read_bytes()

    @cached_property
    def xml_schema(self) -> Any:
        """The derived XSD, compiled once (lxml)."""
        from lxml import etree

        return etree.XMLSchema(etree.fromstring(self.xsd_bytes()))


@cache
def context(package: str = BUNDLE_PACKAGE) -> SpecContext:
    """The spec of a generated package (default: the SDK's own, cedx.generated)."""
    return SpecContext(package)


def bundled_spec() -> dict[str, Any]:
    return context().spec


def index() -> SchemaIndex:
    return context().index


def validator() -> Validator:
    return context().validator


def xml_codec() -> XmlCodec:
    return context().xml_codec


def xsd_bytes() -> bytes:
    return context().xsd_bytes()


__all__ = [
    "Issue", "SchemaIndex", "SpecContext", "Validator", "XmlCodec", "XmlError", "context",
    "bundled_spec", "index", "validator", "xml_codec", "xsd_bytes",
]
