"""Platform benchmark (printed figures, not a timed test).

1. Signed monthly reports accepted per second end to end on loopback (platform with SQLite, one
   uvicorn worker; client signs, platform verifies signature and certificate chain, runs every
   quality rule, stores, signs and time-stamps the receipt), beside a trivial endpoint of the same
   server in the same run (the framework floor), and their ratio.
(The acquisition pull has its own benchmark: bench/pull.py.)

    .venv/bin/python bench/reporting.py [--reports 200]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cedx import trust  # noqa: E402
from cedx.platform.admin import Admin  # noqa: E402
from cedx.platform.settings import PlatformSettings  # noqa: E402
from tests.platform.conftest import Entity, Env  # noqa: E402

CST = dt.timezone(dt.timedelta(hours=8))


@contextlib.contextmanager
def platform_process(data_dir: Path):
    """`cedx serve platform` in its own process (one uvicorn worker), as deployed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, CEDX_RATE_LIMIT=str(10**9))
    proc = subprocess.Popen([sys.executable, "-m", "cedx", "serve", "platform", "--dir", str(data_dir), "--port", str(port),
                             "--log-level", "warning"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if requests.get(f"{url}/health", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def bench_reports(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = PlatformSettings(data_dir=Path(tmp), database_url=None, rate_limit_per_minute=10**9)
        admin = Admin(settings)
        entity = Entity(admin, "91320500MA1X2P3Q4R", "monthly-report-power.json")
        with platform_process(Path(tmp)) as url:
            env = Env.__new__(Env)
            env.url, env.admin, env.ca = url, admin, admin.pki.ca
            client = env.client(entity)
            client.trust_anchors = []  # measure the platform, not receipt verification on the client
            bodies = []
            for i in range(n):
                r = entity.report()
                r.period, r.report_id = f"{1800 + i // 7}-{('01', '03', '05', '07', '08', '10', '12')[i % 7]}", uuid.uuid4()
                bodies.append(trust.sign_document(r, entity.key, certificate_chain=[entity.cert], envelope_fields={"specVersion": "1.0"}))
            client.submit_monthly_report(bodies.pop())  # warm-up
            start = time.perf_counter()
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(client.submit_monthly_report, bodies))
            reports = len(bodies) / (time.perf_counter() - start)
            session = requests.Session()
            start = time.perf_counter()

            def floor(_):
                session.get(f"{url}/health").raise_for_status()

            with ThreadPoolExecutor(4) as pool:
                list(pool.map(floor, range(n * 5)))
            trivial = n * 5 / (time.perf_counter() - start)
    print(f"signed monthly reports accepted: {reports:8.1f}/s   trivial endpoint: {trivial:8.1f}/s   "
          f"ratio {reports / trivial:.3f} (platform process with SQLite, one uvicorn worker; 4 client threads; {n - 1} reports)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reports", type=int, default=200)
    args = ap.parse_args()
    bench_reports(args.reports)


if __name__ == "__main__":
    main()
