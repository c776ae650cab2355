"""Every code block of README.md (and of the first-hour guides) runs as written, in order, in an
empty directory, against the reference platform it starts itself.

What the test adds is what a reader's terminal does anyway: one shell session (exported
variables carry over from block to block), the package's ``cedx`` on PATH, free ports in place of
the documented 8000/8100 (several test runs share this machine), and waiting for a server started
in the background to accept connections. Blocks that only run ``make`` targets are covered by
their own tests (make test, tests/test_demo.py) and skipped.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cedx.runtime.serve import free_port

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
PORTS = ("8000", "8100")


def blocks(path: Path) -> list[tuple[str, str]]:
    out = []
    for lang, code in FENCE.findall(path.read_text(encoding="utf-8")):
        lines = [ln for ln in code.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        if lang == "sh" and lines and all(ln.startswith("make ") for ln in lines):
            continue
        if lang in ("sh", "python"):
            out.append((lang, code))
    return out


class Session:
    """One reader's terminal in an empty directory."""

    def __init__(self, cwd: Path):
        self.cwd = cwd
        self.ports = {p: str(free_port()) for p in PORTS}
        bindir = str(Path(sys.executable).parent)
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("CEDX_HOME", "CEDX_PLATFORM_DIR", "CEDX_DATABASE_URL", "CEDX_PUBLIC_URL")}
        self.env.update(PATH=bindir + os.pathsep + os.environ.get("PATH", ""), CEDX_PROGRESS="0")
        self.groups: list[int] = []

    def adapt(self, code: str) -> str:
        for documented, actual in self.ports.items():
            code = re.sub(rf"\b{documented}\b", actual, code)
        return code

    def run(self, lang: str, code: str, n: int) -> subprocess.CompletedProcess:
        code = self.adapt(code)
        if lang == "python":
            script = self.cwd / f"block{n}.py"
            script.write_text(code, encoding="utf-8")
            return subprocess.run([sys.executable, script.name], cwd=self.cwd, env=self.env, capture_output=True,
                                  text=True, timeout=300)
        envfile = self.cwd / ".env-after"
        proc = subprocess.Popen(["bash", "-e", "-o", "pipefail", "-c", f"{code}\nenv -0 > {envfile}"], cwd=self.cwd,
                                env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        self.groups.append(proc.pid)
        out, err = proc.communicate(timeout=300)
        if proc.returncode == 0:
            pairs = envfile.read_bytes().split(b"\0")
            self.env = dict(p.decode().split("=", 1) for p in pairs if b"=" in p)
        if "&" in code:
            self.wait_for_servers(code)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def wait_for_servers(self, code: str) -> None:
        for port in self.ports.values():
            if port not in code:
                continue
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", int(port))) == 0:
                        break
                time.sleep(0.1)
            else:
                logs = "\n".join(p.read_text(errors="replace")[-2000:] for p in self.cwd.glob("*.log"))
                raise AssertionError(f"nothing listens on port {port} after the block\n{logs}")

    def close(self) -> None:
        for pgid in self.groups:
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def run_document(path: Path, tmp_path: Path) -> list[tuple[str, subprocess.CompletedProcess]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    session = Session(tmp_path)
    results = []
    try:
        for n, (lang, code) in enumerate(blocks(path)):
            result = session.run(lang, code, n)
            assert result.returncode == 0, (
                f"{path.name} block {n} ({lang}) failed with {result.returncode}:\n{code}\n"
                f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}")
            assert "Traceback" not in result.stderr, result.stderr
            # nor a warning a reader would have to puzzle over (the portable-backend hint aside)
            assert {w for w in re.findall(r"(\w+Warning): ", result.stderr)} <= {"PerformanceWarning"}, result.stderr
            results.append((code, result))
    finally:
        session.close()
    return results


def test_readme_blocks_run_as_written(tmp_path):
    results = run_document(ROOT / "README.md", tmp_path)
    out = "\n".join(r.stdout for _, r in results)
    assert "accepted:" in out
    assert "not sent: ['R-POW-001'] ['$.power.units[0]']" in out
    assert "refused: 409 SUBMISSION_CONFLICT" in out
    assert "delivered: 1" in out
    assert "2026-10 superseded" in out     # the async block lists the corrected submission
    assert (tmp_path / "report" / "report.json").is_file()


def test_first_hour_guides_run_as_written(tmp_path):
    """The three guides at once (each in its own directory, with its own platform and ports):
    their time is mostly waiting on subprocesses."""
    guides = ["integrator", "operator", "inspector"]
    with ThreadPoolExecutor(len(guides)) as pool:
        runs = {g: pool.submit(run_document, ROOT / "docs" / "guides" / f"{g}.md", tmp_path / g) for g in guides}
    outputs = {g: "\n".join(r.stdout for _, r in run.result()) for g, run in runs.items()}
    assert "not sent: $.power.units[0] R-POW-004" in outputs["integrator"]
    assert re.search(r"receipt [0-9a-f-]{36} verified, time-stamped 20", outputs["integrator"])
    assert "delivered {'delivered': 1}" in outputs["integrator"]
    assert "verified" in outputs["operator"]
    assert "client ID\tentity\tstate\tcreated\tlive tokens\tscopes\nerp\t91320500MA1X2P3Q4R\tenabled\t" in outputs["operator"]
    assert (tmp_path / "inspector" / "inspection" / "report.json").is_file()
    # §4's material: the certificate `cedx platform issue-certificate --days 0` made is refused as expired
    full = json.loads((tmp_path / "inspector" / "inspection-full" / "report.json").read_text(encoding="utf-8"))
    verdicts = {c["case_id"]: c["verdict"] for item in full["items"] for c in item["cases"]}
    assert verdicts["9.6"] == "pass"
