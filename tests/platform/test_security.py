"""Security hardening of the reference platform over real HTTP, on SQLite and PostgreSQL:
client state and token revocation, certificate revocation across instances, the CRL, rate
limits shared through the database, bounded and strict parsing, OAuth client authentication,
404/405 problem+json, the announced address, the signing-time freshness window."""

import base64
import datetime as dt
import itertools
import json
import select
import socket
import time
import uuid

import pytest
import requests

from cedx import trust
from cedx.platform.app import create_app
from cedx.platform.settings import PlatformSettings
from cedx.runtime.errors import AuthenticationError, UnprocessableError
from cedx.spec.uscc import check_character
from cedx.trust import x509 as tx

from ..loopback import serve
from .conftest import Entity

PROBLEM = "application/problem+json"
_codes = itertools.count(10)


def fresh_entity(env) -> Entity:
    """A new entity with its own client, key and certificate (revocations here touch no one else)."""
    first17 = f"913205{next(_codes):02d}MA1X2P3Q4"
    code = first17 + check_character(first17)
    entity = Entity(env.admin, code, "monthly-report-power.json")
    original, months = entity.report, itertools.count(0)

    def report():
        r, n = original(), next(months)
        month = ("01", "03", "05", "07", "08", "10", "12")[n % 7]  # 31 days: the example's running hours fit
        r.credit_code, r.report_id, r.period = code, uuid.uuid4(), f"{2000 + n // 7}-{month}"
        return r
    entity.report = report
    return entity


def settings_like(env, **kw) -> PlatformSettings:
    s = env.admin.settings
    return PlatformSettings(data_dir=s.data_dir, database_url=s.database_url, **kw)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def is_problem(r, status: int, code: str) -> bool:
    return (r.status_code == status and r.headers["content-type"].startswith(PROBLEM)
            and r.json()["code"] == code)


# --- 1. disabled clients and revoked tokens -------------------------------------------------
def test_disabling_a_client_stops_its_tokens_at_once_on_every_instance(env):
    entity = fresh_entity(env)
    token = env.tokens(entity).token()
    path = f"/v1/reporting/entities/{entity.credit_code}/facilities"
    with serve(create_app(settings_like(env))) as other:  # a second worker/host on the same database
        for base in (env.url, other):
            assert requests.get(base + path, headers=bearer(token)).status_code == 200
        env.admin.disable_client(f"{entity.credit_code}-erp")
        for base in (env.url, other):
            r = requests.get(base + path, headers=bearer(token))
            assert is_problem(r, 401, "TOKEN_INVALID"), r.text
        r = requests.post(f"{env.url}/oauth/token", data={"grant_type": "client_credentials",
                          "client_id": f"{entity.credit_code}-erp", "client_secret": entity.secret})
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"
        env.admin.enable_client(f"{entity.credit_code}-erp")
        assert requests.get(other + path, headers=bearer(env.tokens(entity).token())).status_code == 200
        assert requests.get(other + path, headers=bearer(token)).status_code == 401  # disabling deleted it


def test_rfc7009_token_revocation(env):
    entity, stranger = fresh_entity(env), fresh_entity(env)
    client_id = f"{entity.credit_code}-erp"
    token = env.tokens(entity).token()
    config = env.common().get_configuration()
    revoke = config.payload.endpoints.revocation
    assert revoke == f"{env.url}/oauth/revoke"
    basic = {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{entity.secret}".encode()).decode()}
    # Another client cannot revoke it (answered 200 all the same: RFC 7009 §2.2).
    other = {"client_id": f"{stranger.credit_code}-erp", "client_secret": stranger.secret}
    assert requests.post(revoke, data={"token": token, **other}).status_code == 200
    path = f"{env.url}/v1/reporting/entities/{entity.credit_code}/facilities"
    assert requests.get(path, headers=bearer(token)).status_code == 200
    r = requests.post(revoke, data={"token": token}, headers={"Authorization": "Basic " + base64.b64encode(
        f"{client_id}:wrong".encode()).decode()})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert requests.post(revoke, data={"token": token}, headers=basic).status_code == 200
    assert is_problem(requests.get(path, headers=bearer(token)), 401, "TOKEN_INVALID")
    assert requests.post(revoke, data={"token": "never-issued"}, headers=basic).status_code == 200
    assert requests.post(revoke, data={}, headers=basic).json()["error"] == "invalid_request"
    assert requests.post(revoke, data=b"x" * 9000, headers={**basic, "Content-Type": "application/x-www-form-urlencoded"}
                         ).status_code == 400


def test_expired_token_from_the_admin_api(env):
    entity = fresh_entity(env)
    token = env.admin.issue_token(f"{entity.credit_code}-erp", lifetime=1)
    path = f"{env.url}/v1/reporting/entities/{entity.credit_code}/facilities"
    assert requests.get(path, headers=bearer(token)).status_code == 200
    time.sleep(1.1)
    assert is_problem(requests.get(path, headers=bearer(token)), 401, "TOKEN_EXPIRED")


# --- 2. certificate revocation and the CRL --------------------------------------------------
def test_revoked_certificate_is_refused_at_once_by_every_instance_and_listed_in_the_crl(env, openssl):
    entity = fresh_entity(env)
    with serve(create_app(settings_like(env))) as other:
        clients = [env.client(entity), env.client(entity)]
        clients[1].base_url = other
        for c in clients:  # both instances have verified (and cached) the key
            assert c.submit_monthly_report(entity.report()).payload.version == 1
        key_id = env.admin.revoke_certificate(entity.cert)
        assert key_id == entity.key.public_key().fingerprint()
        for c in clients:
            with pytest.raises((AuthenticationError, UnprocessableError)) as exc:
                c.submit_monthly_report(entity.report())
            assert exc.value.code in ("REQUEST_SIGNATURE_INVALID", "CERTIFICATE_INVALID")
        # With the request signed by a second, valid key, the document check names the revocation.
        second = trust.generate_private_key()
        env.admin.issue_certificate(entity.credit_code, tx.create_csr(second, {"common_name": entity.credit_code}))
        signed = trust.sign_document(entity.report(), entity.key, envelope_fields={"specVersion": "1.0"})
        with pytest.raises(UnprocessableError) as exc:
            env.client(entity, signing_key=second).submit_monthly_report(signed)
        assert exc.value.code == "CERTIFICATE_INVALID" and "revoked" in exc.value.detail
    crl_url = env.common().get_configuration().payload.endpoints.crl
    r = requests.get(crl_url)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pkix-crl"
    with pytest.raises(trust.CertificateError, match="revoked"):
        tx.validate_chain(entity.cert, trust_anchors=[env.ca], crls=[r.content])
    openssl.write("crl.der", r.content)
    serial = format(int(tx.load_certificate(entity.cert).serial_number), "X")
    text = openssl.run("crl", "-inform", "DER", "-in", "crl.der", "-noout", "-text").stdout.decode()
    assert serial in text.replace(":", "").upper()


def test_expired_certificate_is_refused(env):
    entity = fresh_entity(env)
    key = trust.generate_private_key()
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=12)  # the platform CA dates from a day ago
    cert = env.admin.issue_certificate(entity.credit_code, tx.create_csr(key, {"common_name": entity.credit_code}),
                                       days=0, not_before=past)
    signed = trust.sign_document(entity.report(), key, certificate_chain=[cert], envelope_fields={"specVersion": "1.0"})
    with pytest.raises(UnprocessableError) as exc:  # request signed by the valid key, document by the expired one
        env.client(entity).submit_monthly_report(signed)
    assert exc.value.code == "CERTIFICATE_INVALID" and "expired" in str(exc.value.detail).lower() + str(exc.value)


# --- 3. bounded bodies ----------------------------------------------------------------------
def _send_unending_chunked(url: str, path: str, headers: dict, cap: int = 30 * 1024 * 1024) -> tuple[int, int]:
    """Send a chunked body that never ends until the server answers; (status, bytes sent)."""
    host, port = url.split("//")[1].split(":")
    sock = socket.create_connection((host, int(port)))
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sock.sendall(head.encode())
    chunk = b"10000\r\n" + b"[" * 0x10000 + b"\r\n"
    sent = 0
    try:
        while sent < cap:
            if select.select([sock], [], [], 0)[0]:
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 0x10000
        sock.settimeout(10)
        data = sock.recv(4096)
    finally:
        sock.close()
    return int(data.split(b" ")[1]) if data else 0, sent


def test_unending_chunked_bodies_are_cut_off(env):
    settings = settings_like(env, max_body_bytes=256 * 1024)
    entity = fresh_entity(env)
    token = env.tokens(entity).token()
    with serve(create_app(settings)) as url:
        status, sent = _send_unending_chunked(url, "/tsa", {"Content-Type": "application/timestamp-query"})
        assert status == 413 and sent < 8 * 1024 * 1024
        status, sent = _send_unending_chunked(url, "/oauth/token", {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 400 and sent < 8 * 1024 * 1024  # RFC 6749 form: invalid_request
        status, sent = _send_unending_chunked(url, "/oauth/revoke", {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 400 and sent < 8 * 1024 * 1024
        status, sent = _send_unending_chunked(url, "/v1/reporting/monthly-reports", {
            "Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4()), **bearer(token)})
        assert status == 413 and sent < 8 * 1024 * 1024


def _announce_body(url: str, path: str, length: int, headers: dict, send: bytes = b"", wait: float = 10) -> bytes:
    """Send a request's headers announcing ``length`` bytes of body, then only ``send``; the
    server's first answer (b"" if it waits for the rest)."""
    host, port = url.split("//")[1].split(":")
    with socket.create_connection((host, int(port))) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {length}\r\n"
        sock.sendall((head + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode() + send)
        sock.settimeout(wait)
        try:
            return sock.recv(4096)
        except TimeoutError:
            return b""


def test_an_unauthenticated_client_cannot_make_the_server_wait_for_a_large_body(env):
    from cedx.runtime.server import EARLY_BODY_BYTES

    path = "/v1/reporting/monthly-reports"
    headers = {"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())}
    # announced larger than what is read before admission: refused on the headers alone
    answer = _announce_body(env.url, path, EARLY_BODY_BYTES + 1, headers)
    assert answer.startswith(b"HTTP/1.1 401") and b"TOKEN_MISSING" in answer
    # a small body is read first (one worker-thread hop), and refused just the same once complete
    assert _announce_body(env.url, path, 100, headers, wait=1) == b""
    answer = _announce_body(env.url, path, 2, headers, b"{}")
    assert answer.startswith(b"HTTP/1.1 401") and b"TOKEN_MISSING" in answer


@pytest.mark.parametrize("value, length", [(b"12", 12), (b"\xb2", 1 << 62), (b"1_0", 1 << 62), (b"", 1 << 62)])
def test_a_malformed_content_length_reads_the_body_after_admission_not_a_500(value, length):
    # '²' passes str.isdigit() but not int(): a server that let it through got a 500
    from starlette.requests import Request

    from cedx.runtime.server import _declared_length

    headers = [(b"content-length", value)] if value else []
    assert _declared_length(Request({"type": "http", "headers": headers})) == length


# --- 4. deep and non-I-JSON bodies ----------------------------------------------------------
def _post_json(env, entity, body: bytes, path="/v1/reporting/monthly-reports", ctype="application/json"):
    headers = {**bearer(env.tokens(entity).token()), "Content-Type": ctype,
               "Idempotency-Key": str(uuid.uuid4()), **trust.sign_request(entity.key, "POST", path, "", body)}
    return requests.post(env.url + path, data=body, headers=headers)


@pytest.mark.parametrize("depth", [65, 1000, 100_000])
def test_deep_json_is_a_400(env, depth):
    r = _post_json(env, env.power, b'{"a":' + b"[" * depth + b"]" * depth + b"}")
    assert is_problem(r, 400, "MALFORMED_BODY") and "deeper than 64" in r.json()["detail"]


def test_deep_xml_is_a_400_not_a_500(env):
    body = b'<SignedMonthlyReport xmlns="urn:cedx:1.0">' + b"<a>" * 5000 + b"</a>" * 5000 + b"</SignedMonthlyReport>"
    r = _post_json(env, env.power, body, ctype="application/xml")
    assert 400 <= r.status_code < 500 and r.headers["content-type"].startswith(PROBLEM)


def test_json_within_the_depth_limit_reaches_validation(env):
    r = _post_json(env, env.power, b'{"a":' + b"[" * 60 + b"]" * 60 + b"}")
    assert is_problem(r, 422, "SCHEMA_VIOLATION")
    r = _post_json(env, env.power, json.dumps({"s": "[" * 500}).encode())  # brackets in strings do not nest
    assert is_problem(r, 422, "SCHEMA_VIOLATION")


@pytest.mark.parametrize("body, why", [
    (b'{"specVersion":"1.0","specVersion":"1.0"}', "duplicate"),
    (b'{"payload":{"a":1,"a":2}}', "duplicate"),
    (b'{"a":"\\ud800"}', "surrogate"),
    (b'{"a":9007199254740993}', "2^53"),
    (b'{"a":1e400}', "IEEE"),
    (b'\xef\xbb\xbf{"a":1}', "byte order mark"),
    (b'{"a":"\xff"}', "UTF-8"),
    (b'{"a":["ok","\\u000f"]}', "control character"),  # XML 1.0 could not carry it back
])
def test_non_i_json_is_a_400(env, body, why):
    r = _post_json(env, env.power, body)
    assert is_problem(r, 400, "MALFORMED_BODY") and why in r.json()["detail"], r.text


def test_a_signed_document_with_a_duplicate_key_is_refused(env):
    """The 'last wins' attack: two values for one field, only one of them signed."""
    report = env.power.report()
    report.period, report.report_id = "2023-02", uuid.uuid4()
    signed = trust.sign_document(report, env.power.key, certificate_chain=[env.power.cert],
                                 envelope_fields={"specVersion": "1.0"})
    text = json.dumps(signed, ensure_ascii=False)
    forged = text.replace('"entityName":', '"entityName": "篡改 / forged", "entityName":', 1).encode()
    r = _post_json(env, env.power, forged)
    assert is_problem(r, 400, "MALFORMED_BODY") and "entityName" in r.json()["detail"]


# --- 8. small input quirks ------------------------------------------------------------------
def test_malformed_accept_limit_and_cursor_are_400(env):
    h = bearer(env.tokens(env.cement).token())
    base = f"{env.url}/v1/reporting/submissions"
    for accept in ("application/json;q=NaN", "application/json;q=2", "application/json;q=-1", "*/*;q=0.0001"):
        assert is_problem(requests.get(base, headers={**h, "Accept": accept}), 400, "INVALID_PARAMETER"), accept
    assert requests.get(base, headers={**h, "Accept": "application/xml;q=0.5, application/json;q=1"}
                        ).headers["content-type"].startswith("application/json")
    for limit in (" 5", "5 ", "+5", "5_0", "٥", "0x5", "5.0"):
        assert is_problem(requests.get(base, params={"limit": limit}, headers=h), 400, "INVALID_PARAMETER"), limit
    assert requests.get(base, params={"limit": "5"}, headers=h).status_code == 200
    naive = base64.urlsafe_b64encode(f"2026-01-01T00:00:00|{uuid.uuid4()}".encode()).decode().rstrip("=")
    r = requests.get(base, params={"cursor": naive}, headers=h)
    assert is_problem(r, 400, "INVALID_PARAMETER") and "time zone" in r.json()["detail"]
    for cursor in ("!!!", base64.urlsafe_b64encode(b"2026-01-01T00:00:00Z|x").decode()):
        assert is_problem(requests.get(base, params={"cursor": cursor}, headers=h), 400, "INVALID_PARAMETER")


# --- 12/ OAuth: Basic authentication, no echo -----------------------------------------------
def test_token_endpoint_accepts_http_basic_and_never_echoes(env):
    client_id, secret = f"{env.power.credit_code}-erp", env.power.secret
    url = f"{env.url}/oauth/token"
    basic = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    r = requests.post(url, data={"grant_type": "client_credentials"}, headers={"Authorization": basic})
    assert r.status_code == 200 and r.json()["token_type"] == "Bearer" and r.headers["Cache-Control"] == "no-store"
    r = requests.post(url, data={"grant_type": "client_credentials"}, auth=(client_id, "wrong"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert r.headers["WWW-Authenticate"].startswith("Basic")
    r = requests.post(url, data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
                      headers={"Authorization": basic})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = requests.post(url, data={"grant_type": "client_credentials"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    leaked = "S3CRET-" + "x" * 600
    for data in ({"grant_type": "client_credentials", "client_id": client_id, "client_secret": leaked},
                 {"grant_type": leaked, "client_id": client_id, "client_secret": "s"},
                 f"grant_type=client_credentials&client_secret={leaked}&&&=%zz".encode()):
        r = requests.post(url, data=data, headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 400 and "S3CRET" not in r.text and "xxxx" not in r.text, r.text
        assert len(r.json().get("error_description", "")) <= 500


# --- 13. 404 and 405 ------------------------------------------------------------------------
def test_unknown_routes_and_methods_answer_problem_json(env):
    r = requests.get(f"{env.url}/v1/reporting/nothing-here")
    assert is_problem(r, 404, "NOT_FOUND")
    r = requests.delete(f"{env.url}/v1/reporting/entities/{env.power.credit_code}")
    assert is_problem(r, 405, "METHOD_NOT_ALLOWED")
    assert {m.strip() for m in r.headers["Allow"].split(",")} == {"GET", "PUT"}
    r = requests.put(f"{env.url}/v1/reporting/submissions")
    assert is_problem(r, 405, "METHOD_NOT_ALLOWED") and r.headers["Allow"] == "GET"
    r = requests.get(f"{env.url}/tsa")
    assert is_problem(r, 405, "METHOD_NOT_ALLOWED") and r.headers["Allow"] == "POST"


def test_acquisition_source_unknown_routes_answer_problem_json(tmp_path):
    from cedx.acquisition.app import create_source_app

    with serve(create_source_app("power", tmp_path / "src", ["t" * 20], clients={"acct": "s3cret-value"})) as url:
        assert is_problem(requests.get(f"{url}/v1/acquisition/nothing"), 404, "NOT_FOUND")
        r = requests.delete(f"{url}/v1/acquisition/source")
        assert is_problem(r, 405, "METHOD_NOT_ALLOWED") and r.headers["Allow"] == "GET"
        # The source's token endpoint takes HTTP Basic like the platform's (RFC 6749 §2.3.1).
        r = requests.post(f"{url}/oauth/token", data={"grant_type": "client_credentials"}, auth=("acct", "s3cret-value"))
        assert r.status_code == 200 and r.json()["token_type"] == "Bearer"
        r = requests.post(f"{url}/oauth/token", data={"grant_type": "client_credentials"}, auth=("acct", "wrong"))
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"


# --- 11.4 the announced address -------------------------------------------------------------
def test_without_a_public_url_the_configuration_names_the_address_served(env):
    settings = settings_like(env)
    assert settings.base_url is None  # nothing configured (the env fixture sets its own)
    with serve(create_app(settings)) as url:
        r = requests.get(f"{url}/.well-known/cedx-configuration", headers={"Host": "evil.example"})
        endpoints = r.json()["payload"]["endpoints"]
        assert endpoints["token"] == f"{url}/oauth/token" and endpoints["crl"] == f"{url}/pki/crl"


def test_serve_refuses_a_public_bind_without_public_url(tmp_path):
    import subprocess
    import sys

    assert subprocess.run([sys.executable, "-m", "cedx", "platform", "init", "--dir", str(tmp_path / "p")],
                          capture_output=True, timeout=60).returncode == 0
    r = subprocess.run([sys.executable, "-m", "cedx", "serve", "platform", "--dir", str(tmp_path / "p"),
                        "--host", "0.0.0.0", "--port", "1"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--public-url" in r.stderr


# --- 11.4 / 12.6 signing-time freshness -----------------------------------------------------
@pytest.mark.parametrize("shift, prepared_shift, words", [
    (dt.timedelta(days=-8), dt.timedelta(days=-9), "days before the time of receipt"),
    (dt.timedelta(minutes=10), dt.timedelta(0), "after the time of receipt"),
    (dt.timedelta(hours=-1), dt.timedelta(0), "before preparedAt"),
])
def test_stale_or_future_signatures_are_refused(env, shift, prepared_shift, words):
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    report = env.power.report()
    report.period, report.report_id = "2022-10", uuid.uuid4()
    report.prepared_at = now + prepared_shift
    signed = trust.sign_document(report, env.power.key, certificate_chain=[env.power.cert], signing_time=now + shift,
                                 envelope_fields={"specVersion": "1.0"})
    with pytest.raises(UnprocessableError) as exc:
        env.client(env.power).submit_monthly_report(signed)
    assert exc.value.code == "SIGNATURE_INVALID" and words in str(exc.value.detail), exc.value.errors
    assert ("$.signature.signingTime", "SIGNATURE_STALE") in [(e.path, e.code) for e in exc.value.errors]


def test_a_fresh_signature_a_little_ahead_is_accepted(env):
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    report = env.power.report()
    report.period, report.report_id = "2022-12", uuid.uuid4()
    report.prepared_at = now - dt.timedelta(days=3)
    signed = trust.sign_document(report, env.power.key, certificate_chain=[env.power.cert],
                                 signing_time=now + dt.timedelta(seconds=60), envelope_fields={"specVersion": "1.0"})
    assert env.client(env.power).submit_monthly_report(signed).payload.version == 1


# --- 5. rate limits shared through the database ---------------------------------------------
@pytest.fixture
def limited(env, tmp_path):
    """Two platform instances ("workers" or "hosts") on one fresh database with low limits."""
    import os

    from cedx.platform.admin import Admin

    from .conftest import _fresh_postgres

    url = _fresh_postgres(os.environ["CEDX_TEST_POSTGRES_URL"]) if env.admin.settings.database_url else None
    settings = PlatformSettings(data_dir=tmp_path / "p", database_url=url, rate_limit_per_minute=5,
                                auth_failures_per_minute=3)
    admin = Admin(settings)
    entity = Entity(admin, env.power.credit_code, "monthly-report-power.json")
    entity.admin = admin
    left = 60 - time.time() % 60
    if left < 6:  # start in a fresh one-minute window, so the whole test counts in one (it takes ~2 s)
        time.sleep(left + 0.1)
    with serve(create_app(settings)) as a, serve(create_app(settings)) as b:
        yield a, b, entity


def test_rate_limit_is_per_client_and_shared_by_instances(limited):
    a, b, entity = limited
    client_id = f"{entity.credit_code}-erp"
    tokens = [requests.post(f"{a}/oauth/token", auth=(client_id, entity.secret),
                            data={"grant_type": "client_credentials"}).json()["access_token"] for _ in range(2)]
    path = f"/v1/reporting/entities/{entity.credit_code}/facilities"
    remaining = []
    for i in range(5):  # alternate instances and tokens: one count for the client
        r = requests.get((a, b)[i % 2] + path, headers=bearer(tokens[i % 2]))
        assert r.status_code == 200 and r.headers["RateLimit-Limit"] == "5"
        remaining.append(int(r.headers["RateLimit-Remaining"]))
    assert remaining == [4, 3, 2, 1, 0]
    for base, token in ((a, tokens[0]), (b, tokens[1])):
        r = requests.get(base + path, headers=bearer(token))
        assert is_problem(r, 429, "RATE_LIMITED")
        retry = int(r.headers["Retry-After"])
        assert 0 < retry <= 60 and r.headers["RateLimit-Reset"] == str(retry) and r.headers["RateLimit-Remaining"] == "0"


def test_only_a_request_that_authenticates_counts_toward_its_clients_limit(limited):
    """PostgreSQL counts the hit in the token's lookup: it must count neither a request whose
    token fails a check (expired, scope missing, disabled client) nor skip one that passes
    (a token whose scopes the hooks split differently from the database's blank separator)."""
    a, b, entity = limited
    admin, client_id = entity.admin, f"{entity.credit_code}-erp"
    path = f"/v1/reporting/entities/{entity.credit_code}/facilities"  # needs reporting:read
    expired = admin.issue_token(client_id, lifetime=0)
    narrow = admin.issue_token(client_id, lifetime=600, scopes="reporting:submit reporting:reads xreporting:read")
    assert is_problem(requests.get(a + path, headers=bearer(expired)), 401, "TOKEN_EXPIRED")
    for base in (a, b):
        assert is_problem(requests.get(base + path, headers=bearer(narrow)), 403, "SCOPE_INSUFFICIENT")
    odd = admin.issue_token(client_id, lifetime=600, scopes="reporting:submit\treporting:read")
    good = admin.issue_token(client_id, lifetime=600)
    remaining = []
    for i in range(4):
        r = requests.get((a, b)[i % 2] + path, headers=bearer((good, odd)[i % 2]))
        assert r.status_code == 200, r.text
        remaining.append(int(r.headers["RateLimit-Remaining"]))
    assert remaining == [4, 3, 2, 1]  # none of the three refused requests was counted; every accepted one was
    other = Entity(admin, "91530100MA6K7L8M9M", "monthly-report-cement.json")  # a second client: its own count
    other_token = admin.issue_token(f"{other.credit_code}-erp", lifetime=600)
    admin.disable_client(f"{other.credit_code}-erp")
    assert is_problem(requests.get(b + path, headers=bearer(other_token)), 401, "TOKEN_INVALID")
    r = requests.get(a + path, headers=bearer(odd))
    assert r.status_code == 200 and r.headers["RateLimit-Remaining"] == "0"
    assert is_problem(requests.get(b + path, headers=bearer(good)), 429, "RATE_LIMITED")


def test_invalid_tokens_are_limited_per_address_whatever_the_header(limited):
    a, b, entity = limited
    path = f"/v1/reporting/entities/{entity.credit_code}/facilities"
    for i in range(3):
        assert is_problem(requests.get((a, b)[i % 2] + path, headers=bearer(f"guess-{i}")), 401, "TOKEN_INVALID")
    for base in (a, b):
        r = requests.get(base + path, headers=bearer("guess-again"))
        assert is_problem(r, 429, "RATE_LIMITED") and 0 < int(r.headers["Retry-After"]) <= 60


def test_wrong_secrets_are_limited_per_client_id_and_per_address(limited):
    a, b, entity = limited
    client_id = f"{entity.credit_code}-erp"
    for i in range(3):
        r = requests.post(f"{(a, b)[i % 2]}/oauth/token", auth=(client_id, f"wrong-{i}"),
                          data={"grant_type": "client_credentials"})
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    # Now even the right secret waits: guessing cannot continue on any instance.
    r = requests.post(f"{b}/oauth/token", auth=(client_id, entity.secret), data={"grant_type": "client_credentials"})
    assert r.status_code == 429 and 0 < int(r.headers["Retry-After"]) <= 60
    # Other client IDs from the same address are refused too (per-address count).
    r = requests.post(f"{a}/oauth/token", auth=("someone-else", "x"), data={"grant_type": "client_credentials"})
    assert r.status_code == 429


def test_failed_and_replayed_signed_requests_count_toward_the_limit(limited):
    """The limit is counted before the request signature is checked, so a request that fails
    it or replays a nonce costs the client like any other; a nonce consumed on one instance is
    refused on the other (both through the database)."""
    a, b, entity = limited
    token = requests.post(f"{a}/oauth/token", auth=(f"{entity.credit_code}-erp", entity.secret),
                          data={"grant_type": "client_credentials"}).json()["access_token"]
    path = "/v1/reporting/monthly-reports"
    report = entity.report()
    report.period, report.report_id = "2016-01", uuid.uuid4()
    body = json.dumps(trust.sign_document(report, entity.key, certificate_chain=[entity.cert],
                                          envelope_fields={"specVersion": "1.0"})).encode()
    headers = {**bearer(token), "Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4()),
               **trust.sign_request(entity.key, "POST", path, "", body)}
    first = requests.post(a + path, data=body, headers=headers)
    assert first.status_code == 201 and first.headers["RateLimit-Remaining"] == "4"
    assert is_problem(requests.post(b + path, data=body, headers=headers), 401, "REQUEST_REPLAYED")
    forged = {**headers, **trust.sign_request(trust.generate_private_key(), "POST", path, "", body)}
    forged["X-Cedx-Key-Id"] = headers["X-Cedx-Key-Id"]
    for base in (a, b):
        assert is_problem(requests.post(base + path, data=body, headers=forged), 401, "REQUEST_SIGNATURE_INVALID")
    facilities = f"/v1/reporting/entities/{entity.credit_code}/facilities"
    last = requests.get(b + facilities, headers=bearer(token))
    assert last.status_code == 200 and last.headers["RateLimit-Remaining"] == "0"  # 1 + 1 + 2 + this one
    assert is_problem(requests.get(a + facilities, headers=bearer(token)), 429, "RATE_LIMITED")


def test_a_replay_is_not_rechecked_for_freshness(env):
    """Trust profile §9: the same key and document get the stored receipt even after the window."""
    entity = fresh_entity(env)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    signed = trust.sign_document(entity.report(), entity.key, certificate_chain=[entity.cert],
                                 signing_time=now - dt.timedelta(seconds=120), envelope_fields={"specVersion": "1.0"})
    key = str(uuid.uuid4())
    first = env.client(entity).submit_monthly_report(signed, idempotency_key=key)
    with serve(create_app(settings_like(env, signing_time_max_age_seconds=60))) as strict:
        c = env.client(entity)
        c.base_url = strict
        assert c.submit_monthly_report(signed, idempotency_key=key) == first
        with pytest.raises(UnprocessableError) as exc:
            c.submit_monthly_report(signed, idempotency_key=str(uuid.uuid4()))
        assert exc.value.code == "SIGNATURE_INVALID"
