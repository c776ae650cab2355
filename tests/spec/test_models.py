"""The generated pydantic models: every example round-trips, values are exact, floats refused."""

import base64
import datetime as dt
import json
from decimal import Decimal

import pytest
from pydantic import ValidationError

from cedx import trust
from cedx.generated import models as m
from cedx.trust import x509 as tx

from .conftest import PKI, example_path, example_usage, load_example

USAGE = example_usage()
JSON_EXAMPLES = sorted(n for n in USAGE if n.endswith(".json"))


@pytest.mark.parametrize("name", JSON_EXAMPLES)
def test_every_example_roundtrips_through_its_model(name):
    model = getattr(m, USAGE[name][0])
    raw = example_path(name).read_text(encoding="utf-8")
    obj = model.model_validate_json(raw)
    assert obj.model_dump(mode="json", by_alias=True, exclude_none=True) == json.loads(raw)


def test_values_are_exact_and_typed():
    report = m.SignedMonthlyReport.model_validate(load_example("monthly-report-power.json")).payload
    coal = report.power.units[0].coal_consumption.value
    assert isinstance(coal, Decimal) and str(coal) == "152340.50"
    assert report.prepared_at.utcoffset() == dt.timedelta(hours=8)
    assert report.industry.value == "power"


def test_signature_verifies_from_the_model():
    ca = (PKI / "ca.pem").read_bytes()
    signed = m.SignedMonthlyReport.model_validate(load_example("monthly-report-coal.json"))

    def resolve(block):
        return tx.validate_chain(base64.b64decode(block["certificateChain"][0]), trust_anchors=[ca])

    trust.verify_document(signed, resolve)
    signed.payload.coal_mining.ch4_flared.value = Decimal("12.01")
    with pytest.raises(trust.InvalidSignature):
        trust.verify_document(signed, resolve)


@pytest.mark.parametrize("bad", [35.2, 35, "3.52e1", "+35.2", " 35.2"])
def test_decimal_fields_refuse_floats_and_non_plain_strings(bad):
    doc = load_example("monthly-report-power.json")
    doc["payload"]["combustion"][0]["consumption"]["value"] = bad
    with pytest.raises(ValidationError, match="R-DEC-001"):
        m.SignedMonthlyReport.model_validate_json(json.dumps(doc))


def test_instants_need_an_offset_and_unknown_fields_are_refused():
    doc = load_example("monthly-report-power.json")
    doc["payload"]["preparedAt"] = "2026-11-05T10:30:00"
    with pytest.raises(ValidationError, match="R-TIME-001"):
        m.SignedMonthlyReport.model_validate(doc)
    doc = load_example("monthly-report-power.json")
    doc["payload"]["colour"] = "red"
    with pytest.raises(ValidationError, match="Extra inputs"):
        m.SignedMonthlyReport.model_validate(doc)


def test_python_construction_by_field_name():
    q = m.Quantity(value=Decimal("1.50"), unit="t")
    assert q.model_dump(mode="json") == {"value": "1.50", "unit": "t"}
    assert m.Quantity(value="2", unit="kg").value == 2
    with pytest.raises(ValidationError):
        m.Quantity(value=1.5, unit="t")
