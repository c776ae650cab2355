"""Worked examples from the accounting guidelines: inputs and expected results computed by hand.

Each expected value is written out with its arithmetic; the code reads every factor from the
factor table (spec/tables/factors.yaml), so these tests also pin the table's values.
"""

from decimal import Decimal as D

import pytest

from cedx import spec
from cedx.accounting import guideline as g
from cedx.accounting.factors import table


def lab(values, lab_id="LAB-1"):
    return g.LabReport(lab_id, "示例实验室", "CMA", "231012345678", "JC-1", "as_fired_coal", "S-1", "P-1",
                       "2026-10-01", "2026-10-31", "2026-11-03", ["GB/T 476-2008"], values)


def test_factor_table_values_used_by_the_examples():
    t = table()
    assert t.fuel("diesel", "PWR-2022")["ncv"]["value"] == "42.652"      # not 43.33 (issue 13)
    assert t.value("power.carbon_per_ncv_default") == D("0.03085")
    assert t.value("power.coal_oxidation_rate") == D("0.99")
    assert t.grid(2022)["value"] == "0.5366" and t.grid(2023)["value"] == "0.5306" and t.grid(2021)["value"] == "0.5568"
    assert t.grid(2025, "power_sector_compliance")["value"] == "0.5703"
    assert t.gwp("CH4", "IPCC-SAR")["value"] == "21" and t.gwp("N2O", "IPCC-SAR")["value"] == "310"
    assert t.gwp("CH4", "IPCC-AR5")["value"] == "28"
    assert t.ratio("c_to_co2") == D(44) / D(12)
    with pytest.raises(KeyError):
        t.grid(2019)
    # every row says how sure we are
    rows = [r for k in ("fuels", "power", "grid", "heat", "gwp") for r in t.table[k]]
    assert all(r["status"] in ("confirmed", "brief", "unconfirmed") for r in rows)


def test_diesel_combustion_pwr_2022():
    # 35.20 t x 42.652 GJ/t = 1,501.3504 GJ; x 0.0202 tC/GJ = 30.32727808 tC; x 0.98 = 29.7207325 tC;
    # x 44/12 = 108.9760192 tCO2 -> 108.976
    f = g.fuel_combustion("D", "diesel", D("35.20"), "t", "PWR-2022")
    assert f["emission"] == {"value": "108.976", "unit": "tCO2"}
    assert f["ncv"]["source"] == "default" and "PWR-2022/diesel" in f["ncv"]["reference"]


def test_coal_unit_with_air_dried_carbon_test():
    # PWR-2022: C_ar = C_ad x (100 - Mt) / (100 - Mad) = 58.05 x 90.20 / 97.90 = 53.4843 % -> 53.48 %
    # E = 152,340.50 t x 0.5348 x 0.99 x 44/12:
    #   152,340.50 x 0.5348 = 81,471.6994; x 0.99 = 80,656.982406; x 44/12 = 295,742.26882 -> 295,742.269 tCO2
    unit = g.CoalUnit("U1", "660", D("152340.50"), D("356400"), D("338580"), D("152000"), 720, "0.0830",
                      lab({"ncv": ("20.512", "GJ/t"), "mt": ("9.80", "%"), "mad": ("2.10", "%"), "carbon": ("58.05", "%")}))
    gaps = []
    u = g.coal_unit(unit, gaps, 0)
    assert u["carbonContentAsReceived"]["value"] == "53.48" and u["carbonContentAsReceived"]["source"] == "measured"
    assert u["combustionEmission"]["value"] == "295742.269"
    # intensities: power (1 - 0.0830) x 295,742.269 / 338,580 = 271,195.660673 / 338,580 = 0.80098 -> 0.8010
    #              heat 0.0830 x 295,742.269 / 152,000 = 24,546.608327 / 152,000 = 0.16149 -> 0.1615
    assert u["intensityPowerSupplied"]["value"] == "0.8010"
    assert u["intensityHeatSupplied"]["value"] == "0.1615"
    assert gaps == []


def test_coal_unit_without_carbon_test_takes_the_conservative_default():
    # No carbon test: C_ar = NCV_ar x 0.03085 = 20.487 x 0.03085 = 0.63202395 -> 0.6320 tC/t (63.2 %, well above
    # a measured ~53 %: the high default). Coal = delivered 150,000 - stock change 1,067.60 = 148,932.40 t.
    # E = 148,932.40 x 0.6320 x 0.99 x 44/12 = 94,125.2768 x 0.99 = 93,184.024032; x 44/12 = 341,674.754784
    measurement = {"method": "delivered_with_stock_change", "delivered": {"value": "150000.00", "unit": "t"},
                   "openingStock": {"value": "82000.00", "unit": "t"}, "closingStock": {"value": "83067.60", "unit": "t"},
                   "stockChange": {"value": "1067.60", "unit": "t"}}
    unit = g.CoalUnit("U2", "660", D("148932.40"), D("343728"), D("326541.6"), D("98000"), 744, "0.0560",
                      lab({"ncv": ("20.487", "GJ/t"), "mt": ("10.20", "%"), "mad": ("2.30", "%")}), measurement=measurement)
    gaps = []
    u = g.coal_unit(unit, gaps, 1)
    assert u["carbonContentAsReceived"] == {**u["carbonContentAsReceived"], "value": "0.6320", "unit": "tC/t", "source": "calculated"}
    assert u["combustionEmission"]["value"] == "341674.755"
    assert gaps[0]["cause"] == "test_missing" and gaps[0]["method"] == "conservative_default"
    assert gaps[0]["substitute"]["value"] == "0.03085" and gaps[0]["substitute"]["source"] == "default"


def test_power_report_passes_every_rule_and_a_negative_stock_change_is_allowed():
    measurement = {"method": "delivered_with_stock_change", "delivered": {"value": "140000.00", "unit": "t"},
                   "openingStock": {"value": "90000.00", "unit": "t"}, "closingStock": {"value": "85000.00", "unit": "t"},
                   "stockChange": {"value": "-5000.00", "unit": "t"}}  # stock drawn down: consumed 145,000 t
    unit = g.CoalUnit("U1", "660", D("145000.00"), D("350000"), D("332000"), D("0"), 720, "0",
                      lab({"ncv": ("20.5", "GJ/t"), "mt": ("9.80", "%"), "mad": ("2.10", "%"), "carbon": ("52.10", "%")}),
                      carbon_basis="as_received", measurement=measurement)
    r = g.power_report(credit_code="91320500MA1X2P3Q4R", name="示例电厂", period="2026-10", units=[unit], grid_mwh=D("1200"),
                       grid_year=2025, labs=[unit.lab], prepared_at="2026-11-05T10:00:00+08:00")
    doc = r.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert spec.validator().validate("MonthlyReport", doc) == []
    # 1,200 MWh x 0.5703 tCO2/MWh = 684.360 tCO2 (power-sector value, factor table grid 2025)
    assert doc["purchasedElectricity"]["emission"]["value"] == "684.360"
    assert "intensityHeatSupplied" not in doc["power"]["units"][0]  # no heat supplied
    doc["power"]["units"][0]["coalMeasurement"]["delivered"]["value"] = "-140000.00"
    assert "R-QTY-001" in {i.code for i in spec.validator().validate("MonthlyReport", doc)}


def test_clinker_process_emission_cem_2015():
    # 147,250 t x [(65.50 % - 0.80 %) x 44/56 + (2.10 % - 0.10 %) x 44/40]
    #   = 147,250 x [0.6470 x 0.785714286 + 0.0200 x 1.1] = 147,250 x (0.508357143 + 0.022) = 147,250 x 0.530357143
    #   = 78,095.089 tCO2
    # kiln-head dust 1,180 t x 0.530357143 x 1 = 625.821; bypass dust 310 t x 0.530357143 x 1 = 164.411
    # raw meal 229,800 t x 0.10 % x 44/12 = 842.600
    lab_ = g.LabReport("LAB-C", "lab", "CNAS", "CNAS L1", "SN-1", "clinker", "S", "P", "2026-10-01", "2026-10-31", "2026-11-02",
                       ["GB/T 176-2017"], {"cao": ("65.50", "%"), "cao_nc": ("0.80", "%"), "mgo": ("2.10", "%"),
                                           "mgo_nc": ("0.10", "%"), "coal_ncv": ("23.514", "GJ/t")})
    r = g.cement_report(credit_code="91530100MA6K7L8M9M", name="示例水泥", period="2026-10", line_id="L1",
                        clinker_t=D("147250"), kiln_coal_t=D("20480"), raw_meal_t=D("229800"), kiln_dust_t="1180.00",
                        bypass_dust_t="310.00", grid_mwh=D("9120"), lab=lab_, evidence=[], prepared_at="2026-11-06T15:00:00+08:00")
    line = r.model_dump(mode="json", by_alias=True, exclude_none=True)["cement"]["lines"][0]
    assert (line["processEmission"]["value"], line["kilnDustEmission"]["value"], line["bypassDustEmission"]["value"],
            line["organicCarbonEmission"]["value"]) == ("78095.089", "625.821", "164.411", "842.600")
    # kiln coal: 20,480 t x 23.514 GJ/t = 481,566.72 GJ; x 0.02618 tC/GJ = 12,607.41673 tC; x 0.93 = 11,724.89756 tC;
    #   x 44/12 = 42,991.29106 -> 42,991.291 tCO2 (IND-2015 bituminous defaults, unconfirmed rows)
    assert r.combustion[0].emission.value == D("42991.291")
    assert spec.validator().validate("MonthlyReport", r.model_dump(mode="json", by_alias=True, exclude_none=True)) == []


def test_alternative_fuel_counts_only_fossil_carbon():
    # 820 t waste tyres x 28.900 GJ/t = 23,698 GJ; x 0.0231 tC/GJ = 547.4238 tC; x 0.78 fossil = 426.990564 tC;
    # x 0.99 oxidation = 422.72065836 tC; x 44/12 = 1,549.9757 -> 1,549.976 tCO2
    p = lambda v, u: {"value": v, "unit": u, "source": "measured"}  # noqa: E731
    a = g.alternative_fuel("waste_tyres", D("820"), p("28.900", "GJ/t"), p("0.0231", "tC/GJ"), p("0.78", "1"), p("0.99", "1"))
    assert a["fossilEmission"]["value"] == "1549.976"


def test_steam_to_heat_by_enthalpy():
    # 12,800 t x (3,230.5 - 83.74) kJ/kg x 1e-3 = 12,800 x 3.14676 GJ/t = 40,278.528 GJ
    assert g.steam_heat(D("12800"), "3230.5", "3.82", "450")["heat"] == {"value": "40278.528", "unit": "GJ"}


def test_totals_deduct_exports_fixed_carbon_and_recovered_co2_and_add_fugitive():
    t = g.totals(combustion=D("1000"), process=D("200"), electricity=D("50"), heat=D("10"), fugitive=D("30"), flare=D("5"),
                 carbon_fixed=D("40"), co2_recovered=D("15"), exported_electricity=D("20"), exported_heat=D("3"))
    # 1000 + 200 + 50 + 10 + 30 + 5 - 40 - 15 - 20 - 3 = 1,217
    assert t["total"] == {"value": "1217.000", "unit": "tCO2e"}


def test_a_gas_unit_reports_fuels_instead_of_coal():
    """PWR-2022: a combined-cycle gas unit has no coal fields; its gas is in `fuels` and counts in the totals."""
    import copy
    import json
    from pathlib import Path

    doc = json.loads((Path(__file__).parents[2] / "spec/examples/monthly-report-power.json").read_text())["payload"]
    doc = copy.deepcopy(doc)
    # 2,850 x 10^4 Nm3 x 389.31 GJ/10^4 Nm3 = 1,109,533.5 GJ; x 0.01532 tC/GJ = 16,998.05322 tC; x 0.99 = 16,828.07269 tC;
    # x 44/12 = 61,702.93319 -> 61,702.933 tCO2
    gas = g.fuel_combustion("U3-GAS", "natural_gas", D("2850"), "1e4Nm3", "PWR-2022")
    assert gas["emission"]["value"] == "61702.933"
    # power intensity: 61,702.933 x (1 - 0) / 168,000 MWh = 0.367279 -> 0.3673
    unit = {"unitId": "U3", "capacity": {"value": "390", "unit": "MW"}, "grossGeneration": {"value": "172000.000", "unit": "MWh"},
            "powerSupplied": {"value": "168000.000", "unit": "MWh"}, "heatSupplied": {"value": "0.000", "unit": "GJ"},
            "runningHours": {"value": "620", "unit": "h"}, "fuelCategory": "gas", "boilerType": "gas_turbine_combined_cycle",
            "pressureClass": "not_applicable", "coolingType": "water", "fuels": [gas], "unitEmission": gas["emission"],
            "heatSupplyRatio": {"value": "0", "unit": "1", "source": "calculated"},
            "intensityPowerSupplied": {"value": "0.3673", "unit": "tCO2/MWh"}}
    doc["power"]["units"].append(unit)
    issues = {i.code for i in spec.validator().validate("MonthlyReport", doc)}
    assert issues == {"R-TOT-001"}  # the unit is fine; the combustion total does not include it yet
    for key in ("combustion", "total"):
        doc["totals"][key]["value"] = str(D(doc["totals"][key]["value"]) + D("61702.933"))
    assert spec.validator().validate("MonthlyReport", doc) == []
    unit["fuelCategory"] = "coal"  # a coal unit without coal data
    assert "R-POW-009" in {i.code for i in spec.validator().validate("MonthlyReport", doc)}
