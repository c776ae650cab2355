"""PostgreSQL: the statements one signed report costs on the request path (issue 14). Each is a
round trip (the driver's work, the server's parse/plan/execute, two context switches), so their
number is part of the platform's cost; the answers of the merged statements are tested in
test_store_sql.py and test_security.py."""

import uuid

import psycopg
import pytest

from cedx.generated import models


@pytest.fixture
def statements(monkeypatch):
    """The SQL the request path's psycopg cursors execute, and the commits and rollbacks sent."""
    seen: list[str] = []
    execute = psycopg.Cursor.execute

    def counting(self, query, params=None, **kw):
        seen.append(" ".join(str(query).split())[:40])
        return execute(self, query, params, **kw)

    monkeypatch.setattr(psycopg.Cursor, "execute", counting)
    for name in ("commit", "rollback"):
        original = getattr(psycopg.Connection, name)

        def ending(self, _original=original, _name=name):
            if self.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                seen.append(_name)
            return _original(self)

        monkeypatch.setattr(psycopg.Connection, name, ending)
    return seen


def test_an_accepted_report_costs_three_statements(env, statements):
    if not env.admin.settings.database_url:
        pytest.skip("PostgreSQL only (SQLite has no round trips)")
    client = env.client(env.power)
    report = env.power.report()
    report.period, report.report_id = "2019-05", uuid.uuid4()
    client.submit_monthly_report(report)  # the token fetched and caches warmed
    report.period, report.report_id = "2019-07", uuid.uuid4()
    statements.clear()
    receipt = client.submit_monthly_report(report)
    assert receipt.payload.version == 1
    occasional = ("DELETE FROM nonces", "DELETE FROM rate_counters")  # now and then, expired rows
    counted = [s for s in statements if not s.startswith(occasional)]
    # the token and the rate-limit hit; the request's nonce; the read and the insert (durable)
    assert [s.split(" (")[0] for s in counted] == ["WITH tok AS", "INSERT INTO nonces", "WITH found AS"], statements
    # a correction: its reads, then the supersede and the insert in one transaction
    statements.clear()
    report.submission_kind = models.SubmissionKind.correction
    report.replaces_submission_id = receipt.payload.submission_id
    report.reason = "修正 / corrected"
    report.report_id = uuid.uuid4()
    assert client.submit_monthly_report(report).payload.version == 2
    counted = [s for s in statements if not s.startswith(occasional)]
    assert [s.split(" ")[0] for s in counted[-4:]] == ["BEGIN", "UPDATE", "WITH", "commit"], statements
