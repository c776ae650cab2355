"""Acquisition-interface figure (issue 14, target 2): memory and time to pull one month of
minute data for N metering points from the reference source (its own process), every batch's
signature and the hash chain verified on the client.

    .venv/bin/python bench/pull.py [--points 50] [--days 31]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import common  # noqa: F401  (puts the repository on sys.path)
import requests

from cedx import trust
from cedx.instants import CST
from cedx.trust import x509 as tx


def bench_pull(points: int, days: int) -> None:
    """The source in its own process (`cedx serve acquisition`, N synthetic points); the client
    pulls every minute batch of each point, checks the hash chain and, per batch, the signature."""
    from cedx.generated.client import AcquisitionClient

    month = dt.datetime(2026, 10, 1, tzinfo=CST)
    with tempfile.TemporaryDirectory() as tmp, socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        env = dict(os.environ, CEDX_SOURCE_SYNTHETIC_POINTS=str(points))
        proc = subprocess.Popen([sys.executable, "-m", "cedx", "serve", "acquisition", "--site", "power", "--dir", tmp,
                                 "--token", "t" * 16, "--commissioned", "2026-10", "--port", str(port), "--log-level", "warning"], env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if requests.get(f"{url}/health", timeout=1).status_code in (200, 404):
                        break
                except requests.ConnectionError:
                    time.sleep(0.1)
            ca = tx.load_certificate((Path(tmp) / "pki" / "ca.pem").read_bytes()).dump()
            client = AcquisitionClient(url, token="t" * 16, trust_anchors=[ca])
            end = month + dt.timedelta(days=days)
            tracemalloc.start()
            start = time.perf_counter()
            values = 0
            resolve = tx.ChainResolver([ca])
            for i in range(points):
                batches = []
                for signed in client.iter_measurement_batches(f"SYN-{i:03d}", granularity="minute", from_=month.isoformat(),
                                                              to=end.isoformat(), limit=96):
                    record = signed.model_dump(mode="json", by_alias=True, exclude_none=True)
                    trust.verify_document(record, resolve)
                    batches.append(record["payload"])
                trust.verify_chain(batches)
                values += sum(len(b["values"]) for b in batches)
            elapsed = time.perf_counter() - start
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"pull {days} days of minute data for {points} points: {values:,} values in {elapsed:.1f} s "
          f"({values / elapsed:,.0f} values/s; every batch's signature and chain verified); client peak traced memory "
          f"{peak / 2**20:.1f} MiB, client max RSS {rss:.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=50)
    ap.add_argument("--days", type=int, default=31)
    args = ap.parse_args()
    bench_pull(args.points, args.days)


if __name__ == "__main__":
    main()
