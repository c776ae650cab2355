"""The unit table: codes, names and conversion to SI (from the spec's x-cedx-units)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, NamedTuple


class Unit(NamedTuple):  # not a dataclass: the client's import stays clear of dataclasses, inspect
    code: str
    zh: str
    en: str
    dimension: str
    si_unit: str
    factor: Decimal
    offset: Decimal

    def to_si(self, value: Decimal) -> Decimal:
        return value * self.factor + self.offset


class UnitTable:
    def __init__(self, rows: list[dict[str, Any]]):
        self._units = {
            r["code"]: Unit(
                code=r["code"], zh=r["zh"], en=r["en"], dimension=r["dimension"],
                si_unit=r["si"]["unit"], factor=Decimal(r["si"]["factor"]),
                offset=Decimal(r["si"].get("offset", "0")),
            )
            for r in rows
        }

    def __contains__(self, code: object) -> bool:
        return code in self._units

    def __getitem__(self, code: str) -> Unit:
        return self._units[code]

    def codes(self) -> list[str]:
        return list(self._units)
