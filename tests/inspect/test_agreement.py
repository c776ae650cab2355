"""Case 2.5 (rule R-EVID-002): a monthly report agrees with the signed acquisition batches its
evidence references — against the reference platform and the reference power source, and with
a report that understates its coal beyond the rounding tolerance."""

import dataclasses
import datetime as dt
import json
from decimal import Decimal

import pytest

from cedx.inspect.local import ReferencePlatform, provision_agreement
from cedx.inspect.runner import run
from cedx.instants import CST

from ..loopback import serve
from .conftest import source_app

TOKEN = "inspect-token-0123"


@pytest.fixture(scope="module")
def platform_and_source(tmp_path_factory):
    month = (dt.datetime.now(CST).replace(day=1) - dt.timedelta(days=40)).replace(day=1, hour=0, minute=0, second=0,
                                                                                 microsecond=0)
    app, ca = source_app(tmp_path_factory.mktemp("source"))
    with ReferencePlatform(tmp_path_factory.mktemp("platform"), successor=False, provision=False) as target, \
            serve(app) as url:
        target.agreement = provision_agreement(target, url, TOKEN, ca, month)
        yield target, url, ca, month


def _case(target):
    item = run(target, [2])["items"][0]
    return item, next(c for c in item["cases"] if c["case_id"] == "2.5")


def test_the_reference_report_agrees_with_the_reference_source(platform_and_source):
    target, *_ = platform_and_source
    item, case = _case(target)
    assert case["verdict"] == "pass", case["reason"]
    assert item["result"] == "pass"
    pulled = [x for x in case["exchanges"] if "/v1/acquisition/points/" in x["url"] and "/batches" in x["url"]]
    assert {p for p in ("PWR-U1-COAL", "PWR-U1-GEN", "PWR-U1-SUPPLY", "PWR-GRID-IMPORT")
            if any(p in x["url"] for x in pulled)} == {"PWR-U1-COAL", "PWR-U1-GEN", "PWR-U1-SUPPLY", "PWR-GRID-IMPORT"}


def test_without_the_material_the_case_is_not_applicable_and_says_why(platform_and_source):
    target, *_ = platform_and_source
    _, case = _case(dataclasses.replace(target, agreement=None))
    assert case["verdict"] == "not-applicable" and "--agreement-source" in case["reason"]


def test_a_report_understating_its_coal_fails_naming_field_and_rule(platform_and_source):
    """The entity corrects its report with 0.5 t less coal in both the reported field and the
    evidence total (the report stays consistent in itself and the platform accepts it); the
    signed batches give the true total, 100 times the tolerance of 0.005 t away."""
    target, url, ca, month = platform_and_source
    honest = target.agreement
    material = provision_agreement(target, url, TOKEN, ca, month, understate_coal=Decimal("0.5"),
                                   replaces=honest.submission_id)
    _, case = _case(dataclasses.replace(target, agreement=material))
    assert case["verdict"] == "fail"
    assert "R-EVID-002 $.evidence[0].total.value: PWR-U1-COAL: batches give" in case["reason"]
    assert "R-EVID-002 $.power.units[0].coalConsumption.value: power.units[0].coalConsumption = " in case["reason"]
    # the same understated report as a signed file (--agreement-report) fails the same way
    document = target.reporting().get_monthly_report(material.submission_id).model_dump(mode="json", by_alias=True,
                                                                                         exclude_none=True)
    from_file = dataclasses.replace(material, submission_id=None, report=json.loads(json.dumps(document)))
    _, case = _case(dataclasses.replace(target, agreement=from_file))
    assert case["verdict"] == "fail" and "$.power.units[0].coalConsumption.value" in case["reason"]
    # a tampered file does not get as far as the batches
    from_file.report["payload"]["power"]["units"][0]["coalConsumption"]["value"] = "1"
    _, case = _case(dataclasses.replace(target, agreement=from_file))
    assert case["verdict"] == "fail" and "signature does not verify" in case["reason"]


def test_cli_options_supply_the_material(platform_and_source, tmp_path):
    from cedx.trust import x509 as tx

    from ..cli.test_inspect_cmds import _files, _run

    target, url, ca, _ = platform_and_source
    _files(tmp_path, target)
    (tmp_path / "source-ca.pem").write_bytes(tx.to_pem(ca))
    extra = ["--agreement-source", url, "--agreement-ca", str(tmp_path / "source-ca.pem"),
             "--agreement-token-env", "SOURCE_TOKEN", "--agreement-submission", target.agreement.submission_id]
    ok = _run(tmp_path, target.url, target, [2], tmp_path / "ok", extra=extra, env={"SOURCE_TOKEN": TOKEN})
    assert ok.returncode == 0, ok.stdout + ok.stderr
    report = json.loads((tmp_path / "ok" / "report.json").read_text(encoding="utf-8"))
    assert {c["case_id"]: c["verdict"] for c in report["items"][0]["cases"]}["2.5"] == "pass"
    assert TOKEN not in (tmp_path / "ok" / "report.json").read_text(encoding="utf-8")
    usage = _run(tmp_path, target.url, target, [2], tmp_path / "usage", extra=extra[:4])   # no report, no token
    assert usage.returncode == 2 and "--agreement-submission" in usage.stderr + usage.stdout
