"""The rule-expression evaluator (compiled once per expression): exact decimals, SI units,
absent names, refusals of anything outside the whitelist."""

from decimal import Decimal

import pytest

from cedx.spec.rules import RuleEngine, _Missing, _Scope


@pytest.fixture(scope="module")
def engine(index):
    return RuleEngine(index)


def ev(engine, expr, current, root=None):
    return engine.evaluate(expr, _Scope(current, root if root is not None else current, "$"))


def test_arithmetic_is_exact_and_in_si_units(engine):
    doc = {"a": {"value": "1.5", "unit": "t"}, "b": {"value": "500", "unit": "kg"}, "n": "0.1", "s": "ab"}
    assert ev(engine, "a + b", doc) == Decimal("2000")  # SI: kg
    assert ev(engine, "n * 3 == 0.3", doc) is True  # never via binary floats
    assert ev(engine, "n + n", doc) == "0.10.1"  # two strings concatenate
    assert ev(engine, "s + 'c'", doc) == "abc"
    assert ev(engine, "-n * 2 / 4", doc) == Decimal("-0.05")
    assert ev(engine, "1 < 2 < 3", doc) is True and ev(engine, "1 < 3 < 2", doc) is False
    assert ev(engine, "not (a == b) and (1 == 2 or 2 in [1, 2])", doc) is True
    assert ev(engine, "approx(a, q('1.5005', 't'))", doc) is True
    assert ev(engine, "approx(a, q('1.6', 't'))", doc) is False
    assert ev(engine, "sum(items, 'x * 2')", {"items": [{"x": "1"}, {"x": "2.5"}]}) == Decimal("7")
    assert ev(engine, "root.period", doc, {"period": "2026-10"}) == "2026-10"


def test_absent_names_and_zero_divisors_make_a_rule_inapplicable(engine):
    with pytest.raises(_Missing):
        ev(engine, "missing == 1", {})
    with pytest.raises(_Missing):
        ev(engine, "1 / (n - n)", {"n": "3"})
    assert ev(engine, "present(missing)", {}) is False
    assert ev(engine, "opt(missing) + 1", {}) == Decimal(1)


@pytest.mark.parametrize("expr, message", [
    ("__import__('os')", "function not allowed"),
    ("a ** 2", "operator not allowed"),
    ("~a", "unary operator not allowed"),
    ("a[0]", "construct not allowed"),
    ("(lambda: 1)()", "function not allowed"),
])
def test_constructs_outside_the_whitelist_are_refused(engine, expr, message):
    with pytest.raises(ValueError, match=message):
        ev(engine, expr, {"a": "2"})


def test_refusal_happens_only_where_evaluated(engine):
    # Short-circuit: the refused branch is never reached, as with a tree walk.
    assert ev(engine, "1 == 2 and a ** 2", {"a": "2"}) is False


def test_root_only_values_are_memoised_per_check_and_membership_is_unchanged(engine):
    from cedx.spec.rules import _parse

    rule = {"id": "R-T", "en": "t", "forEach": "items", "check": "code in root.allowed.code"}
    doc = {"allowed": [{"code": "A"}, {"code": "B"}], "items": [{"code": "A"}, {"code": "C"}, {"code": 1}]}
    assert [v.path for v in engine.check_rule(rule, doc)] == ["$.items[1]", "$.items[2]"]
    doc["allowed"].append({"code": "C"})  # a new check sees the changed document
    assert [v.path for v in engine.check_rule(rule, doc)] == ["$.items[2]"]
    # unhashable members fall back to list membership
    rule2 = {"id": "R-T2", "en": "t", "forEach": "items", "check": "v in root.allowed"}
    doc2 = {"allowed": [{"x": 1}], "items": [{"v": {"x": 1}}, {"v": {"x": 2}}]}
    assert [v.path for v in engine.check_rule(rule2, doc2)] == ["$.items[1]"]
    assert _parse("code in root.allowed.code")  # parsed once, cached



@pytest.mark.parametrize("quantity", [
    {"value": "1.5", "unit": "t"}, {"value": "-0", "unit": "t"}, {"value": "0", "unit": "kg"},
    {"value": "20.5", "unit": "degC"}, {"value": "12345678901234567.123456789012", "unit": "MWh"},
    {"value": "1", "unit": "furlong"}, {"value": "x", "unit": "t"}, {"value": ["1"], "unit": "t"},
    {"value": "1", "unit": ["t"]}, {"value": "1"}, {"value": 2, "unit": "t"}, {"value": True, "unit": "t"},
])
def test_a_quantitys_number_is_the_unit_tables_conversion_first_time_and_memoised(index, quantity):
    """The SI memo and its conversion table give what the unit table's Unit.to_si gives (same
    digits, sign and exponent), or the same error, on first sight and from the memo; so do a
    generated conversion and sum()."""
    from decimal import Decimal as D

    from cedx.spec.rules import _ARITH

    def outcome(fn):
        try:
            value = fn()
            return ("value", value.as_tuple())
        except Exception as exc:  # noqa: BLE001 — the same error is part of the answer
            return (type(exc).__name__, str(exc))

    def reference():
        if "value" not in quantity or "unit" not in quantity:
            raise TypeError(f"not a number: {quantity!r}")
        if quantity["unit"] not in index.units:
            raise TypeError(f"unknown unit {quantity['unit']}")
        return index.units[quantity["unit"]].to_si(D(quantity["value"]))

    fresh = RuleEngine(index)
    doc = {"x": quantity, "xs": [quantity]}
    for _ in range(2):  # first sight, then from the memo
        if "value" in quantity and "unit" in quantity:
            assert outcome(lambda: fresh.si_value(quantity["value"], quantity["unit"])) == outcome(reference)
        assert outcome(lambda: ev(fresh, "x * 1", doc)) == outcome(lambda: _ARITH.multiply(reference(), D(1)))
        assert outcome(lambda: ev(fresh, "sum(xs)", doc)) == outcome(lambda: D(0) + reference())
