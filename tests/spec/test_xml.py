"""The JSON ⇄ XML mapping, its hardening, and the drift check between XSD and JSON Schemas."""

import re

import pytest
from lxml import etree

from cedx import trust
from cedx.spec.xmlcodec import XmlError
from generator.drift import check_drift
from generator.xsd import derive_xsd

from .conftest import EXAMPLES, SPEC, XSD, load_example

POWER_XML = (EXAMPLES / "monthly-report-power.xml").read_bytes()


def test_roundtrip_preserves_the_record(codec):
    doc = load_example("monthly-report-steel.json")
    name, back = codec.loads(codec.dumps("SignedMonthlyReport", doc))
    assert name == "SignedMonthlyReport" and back == doc


def test_empty_and_absent_arrays_stay_distinct(codec):
    doc = load_example("monthly-report-power.json")
    doc["payload"]["combustion"] = []
    doc["payload"].pop("evidence")
    _, back = codec.loads(codec.dumps("SignedMonthlyReport", doc))
    assert back["payload"]["combustion"] == [] and "evidence" not in back["payload"]


def test_signature_survives_json_to_xml_and_back():
    """Sign, send as JSON, convert to XML and back: the same signature verifies; a change breaks it."""
    import json

    import cedx.spec as spec

    key = trust.generate_private_key()
    report = load_example("monthly-report-cement.json")["payload"]
    envelope = trust.sign_document(report, key, envelope_fields={"specVersion": "1.0"})
    received = json.loads(json.dumps(envelope, ensure_ascii=False))
    codec = spec.xml_codec()
    xml = codec.dumps("SignedMonthlyReport", received)
    _, back = codec.loads(xml)
    trust.verify_document(back, key.public_key())
    tampered = xml.replace(b"<value>147250.00</value>", b"<value>147250.01</value>")
    assert tampered != xml
    _, changed = codec.loads(tampered)
    with pytest.raises(trust.InvalidSignature):
        trust.verify_document(changed, key.public_key())


@pytest.mark.parametrize(
    "data,code",
    [
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Entity xmlns="urn:cedx:1.0">&e;</Entity>',
         "XML_FORBIDDEN_CONSTRUCT"),
        (b'<!DOCTYPE lol [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><Entity xmlns="urn:cedx:1.0">&b;</Entity>',
         "XML_FORBIDDEN_CONSTRUCT"),
        (b'<Entity xmlns="urn:cedx:1.0"><?php evil() ?></Entity>', "XML_FORBIDDEN_CONSTRUCT"),
        (b"<Entity xmlns='urn:cedx:1.0'><name>x</name", "MALFORMED_BODY"),
        (b"<Entity xmlns='urn:other'/>", "MALFORMED_BODY"),
        (b"<Nonsense xmlns='urn:cedx:1.0'/>", "MALFORMED_BODY"),
    ],
    ids=["external-entity", "entity-expansion", "processing-instruction", "not-well-formed", "wrong-namespace", "unknown-root"],
)
def test_hostile_and_malformed_xml_is_refused(codec, data, code):
    with pytest.raises(XmlError) as exc:
        codec.loads(data)
    assert exc.value.code == code


def test_structural_errors_name_the_path(codec):
    bad = POWER_XML.replace(b"<fuelCode>diesel</fuelCode>", b"<fuelCode>diesel</fuelCode><colour>red</colour>")
    with pytest.raises(XmlError) as exc:
        codec.loads(bad)
    assert exc.value.path == "$.payload.combustion[0].colour"
    dup = POWER_XML.replace(b"<period>2026-10</period>", b"<period>2026-10</period><period>2026-11</period>")
    with pytest.raises(XmlError, match="more than once"):
        codec.loads(dup)
    wrong_item = POWER_XML.replace(b"<fuel>", b"<fuels>", 1).replace(b"</fuel>", b"</fuels>", 1)
    with pytest.raises(XmlError, match="expected element fuel"):
        codec.loads(wrong_item)
    with pytest.raises(XmlError, match="expected root element Entity"):
        codec.loads(POWER_XML, "Entity")


def test_xml_values_are_validated_like_json(codec, validator):
    bad = POWER_XML.replace(b"<unit>MW</unit>", b"<unit>megawatt</unit>", 1)
    _, record = codec.loads(bad)
    found = {(i.code, i.path) for i in validator.validate("SignedMonthlyReport", record)}
    assert ("R-UNIT-001", "$.payload.power.units[0].capacity.unit") in found


def test_derived_xsd_matches_the_committed_one(bundled):
    from generator.bundle import bundle_core
    from generator.load import load_spec

    assert derive_xsd(bundle_core(load_spec(SPEC))) == XSD.read_bytes()


def test_drift_check_passes_and_catches_edits(index):
    xsd = XSD.read_bytes()
    assert check_drift(index, xsd) == []
    # A removed element, a changed cardinality, a dropped enumeration, a renamed type: each named.
    edits = {
        b'<xs:element name="reason" minOccurs="0" type="c:Text"/>': (b"", "MonthlyReport: element names/order differ"),
        b'<xs:element name="entityName" type="c:Text"/>': (b'<xs:element name="entityName" minOccurs="0" type="c:Text"/>', "MonthlyReport.entityName: cardinality"),
        b'<xs:enumeration value="coal_mining"/>': (b"", "Industry: enumeration differs"),
        b'<xs:element name="totals" type="c:EmissionTotals"/>': (b'<xs:element name="totals" type="c:Quantity"/>', "type Quantity != EmissionTotals"),
    }
    for old, (new, message) in edits.items():
        assert old in xsd, old
        problems = check_drift(index, xsd.replace(old, new, 1))
        assert any(message in p for p in problems), (message, problems)


def test_xsd_rejects_what_the_json_schema_rejects(codec):
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    for old, new in [(b"<value>35.20</value>", b"<value>3.52e1</value>"),
                     (b"<creditCode>91320500MA1X2P3Q4R</creditCode>", b"<creditCode>9132050OMA1X2P3Q4R</creditCode>"),
                     (b"<industry>power</industry>", b"<industry>thermal</industry>")]:
        assert old in POWER_XML
        assert not schema.validate(etree.fromstring(POWER_XML.replace(old, new, 1)))
    assert schema.validate(etree.fromstring(POWER_XML))
    assert re.search(rb'targetNamespace="urn:cedx:1\.0"', XSD.read_bytes())
