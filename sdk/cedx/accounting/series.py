"""Pull a month of hourly batches for a point, verify them, and total them conservatively.

Verification (cedx.acquisition.pull): every batch's signature (certificate chain to the trust
anchors), the hash chain and the contiguity of the batches across pages and days (a gap, an
altered, repeated or reordered batch is an error naming its position) and, when the point's
measuring range is given, flag/value agreement (cedx.accounting.flags).

Totalling (rule R-GAP-002, PWR-2022 ch. 5 missing-data handling as cedx reads it): only hours
flagged N are valid data. An hour flagged F (unit stopped) contributes 0. Every other hour
(C, S, T, M, D, B, or no value) is a gap, replaced conservatively — for quantities that raise
emissions (fuel, raw material, imports) by the highest valid hour of the same day, for outputs
that lower an intensity or are deducted (generation, supply, heat, exports) by the lowest; a day
with no valid hour at all takes the highest (lowest) valid hour of the month, never zero. Each
substitution is recorded as a data gap with its hours, flags and contribution.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .. import trust
from ..acquisition.batches import ChainHead
from ..acquisition.pull import pull_batches
from ..progress import Progress
from ..spec.rules import month_bounds
from . import flags as fl
from .period import CHINA_STANDARD_TIME

if TYPE_CHECKING:
    from ..generated.client import AcquisitionClient

#: Measurands whose conservative side is low (outputs in an intensity's denominator, or deducted).
LOW_SIDE = frozenset({"electricity_generation", "electricity_supply", "electricity_export", "heat_supply", "product_output"})


@dataclass
class Gap:
    method: str                # max_valid_same_day | max_valid_period | min_valid_same_day | min_valid_period
    cause: str                 # invalid_flag | full_day_invalid
    hours: int = 0
    flags: Counter[str] = field(default_factory=Counter)
    contribution: Decimal = Decimal(0)


@dataclass
class MonthTotal:
    point_id: str
    unit: str
    total: Decimal             # in (unit x hours), e.g. t/h -> t, MW -> MWh
    hours: int
    valid_hours: int
    substituted_hours: int
    stopped_hours: int
    first_sequence: int
    last_sequence: int
    last_digest: str
    period_start: str = ""
    period_end: str = ""
    gaps: list[Gap] = field(default_factory=list)


def pull_month(client: AcquisitionClient, point_id: str, month_start: dt.datetime, trust_anchors: list[bytes],
               measuring_range: dict[str, Any] | None = None, *, anchor: ChainHead | None = None) -> list[dict[str, Any]]:
    """The hourly batches of the month (one per local day when sealed after the fact), each
    verified on arrival (cedx.acquisition.pull: signature to the trust anchors, chain, contiguity)
    while the next page is being fetched; ``anchor`` continues a chain verified in an earlier
    pull. Returns the verified payloads."""
    local = month_start.astimezone(CHINA_STANDARD_TIME)
    start, end = month_bounds(local.year, local.month)
    payloads = []
    with Progress((end - start).days, f"pull {point_id} {local:%Y-%m}") as bar:  # quiet unless a terminal
        for b in pull_batches(client, point_id, granularity="hour", from_=start.isoformat(), to=end.isoformat(),
                              trust_anchors=trust_anchors, anchor=anchor):
            payloads.append(b.payload)
            bar.advance()
    if not payloads:
        raise ValueError(f"no batches for {point_id} in {local:%Y-%m}")
    if measuring_range is not None:
        for p in payloads:
            bad = fl.check_batch(p, measuring_range)
            if bad:
                v = bad[0]
                raise ValueError(f"{point_id} batch {p['sequenceNumber']} value {v.index} ({v.time}): {v.rule} {v.message}")
    return payloads


def month_total(payloads: list[dict[str, Any]], month_start: dt.datetime | None = None, measurand: str | None = None) -> MonthTotal:
    """Totals of verified hourly batches (row or columnar shape). With ``month_start`` only the hours
    inside that reporting month count (period rule R-PERIOD-002); days are China Standard Time days."""
    low = measurand in LOW_SIDE
    pick = min if low else max
    lo, hi = month_bounds(month_start.astimezone(CHINA_STANDARD_TIME).year, month_start.astimezone(CHINA_STANDARD_TIME).month) \
        if month_start is not None else (None, None)
    by_day: dict[str, list[tuple[Decimal | None, str]]] = defaultdict(list)
    for batch in payloads:
        for t, v, f in fl.rows(batch):
            instant = dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
            if lo is not None and hi is not None and not lo <= instant < hi:
                continue
            by_day[instant.astimezone(CHINA_STANDARD_TIME).date().isoformat()].append((v, f))
    valid_all = [v for values in by_day.values() for v, f in values if f in fl.VALID and v is not None]
    month_sub = pick(valid_all) if valid_all else None
    same_day = Gap("min_valid_same_day" if low else "max_valid_same_day", "invalid_flag")
    full_day = Gap("min_valid_period" if low else "max_valid_period", "full_day_invalid")
    total, hours, valid, stopped = Decimal(0), 0, 0, 0
    for values in by_day.values():
        good = [v for v, f in values if f in fl.VALID and v is not None]
        day_sub, gap = (pick(good), same_day) if good else (month_sub, full_day)
        for v, f in values:
            hours += 1
            if f in fl.VALID and v is not None:
                total += v
                valid += 1
            elif f in fl.STOPPED:
                stopped += 1
            else:
                if day_sub is None:
                    raise ValueError("no valid hour in the whole month: nothing to substitute from; report a conservative default")
                total += day_sub
                gap.hours += 1
                gap.flags[f] += 1
                gap.contribution += day_sub
    gaps = [g for g in (same_day, full_day) if g.hours]
    return MonthTotal(payloads[0]["pointId"], payloads[0]["unit"], total, hours, valid, sum(g.hours for g in gaps), stopped,
                      payloads[0]["sequenceNumber"], payloads[-1]["sequenceNumber"], trust.batch_digest(payloads[-1]),
                      fl.span(payloads[0])[0], fl.span(payloads[-1])[1], gaps)
