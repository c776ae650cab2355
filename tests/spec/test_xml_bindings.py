"""Generated XML mapping: documents ⇄ pydantic models ⇄ xsdata bindings."""

import pytest

from cedx.generated import models, xml
from cedx.spec.xmlcodec import XmlError

from .conftest import EXAMPLES, example_usage

XML_EXAMPLES = sorted(n for n in example_usage() if n.endswith(".xml"))


@pytest.mark.parametrize("name", XML_EXAMPLES)
def test_every_xml_example_maps_to_model_and_binding_and_back(name):
    data = (EXAMPLES / name).read_bytes()
    model = xml.from_xml(data)
    assert xml.to_xml(model) == data
    binding = xml.to_binding(model)
    assert type(binding).__name__ == type(model).__name__
    assert xml.from_binding(binding) == model


def test_expected_type_is_enforced_and_hostile_xml_refused():
    data = (EXAMPLES / "entity-power.xml").read_bytes()
    assert isinstance(xml.from_xml(data, models.Entity), models.Entity)
    with pytest.raises(XmlError):
        xml.from_xml(data, models.SignedReceipt)
    with pytest.raises(XmlError):
        xml.from_xml(b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Entity xmlns="urn:cedx:1.0">&e;</Entity>')
