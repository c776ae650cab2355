"""`cedx inspect` as an inspection body runs it: progress, files, exit status, no secrets;
inconclusive (exit 2) when the target is unreachable or refuses the credentials."""

import json
import os
import subprocess
import sys

from cedx.inspect.local import ReferencePlatform
from cedx.inspect.runner import run
from cedx.runtime.serve import free_port
from cedx.trust import x509 as tx

from ..inspect.test_faults import Rewrite, _json_path
from ..spec.conftest import REPO


def _files(tmp_path, target):
    (tmp_path / "k.pem").write_bytes(target.key.to_pem())
    (tmp_path / "c.pem").write_bytes(tx.to_pem(target.certificate))
    (tmp_path / "ca.pem").write_bytes(tx.to_pem(target.trust_anchors[0]))


def _run(tmp_path, url, target, items, out, secret=None, extra=(), env=None):
    args = [sys.executable, "-m", "cedx", "inspect", "--target", url, "--interface", "reporting", "--client-id", target.client_id,
            "--client-secret-env", "INSPECT_SECRET", "--key", str(tmp_path / "k.pem"), "--cert", str(tmp_path / "c.pem"),
            "--credit-code", target.credit_code, "--ca", str(tmp_path / "ca.pem"), "--out", str(out), *extra]
    for item in items:
        args += ["--item", str(item)]
    return subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=300,
                          env=dict(os.environ, INSPECT_SECRET=secret or target.client_secret, **(env or {})))


def test_cli_pass_and_fail(tmp_path):
    with ReferencePlatform(tmp_path / "p") as target:
        _files(tmp_path, target)
        (tmp_path / "rk.pem").write_bytes(target.revoked.key.to_pem())
        (tmp_path / "rc.pem").write_bytes(tx.to_pem(target.revoked.certificate))
        extra = ["--expired-token-env", "EXPIRED", "--other-client-id", target.other.client_id,
                 "--other-client-secret-env", "OTHER", "--other-credit-code", target.other.credit_code,
                 "--revoked-key", str(tmp_path / "rk.pem"), "--revoked-cert", str(tmp_path / "rc.pem"),
                 "--expect-successor", target.expect_successor]
        ok = _run(tmp_path, target.url, target, [7, 8, 9], tmp_path / "ok", extra=extra,
                  env={"EXPIRED": target.expired_token, "OTHER": target.other.client_secret})
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "[1/" in ok.stderr and "PASS" in ok.stdout
    report = json.loads((tmp_path / "ok" / "report.json").read_text(encoding="utf-8"))
    assert [i["item"] for i in report["items"]] == [7, 8, 9] and report["result"] == "pass"
    verdicts = {c["case_id"]: c["verdict"] for i in report["items"] for c in i["cases"]}
    assert [verdicts[k] for k in ("7.5", "7.6", "8.4", "9.5", "9.6")] == ["pass"] * 4 + ["not-applicable"]
    text = (tmp_path / "ok" / "report.json").read_text() + (tmp_path / "ok" / "report.html").read_text()
    for secret in (target.client_secret, target.expired_token, target.other.client_secret):
        assert secret not in text

    def unsigned(scope, status, headers, body):
        doc = json.loads(body)
        doc.pop("signature")
        return status, headers, json.dumps(doc).encode()

    with ReferencePlatform(tmp_path / "p2", wrap=lambda app: Rewrite(app, _json_path("/.well-known/"), unsigned),
                           successor=False, provision=False) as target:
        _files(tmp_path, target)
        bad = _run(tmp_path, target.url, target, [8], tmp_path / "bad")
    assert bad.returncode == 1 and "FAIL" in bad.stdout
    usage = subprocess.run([sys.executable, "-m", "cedx", "inspect", "--target", "http://127.0.0.1:9", "--interface", "reporting",
                            "--ca", str(tmp_path / "ca.pem")], capture_output=True, text=True, cwd=REPO)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
    missing = subprocess.run([sys.executable, "-m", "cedx", "inspect", "--target", "http://127.0.0.1:9", "--interface",
                              "acquisition", "--ca", str(tmp_path / "no-such-ca.pem")], capture_output=True, text=True, cwd=REPO)
    assert missing.returncode == 2 and "no-such-ca.pem" in missing.stderr and "Traceback" not in missing.stderr


def test_cli_inconclusive_when_unreachable_or_refused(tmp_path):
    with ReferencePlatform(tmp_path / "p", successor=False, provision=False) as target:
        _files(tmp_path, target)
        refused = _run(tmp_path, target.url, target, [], tmp_path / "refused", secret="not-the-secret")
        target.other.client_secret = "wrong"
        other = run(target, [7])
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "INCONCLUSIVE (credentials-refused)" in refused.stdout and "inspector" in refused.stdout
    assert "Traceback" not in refused.stderr
    report = json.loads((tmp_path / "refused" / "report.json").read_text(encoding="utf-8"))
    assert report["result"] == "inconclusive" and report["inconclusive"]["cause"] == "credentials-refused"
    assert all(i["result"] == "inconclusive" for i in report["items"]) and len(report["items"]) == 9
    assert "无法判定 / inconclusive" in (tmp_path / "refused" / "report.html").read_text(encoding="utf-8")
    assert other["result"] == "inconclusive" and "second entity" in other["inconclusive"]["detail"]

    unreachable = _run(tmp_path, f"http://127.0.0.1:{free_port()}", target, [], tmp_path / "down")
    assert unreachable.returncode == 2 and "INCONCLUSIVE (unreachable)" in unreachable.stdout
    assert "Traceback" not in unreachable.stderr


def test_source_inconclusive_when_token_refused(source):
    from cedx.inspect.target import Target

    report = run(Target(url=source.url, interface="acquisition", trust_anchors=source.trust_anchors, token_value="wrong"))
    assert report["result"] == "inconclusive" and report["inconclusive"]["cause"] == "credentials-refused"
