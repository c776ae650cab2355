"""Pull a month of hourly batches for a point, verify them, and total them.

Verification (cedx.acquisition.pull): every batch's signature (certificate chain to the trust
anchors), the hash chain and the contiguity of the batches across pages and days (a gap, an
altered, repeated or reordered batch is an error naming its position). Totalling: an hour with a valid average (flags N, S, C, T) contributes avg x 1 h; an
hour flagged F (stopped) contributes 0; any other hour without data (M, B, D) is substituted by
the mean of the valid hours of the same day — recorded, so the report can say how much was
substituted.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from ..acquisition.batches import ChainHead, canonical_payload
from ..acquisition.pull import pull_batches
from ..instants import CST
from ..trust.sm3 import sm3

VALID = {"N", "S", "C", "T"}


def batch_digest(payload: dict) -> str:
    return sm3(canonical_payload(payload)).hex()


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


def month_bounds(month_start: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    end = (month_start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return month_start, end


def pull_month(client, point_id: str, month_start: dt.datetime, trust_anchors: list[bytes],
               *, anchor: ChainHead | None = None) -> list[dict]:
    """The hourly batches of the month (one per local day when sealed after the fact), each
    verified on arrival (signature to the trust anchors, chain, contiguity) while the next page
    is being fetched. Returns the verified payloads."""
    start, end = month_bounds(month_start)
    payloads = [b.payload for b in pull_batches(client, point_id, granularity="hour", from_=start.isoformat(),
                                                to=end.isoformat(), trust_anchors=trust_anchors, anchor=anchor)]
    if not payloads:
        raise ValueError(f"no batches for {point_id} in {month_start:%Y-%m}")
    return payloads


def month_total(payloads: list[dict], month_start: dt.datetime | None = None) -> MonthTotal:
    """Totals of verified hourly batches (columnar): only the hours inside the month (when
    ``month_start`` is given) count; days are those of month_start's time zone (else UTC+8)."""
    tz = month_start.tzinfo if month_start is not None else CST
    lo, hi = (month_bounds(month_start) if month_start is not None else (None, None))
    by_day: dict[dt.date, list[tuple[Decimal | None, str]]] = defaultdict(list)
    for batch in payloads:
        t0 = dt.datetime.fromisoformat(batch["start"].replace("Z", "+00:00"))
        for i, (v, f) in enumerate(zip(batch["values"], batch["flags"])):
            t = t0 + dt.timedelta(hours=i)
            if lo is not None and not lo <= t < hi:
                continue
            by_day[t.astimezone(tz).date()].append((Decimal(v) if v else None, f))
    total, hours, valid, substituted, stopped = Decimal(0), 0, 0, 0, 0
    for values in by_day.values():
        good = [v for v, f in values if f in VALID and v is not None]
        day_mean = sum(good) / len(good) if good else Decimal(0)
        for v, f in values:
            hours += 1
            if f in VALID and v is not None:
                total += v
                valid += 1
            elif f == "F":
                stopped += 1
            else:
                total += day_mean
                substituted += 1
    return MonthTotal(payloads[0]["pointId"], payloads[0]["unit"], total, hours, valid, substituted, stopped,
                      payloads[0]["sequenceNumber"], payloads[-1]["sequenceNumber"], batch_digest(payloads[-1]))
