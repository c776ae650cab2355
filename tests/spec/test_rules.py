"""Negative cases: each broken document is rejected with the right rule ID at the right path."""

import copy
from decimal import Decimal

import pytest

from cedx.spec.uscc import check_character, is_valid

from .conftest import load_example


def codes(issues):
    return {(i.code, i.path) for i in issues}


def q(value, unit):
    return {"value": value, "unit": unit}


def set_in(doc, path, value):
    *head, last = path
    for key in head:
        doc = doc[key]
    if value is None:
        del doc[last]
    else:
        doc[last] = value


def test_uscc_check_character():
    assert is_valid("91350100M000100Y43")  # the sample of GB 32100-2015
    assert check_character("91320500MA1X2P3Q4") == "R"
    assert not is_valid("91350100M000100Y44")
    assert not is_valid("91350100M000100Y4")
    assert not is_valid("9135010OM000100Y43")  # letter O is not in the character set


# (example, path to change, new value, expected (code, path))
CASES = [
    ("monthly-report-power.json", ["payload", "creditCode"], "91320500MA1X2P3Q4K",
     ("R-USCC-002", "$.payload")),
    ("monthly-report-power.json", ["payload", "combustion", 0, "consumption", "unit"], "tonnes",
     ("R-UNIT-001", "$.payload.combustion[0].consumption.unit")),
    ("monthly-report-power.json", ["payload", "combustion", 0, "consumption", "unit"], "kg",
     ("R-UNIT-002", "$.payload.combustion[0].consumption.unit")),
    ("monthly-report-power.json", ["payload", "totals", "total", "value"], "999999.000",
     ("R-TOT-004", "$.payload")),
    ("monthly-report-power.json", ["payload", "combustion", 0, "consumption", "value"], 35.2,
     ("R-DEC-001", "$.payload.combustion[0].consumption.value")),
    ("monthly-report-power.json", ["payload", "combustion", 0, "consumption", "value"], "3.52e1",
     ("R-DEC-001", "$.payload.combustion[0].consumption.value")),
    ("monthly-report-power.json", ["payload", "preparedAt"], "2026-11-05T10:30:00",
     ("R-TIME-001", "$.payload.preparedAt")),
    ("monthly-report-power.json", ["payload", "period"], "2026-13",
     ("R-PERIOD-001", "$.payload.period")),
    ("monthly-report-power.json", ["payload", "industry"], "thermal power",
     ("R-CODE-001", "$.payload.industry")),
    ("monthly-report-power.json", ["payload", "combustion", 0, "emission", "value"], "120.000",
     ("R-FUEL-001", "$.payload.combustion[0]")),
    ("monthly-report-power.json", ["payload", "combustion", 0, "ncv", "unit"], "GJ/1e4Nm3",
     ("R-FUEL-002", "$.payload.combustion[0]")),
    ("monthly-report-power.json", ["payload", "totals", "combustion", "value"], "600000.000",
     ("R-TOT-001", "$.payload")),
    ("monthly-report-power.json", ["payload", "purchasedElectricity", "emission", "value"], "700.000",
     ("R-ELEC-001", "$.payload")),
    ("monthly-report-power.json", ["payload", "power", "units", 1, "combustionEmission", "value"], "289861.000",
     ("R-POW-001", "$.payload.power.units[1]")),
    ("monthly-report-power.json", ["payload", "power", "units", 0, "powerSupplied", "value"], "356401.000",
     ("R-POW-003", "$.payload.power.units[0]")),
    ("monthly-report-power.json", ["payload", "power", "units", 0, "runningHours", "value"], "745",
     ("R-POW-004", "$.payload.power.units[0]")),
    ("monthly-report-power.json", ["payload", "power", "units", 0, "grossGeneration", "value"], "480000.000",
     ("R-POW-005", "$.payload.power.units[0]")),
    ("monthly-report-power.json", ["payload", "submissionKind"], "correction",
     ("R-SUB-001", "$.payload")),
    ("monthly-report-power-correction.json", ["payload", "submissionKind"], "original",
     ("R-SUB-003", "$.payload")),
    ("monthly-report-power.json", ["payload", "industry"], "cement",
     ("R-IND-001", "$.payload")),
    ("monthly-report-cement.json", ["payload", "cement", "lines", 0, "processEmission", "value"], "76000.000",
     ("R-CEM-001", "$.payload.cement.lines[0]")),
    ("monthly-report-cement.json", ["payload", "cement", "lines", 0, "kilnDustEmission", "value"], "1.000",
     ("R-CEM-002", "$.payload.cement.lines[0]")),
    ("monthly-report-cement.json", ["payload", "cement", "lines", 0, "organicCarbonEmission", "value"], "1.000",
     ("R-CEM-003", "$.payload.cement.lines[0]")),
    ("monthly-report-cement.json", ["payload", "cement", "lines", 0, "caoNonCarbonate", "value"], "70",
     ("R-CEM-004", "$.payload.cement.lines[0]")),
    ("monthly-report-cement.json", ["payload", "totals", "process", "value"], "1.000",
     ("R-TOT-002", "$.payload")),
    ("monthly-report-steel.json", ["payload", "steel", "fluxes", 1, "emission", "value"], "1.000",
     ("R-STL-001", "$.payload.steel.fluxes[1]")),
    ("monthly-report-steel.json", ["payload", "steel", "electrodes", "emission", "value"], "1.000",
     ("R-STL-002", "$.payload")),
    ("monthly-report-steel.json", ["payload", "steel", "carbonFixed", 0, "fixedEmission", "value"], "1.000",
     ("R-STL-003", "$.payload.steel.carbonFixed[0]")),
    ("monthly-report-steel.json", ["payload", "steel", "carbonFixedTotal", "value"], "1.000",
     ("R-STL-004", "$.payload")),
    ("monthly-report-steel.json", ["payload", "exportedElectricity", "emission", "value"], "1.000",
     ("R-ELEC-002", "$.payload")),
    ("monthly-report-steel.json", ["payload", "purchasedHeat", "emission", "value"], "1.000",
     ("R-HEAT-001", "$.payload")),
    ("monthly-report-steel.json", ["payload", "exportedHeat", "emission", "value"], "1.000",
     ("R-HEAT-002", "$.payload")),
    ("monthly-report-steel.json", ["payload", "totals", "carbonFixed", "value"], "1.000",
     ("R-TOT-003", "$.payload")),
    ("monthly-report-coal.json", ["payload", "coalMining", "ch4Flared", "value"], "50.00",
     ("R-COAL-001", "$.payload")),
    ("monthly-report-coal.json", ["payload", "coalMining", "ch4EmissionCO2e", "value"], "1.000",
     ("R-COAL-003", "$.payload")),
    ("monthly-report-coal.json", ["payload", "coalMining", "ch4Utilised", "value"], "200.00",
     ("R-COAL-004", "$.payload")),
    ("monthly-report-chemical.json", ["payload", "chemical", "carbonWastes", 0, "quantity", "value"], "30000.00",
     ("R-CHEM-001", "$.payload")),
    ("monthly-report-chemical.json", ["payload", "chemical", "n2oProcesses", 0, "n2oEmission", "value"], "1.000",
     ("R-CHEM-002", "$.payload.chemical.n2oProcesses[0]")),
    ("monthly-report-chemical.json", ["payload", "chemical", "n2oProcesses", 0, "co2e", "value"], "1.000",
     ("R-CHEM-003", "$.payload.chemical.n2oProcesses[0]")),
    ("monthly-report-chemical.json", ["payload", "combustion", 0, "emission", "value"], "1.000",
     ("R-FUEL-001", "$.payload.combustion[0]")),
    ("annual-report-power.json", ["payload", "months", 11, "totalEmission", "value"], "1.000",
     ("R-ANN-001", "$.payload")),
    ("annual-report-power.json", ["payload", "months", 11, "period"], "2025-01",
     ("R-ANN-002", "$.payload")),
    ("annual-report-power.json", ["payload", "months", 11, "period"], "2024-12",
     ("R-ANN-002", "$.payload")),
    ("period-statistics.json", ["payload", "items", 1, "coverage"], "0.9",
     ("R-ACQ-003", "$.payload.items[1]")),
    ("period-statistics.json", ["payload", "items", 1, "validCount"], 25,
     ("R-ACQ-003", "$.payload.items[1]")),
    ("metering-point.json", ["instrument", "calibration", "dueDate"], "2026-06-01",
     ("R-ACQ-004", "$")),
    ("configuration-successor.json", ["payload", "successor", "effectiveFrom"], "2025-12-01T00:00:00+08:00",
     ("R-CFG-001", "$.payload")),
    ("entity-power.json", ["creditCode"], "91320500MA1X2P3Q4Y",
     ("R-USCC-002", "$")),
    # --- issue 13: non-negativity, period, evidence, industry depth ---------------------------------
    ("monthly-report-power.json", ["payload", "combustion", 0, "consumption", "value"], "-35.20",
     ("R-QTY-001", "$.payload.combustion[0].consumption.value")),
    ("monthly-report-power.json", ["payload", "preparedAt"], "2026-10-31T23:59:59+08:00",
     ("R-PERIOD-002", "$.payload")),
    ("monthly-report-chemical.json", ["payload", "purchasedHeat", "steam", "enthalpy", "value"], "2800.0",
     ("R-HEAT-003", "$.payload")),
    ("monthly-report-power.json", ["payload", "power", "units", 0, "ncvAsReceived", "labEvidenceId"], "LAB-NONE",
     ("R-LAB-001", "$.payload")),
    ("monthly-report-power.json", ["payload", "labEvidence", 0, "analysisDate"], "2026-10-15",
     ("R-LAB-002", "$.payload.labEvidence[0]")),
    ("monthly-report-power.json", ["payload", "labEvidence", 1, "accreditation", "scheme"], "in_house",
     ("R-LAB-002", "$.payload.labEvidence[1]")),
    ("monthly-report-power.json", ["payload", "dataGaps", 1, "method"], "max_valid_same_day",
     ("R-GAP-001", "$.payload.dataGaps[1]")),
    ("monthly-report-power.json", ["payload", "dataGaps", 0, "flags"], ["M", "N"],
     ("R-GAP-002", "$.payload.dataGaps[0]")),
    ("monthly-report-power.json", ["payload", "dataGaps", 0, "cause"], "full_day_invalid",
     ("R-GAP-002", "$.payload.dataGaps[0]")),
    ("monthly-report-power.json", ["payload", "attachments", 1, "uri"], None,
     ("R-ATT-001", "$.payload.attachments[1]")),
    ("monthly-report-power.json", ["payload", "attachments", 0, "size"], 12,
     ("R-ATT-002", "$.payload.attachments[0]")),
    ("monthly-report-power.json", ["payload", "attachments", 0, "sm3"], "0" * 64,
     ("R-ATT-002", "$.payload.attachments[0]")),
    ("monthly-report-power.json", ["payload", "labEvidence", 0, "attachmentId"], "ATT-NONE",
     ("R-ATT-003", "$.payload")),
    ("monthly-report-power.json", ["payload", "power", "units", 1, "unitEmission", "value"], "300000.000",
     ("R-POW-006", "$.payload.power.units[1]")),
    ("monthly-report-power.json", ["payload", "power", "units", 0, "coalAnalysis", "totalMoisture", "value"], "5.00",
     ("R-POW-007", "$.payload.power.units[0]")),
    ("monthly-report-power.json", ["payload", "power", "units", 0, "coalAnalysis", "carbonBasis"], "dry",
     ("R-POW-007", "$.payload.power.units[0]")),
    ("monthly-report-power.json", ["payload", "power", "units", 0, "coalMeasurement"], None,
     ("R-POW-009", "$.payload.power.units[0]")),
    ("monthly-report-power.json", ["payload", "power", "units", 1, "coalMeasurement", "stockChange", "value"], "-1067.60",
     ("R-POW-010", "$.payload.power.units[1]")),
    ("monthly-report-power.json", ["payload", "power", "units", 0, "intensityPowerSupplied", "value"], "0.9000",
     ("R-POW-011", "$.payload.power.units[0]")),
    ("monthly-report-power.json", ["payload", "power", "units", 0, "intensityHeatSupplied", "value"], "0.9000",
     ("R-POW-012", "$.payload.power.units[0]")),
    ("monthly-report-power.json", ["payload", "power", "units", 1, "biomassCofiring", "heatShare", "value"], "1.2",
     ("R-POW-013", "$.payload.power.units[1]")),
    ("monthly-report-cement.json", ["payload", "cement", "lines", 0, "bypassDustEmission", "value"], "1.000",
     ("R-CEM-005", "$.payload.cement.lines[0]")),
    ("monthly-report-cement.json", ["payload", "cement", "lines", 0, "alternativeFuels", 0, "fossilCarbonShare", "value"], "1",
     ("R-CEM-006", "$.payload.cement.lines[0]")),
    ("monthly-report-steel.json", ["payload", "steel", "netFuels", 0, "stockChange", "value"], "2500.00",
     ("R-STL-005", "$.payload.steel.netFuels[0]")),
    ("monthly-report-steel.json", ["payload", "steel", "netFuels", 2, "emission", "value"], "1.000",
     ("R-STL-006", "$.payload.steel.netFuels[2]")),
    ("monthly-report-steel.json", ["payload", "steel", "purchasedMaterials", 0, "emission", "value"], "1.000",
     ("R-STL-007", "$.payload.steel.purchasedMaterials[0]")),
    ("monthly-report-coal.json", ["payload", "coalMining", "drainedGasCH4", "value"], "40.0",
     ("R-COAL-005", "$.payload")),
    ("monthly-report-coal.json", ["payload", "coalMining", "flareCO2", "value"], "1.000",
     ("R-COAL-006", "$.payload")),
    ("monthly-report-coal.json", ["payload", "coalMining", "postMiningCH4", "value"], "1.000",
     ("R-COAL-007", "$.payload")),
    ("monthly-report-coal.json", ["payload", "coalMining", "co2Escape", "value"], "1.000",
     ("R-COAL-008", "$.payload")),
    ("monthly-report-chemical.json", ["payload", "chemical", "carbonates", 0, "emission", "value"], "1.000",
     ("R-CHEM-004", "$.payload.chemical.carbonates[0]")),
    ("monthly-report-chemical.json", ["payload", "chemical", "flares", 0, "emission", "value"], "1.000",
     ("R-CHEM-005", "$.payload.chemical.flares[0]")),
    ("monthly-report-chemical.json", ["payload", "chemical", "n2oProcesses", 0, "technology"], "adipic_other",
     ("R-CHEM-006", "$.payload.chemical.n2oProcesses[0]")),
    ("monthly-report-chemical.json", ["payload", "totals", "co2Recovered", "value"], "1.000",
     ("R-TOT-003", "$.payload")),
    ("submission-status.json", ["late"], True, ("R-POW-014", "$")),
    # annual reports: per-industry depth tied to the months (R-ANN-003..011)
    ("annual-report-power.json", ["payload", "months", 3, "totals", "combustion", "value"], "1.000",
     ("R-ANN-003", "$.payload")),
    ("annual-report-steel.json", ["payload", "totals", "carbonFixed", "value"], "182176.138",  # 1 kg more
     ("R-ANN-003", "$.payload")),
    ("annual-report-power.json", ["payload", "months", 5, "submissionId"], None,
     ("R-ANN-004", "$.payload")),
    ("annual-report-power.json", ["payload", "power", "units", 1, "months", 11], None,
     ("R-ANN-004", "$.payload")),
    ("annual-report-power.json", ["payload", "power", "units", 0, "grossGeneration", "value"], "3973860.001",
     ("R-ANN-005", "$.payload.power.units[0]")),
    ("annual-report-power.json", ["payload", "power", "units", 1, "months", 6, "unitEmission", "value"], "1.000",
     ("R-ANN-005", "$.payload.power.units[1]")),
    ("annual-report-power.json", ["payload", "power", "units", 0, "unitEmission", "value"], "1.000",
     ("R-ANN-006", "$.payload.power.units[0]")),
    ("annual-report-power.json", ["payload", "power", "units", 0, "intensityPowerSupplied", "value"], "0.8200",
     ("R-ANN-007", "$.payload.power.units[0]")),
    ("annual-report-power.json", ["payload", "power", "units", 0, "intensityHeatSupplied", "value"], "0.1700",
     ("R-ANN-007", "$.payload.power.units[0]")),
    ("annual-report-power.json", ["payload", "power", "units", 1, "loadFactor", "value"], "70.00",
     ("R-ANN-007", "$.payload.power.units[1]")),
    ("annual-report-cement.json", ["payload", "cement", "lines", 0, "kilnDustEmission", "value"], "1.000",
     ("R-ANN-008", "$.payload")),
    ("annual-report-cement.json", ["payload", "cement", "clinkerOutput", "value"], "1700000.00",
     ("R-ANN-008", "$.payload")),
    ("annual-report-cement.json", ["payload", "cement", "lines", 0, "clinkerEmissionFactor", "value"], "0.5500",
     ("R-ANN-008", "$.payload")),
    ("annual-report-cement.json", ["payload", "cement", "lines", 0, "caoContent", "value"], "66.50",
     ("R-ANN-008", "$.payload")),
    ("annual-report-steel.json", ["payload", "steel", "fluxEmission", "value"], "1.000",
     ("R-ANN-009", "$.payload")),
    ("annual-report-steel.json", ["payload", "steel", "carbonFixed", 0, "fixedEmission", "value"], "1.000",
     ("R-ANN-009", "$.payload")),
    ("annual-report-coal.json", ["payload", "coalMining", "postMiningCH4", "value"], "1.000",
     ("R-ANN-010", "$.payload")),
    ("annual-report-coal.json", ["payload", "coalMining", "fugitiveCO2e", "value"], "1.000",
     ("R-ANN-010", "$.payload")),
    ("annual-report-chemical.json", ["payload", "chemical", "massBalanceEmission", "value"], "1.000",
     ("R-ANN-011", "$.payload")),
    ("annual-report-chemical.json", ["payload", "chemical", "co2RecoveredExported", "value"], "1.000",
     ("R-ANN-011", "$.payload")),
    ("annual-report-chemical.json", ["payload", "chemical"], None,
     ("R-IND-001", "$.payload")),
    ("receipt-power.json", ["payload", "deadline"], None, ("R-POW-014", "$.payload")),
]

SCHEMAS = {
    "monthly-report": "SignedMonthlyReport", "annual-report": "SignedAnnualReport",
    "period-statistics": "SignedPeriodStatistics", "metering-point": "MeteringPoint",
    "configuration": "SignedPlatformConfiguration", "entity": "Entity",
    "submission-status": "SubmissionStatus", "receipt": "SignedReceipt",
}


def schema_of(name):
    return next(s for prefix, s in SCHEMAS.items() if name.startswith(prefix))


@pytest.mark.parametrize("example,path,value,expected", CASES,
                         ids=[f"{c[3][0]}:{'.'.join(map(str, c[1][-2:]))}" for c in CASES])
def test_violation_is_reported_with_rule_and_path(validator, example, path, value, expected):
    doc = copy.deepcopy(load_example(example))
    assert validator.validate(schema_of(example), doc) == []  # the example itself is clean
    set_in(doc, path, value)
    found = codes(validator.validate(schema_of(example), doc))
    assert expected in found, found


def test_every_document_rule_has_a_negative_case(index):
    covered = {c[3][0] for c in CASES} | {"R-SUB-002", "R-POW-002", "R-COAL-002", "R-ACQ-001", "R-ACQ-002",
                                           "R-ACQ-005", "R-EVID-001"}
    document_rules = {r["id"] for r in index.rules if r["kind"] == "document"}
    assert document_rules <= covered, document_rules - covered


def test_supplementary_submission(validator):
    doc = copy.deepcopy(load_example("monthly-report-power.json"))
    doc["payload"]["submissionKind"] = "supplementary"
    assert ("R-SUB-002", "$.payload") in codes(validator.validate("SignedMonthlyReport", doc))
    doc["payload"]["reason"] = "系统故障导致逾期 / late because of an outage"
    assert validator.validate("SignedMonthlyReport", doc) == []


def test_calculated_carbon_content_follows_the_formula(validator):
    doc = copy.deepcopy(load_example("monthly-report-power.json"))
    units = doc["payload"]["power"]["units"]
    # Unit 2 had no carbon test: C_ar = NCV_ar x 0.03085 tC/GJ (factor table), and the example is clean.
    u2 = units[1]
    assert u2["carbonContentAsReceived"]["source"] == "calculated"
    assert Decimal(u2["carbonContentAsReceived"]["value"]) == (Decimal(u2["ncvAsReceived"]["value"]) * Decimal("0.03085")).quantize(Decimal("0.0001"))
    u2["carbonContentAsReceived"]["value"] = "0.5600"  # not what the formula gives
    assert ("R-POW-002", "$.payload.power.units[1]") in codes(validator.validate("SignedMonthlyReport", doc))
    units[0]["carbonContentAsReceived"]["source"] = "calculated"  # a measured value relabelled
    assert ("R-POW-002", "$.payload.power.units[0]") in codes(validator.validate("SignedMonthlyReport", doc))


def test_open_pit_mine(validator):
    doc = copy.deepcopy(load_example("monthly-report-coal.json"))
    cm, totals = doc["payload"]["coalMining"], doc["payload"]["totals"]
    for k in ("ch4Ventilation", "ch4Drainage", "ch4Utilised", "ch4Flared", "drainedGasVolume", "drainedGasCH4",
              "flareDestructionEfficiency", "flareCO2", "co2Ventilation", "co2Drainage", "co2Density", "co2Escape"):
        cm.pop(k)
    cm["mineType"] = "open_pit"
    cm["openPitFactor"] = {"value": "0.54", "unit": "Nm3/t", "source": "default"}
    assert ("R-COAL-002", "$.payload") in codes(validator.validate("SignedMonthlyReport", doc))
    # by hand: 618,500 t x 0.54 Nm3/t = 33.399 x 10^4 Nm3; x 7.17 t/10^4 Nm3 = 239.471 tCH4
    ch4 = (Decimal("618500.00") * Decimal("0.54") / 10000 * Decimal("7.17")).quantize(Decimal("0.001"))
    assert ch4 == Decimal("239.471")
    fugitive_ch4 = ch4 + Decimal(cm["postMiningCH4"]["value"])
    cm["ch4Emission"]["value"], cm["ch4EmissionCO2e"]["value"] = str(ch4), str(ch4 * 21)
    cm["fugitiveCH4"]["value"], cm["fugitiveCO2e"]["value"] = str(fugitive_ch4), str(fugitive_ch4 * 21)
    old = Decimal(totals["fugitive"]["value"]) + Decimal(totals.pop("flare")["value"])
    totals["fugitive"]["value"] = str(fugitive_ch4 * 21)
    totals["total"]["value"] = str(Decimal(totals["total"]["value"]) - old + fugitive_ch4 * 21)
    assert validator.validate("SignedMonthlyReport", doc) == []


def test_measurement_batch_rules(validator):
    page = load_example("measurement-batch-page.json")
    batch = copy.deepcopy(page["items"][0])
    assert validator.validate("SignedMeasurementBatch", batch) == []
    batch["payload"]["values"][3] = ""          # flag N without a value
    assert ("R-ACQ-001", "$.payload") in codes(validator.validate("SignedMeasurementBatch", batch))
    batch = copy.deepcopy(page["items"][1])
    assert batch["payload"]["flags"][17] == "B" and batch["payload"]["values"][17] == ""
    assert validator.validate("SignedMeasurementBatch", batch) == []   # B without a value is fine
    batch = copy.deepcopy(page["items"][0])
    batch["payload"]["values"].pop()           # 23 values for count 24
    assert ("R-ACQ-002", "$.payload") in codes(validator.validate("SignedMeasurementBatch", batch))
    batch = copy.deepcopy(page["items"][0])
    batch["payload"]["flags"] += "N"           # 25 flags for count 24
    assert ("R-ACQ-002", "$.payload") in codes(validator.validate("SignedMeasurementBatch", batch))
    batch = copy.deepcopy(page["items"][0])
    batch["payload"]["flags"] = batch["payload"]["flags"][:2] + "B" + batch["payload"]["flags"][3:]  # B with a value
    assert ("R-ACQ-005", "$.payload") in codes(validator.validate("SignedMeasurementBatch", batch))


def test_evidence_lies_inside_the_reporting_month(validator):
    """Period rule (R-PERIOD-002): 2026-10 is [2026-10-01T00:00+08:00, 2026-11-01T00:00+08:00)."""
    doc = copy.deepcopy(load_example("monthly-report-power.json"))
    ev = doc["payload"]["evidence"][0]
    ev["periodStart"], ev["periodEnd"] = "2026-09-30T16:00:00Z", "2026-10-31T16:00:00Z"  # the month exactly, in UTC
    assert validator.validate("SignedMonthlyReport", doc) == []
    ev["periodStart"] = "2026-09-30T15:00:00Z"  # 23:00 on 30 September in Beijing: the previous month
    assert ("R-EVID-001", "$.payload.evidence[0]") in codes(validator.validate("SignedMonthlyReport", doc))
    ev["periodStart"], ev["periodEnd"] = "2026-10-01T00:00:00+08:00", "2026-11-01T00:00:01+08:00"
    assert ("R-EVID-001", "$.payload.evidence[0]") in codes(validator.validate("SignedMonthlyReport", doc))


def test_schema_errors_name_the_field(validator):
    doc = copy.deepcopy(load_example("monthly-report-power.json"))
    del doc["payload"]["totals"]
    doc["payload"]["unexpected"] = 1
    found = codes(validator.validate("SignedMonthlyReport", doc))
    assert ("SCHEMA-REQUIRED", "$.payload.totals") in found
    assert ("SCHEMA-ADDITIONALPROPERTIES", "$.payload") in found


def test_rules_are_unit_independent(validator):
    """The same report in kg instead of t, and % instead of a ratio, still satisfies the rules."""
    doc = copy.deepcopy(load_example("monthly-report-power.json"))
    fuel = doc["payload"]["combustion"][0]
    fuel["oxidationRate"] = {"value": "98", "unit": "%", "source": "default"}
    assert validator.validate("SignedMonthlyReport", doc) == []
    unit = doc["payload"]["power"]["units"][0]
    unit["carbonContentAsReceived"]["value"] = str(Decimal(unit["carbonContentAsReceived"]["value"]) / 100)
    unit["carbonContentAsReceived"]["unit"] = "tC/t"
    assert validator.validate("SignedMonthlyReport", doc) == []
