"""The period rule (R-PERIOD-002) and the power-sector upload deadline (R-POW-008).

A reporting month YYYY-MM holds every instant t with
YYYY-MM-01T00:00:00+08:00 <= t < (first day of the next month)T00:00:00+08:00 — the calendar of
China Standard Time, whatever offset an instant is written with. Interval data (an hourly or
daily value) belong to the month of their interval start. The rules engine uses the same
function (``cedx.spec.rules.month_bounds``).
"""

from __future__ import annotations

import datetime as dt

from ..instants import CST as CHINA_STANDARD_TIME
from ..spec.rules import month_bounds
from .factors import table

__all__ = ["CHINA_STANDARD_TIME", "bounds", "period_of", "upload_deadline", "is_late"]


def bounds(period: str) -> tuple[dt.datetime, dt.datetime]:
    year, month = (int(x) for x in period.split("-"))
    return month_bounds(year, month)


def period_of(instant: dt.datetime) -> str:
    """The reporting month an instant (or the start of an interval) belongs to."""
    if instant.tzinfo is None:
        raise ValueError("an instant needs an explicit offset")
    return instant.astimezone(CHINA_STANDARD_TIME).strftime("%Y-%m")


def upload_deadline(period: str) -> dt.datetime:
    """Power sector: monthly data are due within 40 days of the month's end (factor table)."""
    days = int(table().value("power.reporting_deadline_days"))
    return bounds(period)[1] + dt.timedelta(days=days)


def is_late(period: str, received_at: dt.datetime) -> bool:
    return received_at >= upload_deadline(period)
