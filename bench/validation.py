"""Validation cost per report size (issue 14, targets 1 and 5), in process, beside the 2-unit
report of the same run: the stages the platform runs on every accepted monthly report
(JSON Schema, allowed units, quality rules) on a power report of 2 and of 200 generating units.
This is the part of the platform's per-unit cost that `bench/reporting.py` cannot separate from
parsing, signatures and storage.

Each figure is the best of N runs on a freshly parsed copy (as a request would have it), the
two sizes interleaved. The 200-unit report is built as `bench/reporting.py` builds it: the
example's units repeated, totals kept consistent, so that every rule passes. Its units repeat two
units' values, which the rule engine's memo of SI conversions (kept across requests) has already
seen; a real report's units differ. The last line is the quality rules on the same reports with
every unit's quantities written differently (same numbers: "20.5" as "020.50") and that memo
emptied before each run: every quantity converted once, as in a report of distinct units.

    .venv/bin/python bench/validation.py [--runs 30]
"""

from __future__ import annotations

import argparse
import copy
import time

import orjson
from common import figure, widen_power_report

from cedx import spec
from tests.spec.conftest import load_example


def power_report(units: int) -> dict:
    base = copy.deepcopy(load_example("monthly-report-power.json")["payload"])
    widen_power_report(base, units)
    return base


def distinct_values(payload: dict) -> dict:
    """``payload`` with each generating unit's quantity values written as no other unit's (leading
    and trailing zeros: the same numbers, so every rule still passes). In place; returned."""
    def rewrite(node, i: int) -> None:
        if isinstance(node, dict):
            value = node.get("value")
            if "unit" in node and isinstance(value, str):
                sign, digits = ("-", value[1:]) if value.startswith("-") else ("", value)
                node["value"] = sign + "0" * (i // 10) + digits + ("" if "." in digits else ".") + "0" * (i % 10)
            for child in node.values():
                rewrite(child, i)
        elif isinstance(node, list):
            for child in node:
                rewrite(child, i)

    for i, unit in enumerate(payload["power"]["units"]):
        rewrite(unit, i)
    return payload


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    validator = spec.context(spec.BUNDLE_PACKAGE).validator

    def rule_issues(schema: str, document: dict) -> list:
        # as validate() runs them: on a document the schema has accepted (valid=True)
        return validator.rule_issues(schema, document, valid=True)

    bodies = {n: orjson.dumps(power_report(n)) for n in (2, 200)}
    for body in bodies.values():
        issues = validator.validate("MonthlyReport", orjson.loads(body))
        assert not issues, issues[:3]
    stages = {
        "JSON Schema": validator.schema_issues,
        "allowed units": validator.unit_issues,
        "quality rules": rule_issues,
        "all three (validate)": validator.validate,
    }
    distinct = {n: orjson.dumps(distinct_values(power_report(n))) for n in (2, 200)}
    for body in distinct.values():
        issues = rule_issues("MonthlyReport", orjson.loads(body))
        assert not issues, issues[:3]
    best = {(stage, n): float("inf") for stage in [*stages, "distinct"] for n in bodies}
    for _ in range(args.runs):
        for stage, fn in stages.items():
            for n, body in bodies.items():
                document = orjson.loads(body)
                start = time.perf_counter()
                fn("MonthlyReport", document)
                best[stage, n] = min(best[stage, n], time.perf_counter() - start)
        for n, body in distinct.items():
            document = orjson.loads(body)
            validator.rules._si_cache.clear()
            start = time.perf_counter()
            rule_issues("MonthlyReport", document)
            best["distinct", n] = min(best["distinct", n], time.perf_counter() - start)
    print(f"validation per report size (in process; best of {args.runs}; ratios against the 2-unit report)")
    for stage in stages:
        figure(f"{stage}, 200 units ({len(bodies[200]) // 1024} KiB)", 1e3 * best[stage, 200], "ms",
               "2-unit report", 1e3 * best[stage, 2], precision=3)
    figure("quality rules, 200 distinct units, memo cold", 1e3 * best["distinct", 200], "ms",
           "2-unit report", 1e3 * best["distinct", 2], precision=3)


if __name__ == "__main__":
    main()
