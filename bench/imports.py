"""Import time of the client beside its dependencies alone (issue 14, target 4).

The anchor imports, in a fresh interpreter, exactly the third-party modules that importing the
client loads (same order), so the ratio is what cedx adds on top of them. Process CPU time, best
of N runs each, interleaved, so that a busy neighbour (waiting for a core) does not decide it.

    .venv/bin/python bench/imports.py [--runs 7] [--module cedx.generated.client]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

PROBE = r"""
import sys, time
before = set(sys.modules)
t0 = time.process_time()
import {module}
elapsed = time.process_time() - t0
import json
std = set(sys.stdlib_module_names)
third = [m for m in sys.modules if m not in before and m.split('.')[0] not in std
         and m.split('.')[0] != 'cedx' and not m.startswith('_')]
print(json.dumps({{"elapsed": elapsed, "third_party": third}}))
"""

ANCHOR = r"""
import sys, time, importlib
mods = {mods!r}
t0 = time.process_time()
for m in mods:
    try:
        importlib.import_module(m)
    except Exception:
        pass
print(time.process_time() - t0)
"""


def run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def measure(module: str, runs: int) -> tuple[float, float, list[str]]:
    probe = json.loads(run(PROBE.format(module=module)))
    mods = probe["third_party"]
    best_mod, best_dep = probe["elapsed"], float("inf")
    for _ in range(runs):
        best_dep = min(best_dep, float(run(ANCHOR.format(mods=mods))))
        best_mod = min(best_mod, json.loads(run(PROBE.format(module=module)))["elapsed"])
    return best_mod, best_dep, mods


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--module", action="append")
    args = ap.parse_args()
    print(f"import CPU time (best of {args.runs} fresh interpreters; target: client <= 1.3 x its dependencies)")
    for module in args.module or ["cedx", "cedx.generated.client", "cedx.generated.models", "cedx.trust"]:
        mine, deps, mods = measure(module, args.runs)
        tops = sorted({m.split(".")[0] for m in mods})
        if deps > 0.001:
            print(f"  import {module:<24} {1e3 * mine:7.1f} ms   its dependencies alone {1e3 * deps:7.1f} ms"
                  f"   ratio {mine / deps:.2f}x   ({', '.join(tops)})")
        else:
            print(f"  import {module:<24} {1e3 * mine:7.1f} ms   (no third-party dependencies loaded)")


if __name__ == "__main__":
    main()
