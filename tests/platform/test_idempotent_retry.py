"""A write retried with the same idempotency key is signed once (issue 11 §4): a caller whose
acknowledgement was lost gets the stored receipt back, not 409."""

import uuid

import pytest
import requests

from cedx.runtime.client import RetryPolicy
from cedx.runtime.errors import ConflictError


class LoseFirstAcknowledgement(requests.Session):
    """The first POST reaches the platform, but its answer is lost on the way back."""

    def __init__(self):
        super().__init__()
        self.lost = 0
        self.bodies: list[bytes] = []

    def request(self, method, url, **kw):
        resp = super().request(method, url, **kw)
        if method == "POST" and "/oauth/" not in url:
            self.bodies.append(kw.get("data"))
            if not self.lost:
                self.lost += 1
                raise requests.ConnectionError("connection reset after the request was processed")
        return resp


def test_retry_after_a_lost_acknowledgement_gets_the_same_receipt(env):
    session = LoseFirstAcknowledgement()
    client = env.client(env.power, session=session, retry=RetryPolicy(attempts=1))
    report = env.power.report()
    report.period, report.report_id = "2018-03", uuid.uuid4()
    key = str(uuid.uuid4())
    with pytest.raises(requests.ConnectionError):
        client.submit_monthly_report(report, idempotency_key=key)
    receipt = client.submit_monthly_report(report, idempotency_key=key)  # the caller retries
    again = client.submit_monthly_report(report, idempotency_key=key)
    assert session.bodies[0] == session.bodies[1] == session.bodies[2]  # one signature, sent three times
    assert receipt.payload.submission_id == again.payload.submission_id
    assert receipt.payload.version == 1


def test_another_document_under_the_same_key_is_a_conflict(env):
    client = env.client(env.power)
    report = env.power.report()
    report.period, report.report_id = "2018-05", uuid.uuid4()
    key = str(uuid.uuid4())
    client.submit_monthly_report(report, idempotency_key=key)
    changed = report.model_copy(update={"report_id": uuid.uuid4()})
    with pytest.raises(ConflictError) as err:
        client.submit_monthly_report(changed, idempotency_key=key)
    assert err.value.code == "IDEMPOTENCY_CONFLICT"


def test_without_a_key_each_call_is_a_new_submission_attempt(env):
    client = env.client(env.power)
    report = env.power.report()
    report.period, report.report_id = "2018-07", uuid.uuid4()
    client.submit_monthly_report(report)
    with pytest.raises(ConflictError) as err:  # same report, fresh key: a duplicate original
        client.submit_monthly_report(report)
    assert err.value.code == "SUBMISSION_CONFLICT"
