"""Client runtime against the real platform: outbox exactly-once across SIGKILL and platform
restarts, backoff through 429/5xx storms, and following a signed address change."""

import json
import os
import signal
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import func, select

from cedx import trust
from cedx.generated import models
from cedx.generated.client import CommonClient, ReportingClient
from cedx.platform.app import create_app
from cedx.platform.db import SubmissionRow
from cedx.platform.settings import PlatformSettings
from cedx.runtime.client import RetryPolicy
from cedx.runtime.errors import SignatureVerificationError
from cedx.runtime.outbox import AddressFollower, Outbox
from cedx.trust import x509 as tx

from ..loopback import serve
from ..spec.conftest import REPO, load_example
from .outbox_worker import periods


def _count(env, credit_code, period_prefix=""):
    with env.admin.sessions() as s:
        rows = s.execute(select(SubmissionRow.period, func.count()).where(
            SubmissionRow.credit_code == credit_code, SubmissionRow.period.like(f"{period_prefix}%"))
            .group_by(SubmissionRow.period)).all()
    return dict(rows)


def _files(env, tmp_path, entity):
    key, cert, ca = tmp_path / "k.pem", tmp_path / "c.pem", tmp_path / "ca.pem"
    key.write_bytes(entity.key.to_pem())
    cert.write_bytes(tx.to_pem(entity.cert))
    ca.write_bytes(tx.to_pem(env.ca))
    return key, cert, ca


def test_sigkill_mid_batch_then_restart_stores_each_exactly_once(env, tmp_path):
    entity = env.power
    key, cert, ca = _files(env, tmp_path, entity)
    box = tmp_path / "outbox.db"
    args = [sys.executable, "-m", "tests.platform.outbox_worker", env.url, str(box), entity.credit_code,
            entity.secret, str(key), str(cert), str(ca)]
    proc = subprocess.Popen(args + ["20"], cwd=REPO, stdout=subprocess.PIPE, text=True)
    delivered = 0
    for line in proc.stdout:
        if line.startswith("delivered"):
            delivered = int(line.split()[1])
            if delivered >= 6:
                break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert 6 <= delivered < 20, "the kill must land in the middle of the batch"
    restarted = subprocess.run(args + ["deliver"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert restarted.returncode == 0, restarted.stderr[-2000:]
    counts = _count(env, entity.credit_code, "200")
    assert sorted(counts) == sorted(periods(20)) and set(counts.values()) == {1}


def test_crash_after_the_platform_stored_it_is_answered_with_the_same_receipt(env, tmp_path):
    client = env.client(env.power)
    box = Outbox(tmp_path / "o.db", client)
    report = env.power.report()
    report.period, report.report_id = "2019-01", uuid.uuid4()
    item = box.enqueue(report)
    # The process "crashed" after the platform stored the submission but before it recorded
    # the receipt: replay the same key and bytes outside the outbox first.
    import sqlite3

    db = sqlite3.connect(tmp_path / "o.db")
    document, key = db.execute("SELECT document, idempotency_key FROM outbox WHERE id = ?", (item,)).fetchone()
    first = client.submit_monthly_report(json.loads(document), idempotency_key=key)
    assert box.deliver() == 1
    assert box.item(item).receipt == first.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert _count(env, env.power.credit_code, "2019-01") == {"2019-01": 1}


def test_platform_restart_mid_batch_loses_nothing(env, tmp_path):
    settings = PlatformSettings(data_dir=tmp_path / "p", database_url=None)
    from cedx.platform.admin import Admin

    admin = Admin(settings)
    from .conftest import Entity, Env

    entity = Entity(admin, "91370800MA3H4J5K63", "monthly-report-chemical.json")
    app = create_app(settings)
    with serve(app) as url:
        local = Env.__new__(Env)
        local.url, local.admin, local.ca = url, admin, admin.pki.ca
        client = local.client(entity)
        client.retry = RetryPolicy(attempts=2, base=0.01)
        box = Outbox(tmp_path / "o.db", client)
        for month in ("01", "03", "05", "07"):
            r = entity.report()
            r.period, r.report_id = f"2018-{month}", uuid.uuid4()
            box.enqueue(r)
        assert box.deliver(limit=2) == 2
    # The platform is down: delivery fails softly and keeps the rest pending.
    assert box.deliver() == 0 and box.counts()["pending"] == 2
    host, port = url.rsplit(":", 1)
    with serve(create_app(settings), port=int(port)) as url2:
        assert url2 == url
        assert box.deliver() == 2
    assert box.counts() == {"delivered": 4}
    with admin.sessions() as s:
        assert s.scalar(select(func.count()).select_from(SubmissionRow)) == 4


class Storm:
    """ASGI middleware: the first `n` submissions get 503 or 429 (Retry-After: 0)."""

    def __init__(self, app, n):
        self.app, self.left, self.seen = app, n, 0

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].endswith("/monthly-reports") and scope["method"] == "POST":
            self.seen += 1
            if self.left > 0:
                self.left -= 1
                status = 503 if self.left % 2 else 429
                await send({"type": "http.response.start", "status": status,
                            "headers": [(b"content-type", b"application/problem+json"), (b"retry-after", b"0")]})
                await send({"type": "http.response.body", "body": json.dumps({"code": "SERVICE_UNAVAILABLE", "title": "x", "status": status}).encode()})
                return
        await self.app(scope, receive, send)


def test_backoff_through_a_5xx_and_429_storm(env):
    storm = Storm(env.app, 4)
    sleeps = []
    with serve(storm) as url:
        client = ReportingClient(url, token_provider=env.tokens(env.cement), signing_key=env.cement.key,
                                 trust_anchors=[env.ca], retry=RetryPolicy(attempts=6, base=0.01, sleep=sleeps.append))
        report = env.cement.report()
        report.period, report.report_id = "2017-03", uuid.uuid4()
        receipt = client.submit_monthly_report(report)
    assert receipt.payload.version == 1
    assert storm.seen == 5 and len(sleeps) == 4 and all(s == 0 for s in sleeps)  # Retry-After honoured
    assert _count(env, env.cement.credit_code, "2017-03") == {"2017-03": 1}
    policy = RetryPolicy(base=1, cap=8)
    assert all(0 <= policy.delay(a) <= min(8, 2 ** a) for a in range(1, 8))
    assert policy.delay(1, "7") == 7.0


def test_following_a_signed_address_change(env, tmp_path):
    # A second platform instance at a new address shares the same data; the old one announces it.
    new_settings = PlatformSettings(data_dir=env.admin.settings.data_dir, database_url=env.admin.settings.database_url)
    with serve(create_app(new_settings)) as new_url:
        old_settings = PlatformSettings(data_dir=env.admin.settings.data_dir, database_url=env.admin.settings.database_url,
                                        successor_url=new_url, successor_from="2020-01-01T00:00:00Z")
        with serve(create_app(old_settings)) as old_url:
            client = env.client(env.power)
            client.base_url = old_url
            assert AddressFollower(client, CommonClient).check() == new_url
            assert client.base_url == new_url
            report = env.power.report()
            report.period, report.report_id = "2016-01", uuid.uuid4()
            assert client.submit_monthly_report(report).payload.version == 1
    assert _count(env, env.power.credit_code, "2016-01") == {"2016-01": 1}


def test_an_unsigned_or_forged_change_notice_is_refused(env):
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    forger = trust.generate_private_key()
    ca_key = trust.generate_private_key()
    fake_ca = tx.create_ca(ca_key, {"common_name": "fake"})
    fake_cert = tx.issue_certificate(tx.create_csr(forger, {"common_name": "fake platform"}), fake_ca, ca_key)
    payload = load_example("configuration-successor.json")["payload"]
    payload["successor"]["baseUrl"] = "http://127.0.0.1:9/evil"
    payload["successor"]["effectiveFrom"] = "2020-01-01T00:00:00Z"
    forged = trust.sign_document(payload, forger, certificate_chain=[fake_cert], envelope_fields={"specVersion": "1.0"})
    unsigned = {"specVersion": "1.0", "payload": payload}
    for body in (forged, unsigned):
        app = FastAPI()
        app.add_api_route("/.well-known/cedx-configuration", lambda body=body: JSONResponse(body), methods=["GET"])
        with serve(app) as url:
            client = ReportingClient(url, trust_anchors=[env.ca], retry=RetryPolicy(attempts=1))
            with pytest.raises((SignatureVerificationError, ValueError)):
                AddressFollower(client, CommonClient).check()
            assert client.base_url == url
    assert models is not None
