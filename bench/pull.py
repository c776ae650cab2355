"""Pull of minute data from the acquisition source, every batch verified (issue 14, target 2).

The source runs in its own process (`cedx serve acquisition`, synthetic points); sealing the
simulated data into its store happens once, before timing (printed separately). The client
pulls each point's minute batches over HTTP with cedx.acquisition.pull (pages streamed, the
next page prefetched while the current one is verified: signature to the trust anchor, SM3
chain, contiguity). Printed figures, all measured in this run:

* values/s of the full pull, against the target (75,000 values/s: a month x 50 points in 30 s)
  and against the format limit: the same verification of the same bytes already in memory
  (JSON parse + one-pass canonical form + SM3 + SM2 verify), i.e. what no transport can beat;
* scaling: cost per value for 10 / 50 / 200 points (3 days) and 1 / 7 / 30 days (10 points);
* memory: peak traced allocation of the client for 21 days and 31 days of one point;
* the same pull with the source's store in PostgreSQL (when a server URL is given).

    python bench/pull.py              # the full set (a few minutes: sealing ~3 M values first)
    python bench/pull.py --quick      # 10 points, 7 days
    CEDX_TEST_POSTGRES_URL=postgresql+psycopg://... python bench/pull.py   # also a PostgreSQL store
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import common  # noqa: F401  (puts the repository on sys.path)
import requests
from common import figure, postgres_url

from cedx.acquisition.batches import BatchVerifier
from cedx.acquisition.pull import pull_points
from cedx.generated.client import AcquisitionClient
from cedx.runtime.serve import free_port
from cedx.trust import x509 as tx

CST = dt.timezone(dt.timedelta(hours=8))
MONTH = dt.datetime(2026, 10, 1, tzinfo=CST)
TOKEN = "bench-token-0123456789"
TARGET = 75_000


class SourceProcess:
    def __init__(self, points: int, days: int, database_url: str | None = None):
        self.points, self.days, self.database_url = points, days, database_url

    def __enter__(self):
        self.tmp = tempfile.TemporaryDirectory()
        port = free_port()
        env = dict(os.environ, CEDX_SOURCE_SYNTHETIC_POINTS=str(self.points))
        self.proc = subprocess.Popen([sys.executable, "-m", "cedx", "serve", "acquisition", "--site", "power",
                                      "--dir", self.tmp.name, "--token", TOKEN, "--commissioned", "2026-10",
                                      "--port", str(port), "--log-level", "warning", "--rate-limit", str(10**9)]
                                     + (["--database-url", self.database_url] if self.database_url else []), env=env)
        self.url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                requests.get(f"{self.url}/.well-known/cedx-configuration", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        self.ca = tx.load_certificate((Path(self.tmp.name) / "pki" / "ca.pem").read_bytes()).dump()
        start = time.perf_counter()   # the first request makes the simulation write and seal everything
        r = requests.get(f"{self.url}/v1/acquisition/points/SYN-000/batches", headers={"Authorization": f"Bearer {TOKEN}"},
                         params={"granularity": "minute", "from": MONTH.isoformat(), "limit": 1,
                                 "to": (MONTH + dt.timedelta(days=self.days)).isoformat()}, timeout=3600)
        r.raise_for_status()
        sealed = (self.points + 1) * self.days * 1440  # + the template point
        elapsed = time.perf_counter() - start
        where = "PostgreSQL" if self.database_url else "SQLite"
        print(f"  (setup: the source sealed {sealed:,} minute values + hourly/daily series into {where} in {elapsed:.1f} s,"
              f" {sealed / elapsed:,.0f} values/s; not part of the pull figures)")
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self.tmp.cleanup()

    def client(self) -> AcquisitionClient:
        return AcquisitionClient(self.url, token=TOKEN)


def pull(src: SourceProcess, points: int, days: int, limit: int = 31) -> tuple[int, float]:
    client = src.client()
    end = MONTH + dt.timedelta(days=days)
    start = time.perf_counter()
    values = sum(b.payload["count"] for _, b in pull_points(
        client, [f"SYN-{i:03d}" for i in range(points)], granularity="minute", from_=MONTH.isoformat(),
        to=end.isoformat(), trust_anchors=[src.ca], limit=limit))
    return values, time.perf_counter() - start


def format_limit(src: SourceProcess, points: int, days: int) -> float:
    """Values/s of the verification alone, on page bytes already fetched (no transport)."""
    client = src.client()
    pages = []
    for i in range(points):
        cursor = None
        while True:
            params = {"granularity": "minute", "from": MONTH.isoformat(), "limit": 31,
                      "to": (MONTH + dt.timedelta(days=days)).isoformat(), **({"cursor": cursor} if cursor else {})}
            r = client.session.get(f"{src.url}/v1/acquisition/points/SYN-{i:03d}/batches", params=params,
                                   headers={"Authorization": f"Bearer {TOKEN}"})
            pages.append((i, r.content))
            cursor = r.json().get("nextCursor")
            if not cursor:
                break
    resolver = tx.ChainResolver([src.ca])
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        verifiers, n = {}, 0
        for i, raw in pages:
            v = verifiers.setdefault(i, BatchVerifier(resolver))
            for env in json.loads(raw)["items"]:
                n += v.verify(env).payload["count"]
        best = max(best, n / (time.perf_counter() - start))
    return best


def memory(src: SourceProcess, days: int) -> float:
    tracemalloc.start()
    pull(src, 1, days, limit=7)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="10 points x 7 days only")
    args = ap.parse_args()
    points, days = (10, 7) if args.quick else (50, 31)
    print(f"acquisition pull: minute data, {points} points x {days} days, every batch verified")
    with SourceProcess(points, days) as src:
        limit = format_limit(src, min(points, 10), days)
        pull(src, 1, 1)                                          # warm-up (connections, certificate chain)
        values, elapsed = pull(src, points, days)
        rate = values / elapsed
        print(f"  pull (SQLite store): {values:,} values in {elapsed:.1f} s")
        figure("pull, verified, SQLite store", rate, "values/s", "format limit", limit, precision=0,
               target=f">= {TARGET:,} values/s (now {rate / TARGET:.2f} x)")
        print("scaling in days (10 points):  " + "  ".join(
            f"{d:>2} d {1e6 * t / v:6.2f} us/value" for d in ((1, 7) if args.quick else (1, 7, 30))
            for v, t in [pull(src, min(10, points), d)]))
        if not args.quick:
            print(f"client peak traced memory, one point: 21 days {memory(src, 21):.1f} MiB, {days} days "
                  f"{memory(src, days):.1f} MiB (pages of 7 batches: at most three pages held, whatever the period)")
    pg = postgres_url()
    if pg is None:
        print("  (PostgreSQL store skipped: set CEDX_TEST_POSTGRES_URL)")
    else:
        with SourceProcess(points, days, pg) as src:
            pull(src, 1, 1)
            values, elapsed = pull(src, points, days)
            rate = values / elapsed
            print(f"  pull (PostgreSQL store): {values:,} values in {elapsed:.1f} s")
            figure("pull, verified, PostgreSQL store", rate, "values/s", "format limit", limit, precision=0,
                   target=f">= {TARGET:,} values/s (now {rate / TARGET:.2f} x)")
    if not args.quick:
        with SourceProcess(200, 3) as src:
            print("scaling in points (3 days):   " + "  ".join(
                f"{n:>3} pts {1e6 * t / v:6.2f} us/value" for n in (10, 50, 200) for v, t in [pull(src, n, 3)]))


if __name__ == "__main__":
    main()
