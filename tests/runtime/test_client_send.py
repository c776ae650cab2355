"""The client prepares its requests itself instead of through ``Session.request`` (issue 14):
what goes on the wire, what reaches the transport adapter (proxies, verify, cert, stream) and
which hooks run must be exactly what ``session.request`` gives, for the client's own session and
for a caller's session with its own headers, cookies, auth, hooks, proxies and TLS settings.
Each case sends the same request both ways to a loopback server that records the raw bytes."""

import functools
import json
import math
import random
import socketserver
import threading
import uuid
from enum import Enum

import pytest
import requests
from requests.adapters import HTTPAdapter

from cedx.generated.client import ReportingClient
from cedx.runtime import client as rc
from cedx.runtime.errors import NotFoundError

PROBLEM = b'{"type":"about:blank","title":"no","status":404,"code":"NOT_FOUND","detail":"none"}'


class _Raw(socketserver.StreamRequestHandler):
    """Records each request's bytes as received; answers 404 problem+json, with a cookie when
    the path asks for one (keep-alive, several requests per connection)."""

    def handle(self):
        while True:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = self.rfile.readline()
                if not line:
                    return
                head += line
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            self.server.seen.append(head + self.rfile.read(length))
            cookie = b"Set-Cookie: srv=v1; Path=/\r\n" if b"set-cookie" in head.split(b"\r\n")[0] else b""
            self.wfile.write(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/problem+json\r\n" + cookie
                             + b"Content-Length: " + str(len(PROBLEM)).encode() + b"\r\n\r\n" + PROBLEM)


@pytest.fixture
def wire():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Raw)
    server.daemon_threads = True
    server.seen = []
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


class _RecordingAdapter(HTTPAdapter):
    """The real adapter, recording what the session hands it."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def send(self, request, **kwargs):
        self.calls.append(kwargs)
        return super().send(request, **kwargs)


class _StampAuth(requests.auth.AuthBase):
    def __call__(self, r):
        r.headers["X-Stamp"] = f"{r.method} {len(r.body or b'')}"
        return r


def _headers():
    return {"Accept": "application/json, application/problem+json", "Authorization": "Bearer the-token",
            "Content-Type": "application/json; charset=utf-8", "Idempotency-Key": "k-1", "X-Cedx-Nonce": "n"}


def _configure(kind, session, url, files):
    """A caller's session as one might set it up (``kind``)."""
    if kind == "headers":
        session.headers.update({"X-Tenant": "t-1", "user-agent": "mine/1.0", "Accept": "text/plain"})
        session.headers["Accept-Encoding"] = None  # None: the header is not sent
    elif kind == "cookies":
        session.cookies.set("sid", "abc")
    elif kind == "basic-auth":
        session.auth = ("someone", "pw")  # replaces the bearer token, as requests does
    elif kind == "auth-callable":
        session.auth = _StampAuth()
    elif kind == "hooks":
        session.hooks["response"].append(lambda r, **kw: setattr(r, "hooked", kw.get("timeout")))
    elif kind == "params":
        session.params = {"tenant": "t 1"}
    elif kind == "proxy":
        session.proxies = {"http": url, "https": None}
    elif kind == "netrc":
        session.trust_env = True
    elif kind in ("tls", "tls-env"):
        cert = (str(files / "c.pem"), str(files / "k.pem"))  # must exist, even for http
        for name in cert:
            (files / name).write_text("-")
        session.verify, session.cert, session.stream = "/etc/cedx/ca.pem", cert, True
        session.trust_env = kind == "tls-env"
    return session


KINDS = ["own", "plain", "headers", "cookies", "basic-auth", "auth-callable", "hooks", "proxy", "netrc", "tls", "tls-env",
         "params", "subclass"]


class _Subclass(requests.Session):
    def request(self, method, url, **kw):  # a session of the caller's that does its own thing
        kw["headers"] = {**kw["headers"], "X-Sub": "1"}
        return super().request(method, url, **kw)


def _session(kind, url, files):
    if kind == "own":
        return rc.environment_session(url)[0]
    session = _Subclass() if kind == "subclass" else requests.Session()
    return _configure(kind, session, url, files)


def _exchange(send, session, url, wire, target):
    """Three requests (POST with a body, a GET, one that sets a cookie, then one more) one way."""
    adapter = _RecordingAdapter()
    session.mount("http://", adapter)
    out = []
    for method, path, body, verify in (("POST", "/v1/reporting/monthly-reports", b'{"a":"\xc3\xa9"}', True),
                                       ("GET", "/v1/reporting/submissions?status=accepted&x=%2F", b"", None),
                                       ("GET", "/set-cookie", b"", False), ("PUT", "/v1/x", b"{}", "/x/ca.pem")):
        resp = send(session, method, target + path, body, _headers(), 7, verify)
        out.append((resp.status_code, resp.content, getattr(resp, "hooked", None), resp.url))
    first, wire.seen[:] = list(wire.seen), []
    calls = [{k: v for k, v in c.items()} for c in adapter.calls]
    return first, out, calls, sorted((c.name, c.value) for c in session.cookies)


def _via_request(session, method, url, data, headers, timeout, verify):
    return session.request(method, url, data=data or None, headers=headers, timeout=timeout, verify=verify)


@pytest.mark.parametrize("kind", KINDS)
def test_the_same_request_as_session_request(kind, wire, tmp_path, monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
                 "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password hunter2\n")
    netrc.chmod(0o600)
    # a session that trusts the environment (requests' default) sends these credentials
    monkeypatch.setenv("NETRC", str(netrc) if kind == "netrc" else str(tmp_path / "none"))
    url = f"http://127.0.0.1:{wire.server_address[1]}"
    target = "http://cedx.invalid" if kind == "proxy" else url  # through the proxy, or nowhere
    fast = _session(kind, url, tmp_path)
    assert rc._fast_path_ok(fast) == (kind not in ("params", "subclass"))
    expected = _exchange(_via_request, _session(kind, url, tmp_path), url, wire, target)
    got = _exchange(rc.send_prepared, fast, url, wire, target)
    assert got == expected
    raw = b"".join(expected[0])
    assert len(expected[0]) == 4 and raw.count(b"Idempotency-Key: k-1") == 4
    marks = {"headers": [b"X-Tenant: t-1", b"user-agent: mine/1.0", b"Accept: application/json"],
             "cookies": [b"Cookie: sid=abc"], "basic-auth": [b"Authorization: Basic c29tZW9uZTpwdw=="],
             "auth-callable": [b"X-Stamp: POST 10"], "proxy": [b"POST http://cedx.invalid/v1/reporting/"],
             "netrc": [b"Authorization: Basic c29tZW9uZTpodW50ZXIy"], "params": [b"tenant=t+1"],
             "subclass": [b"X-Sub: 1"], "plain": [b"Authorization: Bearer the-token"]}
    for mark in marks.get(kind, []):
        assert mark in raw, (kind, mark)
    assert b"srv=v1" in expected[0][3].split(b"Cookie: ")[1]  # the server's cookie kept by the session, sent again
    if kind == "headers":
        assert b"Accept-Encoding: identity" in raw and b"gzip" not in raw  # http.client's default
    if kind == "hooks":
        assert [o[2] for o in expected[1]] == [7, 7, 7, 7]
    if kind.startswith("tls"):  # the client's verify wins over the session's unless it is None, as in requests
        assert [c["verify"] for c in expected[2]] == [True, "/etc/cedx/ca.pem", False, "/x/ca.pem"]
        assert expected[2][0]["cert"][0].endswith("c.pem") and expected[2][0]["stream"] is True


def test_an_instrumented_session_request_is_still_called(wire, monkeypatch):
    """A wrapper put on ``Session.request`` (tracing, say), or on one instance, keeps seeing
    every request: the client then sends through it."""
    url = f"http://127.0.0.1:{wire.server_address[1]}"
    seen = []
    original = requests.Session.request

    @functools.wraps(original)
    def traced(self, method, url, **kw):
        seen.append(method)
        return original(self, method, url, **kw)

    session = rc.environment_session(url)[0]
    assert rc._fast_path_ok(session)
    monkeypatch.setattr(requests.Session, "request", traced)
    assert not rc._fast_path_ok(session)
    rc.send_prepared(session, "POST", url + "/x", b"{}", _headers(), 5, True)
    monkeypatch.undo()
    session.request = functools.partial(traced, session)
    rc.send_prepared(session, "GET", url + "/x", b"", _headers(), 5, True)
    assert seen == ["POST", "GET"] and len(wire.seen) == 2


def test_environment_settings_of_a_session_that_trusts_it(wire, monkeypatch):
    """A caller's session (trust_env) still reads proxies and the CA bundle per request."""
    url = f"http://127.0.0.1:{wire.server_address[1]}"
    monkeypatch.setenv("HTTP_PROXY", url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/cedx/env-ca.pem")
    monkeypatch.setenv("NETRC", "/nonexistent")
    expected = _exchange(_via_request, requests.Session(), url, wire, "http://cedx.invalid")
    got = _exchange(rc.send_prepared, requests.Session(), url, wire, "http://cedx.invalid")
    assert got == expected
    assert expected[2][0]["verify"] == "/etc/cedx/env-ca.pem" and expected[2][0]["proxies"]["http"] == url
    assert expected[0][0].startswith(b"POST http://cedx.invalid/")


def test_errors_are_those_of_session_request():
    session = requests.Session()
    for bad_url in ("127.0.0.1:9/x", "http:///x", "http://*.example/x"):
        with pytest.raises(requests.RequestException) as old:
            _via_request(session, "GET", bad_url, b"", _headers(), 1, True)
        with pytest.raises(type(old.value)) as new:
            rc.send_prepared(session, "GET", bad_url, b"", _headers(), 1, True)
        assert str(new.value) == str(old.value)
    with pytest.raises(requests.exceptions.InvalidHeader):
        rc.send_prepared(session, "GET", "http://127.0.0.1:9/x", b"", {"X-Bad": "a\nb"}, 1, True)


def test_a_client_sends_the_callers_session_settings(wire):
    """End to end: the generated client keeps a caller's session header, cookie and proxy, and
    hands the client's TLS choice to the adapter."""
    url = f"http://127.0.0.1:{wire.server_address[1]}"
    session = requests.Session()
    session.trust_env = False
    session.headers["X-Tenant"] = "t-9"
    session.cookies.set("sid", "s-9")
    session.proxies = {"http": url}
    adapter = _RecordingAdapter()
    session.mount("http://", adapter)
    client = ReportingClient("http://platform.invalid", token="tk", session=session,
                             verify="/etc/cedx/ca.pem", retry=rc.NO_RETRY)
    with pytest.raises(NotFoundError):
        client.get_entity("91320500MA1X2P3Q4R")
    (raw,) = wire.seen
    assert raw.startswith(b"GET http://platform.invalid/v1/")
    for mark in (b"X-Tenant: t-9", b"Cookie: sid=s-9", b"Authorization: Bearer tk"):
        assert mark in raw
    assert adapter.calls[0]["verify"] == "/etc/cedx/ca.pem" and adapter.calls[0]["timeout"] == 30


# --- the body encoder: orjson's bytes only where they are the json module's -------------------

class _Color(Enum):
    RED = "red"


def _value(rng, depth):
    pick = rng.randrange(12 if depth < 5 else 7)
    if pick == 0:
        return rng.choice([0, 1, -1, 2**53, 2**63 - 1, -2**63, 2**64 - 1, 2**64, -2**63 - 1, 10**30, True, False])
    if pick == 1:
        return rng.choice([0.0, -0.0, 1.5, 1e-5, 1e-7, 1e16, 1e22, 0.1 + 0.2, math.nan, math.inf, 123.456])
    if pick == 2:
        return None
    if pick in (3, 4, 5):
        alphabet = "aZ09 \"\\/\b\f\n\r\t\x00\x1f\x7f\u2028\u00e9\uffff\U0001f600\ud800"
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(6)))
    if pick == 6:
        return rng.choice([uuid.UUID(int=5), _Color.RED, (1, "a"), "plain", b"x"])
    if pick in (7, 8):
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["a", "B", "é", "\U0001f600", "\uff01", "", "a\x00", "b"]
    d = {rng.choice(keys): _value(rng, depth + 1) for _ in range(rng.randrange(5))}
    if rng.random() < 0.1:
        d[rng.choice([1, 2.5, None])] = "non-str key"
    return d


def _json_module(value, default=None):
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True,
                          default=default).encode("utf-8")
    except Exception as exc:  # noqa: BLE001 - the same failure is expected
        return type(exc)


def _sorted_json(value, default=None):
    try:
        return rc.sorted_json(value, default)
    except Exception as exc:  # noqa: BLE001
        return type(exc)


def test_body_bytes_are_the_json_modules_for_any_value():
    pytest.importorskip("orjson")
    rng = random.Random(14)
    fast = 0
    for _ in range(4000):
        value = _value(rng, 0)
        assert _sorted_json(value) == _json_module(value), value
        assert _sorted_json(value, str) == _json_module(value, str), value
        fast += rc._json_types_only(value)
    assert fast > 1000  # the fast path was taken often, not only the fallback
    deep = []
    for _ in range(300):  # deeper than orjson writes: the json module's bytes
        deep = [deep]
    assert rc.sorted_json(deep) == _json_module(deep)
    cycle: list = []
    cycle.append(cycle)
    assert _sorted_json(cycle) is ValueError  # json's "Circular reference detected", as before


def test_body_bytes_without_orjson(monkeypatch):
    monkeypatch.setattr(rc, "_orjson", lambda: None)
    value = {"b": [1, "é\n", None], "a": {"z": True}}
    assert rc.sorted_json(value) == '{"a":{"z":true},"b":[1,"é\\n",null]}'.encode()
