"""A year on a real loopback platform: twelve monthly reports submitted, the annual report built
from the months as the platform returns them (cedx.accounting.annual.aggregate), checked against
them (R-ANN-012), submitted; a later correction of one month makes the annual report disagree."""

import uuid

from cedx.accounting import annual
from cedx.generated import models

from ..accounting.year import month_of, year_of


def _payload(signed):
    return signed.payload.model_dump(mode="json", by_alias=True, exclude_none=True)


def test_a_year_of_cement_reports(env):
    client = env.client(env.cement)
    months = year_of("cement")
    ids = {}
    for month in months:
        receipt = client.submit_monthly_report(models.MonthlyReport.model_validate(month))
        ids[month["period"]] = str(receipt.payload.submission_id)
    fetched = [_payload(client.get_monthly_report(ids[period])) for period in sorted(ids)]
    assert fetched == months  # the platform returns what was signed, member for member
    report = annual.aggregate(fetched, report_id=str(uuid.uuid4()), prepared_at="2026-03-20T10:00:00+08:00",
                              submission_ids=ids)
    assert annual.check(report, fetched) == []
    receipt = client.submit_annual_report(models.AnnualReport.model_validate(report))
    p = receipt.payload
    assert p.document_type.value == "annual_report" and p.period == "2025" and p.late is None
    assert _payload(client.get_annual_report(str(p.submission_id))) == report

    # July corrected afterwards: the accepted months no longer add up to the annual report.
    july = month_of("cement", 8)  # August's figures, a month of the same length
    july.update(period="2025-07", submissionKind="correction", replacesSubmissionId=ids["2025-07"],
                reason="熟料产量更正 / clinker output corrected", reportId=str(uuid.uuid4()))
    corrected = client.submit_monthly_report(models.MonthlyReport.model_validate(july))
    assert corrected.payload.version == 2
    accepted = [m for m in client.iter_submissions(document_type=models.DocumentType.monthly_report, period=None)
                if m.state.value == "accepted" and m.period.startswith("2025-")]
    now = [_payload(client.get_monthly_report(str(s.submission_id))) for s in sorted(accepted, key=lambda s: s.period)]
    found = {d.path for d in annual.check(report, now)}
    assert {"$.months[6].totalEmission", "$.totals.total", "$.cement.clinkerOutput", "$.cement.lines[0].kilnDust"} <= found
