"""Monthly reports for power and cement from measured totals, with the guideline formulas.

Every parameter records where it came from (measured, default, regulator_published,
calculated) with its reference, as the spec requires; defaults and published factors are data
here, each with its source note, so a revision is one edit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from ..generated import models

C_TO_CO2 = Decimal(44) / Decimal(12)
CAO_TO_CO2 = Decimal(44) / Decimal(56)
MGO_TO_CO2 = Decimal(44) / Decimal(40)

#: Published and default factors [check against the current guidelines before production use].
GRID_FACTOR = ("0.5306", "tCO2/MWh", "regulator_published", "生态环境部 2023 年度全国电力平均二氧化碳排放因子")
COAL_OXIDATION_POWER = ("0.99", "1", "default", "发电设施核算指南（2022 年修订版）缺省值")
COAL_CC_DEFAULT = ("0.02618", "tC/GJ", "default", "核算指南缺省值（烟煤单位热值含碳量）")
COAL_OXIDATION_DEFAULT = ("0.98", "1", "default", "核算指南缺省值")
KILN_DUST_CALCINATION = ("1", "1", "default", "水泥生产核算指南缺省值")
RAW_MEAL_ORGANIC_C = ("0.10", "%", "default", "水泥生产核算指南缺省值")


def _q(value: Decimal, unit: str, places: str = "0.001") -> dict:
    return {"value": str(value.quantize(Decimal(places), ROUND_HALF_UP)), "unit": unit}


def _p(value: str, unit: str, source: str, reference: str | None = None) -> dict:
    out = {"value": value, "unit": unit, "source": source}
    if reference:
        out["reference"] = reference
    return out


def _frac(param: dict) -> Decimal:
    v = Decimal(param["value"])
    return v / 100 if param["unit"] == "%" else v


@dataclass
class Lab:
    """Monthly laboratory results (measured) entered by the plant."""

    reference: str
    values: dict[str, tuple[str, str]]


def _totals(combustion: Decimal, process: Decimal, electricity: Decimal) -> dict:
    return {"combustion": _q(combustion, "tCO2"), "process": _q(process, "tCO2"),
            "purchasedElectricity": _q(electricity, "tCO2"), "purchasedHeat": _q(Decimal(0), "tCO2"),
            "total": _q(combustion.quantize(Decimal("0.001"), ROUND_HALF_UP) + process.quantize(Decimal("0.001"), ROUND_HALF_UP)
                        + electricity.quantize(Decimal("0.001"), ROUND_HALF_UP), "tCO2")}


def _electricity(mwh: Decimal) -> tuple[dict, Decimal]:
    amount = mwh.quantize(Decimal("0.001"), ROUND_HALF_UP)
    emission = (amount * Decimal(GRID_FACTOR[0])).quantize(Decimal("0.001"), ROUND_HALF_UP)
    return {"amount": _q(amount, "MWh"), "factor": _p(*GRID_FACTOR), "emission": _q(emission, "tCO2")}, emission


def power_report(*, credit_code: str, name: str, period: str, unit_id: str, capacity_mw: str, coal_t: Decimal,
                 generation_mwh: Decimal, supply_mwh: Decimal, running_hours: int, heat_gj: str,
                 grid_mwh: Decimal, lab: Lab, evidence: list[dict], prepared_at: str) -> models.MonthlyReport:
    coal = coal_t.quantize(Decimal("0.01"), ROUND_HALF_UP)
    ncv = _p(*lab.values["ncv"], "measured", lab.reference)
    car = _p(*lab.values["carbon"], "measured", lab.reference)
    of = _p(*COAL_OXIDATION_POWER)
    emission = (coal * _frac(car) * _frac(of) * C_TO_CO2).quantize(Decimal("0.001"), ROUND_HALF_UP)
    gen = generation_mwh.quantize(Decimal("0.001"), ROUND_HALF_UP)
    unit = {"unitId": unit_id, "capacity": {"value": capacity_mw, "unit": "MW"}, "coalConsumption": _q(coal, "t", "0.01"),
            "ncvAsReceived": ncv, "carbonContentAsReceived": car, "oxidationRate": of,
            "combustionEmission": _q(emission, "tCO2"), "grossGeneration": _q(gen, "MWh"),
            "powerSupplied": _q(min(supply_mwh, gen), "MWh"), "heatSupplied": {"value": heat_gj, "unit": "GJ"},
            "runningHours": {"value": str(running_hours), "unit": "h"},
            "loadFactor": _p(str((gen / (Decimal(capacity_mw) * max(running_hours, 1)) * 100).quantize(Decimal("0.01"))), "%", "calculated")}
    flow, pe = _electricity(grid_mwh)
    payload = {"reportId": str(uuid.uuid4()), "creditCode": credit_code, "entityName": name, "industry": "power",
               "period": period, "submissionKind": "original", "preparedAt": prepared_at, "combustion": [],
               "purchasedElectricity": flow, "power": {"units": [unit]}, "evidence": evidence,
               "totals": _totals(emission, Decimal(0), pe)}
    return models.MonthlyReport.model_validate(payload)


def cement_report(*, credit_code: str, name: str, period: str, line_id: str, clinker_t: Decimal, kiln_coal_t: Decimal,
                  raw_meal_t: Decimal, kiln_dust_t: str, grid_mwh: Decimal, lab: Lab, evidence: list[dict],
                  prepared_at: str) -> models.MonthlyReport:
    clinker = clinker_t.quantize(Decimal("0.01"), ROUND_HALF_UP)
    meal = raw_meal_t.quantize(Decimal("0.01"), ROUND_HALF_UP)
    cao, cao_nc = _p(*lab.values["cao"], "measured", lab.reference), _p(*lab.values["cao_nc"], "measured", lab.reference)
    mgo, mgo_nc = _p(*lab.values["mgo"], "measured", lab.reference), _p(*lab.values["mgo_nc"], "measured", lab.reference)
    factor = (_frac(cao) - _frac(cao_nc)) * CAO_TO_CO2 + (_frac(mgo) - _frac(mgo_nc)) * MGO_TO_CO2
    calcination, organic = _p(*KILN_DUST_CALCINATION), _p(*RAW_MEAL_ORGANIC_C)
    proc = (clinker * factor).quantize(Decimal("0.001"), ROUND_HALF_UP)
    dust = (Decimal(kiln_dust_t) * factor * _frac(calcination)).quantize(Decimal("0.001"), ROUND_HALF_UP)
    org = (meal * _frac(organic) * C_TO_CO2).quantize(Decimal("0.001"), ROUND_HALF_UP)
    coal = kiln_coal_t.quantize(Decimal("0.01"), ROUND_HALF_UP)
    ncv, cc, of = _p(*lab.values["coal_ncv"], "measured", lab.reference), _p(*COAL_CC_DEFAULT), _p(*COAL_OXIDATION_DEFAULT)
    coal_e = (coal * Decimal(ncv["value"]) * Decimal(cc["value"]) * Decimal(of["value"]) * C_TO_CO2).quantize(Decimal("0.001"), ROUND_HALF_UP)
    flow, pe = _electricity(grid_mwh)
    payload = {"reportId": str(uuid.uuid4()), "creditCode": credit_code, "entityName": name, "industry": "cement",
               "period": period, "submissionKind": "original", "preparedAt": prepared_at,
               "combustion": [{"sourceId": "CEM-KILN-COAL", "fuelCode": "bituminous_coal", "consumption": _q(coal, "t", "0.01"),
                               "ncv": ncv, "carbonContent": cc, "oxidationRate": of, "emission": _q(coal_e, "tCO2")}],
               "purchasedElectricity": flow,
               "cement": {"lines": [{"lineId": line_id, "clinkerOutput": _q(clinker, "t", "0.01"), "caoContent": cao,
                                     "caoNonCarbonate": cao_nc, "mgoContent": mgo, "mgoNonCarbonate": mgo_nc,
                                     "kilnDust": {"value": kiln_dust_t, "unit": "t"}, "kilnDustCalcination": calcination,
                                     "rawMealConsumption": _q(meal, "t", "0.01"), "rawMealOrganicCarbon": organic,
                                     "processEmission": _q(proc, "tCO2"), "kilnDustEmission": _q(dust, "tCO2"),
                                     "organicCarbonEmission": _q(org, "tCO2")}]},
               "evidence": evidence, "totals": _totals(coal_e, proc + dust + org, pe)}
    return models.MonthlyReport.model_validate(payload)
