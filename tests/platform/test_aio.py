"""The asyncio clients (cedx.generated.aio, rendered from the same template as the blocking
ones) against the reference platform over loopback: sign on send, verify on receive, both
formats, pagination with ``async for``, typed errors, validation before anything is sent."""

import asyncio
import uuid

import pytest

import cedx
from cedx.generated.aio import AsyncCommonClient, AsyncReportingClient
from cedx.runtime.aio import AsyncTokenProvider
from cedx.runtime.serve import free_port

NO_WAIT = cedx.RetryPolicy(attempts=2, sleep=lambda s: None)


def client(env, entity, fmt=cedx.Format.JSON, **kw) -> AsyncReportingClient:
    tokens = AsyncTokenProvider(f"{env.url}/oauth/token", f"{entity.credit_code}-erp", entity.secret)
    options = dict(token_provider=tokens, signing_key=entity.key, signing_certificate=entity.cert,
                   trust_anchors=[env.ca], format=fmt)
    options.update(kw)
    return AsyncReportingClient(env.url, **options)


def test_concurrent_submissions_in_both_formats_and_async_pagination(env):
    async def main():
        async with client(env, env.power) as c, client(env, env.power, cedx.Format.XML) as x:
            reports = []
            for month in (1, 3, 5, 7):  # 31 days: the example's running hours fit
                report = env.power.report()
                report.period, report.report_id = f"2023-{month:02d}", uuid.uuid4()
                reports.append(report)
            receipts = await asyncio.gather(*((c if i % 2 else x).submit_monthly_report(r)
                                              for i, r in enumerate(reports)))
            assert {r.payload.version for r in receipts} == {1}
            for r in receipts:  # verified on arrival; verifying again proves the signature is there
                c.verify_signed(r.model_dump(mode="json", by_alias=True, exclude_none=True))
            stored = await x.get_monthly_report(str(receipts[0].payload.submission_id))
            assert stored.payload.period == "2023-01"
            seen = [s async for s in c.iter_submissions(limit=1)]
            assert isinstance(seen[0], cedx.models.SubmissionStatus)
            assert {s.period for s in seen} >= {"2023-01", "2023-03", "2023-05", "2023-07"}
        async with AsyncCommonClient(env.url, trust_anchors=[env.ca]) as common:
            config = await common.get_configuration()
            assert config.payload.platform_id
    asyncio.run(main())


def test_errors_are_the_same_typed_tree(env):
    async def main():
        bad = env.power.report()
        bad.period, bad.report_id = "2023-10", uuid.uuid4()
        bad.power.units[0].coal_consumption.value += 1000
        async with client(env, env.power) as c:
            with pytest.raises(cedx.ValidationError) as local:
                await c.submit_monthly_report(bad)           # checked locally: nothing sent
            assert "R-POW-001" in local.value.rules
        async with client(env, env.power, validate=False) as c:
            with pytest.raises(cedx.UnprocessableError) as remote:
                await c.submit_monthly_report(bad)           # the platform's own check
            assert remote.value.code == "RULE_VIOLATION" and "$.payload.power.units[0]" in remote.value.paths
            with pytest.raises(cedx.NotFoundError):
                await c.get_submission_status(str(uuid.uuid4()))
        wrong = AsyncTokenProvider(f"{env.url}/oauth/token", f"{env.power.credit_code}-erp", "wrong")
        async with AsyncReportingClient(env.url, token_provider=wrong, trust_anchors=[env.ca]) as c:
            with pytest.raises(cedx.AuthenticationError):
                await c.get_submission_status(str(uuid.uuid4()))
        async with AsyncReportingClient(f"http://127.0.0.1:{free_port()}", token="t", retry=NO_WAIT,
                                        trust_anchors=[env.ca]) as c:
            with pytest.raises(cedx.ConnectionFailed):
                await c.get_submission_status(str(uuid.uuid4()))
        async with AsyncReportingClient(env.url, token="t") as c:
            with pytest.raises(cedx.ConfigurationError, match="trust_anchors"):
                await c.submit_monthly_report(env.power.report())
    asyncio.run(main())
