"""R-POW-008 on a real loopback platform: a power-sector monthly report received 40 days or
more after its month ends (UTC+8 calendar, R-PERIOD-002) is accepted and marked late in the
signed receipt and in the status the entity reads back; other documents carry no marker."""

import datetime as dt
import uuid

import pytest

from cedx import trust
from cedx.accounting.period import upload_deadline
from cedx.generated import models
from cedx.runtime.client import Format

UTC = dt.timezone.utc
CST = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture
def clock(env):
    """The platform's time of receipt, set by the test (restored afterwards)."""
    platform = env.app.state.platform
    original = platform.clock
    yield lambda instant: setattr(platform, "clock", lambda: instant)
    platform.clock = original


def _submit(env, entity, period: str, received_at: dt.datetime, **changes):
    """Sign a report as prepared an hour before the (test) time of receipt and submit it."""
    report = entity.report()
    report.period, report.report_id = period, uuid.uuid4()
    report.prepared_at = received_at - dt.timedelta(hours=1)
    for name, value in changes.items():
        setattr(report, name, value)
    signed = trust.sign_document(report, entity.key, certificate_chain=[entity.cert],
                                 signing_time=received_at - dt.timedelta(minutes=1), envelope_fields={"specVersion": "1.0"})
    client = env.client(entity)
    receipt = client.submit_monthly_report(signed)
    return client, receipt, client.get_submission_status(str(receipt.payload.submission_id))


def test_deadline_is_40_days_after_the_month_ends_in_china_standard_time():
    # 2026-02 ends 2026-03-01T00:00+08:00 (= 2026-02-28T16:00Z); 40 days later is 2026-04-10T00:00+08:00.
    assert upload_deadline("2026-02") == dt.datetime(2026, 4, 10, tzinfo=CST)
    assert upload_deadline("2026-02") == dt.datetime(2026, 4, 9, 16, tzinfo=UTC)
    assert upload_deadline("2025-12") == dt.datetime(2026, 2, 10, tzinfo=CST)  # across the year end


def test_on_time_is_not_marked_late(env, clock):
    received = dt.datetime(2026, 11, 5, 2, 31, 7, tzinfo=UTC)  # the spec example's receipt: 2026-10, on time
    clock(received)
    _client, receipt, status = _submit(env, env.power, "2026-10", received)
    p = receipt.payload
    assert p.late is False
    assert p.deadline == dt.datetime(2026, 12, 10, 16, tzinfo=UTC) == upload_deadline("2026-10")
    assert status.late is False and status.deadline == p.deadline


def test_41_days_after_month_end_is_accepted_and_marked_late(env, clock):
    month_end = dt.datetime(2026, 4, 1, tzinfo=CST)  # end of 2026-03
    received = (month_end + dt.timedelta(days=41)).astimezone(UTC)
    clock(received)
    client, receipt, status = _submit(env, env.power, "2026-03", received)
    p = receipt.payload
    assert p.version == 1 and p.submission_kind.value == "original"  # accepted, not refused
    assert p.late is True
    assert p.deadline == dt.datetime(2026, 5, 11, tzinfo=CST)
    assert p.received_at == received
    # The status the entity reads back says the same, also in the listing.
    assert status.state.value == "accepted" and status.late is True and status.deadline == p.deadline
    listed = [s for s in client.list_submissions(period="2026-03").items if s.submission_id == p.submission_id]
    assert listed[0].late is True and listed[0].deadline == p.deadline
    # The same in XML (an element of the status, boolean text).
    as_xml = env.client(env.power, Format.XML).get_submission_status(str(p.submission_id))
    assert as_xml.late is True and as_xml.deadline == p.deadline
    # The marker is part of the signed receipt, and the stored receipt answers the same.
    stored = client.get_receipt(str(p.submission_id))
    assert stored.payload.late is True and stored.payload.deadline == p.deadline
    trust.verify_document(stored.model_dump(mode="json", by_alias=True, exclude_none=True),
                          env.admin.pki.platform_key.public_key())


@pytest.mark.parametrize("offset, late", [(dt.timedelta(microseconds=-1), False), (dt.timedelta(0), True)])
def test_the_boundary_instant_in_utc_plus_8(env, clock, offset, late):
    # 2026-07 ends 2026-08-01T00:00+08:00; the deadline is 2026-09-10T00:00+08:00, which is
    # 2026-09-09T16:00Z: one microsecond before is on time, the instant itself is late.
    period = "2026-07" if late else "2026-05"
    deadline = upload_deadline(period)
    assert deadline.astimezone(CST).time() == dt.time(0, 0)
    received = (deadline + offset).astimezone(UTC)
    clock(received)
    _client, receipt, status = _submit(env, env.power, period, received)
    assert receipt.payload.late is late and status.late is late
    assert receipt.payload.deadline == deadline
    if late:
        assert receipt.payload.received_at == dt.datetime(2026, 9, 9, 16, tzinfo=UTC) == deadline


def test_a_late_correction_is_marked_and_the_original_keeps_its_mark(env, clock):
    deadline = upload_deadline("2026-01")
    clock(deadline - dt.timedelta(days=1))
    client, first, _ = _submit(env, env.power, "2026-01", deadline - dt.timedelta(days=1))
    assert first.payload.late is False
    clock(deadline + dt.timedelta(days=3))
    _, second, status = _submit(env, env.power, "2026-01", deadline + dt.timedelta(days=3),
                                submission_kind=models.SubmissionKind.correction,
                                replaces_submission_id=first.payload.submission_id, reason="修正 / corrected")
    assert second.payload.version == 2 and second.payload.late is True and status.late is True
    old = client.get_submission_status(str(first.payload.submission_id))
    assert old.state.value == "superseded" and old.late is False


def test_other_industries_and_annual_reports_carry_no_marker(env, clock):
    received = dt.datetime(2026, 6, 30, tzinfo=UTC)  # long after 2026-01 ended
    clock(received)
    _client, receipt, status = _submit(env, env.cement, "2026-01", received)
    assert receipt.payload.late is None and receipt.payload.deadline is None
    assert status.late is None and status.deadline is None


def test_the_marker_must_agree_with_the_deadline():
    """R-POW-014, checked wherever a receipt or status is validated (e.g. by clients on arrival)."""
    from cedx import spec

    from ..spec.conftest import load_example

    validator = spec.context("cedx.generated").validator
    status = load_example("submission-status.json")
    assert status["late"] is False and not validator.validate("SubmissionStatus", status)
    for change in ({"late": True}, {"deadline": "2026-11-05T02:31:07Z"}, {"deadline": None}, {"documentType": "annual_report"}):
        wrong = {**status, **change}
        wrong = {k: v for k, v in wrong.items() if v is not None}
        assert "R-POW-014" in [i.rule for i in validator.validate("SubmissionStatus", wrong)], change
    # received exactly at the deadline: late
    at = {**status, "receivedAt": status["deadline"], "late": True}
    assert not validator.validate("SubmissionStatus", at)
