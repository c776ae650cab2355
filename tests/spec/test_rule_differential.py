"""Differential test of the rule compilers: the generated Python functions (the path rule checks
take) and the specialised closures (single-operator comparisons, numeric operators, calls with
compiled arguments, memoised root-only calls) give the same violations and messages, in the same
order, and the same errors, as the general closures, on every example and on mutated copies that
break rules."""

import copy
import random

import pytest

from cedx.spec import rules as rules_module
from cedx.spec.validate import Validator

from .conftest import example_usage, load_example

USAGE = example_usage()
# "2"+x breaks sums and ratios, "0" divisors and orderings, a wrong source or citation the lab
# rules, a wrong unit the unit arithmetic, a month past December the period functions.
MUTATIONS = (
    lambda x: "0",
    lambda x: "2" + x if isinstance(x, str) else x,
    lambda x: "measured",
    lambda x: "LAB-NONE",
    lambda x: "kg",
    lambda x: "-1.5",
    lambda x: "2026-13",
    lambda x: 7,
    lambda x: None,
)


def _leaves(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _leaves(value, (*path, i))
    else:
        yield path, node


def _set(doc, path, value, delete=False):
    for part in path[:-1]:
        doc = doc[part]
    if delete:
        del doc[path[-1]]
    else:
        doc[path[-1]] = value


def _examples(index):
    """(schema, document) of every JSON example whose schema the index knows."""
    for name in sorted(USAGE):
        schema = USAGE[name][0]
        if name.endswith(".json") and schema in index.schemas:
            yield schema, load_example(name)


def _cases(index):
    rng = random.Random(14)
    for schema, doc in _examples(index):
        yield schema, doc
        leaves = list(_leaves(doc))
        for path, value in rng.sample(leaves, min(len(leaves), 120)):
            for mutate in rng.sample(MUTATIONS, 3):
                mutated = copy.deepcopy(doc)
                _set(mutated, path, mutate(value))
                yield schema, mutated
            if isinstance(path[-1], str):
                mutated = copy.deepcopy(doc)
                _set(mutated, path, None, delete=True)
                yield schema, mutated


# Values no schema-valid document has: they make number() and comparisons raise, so the order in
# which an expression evaluates its parts decides which error comes out.
BAD = (True, None, "x", [], {"value": "1"}, {"value": "1", "unit": "furlong"})


def _dicts(node, path=()):
    if isinstance(node, dict):
        if len(node) >= 2:
            yield path, node
        for key, value in node.items():
            yield from _dicts(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _dicts(value, (*path, i))


def _pair_cases(index):
    """Two fields of one object broken at once (one given a bad value, the other deleted or also
    bad): an element where two parts of a rule fail, so the first one evaluated must decide."""
    rng = random.Random(1414)
    for schema, doc in _examples(index):
        objects = list(_dicts(doc))
        for path, obj in rng.sample(objects, min(len(objects), 40)):
            for _ in range(3):
                first, second = rng.sample(sorted(obj), 2)
                mutated = copy.deepcopy(doc)
                _set(mutated, (*path, first), rng.choice(BAD))
                if rng.random() < 0.5:
                    _set(mutated, (*path, second), None, delete=True)
                else:
                    _set(mutated, (*path, second), rng.choice(BAD))
                yield schema, mutated


def _violations(validator, cases):
    out = []
    for schema, doc in cases:
        try:  # the document's rules and, for a signed document, its payload's
            out.append([(i.path, i.code, i.message) for i in validator.rule_issues(schema, doc)])
        except Exception as exc:  # noqa: BLE001 — the same error either way is part of the answer
            out.append((type(exc).__name__, str(exc)))
    return out


def _compiled(index, cases, *, generate, specialise):
    """The violations with every expression compiled anew in one mode; the default restored."""
    rules_module._parse.cache_clear()
    rules_module._GENERATE, rules_module._SPECIALISE = generate, specialise
    try:
        return _violations(Validator(index), cases)
    finally:
        rules_module._GENERATE, rules_module._SPECIALISE = True, True
        rules_module._parse.cache_clear()


@pytest.fixture(scope="module")
def cases(index):
    return list(_cases(index)) + list(_pair_cases(index))


@pytest.fixture(scope="module")
def general(index, cases):
    return _compiled(index, cases, generate=False, specialise=False)


@pytest.mark.parametrize("generate, specialise", [(True, True), (False, True)], ids=["generated", "specialised"])
def test_compiled_rules_give_the_same_violations_as_the_general_closures(index, cases, general, generate, specialise):
    compiled = _compiled(index, cases, generate=generate, specialise=specialise)
    assert len(cases) > 1000
    broken = sum(1 for v in general if v and isinstance(v, list))
    assert broken > len(cases) // 10, "the mutations should break rules"  # the test can fail
    errors = {v[0] for v in general if isinstance(v, tuple)}
    assert {"TypeError", "InvalidOperation"} <= errors, errors  # and make evaluation fail
    mismatches = [(i, c, g) for i, (c, g) in enumerate(zip(compiled, general)) if c != g]
    assert not mismatches, mismatches[:3]


def test_memoised_root_only_calls_are_per_check(index):
    """hoursInPeriod(root.period) is computed once per rule check, never carried to another
    document: a changed period changes the answer."""
    engine = Validator(index).rules
    rule = {"id": "R-T", "en": "t", "forEach": "units", "check": "hours <= hoursInPeriod(root.period)"}
    doc = {"period": "2026-02", "units": [{"hours": {"value": h, "unit": "h"}} for h in ("672", "700", "744")]}
    assert [v.path for v in engine.check_rule(rule, doc)] == ["$.units[1]", "$.units[2]"]
    doc["period"] = "2026-03"
    assert engine.check_rule(rule, doc) == []


def _outcome(fn, *args):
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 — the same error either way is part of the answer
        return (type(exc).__name__, str(exc))


def _rule_by_rule(engine, rules, target, base):
    return [v for r in rules for v in engine.check_rule(r, target, base)]


def test_rules_checked_together_give_what_each_rule_gives_alone(index, cases):
    """check_rules (the rules of one forEach in one generated function) against check_rule rule
    by rule (a generated function each): the same violations in the same order, or the same
    error."""
    validator = Validator(index)
    engine = validator.rules
    together, alone = [], []
    for schema, doc in cases[::4]:
        signed = index.schemas[schema].get("x-cedx-signed")
        targets = [(schema, doc, "$")]
        if signed and isinstance(doc, dict) and "payload" in doc:
            targets.append((signed["payload"], doc["payload"], "$.payload"))
        for name, target, base in targets:
            rules = index.rules_for(name)
            together.append(_outcome(engine.check_rules, rules, target, base))
            alone.append(_outcome(_rule_by_rule, engine, rules, target, base))
    assert sum(1 for v in together if v and isinstance(v, list)) > 100  # violations found
    assert sum(1 for v in together if isinstance(v, tuple)) > 100  # and errors raised
    mismatches = [(i, t, a) for i, (t, a) in enumerate(zip(together, alone)) if t != a]
    assert not mismatches, mismatches[:3]


def test_together_the_first_rules_error_comes_out_not_the_first_elements(index):
    """Rule by rule, rule A's error at element 1 comes before rule B's at element 0; checked
    together (element by element) B's would come first: the engine must still raise A's."""
    engine = Validator(index).rules
    rule_a = {"id": "R-A", "en": "a", "forEach": "items", "check": "a * 2 > 0"}
    rule_b = {"id": "R-B", "en": "b", "forEach": "items", "check": "b * 2 > 0"}
    doc = {"items": [{"a": "1", "b": True}, {"a": "x", "b": "1"}]}
    with pytest.raises(Exception) as alone:
        engine.check_rule(rule_a, doc)
    with pytest.raises(Exception) as together:
        engine.check_rules([rule_a, rule_b], doc)
    assert type(together.value) is type(alone.value) and str(together.value) == str(alone.value)
    with pytest.raises(TypeError, match="boolean"):  # and B alone raises its own
        engine.check_rules([rule_b, rule_a], doc)


def test_each_rule_keeps_its_tolerance_and_a_failed_conversion_is_not_reused(index):
    engine = Validator(index).rules
    loose = {"id": "R-L", "en": "l", "forEach": "items", "check": "approx(a, b)", "tolerance": {"relative": "0.1"}}
    strict = {"id": "R-S", "en": "s", "forEach": "items", "check": "approx(a, b)"}
    # c absent in item 0: the first rule is inapplicable there, the second still converts a and b
    uses_c = {"id": "R-C", "en": "c", "forEach": "items", "check": "approx(c, a)"}
    doc = {"items": [{"a": {"value": "1.05", "unit": "t"}, "b": {"value": "1", "unit": "t"}},
                     {"a": {"value": "1", "unit": "t"}, "b": {"value": "1", "unit": "t"}, "c": {"value": "2", "unit": "t"}}]}
    found = [(v.rule, v.path) for v in engine.check_rules([uses_c, loose, strict], doc)]
    assert found == [("R-C", "$.items[1]"), ("R-S", "$.items[0]")]
    assert "reported 1050, computed 1000" in engine.check_rules([strict], doc)[0].message


# Constructs the spec's rules do not all use today (chained and string comparisons, unary minus,
# string joins, nested per-element expressions, refused constructs, functions handed to the
# closures): generated and general closures must still agree, element by element.
SYNTHETIC = [
    ("items", None, "approx(a, b * 2 / c) and not (a < 0)"),
    ("items", "present(c)", "0 < a <= b < 1000"),
    ("items", None, "-a * 2 + b - c > -5"),
    ("items", None, "name + '-x' == 'n1-x' or name in ['n2', 'n3']"),
    ("items", None, "name in root.names and code in root.items.code"),
    ("items", None, "sum(parts, 'v * 2') <= a and all(parts, \"v > 0 and unitOf(q) == 'kg'\")"),
    ("items", None, "count(parts) == length(parts) and unique(parts.v) and increasing(parts.v)"),
    ("items", None, "opt(missing) + a / (b - b) > 0"),
    ("items", None, "a ** 2 > 0 or True"),
    ("items", "a > 1", "startsWith(name, 'n') and unitOf(a) == 'kg'"),
    ("items", None, "all(parts, 'v') and sum(parts, 7)"),
    (None, None, "sum(items.a) == sum(items, 'a') and count(items) >= 1"),
    (None, "present(names)", "all(parameters(root), \"source != 'measured' or ref in root.names\")"),
    (None, None, "hoursInPeriod(root.period) > 0 and monthStart(period) < monthEnd(period)"),
    # a name compared before and after it is converted (a failed conversion is not kept)
    ("items", None, "a <= b and approx(a, b * 2) and c > a"),
    ("items", "c > 0", "approx(c, a) or b > c or -a < 0"),
    # nested and long conjunctions and disjunctions (nested code; flat past eight operands)
    ("items", None, "(a > 0 or b > 0) and not (c > 1 and a < 2 and b < 3) or name == 'n1'"),
    ("items", None, "a > 0 or b > 0 or c > 0 or a > 1 or b > 1 or c > 1 or a > 2 or b > 2 or c > 2"),
    (None, None, "sum(items.a) > 0 and sum(items.parts.q) >= 0"),
]


def _synthetic_docs():
    rng = random.Random(7)
    kg = ("kg", "t", "kg", "t", "kg", "t", "kg", "t", "kg", "furlong")  # an unknown unit now and then
    for _ in range(80):
        items = []
        for _ in range(rng.randint(0, 4)):
            item = {
                "name": rng.choice(["n1", "n2", "n4", 3, None]),
                "code": rng.choice(["A", "B", ["A"]]),
                "a": ({"value": rng.choice(["1", "5.5", "-2", "0", "1", "5.5", "x"]), "unit": rng.choice(kg)}
                      if rng.random() < 0.85 else rng.choice(["3", True, 2])),
                "b": {"value": rng.choice(["2", "0", "7.25"]), "unit": "kg"},
                "c": rng.choice([{"value": "1", "unit": "kg"}, {"value": "0", "unit": "kg"}, "4"]),
                "parts": [{"v": rng.choice(["1", "2", "-1", "1", "2", "x"]),
                           "q": {"value": "1", "unit": rng.choice(kg), "source": rng.choice(["measured", "default"]),
                                 **({"ref": "n1"} if rng.random() < 0.7 else {})}}
                          for _ in range(rng.randint(0, 3))],
            }
            for key in list(item):
                if rng.random() < 0.1:
                    del item[key]
            items.append(item)
        doc = {"items": items, "names": rng.choice([["n1", "n2"], [["n1"]], "n1"]),
               "period": rng.choice(["2026-02", "2026-13", "0000-01"])}
        if rng.random() < 0.1:
            del doc["names"]
        yield doc


def test_generated_and_general_closures_agree_on_synthetic_rules(index):
    rules = [{"id": f"R-S{i}", "en": f"rule {i}", "check": check, **({"forEach": each} if each else {}),
              **({"when": when} if when else {})} for i, (each, when, check) in enumerate(SYNTHETIC)]
    docs = list(_synthetic_docs())

    def run(generate):
        rules_module._parse.cache_clear()
        rules_module._GENERATE, rules_module._SPECIALISE = generate, generate
        try:
            engine = Validator(index).rules
            out = []
            for doc in docs:
                out.append(_outcome(engine.check_rules, rules, doc, "$"))  # together
                out.extend(_outcome(engine.check_rule, rule, doc, "$") for rule in rules)  # and alone
            return out
        finally:
            rules_module._GENERATE, rules_module._SPECIALISE = True, True
            rules_module._parse.cache_clear()

    generated, general = run(True), run(False)
    assert sum(1 for v in general if v and isinstance(v, list)) > 50
    assert sum(1 for v in general if isinstance(v, tuple)) > 50
    mismatches = [(i, g, r) for i, (g, r) in enumerate(zip(generated, general)) if g != r]
    assert not mismatches, mismatches[:3]


# --- parameters(root) along the schema's plan (issue 14) ---------------------------------------
# validate() tells the rules the document satisfies its schema; parameters(root) then looks only
# where a Parameter can be. It must find what the whole walk finds, in the same order, and
# validate() must give what the general closures (always the whole walk) give.

def _valid_examples(validator):
    for schema, doc in _examples(validator.index):
        if not validator.validate(schema, doc):
            yield schema, doc


def _shuffled(node, rng):
    """The same document with every object's members in another order."""
    if isinstance(node, dict):
        keys = list(node)
        rng.shuffle(keys)
        return {k: _shuffled(node[k], rng) for k in keys}
    if isinstance(node, list):
        return [_shuffled(v, rng) for v in node]
    return node


def test_the_planned_walk_finds_what_the_whole_walk_finds_in_document_order(index):
    validator = Validator(index)
    engine = validator.rules
    rng = random.Random(3)
    seen = 0
    for schema, doc in _valid_examples(validator):
        for variant in (doc, _shuffled(doc, rng)):
            targets = [(engine.parameter_plan(schema), variant)]
            signed = index.schemas[schema].get("x-cedx-signed")
            if signed:  # the payload's plan is the envelope's member
                targets.append((engine.member_plan(targets[0][0], "payload"), variant["payload"]))
            for plan, target in targets:
                whole, planned = [], []
                rules_module._parameters_fast(target, whole)
                rules_module._parameters_of_root(target, {rules_module._PARAMETER_PLAN: plan}, planned)
                assert [id(p) for p in planned] == [id(p) for p in whole], schema
                seen += len(whole)
    assert seen > 100  # the examples hold Parameters in many places


def _lab_cases(validator):
    """Valid documents whose Parameters are made measured, cited or not (R-LAB-001 broken at
    some, kept at others), keys shuffled now and then."""
    rng = random.Random(1401)
    for schema, doc in _valid_examples(validator):
        for _ in range(4):
            mutated = copy.deepcopy(doc)
            found: list = []
            rules_module._parameters_fast(mutated, found)
            for parameter in found:
                roll = rng.random()
                if roll < 0.3:
                    parameter["source"] = "measured"
                    parameter["labEvidenceId"] = rng.choice(["LAB-NONE", "LAB-U1"])
                elif roll < 0.4:
                    parameter["source"] = "measured"
                    parameter.pop("labEvidenceId", None)
            yield schema, (_shuffled(mutated, rng) if rng.random() < 0.3 else mutated)


def test_validate_gives_what_the_general_closures_give_on_valid_documents(index, monkeypatch):
    validator = Validator(index)
    cases = [(s, d) for s, d in _lab_cases(validator) if not validator.schema_issues(s, d)]
    planned_walks = []
    walk = rules_module._parameters_planned
    monkeypatch.setattr(rules_module, "_parameters_planned",
                        lambda *args: planned_walks.append(1) or walk(*args))

    def run(generate):
        rules_module._parse.cache_clear()
        rules_module._GENERATE, rules_module._SPECIALISE = generate, generate
        try:
            fresh = Validator(index)
            return [[(i.path, i.code, i.message) for i in fresh.validate(s, d)] for s, d in cases]
        finally:
            rules_module._GENERATE, rules_module._SPECIALISE = True, True
            rules_module._parse.cache_clear()

    planned, general = run(True), run(False)
    assert len(cases) > 40 and planned_walks  # validate took the plan
    assert sum(1 for v in general if any(code == "R-LAB-001" for _, code, _ in v)) > 10  # the test can fail
    assert planned == general


def test_the_parameter_plan_is_conservative_where_it_cannot_read_the_schema(index):
    """Where the plan cannot tell, it says anywhere (the whole walk); a closed object without the
    three members, a scalar and an enumeration of scalars hold none."""
    anywhere, leaf = rules_module.ANYWHERE, rules_module._LEAF
    parameter = {"type": "object", "additionalProperties": False,
                 "properties": {"value": {"type": "string"}, "unit": {"type": "string"}, "source": {"type": "string"}}}
    closed = {"type": "object", "additionalProperties": False, "properties": {"p": {"$ref": "#/components/schemas/P"}}}

    def plan(node, schemas=None):
        return rules_module._ParameterPlanner({"P": parameter, **(schemas or {})}).where(node)

    assert plan(parameter) is leaf
    assert plan(closed) == ("object", False, {"p": leaf}, None)
    assert plan({"type": "array", "items": closed}) == ("array", ("object", False, {"p": leaf}, None))
    assert plan({"type": "string"}) is None and plan({"enum": ["a", 1]}) is None
    assert plan({"type": "object", "additionalProperties": False, "properties": {"a": {"type": "string"}}}) is None
    # open objects, unknown keywords, pattern members, unions and recursion: no shortcut
    assert plan({"type": "object", "properties": {"p": {"$ref": "#/components/schemas/P"}}}) == (
        "object", True, {"p": leaf}, anywhere)
    assert plan({"type": "object", "additionalProperties": False, "patternProperties": {"^x": {}}}) is anywhere
    assert plan({"type": "object", "additionalProperties": False, "x-new": 1, "newKeyword": {}}) is anywhere
    assert plan({"oneOf": [{"type": "string"}, closed]}) is anywhere
    assert plan({"oneOf": [{"type": "string"}, {"type": "integer"}]}) is None
    assert plan({"type": ["object", "array"]}) is anywhere and plan({"properties": {}}) is anywhere
    assert plan({"enum": [{"value": "1", "unit": "t", "source": "default"}]}) is anywhere
    recursive = {"type": "object", "additionalProperties": False, "properties": {"next": {"$ref": "#/components/schemas/R"}}}
    assert plan(recursive, {"R": recursive}) == ("object", False, {"next": anywhere}, None)
    # a node of another kind than its plan says is walked whole
    out: list = []
    rules_module._parameters_planned([{"value": "1", "unit": "t", "source": "default"}], plan(closed), out)
    assert len(out) == 1


def test_the_si_memo_stays_bounded_though_generated_functions_fill_it(index):
    """Generated functions memoise conversions without testing the bound; each check tests it
    first, so the memo never grows past the bound by more than one check's quantities."""
    engine = Validator(index).rules
    rule = {"id": "R-M", "en": "m", "forEach": "items", "check": "approx(a, a)"}
    for start in range(0, 84000, 7000):  # past the bound by more than one check
        doc = {"items": [{"a": {"value": str(start + i), "unit": "t"}} for i in range(7000)]}
        assert engine.check_rules([rule], doc) == []
        assert len(engine._si_cache) <= 65536 + 7000
    assert engine.check_rule(rule, {"items": [{"a": {"value": "1", "unit": "t"}}]}) == []
    assert len(engine._si_cache) <= 65536 + 7000
