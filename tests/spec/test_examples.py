"""Every example: valid against its schema and the XSD, rules hold, JSON ≡ XML, signatures real."""

import base64
import json

import pytest
from lxml import etree

from cedx import trust
from cedx.trust import tsa as tts
from cedx.trust import x509 as tx

from .conftest import EXAMPLES, PKI, XSD, example_path, example_usage, load_example

USAGE = example_usage()
JSON_EXAMPLES = sorted(n for n in USAGE if n.endswith(".json"))
XML_EXAMPLES = sorted(n for n in USAGE if n.endswith(".xml"))
CA = (PKI / "ca.pem").read_bytes()


def test_every_operation_example_file_exists():
    for name in USAGE:
        assert example_path(name).exists(), name
    assert len(XML_EXAMPLES) >= 20


@pytest.mark.parametrize("name", JSON_EXAMPLES)
def test_json_example_is_valid_and_consistent(name, validator):
    schema = USAGE[name][0]
    issues = validator.validate(schema, load_example(name))
    assert issues == [], [i.as_problem_item() for i in issues]


@pytest.fixture(scope="module")
def xsd():
    return etree.XMLSchema(etree.parse(str(XSD)))


@pytest.mark.parametrize("name", XML_EXAMPLES)
def test_xml_example_is_valid_and_equals_the_json(name, xsd, codec):
    data = (EXAMPLES / name).read_bytes()
    assert xsd.validate(etree.fromstring(data)), str(xsd.error_log)
    schema, record = codec.loads(data)
    assert schema == USAGE[name][0]
    assert record == load_example(name[:-4] + ".json")


def _signed_documents():
    for name in JSON_EXAMPLES:
        doc = load_example(name)
        if isinstance(doc, dict) and "signature" in doc:
            yield name, doc
        for i, item in enumerate(doc.get("items", []) if isinstance(doc, dict) else []):
            if isinstance(item, dict) and "signature" in item:
                yield f"{name}#items[{i}]", item


SIGNED = list(_signed_documents())


def _resolver(block):
    leaf = base64.b64decode(block["certificateChain"][0])
    return tx.validate_chain(leaf, trust_anchors=[CA])


@pytest.mark.parametrize("name,doc", SIGNED, ids=[n for n, _ in SIGNED])
def test_example_signatures_verify_against_the_example_pki(name, doc, codec):
    verified = trust.verify_document(doc, _resolver)
    if verified.timestamp_token:
        tts.verify_token(verified.timestamp_token, imprint=trust.sm3(verified.signature), trust_anchors=[CA])
    # The same signature verifies after a trip through XML.
    schema = USAGE.get(name.split("#")[0], ("",))[0]
    if "#" not in name and schema:
        _, back = codec.loads(codec.dumps(schema, doc))
        trust.verify_document(back, _resolver)


def test_receipts_digest_the_documents_they_confirm():
    for receipt, source in [("receipt-power.json", "monthly-report-power.json"), ("receipt-annual.json", "annual-report-power.json")]:
        digest = trust.sm3(trust.canonicalize(load_example(source))).hex()
        assert load_example(receipt)["payload"]["documentDigest"] == digest
        assert load_example(receipt)["signature"].get("timestampToken")


def test_batch_page_is_hash_chained():
    page = load_example("measurement-batch-page.json")
    payloads = [item["payload"] for item in page["items"]]
    trust.verify_chain(payloads)
    payloads[0]["values"][0] = "999.99"
    with pytest.raises(trust.ChainError):
        trust.verify_chain(payloads)


def test_monthly_examples_cover_all_five_industries():
    industries = {load_example(n)["payload"]["industry"] for n in JSON_EXAMPLES if n.startswith("monthly-report-")}
    assert industries == {"power", "cement", "steel", "coal_mining", "chemical"}


def test_examples_are_realistic_in_size():
    power = load_example("monthly-report-power.json")["payload"]
    assert [u["capacity"]["value"] for u in power["power"]["units"]] == ["660", "660"]
    cement = load_example("monthly-report-cement.json")["payload"]
    clinker = float(cement["cement"]["lines"][0]["clinkerOutput"]["value"])
    assert 31 * 5000 * 0.85 < clinker < 31 * 5000 * 1.05  # a 5,000 t/d line running a month
    assert json.dumps(power, ensure_ascii=False)
