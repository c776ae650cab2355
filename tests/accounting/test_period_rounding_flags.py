"""Period rule (R-PERIOD-002), GB/T 8170 rounding, flag/value agreement (R-ACQ-005/006)."""

import datetime as dt
from decimal import Decimal as D

import pytest

from cedx.accounting import flags, period
from cedx.accounting.rounding import round_gbt8170

UTC = dt.timezone.utc
CST = dt.timezone(dt.timedelta(hours=8))


def test_month_bounds_are_china_standard_time():
    start, end = period.bounds("2026-10")
    assert start == dt.datetime(2026, 9, 30, 16, 0, tzinfo=UTC)      # 1 Oct 00:00 Beijing
    assert end == dt.datetime(2026, 10, 31, 16, 0, tzinfo=UTC)        # 1 Nov 00:00 Beijing, exclusive
    assert period.bounds("2026-12")[1] == dt.datetime(2027, 1, 1, tzinfo=CST)
    assert period.bounds("2028-02")[1] - period.bounds("2028-02")[0] == dt.timedelta(days=29)


@pytest.mark.parametrize("instant,month", [
    (dt.datetime(2026, 9, 30, 16, 0, tzinfo=UTC), "2026-10"),        # first instant of October
    (dt.datetime(2026, 9, 30, 15, 59, 59, tzinfo=UTC), "2026-09"),   # last second of September in Beijing
    (dt.datetime(2026, 10, 31, 23, 30, tzinfo=CST), "2026-10"),
    (dt.datetime(2026, 11, 1, 0, 0, tzinfo=CST), "2026-11"),
    (dt.datetime(2026, 10, 31, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))), "2026-11"),  # 01:00 1 Nov in Beijing
])
def test_period_of_an_instant(instant, month):
    assert period.period_of(instant) == month


def test_naive_instants_are_refused():
    with pytest.raises(ValueError):
        period.period_of(dt.datetime(2026, 10, 1))


def test_power_upload_deadline_is_40_days_after_month_end():
    # 2026-10 ends 2026-11-01T00:00+08:00; + 40 days = 2026-12-11T00:00+08:00
    assert period.upload_deadline("2026-10") == dt.datetime(2026, 12, 11, tzinfo=CST)
    assert not period.is_late("2026-10", dt.datetime(2026, 12, 10, 23, 59, 59, tzinfo=CST))
    assert period.is_late("2026-10", dt.datetime(2026, 12, 11, tzinfo=CST))


@pytest.mark.parametrize("value,places,expected", [
    ("12.344", 2, "12.34"), ("12.346", 2, "12.35"),
    ("12.345", 2, "12.34"),     # exactly half, 4 is even: drop
    ("12.355", 2, "12.36"),     # exactly half, 5 is odd: round up
    ("12.3451", 2, "12.35"),    # more than half
    ("-12.345", 2, "-12.34"),   # by absolute value
    ("0.125", 2, "0.12"), ("1234.5", 0, "1234"), ("1235.5", 0, "1236"),
    ("2.346", 1, "2.3"),        # one step: not 2.346 -> 2.35 -> 2.4
])
def test_gbt_8170_rounding(value, places, expected):
    assert str(round_gbt8170(D(value), places)) == expected


T = "2026-10-01T00:00:00+08:00"


@pytest.mark.parametrize("row,rule", [
    ((T, D("1.5"), "B"), "R-ACQ-005"),      # B carries no value
    ((T, None, "N"), "R-ACQ-001"),           # N carries a value
    ((T, D("401"), "N"), "R-ACQ-006"),       # N inside the range
    ((T, D("-1"), "N"), "R-ACQ-006"),
    ((T, D("399"), "T"), "R-ACQ-006"),       # T at or above the upper limit
    ((T, None, "T"), "R-ACQ-001"),           # T, S, C carry a value too (spec QualityFlag value: required)
    ((T, None, "S"), "R-ACQ-001"),
    ((T, None, "C"), "R-ACQ-001"),
])
def test_flag_value_disagreement(row, rule):
    assert [v.rule for v in flags.check([row], D("0"), D("400"))] == [rule]


def test_flag_value_agreement():
    rows = [(T, D("0"), "N"), (T, D("400"), "N"), (T, D("400"), "T"), (T, D("412.5"), "T"), (T, None, "B"), (T, None, "M"),
            (T, D("0"), "F")]
    assert flags.check(rows, D("0"), D("400")) == []


def test_flag_check_reads_row_and_columnar_batches():
    row_batch = {"values": [{"time": T, "value": "1.0", "flag": "B"}, {"time": T, "flag": "N"}]}
    columnar = {"start": "2026-09-30T16:00:00Z", "step": "PT1H", "count": 2, "values": ["1.0", ""], "flags": "BN"}
    rng = {"lower": "0", "upper": "10", "unit": "t/h"}
    assert [v.rule for v in flags.check_batch(row_batch, rng)] == ["R-ACQ-005", "R-ACQ-001"]
    assert [v.rule for v in flags.check_batch(columnar, rng)] == ["R-ACQ-005", "R-ACQ-001"]
    assert [t for t, _, _ in flags.rows(columnar)] == ["2026-09-30T16:00:00Z", "2026-09-30T17:00:00Z"]


def test_the_source_refuses_readings_whose_flag_disagrees(tmp_path):
    """At the source (SealedStore.append and the bulk path): N outside the range, T below the
    upper limit and B with a value are refused before anything is sealed."""
    import json
    from pathlib import Path

    from cedx.acquisition.store import SealedStore

    point = json.loads((Path(__file__).parents[2] / "spec/examples/metering-point.json").read_text())  # range 0..400 t/h
    store = SealedStore(tmp_path / "store.db")
    since = dt.datetime(2026, 10, 1, tzinfo=CST)
    store.register_point(point, since=since)
    t = since + dt.timedelta(minutes=1)
    store.append(point["pointId"], [(t, "212.5", "N"), (t + dt.timedelta(minutes=1), "400", "T"),
                                    (t + dt.timedelta(minutes=2), None, "B")])
    for reading, rule in (((t, "401", "N"), "R-ACQ-006"), ((t, "399", "T"), "R-ACQ-006"), ((t, "12", "B"), "R-ACQ-005")):
        with pytest.raises(ValueError, match=rule):
            store.append(point["pointId"], [reading])
        with pytest.raises(ValueError, match=rule):
            store.append_and_seal(point["pointId"], [reading], until=since + dt.timedelta(days=1))
