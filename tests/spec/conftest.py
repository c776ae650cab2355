import copy
import json
from pathlib import Path

import pytest
import yaml

from cedx.spec.schema import SchemaIndex
from cedx.spec.validate import Validator
from cedx.spec.xmlcodec import XmlCodec
from generator.bundle import example_schemas

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "spec"
GENERATED = REPO / "sdk" / "cedx" / "generated"
EXAMPLES = GENERATED / "examples"  # signed JSON and every XML form (sources: spec/examples/*.json)
PKI = SPEC / "examples" / "pki"
XSD = GENERATED / "cedx.xsd"


@pytest.fixture(scope="session")
def source_doc() -> dict:
    return yaml.safe_load((SPEC / "openapi.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def bundled() -> dict:
    return json.loads((REPO / "sdk/cedx/generated/openapi.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def index(bundled) -> SchemaIndex:
    return SchemaIndex(bundled)


@pytest.fixture(scope="session")
def validator(index) -> Validator:
    return Validator(index)


@pytest.fixture(scope="session")
def codec(index) -> XmlCodec:
    return XmlCodec(index)


def example_usage() -> dict[str, tuple[str, str]]:
    doc = yaml.safe_load((SPEC / "openapi.yaml").read_text(encoding="utf-8"))
    return example_schemas(doc)


def example_path(name: str) -> Path:
    """The example as published: the generated form where the generator made one (signatures,
    every XML), else the source."""
    generated = EXAMPLES / name
    return generated if generated.exists() else SPEC / "examples" / name


def load_example(name: str):
    return json.loads(example_path(name).read_text(encoding="utf-8"))


@pytest.fixture
def power_report():
    return copy.deepcopy(load_example("monthly-report-power.json"))
