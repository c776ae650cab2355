"""Reporting-interface figures (issue 14, targets 1 and 5), each beside an anchor of the same run:

1. Signed monthly reports accepted per second end to end on loopback (`cedx serve platform` in
   its own process; the client signs, the platform verifies signature and certificate chain,
   validates, runs every quality rule, stores, signs and time-stamps the receipt) beside the same
   server's trivial endpoint (/health: the framework floor). SQLite and PostgreSQL
   (CEDX_TEST_POSTGRES_URL; skipped with a message without it), one worker and several.
2. Platform CPU per accepted report for a 2-unit and a 200-unit power report (process CPU time
   of the server, /proc), and their ratio (target <= 4).

Client and server share this machine's two cores, so what the bench client spends is taken from
the platform. What is client cost and stays in the timed loop: the HTTP client, a fresh request
signature per request (X-Cedx-* headers carry a nonce and a timestamp, so they cannot be made in
advance), a fresh Idempotency-Key, reading the receipt. What is done before the timed loop: the
documents are built and signed (SM2), and validated (the first of each batch; the others
differ in period and reportId only); the client's own pre-send validation is then switched off
with ``validate=False``: validating the same document again per request would measure the
client, not the platform's accept rate. The platform does its full work on
every request. Beside each rate the bench prints the platform's own CPU per accepted report
and per trivial request (/proc of the server processes), the ratio that does not depend on how
fast the client is.

3. The trust profile's floor (bench/trust_floor_app.py): the same platform app and server with
   one bench-only route doing a report's four SM2 operations and nothing else, the client signing
   each request. Its ratio to /health is the ceiling of figure 1's ratio on this machine.

Where the platform's time goes (thread CPU of each stage in the served platform, and py-spy
--gil, 2026-12-02, after the fourth round of work on issue 14; figures of one `make bench` run in
docs/performance.md):

* 2-unit report, ~3.4 ms CPU against ~0.35 ms for /health and ~1.5 ms for the floor: the four
  SM2 operations (~0.23 ms each, outside the GIL) are about a quarter of it; the receipt (its
  signature and time-stamp token) ~0.7 ms, the request signature with its nonce ~0.45 ms, the
  document signature ~0.4 ms, validation ~0.4 ms (rules 0.3), authentication and rate limit
  ~0.2 ms (SQLite: one statement each; PostgreSQL: one statement for both), the submission's
  write ~0.4 ms (PostgreSQL: one statement reads what it decides on and inserts), the framework,
  the event loop and the worker-thread hop ~0.9 ms. Half the trivial endpoint's rate would need
  the whole report, client included, at about the floor's cost: the floor itself reaches
  0.55-0.60.
* 200-unit report (563 KiB, ~100 JSON values per unit), ~15 ms; per unit about 56 µs: quality
  rules ~15 µs, parsing ~13 µs (orjson, its sorted re-encoding that is also the canonical form),
  JSON Schema with the allowed units (one jsonschema-rs pass) ~7 µs, the body's one SM3 pass
  ~7 µs (the document's SM2-with-SM3-prehash digest and the receipt's documentDigest resume
  from its states), receiving the body ~5 µs, storing it ~4 µs. The 200/2 ratio is measured
  in interleaved rounds at nanosecond resolution (the least disturbed round of each size).

    .venv/bin/python bench/reporting.py [--reports 120] [--workers 2] [--cpu-reports 40]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from common import (
    child_cpu_seconds,
    cpu_seconds,
    figure,
    free_port,
    machine_ticks,
    postgres_url,
    process,
    thread_cpu_seconds,
    widen_power_report,
)

from cedx import spec, trust
from cedx.generated.constants import SPEC_VERSION
from cedx.platform.admin import Admin
from cedx.platform.settings import PlatformSettings
from tests.platform.conftest import Entity, Env

PERIOD_MONTHS = ("01", "03", "05", "07", "08", "10", "12")


class Platform:
    """A platform process with one entity registered, and a client for it."""

    def __init__(self, data_dir: Path, database_url: str | None, workers: int):
        self.settings = PlatformSettings(data_dir=data_dir, database_url=database_url, rate_limit_per_minute=10**9)
        self.admin = Admin(self.settings)
        self.entity = Entity(self.admin, "91320500MA1X2P3Q4R", "monthly-report-power.json")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [sys.executable, "-m", "cedx", "serve", "platform", "--dir", str(data_dir), "--port", str(self.port),
                    "--workers", str(workers), "--log-level", "warning"]
        self.env = {"CEDX_RATE_LIMIT": str(10**9), **({"CEDX_DATABASE_URL": database_url} if database_url else {})}

    def run(self):
        return process(self.cmd, f"{self.url}/health", self.env)

    def client(self):
        env = Env.__new__(Env)
        env.url, env.admin, env.ca = self.url, self.admin, self.admin.pki.ca
        # measure the platform, not receipt verification on the client (the explicit opt-out),
        # nor the client's validation of documents already validated when they were made
        return env.client(self.entity, verify_signatures=False, validate=False)


def signed_reports(entity: Entity, count: int, units: int, first: int = 0) -> list[dict]:
    """``count`` signed power reports with ``units`` generating units each (totals consistent,
    so every rule passes and every report is stored), distinct periods."""
    base = entity.report().model_dump(mode="json", by_alias=True, exclude_none=True)
    widen_power_report(base, units)
    out = []
    validator = spec.context(spec.BUNDLE_PACKAGE).validator
    for i in range(first, first + count):
        payload = dict(base, period=f"{1800 + i // 7}-{PERIOD_MONTHS[i % 7]}", reportId=str(uuid.uuid4()))
        if i == first:  # every report differs from the first in period and reportId only
            issues = validator.validate("MonthlyReport", payload)
            assert not issues, issues
        out.append(trust.sign_document(payload, entity.key, certificate_chain=[entity.cert],
                                       envelope_fields={"specVersion": SPEC_VERSION}))
    return out


def timed(pid: int, fn, items, threads: int, shares: list | None = None) -> tuple[float, float]:
    """Calls per second of ``fn`` over ``items`` from ``threads`` client threads, and the server
    process's CPU seconds per call (/proc). ``shares``, if given, receives how the server's CPU
    split among its worker processes and how busy the whole machine was (fractions)."""
    items = list(items)
    workers, machine = child_cpu_seconds(pid), machine_ticks()
    cpu, start = cpu_seconds(pid), time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(fn, items))
    rate, per_call = len(items) / (time.perf_counter() - start), (cpu_seconds(pid) - cpu) / len(items)
    if shares is not None:
        spent = {child: after - workers.get(child, 0.0) for child, after in child_cpu_seconds(pid).items()}
        total = sum(spent.values()) or 1.0
        ticks, idle = (after - before for after, before in zip(machine_ticks(), machine))
        # every child, an idle worker too (0 %)
        shares.extend([sorted((v / total for v in spent.values()), reverse=True), 1 - idle / (ticks or 1)])
    return rate, per_call


def health_caller(url: str):
    """A call of the server's trivial endpoint (/health, the anchor), on one session."""
    session = requests.Session()

    def trivial(_):
        session.get(f"{url}/health").raise_for_status()

    return trivial


def workers_label(workers: int) -> str:
    return f"{workers} worker{'s' if workers > 1 else ''}"


def throughput(kind: str, database_url: str | None, workers: int, n: int, threads: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        platform = Platform(Path(tmp), database_url, workers)
        warm = 8 * workers
        bodies = signed_reports(platform.entity, n + warm, units=2)
        with platform.run() as proc:
            client = platform.client()
            for body in bodies[:warm]:
                # warm-up: tokens, caches and compiled validators (about 0.5 s once per process);
                # a new connection each time, so that every worker process gets some
                client.submit_monthly_report(body)
                client.session.close()
            shares: list = []
            reports, report_cpu = timed(proc.pid, client.submit_monthly_report, bodies[warm:], threads, shares)
            floor, trivial_cpu = timed(proc.pid, health_caller(platform.url), range(n * 5), threads)
    target = "≥ 0.50" if workers == 1 else ("≥ 0.30" if kind == "PostgreSQL" else "")
    label = f"{kind}, {workers_label(workers)}"
    ratio = figure(f"reports accepted/s, {label}", reports, "/s", "trivial endpoint", floor, target=target)
    # the platform's side alone: its CPU per request (inverse ratio: trivial / report)
    figure(f"  platform CPU per request, {label}", 1e3 * report_cpu, "ms", "trivial request", 1e3 * trivial_cpu,
           precision=2)
    # what limited the rate: a worker left idle (connections pinned unevenly), or the machine full
    # the first ``workers`` shares (sorted, an idle worker's 0 % among them): the other child of
    # uvicorn's supervisor (multiprocessing's resource tracker) uses none
    split = " / ".join(f"{100 * share:.0f} %" for share in shares[0][:workers]) if workers > 1 else ""
    print(f"    during the reports: machine busy {100 * shares[1]:.0f} % (client, platform"
          f"{', PostgreSQL' if kind == 'PostgreSQL' else ''} on {os.cpu_count()} cores)"
          + (f"; platform CPU per worker process {split}" if split else ""))
    return ratio


def trust_floor(workers: int, n: int, threads: int) -> float:
    """The ceiling of the reports/trivial ratio under the trust profile: bench/trust_floor_app.py
    serves the platform plus a route doing a report's four SM2 operations and nothing else; the
    client makes one SM2 signature per request, as for a report (over a nonce only). Same
    server, same protocol, same anchor."""
    from trust_floor_app import ENTITY_KEY

    from cedx.runtime.serve import NODELAY_HTTP

    key = trust.SM2PrivateKey(ENTITY_KEY)
    with tempfile.TemporaryDirectory() as tmp:
        Admin(PlatformSettings(data_dir=Path(tmp)))  # initialised once, before the workers start
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "uvicorn", "--factory", "trust_floor_app:create_app", "--app-dir",
               str(Path(__file__).resolve().parent), "--http", NODELAY_HTTP, "--port", str(port),
               "--workers", str(workers), "--log-level", "warning"]
        with process(cmd, f"{url}/health", {"CEDX_PLATFORM_DIR": tmp, "CEDX_PUBLIC_URL": url}) as proc:
            session = requests.Session()

            def floor(_):
                nonce = uuid.uuid4().hex
                session.post(f"{url}/bench/trust-floor", headers={
                    "X-Floor-Nonce": nonce, "X-Floor-Signature": key.sign(nonce.encode()).hex()}).raise_for_status()

            rates, cpus = [], []
            for fn, count in ((floor, n), (health_caller(url), n * 5)):
                timed(proc.pid, fn, range(8 * workers), threads)  # warm-up
                rate, cpu = timed(proc.pid, fn, range(count), threads)
                rates.append(rate)
                cpus.append(cpu)
    label = workers_label(workers)
    ratio = figure(f"trust-profile floor (4 SM2 ops), {label}", rates[0], "/s", "trivial endpoint", rates[1],
                   target="the ceiling of the ratio above")
    figure(f"  platform CPU per request, floor, {label}", 1e3 * cpus[0], "ms", "trivial request", 1e3 * cpus[1],
           precision=2)
    return ratio


def platform_cpu(n: int, rounds: int = 4) -> None:
    """Server CPU per accepted report, 2 units vs 200 units, one worker, SQLite: ``rounds``
    rounds of ``n`` reports of each size, interleaved (the size sent first alternates, so that a
    drift of the machine's speed favours neither); each size's least disturbed round (the
    machine is shared with the client), timed at nanosecond resolution. The line after the
    figure gives the ratio of each round alone: how far this machine's noise moves it."""
    with tempfile.TemporaryDirectory() as tmp:
        platform = Platform(Path(tmp), None, 1)
        count = rounds * n + 2
        bodies = {"2 units": signed_reports(platform.entity, count, units=2),
                  "200 units": signed_reports(platform.entity, count, units=200, first=count)}
        with platform.run() as proc:
            client = platform.client()
            per_report: dict[str, list[float]] = {label: [] for label in bodies}
            for docs in bodies.values():
                for body in docs[:2]:  # warm-up (first use of each code path)
                    client.submit_monthly_report(body)
            for r in range(rounds):
                for label, docs in (list(bodies.items()) if r % 2 == 0 else reversed(bodies.items())):
                    batch = docs[2 + r * n:2 + (r + 1) * n]
                    before, ticks = thread_cpu_seconds(proc.pid), cpu_seconds(proc.pid)
                    for body in batch:
                        client.submit_monthly_report(body)
                    after = thread_cpu_seconds(proc.pid)
                    # the same threads throughout: exact; else the clock ticks (exited threads too)
                    spent = after[0] - before[0] if after[1] == before[1] else cpu_seconds(proc.pid) - ticks
                    per_report[label].append(1e3 * spent / n)
    size = len(str(bodies["200 units"][0])) / 1024
    small, large = min(per_report["2 units"]), min(per_report["200 units"])
    figure(f"platform CPU per 200-unit report ({size:.0f} KiB)", large, "ms", "2-unit report", small, target="≤ 4.00")
    each = sorted(b / a for a, b in zip(per_report["2 units"], per_report["200 units"]))
    print(f"    each round alone: ratio {each[0]:.2f} to {each[-1]:.2f} ({rounds} rounds of {n} reports per size)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reports", type=int, default=120)
    ap.add_argument("--workers", type=int, default=2, help="the 'several workers' case")
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--cpu-reports", type=int, default=40)
    args = ap.parse_args()
    print("reporting interface (loopback; platform in its own process; client threads "
          f"{args.threads}; ratios against anchors of the same run)")
    configs = [("SQLite", None)]
    pg = postgres_url()
    if pg:
        configs.append(("PostgreSQL", pg))
    for kind, url in configs:
        for workers in (1, args.workers):
            db = url if kind == "SQLite" or workers == 1 else postgres_url()  # a fresh database per run
            if kind == "PostgreSQL" and db is None:
                continue
            throughput(kind, db, workers, args.reports, args.threads * workers)
            if kind == "SQLite":  # no database in it: once per worker count
                trust_floor(workers, args.reports, args.threads * workers)
    if not pg and not os.environ.get("CEDX_TEST_POSTGRES_URL"):
        print("  PostgreSQL: skipped (set CEDX_TEST_POSTGRES_URL to a server, e.g. the one .ci/run starts)")
    platform_cpu(args.cpu_reports)


if __name__ == "__main__":
    main()
