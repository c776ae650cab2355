"""Validate a logical document against the spec: JSON Schema, allowed units, quality rules.

Every finding is an ``Issue`` with the field path (``$.payload.combustion[0].emission``), a
code (a rule ID such as ``R-FUEL-001``, or ``SCHEMA-<KEYWORD>`` for a plain schema failure)
and a message: exactly what a problem+json ``errors[]`` item carries.

Speed: a document is first checked by jsonschema-rs (a draft 2020-12 validator in Rust, when
installed: extras `server` and `fast`) or else by a validator compiled to Python code
(fastjsonschema, draft-07 semantics, which coincide with 2020-12 for the keywords the spec uses:
the bundle's $ref siblings are annotations only); only a document it rejects goes through
jsonschema, which explains every failure with its rule ID and path. The compiled check may be stricter than
jsonschema (e.g. ``$`` in patterns) but never laxer; a stricter rejection just takes the slow
path, which then decides. Units are checked along a per-schema plan that visits only the parts
of a document that can carry a unit.
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Callable, Iterable
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from .issue import Issue
from .rules import ANYWHERE, RuleEngine
from .schema import REF_PREFIX, SchemaIndex

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from referencing import Registry

_DECIMAL = re.compile(r"^-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,12})?$")

SPEC_URI = "urn:cedx:openapi"


def json_path(parts: Iterable[Any]) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _accept_any(_value: Any) -> bool:
    return True


# Keywords whose draft-07 reading (fastjsonschema) differs from 2020-12 or is missing there.
_DRAFT_2020_ONLY = frozenset({
    "prefixItems", "unevaluatedProperties", "unevaluatedItems", "dependentRequired",
    "dependentSchemas", "$dynamicRef", "$dynamicAnchor", "$anchor", "minContains", "maxContains",
    "$recursiveRef",
})
# Siblings of $ref that assert nothing.
_ANNOTATIONS = frozenset({"title", "description", "xml", "examples", "example", "default",
                          "deprecated", "readOnly", "writeOnly", "$comment"})


#: Keywords of a property schema that the added ``unit`` member or requirement would change.
_SEES_MEMBERS = frozenset({"required", "properties", "additionalProperties", "unevaluatedProperties",
                           "patternProperties", "propertyNames", "maxProperties", "minProperties"})


class Validator:
    def __init__(self, index: SchemaIndex):
        self.index = index
        self.rules = RuleEngine(index)
        self._validators: dict[str, Draft202012Validator] = {}
        self._compiled: dict[str, Callable[[Any], Any] | None] = {}
        self._compile_lock = threading.RLock()
        self._unit_plans: dict[int, Any] = {}
        self._unit_checks: dict[int, Callable[[Any], bool]] = {}
        self._both: dict[str, Callable[[Any], bool] | None] = {}

    @cached_property
    def _registry(self) -> Registry:
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        resource = Resource.from_contents(self.index.spec, default_specification=DRAFT202012)
        registry: Registry = Registry().with_resource(SPEC_URI, resource)
        return registry

    def _validator(self, schema_name: str) -> Draft202012Validator:
        cached = self._validators.get(schema_name)
        if cached is None:
            from jsonschema import Draft202012Validator

            if schema_name not in self.index.schemas:
                raise KeyError(f"unknown schema {schema_name}")
            cached = Draft202012Validator({"$ref": f"{SPEC_URI}{REF_PREFIX}{schema_name}"}, registry=self._registry)
            self._validators[schema_name] = cached
        return cached

    @cached_property
    def _formats(self) -> dict[str, Any]:
        """Every format the spec names, accepted as is: jsonschema treats ``format`` as an
        annotation unless asked otherwise, and the compiled check must not be stricter there
        (formats that matter are stated as patterns)."""
        found: set[str] = set()
        stack: list[Any] = [self.index.spec.get("components", {})]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if isinstance(node.get("format"), str):
                    found.add(node["format"])
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
        return {name: _accept_any for name in found}

    @cached_property
    def _fast_components(self) -> dict[str, Any] | None:
        """The components as fastjsonschema (draft-07) reads them with 2020-12 meaning, or None
        when the spec uses something whose draft-07 meaning differs: then every document takes
        the jsonschema path (correct, only slower)."""
        import copy

        components = copy.deepcopy(self.index.spec.get("components", {}))
        safe = True

        def visit(node: Any) -> Any:  # node: a schema
            nonlocal safe
            if not isinstance(node, dict):
                return node
            if _DRAFT_2020_ONLY & node.keys() or isinstance(node.get("items"), list):
                safe = False
            values = node.get("enum", []) + ([node["const"]] if "const" in node else [])
            if any(not isinstance(v, str) for v in values):
                safe = False  # draft-07 code compares with ==, so 1 == True == 1.0
            out = {}
            for key, value in node.items():
                if key in _ANNOTATIONS or key.startswith("x-") or key in ("enum", "const"):
                    out[key] = value  # data, not schemas
                elif key in ("properties", "patternProperties", "$defs", "definitions"):
                    out[key] = {name: visit(sub) for name, sub in value.items()}
                elif isinstance(value, list):
                    out[key] = [visit(sub) for sub in value]
                else:
                    out[key] = visit(value)
            ref = out.get("$ref")
            if ref is not None and any(k not in _ANNOTATIONS and not k.startswith("x-") for k in out if k != "$ref"):
                # draft-07 ignores a $ref's siblings; 2020-12 applies them: keep both meanings equal
                out = {k: v for k, v in out.items() if k != "$ref"}
                out["allOf"] = [*out.get("allOf", []), {"$ref": ref}]
            return out

        rewritten = dict(components, schemas={n: visit(sch) for n, sch in components.get("schemas", {}).items()})
        return rewritten if safe else None

    def _compiled_check(self, schema_name: str) -> Callable[[Any], Any] | None:
        """The compiled validator for a component schema (built once, on first use), or None
        when the spec cannot be compiled with the same meaning (see ``_fast_components``)."""
        if schema_name in self._compiled:
            return self._compiled[schema_name]
        with self._compile_lock:
            if schema_name not in self._compiled:
                check = self._rust_check(schema_name)
                components = self._fast_components if check is None else None
                if components is not None:
                    import fastjsonschema

                    root = {"$ref": f"{REF_PREFIX}{schema_name}", "components": components}
                    check = fastjsonschema.compile(root, formats=self._formats, use_default=False)
                self._compiled[schema_name] = check
        return self._compiled[schema_name]

    def _rust_check(self, schema_name: str) -> Callable[[Any], Any] | None:
        """jsonschema-rs (extras `server` and `fast`), a draft 2020-12 validator in Rust, about
        ten times faster than the compiled Python: the components as they are (no rewriting),
        formats as annotations like jsonschema. None when it is not installed or refuses the
        schema (then fastjsonschema). Its regular expressions (Rust, ECMA-262 flavoured) are
        never laxer than Python's here: ``$`` does not match before a final newline."""
        try:
            import jsonschema_rs
        except ImportError:
            return None
        root = {"$ref": f"{REF_PREFIX}{schema_name}", "components": self.index.spec.get("components", {})}
        try:
            is_valid = jsonschema_rs.Draft202012Validator(root, validate_formats=False).is_valid
        except Exception:  # a construct it does not support: the compiled Python check instead
            return None

        def check(document: Any) -> None:
            if not is_valid(document):
                raise ValueError("not valid")  # schema_issues lets jsonschema explain
        return check

    def _schema_and_units_check(self, schema_name: str) -> Callable[[Any], bool] | None:
        """jsonschema-rs over the schema with every allowed-units list (``x-cedx-units``) added
        as a constraint on the property (an object there must have a ``unit`` among them),
        built once: True means neither ``schema_issues`` nor ``unit_issues`` finds anything,
        in one pass in Rust instead of the schema check and the Python walk (issue 14).

        Adding constraints makes the schema only stricter as long as nothing on the way is
        ``oneOf``, ``not``, ``if`` or ``maxContains`` (their outcome may flip); else there is
        no such check and both stages run. The walk's tests are all enforced (same properties, same test), so
        "valid" here implies no unit issue; where this is stricter than the walk (a unit
        where the walk does not look), a document just takes both stages, which decide."""
        if schema_name in self._both:
            return self._both[schema_name]
        with self._compile_lock:
            if schema_name not in self._both:
                self._both[schema_name] = self._build_schema_and_units_check(schema_name)
        return self._both[schema_name]

    def _build_schema_and_units_check(self, schema_name: str) -> Callable[[Any], bool] | None:
        try:
            import jsonschema_rs
        except ImportError:
            return None
        if schema_name not in self.index.schemas:
            return None
        components = copy.deepcopy(self.index.spec.get("components", {}))
        schemas = components.get("schemas", {})
        # every schema reachable from the root: none may flip its outcome under a stricter part
        seen: set[int] = set()
        stack: list[Any] = [schemas[schema_name]]
        while stack:
            node = stack.pop()
            if isinstance(node, list):
                stack.extend(node)
                continue
            if not isinstance(node, dict) or id(node) in seen:
                continue
            seen.add(id(node))
            if any(k in node for k in _FLIPPING):
                return None
            ref = node.get("$ref")
            if isinstance(ref, str):
                if not ref.startswith(REF_PREFIX) or ref[len(REF_PREFIX):] not in schemas:
                    return None
                stack.append(schemas[ref[len(REF_PREFIX):]])
            stack.extend(v for k, v in node.items() if k not in _NOT_SCHEMAS)
        for node in _schema_nodes(components):
            properties = node.get("properties")
            if not isinstance(properties, dict):
                continue
            for name, prop in list(properties.items()):
                allowed = prop.get("x-cedx-units") if isinstance(prop, dict) else None
                if allowed:  # (both keywords apply to objects only, as the walk's test does)
                    units = {"required": ["unit"], "properties": {"unit": {"enum": list(allowed)}}}
                    # merged only where no keyword of the property could see the added member
                    # differently (a closed object would otherwise accept a `unit` it refused)
                    properties[name] = ({**prop, **units} if not _SEES_MEMBERS & prop.keys()
                                        else {"allOf": [prop, units]})
        root = {"$ref": f"{REF_PREFIX}{schema_name}", "components": components}
        try:
            return cast(Callable[[Any], bool],
                        jsonschema_rs.Draft202012Validator(root, validate_formats=False).is_valid)
        except Exception:  # a construct it does not support: both stages instead
            return None

    def is_valid(self, schema_name: str, document: Any) -> bool:
        """True when the document satisfies the schema (fast path; no explanation)."""
        return not self.schema_issues(schema_name, document)

    # --- stages ---------------------------------------------------------------------------
    def schema_issues(self, schema_name: str, document: Any) -> list[Issue]:
        if schema_name not in self.index.schemas:
            raise KeyError(f"unknown schema {schema_name}")
        check = self._compiled_check(schema_name)
        if check is not None:
            try:
                check(document)
                return []
            except Exception:  # JsonSchemaValueException, or anything odd: let jsonschema explain
                pass
        return self.explain(schema_name, document)

    def explain(self, schema_name: str, document: Any) -> list[Issue]:
        """Every schema failure with its rule ID and path (jsonschema; the slow path)."""
        issues = []
        for err in self._validator(schema_name).iter_errors(document):
            path = list(err.absolute_path)
            rule = err.schema.get("x-cedx-rule") if isinstance(err.schema, dict) else None
            message = err.message
            if err.validator == "required":
                missing = message.split("'")[1] if "'" in message else ""
                path = path + [missing]
                message = f"required field {missing!r} is missing"
            elif rule == "R-QTY-001" and not (isinstance(err.instance, str) and _DECIMAL.match(err.instance)):
                rule = "R-DEC-001"  # not a decimal string at all: the lexical rule, not the sign rule
            if err.validator == "type" and rule == "R-DEC-001":
                message = f"{err.instance!r} is not a decimal string (decimals travel as strings)"
            if len(message) > 300:
                message = message[:297] + "..."
            code = rule or f"SCHEMA-{str(err.validator).upper()}"
            issues.append(Issue(json_path(path), code, message, rule))
        issues.sort(key=lambda i: (i.path, i.code))
        return issues

    def unit_issues(self, schema_name: str, document: Any) -> list[Issue]:
        issues: list[Issue] = []
        plan = self._unit_plan(self.index.schemas[schema_name])
        # The compiled check only answers whether the walk would find anything (no paths
        # spelled, no issue built): the walk runs only when it will (issue 14).
        if plan is not None and self._unit_check(plan)(document):
            _walk_plan(plan, document, "$", issues)
        return issues

    def _unit_check(self, plan: Any) -> Callable[[Any], bool]:
        """A function telling whether ``_walk_plan(plan, ...)`` finds any issue (built once)."""
        key = id(plan)
        try:
            return self._unit_checks[key]
        except KeyError:
            pass
        with self._compile_lock:
            if key not in self._unit_checks:
                self._unit_checks[key] = _compile_unit_check(plan, {})
            return self._unit_checks[key]

    def _unit_plan(self, schema: dict[str, Any]) -> Any:
        """What of a document under ``schema`` can carry a unit, or None if nothing can.

        ("object", [(property, allowed units or None, child plan or None), ...]),
        ("array", item plan), ("union", discriminator, {value: plan}). Built once per schema
        object, under a lock (threads validate concurrently; none may see a half-built plan);
        properties keep their schema order, so issues come out in the same order as a walk
        over the whole schema."""
        key = id(schema)
        try:
            return self._unit_plans[key]
        except KeyError:
            pass
        with self._compile_lock:
            building: dict[int, Any] = {}
            plan = self._build_unit_plan(schema, building)
            self._unit_plans.update(building)
            return plan

    def _build_unit_plan(self, schema: dict[str, Any], building: dict[int, Any]) -> Any:
        key = id(schema)
        if key in self._unit_plans:
            return self._unit_plans[key]
        if key in building:
            return building[key]
        building[key] = None  # a recursive reference contributes nothing new
        index = self.index
        kind = index.kind(schema)
        plan: Any = None
        if kind == "union":
            discriminator, mapping = index.variants(schema)
            options = {value: self._build_unit_plan(index.schemas[name], building) for value, name in mapping.items()}
            if any(p is not None for p in options.values()):
                plan = ("union", discriminator, options)
        elif kind == "object":
            entries = []
            for prop in index.properties(schema):
                allowed = prop.schema.get("x-cedx-units")
                child = self._build_unit_plan(prop.schema, building)
                if allowed or child is not None:
                    entries.append((prop.name, allowed, child))
            if entries:
                plan = ("object", entries)
        elif kind == "array":
            item = self._build_unit_plan(index.item_schema(schema), building)
            if item is not None:
                plan = ("array", item)
        building[key] = plan
        return plan

    def rule_issues(self, schema_name: str, document: Any, *, valid: bool = False) -> list[Issue]:
        """The quality rules' issues. ``valid``: the document is known to satisfy the schema
        (``validate`` has checked it), so the rules may look only where the schema lets a value
        be (the same issues, sooner)."""
        issues = []
        rules = self.rules
        plan = rules.parameter_plan(schema_name) if valid else ANYWHERE
        targets = [(schema_name, document, "$", plan)]
        signed = self.index.schemas[schema_name].get("x-cedx-signed")
        if signed and isinstance(document, dict) and "payload" in document:
            targets.append((signed["payload"], document["payload"], "$.payload", rules.member_plan(plan, "payload")))
        for name, doc, base, where in targets:
            for v in rules.check_rules(self.index.rules_for(name), doc, base, where):
                issues.append(Issue(v.path, v.rule, v.message, v.rule))
        return issues

    def validate(self, schema_name: str, document: Any) -> list[Issue]:
        """All issues; quality rules run only on documents that pass the schema."""
        both = self._schema_and_units_check(schema_name)
        if both is not None and both(document):  # no schema issue and no unit issue
            return self.rule_issues(schema_name, document, valid=True)
        issues = self.schema_issues(schema_name, document)
        issues += self.unit_issues(schema_name, document)
        if issues:
            return issues
        return self.rule_issues(schema_name, document, valid=True)


_NOT_THERE = object()


# Keywords whose values are data, not schemas: never descended into.
_NOT_SCHEMAS = frozenset({"examples", "example", "enum", "const", "default"})
# Keywords under which a stricter subschema may make the whole schema accept more.
_FLIPPING = ("oneOf", "not", "if", "maxContains", "$dynamicRef", "$recursiveRef")


def _schema_nodes(tree: Any) -> Iterable[dict[str, Any]]:
    """Every dict in a schema tree (examples and enumerations not descended into)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(v for k, v in node.items() if k not in _NOT_SCHEMAS)
        elif isinstance(node, list):
            stack.extend(node)


def _compile_unit_check(plan: Any, memo: dict[int, Callable[[Any], bool]]) -> Callable[[Any], bool]:
    """``_walk_plan`` as closures that answer only whether it would record an issue: the same
    visits and tests in the same order, stopping at the first finding (plans share subplans:
    ``memo``)."""
    known = memo.get(id(plan))
    if known is not None:
        return known
    kind = plan[0]
    check: Callable[[Any], bool]
    if kind == "object":
        entries = tuple((name, tuple(allowed) if allowed else None,
                         None if child is None else _compile_unit_check(child, memo))
                        for name, allowed, child in plan[1])

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return False
            get = value.get
            for name, allowed, child_check in entries:
                child = get(name, _NOT_THERE)
                if child is _NOT_THERE:
                    continue
                if allowed is not None and isinstance(child, dict) and child.get("unit") not in allowed:
                    return True
                if child_check is not None and child_check(child):
                    return True
            return False
    elif kind == "array":
        item_check = _compile_unit_check(plan[1], memo)

        def check(value: Any) -> bool:
            return isinstance(value, list) and any(map(item_check, value))
    else:  # union: the variant named by the discriminator
        discriminator = plan[1]
        options = {value: _compile_unit_check(sub, memo) for value, sub in plan[2].items() if sub is not None}

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return False
            variant = options.get(value.get(discriminator))
            return variant is not None and variant(value)
    memo[id(plan)] = check
    return check


def _walk_plan(plan: Any, value: Any, path: str, issues: list[Issue]) -> None:
    kind = plan[0]
    if kind == "object":
        if not isinstance(value, dict):
            return
        # A property's path is spelled out only for an issue or a part to descend into.
        for name, allowed, child_plan in plan[1]:
            child = value.get(name, _NOT_THERE)
            if child is _NOT_THERE:
                continue
            if allowed and isinstance(child, dict) and child.get("unit") not in allowed:
                issues.append(Issue(
                    f"{path}.{name}.unit", "R-UNIT-002",
                    f"unit {child.get('unit')!r} not allowed here; use one of {', '.join(allowed)}",
                    "R-UNIT-002",
                ))
            if child_plan is not None:
                _walk_plan(child_plan, child, f"{path}.{name}", issues)
    elif kind == "array":
        if isinstance(value, list):
            item_plan = plan[1]
            for i, item in enumerate(value):
                _walk_plan(item_plan, item, f"{path}[{i}]", issues)
    elif isinstance(value, dict):  # union
        variant = plan[2].get(value.get(plan[1]))
        if variant is not None:
            _walk_plan(variant, value, path, issues)
