"""Flag/value agreement (rules R-ACQ-001, R-ACQ-005, R-ACQ-006).

HJ 212 flags must agree with the values they mark and with the instrument's measuring range:
N (normal) has a value inside [lower, upper]; T (over range) has a value at or above the upper
limit; N, S, C and T carry a value and B (communication error) has none. Only N is valid data for
accounting (C, S, T, M, D, B are not; F is a stopped unit, i.e. zero). The flag sets are facts of
the spec (QualityFlag, x-cedx-flag-rules; cedx.generated.constants).

The check works on any batch shape: it takes an iterable of (time, value-or-None, flag) rows, so
row-shaped batches (``values: [{time, value, flag}]``) and columnar ones (parallel arrays) feed it
through :func:`rows`. Applied by the source before sealing, by the client on pull
(``cedx.accounting.series.pull_month``) and by the inspector.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..generated.constants import (
    FLAGS_CARRYING_VALUE,
    FLAGS_COUNTING_AS_VALID,
    FLAGS_STOPPED,
    FLAGS_WITHOUT_VALUE,
)

#: only N is valid data; F (stopped) is zero; every other flag is a gap (spec QualityFlag)
VALID = FLAGS_COUNTING_AS_VALID
STOPPED = FLAGS_STOPPED


@dataclass(frozen=True)
class FlagViolation:
    rule: str
    index: int
    time: str
    flag: str
    value: str | None
    message: str


_NAMES = {"N": "normal", "S": "manual entry", "C": "calibration", "T": "over range", "B": "communication error"}
_STEPS = {"PT1M": dt.timedelta(minutes=1), "PT1H": dt.timedelta(hours=1), "P1D": dt.timedelta(days=1)}


def rows(batch: dict[str, Any]) -> Iterator[tuple[str, Decimal | None, str]]:
    """(time, value, flag) rows of a batch payload, row-shaped or columnar.

    Row shape: ``values: [{time, value?, flag}]``. Columnar shape (sealed batches): value i is at
    ``start + i × step``, ``values[i]`` is a decimal string ('' or null for no value) and its flag
    is character i of the ``flags`` string.
    """
    values = batch.get("values") or []
    if values and isinstance(values[0], dict):
        for v in values:
            yield v["time"], (Decimal(v["value"]) if v.get("value") not in (None, "") else None), v["flag"]
        return
    start = dt.datetime.fromisoformat(str(batch["start"]).replace("Z", "+00:00"))
    step = _STEPS[batch["step"]]
    for i, (v, f) in enumerate(zip(values, batch.get("flags") or "")):
        t = (start + i * step).astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
        yield t, (Decimal(v) if v not in (None, "") else None), f


def span(batch: dict[str, Any]) -> tuple[str, str]:
    """(start, end) of a batch payload in either shape."""
    if "periodStart" in batch:
        return batch["periodStart"], batch["periodEnd"]
    start = dt.datetime.fromisoformat(str(batch["start"]).replace("Z", "+00:00"))
    end = start + int(batch["count"]) * _STEPS[batch["step"]]
    return batch["start"], end.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def check(values: Iterable[tuple[str, Decimal | None, str]], lower: Decimal, upper: Decimal) -> list[FlagViolation]:
    out = []
    for i, (t, v, f) in enumerate(values):
        text = None if v is None else str(v)
        if f in FLAGS_WITHOUT_VALUE and v is not None:
            out.append(FlagViolation("R-ACQ-005", i, t, f, text, f"flag {f} ({_NAMES.get(f, f)}) carries a value"))
        elif f in FLAGS_CARRYING_VALUE and v is None:
            out.append(FlagViolation("R-ACQ-001", i, t, f, text, f"flag {f} ({_NAMES.get(f, f)}) without a value"))
        elif f == "N" and not (lower <= v <= upper):  # type: ignore[operator]
            out.append(FlagViolation("R-ACQ-006", i, t, f, text, f"flag N but the value is outside the range [{lower}, {upper}]"))
        elif f == "T" and (v is None or v < upper):
            out.append(FlagViolation("R-ACQ-006", i, t, f, text, f"flag T (over range) but the value is below the upper limit {upper}"))
    return out


def check_batch(batch: dict[str, Any], measuring_range: dict[str, Any]) -> list[FlagViolation]:
    """A batch payload against its metering point's instrument range ({lower, upper, unit})."""
    return check(rows(batch), Decimal(measuring_range["lower"]), Decimal(measuring_range["upper"]))
