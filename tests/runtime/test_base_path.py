"""cedx's own clients at a base URL with a path (profile §11, §5 line 3): behind the reverse proxy of
tests/interop/test_base_path.py the blocking and the async client sign the full request path
(/cedx/v1/…) as the profile and request-signature vector 2 say — they signed /v1/… before, which
only the platform's matching mistake accepted — and submit, list and read back."""

import asyncio
import json

import pytest

import cedx
from cedx import trust
from cedx.trust import x509 as tx

from ..interop.test_base_path import PREFIX, _proxy
from ..interop.test_conformance import POWER, _free_port, cedx_cli, cedx_serving, report

pytestmark = pytest.mark.openssl


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    data = tmp_path_factory.mktemp("platform-prefix-cedx")
    cedx_cli("platform", "init", data_dir=data)
    code = POWER["creditCode"]
    cedx_cli("platform", "add-entity", code, data_dir=data)
    secret = cedx_cli("platform", "add-client", code, "--client-id", "erp", data_dir=data).rsplit(":", 1)[1].strip()
    key = trust.generate_private_key()
    (data / "entity.csr").write_bytes(tx.to_pem(tx.create_csr(key, {"common_name": code}), "CERTIFICATE REQUEST"))
    cedx_cli("platform", "issue-certificate", code, "--csr", str(data / "entity.csr"), "-o", str(data / "entity.pem"),
             data_dir=data)
    port = _free_port()
    proxy = _proxy(port)
    base = f"http://127.0.0.1:{proxy.server_address[1]}{PREFIX}"
    try:
        with cedx_serving("platform", "--dir", str(data), "--port", str(port), "--public-url", base,
                          "--log-level", "warning", probe=f"{base}/.well-known/cedx-configuration", what="platform"):
            yield {"base": base, "secret": secret, "key": key, "cert": (data / "entity.pem").read_bytes(),
                   "anchor": (data / "pki" / "ca.pem").read_bytes()}
    finally:
        proxy.shutdown()


def _kwargs(p, provider=cedx.TokenProvider):
    return dict(token_provider=provider(p["base"] + "/oauth/token", "erp", p["secret"]), signing_key=p["key"],
                signing_certificate=p["cert"], trust_anchors=[p["anchor"]])


def test_the_blocking_client_at_a_base_url_with_a_path(platform):
    payload = cedx.models.MonthlyReport.model_validate_json(json.dumps(report(POWER, period="2026-10")))
    with cedx.ReportingClient(platform["base"], **_kwargs(platform)) as client:
        receipt = client.submit_monthly_report(payload)
        assert [s.submission_id for s in client.iter_submissions(period="2026-10")] == [receipt.payload.submission_id]


def test_the_async_client_at_a_base_url_with_a_path(platform):
    payload = cedx.models.MonthlyReport.model_validate_json(json.dumps(report(POWER, period="2026-07")))

    async def run():
        async with cedx.AsyncReportingClient(platform["base"], **_kwargs(platform, cedx.AsyncTokenProvider)) as client:
            return await client.submit_monthly_report(payload)

    assert asyncio.run(run()).payload.period == "2026-07"
