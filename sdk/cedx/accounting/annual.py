"""The annual report from the monthly reports (rules R-ANN-001..012).

:func:`aggregate` builds an AnnualReport payload from the year's monthly reports: every annual
quantity is the exact sum of the reported (already rounded, GB/T 8170) monthly values, so the
annual total equals the sum of the monthly totals with no rounding difference at all; weighted
parameters and intensities are computed from the annual sums and rounded once. :func:`check` is
the cross-document rule R-ANN-012: it recomputes those sums from the monthly reports an annual
report references and names every figure that disagrees by more than half a unit of the annual
figure's last place.

Readings where the guidelines are silent (spec/README.md, "cedx's readings"):

* annual as-received NCV, carbon content and oxidation rate: weighted by the monthly coal consumed
  (the annual coal emission is the sum of the monthly ones; coal × C_ar × OF × 44/12 with
  the weighted values only approximates it, so no rule equates them);
* annual heat-supply ratio: weighted by the monthly unit emission, r = Σ(E_m·r_m) / ΣE_m, so that
  the annual heat-related and power-related emissions are the sums of the monthly ones and the
  annual intensities follow from the same formulas as the monthly ones (PWR-2022 4.6);
* carbon content of a steel product: weighted by the monthly output; CaO and MgO contents of
  clinker (and their non-carbonate parts): weighted by the monthly clinker output.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from .. import spec
from ..generated.constants import SECTION_OF_INDUSTRY

__all__ = ["Disagreement", "aggregate", "check"]

Q = dict[str, Any]  # a Quantity or Parameter as JSON: {"value": "1.50", "unit": "t", ...}

#: EmissionTotals categories, in schema order
CATEGORIES = ("combustion", "process", "purchasedElectricity", "purchasedHeat", "exportedElectricity", "exportedHeat",
              "carbonFixed", "fugitive", "flare", "co2Recovered", "total")


@dataclass(frozen=True)
class Disagreement:
    rule: str
    path: str        # JSONPath of the annual figure
    message: str


# --- decimal helpers ----------------------------------------------------------------------------
def _dec(q: Q) -> Decimal:
    return Decimal(q["value"])


def _places(value: str) -> int:
    return len(value.split(".")[1]) if "." in value else 0


def _text(d: Decimal, places: int) -> str:
    return format(d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN), "f")


def _total(items: Iterable[Q | None]) -> Q | None:
    """The exact sum of quantities of one unit (None when there are none)."""
    qs = [q for q in items if q is not None]
    if not qs:
        return None
    units = {q["unit"] for q in qs}
    if len(units) != 1:
        raise ValueError(f"cannot add quantities in different units {sorted(units)}")
    places = max(_places(q["value"]) for q in qs)
    return {"value": _text(sum((_dec(q) for q in qs), Decimal(0)), places), "unit": qs[0]["unit"]}


def _weighted(pairs: list[tuple[Q | None, Q | None]], reference: str) -> Q | None:
    """A parameter weighted by a quantity: Σ(w·p)/Σw, rounded to the parameters' places."""
    given = [(w, p) for w, p in pairs if w is not None and p is not None]
    if not given:
        return None
    units = {p["unit"] for _, p in given}
    if len(units) != 1:
        raise ValueError(f"cannot weight parameters in different units {sorted(units)}")
    weight = sum((_dec(w) for w, _ in given), Decimal(0))
    places = max(_places(p["value"]) for _, p in given)
    value = sum((_dec(w) * _dec(p) for w, p in given), Decimal(0)) / weight if weight else _dec(given[0][1])
    return {"value": _text(value, places), "unit": given[0][1]["unit"], "source": "calculated", "reference": reference}


def _fraction(monthly: list[Q], value: Decimal) -> tuple[str, str]:
    """A dimensionless annual ``value`` (a fraction) written as the months write it: in % when
    every month does, otherwise as a fraction with as many significant places as the most
    precise month (a month's 8.30 % is 0.0830), so no precision is lost either way."""
    percent = all(q["unit"] == "%" for q in monthly)
    if percent:
        return _text(value * 100, max(_places(q["value"]) for q in monthly)), "%"
    places = max(_places(q["value"]) + (2 if q["unit"] == "%" else 0) for q in monthly)
    return _text(value, places), "1"


def _si(q: Q) -> Decimal:
    return spec.index().units[q["unit"]].to_si(_dec(q))


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        out[key] = value


def _group(items: Iterable[dict[str, Any]], key: Callable[[dict[str, Any]], Any]) -> dict[Any, list[dict[str, Any]]]:
    groups: dict[Any, list[dict[str, Any]]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


# --- aggregate ------------------------------------------------------------------------------------
def _wire(document: Any) -> Any:
    """A payload as JSON: models (``client.get_monthly_report(id).payload``) are dumped in the
    wire form the functions below read (camelCase members, decimals as strings)."""
    if hasattr(document, "model_dump"):
        return document.model_dump(mode="json", by_alias=True, exclude_none=True, warnings=False)
    return document


def aggregate(monthlies: list[Any], *, report_id: str, prepared_at: str,
              submission_ids: dict[str, str] | None = None) -> dict[str, Any]:
    """An AnnualReport payload from the year's MonthlyReport payloads (one per month, in any
    order; the accepted version of each; JSON or ``cedx.models.MonthlyReport``). ``submission_ids``
    maps a period to the platform's submission ID of that monthly report (the references of `months`)."""
    monthlies = [_wire(m) for m in monthlies]
    if not monthlies:
        raise ValueError("no monthly reports")
    months = sorted(monthlies, key=lambda m: m["period"])
    first = months[0]
    years = {m["period"][:4] for m in months}
    if len(years) != 1 or len({m["period"] for m in months}) != len(months):
        raise ValueError("the monthly reports must be distinct months of one year")
    if len({(m["creditCode"], m["industry"]) for m in months}) != 1:
        raise ValueError("the monthly reports must be one entity's, of one industry")
    out: dict[str, Any] = {
        "reportId": report_id, "creditCode": first["creditCode"], "entityName": months[-1]["entityName"],
        "industry": first["industry"], "year": int(years.pop()), "submissionKind": "original", "preparedAt": prepared_at,
        "months": [],
    }
    for m in months:
        summary: dict[str, Any] = {"period": m["period"]}
        if submission_ids and m["period"] in submission_ids:
            summary["submissionId"] = submission_ids[m["period"]]
        summary["totalEmission"] = m["totals"]["total"]
        summary["totals"] = m["totals"]
        out["months"].append(summary)
    totals: dict[str, Any] = {}
    for category in CATEGORIES:
        _put(totals, category, _total(m["totals"].get(category) for m in months))
    out["totals"] = totals
    section = SECTION_OF_INDUSTRY[first["industry"]]
    builder = _SECTIONS[section]
    out[section] = builder([m[section] for m in months], [m["period"] for m in months])
    return copy.deepcopy(out)  # shares nothing with the monthly payloads


def _power(sections: list[dict[str, Any]], periods: list[str]) -> dict[str, Any]:
    units: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for period, section in zip(periods, sections):
        for unit in section["units"]:
            units.setdefault(unit["unitId"], []).append((period, unit))
    out = []
    for unit_id, rows in units.items():
        us = [u for _, u in rows]
        last = us[-1]
        a: dict[str, Any] = {"unitId": unit_id, "fuelCategory": last["fuelCategory"], "capacity": last["capacity"]}
        _put(a, "coalConsumption", _total(u.get("coalConsumption") for u in us))
        weight = "按月燃煤量加权 / weighted by the monthly coal consumed"
        _put(a, "ncvAsReceived", _weighted([(u.get("coalConsumption"), u.get("ncvAsReceived")) for u in us], weight))
        _put(a, "carbonContentAsReceived",
             _weighted([(u.get("coalConsumption"), u.get("carbonContentAsReceived")) for u in us], weight))
        _put(a, "oxidationRate", _weighted([(u.get("coalConsumption"), u.get("oxidationRate")) for u in us], weight))
        _put(a, "combustionEmission", _total(u.get("combustionEmission") for u in us))
        _put(a, "otherFuelEmission", _total(f["emission"] for u in us for f in u.get("fuels", [])))
        emission = _total(u["unitEmission"] for u in us)
        assert emission is not None
        a["unitEmission"] = emission
        for key in ("grossGeneration", "powerSupplied", "heatSupplied", "runningHours"):
            a[key] = _total(u[key] for u in us)
        hours_run = _dec(a["capacity"]) * _dec(a["runningHours"])
        if hours_run and any("loadFactor" in u for u in us):
            load = _dec(a["grossGeneration"]) / hours_run  # MWh / (MW × h)
            value, unit = _fraction([u["loadFactor"] for u in us if "loadFactor" in u], load)
            a["loadFactor"] = {"value": value, "unit": unit, "source": "calculated",
                               "reference": "发电量 /（装机容量 × 运行小时数） / generation / (capacity × hours run)"}
        # Annual heat-supply ratio weighted by the monthly unit emission (module docstring).
        heat_emission = sum((_dec(u["unitEmission"]) * _si(u["heatSupplyRatio"]) for u in us), Decimal(0))
        ratio = heat_emission / _dec(emission) if _dec(emission) else Decimal(0)
        ratio_text, ratio_unit = _fraction([u["heatSupplyRatio"] for u in us], ratio)
        a["heatSupplyRatio"] = {"value": ratio_text, "unit": ratio_unit, "source": "calculated",
                                "reference": "PWR-2022 4.6；按月机组排放量加权 / weighted by the monthly unit emission"}
        r = Decimal(ratio_text) / (100 if ratio_unit == "%" else 1)
        supplied, heat = _dec(a["powerSupplied"]), _dec(a["heatSupplied"])
        ip_places = max(_places(u["intensityPowerSupplied"]["value"]) for u in us)
        if supplied:
            a["intensityPowerSupplied"] = {"value": _text(_dec(emission) * (1 - r) / supplied, ip_places), "unit": "tCO2/MWh"}
        else:
            a["intensityPowerSupplied"] = {"value": _text(Decimal(0), ip_places), "unit": "tCO2/MWh"}
        if heat > 0:
            ih = [u["intensityHeatSupplied"]["value"] for u in us if "intensityHeatSupplied" in u]
            a["intensityHeatSupplied"] = {"value": _text(_dec(emission) * r / heat, max(map(_places, ih)) if ih else 4),
                                          "unit": "tCO2/GJ"}
        a["months"] = []
        for period, u in rows:
            month: dict[str, Any] = {"period": period}
            for key in ("coalConsumption", "combustionEmission", "unitEmission", "grossGeneration", "powerSupplied",
                        "heatSupplied", "runningHours"):
                _put(month, key, u.get(key))
            a["months"].append(month)
        out.append(a)
    return {"units": out}


def _cement(sections: list[dict[str, Any]], periods: list[str]) -> dict[str, Any]:
    lines = _group((line for s in sections for line in s["lines"]), lambda line: line["lineId"])
    out_lines = []
    for line_id, ls in lines.items():
        a: dict[str, Any] = {"lineId": line_id}
        for key in ("clinkerOutput", "kilnDust", "bypassDust", "rawMealConsumption", "processEmission",
                    "kilnDustEmission", "bypassDustEmission", "organicCarbonEmission"):
            _put(a, key, _total(line.get(key) for line in ls))
        for key in ("caoContent", "caoNonCarbonate", "mgoContent", "mgoNonCarbonate"):
            _put(a, key, _weighted([(line["clinkerOutput"], line.get(key)) for line in ls],
                                   "按月熟料产量加权 / weighted by the monthly clinker output"))
        _put(a, "alternativeFuelEmission", _total(f["fossilEmission"] for line in ls for f in line.get("alternativeFuels", [])))
        if _dec(a["clinkerOutput"]):
            a["clinkerEmissionFactor"] = {"value": _text(_dec(a["processEmission"]) / _dec(a["clinkerOutput"]), 4),
                                          "unit": "tCO2/t"}
        out_lines.append(a)
    out: dict[str, Any] = {"clinkerOutput": _total(line["clinkerOutput"] for line in out_lines)}
    _put(out, "cementOutput", _total(s.get("cementOutput") for s in sections))
    out["lines"] = out_lines
    return out


def _steel(sections: list[dict[str, Any]], periods: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"processes": []}
    for code, ps in _group((p for s in sections for p in s["processes"]), lambda p: p["processCode"]).items():
        p: dict[str, Any] = {"processCode": code, "output": _total(x["output"] for x in ps)}
        _put(p, "emission", _total(x.get("emission") for x in ps))
        out["processes"].append(p)
    _put(out, "fluxEmission", _total(f["emission"] for s in sections for f in s.get("fluxes", [])))
    _put(out, "electrodeEmission", _total(s["electrodes"]["emission"] for s in sections if "electrodes" in s))
    _put(out, "purchasedMaterialEmission", _total(m["emission"] for s in sections for m in s.get("purchasedMaterials", [])))
    out["processEmission"] = _total(s["processEmission"] for s in sections)
    out["carbonFixed"] = []
    for code, cs in _group((c for s in sections for c in s["carbonFixed"]), lambda c: c["productCode"]).items():
        out["carbonFixed"].append({
            "productCode": code, "output": _total(c["output"] for c in cs),
            "carbonContent": _weighted([(c["output"], c["carbonContent"]) for c in cs],
                                       "按月产量加权 / weighted by the monthly output"),
            "fixedEmission": _total(c["fixedEmission"] for c in cs)})
    out["carbonFixedTotal"] = _total(s["carbonFixedTotal"] for s in sections)
    return out


def _coal(sections: list[dict[str, Any]], periods: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"mineType": sections[-1]["mineType"]}
    for key in ("rawCoalOutput", "ch4Drainage", "ch4Utilised", "ch4Flared", "ch4Emission", "postMiningCH4", "fugitiveCH4"):
        _put(out, key, _total(s.get(key) for s in sections))
    out["gwp"] = sections[-1]["gwp"]
    if len({s["gwp"]["value"] for s in sections}) != 1:
        raise ValueError("the months use different GWP values")
    for key in ("co2Escape", "fugitiveCO2e", "flareCO2"):
        _put(out, key, _total(s.get(key) for s in sections))
    return out


def _recovered(sections: list[dict[str, Any]], use: str) -> Q | None:
    rows = [r for s in sections for r in s.get("co2Recovered", []) if r["use"] == use]
    if not rows:
        return None
    # quantity × purity per month, rounded to the emission precision (3 places), then summed
    return _total({"value": _text(_dec(r["quantity"]) * _si(r["purity"]), 3), "unit": "tCO2"} for r in rows)


def _chemical(sections: list[dict[str, Any]], periods: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"massBalanceEmission": _total(s["massBalanceEmission"] for s in sections)}
    _put(out, "carbonateEmission", _total(c["emission"] for s in sections for c in s.get("carbonates", [])))
    out["n2oProcesses"] = []
    groups = _group((p for s in sections for p in s["n2oProcesses"]), lambda p: (p["processCode"], p["technology"]))
    for (code, technology), ps in groups.items():
        if len({p["gwp"]["value"] for p in ps}) != 1:
            raise ValueError("the months use different GWP values")
        out["n2oProcesses"].append({
            "processCode": code, "technology": technology, "production": _total(p["production"] for p in ps),
            "n2oEmission": _total(p["n2oEmission"] for p in ps), "gwp": ps[-1]["gwp"], "co2e": _total(p["co2e"] for p in ps)})
    _put(out, "flareEmission", _total(f["emission"] for s in sections for f in s.get("flares", [])))
    _put(out, "co2RecoveredExported", _recovered(sections, "exported"))
    _put(out, "co2RecoveredInternal", _recovered(sections, "internal_feedstock"))
    return out


_SECTIONS: dict[str, Callable[[list[dict[str, Any]], list[str]], dict[str, Any]]] = {
    "power": _power, "cement": _cement, "steel": _steel, "coalMining": _coal, "chemical": _chemical}


# --- check (R-ANN-012) ------------------------------------------------------------------------------
def check(annual: Any, monthlies: list[Any]) -> list[Disagreement]:
    """Compare an AnnualReport payload with the MonthlyReport payloads it references (the
    accepted version of each month; signatures verified by whoever fetched them). Every figure
    of the annual report that :func:`aggregate` would compute as a sum is recomputed from the
    months and must agree to half a unit of the annual figure's last place; weighted parameters
    (NCV, carbon content, oxidation rate, heat-supply ratio, CaO/MgO, product carbon), capacity
    and load factor are recomputed the same way and agree to the two sides' rounding; the
    intensities follow from them by the document rule R-ANN-007. JSON payloads or models."""
    annual, monthlies = _wire(annual), [_wire(m) for m in monthlies]
    out: list[Disagreement] = []
    by_period = {m["period"]: m for m in monthlies}
    for i, summary in enumerate(annual.get("months", [])):
        monthly = by_period.get(summary["period"])
        if monthly is None:
            out.append(Disagreement("R-ANN-012", f"$.months[{i}]", f"no monthly report for {summary['period']}"))
            continue
        _compare(out, f"$.months[{i}].totalEmission", summary["totalEmission"], monthly["totals"]["total"])
        for category, q in summary.get("totals", {}).items():
            _compare(out, f"$.months[{i}].totals.{category}", q, monthly["totals"].get(category))
    listed = [by_period[s["period"]] for s in annual.get("months", []) if s["period"] in by_period]
    if not listed:
        return out
    for m in listed:
        if (m["creditCode"], m["industry"]) != (annual["creditCode"], annual["industry"]) \
                or not m["period"].startswith(f"{annual['year']}-"):
            out.append(Disagreement("R-ANN-012", "$", f"the monthly report for {m['period']} is not this entity's, "
                                    "industry's or year's"))
            return out
    try:
        expected = aggregate(listed, report_id=annual["reportId"], prepared_at=annual["preparedAt"])
    except ValueError as exc:  # e.g. one quantity in different units in different months
        out.append(Disagreement("R-ANN-012", "$", f"the monthly reports cannot be added up: {exc}"))
        return out
    for category, q in annual.get("totals", {}).items():
        _compare(out, f"$.totals.{category}", q, expected["totals"].get(category))
    section = SECTION_OF_INDUSTRY.get(annual["industry"])
    if section and section in annual:
        _compare_tree(out, f"$.{section}", annual[section], expected.get(section))
    return out


#: members computed from the annual figures by a formula the document rules check
#: (intensities R-ANN-007; the clinker factor R-ANN-008), or constants: not recomputed here
_DERIVED = {"intensityPowerSupplied", "intensityHeatSupplied", "clinkerEmissionFactor", "gwp"}
#: weighted (or carried) members: recomputed from the months by :func:`aggregate` and compared,
#: both sides rounded, to half a unit of the last place of each (their sum is the tolerance)
_WEIGHTED = {"ncvAsReceived", "carbonContentAsReceived", "oxidationRate", "heatSupplyRatio", "carbonContent",
             "capacity", "loadFactor", "caoContent", "caoNonCarbonate", "mgoContent", "mgoNonCarbonate"}
#: keys identifying the members of a list, so that the order of the annual report does not matter
_IDS = ("unitId", "lineId", "processCode", "productCode", "period")


def _compare_tree(out: list[Disagreement], path: str, actual: Any, expected: Any) -> None:
    if isinstance(actual, dict) and "value" in actual and "unit" in actual:
        _compare(out, path, actual, expected)
    elif isinstance(actual, dict):
        if not isinstance(expected, dict):
            out.append(Disagreement("R-ANN-012", path, "not in the monthly reports"))
            return
        for key, value in actual.items():
            if key in _DERIVED:
                continue
            if key in _WEIGHTED:
                if isinstance(value, dict) and "value" in value and isinstance(expected.get(key), dict):
                    _compare(out, f"{path}.{key}", value, expected[key], both_rounded=True)
                continue
            if key not in expected and isinstance(value, (dict, list)):
                if not _is_zero(value):
                    out.append(Disagreement("R-ANN-012", f"{path}.{key}", "not in the monthly reports"))
                continue
            _compare_tree(out, f"{path}.{key}", value, expected.get(key))
        for key, value in expected.items():  # what the months have and the annual report leaves out
            if key not in actual and key not in _DERIVED and key not in _WEIGHTED and not _is_zero(value):
                out.append(Disagreement("R-ANN-012", f"{path}.{key}", "in the monthly reports but missing here"))
    elif isinstance(actual, list):
        expected_list = expected if isinstance(expected, list) else []
        for i, item in enumerate(actual):
            match = _match(item, expected_list)
            if match is None:
                out.append(Disagreement("R-ANN-012", f"{path}[{i}]", "no such member in the monthly reports"))
            else:
                _compare_tree(out, f"{path}[{i}]", item, match)
        for item in expected_list:
            if _match(item, actual) is None:
                ids = ", ".join(f"{k} {item[k]}" for k in _IDS if isinstance(item, dict) and k in item)
                out.append(Disagreement("R-ANN-012", path, f"the monthly reports have {ids or 'a member'} missing here"))
    elif expected is not None and actual != expected:
        out.append(Disagreement("R-ANN-012", path, f"{actual!r} differs from the monthly reports ({expected!r})"))


def _is_zero(value: Any) -> bool:
    return isinstance(value, dict) and "value" in value and "unit" in value and Decimal(value["value"]) == 0


def _match(item: Any, candidates: list[Any]) -> Any:
    if not isinstance(item, dict):
        return None
    ids = [k for k in _IDS if k in item]
    for c in candidates:
        if isinstance(c, dict) and all(c.get(k) == item[k] for k in ids) and ("technology" not in item
                                                                            or c.get("technology") == item["technology"]):
            return c
    return None


def _compare(out: list[Disagreement], path: str, actual: Q | None, expected: Q | None,
             both_rounded: bool = False) -> None:
    if actual is None and expected is None:
        return
    if actual is None or expected is None:
        if (actual is not None and _dec(actual) == 0) or (expected is not None and _dec(expected) == 0):
            return  # a zero category may be stated or left out
        out.append(Disagreement("R-ANN-012", path, "present in only one of the annual report and the monthly reports"))
        return
    units = spec.index().units
    try:
        a, e = _si(actual), _si(expected)
        tolerance = units[actual["unit"]].to_si(Decimal(5).scaleb(-(_places(actual["value"]) + 1)))
        if both_rounded:  # a weighted value rounded on both sides: each may be off by half a unit
            tolerance += units[expected["unit"]].to_si(Decimal(5).scaleb(-(_places(expected["value"]) + 1)))
    except (KeyError, TypeError):
        out.append(Disagreement("R-ANN-012", path, f"unit {actual['unit']} or {expected['unit']} unknown"))
        return
    if abs(a - e) > tolerance:
        out.append(Disagreement("R-ANN-012", path, f"reported {actual['value']} {actual['unit']}, the monthly reports "
                                f"give {expected['value']} {expected['unit']}"))
