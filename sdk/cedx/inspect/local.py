"""`make inspect`: start the reference platform and an acquisition source on loopback (SQLite),
provision what an inspection body agrees with an operator beforehand, inspect both, and write
the reports under build/inspection/.

`ReferencePlatform` is also what the tests inspect: the platform, a successor instance on the
same data (an address change being served), and the provisioned material — a second entity's
client, a certificate revoked after registration, one registered and since expired, and an
expired token of the inspector's client. `make inspect` also submits a monthly report computed
from the reference source's signed batches (`provision_agreement`), for case 2.5 (R-EVID-002).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import requests

from ..acquisition.app import create_source_app
from ..acquisition.confidential import ClientCredentials
from ..generated import models
from ..instants import CST
from ..platform.admin import Admin
from ..platform.app import create_app
from ..platform.settings import PlatformSettings
from ..runtime.serve import free_port
from ..runtime.serve import serve_in_thread as serving
from ..trust import generate_private_key
from ..trust import x509 as tx
from .runner import main_progress, run, write
from .target import AgreementMaterial, Credential, OtherEntity, Target

ENTITY, OTHER = "91320500MA1X2P3Q4R", "91350100M000100Y43"


class ReferencePlatform(contextlib.ExitStack):
    """The reference platform on loopback with everything an inspection needs provisioned.

    ``wrap`` wraps the platform's ASGI app (tests seed wire-level faults with it);
    ``provision=False`` skips the material whose making takes a moment (expired token and
    certificate). Entering yields the Target to inspect."""

    def __init__(self, root: Path, *, rate_limit: int = 10**6, successor: bool = True, provision: bool = True,
                 wrap: Callable[[Any], Any] | None = None, database_url: str | None = None,
                 successor_overrides: dict[str, Any] | None = None,
                 serve_successor: bool = True):
        super().__init__()
        self.root, self.successor, self.provision, self.wrap = root, successor, provision, wrap
        self.successor_overrides, self.serve_successor = successor_overrides or {}, serve_successor
        port = self.successor_port = free_port()
        while self.successor_port == port:  # two calls may get the same freed port back
            self.successor_port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.successor_url = f"http://127.0.0.1:{self.successor_port}" if successor else None
        self.settings = PlatformSettings(
            data_dir=root, database_url=database_url, base_url=self.url, rate_limit_per_minute=rate_limit,
            successor_url=self.successor_url)
        self.port = port
        self.admin = Admin(self.settings)
        a = self.admin
        a.add_entity(ENTITY)
        self.secret = a.add_client(ENTITY, "inspector")
        self.key = generate_private_key()
        self.cert = a.issue_certificate(ENTITY, tx.create_csr(self.key, {"common_name": ENTITY}))
        a.add_entity(OTHER)
        self.other = OtherEntity("inspector-other", a.add_client(OTHER, "inspector-other"), OTHER)
        self.revoked: Credential | None = None
        self.expired: Credential | None = None
        self.expired_token: str | None = None

    def _provision(self) -> None:
        """A revoked certificate (registered, then revoked), a certificate registered while valid
        that has since expired, and an expired token of the inspector's client (issued by an
        instance configured for one-second tokens: the platform's own code path)."""
        a = self.admin
        key = generate_private_key()
        cert = a.issue_certificate(ENTITY, tx.create_csr(key, {"common_name": ENTITY}))
        a.revoke_certificate(tx.certificate_public_key(cert).fingerprint())
        self.revoked = Credential(key, cert)
        key = generate_private_key()
        not_before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1, seconds=-2)
        cert = tx.issue_certificate(tx.create_csr(key, {"common_name": ENTITY}), a.pki.ca, a.pki.ca_key,
                                    days=1, not_before=not_before)
        a.add_certificate(ENTITY, cert)
        self.expired = Credential(key, cert)
        short = dataclasses.replace(self.settings, token_lifetime=1)
        with serving(create_app(short), free_port()) as url:
            resp = requests.post(f"{url}/oauth/token", timeout=30, data={
                "grant_type": "client_credentials", "client_id": "inspector", "client_secret": self.secret})
            resp.raise_for_status()
            self.expired_token = resp.json()["access_token"]
        # Both lapse within a few seconds (certificate times have one-second resolution).
        lapsed = max(not_before + dt.timedelta(days=1, seconds=1), dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1.1))
        time.sleep(max(0.0, (lapsed - dt.datetime.now(dt.timezone.utc)).total_seconds()))

    def target(self, url: str | None = None) -> Target:
        return Target(url=url or self.url, interface="reporting", trust_anchors=[self.admin.pki.ca],
                      client_id="inspector", client_secret=self.secret, key=self.key, certificate=self.cert,
                      credit_code=ENTITY, expired_token=self.expired_token, other=self.other,
                      revoked=self.revoked, expired=self.expired, expect_successor=self.successor_url)

    def __enter__(self) -> Target:  # type: ignore[override]
        super().__enter__()
        # The address change is announced without an effectiveFrom setting: the platform then
        # makes it effective from the document's validFrom, so it is in force during the inspection.
        app = create_app(self.settings)
        self.enter_context(serving(self.wrap(app) if self.wrap else app, self.port))
        if self.successor:
            later = dataclasses.replace(self.settings, base_url=self.successor_url, successor_url=None, successor_from=None,
                                        **self.successor_overrides)
            if self.serve_successor:
                self.enter_context(serving(create_app(later), self.successor_port))
        if self.provision:
            self._provision()
        return self.target()


#: The reference power source's points that a monthly report states, with the field each supports
#: and the factor-table precision item of its total.
AGREEMENT_POINTS = {"PWR-U1-COAL": ("power.units[0].coalConsumption", "coal_consumption"),
                    "PWR-U1-GEN": ("power.units[0].grossGeneration", "generation"),
                    "PWR-U1-SUPPLY": ("power.units[0].powerSupplied", "generation"),
                    "PWR-GRID-IMPORT": ("purchasedElectricity.amount", "generation")}
TOTAL_UNITS = {"t/h": "t", "MW": "MWh"}  # hourly values of a rate, summed over hours


def provision_agreement(target: Target, source_url: str, source_token: str, source_ca: bytes, month: dt.datetime, *,
                        understate_coal: Decimal = Decimal(0), replaces: str | None = None) -> AgreementMaterial:
    """What an operator shows an inspection body for case 2.5: a monthly power report computed
    from the reference power source's signed batches of ``month`` (pulled, verified, totalled with
    conservative substitution; evidence and data gaps recorded), submitted to the platform by the
    inspected entity. ``understate_coal`` (tests) lowers the coal total in the report and its
    evidence by that many tonnes, a report that disagrees with its batches; ``replaces`` submits it
    as a correction of that submission (the period already has one)."""
    from ..accounting.guideline import CoalUnit, LabReport, evidence_ref, metered_gaps, power_report
    from ..accounting.series import month_total, pull_month
    from ..generated.client import AcquisitionClient, ReportingClient
    from ..runtime.client import TokenProvider

    source = AcquisitionClient(source_url, token=source_token, trust_anchors=[source_ca])
    totals, evidence, gaps = {}, [], []
    for point, (field, item) in AGREEMENT_POINTS.items():
        mp = source.get_metering_point(point).model_dump(mode="json", by_alias=True, exclude_none=True)
        total = month_total(pull_month(source, point, month, [source_ca], mp["instrument"]["range"]), month,
                            measurand=mp["measurand"])
        if point == "PWR-U1-COAL" and understate_coal:
            total = dataclasses.replace(total, total=total.total - understate_coal)
        unit = TOTAL_UNITS.get(total.unit, total.unit)
        totals[point] = total
        evidence.append(evidence_ref(total, source.get_source_info().source_id, field, unit, item))
        gaps += metered_gaps(total, field, unit, item)
    gen = totals["PWR-U1-GEN"]
    period = month.astimezone(CST).strftime("%Y-%m")
    last_day = (month.astimezone(CST).replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
    lab = LabReport(lab_id="LAB-U1", laboratory="参考检测实验室 / reference laboratory", scheme="CMA",
                    accreditation_number="231012345678", report_number=f"JC-{period}-U1", sample_type="as_fired_coal",
                    sample_id=f"RL-{period}-U1", preparation_id=f"ZY-{period}-U1", sampling_from=f"{period}-01",
                    sampling_to=last_day.strftime("%Y-%m-%d"), analysis_date=dt.date.today().isoformat(),
                    standards=["GB/T 476-2008", "GB/T 213-2008", "GB/T 211-2017", "GB/T 212-2008", "GB/T 483-2007"],
                    values={"ncv": ("20.512", "GJ/t"), "mt": ("9.80", "%"), "mad": ("2.10", "%"), "carbon": ("58.05", "%")})
    unit1 = CoalUnit(unit_id="U1", capacity_mw="660", coal_t=totals["PWR-U1-COAL"].total, generation_mwh=gen.total,
                     supply_mwh=totals["PWR-U1-SUPPLY"].total, heat_gj=Decimal(0), running_hours=gen.hours - gen.stopped_hours,
                     heat_supply_ratio="0", lab=lab)
    report = power_report(credit_code=cast(str, target.credit_code), name="参考电厂 / reference plant", period=period,
                          units=[unit1], grid_mwh=totals["PWR-GRID-IMPORT"].total, grid_year=2025, evidence=evidence,
                          gaps=gaps, labs=[lab], prepared_at=dt.datetime.now(CST).isoformat(timespec="seconds"))
    if replaces:
        report.submission_kind = models.SubmissionKind.correction
        report.replaces_submission_id = uuid.UUID(replaces)
        report.reason = "更正 / correction"
    tokens = TokenProvider(f"{target.url}/oauth/token", cast(str, target.client_id), cast(str, target.client_secret))
    with ReportingClient(target.url, token_provider=tokens, signing_key=target.key, signing_certificate=target.certificate,
                         trust_anchors=target.trust_anchors) as client:
        receipt = client.submit_monthly_report(report)
    return AgreementMaterial(source_url, [source_ca], token=source_token, submission_id=str(receipt.payload.submission_id))


def _confidential_client() -> tuple[bytes, ClientCredentials]:
    """A client CA the source trusts for its confidentiality mode, and a client certificate from
    it (case A9.4): the material an inspection body brings for that mode."""
    ca_key, key = generate_private_key(), generate_private_key()
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    ca = tx.create_ca(ca_key, {"country_name": "CN", "common_name": "inspection body CA"}, not_before=start)
    cert = tx.issue_certificate(tx.create_csr(key, {"country_name": "CN", "common_name": ENTITY}), ca, ca_key,
                                not_before=start)
    return ca, ClientCredentials(key, [cert, ca], ENTITY)


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "build/inspection")
    with tempfile.TemporaryDirectory(prefix="cedx-inspect-") as tmp:
        root = Path(tmp)
        token = secrets.token_urlsafe(16)
        month = (dt.datetime.now(CST).replace(day=1) - dt.timedelta(days=40)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        results = {}
        # Limits of 600 (platform) and 300 (source) a minute leave the other cases room; the
        # probes may spend 700 and 400 requests.
        client_ca, confidential = _confidential_client()
        with ReferencePlatform(root / "platform", rate_limit=600) as platform, \
                serving(create_source_app("power", root / "source", [token], commissioned=month, rate_limit=300,
                                          client_trust_anchors=[client_ca]), free_port()) as source_url:
            platform.rate_limit_budget = 700
            source_ca = tx.load_certificate((root / "source" / "pki" / "ca.pem").read_bytes()).dump()
            # case 2.5: a report of the source's commissioning month, submitted beforehand
            platform.agreement = provision_agreement(platform, source_url, token, source_ca, month)
            targets = {
                "reporting": platform,
                "acquisition": Target(source_url, "acquisition", [source_ca], token_value=token, rate_limit_budget=400,
                                      confidential=confidential),
            }
            for name, target in targets.items():
                print(f"== {name}: {target.url}", file=sys.stderr)
                report = run(target, progress=main_progress)
                write(report, out / name)
                results[name] = report
    for name, report in results.items():
        s = report["summary"]
        print(f"{name:12} {report['result'].upper():5} {s['pass']} passed, {s['fail']} failed, {s['blocked']} blocked, "
              f"{s['not-applicable']} n/a → {out / name / 'report.html'}")
    if any(r["result"] == "inconclusive" for r in results.values()):
        return 2
    return 0 if all(r["result"] == "pass" for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
