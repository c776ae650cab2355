"""The platform operator's command line as the docs describe it, and the mistakes an operator
makes: one line on stderr and exit status 2, never a traceback, never a silently lost secret or
a silently created database."""

import os
import subprocess
import sys

import pytest

from cedx.cli import build_parser, main

CODE = "91320500MA1X2P3Q4R"


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def one_line(err):
    return err.count("\n") == 1 and err.startswith("cedx: error: ") and "Traceback" not in err


@pytest.fixture(autouse=True)
def _own_environment(monkeypatch):
    """`cedx serve platform` hands its settings to its workers in CEDX_* variables; the tests that
    run it in this process must not leave them to later tests."""
    for name in ("CEDX_PUBLIC_URL", "CEDX_PLATFORM_DIR", "CEDX_SUCCESSOR_URL", "CEDX_SUCCESSOR_FROM",
                 "CEDX_DATABASE_URL", "CEDX_SOURCE_CLIENT_CA"):
        monkeypatch.setenv(name, "")  # recorded, so whatever the test sets is undone
        monkeypatch.delenv(name)


@pytest.fixture
def platform(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("CEDX_DATABASE_URL", raising=False)
    d = str(tmp_path / "p")
    monkeypatch.setenv("CEDX_HOME", d)
    assert run(capsys, "platform", "init")[0] == 0
    assert run(capsys, "platform", "add-entity", CODE)[0] == 0
    return d


def test_add_client_with_an_unset_secret_variable_creates_nothing(capsys, platform, monkeypatch):
    # Before: a random secret was stored and never shown, so the client could never log in.
    monkeypatch.delenv("NO_SUCH_SECRET_VAR", raising=False)
    status, out, err = run(capsys, "platform", "add-client", CODE, "--client-id", "erp", "--secret-env", "NO_SUCH_SECRET_VAR")
    assert status == 2 and one_line(err) and "NO_SUCH_SECRET_VAR" in err and out == ""
    monkeypatch.setenv("EMPTY_SECRET_VAR", "")
    status, _, err = run(capsys, "platform", "add-client", CODE, "--client-id", "erp", "--secret-env", "EMPTY_SECRET_VAR")
    assert status == 2 and one_line(err) and "EMPTY_SECRET_VAR" in err
    monkeypatch.setenv("GOOD_SECRET_VAR", "erp-secret-0123456789")
    # The client id is still free: nothing was created by the refused attempts.
    assert run(capsys, "platform", "add-client", CODE, "--client-id", "erp", "--secret-env", "GOOD_SECRET_VAR")[0] == 0


def test_unknown_scopes_and_non_positive_lifetimes_are_refused(capsys, platform):
    status, _, err = run(capsys, "platform", "add-client", CODE, "--client-id", "erp", "--scope", "reporting:sumbit")
    assert status == 2 and one_line(err) and "reporting:sumbit" in err and "reporting:submit" in err
    status, out, _ = run(capsys, "platform", "add-client", CODE, "--client-id", "erp", "--scope", "reporting:read")
    assert status == 0 and "secret" in out
    status, _, err = run(capsys, "platform", "issue-token", "erp", "--scope", "reporting:submit")
    assert status == 2 and one_line(err) and "reporting:submit" in err  # not one of the client's scopes
    for lifetime in ("0", "-5"):
        status, out, err = run(capsys, "platform", "issue-token", "erp", "--lifetime", lifetime)
        assert status == 2 and one_line(err) and out == "", (lifetime, out, err)
    assert run(capsys, "platform", "issue-token", "erp", "--lifetime", "60")[0] == 0


def test_client_id_help_says_what_each_command_does_with_it():
    parser = build_parser()
    seen = {}
    for action in parser._subparsers._group_actions[0].choices["platform"]._subparsers._group_actions[0].choices.items():
        name, sub = action
        for a in sub._actions:
            if a.dest == "client_id":
                seen[name] = a.help
    assert "create" in seen["add-client"]
    for name in ("disable-client", "enable-client", "issue-token"):
        assert "create" not in seen[name], (name, seen[name])


def test_revoking_a_missing_file_says_so(capsys, platform, tmp_path):
    status, _, err = run(capsys, "platform", "revoke-certificate", str(tmp_path / "entty.pem"))
    assert status == 2 and one_line(err)
    assert "No such file" in err or "no such file" in err, err


def test_a_postgresql_platform_without_its_url_is_not_given_a_new_sqlite_database(capsys, platform, tmp_path, monkeypatch):
    # A platform initialised on PostgreSQL has no platform.db; forgetting CEDX_DATABASE_URL in a
    # new shell must not register entities in a fresh SQLite file the server never reads.
    os.remove(os.path.join(platform, "platform.db"))
    status, _, err = run(capsys, "platform", "add-entity", "91350100M000100Y43")
    assert status == 2 and one_line(err) and "CEDX_DATABASE_URL" in err
    assert not os.path.exists(os.path.join(platform, "platform.db"))
    status, _, err = run(capsys, "serve", "platform", "--port", "1")
    assert status == 2 and one_line(err) and "CEDX_DATABASE_URL" in err
    assert not os.path.exists(os.path.join(platform, "platform.db"))


@pytest.mark.parametrize("url, expected", [
    ("postgres://u:p@127.0.0.1:1/x", "127.0.0.1"),  # taken as postgresql+psycopg:// (nothing listens on port 1)
    ("mysql://u:p@127.0.0.1/x", "postgresql+psycopg://"),
    ("not a url", "postgresql+psycopg://"),
    ("postgresql+psycopg://u:secret-pw@127.0.0.1:1/x", "127.0.0.1"),  # nothing listens on port 1
])
def test_a_wrong_database_url_is_one_line(tmp_path, url, expected):
    env = {**os.environ, "CEDX_DATABASE_URL": url, "CEDX_HOME": str(tmp_path / "p")}
    for argv in (["platform", "init"], ["serve", "platform", "--port", "1"]):
        out = subprocess.run([sys.executable, "-m", "cedx", *argv], capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 2, out.stderr
        assert one_line(out.stderr), out.stderr
        assert expected in out.stderr and "secret-pw" not in out.stderr


def test_inspecting_an_unreachable_target_says_why_once(capsys, tmp_path, monkeypatch):
    from cedx.runtime.serve import free_port

    monkeypatch.chdir(tmp_path)
    assert run(capsys, "keygen", "-o", "k.pem")[0] == 0
    assert run(capsys, "ca", "init", "-k", "k.pem", "--subject", f"CN={CODE}", "-o", "c.pem")[0] == 0
    monkeypatch.setenv("INSPECT_SECRET", "inspector-secret-0123456789")
    port = free_port()
    status, out, err = run(capsys, "inspect", "--target", f"http://127.0.0.1:{port}", "--interface", "reporting",
                           "--client-id", "inspector", "--client-secret-env", "INSPECT_SECRET", "--key", "k.pem",
                           "--cert", "c.pem", "--credit-code", CODE, "--ca", "c.pem", "--out", "report/")
    assert status == 2
    said = out + err
    # The cause in words, once; not urllib3's retry-pool text.
    assert said.count("Connection refused") == 1, said
    assert "HTTPConnectionPool" not in said and "Max retries" not in said, said
    assert f"127.0.0.1:{port}" in said and "report//" not in said
    detail = (tmp_path / "report" / "report.json").read_text(encoding="utf-8")
    assert "Connection refused" in detail and "HTTPConnectionPool" not in detail


@pytest.mark.parametrize("interface, drop", [
    ("reporting", "--client-secret-env"),   # was judged "credentials refused" (exit 2 for the wrong reason)
    ("acquisition", "--token-env"),
])
def test_inspect_names_missing_credentials_as_a_usage_error(capsys, tmp_path, monkeypatch, interface, drop):
    from cedx.runtime.serve import free_port

    monkeypatch.chdir(tmp_path)
    assert run(capsys, "keygen", "-o", "k.pem")[0] == 0
    assert run(capsys, "ca", "init", "-k", "k.pem", "--subject", f"CN={CODE}", "-o", "c.pem")[0] == 0
    monkeypatch.setenv("INSPECT_SECRET", "inspector-secret-0123456789")
    given = {"--client-secret-env": "INSPECT_SECRET", "--token-env": "INSPECT_SECRET"}
    argv = ["inspect", "--target", f"http://127.0.0.1:{free_port()}", "--interface", interface, "--ca", "c.pem",
            "--out", "report"]
    if interface == "reporting":
        argv += ["--client-id", "inspector", "--key", "k.pem", "--cert", "c.pem", "--credit-code", CODE,
                 "--client-secret-env", "INSPECT_SECRET"]
    else:
        argv += ["--token-env", "INSPECT_SECRET"]
    i = argv.index(drop)
    del argv[i:i + 2]
    assert given[drop]
    status, out, err = run(capsys, *argv)
    assert status == 2 and one_line(err) and drop in err and "INCONCLUSIVE" not in out + err, (out, err)
    assert not (tmp_path / "report").exists()  # nothing was inspected


@pytest.mark.parametrize("argv, env, expected", [
    (["--successor-url", "http://127.0.0.1:9", "--successor-from", "2027-01-01"], {}, "2027-01-01"),
    ([], {"CEDX_SUCCESSOR_URL": "http://127.0.0.1:9", "CEDX_SUCCESSOR_FROM": "next week"}, "next week"),
    (["--successor-from", "2027-01-01T00:00:00+08:00"], {}, "--successor-url"),
    (["--successor-url", "127.0.0.1:9"], {}, "127.0.0.1:9"),
    (["--public-url", "cedx.example.cn"], {}, "cedx.example.cn"),  # was announced as the endpoints' base
    (["--public-url", "https://b.example.cn"], {"CEDX_SUCCESSOR_URL": "https://b.example.cn/"}, "own address"),
    ([], {"CEDX_PUBLIC_URL": "https://cedx.example.cn?x=1"}, "cedx.example.cn?x=1"),
])
def test_a_malformed_announced_address_is_refused_before_serving(capsys, platform, monkeypatch, argv, env, expected):
    # Before: the platform started and answered every configuration request with a 500.
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    status, _, err = run(capsys, "serve", "platform", "--port", "1", *argv)
    assert status == 2 and one_line(err) and expected in err and "unrecognized" not in err, err


def test_an_announced_address_change_is_served_canonical(tmp_path, platform):
    import requests

    from cedx.runtime.serve import free_port

    port = free_port()
    env = {**os.environ, "CEDX_HOME": platform, "CEDX_SUCCESSOR_URL": "http://127.0.0.1:9"}
    env.pop("CEDX_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "cedx", "serve", "platform", "--port", str(port),
                             "--successor-from", "2027-01-01T00:00:00+08:00", "--log-level", "warning"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        import time

        for _ in range(300):
            try:
                r = requests.get(f"http://127.0.0.1:{port}/.well-known/cedx-configuration", timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert r.status_code == 200, r.text
        assert r.json()["payload"]["successor"]["baseUrl"] == "http://127.0.0.1:9"
        assert r.json()["payload"]["successor"]["effectiveFrom"] == "2026-12-31T16:00:00.000000Z"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_inspect_runs_the_confidentiality_case_from_the_command_line(capsys, tmp_path, monkeypatch):
    # A9.4 could only be made applicable from Python (Target.confidential): an inspection body
    # using the command line could never run it. The source trusts the client CA through
    # CEDX_SOURCE_CLIENT_CA (docs/key-exchange.md §6).
    import datetime as dt

    from cedx.acquisition.app import create_source_app
    from cedx.instants import CST

    from ..loopback import serve

    monkeypatch.chdir(tmp_path)
    for argv in (["keygen", "-o", "client-ca.key"], ["keygen", "-o", "client.key"],
                 ["ca", "init", "-k", "client-ca.key", "--subject", "CN=Inspection body CA", "-o", "client-ca.pem"],
                 ["csr", "-k", "client.key", "--subject", f"CN={CODE}", "-o", "client.csr"],
                 ["cert", "issue", "--ca", "client-ca.pem", "--ca-key", "client-ca.key", "--csr", "client.csr",
                  "-o", "client.pem"]):
        assert run(capsys, *argv)[0] == 0, argv
    monkeypatch.setenv("CEDX_SOURCE_CLIENT_CA", str(tmp_path / "client-ca.pem"))
    month = (dt.datetime.now(CST) - dt.timedelta(days=4)).replace(hour=0, minute=0, second=0, microsecond=0)
    app = create_source_app("power", tmp_path / "source", ["tok-a-0123456789"], commissioned=month)
    monkeypatch.setenv("SOURCE_TOKEN", "tok-a-0123456789")
    with serve(app) as url:
        status, out, err = run(capsys, "inspect", "--target", url, "--interface", "acquisition", "--token-env",
                               "SOURCE_TOKEN", "--ca", str(tmp_path / "source" / "pki" / "ca.pem"), "--item", "9",
                               "--confidential-key", "client.key", "--confidential-cert", "client.pem",
                               "--out", "report")
    assert status == 0, out + err
    import json

    report = json.loads((tmp_path / "report" / "report.json").read_text(encoding="utf-8"))
    a94 = next(c for i in report["items"] for c in i["cases"] if c["case_id"] == "A9.4")
    assert a94["verdict"] == "pass", a94["reason"]


@pytest.mark.parametrize("interface", ["reporting", "acquisition"])
def test_a_base_url_where_everything_is_404_is_inconclusive_not_a_failed_implementation(capsys, tmp_path, monkeypatch,
                                                                                          interface):
    # A mistyped --target (or a proxy answering 404 for unknown hosts) gave FAIL with 8 failed
    # and 27 blocked cases, a report against an implementation that was never reached.
    import http.server
    import threading

    class NotFound(http.server.BaseHTTPRequestHandler):
        def _404(self):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = do_PUT = do_DELETE = _404

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "keygen", "-o", "k.pem")[0] == 0
    assert run(capsys, "ca", "init", "-k", "k.pem", "--subject", f"CN={CODE}", "-o", "c.pem")[0] == 0
    monkeypatch.setenv("INSPECT_SECRET", "inspector-secret-0123456789")
    argv = ["inspect", "--target", f"http://127.0.0.1:{server.server_port}", "--interface", interface, "--ca", "c.pem",
            "--out", "report"]
    if interface == "reporting":
        argv += ["--client-id", "inspector", "--client-secret-env", "INSPECT_SECRET", "--key", "k.pem", "--cert", "c.pem",
                 "--credit-code", CODE]
    else:
        argv += ["--token-env", "INSPECT_SECRET"]
    try:
        status, out, err = run(capsys, *argv)
    finally:
        server.shutdown()
    assert status == 2, out + err
    assert "INCONCLUSIVE (unreachable)" in out and "404" in out and "--target" in out


def test_add_certificate_neither_moves_a_certificate_to_another_entity_nor_undoes_a_revocation(capsys, platform, tmp_path,
                                                                                             monkeypatch):
    import sqlite3

    monkeypatch.chdir(tmp_path)
    other = "91350100M000100Y43"
    assert run(capsys, "platform", "add-entity", other)[0] == 0
    assert run(capsys, "keygen", "-o", "k.pem")[0] == 0
    assert run(capsys, "csr", "-k", "k.pem", "--subject", f"CN={CODE}", "-o", "r.csr")[0] == 0
    assert run(capsys, "platform", "issue-certificate", CODE, "--csr", "r.csr", "-o", "c.pem")[0] == 0

    def owners():
        with sqlite3.connect(os.path.join(platform, "platform.db")) as db:
            return db.execute("SELECT credit_code, revoked FROM certificates").fetchall()

    # Before: the certificate (CN = CODE) was silently re-registered to the other entity.
    status, _, err = run(capsys, "platform", "add-certificate", other, "c.pem")
    assert status == 2 and one_line(err) and other in err
    assert owners() == [(CODE, 0)]
    assert run(capsys, "platform", "add-certificate", CODE, "c.pem")[0] == 0  # again, same entity: harmless
    assert run(capsys, "platform", "revoke-certificate", "c.pem")[0] == 0
    # Before: registering it again set revoked = false, so a revoked key signed again.
    status, _, err = run(capsys, "platform", "add-certificate", CODE, "c.pem")
    assert status == 2 and one_line(err) and "revoked" in err
    assert owners() == [(CODE, 1)]


@pytest.mark.parametrize("argv, expected", [
    (["serve", "platform", "--log-level", "verbose"], "invalid choice: 'verbose'"),   # was uvicorn's KeyError traceback
    (["serve", "acquisition", "--token", "t", "--log-level", "loud"], "invalid choice: 'loud'"),
    (["serve", "platform", "--workers", "0"], "0 is not at least 1"),
])
def test_server_options_are_checked_before_serving(capsys, platform, argv, expected):
    status, _, err = run(capsys, *argv)
    assert status == 2 and one_line(err) and expected in err, err


def test_a_tls_target_with_a_private_ca_says_how_to_trust_it(capsys, tmp_path, monkeypatch):
    import datetime as dt
    import http.server
    import ipaddress
    import ssl
    import threading

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "tls.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "tls.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_GET

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "tls.pem", tmp_path / "tls.key")
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.setenv("SOURCE_TOKEN", "t-0123456789")
    assert run(capsys, "keygen", "-o", "k.pem")[0] == 0
    assert run(capsys, "ca", "init", "-k", "k.pem", "--subject", f"CN={CODE}", "-o", "c.pem")[0] == 0
    argv = ["inspect", "--target", f"https://127.0.0.1:{server.server_port}", "--interface", "acquisition",
            "--token-env", "SOURCE_TOKEN", "--ca", "c.pem", "--out", "report"]
    try:
        status, out, _ = run(capsys, *argv)
        assert status == 2 and "certificate verify failed" in out and "REQUESTS_CA_BUNDLE" in out, out
        assert "HTTPSConnectionPool" not in out
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "tls.pem"))  # as the message says
        status, out, _ = run(capsys, *argv)
        assert status == 2 and "answered 404" in out, out  # reached now (nothing cedx there)
    finally:
        server.shutdown()


def test_list_certificates_gives_the_key_id_to_revoke(capsys, platform, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ids = []
    for n in range(2):
        assert run(capsys, "keygen", "-o", f"k{n}.pem")[0] == 0
        assert run(capsys, "csr", "-k", f"k{n}.pem", "--subject", f"CN={CODE}", "-o", f"r{n}.csr")[0] == 0
        status, out, _ = run(capsys, "platform", "issue-certificate", CODE, "--csr", f"r{n}.csr", "-o", f"c{n}.pem")
        assert status == 0
    status, out, _ = run(capsys, "platform", "list-certificates", CODE)
    assert status == 0
    rows = [line.split("\t") for line in out.splitlines()[1:]]
    assert len(rows) == 2 and all(r[1] == CODE and r[4] == "valid" for r in rows)
    ids = [r[0] for r in rows]
    assert run(capsys, "platform", "revoke-certificate", ids[0])[0] == 0
    out = run(capsys, "platform", "list-certificates")[1]
    states = {line.split("\t")[0]: line.split("\t")[4] for line in out.splitlines()[1:]}
    assert states[ids[0]].startswith("revoked ") and states[ids[1]] == "valid"
    status, _, err = run(capsys, "platform", "list-certificates", "91350100M000100Y43")
    assert status == 2 and one_line(err)


@pytest.mark.parametrize("argv, expected", [
    (["--token", "t", "--commissioned", "2026-13"], "'2026-13' is not a month YYYY-MM"),  # was a ValueError traceback
    (["--token", "t", "--database-url", "mysql://x/y"], "postgresql+psycopg://"),         # was MySQLdb's traceback
    (["--token", "t", "--rate-limit", "0"], "0 is not at least 1"),
    ([], "give --client ID[:ENVVAR]"),                                                     # had no "cedx: error:"
    (["--client", "erp:NO_SUCH_SOURCE_SECRET"], "$NO_SUCH_SOURCE_SECRET"),
])
def test_serve_acquisition_mistakes_are_one_line(capsys, tmp_path, monkeypatch, argv, expected):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_SUCH_SOURCE_SECRET", raising=False)
    status, _, err = run(capsys, "serve", "acquisition", "--dir", "src", "--port", "1", *argv)
    assert status == 2 and one_line(err) and expected in err, err


@pytest.mark.parametrize("extra, expected", [
    (["--credit-code", "12345"], "--credit-code 12345 is not a valid"),      # was a FAIL report against the target
    (["--out", "afile"], "--out afile"),                                     # was found after the whole inspection
])
def test_inspect_refuses_the_inspectors_own_typos_before_sending(capsys, tmp_path, monkeypatch, extra, expected):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("")
    assert run(capsys, "keygen", "-o", "k.pem")[0] == 0
    assert run(capsys, "ca", "init", "-k", "k.pem", "--subject", f"CN={CODE}", "-o", "c.pem")[0] == 0
    monkeypatch.setenv("INSPECT_SECRET", "inspector-secret-0123456789")
    argv = ["inspect", "--target", "http://127.0.0.1:9", "--interface", "reporting", "--client-id", "inspector",
            "--client-secret-env", "INSPECT_SECRET", "--key", "k.pem", "--cert", "c.pem", "--credit-code", CODE,
            "--ca", "c.pem", "--out", "report"]
    for i in range(0, len(extra), 2):
        argv[argv.index(extra[i]) + 1] = extra[i + 1]
    status, out, err = run(capsys, *argv)
    assert status == 2 and one_line(err) and expected in err and "INCONCLUSIVE" not in out, (out, err)


def test_serving_on_a_port_in_use_is_one_line_and_status_2(capsys, platform, tmp_path, monkeypatch):
    import gc
    import socket

    threshold = gc.get_threshold()

    monkeypatch.chdir(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for argv in (["serve", "platform", "--port", port],
                     ["serve", "acquisition", "--token", "t", "--dir", "src", "--port", port]):
            status, _, err = run(capsys, *argv)  # was uvicorn's log lines and exit status 3
            assert status == 2 and one_line(err) and f"127.0.0.1:{port}" in err and "in use" in err, err
    assert gc.get_threshold() == threshold  # refused before the heap was tuned for serving


def test_issue_certificate_never_overwrites_a_private_key(capsys, platform, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "keygen", "-o", "entity.key.pem")[0] == 0
    assert run(capsys, "csr", "-k", "entity.key.pem", "--subject", f"CN={CODE}", "-o", "entity.csr")[0] == 0
    key = (tmp_path / "entity.key.pem").read_bytes()
    status, _, err = run(capsys, "platform", "issue-certificate", CODE, "--csr", "entity.csr", "-o", "entity.key.pem")
    assert status == 2 and one_line(err) and "private key" in err
    assert (tmp_path / "entity.key.pem").read_bytes() == key


def _token_failures(url, n, forwarded):
    import requests

    codes = []
    for i in range(n):
        headers = {"X-Forwarded-For": f"198.51.100.{i + 1}"} if forwarded else {}
        codes.append(requests.post(f"{url}/oauth/token", headers=headers, timeout=10, data={
            "grant_type": "client_credentials", "client_id": f"nobody{i}", "client_secret": "x"}).status_code)
    return codes


def test_x_forwarded_for_is_believed_only_from_the_proxies_named(tmp_path, platform):
    # uvicorn believes X-Forwarded-For from 127.0.0.1 by default: a local client changing the
    # header every time was never limited per address (docs/security.md says it is not trusted).
    import time

    import requests

    from cedx.runtime.serve import free_port

    env = {**os.environ, "CEDX_HOME": platform, "CEDX_AUTH_FAILURE_LIMIT": "5"}
    env.pop("CEDX_DATABASE_URL", None)
    results = {}
    for trusted in (False, True):
        port = free_port()
        extra = ["--forwarded-allow-ips", "127.0.0.1"] if trusted else []
        proc = subprocess.Popen([sys.executable, "-m", "cedx", "serve", "platform", "--port", str(port),
                                 "--log-level", "warning", *extra], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    requests.get(f"{url}/health", timeout=5)
                    break
                except requests.ConnectionError:
                    time.sleep(0.1)
            results[trusted] = _token_failures(url, 7, forwarded=True)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    assert results[False][-1] == 429, results   # one address (the socket's): limited
    assert 429 not in results[True], results     # the named proxy's header: one address each


def _listing(out):
    """A tab-separated listing: its header's fields, then one dict per line."""
    lines = out.splitlines()
    header = lines[0].split("\t")
    return header, [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:]]


def _platform_admin(platform):
    from pathlib import Path

    from cedx.platform.admin import Admin
    from cedx.platform.settings import PlatformSettings

    return Admin(PlatformSettings(data_dir=Path(platform), database_url=None))


def test_list_clients_shows_each_client_and_never_a_secret(capsys, platform, monkeypatch):
    import datetime as dt
    import sqlite3

    from cedx.platform.store import TokenRecord

    other = "91350100M000100Y43"
    assert run(capsys, "platform", "add-entity", other)[0] == 0
    status, out, _ = run(capsys, "platform", "add-client", CODE, "--client-id", "erp")
    secret = out.split("stored hashed): ")[1].strip()
    monkeypatch.setenv("OTHER_SECRET", "other-secret-0123456789")
    assert run(capsys, "platform", "add-client", other, "--client-id", "other-erp", "--scope", "reporting:read",
               "--secret-env", "OTHER_SECRET")[0] == 0
    assert run(capsys, "platform", "add-client", CODE, "--client-id", "old-erp")[0] == 0
    for _ in range(2):
        assert run(capsys, "platform", "issue-token", "erp")[0] == 0
    admin = _platform_admin(platform)  # and one token expired already: not live
    admin.store.add_token(TokenRecord("0" * 64, "erp", CODE, "reporting:read",
                                      dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)))
    admin.store.dispose()
    assert run(capsys, "platform", "issue-token", "old-erp")[0] == 0
    assert run(capsys, "platform", "disable-client", "old-erp")[0] == 0
    status, out, err = run(capsys, "platform", "list-clients")
    assert status == 0 and err == ""
    header, rows = _listing(out)
    assert header == ["client ID", "entity", "state", "created", "live tokens", "scopes"]
    assert [(r["client ID"], r["entity"], r["state"], r["live tokens"]) for r in rows] == [
        ("erp", CODE, "enabled", "2"), ("old-erp", CODE, "disabled", "0"), ("other-erp", other, "enabled", "0")]
    assert rows[2]["scopes"] == "reporting:read"
    now = dt.datetime.now(dt.timezone.utc)
    for r in rows:
        created = dt.datetime.strptime(r["created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
        assert now - dt.timedelta(minutes=5) < created <= now
    # Neither a secret nor what is stored of it
    with sqlite3.connect(os.path.join(platform, "platform.db")) as db:
        hashes = [h for (h,) in db.execute("SELECT secret_hash FROM clients")]
    for hidden in (secret, "other-secret-0123456789", *hashes, *(h.split("$")[-1] for h in hashes)):
        assert hidden not in out
    assert "scrypt" not in out
    # One entity's, as list-certificates
    status, out, _ = run(capsys, "platform", "list-clients", other)
    assert status == 0 and [r["client ID"] for r in _listing(out)[1]] == ["other-erp"]
    status, out, err = run(capsys, "platform", "list-clients", "91530100MA6K7L8M9M")
    assert status == 2 and one_line(err) and "not registered" in err and out == ""


def test_list_entities_counts_certificates_by_state_and_clients(capsys, platform, tmp_path, monkeypatch):
    import datetime as dt
    import time

    monkeypatch.chdir(tmp_path)
    other = "91350100M000100Y43"
    assert run(capsys, "platform", "add-entity", other)[0] == 0
    assert run(capsys, "platform", "add-client", CODE, "--client-id", "erp")[0] == 0
    for n, days in enumerate(("365", "365", "0")):
        assert run(capsys, "keygen", "-o", f"k{n}.pem")[0] == 0
        assert run(capsys, "csr", "-k", f"k{n}.pem", "--subject", f"CN={CODE}", "-o", f"r{n}.csr")[0] == 0
        assert run(capsys, "platform", "issue-certificate", CODE, "--csr", f"r{n}.csr", "-o", f"c{n}.pem",
                   "--days", days)[0] == 0
    assert run(capsys, "platform", "revoke-certificate", "c1.pem")[0] == 0
    admin = _platform_admin(platform)  # the entity's own details, as registered through the API
    admin.store.register_entity(other, {"creditCode": other, "name": "示例水泥\t有限公司\u202e\x9b[2J\n"})
    admin.store.dispose()
    time.sleep(1.1)  # the --days 0 certificate is past its notAfter (one-second resolution)
    status, out, err = run(capsys, "platform", "list-entities")
    assert status == 0 and err == ""
    header, rows = _listing(out)
    assert header == ["entity", "name", "registered", "valid certificates", "expired", "revoked", "clients"]
    assert [(r["entity"], r["name"], r["valid certificates"], r["expired"], r["revoked"], r["clients"])
            for r in rows] == [(CODE, "-", "1", "1", "1", "1"),
                         # a bidi override and a C1 control (CSI) shown as escapes, not sent to the terminal
                         (other, "示例水泥 有限公司\\u202e\\u009b[2J", "0", "0", "0", "0")]
    now = dt.datetime.now(dt.timezone.utc)
    for r in rows:
        registered = dt.datetime.strptime(r["registered"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
        assert now - dt.timedelta(minutes=5) < registered <= now


def test_issue_certificate_days_sets_the_validity_within_the_cas(capsys, platform, tmp_path, monkeypatch):
    from cedx.trust import x509 as tx

    monkeypatch.chdir(tmp_path)
    assert run(capsys, "keygen", "-o", "k.pem")[0] == 0
    assert run(capsys, "csr", "-k", "k.pem", "--subject", f"CN={CODE}", "-o", "r.csr")[0] == 0

    def validity(path):
        v = tx.load_certificate((tmp_path / path).read_bytes())["tbs_certificate"]["validity"]
        return v["not_after"].native - v["not_before"].native

    def certificates():
        return len(run(capsys, "platform", "list-certificates")[1].splitlines()) - 1

    assert run(capsys, "platform", "issue-certificate", CODE, "--csr", "r.csr", "-o", "default.pem")[0] == 0
    assert validity("default.pem").days == 365
    assert run(capsys, "platform", "issue-certificate", CODE, "--csr", "r.csr", "-o", "d30.pem", "--days", "30")[0] == 0
    assert validity("d30.pem").days == 30
    # 0: valid only in the second it was issued (inspection case 9.6: an expired certificate)
    assert run(capsys, "platform", "issue-certificate", CODE, "--csr", "r.csr", "-o", "d0.pem", "--days", "0")[0] == 0
    assert validity("d0.pem").total_seconds() == 0
    ca = tx.load_certificate((tmp_path / "p" / "pki" / "ca.pem").read_bytes())["tbs_certificate"]["validity"]
    registered = certificates()
    for days, expected in (("-1", "-1 is not 0 or more days"), ("a year", "'a year' is not a whole number of days"),
                           ("4000", f"not after {ca['not_after'].native:%Y-%m-%dT%H:%M:%SZ}); give at most 36"),
                           (str(10**15), "would outlive the platform CA")):
        status, out, err = run(capsys, "platform", "issue-certificate", CODE, "--csr", "r.csr", "-o", "bad.pem",
                               "--days", days)
        assert status == 2 and one_line(err) and expected in err and out == "", (days, err)
        assert not (tmp_path / "bad.pem").exists()
    assert certificates() == registered  # nothing registered by a refused request
    longest = int(err.rsplit("at most ", 1)[1].split()[0])
    assert run(capsys, "platform", "issue-certificate", CODE, "--csr", "r.csr", "-o", "last.pem", "--days",
               str(longest))[0] == 0
    last = tx.load_certificate((tmp_path / "last.pem").read_bytes())["tbs_certificate"]["validity"]
    assert last["not_after"].native <= ca["not_after"].native  # never outlives its issuer


def test_serve_acquisition_refuses_a_commissioning_month_to_come(capsys, tmp_path, monkeypatch):
    # 2026-11-30T16:30Z is already 2026-12-01 00:30 in China Standard Time: December is not in
    # the future there (a check on UTC's month would refuse it), January is. The port is taken,
    # so that a month let through is refused for that instead (and nothing is served).
    import datetime as dt
    import socket

    from cedx.cli import platform_cmds

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(platform_cmds, "_now_cst", lambda: dt.datetime(2026, 11, 30, 16, 30, tzinfo=dt.timezone.utc)
                        .astimezone(dt.timezone(dt.timedelta(hours=8))), raising=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for month in ("2027-01", "2999-12"):
            status, out, err = run(capsys, "serve", "acquisition", "--dir", "src", "--token", "t", "--port", port,
                                   "--commissioned", month)
            assert status == 2 and one_line(err) and out == "", err
            assert f"--commissioned {month} is in the future; this month is 2026-12 (China Standard Time" in err, err
        for month in ("2026-12", "2019-06"):  # accepted: refused only later, for the port in use
            status, _, err = run(capsys, "serve", "acquisition", "--dir", "src", "--token", "t", "--port", port,
                                 "--commissioned", month)
            assert status == 2 and one_line(err) and "in use" in err and "future" not in err, err
    assert not (tmp_path / "src").exists()


def test_serve_acquisition_says_where_its_default_directory_is(capsys, tmp_path, monkeypatch):
    # The default directory (cedx-source-SITE in the working directory) was created silently.
    import uvicorn

    from cedx.runtime import serve

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, *a, **k: None)  # built, not served
    monkeypatch.setattr(serve, "tune_gc_for_serving", lambda: None)
    port = str(serve.free_port())
    status, out, err = run(capsys, "serve", "acquisition", "--token", "t-0123456789", "--port", port)
    assert status == 0 and out == "", err
    where = tmp_path / "cedx-source-power"
    assert (where / "pki" / "source.pem").is_file()
    assert err == f"cedx: source data in {where} (created: keys, SQLite store); choose the directory with --dir\n"
    status, _, err = run(capsys, "serve", "acquisition", "--token", "t-0123456789", "--port", port)
    assert status == 0 and err == f"cedx: source data in {where} (existing: keys, SQLite store); choose the directory with --dir\n"
    status, _, err = run(capsys, "serve", "acquisition", "--token", "t-0123456789", "--port", port, "--dir", "chosen")
    assert status == 0 and err == "" and (tmp_path / "chosen" / "pki").is_dir()  # named by the operator already
