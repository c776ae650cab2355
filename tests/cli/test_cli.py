"""The command line as a newcomer meets it: --version, help on every option, one-line errors
(never a traceback, never "cedx: cedx:"), no silent platform directory, CSR subject checks."""

import subprocess
import sys

import pytest

import cedx
from cedx.cli import build_parser, main, walk


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"cedx {cedx.__version__}"


def test_every_option_and_argument_has_help():
    missing = [f"{p.prog} {a.option_strings or a.dest}" for p, a in walk(build_parser()) if not a.help]
    assert missing == []


@pytest.mark.parametrize("argv, expected", [
    (["serve", "platform", "--dir", ".", "--port", "99999"], "99999 is not a port number"),
    (["serve", "acquisition", "--port", "http"], "'http' is not a port number"),
    (["verify", "-p", "missing.pem", "-s", "x.sig", "f.json"], "missing.pem: No such file or directory"),
    (["sign"], "the following arguments are required"),
    (["nonsense"], "invalid choice"),
])
def test_a_users_mistake_is_one_line_without_traceback(capsys, tmp_path, monkeypatch, argv, expected):
    monkeypatch.chdir(tmp_path)
    status, _, err = run(capsys, *argv)
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("cedx: error: ") and "cedx: cedx" not in err
    assert expected in err and "Traceback" not in err


def test_a_missing_extra_names_the_pip_command(tmp_path):
    code = ("import sys; sys.modules['uvicorn'] = None; from cedx.cli import main; "
            f"sys.exit(main(['serve', 'platform', '--dir', {str(tmp_path)!r}]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip() == "cedx: error: this command needs uvicorn, part of an optional extra: pip install 'cedx[server]'"


def test_platform_commands_never_create_a_directory_silently(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CEDX_HOME", raising=False)
    monkeypatch.delenv("CEDX_PLATFORM_DIR", raising=False)
    status, _, err = run(capsys, "platform", "add-entity", "91320500MA1X2P3Q4R")
    assert status == 2 and "--dir" in err and "CEDX_HOME" in err
    status, _, err = run(capsys, "platform", "add-entity", "91320500MA1X2P3Q4R", "--dir", "elsewhere")
    assert status == 2 and "cedx platform init --dir elsewhere" in err
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("CEDX_HOME", str(tmp_path / "home"))
    assert run(capsys, "platform", "init")[0] == 0
    assert run(capsys, "platform", "add-entity", "91320500MA1X2P3Q4R")[0] == 0
    assert (tmp_path / "home" / "pki" / "ca.pem").is_file()


def test_issue_certificate_checks_the_csr_subject(capsys, tmp_path):
    d, code = str(tmp_path / "p"), "91320500MA1X2P3Q4R"
    assert run(capsys, "platform", "init", "--dir", d)[0] == 0
    assert run(capsys, "platform", "add-entity", code, "--dir", d)[0] == 0
    key = str(tmp_path / "k.pem")
    assert run(capsys, "keygen", "-o", key)[0] == 0
    for subject, ok in ((f"CN={code}", True), ("CN=91530100MA6K7L8M9M", False), ("O=Example", False)):
        csr = str(tmp_path / "r.pem")
        assert run(capsys, "csr", "-k", key, "--subject", subject, "-o", csr)[0] == 0
        status, _, err = run(capsys, "platform", "issue-certificate", code, "--csr", csr, "-o",
                             str(tmp_path / "c.pem"), "--dir", d)
        assert (status == 0) is ok, err
        if not ok:
            assert f"does not name entity {code}" in err and f'--subject "CN={code}"' in err
    assert (tmp_path / "c.pem").is_file()


def test_the_portable_backend_hint_is_one_line_not_a_warning_with_a_source_line(tmp_path):
    """`pip install 'cedx[server,async]'` (the README's) has no tongsuopy: every command printed
    the library's file path and source line with the hint."""
    probe = ("import sys; sys.modules['tongsuopy'] = None\nfrom cedx.cli import main\n"
             "sys.exit(main(['keygen', '-o', 'k.pem']))")
    env = {k: v for k, v in __import__("os").environ.items() if k != "CEDX_SM2_BACKEND"}
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "cedx: warning: using the portable (pure Python, slower) SM2 backend: native SM2 backend needs "
        "tongsuopy (pip install 'cedx[fast]'); set CEDX_SM2_BACKEND=portable to silence this"]
