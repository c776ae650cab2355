"""A receipt must be for the document sent (docs/trust-profile.md §3): the reference platform on
loopback, made faulty in process so that it answers a correctly signed, time-stamped receipt for
another document; the blocking client, the asyncio client and the Outbox refuse it as
ReceiptMismatch, and the normal path passes in JSON and in XML without encoding the canonical
form again when the body is JSON."""

import asyncio
import json
import sqlite3
import threading
import uuid

import pytest

import cedx
from cedx import trust
from cedx.runtime.client import Format
from cedx.runtime.errors import ReceiptMismatch, SignatureVerificationError
from cedx.runtime.outbox import Outbox
from cedx.trust import envelope as envelope_module
from cedx.trust import x509 as tx

from .test_aio import client as async_client
from .test_runtime import _count


def _report(env, period):
    report = env.power.report()
    report.period, report.report_id = period, uuid.uuid4()
    return report


def _lying(monkeypatch, env, **members):
    """From now on the platform signs every receipt with ``members`` in place of its own (the
    receipt it stores as well: its replays are the same)."""
    platform = env.app.state.platform
    sign = platform._sign

    def faulty(payload, timestamp=False):
        if "documentDigest" in payload:
            payload = {**payload, **members}
        return sign(payload, timestamp)

    monkeypatch.setattr(platform, "_sign", faulty)


def _answering_once(monkeypatch, env, **members):
    """The platform stores the right receipt but answers, once, one with ``members`` in its place
    (a fault on the way back: the next request for the same key replays the stored one)."""
    platform = env.app.state.platform
    receipt_of = platform._receipt
    left = [1]

    def faulty(*args, **kw):
        receipt, row = receipt_of(*args, **kw)
        if left:
            left.pop()
            receipt = platform._sign({**receipt["payload"], **members}, timestamp=True)
        return receipt, row

    monkeypatch.setattr(platform, "_receipt", faulty)


def test_the_blocking_client_refuses_a_receipt_for_another_document(env, monkeypatch):
    client = env.client(env.power)
    first = client.submit_monthly_report(_report(env, "2017-01"))
    _lying(monkeypatch, env, documentDigest=first.payload.document_digest)
    with pytest.raises(ReceiptMismatch) as exc:
        client.submit_monthly_report(_report(env, "2017-03"))
    assert exc.value.field == "documentDigest" and exc.value.got == first.payload.document_digest
    assert exc.value.expected != exc.value.got and exc.value.expected in str(exc.value)
    assert "may or may not have stored" in str(exc.value) and "list_submissions(period='2017-03')" in str(exc.value)
    client.verify_signed(exc.value.receipt)  # a receipt signed and time-stamped as any other
    # verify_signatures=False: no signed answer is checked, this neither
    trusting = env.client(env.power, verify_signatures=False)
    assert trusting.submit_monthly_report(_report(env, "2017-05")).payload.document_digest == first.payload.document_digest


def test_the_blocking_client_refuses_a_receipt_naming_another_report(env, monkeypatch):
    client = env.client(env.power, Format.XML)
    _lying(monkeypatch, env, reportId=str(uuid.uuid4()))
    with pytest.raises(ReceiptMismatch) as exc:
        client.submit_monthly_report(_report(env, "2017-07"))
    assert exc.value.field == "reportId"


def test_the_asyncio_client_refuses_a_receipt_for_another_document(env, monkeypatch):
    async def main():
        async with async_client(env, env.power) as c, async_client(env, env.power, cedx.Format.XML) as x:
            first = await c.submit_monthly_report(_report(env, "2017-08"))
            _lying(monkeypatch, env, documentDigest=first.payload.document_digest)
            for client, period in ((c, "2017-10"), (x, "2017-12")):
                with pytest.raises(ReceiptMismatch) as exc:
                    await client.submit_monthly_report(_report(env, period))
                assert exc.value.got == first.payload.document_digest != exc.value.expected
                assert f"list_submissions(period='{period}')" in str(exc.value)
        async with async_client(env, env.power, verify_signatures=False) as trusting:
            assert (await trusting.submit_monthly_report(_report(env, "2016-01"))).payload.document_digest \
                == first.payload.document_digest
    asyncio.run(main())


def _outbox_row(path, item):
    with sqlite3.connect(path) as db:
        return db.execute("SELECT document FROM outbox WHERE id = ?", (item,)).fetchone()[0]


def test_the_outbox_keeps_an_item_whose_receipt_is_for_another_document_pending(env, monkeypatch, tmp_path):
    client = env.client(env.power)
    other = client.submit_monthly_report(_report(env, "2016-03"))
    box = Outbox(tmp_path / "o.db", client)
    items = [box.enqueue(_report(env, period)) for period in ("2016-05", "2016-07")]
    _answering_once(monkeypatch, env, documentDigest=other.payload.document_digest)
    with pytest.raises(ReceiptMismatch):
        box.deliver()
    first = box.item(items[0])
    assert first.state == "pending" and first.receipt is None and first.attempts == 1
    assert first.last_error.startswith("ReceiptMismatch: ") and other.payload.document_digest in first.last_error
    assert "look it up" in first.last_error
    assert box.item(items[1]).state == "pending" and _count(env, env.power.credit_code, "2016-07") == {}
    # the platform stored the first item (once); the next deliver gets its stored receipt
    assert _count(env, env.power.credit_code, "2016-05") == {"2016-05": 1}
    assert box.deliver() == 2 and box.counts() == {"delivered": 2}
    for item in items:
        receipt = box.item(item).receipt
        assert receipt["payload"]["documentDigest"] == trust.document_digest(json.loads(_outbox_row(tmp_path / "o.db", item)))
    assert _count(env, env.power.credit_code, "2016-05") == {"2016-05": 1}


def test_the_outbox_notes_a_receipt_that_does_not_verify(env, tmp_path):
    stranger = tx.create_ca(trust.generate_private_key(), {"common_name": "not the platform's CA"})
    box = Outbox(tmp_path / "o.db", env.client(env.power, trust_anchors=[stranger]))
    item = box.enqueue(_report(env, "2016-08"))
    with pytest.raises(SignatureVerificationError):
        box.deliver()
    assert box.item(item).state == "pending" and box.item(item).last_error.startswith("SignatureVerificationError: ")


@pytest.fixture
def full_encodings(monkeypatch):
    """The client's (this thread's) full encodings of the canonical form for a receipt check;
    the platform serves in another thread."""
    calls = []
    original = envelope_module.document_digest
    me = threading.current_thread()

    def counting(envelope, **kw):
        if threading.current_thread() is me:
            calls.append(1)
        return original(envelope, **kw)

    monkeypatch.setattr(envelope_module, "document_digest", counting)
    return calls


@pytest.mark.parametrize("fmt, year, encodings", [(Format.JSON, 2015, 0), (Format.XML, 2014, 1)])
def test_the_normal_path_binds_in_both_formats(env, full_encodings, fmt, year, encodings):
    client = env.client(env.power, fmt)
    for period, prepared_at in ((f"{year}-01", None), (f"{year}-03", f"{year}-04-01T00:00:00Z")):
        report = _report(env, period)
        if prepared_at:  # a canonical instant: the body is the canonical form itself
            report.prepared_at = prepared_at
        sent = client._signed_once(client.operations["submitMonthlyReport"], report, None)
        receipt = client.submit_monthly_report(sent)
        assert receipt.payload.document_digest == trust.document_digest(sent)
    assert len(full_encodings) == 2 * encodings  # JSON: from the body's own SM3 states
