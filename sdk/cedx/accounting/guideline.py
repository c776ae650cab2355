"""Monthly reports from activity data and lab results, with the guideline formulas.

Every default, published factor and constant comes from the factor table
(spec/tables/factors.yaml via :mod:`cedx.accounting.factors`); none is typed here. Every
parameter records where it came from (measured → a lab report in ``labEvidence``; default or
regulator_published → the table version and row; calculated → the formula), gaps in metered
data and missing tests are recorded as data gaps, and reported values are rounded once per
GB/T 8170 to the table's precision.

Power generation follows PWR-2022 (E = FC × C_ar × OF × 44/12, C_ar converted from the tested
basis; without a carbon test C_ar = NCV_ar × 0.03085 tC/GJ, the conservative default);
cement, iron and steel, coal production and chemicals follow the 2015 industry guidelines.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .. import trust
from ..generated import models
from .factors import FactorTable, table
from .rounding import text
from .series import MonthTotal


def _frac(param: dict[str, Any]) -> Decimal:
    v = Decimal(param["value"])
    return v / 100 if param["unit"] in ("%", "%vol") else v


def _q(value: Decimal, unit: str, item: str = "emission", t: FactorTable | None = None) -> dict[str, Any]:
    return {"value": text(value, (t or table()).places(item)), "unit": unit}


def _p(value: str, unit: str, source: str, reference: str | None = None, lab: str | None = None) -> dict[str, Any]:
    out = {"value": value, "unit": unit, "source": source}
    if reference:
        out["reference"] = reference
    if lab:
        out["labEvidenceId"] = lab
    return out


# --- evidence records ---------------------------------------------------------------------------
@dataclass
class Attachment:
    attachment_id: str
    kind: str
    title: str
    file_name: str
    media_type: str
    content: bytes

    def record(self) -> dict[str, Any]:
        return {"attachmentId": self.attachment_id, "kind": self.kind, "title": self.title, "fileName": self.file_name,
                "mediaType": self.media_type, "size": len(self.content), "sm3": trust.sm3(self.content).hex(),
                "content": base64.b64encode(self.content).decode()}


@dataclass
class LabReport:
    """One laboratory report (CMA/CNAS), the results it gives, and the file as an attachment."""

    lab_id: str
    laboratory: str
    scheme: str                      # CMA | CNAS | in_house
    accreditation_number: str
    report_number: str
    sample_type: str
    sample_id: str
    preparation_id: str
    sampling_from: str
    sampling_to: str
    analysis_date: str
    standards: list[str]
    values: dict[str, tuple[str, str]] = field(default_factory=dict)
    attachment: Attachment | None = None

    def measured(self, key: str) -> dict[str, Any]:
        value, unit = self.values[key]
        return _p(value, unit, "measured", f"{self.laboratory} {self.report_number}"[:500], self.lab_id)

    def record(self) -> dict[str, Any]:
        out = {"labEvidenceId": self.lab_id, "laboratory": self.laboratory,
               "accreditation": {"scheme": self.scheme, "number": self.accreditation_number},
               "reportNumber": self.report_number, "sampleType": self.sample_type, "sampleId": self.sample_id,
               "preparationId": self.preparation_id, "samplingFrom": self.sampling_from, "samplingTo": self.sampling_to,
               "analysisDate": self.analysis_date, "methodStandards": self.standards}
        if self.attachment:
            out["attachmentId"] = self.attachment.attachment_id
        return out


def evidence_ref(total: MonthTotal, source_id: str, reported_field: str, total_unit: str, item: str) -> dict[str, Any]:
    return {"sourceId": source_id, "pointId": total.point_id, "granularity": "hour",
            "firstSequence": total.first_sequence, "lastSequence": total.last_sequence, "lastBatchDigest": total.last_digest,
            "reportedField": reported_field, "periodStart": total.period_start, "periodEnd": total.period_end,
            "total": _q(total.total, total_unit, item), "validHours": total.valid_hours,
            "substitutedHours": total.substituted_hours, "stoppedHours": total.stopped_hours}


def metered_gaps(total: MonthTotal, parameter: str, total_unit: str, item: str) -> list[dict[str, Any]]:
    """Data-gap records for the substitutions month_total made (rule R-GAP-002)."""
    out = []
    for g in total.gaps:
        out.append({"parameter": parameter, "pointId": total.point_id, "cause": g.cause, "method": g.method,
                    "flags": sorted(g.flags), "hours": g.hours, "values": g.hours,
                    "contribution": _q(g.contribution, total_unit, item),
                    "reference": "PWR-2022 5 数据缺失处理；cedx 保守替代（R-GAP-002） / missing-data handling, conservative substitution"})
    return out


# --- common accounting ---------------------------------------------------------------------------
def fuel_combustion(source_id: str, fuel: str, consumption: Decimal, unit: str, guideline: str, *,
                    ncv: dict[str, Any] | None = None, carbon: dict[str, Any] | None = None, oxidation: dict[str, Any] | None = None) -> dict[str, Any]:
    """E = FC × NCV × CC × OF × 44/12, defaults from the guideline's fuel table unless measured."""
    t = table()
    d = t.fuel(fuel, guideline)
    ncv, carbon, oxidation = ncv or d["ncv"], carbon or d["carbonContent"], oxidation or d["oxidationRate"]
    fc = Decimal(text(consumption, t.places("activity")))
    e = fc * Decimal(ncv["value"]) * Decimal(carbon["value"]) * _frac(oxidation) * t.ratio("c_to_co2")
    return {"sourceId": source_id, "fuelCode": fuel, "consumption": {"value": str(fc), "unit": unit}, "ncv": ncv,
            "carbonContent": carbon, "oxidationRate": oxidation, "emission": _q(e, "tCO2")}


def energy_flow(amount: Decimal, unit: str, factor: dict[str, Any]) -> dict[str, Any]:
    amt = Decimal(text(amount, 3))
    return {"amount": {"value": str(amt), "unit": unit}, "factor": factor,
            "emission": _q(amt * Decimal(factor["value"]), "tCO2")}


def steam_heat(mass_t: Decimal, enthalpy_kj_kg: str, pressure_mpa: str, temperature_c: str) -> dict[str, Any]:
    """Steam tonnes → GJ: AD = Ma × (Enst − 83.74) × 1e-3 (factor table heat.steam_enthalpy_baseline)."""
    base = table().value("heat.steam_enthalpy_baseline")
    heat = mass_t * (Decimal(enthalpy_kj_kg) - base) / 1000
    return {"mass": {"value": text(mass_t, 2), "unit": "t"}, "pressure": {"value": pressure_mpa, "unit": "MPa"},
            "temperature": {"value": temperature_c, "unit": "degC"},
            "enthalpy": _p(enthalpy_kj_kg, "kJ/kg", "calculated", "IAPWS-IF97 蒸汽表 / steam tables"),
            "heat": _q(heat, "GJ", "heat")}


def totals(*, combustion: Decimal, process: Decimal = Decimal(0), electricity: Decimal = Decimal(0),
           heat: Decimal = Decimal(0), fugitive: Decimal | None = None, flare: Decimal | None = None,
           carbon_fixed: Decimal | None = None, co2_recovered: Decimal | None = None,
           exported_electricity: Decimal | None = None, exported_heat: Decimal | None = None) -> dict[str, Any]:
    """Totals from already-rounded parts (so R-TOT-004 holds exactly)."""
    unit_e = "tCO2e" if fugitive is not None else "tCO2"
    out = {"combustion": _q(combustion, "tCO2"), "process": _q(process, unit_e),
           "purchasedElectricity": _q(electricity, "tCO2"), "purchasedHeat": _q(heat, "tCO2")}
    total = combustion + process + electricity + heat
    for key, value, sign in (("exportedElectricity", exported_electricity, -1), ("exportedHeat", exported_heat, -1),
                             ("carbonFixed", carbon_fixed, -1), ("fugitive", fugitive, 1), ("flare", flare, 1),
                             ("co2Recovered", co2_recovered, -1)):
        if value is not None:
            out[key] = _q(value, "tCO2e" if key == "fugitive" else "tCO2")
            total += sign * value
    out["total"] = _q(total, unit_e)
    return out


def _dec(q: dict[str, Any]) -> Decimal:
    return Decimal(q["value"])


# --- power generation (PWR-2022) -----------------------------------------------------------------
@dataclass
class CoalUnit:
    unit_id: str
    capacity_mw: str
    coal_t: Decimal
    generation_mwh: Decimal
    supply_mwh: Decimal
    heat_gj: Decimal
    running_hours: int
    heat_supply_ratio: str                 # calculated by the plant per PWR-2022 4.6
    lab: LabReport | None                  # monthly as-fired coal analysis; None: no test this month
    carbon_basis: str = "air_dried"
    boiler: str = "pulverized_coal"
    pressure: str = "ultra_supercritical"
    cooling: str = "water"
    category: str = "coal"
    measurement: dict[str, Any] | None = None        # CoalMeasurement; default as fired (belt scales)
    fuels: list[dict[str, Any]] = field(default_factory=list)
    biomass: dict[str, Any] | None = None


def coal_unit(u: CoalUnit, gaps: list[dict[str, Any]], index: int) -> dict[str, Any]:
    t = table()
    coal = Decimal(text(u.coal_t, t.places("coal_consumption")))
    of = t.parameter("power.coal_oxidation_rate")
    path = f"power.units[{index}]"
    if u.lab is not None and "carbon" in u.lab.values:
        lab = u.lab
        mt, mad = _frac(lab.measured("mt")), _frac(lab.measured("mad"))
        c = _frac(lab.measured("carbon"))
        c_ar = {"air_dried": c * (1 - mt) / (1 - mad), "dry": c * (1 - mt), "as_received": c}[u.carbon_basis]
        car = _p(text(c_ar * 100, t.places("carbon_content_ar")), "%", "measured",
                 f"{lab.report_number} {u.carbon_basis} → as received (GB/T 483)"[:500], lab.lab_id)
    else:
        # No carbon test: the conservative default C_ar = NCV_ar × 0.03085 tC/GJ (PWR-2022 4.2).
        ncv_v = Decimal(u.lab.values["ncv"][0]) if u.lab else t.value("power.ncv_missing_default")
        c_ar = ncv_v * t.value("power.carbon_per_ncv_default")
        car = _p(text(c_ar, 4), "tC/t", "calculated", "NCV_ar × " + t.reference("power.carbon_per_ncv_default")[:400])
        gaps.append({"parameter": f"{path}.carbonContentAsReceived", "cause": "test_missing", "method": "conservative_default",
                     "values": 1, "substitute": t.parameter("power.carbon_per_ncv_default"),
                     "reference": "PWR-2022 4.2 未实测元素碳含量 / carbon not tested"})
    if u.lab is not None:
        ncv = u.lab.measured("ncv")
    else:
        ncv = t.parameter("power.ncv_missing_default")
        gaps.append({"parameter": f"{path}.ncvAsReceived", "cause": "test_missing", "method": "conservative_default",
                     "values": 1, "substitute": ncv, "reference": "PWR-2022 4.2 未实测低位发热量 / NCV not tested"})
    e_coal = Decimal(text(coal * _frac(car) * _frac(of) * t.ratio("c_to_co2"), t.places("emission")))
    e_unit = e_coal + sum((_dec(f["emission"]) for f in u.fuels), Decimal(0))
    gen = Decimal(text(u.generation_mwh, t.places("generation")))
    supply = Decimal(text(min(u.supply_mwh, gen), t.places("generation")))
    heat = Decimal(text(u.heat_gj, t.places("heat")))
    alpha = Decimal(u.heat_supply_ratio) if heat > 0 else Decimal(0)
    unit: dict[str, Any] = {"unitId": u.unit_id, "capacity": {"value": u.capacity_mw, "unit": "MW"},
            "coalConsumption": {"value": str(coal), "unit": "t"}, "ncvAsReceived": ncv, "carbonContentAsReceived": car,
            "oxidationRate": of, "combustionEmission": {"value": str(e_coal), "unit": "tCO2"},
            "grossGeneration": {"value": str(gen), "unit": "MWh"}, "powerSupplied": {"value": str(supply), "unit": "MWh"},
            "heatSupplied": {"value": str(heat), "unit": "GJ"},
            "runningHours": {"value": str(u.running_hours), "unit": "h"},
            "loadFactor": _p(text(gen / (Decimal(u.capacity_mw) * max(u.running_hours, 1)) * 100, 2), "%", "calculated",
                             "发电量 /（装机容量 × 运行小时） / generation / (capacity × hours)"),
            "fuelCategory": u.category, "boilerType": u.boiler, "pressureClass": u.pressure, "coolingType": u.cooling,
            "coalMeasurement": u.measurement or {"method": "as_fired"}}
    if u.lab is not None:
        analysis: dict[str, Any] = {"totalMoisture": u.lab.measured("mt"), "airDriedMoisture": u.lab.measured("mad")}
        for key, name in (("har", "hydrogenAsReceived"), ("st", "sulphur")):
            if key in u.lab.values:
                analysis[name] = u.lab.measured(key)
        if "carbon" in u.lab.values:
            analysis.update({"carbonMeasured": u.lab.measured("carbon"), "carbonBasis": u.carbon_basis})
        analysis["labEvidenceId"] = u.lab.lab_id
        unit["coalAnalysis"] = analysis
    if u.fuels:
        unit["fuels"] = u.fuels
    if u.biomass:
        unit["biomassCofiring"] = u.biomass
    unit.update({"unitEmission": {"value": str(e_unit), "unit": "tCO2"},
                 "heatSupplyRatio": _p(str(alpha), "1", "calculated", "PWR-2022 4.6 供热比 / heat-supply ratio"),
                 "intensityPowerSupplied": _q(e_unit * (1 - alpha) / supply, "tCO2/MWh", "intensity_power")})
    if heat > 0:
        unit["intensityHeatSupplied"] = _q(e_unit * alpha / heat, "tCO2/GJ", "intensity_heat")
    return unit


def power_report(*, credit_code: str, name: str, period: str, units: list[CoalUnit], grid_mwh: Decimal,
                 grid_year: int, grid_kind: str = "power_sector_compliance", plant_fuels: list[dict[str, Any]] | None = None,
                 evidence: list[dict[str, Any]] | None = None, gaps: list[dict[str, Any]] | None = None, labs: list[LabReport] | None = None,
                 attachments: list[Attachment] | None = None, prepared_at: str) -> models.MonthlyReport:
    gaps = list(gaps or [])
    unit_records = [coal_unit(u, gaps, i) for i, u in enumerate(units)]
    flow = energy_flow(grid_mwh, "MWh", table().grid(grid_year, grid_kind))
    plant_fuels = plant_fuels or []
    comb = sum((_dec(u["unitEmission"]) for u in unit_records), Decimal(0)) + sum((_dec(f["emission"]) for f in plant_fuels), Decimal(0))
    payload = {"reportId": str(uuid.uuid4()), "creditCode": credit_code, "entityName": name, "industry": "power",
               "period": period, "submissionKind": "original", "preparedAt": prepared_at, "combustion": plant_fuels,
               "purchasedElectricity": flow, "power": {"units": unit_records}, "evidence": evidence or [],
               "totals": totals(combustion=comb, electricity=_dec(flow["emission"]))}
    _evidence_sections(payload, labs, gaps, attachments)
    return models.MonthlyReport.model_validate(payload)


def _evidence_sections(payload: dict[str, Any], labs: list[LabReport] | None, gaps: list[dict[str, Any]] | None,
                       attachments: list[Attachment] | None) -> None:
    if labs:
        payload["labEvidence"] = [lab.record() for lab in labs]
    if gaps:
        payload["dataGaps"] = gaps
    files = list(attachments or []) + [lab.attachment for lab in labs or [] if lab.attachment]
    if files:
        payload["attachments"] = [a.record() for a in {a.attachment_id: a for a in files}.values()]


# --- cement (CEM-2015) ----------------------------------------------------------------------------
def cement_report(*, credit_code: str, name: str, period: str, line_id: str, clinker_t: Decimal, kiln_coal_t: Decimal,
                  raw_meal_t: Decimal, kiln_dust_t: str, grid_mwh: Decimal, lab: LabReport, evidence: list[dict[str, Any]],
                  prepared_at: str, bypass_dust_t: str | None = None, cement_t: Decimal | None = None,
                  alternative_fuels: list[dict[str, Any]] | None = None, grid_year: int = 2023, gaps: list[dict[str, Any]] | None = None,
                  attachments: list[Attachment] | None = None) -> models.MonthlyReport:
    t = table()
    clinker = Decimal(text(clinker_t, 2))
    meal = Decimal(text(raw_meal_t, 2))
    cao, cao_nc, mgo, mgo_nc = (lab.measured(k) for k in ("cao", "cao_nc", "mgo", "mgo_nc"))
    ef = (_frac(cao) - _frac(cao_nc)) * t.ratio("cao_to_co2") + (_frac(mgo) - _frac(mgo_nc)) * t.ratio("mgo_to_co2")
    calcination, organic = t.parameter("defaults.cement.kiln_dust_calcination"), t.parameter("defaults.cement.raw_meal_organic_carbon")
    proc = Decimal(text(clinker * ef, 3))
    dust = Decimal(text(Decimal(kiln_dust_t) * ef * _frac(calcination), 3))
    org = Decimal(text(meal * _frac(organic) * t.ratio("c_to_co2"), 3))
    coal = fuel_combustion("CEM-KILN-COAL", "bituminous_coal", kiln_coal_t, "t", "IND-2015", ncv=lab.measured("coal_ncv"))
    flow = energy_flow(grid_mwh, "MWh", t.grid(grid_year))
    line: dict[str, Any] = {"lineId": line_id, "clinkerOutput": {"value": str(clinker), "unit": "t"}, "caoContent": cao,
            "caoNonCarbonate": cao_nc, "mgoContent": mgo, "mgoNonCarbonate": mgo_nc,
            "kilnDust": {"value": kiln_dust_t, "unit": "t"}, "kilnDustCalcination": calcination,
            "rawMealConsumption": {"value": str(meal), "unit": "t"}, "rawMealOrganicCarbon": organic,
            "processEmission": {"value": str(proc), "unit": "tCO2"}, "kilnDustEmission": {"value": str(dust), "unit": "tCO2"},
            "organicCarbonEmission": {"value": str(org), "unit": "tCO2"}}
    process = proc + dust + org
    if bypass_dust_t is not None:
        bypass_calc = t.parameter("defaults.cement.kiln_dust_calcination")
        bypass = Decimal(text(Decimal(bypass_dust_t) * ef * _frac(bypass_calc), 3))
        line.update({"bypassDust": {"value": bypass_dust_t, "unit": "t"}, "bypassDustCalcination": bypass_calc,
                     "bypassDustEmission": {"value": str(bypass), "unit": "tCO2"}})
        process += bypass
    alt_e = Decimal(0)
    if alternative_fuels:
        line["alternativeFuels"] = alternative_fuels
        alt_e = sum((_dec(a["fossilEmission"]) for a in alternative_fuels), Decimal(0))
    section: dict[str, Any] = {"lines": [line]}
    if cement_t is not None:
        section = {"cementOutput": {"value": text(cement_t, 2), "unit": "t"}, **section}
    payload = {"reportId": str(uuid.uuid4()), "creditCode": credit_code, "entityName": name, "industry": "cement",
               "period": period, "submissionKind": "original", "preparedAt": prepared_at, "combustion": [coal],
               "purchasedElectricity": flow, "cement": section, "evidence": evidence,
               "totals": totals(combustion=_dec(coal["emission"]) + alt_e, process=process, electricity=_dec(flow["emission"]))}
    _evidence_sections(payload, [lab], gaps, attachments)
    return models.MonthlyReport.model_validate(payload)


def alternative_fuel(fuel: str, consumption_t: Decimal, ncv: dict[str, Any], carbon: dict[str, Any], fossil_share: dict[str, Any], oxidation: dict[str, Any]) -> dict[str, Any]:
    e = consumption_t * _frac(ncv) * _frac(carbon) * _frac(fossil_share) * _frac(oxidation) * table().ratio("c_to_co2")
    return {"fuelCode": fuel, "consumption": {"value": text(consumption_t, 2), "unit": "t"}, "ncv": ncv, "carbonContent": carbon,
            "fossilCarbonShare": fossil_share, "oxidationRate": oxidation, "fossilEmission": _q(e, "tCO2")}
