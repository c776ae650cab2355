"""The accounting factor table (spec/tables/factors.yaml, bundled as ``x-cedx-factors``).

Every default, published factor, constant and reported precision the accounting code uses comes
from here, and every Parameter it emits names the table version and row it came from, so a
revision of a factor is one edit in the spec and a verifier can see which edition was applied.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from typing import Any

from .. import spec
from ..spec.rules import factor_row


class FactorTable:
    def __init__(self, bundled: dict[str, Any] | None = None):
        self.spec = bundled if bundled is not None else spec.bundled_spec()
        self.table: dict[str, Any] = self.spec["x-cedx-factors"]
        self.version: str = self.table["version"]

    # --- raw rows ---------------------------------------------------------------------------
    def row(self, key: str) -> dict[str, Any]:
        return factor_row(self.spec, key)

    def value(self, key: str) -> Decimal:
        return Decimal(self.row(key)["value"])

    def ratio(self, key: str) -> Decimal:
        """A stoichiometric ratio such as constants.c_to_co2 (44/12), exact to 28 digits."""
        r = self.row(f"constants.{key}")
        return Decimal(r["numerator"]) / Decimal(r["denominator"])

    def reference(self, key: str, row: dict[str, Any] | None = None) -> str:
        row = row or self.row(key)
        where = f" {row['clause']}" if row.get("clause") else ""
        return f"因子表 / factor table {self.version} {key} ({row.get('set', '')}{where}){_flag(row)}"

    # --- parameters as they appear in reports ------------------------------------------------
    def parameter(self, key: str, source: str = "default") -> dict[str, Any]:
        row = self.row(key)
        return {"value": row["value"], "unit": row["unit"], "source": source, "reference": self.reference(key, row)[:500]}

    def fuel(self, fuel: str, guideline: str) -> dict[str, dict[str, Any]]:
        """Default NCV, carbon content and oxidation rate of a fuel in one guideline's table."""
        rows = [r for r in self.table["fuels"] if r["fuel"] == fuel and r["set"] == guideline]
        if not rows:
            raise KeyError(f"no default for {fuel} in {guideline}")
        r = rows[0]
        ref = f"因子表 / factor table {self.version} fuels {guideline}/{fuel} ({r['clause']}){_flag(r)}"
        return {k: {**r[k], "source": "default", "reference": ref} for k in ("ncv", "carbonContent", "oxidationRate")}

    def grid(self, year: int, kind: str = "national_average") -> dict[str, Any]:
        rows = [r for r in self.table["grid"] if r["year"] == year and r["kind"] == kind]
        if not rows:
            raise KeyError(f"no grid factor for {year} ({kind})")
        r = rows[0]
        return {"value": r["value"], "unit": "tCO2/MWh", "source": "regulator_published",
                "reference": f"因子表 / factor table {self.version} grid {year}/{kind} ({r['set']}){_flag(r)}"}

    def gwp(self, gas: str, assessment: str) -> dict[str, Any]:
        key = f"gwp.{gas}.{assessment}"
        r = self.row(key)
        return {"value": r["value"], "unit": "1", "source": "default",
                "reference": f"因子表 / factor table {self.version} {key}{_flag(r)}"}

    def places(self, item: str) -> int:
        rows = [r for r in self.table["precision"] if r["item"] == item]
        if not rows:
            raise KeyError(f"no precision for {item}")
        return int(rows[0]["places"])


def _flag(row: dict[str, Any]) -> str:
    """Values the table marks unconfirmed say so wherever they are used."""
    return " 未核实 / unconfirmed" if row.get("status") == "unconfirmed" else ""


@cache
def table() -> FactorTable:
    return FactorTable()
