"""Agreement between acquisition and report (rule R-EVID-002).

A monthly report's evidence names, per metered quantity, the acquisition batches it was computed
from (first..last sequence, the digest of the last batch) and the report field it supports. This
module recomputes each such monthly total from the signed batches themselves — with the same
conservative substitution (:func:`cedx.accounting.series.month_total`; the direction is read from
the report's data-gap record for that field) — and flags any disagreement.

Tolerance: half a unit of the last decimal place the report gives (0.005 t for coal reported to
0.01 t). The recomputation is exact decimal arithmetic on the same signed values, so reporting
rounding (GB/T 8170) is the only legitimate difference; a relative tolerance such as 0.1 % would be
150 t of coal on a 150,000 t month and would let a missing or altered day through. Used by the
client before submission and by the inspector (with batches pulled from the source).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .. import spec, trust
from .period import bounds as period_bounds
from .series import month_total

_STEP = re.compile(r"([A-Za-z][A-Za-z0-9]*)(?:\[(\d+)\])?")
LOW_METHODS = ("min_valid_same_day", "min_valid_period")


@dataclass(frozen=True)
class Disagreement:
    rule: str
    evidence: int
    message: str
    path: str = ""             # JSON path in the report payload: $.evidence[i]..., or the reported field

    def __str__(self) -> str:
        return f"{self.rule} {self.path}: {self.message}"


def resolve(payload: dict[str, Any], path: str) -> Any:
    node = payload
    for part in path.split("."):
        m = _STEP.fullmatch(part)
        if not m or not isinstance(node, dict) or m.group(1) not in node:
            return None
        node = node[m.group(1)]
        if m.group(2) is not None:
            i = int(m.group(2))
            if not isinstance(node, list) or i >= len(node):
                return None
            node = node[i]
    return node


def half_unit(value: str) -> Decimal:
    places = len(value.split(".")[1]) if "." in value else 0
    return Decimal(5).scaleb(-(places + 1))


def check(report: dict[str, Any], batches: dict[str, list[dict[str, Any]]]) -> list[Disagreement]:
    """``report`` is a MonthlyReport payload; ``batches`` maps pointId to that month's batch payloads
    (signatures already verified by whoever pulled them)."""
    units = spec.index().units
    out: list[Disagreement] = []
    gaps = {g["parameter"]: g for g in report.get("dataGaps", [])}
    for i, ev in enumerate(report.get("evidence", [])):
        if "reportedField" not in ev or "total" not in ev:
            continue
        at = f"$.evidence[{i}]"
        # each granularity of a point is its own chain with its own sequence numbers
        chain = [b for b in batches.get(ev["pointId"], []) if b.get("granularity", ev.get("granularity")) == ev.get("granularity")
                 and ev["firstSequence"] <= b["sequenceNumber"] <= ev["lastSequence"]]
        chain.sort(key=lambda b: b["sequenceNumber"])
        if len(chain) != ev["lastSequence"] - ev["firstSequence"] + 1:
            out.append(Disagreement("R-EVID-002", i, f"{ev['pointId']}: batches {ev['firstSequence']}..{ev['lastSequence']} not all available",
                                   f"{at}.lastSequence"))
            continue
        try:
            last_digest = trust.verify_chain(chain)  # the digest of the last batch
        except Exception as e:  # a broken chain names its position
            out.append(Disagreement("R-EVID-002", i, f"{ev['pointId']}: hash chain broken: {e}", at))
            continue
        if last_digest != ev["lastBatchDigest"]:
            out.append(Disagreement("R-EVID-002", i, f"{ev['pointId']}: last batch digest differs from lastBatchDigest",
                                   f"{at}.lastBatchDigest"))
            continue
        gap = gaps.get(ev["reportedField"])
        measurand = "electricity_generation" if gap and gap["method"] in LOW_METHODS else None
        month_start = period_bounds(report["period"])[0] if "period" in report else None
        total = month_total(chain, month_start, measurand=measurand)
        stated = Decimal(ev["total"]["value"])
        if abs(total.total - stated) > half_unit(ev["total"]["value"]):
            out.append(Disagreement("R-EVID-002", i, f"{ev['pointId']}: batches give {total.total}, evidence states {stated} "
                                                     f"(tolerance ±{half_unit(ev['total']['value'])})",
                                   f"{at}.total.value"))
        for key, value in (("validHours", total.valid_hours), ("substitutedHours", total.substituted_hours),
                           ("stoppedHours", total.stopped_hours)):
            if key in ev and ev[key] != value:
                out.append(Disagreement("R-EVID-002", i, f"{ev['pointId']}: {key} {ev[key]} but the batches give {value}", f"{at}.{key}"))
        field = resolve(report, ev["reportedField"])
        if not (isinstance(field, dict) and "value" in field and field.get("unit") in units):
            out.append(Disagreement("R-EVID-002", i, f"reportedField {ev['reportedField']} is not a quantity of this report",
                                   f"{at}.reportedField"))
            continue
        reported = units[field["unit"]].to_si(Decimal(field["value"]))
        recomputed = units[ev["total"]["unit"]].to_si(total.total)
        tolerance = units[field["unit"]].factor * half_unit(field["value"])
        if abs(reported - recomputed) > tolerance:
            out.append(Disagreement("R-EVID-002", i, f"{ev['reportedField']} = {field['value']} {field['unit']} but the "
                                                     f"referenced batches give {total.total} {ev['total']['unit']} "
                                                     f"(tolerance ±{half_unit(field['value'])} {field['unit']})",
                                    f"$.{ev['reportedField']}.value"))
    return out
