"""Instants on the wire, defined once: the UTC+8 zone of Chinese sites, the spec's RFC 3339
pattern (``DateTime`` in spec/openapi.yaml, rule R-TIME-001; a test keeps the two equal) and
the ``…Z`` text form. No dependencies, so every layer (trust, spec, runtime) may import it."""

from __future__ import annotations

import datetime as dt
import re

UTC = dt.timezone.utc
#: China Standard Time (UTC+8, no daylight saving): meter clocks, reporting months, local dates.
CST = dt.timezone(dt.timedelta(hours=8))

#: An RFC 3339 instant with an explicit offset — the spec's ``DateTime`` pattern, ASCII digits.
INSTANT_PATTERN = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$"
)


def iso_z(value: dt.datetime, timespec: str = "auto") -> str:
    """``value`` in UTC as RFC 3339 text ending in ``Z``. A naive value is taken as UTC (what
    SQL stores hand back); ``timespec`` as for ``datetime.isoformat``."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def parse_instant(text: str) -> dt.datetime:
    """RFC 3339 text (``Z`` or an offset) as an aware datetime."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


__all__ = ["CST", "INSTANT_PATTERN", "UTC", "iso_z", "parse_instant"]
