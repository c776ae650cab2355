"""`make demo`: the whole chain on one machine, with no other software.

Two simulated source systems (a coal-fired unit, a 5,000 t/d clinker line) serve signed,
hash-chained metering data; the enterprise side pulls a month of it, verifies it, computes the
emissions with the guideline formulas, signs the monthly reports and submits them through a
durable outbox — power in JSON, cement in XML; the platform verifies, checks quality, stores,
and answers signed, time-stamped receipts. A correction and an announced address change follow.
Everything runs on free loopback ports with SQLite in a temporary directory and shuts down.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import secrets
import sys
import tempfile
import uuid
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from . import spec, trust
from .accounting import agreement
from .accounting.guideline import (
    Attachment,
    CoalUnit,
    LabReport,
    cement_report,
    evidence_ref,
    metered_gaps,
    power_report,
)
from .accounting.series import MonthTotal, month_total, pull_month
from .acquisition.app import create_source_app
from .generated import models
from .generated.client import AcquisitionClient, CommonClient, ReportingClient
from .generated.constants import INDUSTRIES
from .instants import CST
from .platform.admin import Admin
from .platform.app import create_app
from .platform.settings import PlatformSettings
from .runtime.client import Format, TokenProvider
from .runtime.outbox import AddressFollower, Outbox
from .runtime.serve import free_port
from .runtime.serve import serve_in_thread as serving
from .trust import tsa as tts
from .trust import x509 as tx

TOTAL_UNITS = {"t/h": "t", "MW": "MWh"}  # hourly averages of a rate, summed over hours


def _example_entities() -> dict[str, tuple[str, str]]:
    """One emission entity per industry, in the spec's order: the (credit code, name) of the
    spec's monthly-report example of that industry (the example PKI certifies the same codes),
    so an industry added to the spec with its example joins the demo without an edit here."""
    found: dict[str, tuple[str, str]] = {}
    examples = resources.files("cedx.generated").joinpath("examples")
    for path in sorted(examples.iterdir(), key=lambda p: p.name):
        if path.name.startswith("monthly-report-") and path.name.endswith(".json"):
            payload = json.loads(path.read_text(encoding="utf-8"))["payload"]
            found.setdefault(payload["industry"], (payload["creditCode"], payload["entityName"]))
    return {industry: found[industry] for industry in INDUSTRIES if industry in found}


ENTITIES = _example_entities()


def say(text: str = "") -> None:
    print(text, flush=True)


def _verified_receipt(record: dict[str, Any], anchors: list[bytes]) -> tuple[str, str]:
    verified = trust.verify_document(record, tx.ChainResolver(anchors))
    assert verified.timestamp_token is not None  # the platform time-stamps every receipt
    info = tts.verify_token(verified.timestamp_token, imprint=trust.sm3(verified.signature), trust_anchors=anchors)
    return "valid", info.gen_time.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S+08:00")


def main() -> int:
    today = dt.datetime.now(CST)
    month = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    period = month.strftime("%Y-%m")
    month_end = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    say("cedx demo — 数据获取 → 核算 → 签名报送 → 回执 / acquisition → accounting → signed submission → receipt")
    say(f"报告期 / period {period}; SM2 backend: {trust.get_backend().name}")
    with tempfile.TemporaryDirectory(prefix="cedx-demo-") as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        port_a, port_b = free_port(), free_port()
        settings_a = PlatformSettings(data_dir=root / "platform", database_url=None,
                                      successor_url=f"http://127.0.0.1:{port_b}",
                                      successor_from=today.isoformat(timespec="seconds"))
        settings_b = PlatformSettings(data_dir=root / "platform", database_url=None)
        admin = Admin(settings_a)
        anchors = [admin.pki.ca]
        keys, certs, secrets_ = {}, {}, {}
        for industry, (code, _name) in ENTITIES.items():
            admin.add_entity(code)
            secrets_[industry] = admin.add_client(code, f"{code}-erp")
            keys[industry] = trust.generate_private_key()
            certs[industry] = admin.issue_certificate(code, tx.create_csr(keys[industry], {"common_name": code}))
        say(f"\n平台 / platform: 已登记 {len(ENTITIES)} 个排放单位（每行业一个） / {len(ENTITIES)} entities registered, one per industry")

        source_secret = secrets.token_urlsafe(16)   # the accounting system's client secret at each source
        url_a = stack.enter_context(serving(create_app(settings_a), port_a))
        url_b_planned = f"http://127.0.0.1:{port_b}"
        sources = {site: stack.enter_context(serving(
            create_source_app(site, root / f"source-{site}", [], commissioned=month, clients={"accounting": source_secret}),
            free_port()))
            for site in ("power", "cement")}
        source_anchors = {site: tx.load_certificate((root / f"source-{site}" / "pki" / "ca.pem").read_bytes()).dump()
                          for site in sources}
        say(f"平台 / platform {url_a}; 数据源 / sources {sources['power']} (power), {sources['cement']} (cement)")

        pulled: dict[str, list[dict[str, Any]]] = {}

        def acquire(site: str, point: str, field: str,
                    item: str = "activity") -> tuple[MonthTotal, dict[str, Any], list[dict[str, Any]]]:
            client = AcquisitionClient(sources[site], trust_anchors=[source_anchors[site]], token_provider=TokenProvider(
                f"{sources[site]}/oauth/token", "accounting", source_secret, "acquisition:read"))
            mp = client.get_metering_point(point).model_dump(mode="json", by_alias=True, exclude_none=True)
            # signatures, hash chain and flag/value agreement against the instrument's range
            pulled[point] = pull_month(client, point, month, [source_anchors[site]], mp["instrument"]["range"])
            total = month_total(pulled[point], month, measurand=mp["measurand"])
            unit = TOTAL_UNITS.get(total.unit, total.unit)
            evidence = evidence_ref(total, f"SRC-{site.upper()}-01", field, unit, item)
            return total, evidence, metered_gaps(total, field, unit, item)

        def reporting_client(industry: str, url: str, fmt: Format) -> ReportingClient:
            code = ENTITIES[industry][0]
            return ReportingClient(url, token_provider=TokenProvider(f"{url}/oauth/token", f"{code}-erp", secrets_[industry]),
                                   signing_key=keys[industry], signing_certificate=certs[industry],
                                   trust_anchors=anchors, format=fmt)

        # --- power, JSON -------------------------------------------------------------------
        say("\n1. 发电（JSON）/ power (JSON): 拉取并验证签名与哈希链 / pull, verify signatures and hash chain")
        totals, evidence, gaps = {}, [], []
        fields = {"PWR-U1-COAL": ("power.units[0].coalConsumption", "coal_consumption"),
                  "PWR-U1-GEN": ("power.units[0].grossGeneration", "generation"),
                  "PWR-U1-SUPPLY": ("power.units[0].powerSupplied", "generation"),
                  "PWR-GRID-IMPORT": ("purchasedElectricity.amount", "generation")}
        for point, (field, item) in fields.items():
            totals[point], ev, gp = acquire("power", point, field, item)
            evidence.append(ev)
            gaps.extend(gp)
            t = totals[point]
            say(f"   {point:16} {t.total:12,.2f} {TOTAL_UNITS.get(t.unit, t.unit):4} batches {t.first_sequence}-{t.last_sequence}"
                f"  hours {t.hours} (valid {t.valid_hours}, substituted {t.substituted_hours}, stopped {t.stopped_hours})")
        for g in gaps:
            say(f"   数据替代 / substituted: {g['parameter']} {g['hours']} h flags {','.join(g['flags'])} by {g['method']}"
                f" (+{g['contribution']['value']} {g['contribution']['unit']})")

        def coal_lab(carbon: str, suffix: str = "") -> LabReport:
            report_no = f"JC-{period}-U1{suffix}"
            text = (f"入炉煤月度化验报告 / monthly as-fired coal report {report_no}\n"
                    f"Mt 9.80 %  Mad 2.10 %  Har 3.52 %  St 0.62 %  Qnet,ar 20.512 GJ/t  Cad {carbon} %\n").encode()
            return LabReport(lab_id=f"LAB-U1{suffix}", laboratory="江苏示范检测技术有限公司（示例） / example test laboratory",
                             scheme="CMA", accreditation_number="231012345678", report_number=report_no,
                             sample_type="as_fired_coal", sample_id=f"RL-{period}-U1", preparation_id=f"ZY-{period}-U1",
                             sampling_from=month.strftime("%Y-%m-01"),
                             sampling_to=(month_end - dt.timedelta(days=1)).strftime("%Y-%m-%d"),
                             analysis_date=today.date().isoformat(),
                             standards=["GB/T 476-2008", "GB/T 213-2008", "GB/T 211-2017", "GB/T 212-2008", "GB/T 483-2007"],
                             values={"ncv": ("20.512", "GJ/t"), "mt": ("9.80", "%"), "mad": ("2.10", "%"), "har": ("3.52", "%"),
                                     "st": ("0.62", "%"), "carbon": (carbon, "%")},
                             attachment=Attachment(f"ATT-LAB-U1{suffix}", "lab_report", f"入炉煤化验报告 {report_no}",
                                                   f"{report_no}.txt", "text/plain", text))

        gen = totals["PWR-U1-GEN"]

        def build_power(lab: LabReport, prepared: str) -> models.MonthlyReport:
            unit = CoalUnit(unit_id="U1", capacity_mw="660", coal_t=totals["PWR-U1-COAL"].total, generation_mwh=gen.total,
                            supply_mwh=totals["PWR-U1-SUPPLY"].total, heat_gj=Decimal("152000"),
                            running_hours=gen.hours - gen.stopped_hours, heat_supply_ratio="0.0830", lab=lab)
            return power_report(credit_code=ENTITIES["power"][0], name=ENTITIES["power"][1], period=period, units=[unit],
                                grid_mwh=totals["PWR-GRID-IMPORT"].total, grid_year=2025, evidence=evidence, gaps=gaps,
                                labs=[lab], prepared_at=prepared)

        power = build_power(coal_lab("58.05"), today.isoformat(timespec="seconds"))
        record = power.model_dump(mode="json", by_alias=True, exclude_none=True)
        disagreements = agreement.check(record, pulled)
        say(f"   核对 / agreement (R-EVID-002): {len(record['evidence'])} 项月累计量由已验签批次重算 / totals recomputed from "
            f"the signed batches: {'一致 / agree' if not disagreements else disagreements}")
        if disagreements:
            return 1
        assert power.power is not None and power.attachments  # the power builder fills both
        u1 = power.power.units[0]
        assert u1.carbon_content_as_received is not None  # measured by the lab
        say(f"   化验 / lab: Cad 58.05 % → Car {u1.carbon_content_as_received.value} % (GB/T 483); "
            f"附件 / attachment SM3 {power.attachments[0].sm3[:16]}…; 供电强度 / intensity {u1.intensity_power_supplied.value} tCO2/MWh")
        issues = spec.validator().validate("MonthlyReport", power.model_dump(mode="json", by_alias=True, exclude_none=True))
        if issues:
            say(f"   quality rules failed: {issues}")
            return 1
        client = reporting_client("power", url_a, Format.JSON)
        outbox = Outbox(root / "erp-outbox.db", client)
        item = outbox.enqueue(power)
        outbox.deliver()
        power_receipt = outbox.item(item).receipt
        assert power_receipt is not None  # delivered
        results = [("power", "JSON", power, power_receipt, url_a)]

        # --- correction --------------------------------------------------------------------
        say("2. 更正 / correction: 化验室复核收到基元素碳含量 / the lab revises the carbon content")
        corrected = build_power(coal_lab("57.91", "-R1"), dt.datetime.now(CST).isoformat(timespec="seconds"))
        corrected.submission_kind = models.SubmissionKind.correction
        corrected.replaces_submission_id = uuid.UUID(power_receipt["payload"]["submissionId"])
        corrected.reason = "元素碳检测复核 / carbon test rechecked"
        item2 = outbox.enqueue(corrected)
        outbox.deliver()
        correction_receipt = outbox.item(item2).receipt
        assert correction_receipt is not None  # delivered
        results.append(("power (correction)", "JSON", corrected, correction_receipt, url_a))

        # --- address change ----------------------------------------------------------------
        say("3. 配置地址变更 / address change: 平台公告新地址（已签名） / the platform announces a new address (signed)")
        url_b = stack.enter_context(serving(create_app(settings_b), port_b))
        assert url_b == url_b_planned
        follower = AddressFollower(client, CommonClient)
        switched = follower.check()
        assert switched is not None  # the signed configuration names the new address
        say(f"   {url_a} -> {switched}: 签名有效，已切换 / signature valid, switched")

        # --- cement, XML, to the new address -----------------------------------------------
        say("4. 水泥（XML，新地址）/ cement (XML, new address)")
        ctotals, cevidence, cgaps = {}, [], []
        for point, field in (("CEM-CLINKER", "cement.lines[0].clinkerOutput"), ("CEM-KILN-COAL", "combustion[0].consumption"),
                             ("CEM-RAWMEAL", "cement.lines[0].rawMealConsumption")):
            ctotals[point], ev, gp = acquire("cement", point, field)
            cevidence.append(ev)
            cgaps.extend(gp)
        clab = LabReport(lab_id="LAB-CEM", laboratory="云南示范建材检测中心（示例） / example building-materials laboratory",
                         scheme="CNAS", accreditation_number="CNAS L12345", report_number=f"SN-{period}-01",
                         sample_type="clinker", sample_id=f"SL-{period}", preparation_id=f"ZY-{period}",
                         sampling_from=month.strftime("%Y-%m-01"), sampling_to=month.strftime("%Y-%m-28"),
                         analysis_date=today.date().isoformat(), standards=["GB/T 176-2017", "GB/T 213-2008"],
                         values={"cao": ("65.50", "%"), "cao_nc": ("0.80", "%"), "mgo": ("2.10", "%"), "mgo_nc": ("0.10", "%"),
                                 "coal_ncv": ("23.514", "GJ/t")})
        cement = cement_report(credit_code=ENTITIES["cement"][0], name=ENTITIES["cement"][1], period=period,
                               line_id="L1-5000TPD", clinker_t=ctotals["CEM-CLINKER"].total,
                               kiln_coal_t=ctotals["CEM-KILN-COAL"].total, raw_meal_t=ctotals["CEM-RAWMEAL"].total,
                               kiln_dust_t="1180.00", bypass_dust_t="310.00", cement_t=ctotals["CEM-CLINKER"].total * Decimal("1.32"),
                               grid_mwh=Decimal("9120"), lab=clab, evidence=cevidence, gaps=cgaps,
                               prepared_at=today.isoformat(timespec="seconds"))
        cclient = reporting_client("cement", switched, Format.XML)
        creceipt = cclient.submit_monthly_report(cement).model_dump(mode="json", by_alias=True, exclude_none=True)
        results.append(("cement", "XML", cement, creceipt, switched))

        # --- each report read back in the other format: the same signature verifies ----------
        say("5. 以另一格式读回并验签 / read back in the other format and verify the same signature")
        for industry, fmt, receipt in (("power", Format.XML, correction_receipt), ("cement", Format.JSON, creceipt)):
            back = reporting_client(industry, switched, fmt).get_monthly_report(receipt["payload"]["submissionId"])
            trust.verify_document(back, keys[industry].public_key())
            digest = trust.sm3(trust.canonicalize(back)).hex()
            same = "一致 / matches" if digest == receipt["payload"]["documentDigest"] else "DIFFERS"
            say(f"   {ENTITIES[industry][1]} as {fmt.name}: signature valid; receipt digest {same}")
            if digest != receipt["payload"]["documentDigest"]:
                return 1

        # --- HJ 212 bridge (cedx.hj212): CEMS data logger → bridge → signed batches ---------
        from .hj212.demo import run_bridge_step

        say("6. HJ 212 网关 / HJ 212 bridge: 模拟 CEMS 数采仪 → 网关 → 签名链式批次 / simulated CEMS logger → bridge → signed, chained batches")
        if not run_bridge_step(root / "hj212-bridge", say):
            return 1

        # --- summary -----------------------------------------------------------------------
        say("\n汇总 / summary")
        header = f"{'单位 / entity':34} {'格式':5} {'燃烧':>12} {'过程':>12} {'电力':>10} {'合计 / total':>14}  {'版本':4} {'回执 / receipt':36}  签名 / TSA"
        say(header)
        for label, fmt_name, report, receipt, _url in results:
            rt = report.totals
            sig, when = _verified_receipt(receipt, anchors)
            say(f"{report.entity_name + ' ' + label:30} {fmt_name:5} {rt.combustion.value:>12,} {rt.process.value:>12,} "
                f"{rt.purchased_electricity.value:>10,} {rt.total.value:>14,} tCO2  v{receipt['payload']['version']}  "
                f"{receipt['payload']['receiptId']}  {sig} / {when}")
        listing = reporting_client("power", switched, Format.JSON).list_submissions(period=period).items
        say("\n发电报送状态 / power submissions: " + ", ".join(f"v{s.version} {s.state.value}" for s in sorted(listing, key=lambda s: s.version)))
        say(f"ERP 发件箱 / outbox: {outbox.counts()}")
    say("\n完成：服务已关闭 / done: services shut down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
