"""The annual report from the months (cedx.accounting.annual) and the cross-document rule
R-ANN-012: a worked example computed by hand, the five committed annual examples against the
twelve monthly reports they were built from, and disagreements that must be found."""

import copy
import json
from decimal import Decimal

import pytest

from cedx import spec
from cedx.accounting import annual

from .year import EXAMPLES, INDUSTRIES, annual_of, year_of


def q(value, unit):
    return {"value": value, "unit": unit}


def p(value, unit, source="measured"):
    return {"value": value, "unit": unit, "source": source}


def _power_month(period, coal, ncv, carbon, emission, gen, supplied, heat, ratio, hours):
    unit = {"unitId": "U1", "fuelCategory": "coal", "capacity": q("660", "MW"), "coalConsumption": q(coal, "t"),
            "ncvAsReceived": p(ncv, "GJ/t"), "carbonContentAsReceived": p(carbon, "%"), "oxidationRate": p("0.99", "1", "default"),
            "combustionEmission": q(emission, "tCO2"), "unitEmission": q(emission, "tCO2"),
            "grossGeneration": q(gen, "MWh"), "powerSupplied": q(supplied, "MWh"), "heatSupplied": q(heat, "GJ"),
            "runningHours": q(hours, "h"), "heatSupplyRatio": p(ratio, "1", "calculated"),
            "intensityPowerSupplied": q("0.0000", "tCO2/MWh"), "intensityHeatSupplied": q("0.0000", "tCO2/GJ")}
    totals = {"combustion": q(emission, "tCO2"), "process": q("0.000", "tCO2"), "purchasedElectricity": q("0.000", "tCO2"),
              "purchasedHeat": q("0.000", "tCO2"), "total": q(emission, "tCO2")}
    return {"creditCode": "91320500MA1X2P3Q4R", "entityName": "示范电厂", "industry": "power", "period": period,
            "totals": totals, "power": {"units": [unit]}}


def test_worked_example_power_by_hand():
    # Month A: 100000 t coal, C_ar 52 %, OF 0.99: 100000 × 0.52 × 0.99 × 44/12 = 188760 tCO2; heat ratio 0.1000.
    # Month B:  50000 t coal, C_ar 58 %:          50000 × 0.58 × 0.99 × 44/12 = 105270 tCO2; no heat, ratio 0.
    a = _power_month("2025-01", "100000.00", "20.000", "52.00", "188760.000", "200000.000", "190000.000", "100000.000", "0.1000", "600")
    b = _power_month("2025-02", "50000.00", "23.000", "58.00", "105270.000", "100000.000", "94000.000", "0.000", "0.0000", "300")
    out = annual.aggregate([b, a], report_id="f6a7b8c9-4d5e-4f6a-9b2c-3d4e5f6a7b82", prepared_at="2026-03-20T10:00:00+08:00",
                           submission_ids={"2025-01": "00000000-0000-4000-8000-000000000001"})
    assert [m["period"] for m in out["months"]] == ["2025-01", "2025-02"]  # sorted, whatever the input order
    assert out["months"][0]["submissionId"] == "00000000-0000-4000-8000-000000000001"
    assert "submissionId" not in out["months"][1]
    assert out["year"] == 2025 and out["totals"]["total"] == q("294030.000", "tCO2")  # 188760 + 105270
    u = out["power"]["units"][0]
    assert u["coalConsumption"] == q("150000.00", "t")
    # NCV weighted by coal: (100000 × 20 + 50000 × 23) / 150000 = 21.000
    assert u["ncvAsReceived"]["value"] == "21.000" and u["ncvAsReceived"]["source"] == "calculated"
    # C_ar weighted by coal: (100000 × 52 + 50000 × 58) / 150000 = 54.00 %; and 150000 × 0.54 × 0.99 × 44/12 = 294030
    assert u["carbonContentAsReceived"]["value"] == "54.00"
    assert u["combustionEmission"] == u["unitEmission"] == q("294030.000", "tCO2")
    assert (u["grossGeneration"], u["powerSupplied"], u["heatSupplied"], u["runningHours"]) == (
        q("300000.000", "MWh"), q("284000.000", "MWh"), q("100000.000", "GJ"), q("900", "h"))
    # heat-supply ratio weighted by emission: (188760 × 0.1 + 105270 × 0) / 294030 = 0.064197... -> 0.0642
    assert u["heatSupplyRatio"]["value"] == "0.0642"
    # power: 294030 × (1 − 0.0642) / 284000 = 275153.274 / 284000 = 0.968849... -> 0.9688
    assert u["intensityPowerSupplied"] == q("0.9688", "tCO2/MWh")
    # heat: 294030 × 0.0642 / 100000 = 0.188767... -> 0.1888
    assert u["intensityHeatSupplied"] == q("0.1888", "tCO2/GJ")
    assert [m["period"] for m in u["months"]] == ["2025-01", "2025-02"]
    assert u["months"][1]["grossGeneration"] == q("100000.000", "MWh")
    assert annual.check(out, [a, b]) == []


def test_aggregate_refuses_mixed_inputs():
    a = _power_month("2025-01", "1.00", "20.000", "52.00", "1.000", "1.000", "1.000", "0.000", "0.0000", "1")
    with pytest.raises(ValueError):
        annual.aggregate([a, copy.deepcopy(a)], report_id="x", prepared_at="x")  # the same month twice
    other_year = copy.deepcopy(a)
    other_year["period"] = "2024-12"
    with pytest.raises(ValueError):
        annual.aggregate([a, other_year], report_id="x", prepared_at="x")
    kg = copy.deepcopy(a)
    kg["period"] = "2025-02"
    kg["power"]["units"][0]["coalConsumption"] = q("1000", "kg")
    with pytest.raises(ValueError, match="different units"):
        annual.aggregate([a, kg], report_id="x", prepared_at="x")


@pytest.fixture(scope="module")
def years():
    return {name: year_of(name) for name in INDUSTRIES}


@pytest.mark.parametrize("name", INDUSTRIES)
def test_annual_examples_agree_with_their_twelve_monthly_reports(years, name):
    validator = spec.context("cedx.generated").validator
    months = years[name]
    for m in months:  # every month is itself a valid report
        assert validator.validate("MonthlyReport", m) == [], m["period"]
    committed = json.loads((EXAMPLES / f"annual-report-{name}.json").read_text(encoding="utf-8"))["payload"]
    assert annual_of(name, months) == committed  # the example is exactly what aggregate builds
    assert validator.validate("AnnualReport", committed) == []
    assert annual.check(committed, months) == []
    # Every category of every month adds up to the annual total exactly (no rounding left over).
    total = sum(Decimal(m["totals"]["total"]["value"]) for m in months)
    assert Decimal(committed["totals"]["total"]["value"]) == total


def _paths(found):
    return {d.path for d in found}


def test_a_changed_month_is_found(years):
    committed = annual_of("power", years["power"])
    months = copy.deepcopy(years["power"])
    july = months[6]
    july["power"]["units"][1]["grossGeneration"]["value"] = str(Decimal(july["power"]["units"][1]["grossGeneration"]["value"]) + 1)
    found = annual.check(committed, months)
    assert {"$.power.units[1].grossGeneration", "$.power.units[1].months[6].grossGeneration"} <= _paths(found)
    assert all(d.rule == "R-ANN-012" for d in found)
    # the July totals disagree too once the monthly report's total changes
    july["totals"]["total"]["value"] = "1.000"
    found = _paths(annual.check(committed, months))
    assert {"$.months[6].totalEmission", "$.months[6].totals.total", "$.totals.total"} <= found


def test_a_missing_month_is_found(years):
    committed = annual_of("cement", years["cement"])
    found = annual.check(committed, years["cement"][:6] + years["cement"][7:])
    assert "$.months[6]" in _paths(found)
    assert "$.cement.lines[0].kilnDust" in _paths(found)


def test_tolerance_is_half_a_unit_of_the_last_place(years):
    committed = annual_of("steel", years["steel"])
    wrong = copy.deepcopy(committed)
    fixed = wrong["steel"]["carbonFixedTotal"]
    fixed["value"] = str(Decimal(fixed["value"]) + Decimal("0.001"))  # one unit of the last place (1 kg)
    assert _paths(annual.check(wrong, years["steel"])) == {"$.steel.carbonFixedTotal"}
    # a coarser annual figure is compared to half of its own last place
    coarse = copy.deepcopy(committed)
    value = Decimal(coarse["steel"]["carbonFixedTotal"]["value"])
    coarse["steel"]["carbonFixedTotal"]["value"] = format(value.quantize(Decimal("1")), "f")
    assert annual.check(coarse, years["steel"]) == []


@pytest.mark.parametrize("name, section, key", [
    ("coal", "coalMining", "postMiningCH4"),
    ("chemical", "chemical", "co2RecoveredExported"),
    ("chemical", "chemical", "carbonateEmission"),
])
def test_industry_figures_are_recomputed_from_the_months(years, name, section, key):
    committed = annual_of(name, years[name])
    months = copy.deepcopy(years[name])
    s = months[2][section]
    if key == "co2RecoveredExported":
        s["co2Recovered"][0]["purity"]["value"] = "90.0"
    elif key == "carbonateEmission":
        s["carbonates"][0]["emission"]["value"] = "0.000"
    else:
        s[key]["value"] = str(Decimal(s[key]["value"]) + Decimal("0.5"))
    assert f"$.{section}.{key}" in _paths(annual.check(committed, months))


def test_what_the_annual_report_leaves_out_is_found(years):
    committed = annual_of("power", years["power"])
    no_u2 = copy.deepcopy(committed)
    del no_u2["power"]["units"][1]
    assert any(d.path == "$.power.units" and "unitId U2" in d.message for d in annual.check(no_u2, years["power"]))
    fewer_months = copy.deepcopy(committed)
    del fewer_months["power"]["units"][0]["months"][3]
    found = annual.check(fewer_months, years["power"])
    assert any(d.path == "$.power.units[0].months" and "period 2025-04" in d.message for d in found)
    coal = annual_of("coal", years["coal"])
    del coal["coalMining"]["postMiningCH4"]
    assert "$.coalMining.postMiningCH4" in _paths(annual.check(coal, years["coal"]))


def test_monthly_reports_of_another_entity_or_year_are_refused(years):
    committed = annual_of("cement", years["cement"])
    other = copy.deepcopy(years["cement"])
    other[4]["creditCode"] = "91320500MA1X2P3Q4R"
    found = annual.check(committed, other)
    assert [d.path for d in found] == ["$"] and "not this entity's" in found[0].message
    steel = year_of("steel")
    found = annual.check(committed, steel)  # steel months under a cement annual report
    assert found and all(d.rule == "R-ANN-012" for d in found)


def test_the_annual_report_shares_nothing_with_the_months(years):
    months = copy.deepcopy(years["coal"])
    report = annual_of("coal", months)
    report["months"][0]["totals"]["total"]["value"] = "0.000"
    report["coalMining"]["gwp"]["value"] = "0"
    assert months == years["coal"]


def test_a_false_heat_supply_ratio_or_capacity_is_found(years):
    # The intensities follow from the stated ratio (R-ANN-007), so a report that states a false
    # ratio and recomputes its intensities from it is consistent with itself: only the months
    # can show the ratio (and so the intensity of power supplied) is wrong.
    committed = annual_of("power", years["power"])
    forged = copy.deepcopy(committed)
    unit = forged["power"]["units"][0]
    unit["heatSupplyRatio"]["value"] = "0.5000"
    assert _paths(annual.check(forged, years["power"])) == {"$.power.units[0].heatSupplyRatio"}
    forged = copy.deepcopy(committed)
    forged["power"]["units"][0]["capacity"]["value"] = "700"
    assert "$.power.units[0].capacity" in _paths(annual.check(forged, years["power"]))
    forged = copy.deepcopy(committed)
    c = forged["power"]["units"][0]["carbonContentAsReceived"]
    c["value"] = str(Decimal(c["value"]) + Decimal("0.02"))  # beyond both sides' rounding (0.005 + 0.005)
    assert _paths(annual.check(forged, years["power"])) == {"$.power.units[0].carbonContentAsReceived"}
    c["value"] = str(Decimal(c["value"]) - Decimal("0.02") + Decimal("0.01"))  # within it
    assert annual.check(forged, years["power"]) == []


def test_a_ratio_stated_in_percent_keeps_its_precision():
    # Months state the heat-supply ratio as 8.30 %: the annual ratio keeps four places as a
    # fraction (0.0830), or stays in % when every month is in %, never 0.08.
    a = _power_month("2025-01", "100000.00", "20.000", "52.00", "188760.000", "200000.000", "190000.000", "100000.000", "8.30", "600")
    b = _power_month("2025-02", "50000.00", "23.000", "58.00", "105270.000", "100000.000", "94000.000", "50000.000", "8.30", "300")
    for m in (a, b):
        m["power"]["units"][0]["heatSupplyRatio"]["unit"] = "%"
    out = annual.aggregate([a, b], report_id="f6a7b8c9-4d5e-4f6a-9b2c-3d4e5f6a7b82", prepared_at="2026-03-20T10:00:00+08:00")
    u = out["power"]["units"][0]
    assert (u["heatSupplyRatio"]["value"], u["heatSupplyRatio"]["unit"]) == ("8.30", "%")
    # 294030 × (1 − 0.0830) / 284000 = 269625.51 / 284000 = 0.949385... -> 0.9494
    # (with the ratio cut to 0.08: 270507.6 / 284000 = 0.952491... -> 0.9525)
    assert u["intensityPowerSupplied"]["value"] == "0.9494"
    b["power"]["units"][0]["heatSupplyRatio"] = p("0.0830", "1", "calculated")  # mixed units: a fraction
    u = annual.aggregate([a, b], report_id="f6a7b8c9-4d5e-4f6a-9b2c-3d4e5f6a7b82",
                         prepared_at="2026-03-20T10:00:00+08:00")["power"]["units"][0]
    assert (u["heatSupplyRatio"]["value"], u["heatSupplyRatio"]["unit"]) == ("0.0830", "1")
    assert annual.check(out, [a, b]) == []  # 8.30 % and 0.0830 are the same ratio: compared in SI


def test_the_months_may_be_models_as_the_client_returns_them():
    """``client.get_monthly_report(id).payload`` is a cedx.models.MonthlyReport: aggregate and
    check take it as they take its JSON (they raised "'MonthlyReport' object is not subscriptable")."""
    from cedx.generated import models

    months = year_of("power")
    as_models = [models.MonthlyReport.model_validate(m) for m in months]
    made = annual.aggregate(as_models, report_id="3f2b8a10-6c1d-4e2a-9b7f-1a2b3c4d5e6f", prepared_at="2026-03-20T10:00:00+08:00")
    assert made == annual.aggregate(months, report_id="3f2b8a10-6c1d-4e2a-9b7f-1a2b3c4d5e6f",
                                    prepared_at="2026-03-20T10:00:00+08:00")
    assert annual.check(models.AnnualReport.model_validate(made), as_models) == []
