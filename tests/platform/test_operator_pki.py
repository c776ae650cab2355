"""The platform's PKI as an operator runs it for months: the CRL it serves is re-signed before its
nextUpdate passes, and `cedx platform init` issues a new platform or TSA key and certificate from
the platform CA when the old ones were moved aside (docs/security.md, rotating keys)."""

import dataclasses
import datetime as dt
import time

import pytest
from asn1crypto import crl as asn1crl

from cedx.cli import main
from cedx.platform.app import create_app
from cedx.platform.settings import PlatformSettings, load_pki
from cedx.trust import x509 as tx


def test_the_served_crl_is_never_past_its_next_update(tmp_path):
    # A platform up for longer than the CRL's validity without a revocation used to serve the
    # first CRL it built for ever; clients then refuse it as stale. Here the validity is 0 days.
    settings = dataclasses.replace(PlatformSettings(data_dir=tmp_path, database_url=None), crl_next_update_days=0)
    platform = create_app(settings).state.platform
    first = asn1crl.CertificateList.load(platform.crl())
    time.sleep(1.1)  # certificate times have one-second resolution
    asked = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    later = asn1crl.CertificateList.load(platform.crl())
    assert later["tbs_cert_list"]["next_update"].native >= asked
    assert later["tbs_cert_list"]["this_update"].native > first["tbs_cert_list"]["this_update"].native


def test_init_issues_a_moved_platform_or_tsa_key_again_from_the_same_ca(tmp_path, capsys):
    d = str(tmp_path / "p")
    assert main(["platform", "init", "--dir", d]) == 0
    pki = tmp_path / "p" / "pki"
    before = load_pki(pki)
    aside = tmp_path / "aside"
    aside.mkdir()
    for name in ("platform.pem", "platform.key.pem", "tsa.pem", "tsa.key.pem"):
        (pki / name).rename(aside / name)
    capsys.readouterr()
    assert main(["platform", "init", "--dir", d]) == 0
    assert "issued from the existing CA: pki/platform.pem, pki/tsa.pem" in capsys.readouterr().out
    after = load_pki(pki)
    assert after.ca == before.ca and after.ca_key.private_value == before.ca_key.private_value
    assert after.platform_key.private_value != before.platform_key.private_value
    assert after.tsa_key.private_value != before.tsa_key.private_value
    for cert in (after.platform_cert, after.tsa_cert):
        tx.validate_chain(cert, trust_anchors=[after.ca])
    assert oct((pki / "platform.key.pem").stat().st_mode & 0o777) == "0o600"
    # A half-moved pair is not silently replaced: the operator is told which file is missing.
    (pki / "tsa.pem").unlink()
    assert main(["platform", "init", "--dir", d]) == 2
    err = capsys.readouterr().err
    assert "tsa.pem" in err and "Traceback" not in err and err.count("\n") == 1


def test_only_init_issues_a_missing_key_again_never_another_command_or_the_server(tmp_path, capsys):
    # A restore that missed pki/platform*.pem (or a volume not mounted) must not bring the
    # platform up under a new signing identity: every command but `init` refuses, naming it.
    d = str(tmp_path / "p")
    assert main(["platform", "init", "--dir", d]) == 0
    pki = tmp_path / "p" / "pki"
    for name in ("platform.pem", "platform.key.pem"):
        (pki / name).rename(tmp_path / name)
    capsys.readouterr()
    assert main(["platform", "add-entity", "91320500MA1X2P3Q4R", "--dir", d]) == 2
    err = capsys.readouterr().err
    assert "platform.pem" in err and "cedx platform init" in err and "Traceback" not in err
    assert not (pki / "platform.pem").exists() and not (pki / "platform.key.pem").exists()
    settings = PlatformSettings(data_dir=tmp_path / "p", database_url=None)
    try:
        create_app(settings)
    except FileNotFoundError as exc:
        assert "platform.pem" in str(exc)
    else:
        raise AssertionError("the server started without its signing key")
    assert not (pki / "platform.pem").exists()
    assert main(["platform", "init", "--dir", d]) == 0
    assert "issued from the existing CA: pki/platform.pem" in capsys.readouterr().out


def _security_block(marker: str) -> str:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"^ *```sh\n(.*?)^ *```", text, re.M | re.S) if marker in b]
    assert len(blocks) == 1, marker
    return "\n".join(line.strip() for line in blocks[0].splitlines())


def _bash(code: str, **env):
    import os
    import subprocess
    import sys
    from pathlib import Path

    path = str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]
    base = {k: v for k, v in os.environ.items() if not k.startswith("CEDX_")}
    return subprocess.Popen(["bash", "-e", "-c", code], env={**base, "PATH": path, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def test_docs_security_rotation_block_runs_as_written(tmp_path):
    srv = tmp_path / "srv"
    assert main(["platform", "init", "--dir", str(srv / "cedx")]) == 0
    before = load_pki(srv / "cedx" / "pki")
    proc = _bash(_security_block("cedx-retired").replace("/srv/", f"{srv}/"))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    after = load_pki(srv / "cedx" / "pki")
    assert after.ca == before.ca and after.platform_cert != before.platform_cert
    assert (srv / "cedx-retired" / "platform.key.pem").is_file()


def test_docs_security_address_change_block_runs_as_written(tmp_path):
    import os
    import signal

    import requests

    from cedx.runtime.serve import free_port

    srv = tmp_path / "srv"
    assert main(["platform", "init", "--dir", str(srv / "cedx")]) == 0
    port = free_port()
    code = _security_block("--successor-url").replace("/srv/", f"{srv}/").replace("--port 8000", f"--port {port}")
    proc = _bash(code.replace("\\\n", " "))
    try:
        for _ in range(300):
            try:
                r = requests.get(f"http://127.0.0.1:{port}/.well-known/cedx-configuration", timeout=5)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.1)
        payload = r.json()["payload"]
        assert payload["endpoints"]["token"] == "https://cedx.example.cn/oauth/token"
        assert payload["successor"]["baseUrl"] == "https://cedx2.example.cn"
        assert payload["successor"]["effectiveFrom"] == "2026-12-31T16:00:00.000000Z"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=30)


def test_a_postgresql_platform_as_the_operator_guide_sets_it_up(tmp_path, capsys, monkeypatch):
    """docs/guides/operator.md §1 on PostgreSQL: the database exists, CEDX_DATABASE_URL is given
    to every command; forgetting it is refused rather than answered from a new SQLite file."""
    import os

    import pytest

    from .conftest import _fresh_postgres

    base = os.environ.get("CEDX_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("CEDX_TEST_POSTGRES_URL not set")
    url = _fresh_postgres(base)
    d = str(tmp_path / "p")
    monkeypatch.setenv("CEDX_DATABASE_URL", url)
    assert main(["platform", "init", "--dir", d]) == 0
    assert main(["platform", "add-entity", "91320500MA1X2P3Q4R", "--dir", d]) == 0
    assert not (tmp_path / "p" / "platform.db").exists()
    monkeypatch.delenv("CEDX_DATABASE_URL")
    capsys.readouterr()
    assert main(["platform", "add-entity", "91350100M000100Y43", "--dir", d]) == 2
    assert "CEDX_DATABASE_URL" in capsys.readouterr().err
    assert not (tmp_path / "p" / "platform.db").exists()
    monkeypatch.setenv("CEDX_DATABASE_URL", url.replace("postgresql+psycopg://", "postgresql://"))
    assert main(["platform", "add-entity", "91350100M000100Y43", "--dir", d]) == 0


def test_the_crl_lists_only_what_the_platform_ca_issued(tmp_path, capsys):
    # A certificate from an extra trust anchor (pki/trust, docs/security.md) can be registered and
    # revoked; the platform CA's CRL listed its serial number as if it had issued it.
    from cedx.platform.admin import Admin
    from cedx.trust import generate_private_key

    d = tmp_path / "p"
    assert main(["platform", "init", "--dir", str(d)]) == 0
    other_key = generate_private_key()
    other_ca = tx.create_ca(other_key, {"common_name": "another CA"})
    (d / "pki" / "trust" / "other.pem").write_bytes(tx.to_pem(other_ca))
    admin = Admin(PlatformSettings(data_dir=d, database_url=None))
    admin.add_entity("91320500MA1X2P3Q4R")
    ours, theirs = generate_private_key(), generate_private_key()
    mine = admin.issue_certificate("91320500MA1X2P3Q4R", tx.create_csr(ours, {"common_name": "91320500MA1X2P3Q4R"}))
    foreign = tx.issue_certificate(tx.create_csr(theirs, {"common_name": "91320500MA1X2P3Q4R"}), other_ca, other_key)
    admin.add_certificate("91320500MA1X2P3Q4R", foreign)
    for cert in (mine, foreign):
        admin.revoke_certificate(tx.certificate_public_key(cert).fingerprint())
    crl = asn1crl.CertificateList.load(create_app(PlatformSettings(data_dir=d, database_url=None)).state.platform.crl())
    listed = {int(e["user_certificate"].native) for e in crl["tbs_cert_list"]["revoked_certificates"]}
    assert listed == {int(tx.load_certificate(mine).serial_number)}


def test_a_certificate_speaks_for_the_entity_its_cn_names_only(tmp_path):
    """add-certificate took a credit code anywhere in the subject: CN = entity B with
    serialNumber = entity A registered for A, so A's documents carried a certificate that by the
    trust profile's rule (CN = credit code) speaks for B."""
    from cedx import trust
    from cedx.platform.admin import Admin, AdminError, names_entity

    a, b = "91320500MA1X2P3Q4R", "91350100M000100Y43"
    admin = Admin(PlatformSettings(data_dir=tmp_path, database_url=None))
    admin.add_entity(a)
    pki = load_pki(admin.settings.pki_dir)

    def certificate(subject):
        key = trust.generate_private_key()
        return tx.to_pem(tx.issue_certificate(tx.create_csr(key, subject), pki.ca, pki.ca_key, profile="signing"))

    try:
        admin.add_certificate(a, certificate({"common_name": b, "serial_number": a}))
    except AdminError as exc:
        assert "CN" in str(exc) and a in str(exc)
    else:
        raise AssertionError("a certificate whose CN names another entity was registered")
    assert admin.add_certificate(a, certificate({"common_name": a, "serial_number": a}))
    assert not names_entity({"common_name": a, "organization_identifier": f"NTRCN-{b}"}, a)
    assert names_entity({"common_name": a, "organization_identifier": f"NTRCN-{a}"}, a)


def _backend_url(backend):
    import os

    import pytest

    from .conftest import _fresh_postgres

    if backend == "sqlite":
        return None
    base = os.environ.get("CEDX_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("CEDX_TEST_POSTGRES_URL not set")
    return _fresh_postgres(base)


def _drop_clients_created_at(d, url):
    """The clients table as platforms before list-clients made it (no created_at column)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url or f"sqlite:///{d}/platform.db")
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE clients DROP COLUMN created_at"))
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_listings_on_each_database_and_on_one_made_before_clients_had_a_creation_time(tmp_path, capsys, monkeypatch,
                                                                                      backend):
    """list-clients and list-entities on SQLite and PostgreSQL; a database from before clients
    recorded their creation gets the column when the platform opens it (its clients: '-')."""
    url = _backend_url(backend)
    if url:
        monkeypatch.setenv("CEDX_DATABASE_URL", url)
    else:
        monkeypatch.delenv("CEDX_DATABASE_URL", raising=False)
    d = str(tmp_path / "p")
    code, other = "91320500MA1X2P3Q4R", "91350100M000100Y43"
    for argv in (["init"], ["add-entity", code], ["add-entity", other], ["add-client", code, "--client-id", "old"]):
        assert main(["platform", *argv, "--dir", d]) == 0
    _drop_clients_created_at(d, url)
    capsys.readouterr()
    assert main(["platform", "add-client", other, "--client-id", "new", "--dir", d]) == 0
    secret = capsys.readouterr().out.split("stored hashed): ")[1].strip()
    assert main(["platform", "issue-token", "new", "--dir", d]) == 0
    assert main(["platform", "disable-client", "old", "--dir", d]) == 0
    capsys.readouterr()
    assert main(["platform", "list-clients", "--dir", d]) == 0
    out = capsys.readouterr().out
    rows = [line.split("\t") for line in out.splitlines()[1:]]
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [("old", code, "disabled", "0"), ("new", other, "enabled", "1")]
    assert rows[0][3] == "-" and rows[1][3].startswith("20") and rows[1][3].endswith("Z")
    assert secret not in out
    assert main(["platform", "list-entities", "--dir", d]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()[1:]]
    assert [(r[0], r[1], r[3:]) for r in rows] == [(code, "-", ["0", "0", "0", "1"]), (other, "-", ["0", "0", "0", "1"])]
