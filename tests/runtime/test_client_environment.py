"""The client reads proxies and the CA bundle from the environment once, when it is made, and
never lets ~/.netrc replace its bearer token (requests would do both on every request)."""

import http.server
import threading
from pathlib import Path

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
    # verify=None: the session's own setting applies (requests merges it), see the HTTPS test below
    assert client.session is mine and mine.trust_env is True and client.verify is None


# --- a caller's session.verify (a private CA) is kept: real TLS on loopback ----------------------

class _TlsRecorder(_Recorder):
    def do_POST(self):  # noqa: N802 — the token endpoint
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"access_token":"tls-token","token_type":"Bearer","expires_in":600}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _private_ca_and_server(tmp_path):
    """A private CA (P-256) and a server certificate for 127.0.0.1 it issued, as PEM files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cedx test TLS CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
              .issuer_name(ca_name).public_key(server_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
              .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                             critical=False)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "server.pem").write_bytes(server.public_bytes(pem))
    (tmp_path / "server.key").write_bytes(server_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return tmp_path / "ca.pem"


@pytest.fixture
def tls_server(tmp_path):
    import ssl

    ca = _private_ca_and_server(tmp_path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TlsRecorder)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Recorder.seen = []
    yield f"https://127.0.0.1:{server.server_address[1]}", str(ca)
    server.shutdown()


def test_a_callers_session_verify_is_kept_over_tls(tls_server, monkeypatch):
    """A session whose ``verify`` names a private CA bundle: the client and the token provider
    given it connect with that bundle (before, their own verify=True replaced it and the TLS
    handshake failed against the system CAs)."""
    import requests

    from cedx.runtime.errors import TransportError

    url, ca = tls_server
    # a CA bundle in the environment that would not do: requests lets it replace session.verify
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(Path(ca).with_name("not-this-ca.pem")))
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    mine = requests.Session()
    mine.verify = ca
    tokens = TokenProvider(f"{url}/oauth/token", "id", "secret", session=mine, retry=_no_retry())
    assert tokens.token() == "tls-token"
    client = ReportingClient(url, token_provider=tokens, session=mine, retry=_no_retry())
    with pytest.raises(NotFoundError):  # the platform answered: the TLS handshake passed
        client.get_entity("91320500MA1X2P3Q4R")
    assert _Recorder.seen == ["Bearer tls-token"]
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    # the same server without the private CA: refused by TLS (the test above can fail)
    with pytest.raises(TransportError):
        ReportingClient(url, token="t", retry=_no_retry()).get_entity("91320500MA1X2P3Q4R")
    # an explicit verify= still wins over the session's
    with pytest.raises(TransportError):
        ReportingClient(url, token="t", session=mine, verify=True, retry=_no_retry()).get_entity("91320500MA1X2P3Q4R")


def _no_retry():
    from cedx.runtime.client import RetryPolicy

    return RetryPolicy(attempts=1)
