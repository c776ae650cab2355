"""The cedx command: keygen/sign/verify and the PKI commands, as a user runs them."""

import subprocess
import sys

import pytest


def cedx(*args, cwd, env=None):
    return subprocess.run(
        [sys.executable, "-m", "cedx.cli", *args], cwd=cwd, capture_output=True, text=True, env=env
    )


def test_keygen_sign_verify(tmp_path, openssl):
    (tmp_path / "f.txt").write_text("报告 report")
    assert cedx("keygen", "-o", "k.pem", "--pub", "p.pem", cwd=tmp_path).returncode == 0
    assert oct((tmp_path / "k.pem").stat().st_mode & 0o777) == "0o600"
    assert cedx("sign", "-k", "k.pem", "-o", "s.der", "f.txt", cwd=tmp_path).returncode == 0
    ok = cedx("verify", "-p", "p.pem", "-s", "s.der", "f.txt", cwd=tmp_path)
    assert ok.returncode == 0 and "Verified OK" in ok.stdout
    # Interoperable: OpenSSL verifies the file signature made by the CLI.
    openssl.dir = tmp_path
    openssl.run("dgst", "-sm3", "-verify", "p.pem", "-sigopt", "distid:1234567812345678", "-signature", "s.der", "f.txt")
    (tmp_path / "f.txt").write_text("报告 report!")
    bad = cedx("verify", "-p", "p.pem", "-s", "s.der", "f.txt", cwd=tmp_path)
    assert bad.returncode == 1 and "failure" in bad.stdout


def test_usage_and_io_errors_are_one_line(tmp_path):
    for args in (("verify",), ("verify", "-p", "missing.pem", "-s", "x", "f"), ("nonsense",)):
        r = cedx(*args, cwd=tmp_path)
        assert r.returncode == 2
        assert "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    (tmp_path / "garbage.pem").write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    (tmp_path / "f").write_text("x")
    (tmp_path / "s").write_bytes(b"x")
    r = cedx("verify", "-p", "garbage.pem", "-s", "s", "f", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_encrypted_key_via_environment(tmp_path):
    import os

    env = dict(os.environ, KEYPASS="s3cret")
    assert cedx("keygen", "-o", "k.pem", "--password-env", "KEYPASS", cwd=tmp_path, env=env).returncode == 0
    assert b"ENCRYPTED" in (tmp_path / "k.pem").read_bytes()
    (tmp_path / "f").write_text("x")
    r = cedx("sign", "-k", "k.pem", "-o", "s", "f", cwd=tmp_path)
    assert r.returncode == 2 and "password" in r.stderr
    assert cedx("sign", "-k", "k.pem", "-o", "s", "f", "--password-env", "KEYPASS", cwd=tmp_path, env=env).returncode == 0


@pytest.mark.openssl
def test_pki_and_timestamp_commands(tmp_path, openssl):
    run = lambda *a: cedx(*a, cwd=tmp_path)  # noqa: E731
    assert run("keygen", "-o", "ca.key").returncode == 0
    assert run("ca", "init", "-k", "ca.key", "--subject", "C=CN,O=测试CA,CN=Root", "-o", "ca.pem").returncode == 0
    assert run("keygen", "-o", "e.key").returncode == 0
    assert run("csr", "-k", "e.key", "--subject", "CN=91350100M000100Y43", "-o", "e.csr").returncode == 0
    assert run("cert", "issue", "--ca", "ca.pem", "--ca-key", "ca.key", "--csr", "e.csr", "-o", "e.pem").returncode == 0
    assert run("cert", "verify", "e.pem", "--ca", "ca.pem").returncode == 0
    openssl.dir = tmp_path
    openssl.run("verify", "-vfyopt", "distid:1234567812345678", "-CAfile", "ca.pem", "e.pem")
    assert run("cert", "verify", "e.pem", "--ca", "ca.pem", "--purpose", "tsa").returncode == 1
    assert run("ca", "crl", "--ca", "ca.pem", "--ca-key", "ca.key", "--revoke", "e.pem", "-o", "crl.pem").returncode == 0
    r = run("cert", "verify", "e.pem", "--ca", "ca.pem", "--crl", "crl.pem")
    assert r.returncode == 1 and "revoked" in r.stdout
    assert run("keygen", "-o", "t.key").returncode == 0
    assert run("csr", "-k", "t.key", "--subject", "CN=TSA", "-o", "t.csr").returncode == 0
    assert run("cert", "issue", "--ca", "ca.pem", "--ca-key", "ca.key", "--csr", "t.csr", "--profile", "tsa", "-o", "t.pem").returncode == 0
    (tmp_path / "data.bin").write_bytes(b"receipt")
    assert run("ts", "query", "data.bin", "-o", "q.tsq").returncode == 0
    assert run("ts", "reply", "q.tsq", "--tsa-key", "t.key", "--tsa-cert", "t.pem", "-o", "r.tsr").returncode == 0
    assert "Status: Granted." in openssl.run("ts", "-reply", "-in", "r.tsr", "-text").stdout.decode()
    assert run("ts", "verify", "data.bin", "--in", "r.tsr", "--ca", "ca.pem").returncode == 0
    (tmp_path / "data.bin").write_bytes(b"receipt, altered")
    assert run("ts", "verify", "data.bin", "--in", "r.tsr", "--ca", "ca.pem").returncode == 1
