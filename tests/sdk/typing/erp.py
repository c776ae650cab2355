# checked by tests/sdk/test_typing.py with mypy --strict (an integrator's code; never run)
"""What an integrator writes: checked with mypy --strict against the installed package."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import cedx
from cedx import models, trust


def submit(report: models.MonthlyReport, secret: str) -> str:
    key = trust.load_private_key(Path("entity.key.pem").read_bytes())
    with cedx.ReportingClient(
        "https://platform.example.cn",
        token_provider=cedx.TokenProvider("https://platform.example.cn/oauth/token", "erp", secret),
        signing_key=key,
        signing_certificate=Path("entity.pem").read_bytes(),
        trust_anchors=[Path("platform-ca.pem").read_bytes()],
        format=cedx.Format.XML,
    ) as client:
        try:
            receipt: models.SignedReceipt = client.submit_monthly_report(report)
        except cedx.ValidationError as exc:
            rules: list[str] = exc.rules
            return ",".join(rules + exc.paths)
        except cedx.ApiError as exc:
            return f"{exc.status} {exc.code} {exc.rules}"
        except cedx.CedxError as exc:
            return str(exc)
        periods: list[str] = [s.period for s in client.iter_submissions(period="2026-10")]
        return f"{receipt.payload.submission_id} {periods} {models.SpecVersion.v1_0.value}"


def pull(token: str) -> list[models.SignedMeasurementBatch]:
    with cedx.AcquisitionClient("https://source.example.cn", token=token, trust_anchors=[b""]) as source:
        start = dt.datetime(2026, 10, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))
        batches = source.iter_measurement_batches("P1", granularity=models.Granularity.hour, from_=start,
                                                  to="2026-10-02T00:00:00+08:00")
        return list(batches)


async def submit_async(report: models.MonthlyReport) -> models.SignedReceipt:
    async with cedx.AsyncReportingClient("https://platform.example.cn", token="t", trust_anchors=[b""]) as client:
        return await client.submit_monthly_report(report)


def outbox(client: cedx.ReportingClient, report: models.MonthlyReport) -> int:
    box = cedx.Outbox("erp-outbox.db", client)
    box.enqueue(report)
    return box.deliver()


if __name__ == "__main__":
    print(asyncio.run(submit_async(models.MonthlyReport.model_validate({}))))
