"""Rounding of reported values per GB/T 8170-2008 (数值修约规则).

GB/T 8170 rounds in one step to the wanted place: a dropped part above half rounds up, below half
down, and exactly half (a 5 followed by nothing or zeros) rounds to the even neighbour
("四舍六入五成双"); negative numbers round by their absolute value. That is Decimal's
ROUND_HALF_EVEN. Successive rounding (2.346 → 2.35 → 2.4) is not allowed, so cedx rounds the
exact result once, at the end, to the precision of the factor table's `precision` rows.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal


def round_gbt8170(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)


def text(value: Decimal, places: int) -> str:
    """The rounded value as the decimal string a report carries."""
    return str(round_gbt8170(value, places))
