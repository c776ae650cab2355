"""The reference acquisition source over HTTP, and the accounting step on what it serves."""

import datetime as dt
from decimal import Decimal

import pytest

from cedx import spec, trust
from cedx.accounting.guideline import LabReport, cement_report
from cedx.accounting.series import month_total, pull_month
from cedx.acquisition.app import create_source_app
from cedx.acquisition.batches import BatchError
from cedx.generated.client import AcquisitionClient
from cedx.instants import CST
from cedx.runtime.client import Format
from cedx.runtime.errors import AuthenticationError, NotFoundError
from cedx.trust import x509 as tx

from ..loopback import serve

MONTH = dt.datetime(2026, 10, 1, tzinfo=CST)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("source")
    app = create_source_app("cement", root, ["tok-0123456789abcdef"], commissioned=MONTH)
    ca = tx.load_certificate((root / "pki" / "ca.pem").read_bytes()).dump()
    with serve(app) as url:
        yield url, ca


def client(source, fmt=Format.JSON, token="tok-0123456789abcdef"):
    url, ca = source
    return AcquisitionClient(url, token=token, trust_anchors=[ca], format=fmt)


def test_points_and_instruments(source):
    c = client(source)
    points = list(c.iter_metering_points(limit=2))
    assert {p.point_id for p in points} == {"CEM-CLINKER", "CEM-KILN-COAL", "CEM-RAWMEAL"}
    p = c.get_metering_point("CEM-KILN-COAL", format=Format.XML)
    assert p.instrument.calibration.certificate_number and p.instrument.accuracy_class == "0.5"
    with pytest.raises(NotFoundError):
        c.get_metering_point("NOPE")
    with pytest.raises(AuthenticationError):
        client(source, token="wrong").get_source_info()


def test_batches_are_signed_chained_and_flagged(source):
    url, ca = source
    c = client(source, Format.XML)
    payloads = pull_month(c, "CEM-KILN-COAL", MONTH, [ca])
    assert len(payloads) == 31 and [p["sequenceNumber"] for p in payloads] == list(range(1, 32))
    assert all(p["count"] == 24 and p["step"] == "PT1H" for p in payloads)
    flags = set("".join(p["flags"] for p in payloads))
    assert {"N", "M", "D"} <= flags  # maintenance on the 14th, a feeder fault on the 20th
    for p in payloads[:3]:
        assert spec.validator().validate("MeasurementBatch", p) == []
    json_payloads = pull_month(client(source), "CEM-KILN-COAL", MONTH, [ca])
    assert json_payloads == payloads  # one logical record whatever the format
    other_ca = tx.create_ca(trust.generate_private_key(), {"common_name": "someone else"})
    with pytest.raises(BatchError):
        pull_month(c, "CEM-KILN-COAL", MONTH, [other_ca])


def test_statistics_agree_with_the_series(source):
    c = client(source)
    stats = c.get_period_statistics("CEM-CLINKER", period_type="day", from_="2026-10-13T16:00:00Z", to="2026-10-14T16:00:00Z")
    item = stats.payload.items[0]
    assert item.period == "2026-10-14" and 900 < item.valid_count <= 1440 - 8 * 60
    assert Decimal(item.coverage) < 1  # eight hours of maintenance
    assert spec.validator().validate("SignedPeriodStatistics", stats.model_dump(mode="json", by_alias=True, exclude_none=True)) == []


def test_accounting_from_the_source_satisfies_every_rule(source):
    url, ca = source
    c = client(source)
    totals = {p: month_total(pull_month(c, p, MONTH, [ca]), MONTH) for p in ("CEM-CLINKER", "CEM-KILN-COAL", "CEM-RAWMEAL")}
    clinker = totals["CEM-CLINKER"]
    assert clinker.substituted_hours == 8 and clinker.hours == 744
    assert 31 * 24 * 180 < clinker.total < 31 * 24 * 215  # a 5,000 t/d line
    lab = LabReport("LAB-1", "lab", "CNAS", "CNAS L12345", "SN-1", "clinker", "S-1", "P-1", "2026-10-01", "2026-10-31",
                    "2026-11-02", ["GB/T 176-2017"], {"cao": ("65.50", "%"), "cao_nc": ("0.80", "%"), "mgo": ("2.10", "%"),
                                                       "mgo_nc": ("0.10", "%"), "coal_ncv": ("23.514", "GJ/t")})
    report = cement_report(credit_code="91530100MA6K7L8M9M", name="西南示范水泥有限公司", period="2026-10", line_id="L1",
                           clinker_t=clinker.total, kiln_coal_t=totals["CEM-KILN-COAL"].total,
                           raw_meal_t=totals["CEM-RAWMEAL"].total, kiln_dust_t="1180.00", grid_mwh=Decimal("9120"),
                           lab=lab, evidence=[], prepared_at="2026-11-05T10:00:00+08:00")
    record = report.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert spec.validator().validate("MonthlyReport", record) == []
    sources = {p.source.value for p in (report.cement.lines[0].cao_content, report.combustion[0].carbon_content)}
    assert sources == {"measured", "default"}  # which factors were measured and which defaults is recorded
