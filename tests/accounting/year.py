"""A year of monthly reports per industry, and the annual examples built from them.

Each month is the industry's monthly example scaled by a seasonal factor: every extensive
quantity (masses, volumes, energy, emissions) is multiplied and rounded back to its reported
places (GB/T 8170), parameters and intensities stay, running hours are capped by the month's
length. Every formula of the monthly rules is linear in the activity data, so each month still
passes every rule. `python -m tests.accounting.year` writes spec/examples/annual-report-*.json
from these months with cedx.accounting.annual.aggregate (then run `make generate`).
"""

from __future__ import annotations

import calendar
import copy
import json
import uuid
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from cedx.accounting import annual

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "spec" / "examples"
YEAR = 2025
#: seasonal activity factors, January to December (winter heating and summer peaks)
SEASON = ["1.00", "0.84", "0.93", "0.86", "0.90", "0.95", "1.00", "0.99", "0.91", "0.88", "0.92", "0.97"]
EXTENSIVE = {"t", "kg", "1e4Nm3", "Nm3", "m3", "GJ", "MWh", "kWh", "tCO2", "tCO2e", "tCH4", "tN2O", "tce"}
INDUSTRIES = {"power": "power", "cement": "cement", "steel": "steel", "coal": "coal_mining", "chemical": "chemical"}
NAMESPACE = uuid.UUID("7f1c2a9e-3b4d-4e5f-8a6b-1c2d3e4f5a6b")
# reportId of the annual example already referenced by receipt-annual.json (kept stable)
ANNUAL_IDS = {"power": "f6a7b8c9-4d5e-4f6a-9b2c-3d4e5f6a7b82"}


def _scale(node: Any, k: Decimal, hours: int) -> Any:
    if isinstance(node, list):
        return [_scale(x, k, hours) for x in node]
    if not isinstance(node, dict):
        return node
    if "value" in node and "unit" in node and "source" not in node and isinstance(node["value"], str):
        value = Decimal(node["value"])
        places = len(node["value"].split(".")[1]) if "." in node["value"] else 0
        if node["unit"] in EXTENSIVE:
            value *= k
        elif node["unit"] == "h":
            value = min(value, Decimal(hours))
        else:
            return dict(node)
        return {**node, "value": format(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN), "f")}
    return {key: _scale(v, k, hours) for key, v in node.items()}


def source_example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / f"monthly-report-{name}.json").read_text(encoding="utf-8"))["payload"]


def month_of(name: str, month: int, year: int = YEAR) -> dict[str, Any]:
    """The industry's monthly example as month ``month`` of ``year``."""
    base = source_example(name)
    hours = calendar.monthrange(year, month)[1] * 24
    payload = _scale(copy.deepcopy(base), Decimal(SEASON[month - 1]), hours)
    period = f"{year}-{month:02d}"
    payload["period"] = period
    payload["reportId"] = str(uuid.uuid5(NAMESPACE, f"{payload['creditCode']}:{period}:report"))
    end_year, end_month = (year + 1, 1) if month == 12 else (year, month + 1)
    payload["preparedAt"] = f"{end_year}-{end_month:02d}-05T10:30:00+08:00"
    payload.pop("evidence", None)  # acquisition batches belong to the example's own month
    for unit in payload.get("power", {}).get("units", []):  # load factor = generation / (capacity × hours run)
        if "loadFactor" in unit and Decimal(unit["runningHours"]["value"]):
            load = Decimal(unit["grossGeneration"]["value"]) / (Decimal(unit["capacity"]["value"])
                                                                * Decimal(unit["runningHours"]["value"])) * 100
            unit["loadFactor"] = {**unit["loadFactor"], "value": format(load.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN), "f")}
    return payload


def submission_id(credit_code: str, period: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{credit_code}:{period}:submission"))


def year_of(name: str, year: int = YEAR) -> list[dict[str, Any]]:
    return [month_of(name, m, year) for m in range(1, 13)]


def annual_of(name: str, months: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    months = months or year_of(name)
    code = months[0]["creditCode"]
    return annual.aggregate(
        months, report_id=ANNUAL_IDS.get(name) or str(uuid.uuid5(NAMESPACE, f"{code}:{YEAR}:annual")),
        prepared_at=f"{YEAR + 1}-03-20T10:00:00+08:00",
        submission_ids={m["period"]: submission_id(code, m["period"]) for m in months})


def main() -> None:
    for name in INDUSTRIES:
        doc = {"specVersion": "1.0", "payload": annual_of(name), "signature": {"signingTime": f"{YEAR + 1}-03-20T02:01:00Z"}}
        path = EXAMPLES / f"annual-report-{name}.json"
        path.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        print("wrote", path.relative_to(ROOT))


if __name__ == "__main__":
    main()
