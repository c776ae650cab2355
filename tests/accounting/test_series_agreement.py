"""Conservative substitution (R-GAP-002) and agreement between acquisition and report (R-EVID-002)."""

import copy
import datetime as dt
import json
from decimal import Decimal as D

import pytest

from cedx import trust
from cedx.accounting import agreement, guideline
from cedx.accounting.series import month_total
from cedx.acquisition.batches import Signer
from cedx.acquisition.simulate import SITES, Simulation
from cedx.acquisition.store import SealedStore
from cedx.trust import chain

CST = dt.timezone(dt.timedelta(hours=8))
MONTH = dt.datetime(2026, 10, 1, tzinfo=CST)


def batches(days: list[list[tuple[str | None, str]]]) -> list[dict]:
    """Daily batches of 24 hourly (value, flag) pairs, hash-chained."""
    out, previous = [], chain.GENESIS_DIGEST
    for i, hours in enumerate(days):
        start = MONTH + dt.timedelta(days=i)
        values = [{"time": (start + dt.timedelta(hours=h)).isoformat(), **({"value": v} if v is not None else {}), "flag": f}
                  for h, (v, f) in enumerate(hours)]
        p = {"sourceId": "S", "pointId": "P", "granularity": "hour", "unit": "t/h", "periodStart": start.isoformat(),
             "periodEnd": (start + dt.timedelta(days=1)).isoformat(), "sequenceNumber": i + 1, "previousBatchDigest": previous,
             "sealedAt": (start + dt.timedelta(days=1, minutes=5)).isoformat(), "values": values}
        previous = trust.batch_digest(p)
        out.append(p)
    return out


def test_a_fully_invalid_day_is_not_zero():
    # day 1: 20 valid hours of 100 t/h, 4 hours flagged M -> substituted by the day's highest valid hour (100)
    # day 2: all 24 hours flagged B (no value) -> the month's highest valid hour, 120, for each: 2,880 t
    # day 3: 22 hours of 120 t/h, 2 hours F (stopped) -> 0
    day1 = [("100", "N")] * 20 + [(None, "M")] * 4
    day2 = [(None, "B")] * 24
    day3 = [("120", "N")] * 22 + [(None, "F")] * 2
    t = month_total(batches([day1, day2, day3]), MONTH)
    # 20 x 100 + 4 x 100 + 24 x 120 + 22 x 120 + 0 = 2,000 + 400 + 2,880 + 2,640 = 7,920 t
    assert t.total == D("7920")
    assert (t.valid_hours, t.substituted_hours, t.stopped_hours) == (42, 28, 2)
    assert [(g.method, g.cause, g.hours, g.contribution) for g in t.gaps] == [
        ("max_valid_same_day", "invalid_flag", 4, D("400")), ("max_valid_period", "full_day_invalid", 24, D("2880"))]


def test_only_hours_inside_the_reporting_month_count():
    # a batch for 31 October 2026 (Beijing) counts in October; with month_start = November it counts for nothing
    day = [("10", "N")] * 24
    last_day = batches([day])
    for b in last_day:
        b["values"] = [{**v, "time": v["time"].replace("2026-10-01", "2026-10-31")} for v in b["values"]]
    assert month_total(last_day, MONTH).total == D("240")
    assert month_total(last_day, dt.datetime(2026, 11, 1, tzinfo=CST)).total == D("0")


def test_calibration_and_over_range_hours_are_not_valid_data():
    day = [("100", "N")] * 21 + [("80", "C"), ("95", "S"), ("400", "T")]
    t = month_total(batches([day]))
    assert t.valid_hours == 21 and t.substituted_hours == 3 and t.total == D("2400")  # 24 x 100


def test_a_day_of_hours_that_carry_values_but_are_not_valid_is_substituted_not_summed():
    # day 2: every hour flagged C (calibration) or S (manual) — each with a number, none valid data.
    # Not their values (24 x 50 = 1,200), not zero: the month's highest valid hour, 120, for each hour.
    day1 = [("100", "N")] * 23 + [("120", "N")]
    day2 = [("50", "C")] * 12 + [("50", "S")] * 12
    t = month_total(batches([day1, day2]), MONTH)
    assert t.total == D(23 * 100 + 120 + 24 * 120)
    assert [(g.method, g.cause, g.hours, dict(g.flags)) for g in t.gaps] == [
        ("max_valid_period", "full_day_invalid", 24, {"C": 12, "S": 12})]


def test_outputs_are_substituted_on_the_low_side():
    day = [("500", "N")] * 12 + [("400", "N")] * 11 + [(None, "D")]
    # generation: the lowest valid hour (400) is the conservative side (it raises the intensity)
    assert month_total(batches([day]), measurand="electricity_generation").total == D("500") * 12 + D("400") * 12
    assert month_total(batches([day])).total == D("500") * 13 + D("400") * 11


@pytest.fixture(scope="module")
def coal_batches(tmp_path_factory):
    """The simulated coal feeder's hourly batches of the month, as the source seals them."""
    store = SealedStore(tmp_path_factory.mktemp("store") / "source.db",
                        signer=Signer("SRC-POWER-01", trust.generate_private_key(), []))
    sim = Simulation([m for m in SITES["power"](MONTH) if m.point_id == "PWR-U1-COAL"], MONTH)
    sim.register(store)
    sim.write(store, MONTH + dt.timedelta(days=31))
    return [json.loads(b.envelope)["payload"] for b in store.batches("PWR-U1-COAL", "hour", 0, 2**40)]


def report_from(batches_):
    total = month_total(batches_)
    ev = guideline.evidence_ref(total, "SRC-POWER-01", "power.units[0].coalConsumption", "t", "coal_consumption")
    return {"period": "2026-10", "power": {"units": [{"coalConsumption": {"value": ev["total"]["value"], "unit": "t"}}]},
            "evidence": [ev], "dataGaps": guideline.metered_gaps(total, "power.units[0].coalConsumption", "t", "coal_consumption")}


def test_report_agrees_with_the_signed_batches(coal_batches):
    report = report_from(coal_batches)
    assert report["dataGaps"] and report["evidence"][0]["substitutedHours"] > 0  # the simulation has M and B windows
    assert agreement.check(report, {"PWR-U1-COAL": coal_batches}) == []


def test_disagreement_beyond_rounding_is_flagged(coal_batches):
    report = report_from(coal_batches)
    field = report["power"]["units"][0]["coalConsumption"]
    # rounding of the last place is tolerated (half a unit: 0.005 t) ...
    assert agreement.check(report, {"PWR-U1-COAL": coal_batches}) == []
    # ... 0.01 t is not (0.1 % of the month would be about 150 t)
    field["value"] = str(D(field["value"]) + D("0.01"))
    found = agreement.check(report, {"PWR-U1-COAL": coal_batches})
    assert [d.rule for d in found] == ["R-EVID-002"] and "coalConsumption" in found[0].message


def test_altered_or_missing_batches_are_flagged(coal_batches):
    report = report_from(coal_batches)
    altered = copy.deepcopy(coal_batches)
    altered[10]["values"][5] = "999.99"
    assert agreement.check(report, {"PWR-U1-COAL": altered})          # the chain no longer holds
    assert agreement.check(report, {"PWR-U1-COAL": coal_batches[:-1]})  # a day missing
    report["evidence"][0]["total"]["value"] = str(D(report["evidence"][0]["total"]["value"]) - 100)
    report["power"]["units"][0]["coalConsumption"]["value"] = report["evidence"][0]["total"]["value"]
    assert any("evidence states" in d.message for d in agreement.check(report, {"PWR-U1-COAL": coal_batches}))


def test_a_point_read_at_two_granularities_keeps_its_chains_apart(tmp_path, coal_batches):
    # Each granularity of a point is its own chain with its own sequence numbers: minute batches of
    # the same point, handed in beside the hourly ones, must not break the hourly evidence.
    store = SealedStore(tmp_path / "source.db", signer=Signer("SRC-POWER-01", trust.generate_private_key(), []))
    sim = Simulation([m for m in SITES["power"](MONTH) if m.point_id == "PWR-U1-COAL"], MONTH)
    sim.register(store)
    sim.write(store, MONTH + dt.timedelta(days=1))
    minutes = [json.loads(b.envelope)["payload"] for b in store.batches("PWR-U1-COAL", "minute", 0, 2**40)]
    assert minutes and {b["sequenceNumber"] for b in minutes} & {b["sequenceNumber"] for b in coal_batches}
    report = report_from(coal_batches)
    assert agreement.check(report, {"PWR-U1-COAL": minutes + coal_batches}) == []
