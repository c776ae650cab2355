"""The public face (``import cedx``): names, the error tree, transport and token errors, local
validation before anything is sent, secure-by-default verification, context managers."""

import json
import logging
import subprocess
import sys
import textwrap

import pytest
import requests
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

import cedx
import cedx.errors
from cedx.runtime.serve import free_port

from ..loopback import serve
from ..spec.conftest import load_example

NO_WAIT = cedx.RetryPolicy(attempts=3, sleep=lambda s: None)


class CountingSession(requests.Session):
    """A real session that counts what it sends (to prove that nothing was sent)."""

    def __init__(self):
        super().__init__()
        self.sent = 0

    def request(self, *args, **kwargs):
        self.sent += 1
        return super().request(*args, **kwargs)


def test_import_cedx_is_cheap_and_lists_its_names():
    code = "import sys, cedx; print(sorted(m for m in sys.modules if m.split('.')[0] in ('requests', 'pydantic', 'cryptography') or m.startswith('cedx.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    for name in cedx.__all__:
        assert getattr(cedx, name) is not None, name
    assert {"ReportingClient", "AcquisitionClient", "CommonClient", "TokenProvider", "Format", "Outbox", "models",
            "trust", "CedxError", "ValidationError", "ApiError", "TransportError"} <= set(cedx.__all__)
    assert cedx.models.MonthlyReport.__name__ == "MonthlyReport"
    assert cedx.trust.sm3(b"abc").hex().startswith("66c7f0f4")
    with pytest.raises(AttributeError):
        cedx.NoSuchThing  # noqa: B018


def test_one_error_root_with_a_clear_tree():
    for name in cedx.errors.__all__:
        obj = getattr(cedx.errors, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, cedx.CedxError), name
    assert issubclass(cedx.TrustError, cedx.CedxError)
    assert issubclass(cedx.trust.InvalidSignature, cedx.TrustError)
    assert issubclass(cedx.SignatureVerificationError, cedx.TrustError)
    assert issubclass(cedx.AuthenticationError, cedx.AuthError) and issubclass(cedx.AuthError, cedx.ApiError)
    assert issubclass(cedx.ConnectionFailed, cedx.TransportError)
    assert not issubclass(cedx.ValidationError, cedx.ApiError)


def test_package_logger_has_a_null_handler():
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("cedx").handlers)


def test_connection_refused_is_a_transport_error_after_retries():
    session = CountingSession()
    client = cedx.CommonClient(f"http://127.0.0.1:{free_port()}", session=session, retry=NO_WAIT,
                               verify_signatures=False)
    with pytest.raises(cedx.ConnectionFailed) as exc:
        client.get_configuration()
    assert isinstance(exc.value, cedx.CedxError)
    assert isinstance(exc.value.__cause__, requests.ConnectionError)
    assert session.sent == 3
    with pytest.raises(cedx.TransportError):
        cedx.CommonClient("nohost:////", verify_signatures=False, retry=NO_WAIT).get_configuration()


@pytest.fixture(scope="module")
def odd_server():
    """A token endpoint that fails transiently first, and answers that are not the spec's."""
    app = FastAPI()
    calls = {"token": 0}

    @app.post("/oauth/token")
    def token():
        calls["token"] += 1
        if calls["token"] == 1:
            return JSONResponse({"code": "UNAVAILABLE"}, status_code=503)
        return {"access_token": "t0k3n", "token_type": "Bearer", "expires_in": 600}

    @app.post("/refuse/oauth/token")
    def refuse():
        return JSONResponse({"error": "invalid_client", "error_description": "unknown client"}, status_code=401)

    @app.get("/v1/reporting/entities/{code}")
    def entity(code: str):
        return PlainTextResponse("<html>proxy error page</html>", media_type="application/json")

    with serve(app) as url:
        yield url, calls


def test_token_fetch_is_retried_and_a_refusal_is_an_auth_error(odd_server):
    url, calls = odd_server
    provider = cedx.TokenProvider(f"{url}/oauth/token", "erp", "secret", retry=NO_WAIT)
    assert provider.token() == "t0k3n" and calls["token"] == 2
    with pytest.raises(cedx.AuthenticationError) as exc:
        cedx.TokenProvider(f"{url}/refuse/oauth/token", "erp", "wrong", retry=NO_WAIT).token()
    assert exc.value.code == "invalid_client" and "unknown client" in str(exc.value)


def test_an_answer_that_is_not_the_specs_is_an_invalid_response(odd_server):
    url, _ = odd_server
    with pytest.raises(cedx.InvalidResponseError):
        cedx.ReportingClient(url, token="t").get_entity("91320500MA1X2P3Q4R")


def _client(session, **kw):
    key = cedx.trust.generate_private_key()
    return cedx.ReportingClient(f"http://127.0.0.1:{free_port()}", token="t", signing_key=key, session=session,
                                retry=NO_WAIT, **kw)


def test_validation_before_signing_sends_nothing():
    payload = load_example("monthly-report-power.json")["payload"]
    payload["power"]["units"][1]["coalConsumption"]["value"] = "1"          # breaks R-POW-001
    payload["combustion"][0]["consumption"]["unit"] = "tonnes"               # breaks the unit list
    session = CountingSession()
    with pytest.raises(cedx.ValidationError) as exc:
        _client(session, trust_anchors=[b"unused"]).submit_monthly_report(cedx.models.MonthlyReport.model_validate(
            load_example("monthly-report-power.json")["payload"] | {"power": payload["power"]}))
    assert "R-POW-001" in exc.value.rules and "$.power.units[1]" in exc.value.paths
    assert exc.value.code == "VALIDATION_FAILED" and session.sent == 0
    with pytest.raises(cedx.ValidationError) as exc:
        _client(session, trust_anchors=[b"unused"]).submit_monthly_report(payload)
    assert "$.combustion[0].consumption.unit" in exc.value.paths and session.sent == 0


def test_signed_answers_need_trust_anchors_or_an_explicit_opt_out(caplog):
    report = load_example("monthly-report-power.json")["payload"]
    session = CountingSession()
    with pytest.raises(cedx.ConfigurationError, match="trust_anchors"):
        _client(session).submit_monthly_report(report)
    assert session.sent == 0
    with caplog.at_level(logging.WARNING, logger="cedx"):
        client = _client(session, verify_signatures=False)
    assert "NOT verified" in caplog.text
    with pytest.raises(cedx.ConnectionFailed):  # it does send now (to a closed port)
        client.submit_monthly_report(report)
    assert session.sent == 3


def test_clients_are_context_managers_that_release_their_pool():
    with cedx.ReportingClient("http://127.0.0.1:1", token="t") as client:
        adapter = client.session.get_adapter("http://127.0.0.1:1/")
        adapter.poolmanager.connection_from_url("http://127.0.0.1:1/")
        assert len(adapter.poolmanager.pools) == 1
    assert len(adapter.poolmanager.pools) == 0
    mine = requests.Session()
    with cedx.ReportingClient("http://127.0.0.1:1", token="t", session=mine):
        pass
    mine.get_adapter("http://x/").poolmanager.connection_from_url("http://x/")  # still usable: not ours to close
    mine.close()


def test_outbox_closes_its_connections(tmp_path):
    code = textwrap.dedent(f"""
        import gc, cedx
        client = cedx.ReportingClient("http://127.0.0.1:1", token="t", signing_key=cedx.trust.generate_private_key(),
                                      verify_signatures=False)
        box = cedx.Outbox({json.dumps(str(tmp_path / "o.db"))}, client)
        box.enqueue({json.dumps(load_example("monthly-report-power.json")["payload"], ensure_ascii=False)})
        print(box.counts())
        client.close(); del box; gc.collect()
    """)
    out = subprocess.run([sys.executable, "-W", "error", "-X", "dev", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "ResourceWarning" not in out.stderr and "Exception ignored" not in out.stderr, out.stderr
    assert "'pending': 1" in out.stdout


def test_the_portable_sm2_fallback_warns_once_with_the_install_hint():
    code = textwrap.dedent("""
        import sys, warnings
        sys.modules["tongsuopy"] = None          # as on a machine without the native wheel
        warnings.simplefilter("always")
        with warnings.catch_warnings(record=True) as caught:
            from cedx import trust
            key = trust.generate_private_key()
            trust.verify_document(trust.sign_document({"a": 1}, key), key.public_key())
            key.sign(b"again")
        print(len(caught), caught[0].category.__name__, caught[0].message)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PATH": ""})
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("1 PerformanceWarning") and "pip install 'cedx[fast]'" in out.stdout


def test_the_portable_sm2_warning_points_at_the_callers_line():
    """It named cedx/trust/keys.py:193 and its source line: nothing the integrator wrote."""
    code = textwrap.dedent("""
        import sys, warnings
        sys.modules["tongsuopy"] = None
        warnings.simplefilter("always")
        with warnings.catch_warnings(record=True) as caught:
            import cedx
            key = cedx.load_private_key(cedx.trust.generate_private_key().to_pem())
        print(caught[0].filename, caught[0].lineno)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PATH": ""})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["<string>", "7"]  # the load_private_key line


def test_run_time_needs_no_yaml():
    code = textwrap.dedent("""
        import sys, cedx
        payload = __import__("json").loads(sys.stdin.read())
        client = cedx.ReportingClient("http://127.0.0.1:1", token="t", signing_key=cedx.trust.generate_private_key(),
                                      verify_signatures=False)
        client._validate_document(client.operations["submitMonthlyReport"], payload)
        cedx.trust.sign_document(payload, client.signing_key)
        print("yaml" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         input=json.dumps(load_example("monthly-report-power.json")["payload"]))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
