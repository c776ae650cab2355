"""Shared helpers for the bench scripts: one figure per script, each printed beside an anchor
measured in the same run, with the ratio and the target of issue 14.

A new figure is a new script that imports from here and a line in the Makefile's bench target.
"""

from __future__ import annotations

import contextlib
import copy
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.* helpers (entities, examples) for the scripts

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``fn`` over about ``seconds``."""
    n, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(10):
            fn()
        n += 10
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def figure(label: str, value: float, unit: str, anchor_label: str, anchor: float, *,
           target: str = "", higher_is_better: bool = True, precision: int = 1) -> float:
    """Print one figure line: value, anchor, ratio (value / anchor) and the target."""
    ratio = value / anchor if anchor else float("nan")
    tail = f"   target {target}" if target else ""
    print(f"  {label:<46} {value:10.{precision}f} {unit:<10} {anchor_label} {anchor:10.{precision}f}"
          f"   ratio {ratio:6.2f}{tail}")
    return ratio


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, ok=(200,), timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code in ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {timeout:.0f} s")


@contextlib.contextmanager
def process(cmd: list[str], health: str, env: dict | None = None, ok=(200,)) -> Iterator[subprocess.Popen]:
    """A server process (as deployed: its own interpreter), stopped at the end."""
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})})
    try:
        wait_http(health, ok)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _own_cpu_seconds(pid: int) -> float:
    """User + system CPU of one process, in seconds (/proc/<pid>/stat; FileNotFoundError once gone)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _children(pid: int) -> list[int]:
    """The live direct children of a process (FileNotFoundError once it is gone)."""
    return [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live children (uvicorn workers), in seconds."""
    total = 0.0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            total += _own_cpu_seconds(p)
            pids.extend(_children(p))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def child_cpu_seconds(pid: int) -> dict[int, float]:
    """User + system CPU of each direct child of a process (uvicorn's worker processes), by PID."""
    out = {}
    try:
        children = _children(pid)
    except (FileNotFoundError, ProcessLookupError):
        return out
    for child in children:
        try:
            out[child] = _own_cpu_seconds(child)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


def machine_ticks() -> tuple[int, int]:
    """All CPU ticks of the machine so far, and the idle (and I/O wait) ones among them (/proc/stat)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields), fields[3] + fields[4]


def thread_cpu_seconds(pid: int) -> tuple[float, frozenset[str]]:
    """CPU of a process's live threads in seconds, at nanosecond resolution (/proc/<pid>/task/*/
    schedstat), and the thread IDs it summed: a difference is exact only while the same threads
    lived (``cpu_seconds`` counts exited threads too, but in 10 ms clock ticks)."""
    total, tids = 0, []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
            tids.append(task.name)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 1e9, frozenset(tids)


def postgres_url() -> str | None:
    """A fresh database on the server named by CEDX_TEST_POSTGRES_URL, or None."""
    base = os.environ.get("CEDX_TEST_POSTGRES_URL")
    if not base:
        return None
    from tests.platform.conftest import _fresh_postgres

    try:
        return _fresh_postgres(base)
    except Exception as exc:  # a server named but not reachable: say so, measure the rest
        print(f"  PostgreSQL at CEDX_TEST_POSTGRES_URL unreachable ({type(exc).__name__}): skipped")
        return None


def widen_power_report(base: dict[str, Any], units: int) -> dict[str, Any]:
    """``base`` (a power MonthlyReport payload) with ``units`` generating units, copies of its
    own in turn, and the combustion and total emissions kept consistent so every rule passes.
    Changes ``base`` in place and returns it."""
    template = base["power"]["units"]
    old = sum(Decimal(u["combustionEmission"]["value"]) for u in template)
    new_units = [dict(copy.deepcopy(template[i % len(template)]), unitId=f"U{i + 1}") for i in range(units)]
    delta = sum(Decimal(u["combustionEmission"]["value"]) for u in new_units) - old
    base["power"]["units"] = new_units
    for key in ("combustion", "total"):
        base["totals"][key]["value"] = f"{Decimal(base['totals'][key]['value']) + delta:.3f}"
    return base
