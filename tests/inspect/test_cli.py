"""`cedx inspect` as an inspection body runs it: progress, files, exit status, no secrets."""

import json
import os
import subprocess
import sys

from cedx.platform.app import create_app
from cedx.trust import x509 as tx

from ..loopback import serve
from ..spec.conftest import REPO
from .conftest import Reference
from .test_faults import Rewrite, _json_path


def _run(tmp_path, url, ref, items, out):
    e = ref.entity
    (tmp_path / "k.pem").write_bytes(e.key.to_pem())
    (tmp_path / "c.pem").write_bytes(tx.to_pem(e.cert))
    (tmp_path / "ca.pem").write_bytes(tx.to_pem(ref.admin.pki.ca))
    args = [sys.executable, "-m", "cedx", "inspect", "--target", url, "--interface", "reporting", "--client-id", f"{e.credit_code}-erp",
            "--client-secret-env", "INSPECT_SECRET", "--key", str(tmp_path / "k.pem"), "--cert", str(tmp_path / "c.pem"),
            "--credit-code", e.credit_code, "--ca", str(tmp_path / "ca.pem"), "--out", str(out)]
    for item in items:
        args += ["--item", str(item)]
    return subprocess.run(args, capture_output=True, text=True, cwd=REPO, env=dict(os.environ, INSPECT_SECRET=e.secret), timeout=300)


def test_cli_pass_and_fail(tmp_path):
    ref = Reference(tmp_path / "p")
    with serve(create_app(ref.settings)) as url:
        ok = _run(tmp_path, url, ref, [7, 8], tmp_path / "ok")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "[1/" in ok.stderr and "PASS" in ok.stdout
    report = json.loads((tmp_path / "ok" / "report.json").read_text(encoding="utf-8"))
    assert [i["item"] for i in report["items"]] == [7, 8] and report["result"] == "pass"
    text = (tmp_path / "ok" / "report.json").read_text() + (tmp_path / "ok" / "report.html").read_text()
    assert ref.entity.secret not in text

    def unsigned(scope, status, headers, body):
        doc = json.loads(body)
        doc.pop("signature")
        return status, headers, json.dumps(doc).encode()

    ref2 = Reference(tmp_path / "p2")
    with serve(Rewrite(create_app(ref2.settings), _json_path("/.well-known/"), unsigned)) as url:
        bad = _run(tmp_path, url, ref2, [8], tmp_path / "bad")
    assert bad.returncode == 1 and "FAIL" in bad.stdout
    usage = subprocess.run([sys.executable, "-m", "cedx", "inspect", "--target", "http://127.0.0.1:9", "--interface", "reporting",
                            "--ca", str(tmp_path / "ca.pem")], capture_output=True, text=True, cwd=REPO)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
