"""The client reads proxies and the CA bundle from the environment once, when it is made, and
never lets ~/.netrc replace its bearer token (requests would do both on every request)."""

import http.server
import threading

import pytest

from cedx.generated.client import ReportingClient
from cedx.runtime.client import TokenProvider, environment_session
from cedx.runtime.errors import NotFoundError


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[str | None] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        type(self).seen.append(self.headers.get("Authorization"))
        body = b'{"type":"about:blank","title":"no","status":404,"code":"NOT_FOUND","detail":"none"}'
        self.send_response(404)
        self.send_header("Content-Type", "application/problem+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def recorder():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Recorder.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_proxy_and_ca_bundle_resolved_once_for_the_server(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/cedx/ca.pem")
    client = ReportingClient("https://platform.example.cn", token="t")
    assert client.session.proxies["https"] == "http://proxy.example:3128"
    assert client.verify == "/etc/cedx/ca.pem" and client.session.trust_env is False
    monkeypatch.setenv("HTTPS_PROXY", "http://elsewhere:8080")  # read once: later changes do not apply
    assert client.session.proxies["https"] == "http://proxy.example:3128"
    bypassed, verify = environment_session("https://internal.example/v1")
    assert "https" not in bypassed.proxies and verify == "/etc/cedx/ca.pem"
    _, verify = environment_session("https://platform.example.cn", verify=False)
    assert verify is False  # an explicit choice is kept
    tokens = TokenProvider("https://platform.example.cn/oauth/token", "id", "secret")  # made now: reads it now
    assert tokens._session.proxies["https"] == "http://elsewhere:8080" and tokens._verify == "/etc/cedx/ca.pem"


def test_netrc_never_replaces_the_bearer_token(recorder, tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    client = ReportingClient(recorder, token="the-token")
    with pytest.raises(NotFoundError):
        client.get_entity("91320500MA1X2P3Q4R")
    assert _Recorder.seen == ["Bearer the-token"]


def test_a_session_given_by_the_caller_is_used_as_it_is():
    import requests

    mine = requests.Session()
    client = ReportingClient("https://platform.example.cn", token="t", session=mine)
    assert client.session is mine and mine.trust_env is True and client.verify is True
