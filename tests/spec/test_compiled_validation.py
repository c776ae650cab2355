"""The fast schema check (jsonschema-rs when installed, else fastjsonschema) is only a shortcut:
on every example and on thousands of mutations of them, ``schema_issues`` equals jsonschema's
full explanation, and the fast check never accepts what jsonschema rejects. Both fast checks
are tested: the Python one is what runs where jsonschema-rs is not installed."""

import copy
import random

import pytest

from .conftest import example_usage, load_example

USAGE = example_usage()
JSON_EXAMPLES = sorted(n for n in USAGE if n.endswith(".json"))

ODD_VALUES = [None, True, 0, -1, 1.5, "", "x" * 600, "12.5", "abc", [], {}, {"value": "1", "unit": "t"},
              "2026-13-45T99:00:00Z", "91320500MA1X2P3Q4R", "1e3", " 1", "1\n", 10**30]


def paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from paths(v, prefix + (i,))


def mutate(doc, rng: random.Random):
    doc = copy.deepcopy(doc)
    all_paths = [p for p in paths(doc) if p]
    for _ in range(rng.choice((1, 1, 2, 3))):
        path = rng.choice(all_paths)
        action = rng.randrange(5)
        try:  # an earlier mutation may have removed or replaced part of this path
            parent = doc
            for part in path[:-1]:
                parent = parent[part]
            key = path[-1]
            if action == 0 and isinstance(parent, dict):
                del parent[key]
            elif action == 1 and isinstance(parent, dict):
                parent[f"extra{rng.randrange(3)}"] = rng.choice(ODD_VALUES)
            elif action == 2 and isinstance(parent, list):
                parent.append(copy.deepcopy(parent[key]) if rng.random() < 0.5 else rng.choice(ODD_VALUES))
            else:
                parent[key] = copy.deepcopy(rng.choice(ODD_VALUES))
        except (KeyError, IndexError, TypeError):
            pass
    return doc


@pytest.fixture(scope="module", params=["rust", "python"])
def fast_validator(request, index, validator):
    if request.param == "rust":
        pytest.importorskip("jsonschema_rs")
        return validator
    from cedx.spec.validate import Validator

    python_only = Validator(index)
    python_only._rust_check = lambda _name: None  # as where jsonschema-rs is not installed
    return python_only


@pytest.mark.parametrize("name", JSON_EXAMPLES)
def test_compiled_check_agrees_with_jsonschema(name, fast_validator):
    validator = fast_validator
    schema = USAGE[name][0]
    example = load_example(name)
    assert validator.schema_issues(schema, example) == validator.explain(schema, example) == []
    rng = random.Random(name)
    rejected = 0
    for _ in range(60):
        doc = mutate(example, rng)
        explained = validator.explain(schema, doc)
        try:
            validator._compiled_check(schema)(doc)
            compiled_ok = True
        except Exception:
            compiled_ok = False
        assert not (compiled_ok and explained), f"compiled check accepted what jsonschema rejects: {explained}"
        assert validator.schema_issues(schema, doc) == explained
        rejected += bool(explained)
    assert rejected > 20  # the mutations do exercise rejections


def test_rejection_messages_unchanged(validator, power_report):
    """A rejection goes through jsonschema: rule IDs, paths and messages as before."""
    power_report["payload"]["combustion"][0]["consumption"]["value"] = 35.2
    del power_report["payload"]["reportId"]
    issues = validator.schema_issues("SignedMonthlyReport", power_report)
    by_path = {i.path: i for i in issues}
    assert by_path["$.payload.reportId"].message == "required field 'reportId' is missing"
    dec = by_path["$.payload.combustion[0].consumption.value"]
    assert dec.code == "R-DEC-001" and "not a decimal string" in dec.message


def test_units_plan_matches_a_full_walk(validator, power_report):
    power_report["payload"]["combustion"][0]["consumption"]["unit"] = "kWh"
    power_report["payload"]["power"]["units"][1]["coalConsumption"]["unit"] = "MW"
    issues = validator.unit_issues("SignedMonthlyReport", power_report)
    assert [(i.path, i.code) for i in issues] == [
        ("$.payload.combustion[0].consumption.unit", "R-UNIT-002"),
        ("$.payload.power.units[1].coalConsumption.unit", "R-UNIT-002"),
    ]


def synthetic(schemas: dict):
    from cedx.spec.schema import SchemaIndex
    from cedx.spec.validate import Validator

    return Validator(SchemaIndex({"openapi": "3.1.0", "components": {"schemas": schemas}}))


def test_ref_siblings_keep_their_2020_12_meaning():
    """draft-07 ignores a $ref's siblings; the compiled check must still apply them."""
    v = synthetic({
        "Code": {"type": "string", "pattern": "^[A-Z]+$"},
        "Doc": {"type": "object", "properties": {"code": {"$ref": "#/components/schemas/Code", "maxLength": 3,
                                                          "title": "t"}}},
    })
    assert v._compiled_check("Doc") is not None
    assert v.schema_issues("Doc", {"code": "ABC"}) == []
    too_long = v.schema_issues("Doc", {"code": "ABCD"})
    assert [i.code for i in too_long] == ["SCHEMA-MAXLENGTH"] and too_long == v.explain("Doc", {"code": "ABCD"})
    assert [i.code for i in v.schema_issues("Doc", {"code": "abc"})] == ["SCHEMA-PATTERN"]
    v._rust_check = lambda _name: None  # fastjsonschema, with the siblings rewritten into allOf
    v._compiled.clear()
    assert v._compiled_check("Doc") is not None
    assert v.schema_issues("Doc", {"code": "ABC"}) == [] and v.schema_issues("Doc", {"code": "ABCD"}) == too_long


@pytest.mark.parametrize("schema, good, bad", [
    ({"type": "array", "prefixItems": [{"type": "string"}]}, ["a"], [1]),
    ({"enum": [1, 2]}, 1, True),  # draft-07 code would take True for 1
    ({"type": "array", "items": {"type": "object", "unevaluatedProperties": False,
                                 "properties": {"a": {"type": "string"}}}}, [{"a": "x"}], [{"b": 1}]),
])
def test_keywords_with_another_draft_07_meaning_disable_the_compiled_check(schema, good, bad):
    v = synthetic({"S": schema})
    assert v._fast_components is None  # fastjsonschema would give them their draft-07 meaning
    assert v.schema_issues("S", good) == []
    assert v.schema_issues("S", bad) != []
    check = v._compiled_check("S")  # jsonschema-rs, a 2020-12 validator, if installed; else none
    if check is not None:
        check(good)
        with pytest.raises(ValueError):
            check(bad)


def test_unknown_schema_is_a_key_error(validator):
    with pytest.raises(KeyError):
        validator.schema_issues("NoSuchSchema", {})


def test_first_use_from_many_threads_sees_complete_plans(index, power_report):
    """Plans and compiled checks are built once under a lock: no thread may validate against a
    half-built one (a wrong unit must be found by every thread)."""
    from concurrent.futures import ThreadPoolExecutor

    from cedx.spec.validate import Validator

    power_report["payload"]["power"]["units"][1]["coalConsumption"]["unit"] = "MW"
    for _ in range(3):
        fresh = Validator(index)
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _, v=fresh: v.validate("SignedMonthlyReport", power_report), range(16)))
        for issues in results:
            assert ("$.payload.power.units[1].coalConsumption.unit", "R-UNIT-002") in {(i.path, i.code) for i in issues}


UNITS = ["t", "MW", "kWh", "tCO2", "GJ/t", "%", "1", None, 5, ["t"], {"u": "t"}]


def _unit_mutation(doc, rng: random.Random):
    """A copy with the units of some quantities (any {"unit": ...} object) changed, dropped or
    made odd, or a quantity replaced by something that is not an object."""
    doc = copy.deepcopy(doc)
    quantities = [p for p in paths(doc) if p and isinstance(_at(doc, p), dict) and "unit" in _at(doc, p)]
    for _ in range(rng.choice((0, 1, 1, 2))):
        if not quantities:
            break
        path = rng.choice(quantities)
        try:  # an earlier change may have replaced part of this path
            quantity, action = _at(doc, path), rng.randrange(4)
        except (KeyError, IndexError, TypeError):
            continue
        if not isinstance(quantity, dict) or "unit" not in quantity:
            continue
        if action == 0:
            del quantity["unit"]
        elif action == 1:
            _at(doc, path[:-1])[path[-1]] = rng.choice(ODD_VALUES)
        else:
            quantity["unit"] = rng.choice(UNITS)
    return mutate(doc, rng) if rng.random() < 0.3 else doc


def _at(doc, path):
    for part in path:
        doc = doc[part]
    return doc


@pytest.mark.parametrize("name", JSON_EXAMPLES)
def test_compiled_unit_check_says_exactly_when_the_walk_finds_something(name, validator):
    """unit_issues walks (and spells paths) only when the compiled check says it will find
    something: the check must agree with the walk on every document, wrong units or not."""
    from cedx.spec.validate import _walk_plan

    schema = USAGE[name][0]
    plan = validator._unit_plan(validator.index.schemas[schema])
    if plan is None:
        return
    check = validator._unit_check(plan)
    rng = random.Random(f"units {name}")
    found = 0
    for i in range(80):
        doc = _unit_mutation(load_example(name), rng) if i else load_example(name)
        walked: list = []
        _walk_plan(plan, doc, "$", walked)
        assert check(doc) is bool(walked), walked
        assert validator.unit_issues(schema, doc) == walked
        found += bool(walked)
    assert found > 10 or name.startswith(("facility", "entity"))


def test_compiled_unit_check_follows_the_discriminated_variant():
    q = {"type": "object", "properties": {"value": {"type": "string"}, "unit": {"type": "string"}}}
    v = synthetic({
        "Q": q,
        "A": {"type": "object", "properties": {"kind": {"enum": ["a"]},
                                               "m": {"$ref": "#/components/schemas/Q", "x-cedx-units": ["t"]}}},
        "B": {"type": "object", "properties": {"kind": {"enum": ["b"]},
                                               "m": {"$ref": "#/components/schemas/Q", "x-cedx-units": ["GJ"]}}},
        "Doc": {"type": "object", "properties": {"items": {"type": "array", "items": {
            "oneOf": [{"$ref": "#/components/schemas/A"}, {"$ref": "#/components/schemas/B"}],
            "discriminator": {"propertyName": "kind"}}}}},
    })
    plan = v._unit_plan(v.index.schemas["Doc"])
    check = v._unit_check(plan)
    for items, paths_found in [
        ([{"kind": "a", "m": {"unit": "t"}}, {"kind": "b", "m": {"unit": "GJ"}}], []),
        ([{"kind": "a", "m": {"unit": "GJ"}}], ["$.items[0].m.unit"]),
        ([{"kind": "b", "m": {"unit": "t"}}, {"kind": "c", "m": {"unit": "t"}}, "x"], ["$.items[0].m.unit"]),
        ([{"kind": "a", "m": {"unit": "t"}}, {"kind": ["a"], "m": {"unit": "x"}}], None),  # unhashable discriminator
    ]:
        doc = {"items": items}
        try:
            walked = v.unit_issues("Doc", doc)
        except TypeError:  # the walk's own answer to an unhashable discriminator value, kept
            with pytest.raises(TypeError):
                check(doc)
            continue
        assert [i.path for i in walked] == paths_found
        assert check(doc) is bool(paths_found)


@pytest.mark.parametrize("name", JSON_EXAMPLES)
def test_schema_and_units_in_one_pass_never_accepts_what_either_stage_refuses(name, validator):
    """validate() first asks jsonschema-rs with the allowed units added to the schema: "valid"
    must mean that neither the schema check nor the units walk finds anything; the examples
    (valid) take that one pass, where the spec allows it."""
    pytest.importorskip("jsonschema_rs")
    schema = USAGE[name][0]
    both = validator._schema_and_units_check(schema)
    example = load_example(name)
    if both is None or validator._unit_plan(validator.index.schemas[schema]) is None:
        return  # without units the pass is the schema check, tested above
    assert both(example)
    rng = random.Random(f"both {name}")
    refused = 0
    for _ in range(30):
        doc = _unit_mutation(example, rng)
        found = validator.schema_issues(schema, doc) + validator.unit_issues(schema, doc)
        if both(doc):
            assert not found, found
        refused += bool(found)
        assert validator.validate(schema, doc)[: len(found)] == found
    assert refused > 5


def test_no_one_pass_check_where_a_stricter_part_could_flip_the_outcome():
    q = {"type": "object", "properties": {"unit": {"type": "string"}}}
    for flipping in ({"oneOf": [{"$ref": "#/components/schemas/Q"}, {"type": "string"}],
                      "discriminator": {"propertyName": "unit", "mapping": {"t": "#/components/schemas/Q"}}},
                     {"not": {"$ref": "#/components/schemas/Q"}},
                     {"if": {"type": "object"}, "then": {"$ref": "#/components/schemas/Q"}}):
        v = synthetic({"Q": q, "Doc": {"type": "object", "properties": {
            "m": {"$ref": "#/components/schemas/Q", "x-cedx-units": ["t"]}, "x": flipping}}})
        assert v._schema_and_units_check("Doc") is None
        assert [i.code for i in v.validate("Doc", {"m": {"unit": "GJ"}})] == ["R-UNIT-002"]
    v = synthetic({"Q": q, "Doc": {"type": "object", "properties": {
        "m": {"$ref": "#/components/schemas/Q", "x-cedx-units": ["t"]}}}})
    if v._schema_and_units_check("Doc") is not None:
        assert v._schema_and_units_check("Doc")({"m": {"unit": "t"}})
        assert not v._schema_and_units_check("Doc")({"m": {"unit": "GJ"}})
        assert not v._schema_and_units_check("Doc")({"m": {}})
        assert v._schema_and_units_check("Doc")({"m": "x"}) is v._schema_and_units_check("Doc")({"m": "x"})
    assert [i.code for i in v.validate("Doc", {"m": {"unit": "GJ"}})] == ["R-UNIT-002"]
    assert v.validate("Doc", {"m": {"unit": "t"}}) == []


@pytest.mark.parametrize("closed", [{"additionalProperties": False}, {"unevaluatedProperties": False},
                                    {"patternProperties": {"^v": {}}, "additionalProperties": False},
                                    {"maxProperties": 1}])
def test_one_pass_keeps_a_closed_property_closed(closed):
    """A property whose own keywords see its members keeps them: the allowed units are added
    beside it (allOf), not merged in, so a `unit` member it refuses stays refused."""
    pytest.importorskip("jsonschema_rs")
    v = synthetic({"Doc": {"type": "object", "properties": {
        "m": {"type": "object", "x-cedx-units": ["t"], **closed}}}})
    both = v._schema_and_units_check("Doc")
    if both is None:
        return
    refused = 0
    for m in ({"unit": "t"}, {"unit": "t", "value": "1"}):
        doc = {"m": m}
        found = v.schema_issues("Doc", doc) + v.unit_issues("Doc", doc)
        assert both(doc) is not bool(found)
        refused += bool(found)
    assert refused
