"""Flag/value agreement (rules R-ACQ-001, R-ACQ-005, R-ACQ-006).

HJ 212 flags must agree with the values they mark and with the instrument's measuring range:
N (normal) has a value inside [lower, upper]; T (over range) has a value at or above the upper
limit; B (communication error) has no value. Only N is valid data for accounting (C, S, T, M, D,
B are not; F is a stopped unit, i.e. zero).

The check works on any batch shape: it takes an iterable of (time, value-or-None, flag) rows, so
row-shaped batches (``values: [{time, value, flag}]``) and columnar ones (parallel arrays) feed it
through :func:`rows`. Applied by the source before sealing, by the client on pull
(``cedx.accounting.series.pull_month``) and by the inspector.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal

VALID = frozenset({"N"})
STOPPED = "F"


@dataclass(frozen=True)
class FlagViolation:
    rule: str
    index: int
    time: str
    flag: str
    value: str | None
    message: str


def rows(batch: dict) -> Iterator[tuple[str, Decimal | None, str]]:
    """(time, value, flag) rows of a batch payload, row-shaped or columnar.

    Columnar shape (the acquisition helper's pages): parallel arrays ``times``/``values``/``flags``
    with JSON null for a missing value; row shape: ``values: [{time, value?, flag}]``.
    """
    values = batch.get("values")
    if isinstance(values, list) and (not values or isinstance(values[0], dict)):
        for v in values:
            yield v["time"], (Decimal(v["value"]) if v.get("value") is not None else None), v["flag"]
        return
    times, flags = batch.get("times") or [], batch.get("flags") or []
    for t, v, f in zip(times, values or [], flags):
        yield t, (Decimal(v) if v is not None else None), f


def check(values: Iterable[tuple[str, Decimal | None, str]], lower: Decimal, upper: Decimal) -> list[FlagViolation]:
    out = []
    for i, (t, v, f) in enumerate(values):
        text = None if v is None else str(v)
        if f == "B" and v is not None:
            out.append(FlagViolation("R-ACQ-005", i, t, f, text, "flag B (communication error) carries a value"))
        elif f == "N" and v is None:
            out.append(FlagViolation("R-ACQ-001", i, t, f, text, "flag N (normal) without a value"))
        elif f == "N" and not (lower <= v <= upper):  # type: ignore[operator]
            out.append(FlagViolation("R-ACQ-006", i, t, f, text, f"flag N but the value is outside the range [{lower}, {upper}]"))
        elif f == "T" and (v is None or v < upper):
            out.append(FlagViolation("R-ACQ-006", i, t, f, text, f"flag T (over range) but the value is below the upper limit {upper}"))
    return out


def check_batch(batch: dict, measuring_range: dict) -> list[FlagViolation]:
    """A batch payload against its metering point's instrument range ({lower, upper, unit})."""
    return check(rows(batch), Decimal(measuring_range["lower"]), Decimal(measuring_range["upper"]))
