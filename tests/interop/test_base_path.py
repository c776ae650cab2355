"""Profile §11 and §5 example 2, end to end: the reference platform announced at a base URL with a
path (`--public-url …/cedx`) behind a reverse proxy that removes that path — the usual deployment —
used by the independent client from the configuration alone. The client signs the full path it
sends (/cedx/v1/…); the platform receives /v1/… and must verify the same string (it once refused
every signed request there)."""

import http.client as httpclient
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from .client import Client, OpenSSL, http
from .test_conformance import POWER, _free_port, cedx_cli, cedx_serving, report

pytestmark = pytest.mark.openssl
PREFIX = "/cedx"


def _proxy(backend_port: int) -> ThreadingHTTPServer:
    """A reverse proxy that removes PREFIX (nginx: location /cedx/ { proxy_pass http://backend/; })."""
    class Handler(BaseHTTPRequestHandler):
        def _forward(self):
            if not self.path.startswith(PREFIX + "/"):
                self.send_error(404)
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            conn = httpclient.HTTPConnection("127.0.0.1", backend_port, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            conn.request(self.command, self.path[len(PREFIX):], body=body or None, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
            self.send_response(answer.status)
            for k, v in answer.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            conn.close()

        do_GET = do_POST = do_PUT = _forward

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory):
    data = tmp_path_factory.mktemp("platform-prefix")
    cedx_cli("platform", "init", data_dir=data)
    code = POWER["creditCode"]
    cedx_cli("platform", "add-entity", code, data_dir=data)
    secret = cedx_cli("platform", "add-client", code, "--client-id", f"{code}-erp", data_dir=data).rsplit(":", 1)[1].strip()
    port = _free_port()
    proxy = _proxy(port)
    base = f"http://127.0.0.1:{proxy.server_address[1]}{PREFIX}"
    try:
        with cedx_serving("platform", "--dir", str(data), "--port", str(port), "--public-url", base,
                          "--log-level", "warning", probe=f"{base}/.well-known/cedx-configuration", what="platform"):
            ssl = OpenSSL(tmp_path_factory.mktemp("client-prefix"))
            ssl.run("genpkey", "-algorithm", "SM2", "-out", "entity.key.pem")
            ssl.run("req", "-new", "-key", "entity.key.pem", "-sm3", "-sigopt", "distid:1234567812345678",
                    "-subj", f"/CN={code}", "-out", "entity.csr")
            cedx_cli("platform", "issue-certificate", code, "--csr", str(ssl.dir / "entity.csr"), "-o",
                     str(ssl.dir / "entity.pem"), data_dir=data)
            (ssl.dir / "ca.pem").write_bytes((data / "pki" / "ca.pem").read_bytes())
            yield {"base": base, "client": Client(base, f"{code}-erp", secret, "entity.key.pem", "entity.pem", "ca.pem", ssl)}
    finally:
        proxy.shutdown()


def test_the_whole_flow_at_a_base_url_with_a_path(behind_proxy):
    client, base = behind_proxy["client"], behind_proxy["base"]
    config = client.configuration()  # signed, verified against the out-of-band anchor
    assert config["endpoints"]["reporting"] == base + "/v1/reporting"
    assert config["endpoints"]["token"] == base + "/oauth/token"
    client.get_token()
    sent = client.sign_document(report(POWER, period="2026-10"))
    receipt = client.check_receipt(client.submit(sent), sent)  # signed request over /cedx/v1/reporting/...
    listed = client.request("GET", "/v1/reporting/submissions", query="period=2026-10&limit=5", sign=True)
    assert listed.status == 200, listed.body
    assert [i["submissionId"] for i in listed.json()["items"]] == [receipt["submissionId"]]
    # a client that leaves the base URL's path out of the string to sign is refused
    client.base_path = ""
    try:
        naive = client.request("GET", "/v1/reporting/submissions", query="limit=5", sign=True)
    finally:
        client.base_path = PREFIX
    assert naive.status == 401 and naive.json()["code"] == "REQUEST_SIGNATURE_INVALID"


def test_the_next_page_link_stays_under_the_base_url(behind_proxy):
    """RFC 8288 Link of listSubmissions: followed as given, it reaches the next page through the
    proxy (a bare /v1/… reference resolved to the proxy's root and lost the base URL's path)."""
    client, base = behind_proxy["client"], behind_proxy["base"]
    sent = client.sign_document(report(POWER, period="2026-08"))
    client.check_receipt(client.submit(sent), sent)
    first = client.request("GET", "/v1/reporting/submissions", query="limit=1")
    link = first.headers["link"]
    target = link[link.index("<") + 1:link.index(">")]
    assert target.startswith(base + "/v1/reporting/submissions?"), link
    second = http("GET", target, {"Authorization": f"Bearer {client.token}", "Accept": "application/json"})
    assert second.status == 200 and second.json()["items"][0]["submissionId"] != first.json()["items"][0]["submissionId"]


@pytest.fixture(scope="module")
def source_behind_proxy(tmp_path_factory):
    data = tmp_path_factory.mktemp("source-prefix")
    port = _free_port()
    proxy = _proxy(port)
    base = f"http://127.0.0.1:{proxy.server_address[1]}{PREFIX}"
    try:
        with cedx_serving("acquisition", "--site", "power", "--dir", str(data), "--port", str(port),
                          "--token", "source-token-0123456789", "--public-url", base, "--log-level", "warning",
                          probe=f"{base}/.well-known/cedx-configuration", what="source"):
            yield base
    finally:
        proxy.shutdown()


def test_a_sources_link_names_its_announced_base_url(source_behind_proxy):
    base = source_behind_proxy
    answer = http("GET", f"{base}/v1/acquisition/points?limit=1", {"Authorization": "Bearer source-token-0123456789"})
    assert answer.status == 200
    link = answer.headers["link"]
    target = link[link.index("<") + 1:link.index(">")]
    assert target.startswith(base + "/v1/acquisition/points?"), link  # not the proxy's backend address
    assert http("GET", target, {"Authorization": "Bearer source-token-0123456789"}).status == 200
