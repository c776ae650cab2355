"""Pull a month of hourly batches for a point, verify them, and total them.

Verification: every batch's signature (certificate chain to the trust anchors, via the
client) and the hash chain across the month (a gap or an altered batch is an error naming its
position). Totalling: an hour with a valid average (flags N, S, C, T) contributes avg x 1 h; an
hour flagged F (stopped) contributes 0; any other hour without data (M, B, D) is substituted by
the mean of the valid hours of the same day — recorded, so the report can say how much was
substituted.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from .. import trust
from ..trust import x509 as tx

VALID = {"N", "S", "C", "T"}


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


def pull_month(client, point_id: str, month_start: dt.datetime, trust_anchors: list[bytes]) -> list[dict]:
    """All hourly batches (granularity hour = one batch per day) of the month, verified."""
    end = month_start.replace(day=28) + dt.timedelta(days=4)
    end = end.replace(day=1)
    payloads = []
    resolve = tx.ChainResolver(trust_anchors)
    for signed in client.iter_measurement_batches(point_id, granularity="hour", from_=month_start.isoformat(), to=end.isoformat()):
        record = signed.model_dump(mode="json", by_alias=True, exclude_none=True)
        trust.verify_document(record, resolve)
        payloads.append(record["payload"])
    if not payloads:
        raise ValueError(f"no batches for {point_id} in {month_start:%Y-%m}")
    trust.verify_chain(payloads)
    return payloads


def month_total(payloads: list[dict]) -> MonthTotal:
    by_day: dict[str, list[tuple[Decimal | None, str]]] = defaultdict(list)
    for batch in payloads:
        for v in batch["values"]:
            by_day[batch["periodStart"]].append((Decimal(v["value"]) if "value" in v else None, v["flag"]))
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
                      payloads[0]["sequenceNumber"], payloads[-1]["sequenceNumber"], trust.batch_digest(payloads[-1]))
