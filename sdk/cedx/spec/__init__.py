"""cedx.spec — the specification at run time.

The bundled spec (generated from spec/ into ``cedx/generated/openapi.json``) drives the
validator, the quality-rule engine and the JSON ⇄ XML codec, so the SDK, the platform and the
inspector apply exactly the rules the spec states.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from .schema import SchemaIndex
from .validate import Issue, Validator
from .xmlcodec import XmlCodec, XmlError

BUNDLE_PACKAGE = "cedx.generated"
BUNDLE_FILE = "openapi.json"
XSD_FILE = "cedx.xsd"


@lru_cache(maxsize=1)
def bundled_spec() -> dict:
    """The bundled OpenAPI document shipped in the package."""
    text = resources.files(BUNDLE_PACKAGE).joinpath(BUNDLE_FILE).read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def index() -> SchemaIndex:
    return SchemaIndex(bundled_spec())


@lru_cache(maxsize=1)
def validator() -> Validator:
    return Validator(index())


@lru_cache(maxsize=1)
def xml_codec() -> XmlCodec:
    return XmlCodec(index())


def xsd_bytes() -> bytes:
    return resources.files(BUNDLE_PACKAGE).joinpath(XSD_FILE).read_bytes()


__all__ = [
    "Issue", "SchemaIndex", "Validator", "XmlCodec", "XmlError",
    "bundled_spec", "index", "validator", "xml_codec", "xsd_bytes",
]
