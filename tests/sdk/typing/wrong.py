# checked by tests/sdk/test_typing.py: every line here must be an error under mypy --strict
import cedx
from cedx import models


def f(client: cedx.ReportingClient, report: models.MonthlyReport) -> int:
    for s in client.iter_submissions():
        return s.no_such_field
    n: int = client.submit_monthly_report(report)
    client.list_measurement_batches  # noqa
    return n
