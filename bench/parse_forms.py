"""Request-body parsing of a signed power report by the form a client writes it in (issue 14,
target 1's size ratio): CPU ms per ``parse_json_encoded`` call, in process, for the 2-unit and the
200-unit report, with the ratio (what 100x the generating units costs). The first form is cedx's
client's (compact, members in sorted order); the anchor is orjson reading the same 200-unit body
and writing it back with sorted keys (the floor of the parser's proof).

    .venv/bin/python bench/parse_forms.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import json

import orjson
from common import REPO  # noqa: F401  (puts the repository on sys.path for tests.*)
from report_stages import ms, small_and_large_reports

from cedx.runtime import server
from cedx.runtime.serve import tune_gc_for_serving


def _reversed(value: object) -> object:
    """The same record with every object's members in reverse order (a client in its own order)."""
    if isinstance(value, dict):
        return {k: _reversed(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed(v) for v in value]
    return value


def forms(doc: dict) -> dict[str, bytes]:
    sorted_compact = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return {
        "compact, sorted (cedx client)": sorted_compact.encode(),
        "compact, another member order": json.dumps(_reversed(doc), ensure_ascii=False, separators=(",", ":")).encode(),
        "indented by 2 (JSON.stringify)": json.dumps(doc, ensure_ascii=False, indent=2).encode(),
        "a newline escape in each unit": sorted_compact.replace('"source":"default"', '"source":"default\\nx"').encode(),
        "ASCII only (\\uXXXX escapes)": json.dumps(doc, separators=(",", ":"), sort_keys=True).encode(),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    bodies = {units: forms(doc) for units, doc in small_and_large_reports()[0].items()}
    tune_gc_for_serving()  # the collector as a serving platform process has it
    figures = {units: {name: ms(lambda raw=raw: server.parse_json_encoded(raw), args.rounds * (10 if units == 2 else 1))
                       for name, raw in by_form.items()} for units, by_form in bodies.items()}
    raw = bodies[200]["compact, sorted (cedx client)"]
    floor = ms(lambda: orjson.dumps(orjson.loads(raw), option=orjson.OPT_SORT_KEYS), args.rounds)
    print(f"request-body parse (parse_json_encoded), CPU ms per report ({len(raw) / 1024:.0f} KiB compact at 200 units)")
    for name in figures[2]:
        small, large = figures[2][name], figures[200][name]
        print(f"  {name:<32} 200 units {large:6.2f} ms   2 units {small:6.3f} ms   ratio {large / small:6.1f}")
    ours = figures[200]["compact, sorted (cedx client)"]
    print(f"  {'anchor: orjson loads + dumps':<32} 200 units {floor:6.2f} ms   parse / anchor {ours / floor:5.2f}")


if __name__ == "__main__":
    main()
