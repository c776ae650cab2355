"""The quality-rule engine: evaluates the spec's document rules (x-cedx-rules).

Expressions are parsed with ``ast`` and evaluated by walking a whitelist of node types, never
by ``eval`` of the rule text. Numbers are exact Decimals (literals are read from the source
text, not as floats), and Quantity/Parameter objects become SI values through the unit table, so
a formula holds whatever units a document chose among those its fields allow.

Two compilers give the same answers. The closures (one per node) are the reference. Rule checks
take the generated path: the rules that walk the same elements become, once per process, one
Python function written from their whitelisted trees (names and string literals enter the text
only through ``repr``, every other value as a bound constant), which checks each element against
each rule in turn with straight-line code over locals; what it does not treat itself it hands to
the closures. tests/spec/test_rule_differential.py holds the two to the same violations,
messages and errors. A check told that its document satisfies its schema (``parameter_plan``,
which ``Validator.validate`` passes) finds ``parameters(root)`` only where the schema lets a
Parameter be: the same list in the same order, without visiting every value.
"""

from __future__ import annotations

import ast
import base64
import calendar
import datetime as _dt
import operator
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation
from functools import cached_property, lru_cache
from typing import Any, Literal, cast

from ..instants import CST as CHINA_STANDARD_TIME
from ..instants import INSTANT_PATTERN as _INSTANT
from ..instants import parse_instant
from . import uscc
from .schema import REF_PREFIX, SchemaIndex


@dataclass(frozen=True)
class Violation:
    rule: str
    path: str
    message: str


class _Missing(Exception):
    """A name in the expression is absent from the document: the rule does not apply."""


class _Scope:
    """Where an expression is evaluated. ``memo`` is shared by every scope of one rule check on
    one document: values that depend on ``root`` alone are computed once there."""

    __slots__ = ("current", "root", "path", "memo")

    def __init__(self, current: Any, root: Any, path: str, memo: dict[Any, Any] | None = None):
        self.current, self.root, self.path = current, root, path
        self.memo = {} if memo is None else memo


@lru_cache(maxsize=512)
def _parse(expr: str) -> tuple[ast.Expression, str]:
    text = " ".join(expr.split())
    tree = ast.parse(text, mode="eval")
    # Numeric literals become Decimals from their source text (exact, never via float), once
    # per expression rather than once per evaluation.
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            node.decimal = Decimal(cast(str, ast.get_source_segment(text, node)))  # type: ignore[attr-defined]
    return tree, text


#: A rule prepared: (rule, when, check, tolerance, forEach path, parsed when, parsed check);
#: ``when`` and ``check`` are the closures (None when rule checks take the generated path).
_Plan = tuple[dict[str, Any], "_Fn | None", "_Fn | None", tuple[Decimal, Decimal], "list[str] | None",
              "ast.AST | None", ast.AST]

#: Arithmetic context of rule expressions (34 digits, decimal128), shared rather than entered
#: per operation.
_ARITH = Context(prec=34)


#: Where Parameters may be in a document known to satisfy a schema (``RuleEngine.parameter_plan``):
#: None nowhere, ``ANYWHERE`` anywhere (the whole walk), ("object", may be one itself,
#: {member: plan}, plan of any other member), ("array", plan of each item).
ANYWHERE = "anywhere"
_MISS = object()  # not in a memo


class RuleEngine:
    def __init__(self, index: SchemaIndex):
        self.index = index
        defaults = index.spec.get("x-cedx-rules", {}).get("defaultTolerance", {})
        self.default_tolerance = (
            Decimal(defaults.get("relative", "0.001")),
            Decimal(defaults.get("absolute", "0")),
        )
        self._si_cache: dict[tuple[Any, ...], Decimal] = {}
        self._plans: dict[int, _Plan] = {}
        self._parameter_plans: dict[str, Any] = {}

    def parameter_plan(self, schema_name: str) -> Any:
        """Where Parameters can be in a document that satisfies schema ``schema_name`` (built
        once): given to ``check_rules`` with such a document, parameters(root) looks only there
        and finds the same list (issue 14: the whole walk was most of a large report's rule time)."""
        plan = self._parameter_plans.get(schema_name, _MISS)
        if plan is _MISS:
            plan = _ParameterPlanner(self.index.schemas).where(self.index.schemas[schema_name])
            self._parameter_plans[schema_name] = plan
        return plan

    @staticmethod
    def member_plan(plan: Any, name: str) -> Any:
        """The plan of member ``name`` of an object planned by ``plan``."""
        if plan is None or plan is ANYWHERE:
            return plan
        return plan[2].get(name, plan[3]) if plan[0] == "object" else ANYWHERE

    def si_value(self, value: Any, unit: Any) -> Decimal:
        """A quantity in SI units; memoised on the (value, unit) pair (a value is read by
        several rules, and Decimal parsing plus conversion dominates rule evaluation)."""
        try:  # get, not [], so that the first sight of a value raises no KeyError
            hit = self._si_cache.get((value, unit))
        except TypeError:  # unhashable: not a quantity the schema allows; convert to fail clearly
            return self._to_si(value, unit)
        if hit is not None:
            return hit
        return self._convert(value, unit)

    def _convert(self, value: Any, unit: Any) -> Decimal:
        """``si_value`` of a hashable pair not in the memo: converted and memoised."""
        conversion = self._conversions.get(unit)
        if conversion is None:  # not a unit of the table: _to_si says so
            result = self._to_si(value, unit)
        else:  # what _to_si computes for a unit of the table, without its look-ups
            result = Decimal(value) * conversion[0] + conversion[1]
        if len(self._si_cache) > 65536:
            self._si_cache.clear()
        self._si_cache[(value, unit)] = result
        return result

    @cached_property
    def _conversions(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Unit code -> (factor, offset) to SI: ``Unit.to_si`` is value * factor + offset."""
        units = self.index.units
        return {code: (units[code].factor, units[code].offset) for code in units.codes()}

    def _to_si(self, value: Any, unit: Any) -> Decimal:
        if unit not in self.index.units:
            raise TypeError(f"unknown unit {unit}")
        return self.index.units[unit].to_si(Decimal(value))

    # --- public ---------------------------------------------------------------------------
    def check(self, schema_name: str, document: Any) -> list[Violation]:
        """All violations of the document rules that apply to ``schema_name``."""
        return self.check_rules(self.index.rules_for(schema_name), document)

    def check_rules(self, rules: list[dict[str, Any]], document: Any, base_path: str = "$",
                    parameters: Any = ANYWHERE) -> list[Violation]:
        """The violations of several rules, rule after rule (what ``check_rule`` gives for each in
        turn). Generated path: the rules that walk the same elements (the same ``forEach``, or the
        document itself) are checked by one function, element after element, each name of an
        element looked up once and each of its quantities converted once for all of them.
        ``parameters``: where Parameters can be in the document (``parameter_plan`` of a schema
        it is known to satisfy); by default anywhere."""
        if not _GENERATE:
            return [v for rule in rules for v in self.check_rule(rule, document, base_path)]
        try:
            return self._check_together(rules, document, base_path, parameters)
        except Exception:  # noqa: BLE001 — not an absent name: rule after rule, to raise what that raises first
            return [v for rule in rules for v in self.check_rule(rule, document, base_path)]

    def _check_together(self, rules: list[dict[str, Any]], document: Any, base_path: str,
                        parameters: Any) -> list[Violation]:
        plans = [self._plan(rule) for rule in rules]
        self._bound_memo()
        groups: dict[str | None, list[int]] = {}
        for j, rule in enumerate(rules):
            groups.setdefault(rule.get("forEach") or None, []).append(j)
        failed: list[list[int]] = [[] for _ in rules]
        elements: dict[str | None, Any] = {}
        memos: dict[str | None, dict[Any, Any]] = {}
        for each, members in groups.items():
            memo = memos[each] = {} if parameters is ANYWHERE else {_PARAMETER_PLAN: parameters}
            if each is None:
                items: Any = (document,)
            else:
                items = elements[each] = self._lookup_path(document, cast(list[str], plans[members[0]][4]))
                if not isinstance(items, list):
                    continue
            scope = _Scope(document, document, base_path, memo)
            evaluators = [_Evaluator(self, scope, plans[j][3]) for j in members]
            loop = _group_loop(tuple((plans[j][5], plans[j][6]) for j in members))
            for j, positions in zip(members, loop(evaluators, items)):
                failed[j] = positions
        out = []
        for j, rule in enumerate(rules):
            if not failed[j]:
                continue
            each = rule.get("forEach") or None
            for i in failed[j]:
                if each is None:
                    item, path = document, base_path
                else:
                    item, path = elements[each][i], f"{base_path}.{each}[{i}]"
                detail = self._explain(rule, _Scope(item, document, path, memos[each]), plans[j][3])
                out.append(Violation(rule["id"], path, f"{rule['en']}{detail}"))
        return out

    def check_rule(self, rule: dict[str, Any], document: Any, base_path: str = "$") -> list[Violation]:
        _, when, check, tolerance, each, when_node, check_node = self._plan(rule)
        scope = _Scope(document, document, base_path, {})
        if each is None:
            items: Any = None
        else:
            items = self._lookup_path(document, each)
            if not isinstance(items, list):
                return []
            field_path = f"{base_path}.{rule['forEach']}"
        # One evaluator and one scope for every element: only the current element changes (what
        # depends on the root alone is memoised across elements); an element's path is spelled
        # out only for a violation (evaluation never reads it).
        ev = _Evaluator(self, scope, tolerance)
        out = []
        if check is None:  # the generated path: the same loop as below in one function
            self._bound_memo()
            loop = _group_loop(((when_node, check_node),))
            for i in loop([ev], items if items is not None else (document,))[0]:
                item, path = (items[i], f"{field_path}[{i}]") if items is not None else (document, base_path)
                detail = self._explain(rule, _Scope(item, document, path, scope.memo), tolerance)
                out.append(Violation(rule["id"], path, f"{rule['en']}{detail}"))
            return out
        for i, item in enumerate(items if items is not None else (document,)):
            if items is not None:
                scope.current = item
            try:
                if when is not None and not when(ev):
                    continue
                if check(ev):
                    continue
            except _Missing:
                continue
            if items is not None:
                scope.path = f"{field_path}[{i}]"
            detail = self._explain(rule, _Scope(scope.current, document, scope.path, scope.memo), tolerance)
            out.append(Violation(rule["id"], scope.path, f"{rule['en']}{detail}"))
        return out

    def _plan(self, rule: dict[str, Any]) -> _Plan:
        """What a rule needs on every check, prepared once per rule: its compiled ``when`` and
        ``check`` (closures; None for the generated path, which takes the parsed trees), its
        tolerance and its ``forEach`` path (kept with the rule object itself, so a rule dict that
        is gone can never lend its plan to another that reuses its id)."""
        cached = self._plans.get(id(rule))
        if cached is not None and cached[0] is rule:
            return cached
        tol = rule.get("tolerance")
        tolerance = ((Decimal(tol.get("relative", "0")), Decimal(tol.get("absolute", "0")))
                     if tol else self.default_tolerance)
        when_node = _parse(rule["when"])[0].body if rule.get("when") else None
        check_node = _parse(rule["check"])[0].body
        each = rule["forEach"].split(".") if rule.get("forEach") else None
        when: _Fn | None = None
        check: _Fn | None = None
        if not _GENERATE:
            when, check = None if when_node is None else _fn(when_node), _fn(check_node)
        plan: _Plan = (rule, when, check, tolerance, each, when_node, check_node)
        if len(self._plans) > 4096:
            self._plans.clear()
        self._plans[id(rule)] = plan
        return plan

    # --- evaluation -----------------------------------------------------------------------
    def _bound_memo(self) -> None:
        """The SI memo's bound, once per check: generated functions memoise without testing it
        (it may pass the bound by one check's quantities)."""
        if len(self._si_cache) > 65536:
            self._si_cache.clear()

    def evaluate(self, expr: str, scope: _Scope, tolerance: tuple[Decimal, Decimal] | None = None) -> Any:
        self._bound_memo()
        tree, text = _parse(expr)
        ev = _Evaluator(self, scope, tolerance or self.default_tolerance)
        return _entry(tree.body)(ev)

    def _explain(self, rule: dict[str, Any], scope: _Scope, tolerance: tuple[Decimal, Decimal]) -> str:
        # For approx(a, b) checks, say what was reported and what the formula gives.
        tree, text = _parse(rule["check"])
        call = tree.body
        if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "approx" and len(call.args) == 2:
            ev = _Evaluator(self, scope, tolerance)
            try:
                a, b = ev.number(ev.visit(call.args[0])), ev.number(ev.visit(call.args[1]))
                return f" (reported {_fmt(a)}, computed {_fmt(b)}, SI units)"
            except (_Missing, TypeError, ValueError, InvalidOperation):
                return ""
        return ""

    def _lookup_path(self, obj: Any, parts: list[str]) -> Any:
        for part in parts:
            if isinstance(obj, list):
                obj = [self._lookup_path(x, [part]) for x in obj]
                obj = [x for x in obj if x is not _ABSENT]
                continue
            if not isinstance(obj, dict) or part not in obj:
                return _ABSENT
            obj = obj[part]
        return obj


_ORDERING = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge}


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


_ABSENT = _Absent()  # the only one: generated functions test ``is ABSENT``


def _flatten(values: list[Any]) -> list[Any]:
    # A path through two lists (power.units.fuels.emission) projects to a list of lists.
    out: list[Any] = []
    for v in values:
        out.extend(_flatten(v) if isinstance(v, list) else [v])
    return out


def _flatten_fast(values: list[Any]) -> list[Any]:
    """``_flatten`` without a list per element (generated functions)."""
    out: list[Any] = []
    for v in values:
        if isinstance(v, list):
            out.extend(_flatten_fast(v))
        else:
            out.append(v)
    return out


def _fmt(d: Decimal) -> str:
    return format(d.normalize(), "f") if d == d.to_integral_value() else f"{d:.6g}"


class _Evaluator:
    FUNCTIONS = {
        "approx", "sum", "all", "count", "present", "opt", "unique", "increasing", "q",
        "unitOf", "hoursInPeriod", "usccValid", "industrySections", "startsWith", "length", "flagged",
        "factor", "monthStart", "monthEnd", "addDays", "sm3b64", "b64size", "parameters",
    }

    def __init__(self, engine: RuleEngine, scope: _Scope, tolerance: tuple[Decimal, Decimal]):
        self.engine, self.scope, self.tolerance = engine, scope, tolerance
        self._si = engine._si_cache  # the engine only ever clears it, never replaces it

    # values --------------------------------------------------------------------------------
    def number(self, value: Any) -> Decimal:
        kind = type(value)  # the common cases first, by exact type (same answers as the chain below)
        if kind is dict:
            try:
                key = (value["value"], value["unit"])
            except KeyError:
                pass  # not a quantity: the chain below says what it is
            else:
                try:
                    hit = self._si.get(key)
                except TypeError:  # unhashable: si_value fails clearly
                    hit = None
                return hit if hit is not None else self.engine.si_value(key[0], key[1])
        elif kind is Decimal:
            return cast(Decimal, value)
        if isinstance(value, _Absent):
            raise _Missing()
        if isinstance(value, bool):
            raise TypeError("boolean used as a number")
        if isinstance(value, Decimal):
            return value
        if isinstance(value, int):
            return Decimal(value)
        if isinstance(value, dict) and "value" in value and "unit" in value:
            return self.engine.si_value(value["value"], value["unit"])
        if isinstance(value, str):
            return Decimal(value)
        raise TypeError(f"not a number: {value!r}")

    def comparable(self, value: Any) -> Any:
        kind = type(value)  # quantities and Decimals first, by exact type (same answers as below)
        if kind is dict or kind is Decimal:
            try:
                return self.number(value)
            except (TypeError, InvalidOperation):
                return value
        if isinstance(value, _Absent):
            raise _Missing()
        if isinstance(value, str):
            if _INSTANT.match(value):
                return parse_instant(value)
            return value
        if isinstance(value, (dict, int, Decimal)) and not isinstance(value, bool):
            try:
                return self.number(value)
            except (TypeError, InvalidOperation):
                return value
        return value

    # nodes ---------------------------------------------------------------------------------
    def visit(self, node: ast.AST) -> Any:
        fn = getattr(node, "_cedx_fn", None)
        if fn is None:
            fn = _compile(node)
        return fn(self)

    # functions -----------------------------------------------------------------------------
    def _sub_expr(self, items: Any, expr_node: ast.AST) -> list[Any]:
        if not isinstance(expr_node, ast.Constant) or not isinstance(expr_node.value, str):
            raise ValueError("the per-element expression must be a string literal")
        tree, text = _parse(expr_node.value)
        fn = _fn(tree.body)
        scope = _Scope(None, self.scope.root, self.scope.path, self.scope.memo)
        ev = _Evaluator(self.engine, scope, self.tolerance)  # one for every element
        out = []
        for item in (items if isinstance(items, list) else []):
            scope.current = item
            out.append(fn(ev))
        return out

    def f_approx(self, args: list[ast.expr]) -> bool:
        a, b = self.number(self.visit(args[0])), self.number(self.visit(args[1]))
        rel, abs_ = self.tolerance
        return abs(a - b) <= max(abs_, rel * max(abs(a), abs(b)))

    def f_sum(self, args: list[ast.expr]) -> Decimal:
        items = self.visit(args[0])
        if isinstance(items, _Absent):
            return Decimal(0)
        values = self._sub_expr(items, args[1]) if len(args) > 1 else items
        if not isinstance(values, list):
            values = [values]
        return sum((self.number(v) for v in _flatten(values)), Decimal(0))

    def f_all(self, args: list[ast.expr]) -> bool:
        items = self.visit(args[0])
        if isinstance(items, _Absent):
            return True
        return all(self._sub_expr(items, args[1]))

    def f_count(self, args: list[ast.expr]) -> int:
        v = self.visit(args[0])
        return 0 if isinstance(v, _Absent) else (len(v) if isinstance(v, list) else 1)

    def f_present(self, args: list[ast.expr]) -> bool:
        return not isinstance(self.visit(args[0]), _Absent)

    def f_opt(self, args: list[ast.expr]) -> Any:
        v = self.visit(args[0])
        return Decimal(0) if isinstance(v, _Absent) else v

    def f_unique(self, args: list[ast.expr]) -> bool:
        v = self.visit(args[0])
        items = [] if isinstance(v, _Absent) else v
        return len(items) == len({repr(x) for x in items})

    def f_increasing(self, args: list[ast.expr]) -> bool:
        v = self.visit(args[0])
        items = [self.comparable(x) for x in ([] if isinstance(v, _Absent) else v)]
        return all(a < b for a, b in zip(items, items[1:]))

    def f_length(self, args: list[ast.expr]) -> int:
        """Length of a string or list (count() treats a string as one item)."""
        v = self.visit(args[0])
        return 0 if isinstance(v, _Absent) else len(v) if isinstance(v, (str, list)) else 1

    def f_flagged(self, args: list[ast.expr]) -> list[Any]:
        """Columnar batches: pair value i with flag character i as {value, flag}."""
        values, flags = self.visit(args[0]), self.visit(args[1])
        if not isinstance(values, list) or not isinstance(flags, str):
            return []
        return [{"value": v, "flag": f} for v, f in zip(values, flags)]

    def f_q(self, args: list[ast.expr]) -> Decimal:
        value, unit = self.visit(args[0]), self.visit(args[1])
        return self.number({"value": value, "unit": unit})

    def f_unitOf(self, args: list[ast.expr]) -> str:
        v = self.visit(args[0])
        if isinstance(v, _Absent):
            raise _Missing()
        return cast(str, v["unit"])

    def f_hoursInPeriod(self, args: list[ast.expr]) -> Decimal:
        period = self.visit(args[0])
        if isinstance(period, _Absent):
            raise _Missing()
        year, month = (int(x) for x in str(period).split("-"))
        return Decimal(calendar.monthrange(year, month)[1] * 24) * 3600  # SI: seconds

    def f_usccValid(self, args: list[ast.expr]) -> bool:
        v = self.visit(args[0])
        if isinstance(v, _Absent):
            raise _Missing()
        return uscc.is_valid(v)

    def f_industrySections(self, args: list[ast.expr]) -> list[Any]:
        doc = self.scope.current
        sections = self.engine.index.facts.industry_sections  # from the spec: Industry × MonthlyReport
        return [code for key, code in sections.items() if isinstance(doc, dict) and key in doc]

    def f_startsWith(self, args: list[ast.expr]) -> bool:
        s, prefix = self.visit(args[0]), self.visit(args[1])
        if isinstance(s, _Absent) or isinstance(prefix, _Absent):
            raise _Missing()
        prefix = format(prefix, "f") if isinstance(prefix, Decimal) else str(prefix)
        return str(s).startswith(prefix)

    # --- factor table, period rule, attachments ---------------------------------------------
    def f_factor(self, args: list[ast.expr]) -> Decimal:
        """factor('power.carbon_per_ncv_default'): a value of the factor table, in SI."""
        key = self.visit(args[0])
        return self.number(factor_row(self.engine.index.spec, str(key)))

    def _period(self, args: list[ast.expr]) -> tuple[int, int]:
        period = self.visit(args[0])
        if isinstance(period, _Absent):
            raise _Missing()
        year, month = (int(x) for x in str(period).split("-"))
        if not (1 <= year <= 9998 and 1 <= month <= 12):
            raise _Missing()  # no such calendar month (e.g. year 0000): the schema's pattern alone cannot say so
        return year, month

    def f_monthStart(self, args: list[ast.expr]) -> _dt.datetime:
        """First instant of a reporting month: day 1, 00:00 China Standard Time (UTC+8)."""
        return month_bounds(*self._period(args))[0]

    def f_monthEnd(self, args: list[ast.expr]) -> _dt.datetime:
        """First instant after a reporting month (exclusive end), UTC+8."""
        return month_bounds(*self._period(args))[1]

    def f_addDays(self, args: list[ast.expr]) -> _dt.datetime:
        t = self.comparable(self.visit(args[0]))
        days = self.number(self.visit(args[1]))
        if not isinstance(t, _dt.datetime) or not (-3660 <= days <= 3660):
            raise _Missing()  # not an instant, or an absurd offset: the rule does not apply
        return t + _dt.timedelta(days=int(days))

    def f_sm3b64(self, args: list[ast.expr]) -> str:
        v = self.visit(args[0])
        if isinstance(v, _Absent):
            raise _Missing()
        from ..trust import sm3

        return sm3(_b64(v)).hex()

    def f_parameters(self, args: list[ast.expr]) -> list[Any]:
        """Every Parameter ({value, unit, source}) anywhere below a node (root: the whole document)."""
        out: list[Any] = []
        node = self.visit(args[0])
        if isinstance(node, (dict, list)):
            _parameters(node, out)
        return out

    def f_b64size(self, args: list[ast.expr]) -> Decimal:
        v = self.visit(args[0])
        if isinstance(v, _Absent):
            raise _Missing()
        return Decimal(len(_b64(v)))


_CONTAINERS = (dict, list)


def _parameters(node: Any, out: list[Any]) -> None:
    """Depth first, children in document order; only containers are visited (a parsed document
    nests at most 64 levels, so the recursion is bounded). Most values are strings: the exact
    type is tested first, isinstance only for the rare other kinds (same answers)."""
    if type(node) is dict or isinstance(node, dict):
        if "source" in node and "value" in node and "unit" in node:
            out.append(node)
        for value in node.values():
            kind = type(value)
            if kind is str:
                continue
            if kind is dict or kind is list or isinstance(value, _CONTAINERS):
                _parameters(value, out)
    else:
        for value in node:
            kind = type(value)
            if kind is str:
                continue
            if kind is dict or kind is list or isinstance(value, _CONTAINERS):
                _parameters(value, out)


def _parameters_fast(node: Any, out: list[Any]) -> None:
    """``_parameters`` for generated functions: the same list, in the same order."""
    if type(node) is dict or isinstance(node, dict):
        if "source" in node and "value" in node and "unit" in node:
            out.append(node)
        _parameters_below(node.values(), out)
    else:
        _parameters_below(node, out)


def _parameters_below(values: Any, out: list[Any]) -> None:
    """``_parameters_fast`` of each value in turn. Most values are strings, most dicts hold only
    strings (a quantity, a Parameter): the exact types are tested first, and a dict of strings
    alone is taken here rather than by a call (same answers, same order)."""
    for value in values:
        kind = type(value)
        if kind is str:
            continue
        if kind is dict:
            if "source" in value and "value" in value and "unit" in value:
                out.append(value)
            children = value.values()
            for child in children:
                if type(child) is not str:
                    _parameters_below(children, out)
                    break
        elif kind is list or isinstance(value, _CONTAINERS):
            _parameters_fast(value, out)


_Where = Any
#: A Parameter's own plan: the object may be one; nothing below it can be.
_LEAF: _Where = ("object", True, {}, None)
#: Keywords that only restrict an instance further, or say nothing about it: a plan may ignore them.
#: (patternProperties and prefixItems widen what additionalProperties and items allow: not here.)
_RESTRICTING = frozenset({
    "required", "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties", "pattern",
    "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "multipleOf", "format", "contentEncoding", "contentMediaType", "title", "description", "xml",
    "examples", "example", "default", "deprecated", "readOnly", "writeOnly", "$comment", "nullable",
    "discriminator", "not", "if", "then", "else", "contains", "minContains", "maxContains",
    "dependentRequired", "dependentSchemas", "propertyNames", "unevaluatedProperties",
    "unevaluatedItems", "$id", "$schema", "$anchor", "$defs", "definitions",
})
_PARAMETER_KEYS = ("source", "value", "unit")


class _ParameterPlanner:
    """Builds the plan of where a Parameter ({value, unit, source}) can be in an instance of a
    schema: every object schema of the spec is closed, so it can only be where an object schema
    names all three members, and in what leads there. Conservative: what it cannot read (a
    keyword it does not know, a recursive reference, a union that may hold one) is
    ``ANYWHERE``, where the walk looks at everything as before."""

    def __init__(self, schemas: dict[str, Any]):
        self.schemas = schemas
        self.done: dict[int, _Where] = {}
        self.busy: set[int] = set()

    def where(self, node: Any) -> _Where:
        if node is False:
            return None
        if not isinstance(node, dict):
            return ANYWHERE  # true, or not a schema
        key = id(node)
        if key in self.done:
            return self.done[key]
        if key in self.busy:
            return ANYWHERE  # a recursive reference: no shortcut below it
        self.busy.add(key)
        try:
            plan = self._build(node)
        finally:
            self.busy.discard(key)
        self.done[key] = plan
        return plan

    def _build(self, node: dict[str, Any]) -> _Where:
        # The instance satisfies every part below: each one bounds where Parameters can be.
        bounds: list[_Where] = [self._own(node)]
        ref = node.get("$ref")
        if ref is not None:
            name = ref[len(REF_PREFIX):] if isinstance(ref, str) and ref.startswith(REF_PREFIX) else None
            bounds.append(self.where(self.schemas[name]) if name in self.schemas else ANYWHERE)
        bounds += [self.where(sub) for sub in node.get("allOf", ())]
        for key in ("oneOf", "anyOf"):
            if key in node:
                options = [self.where(sub) for sub in node[key]]
                bounds.append(None if all(o is None for o in options) else ANYWHERE)
        for key in ("enum", "const"):
            if key in node:
                values = node[key] if key == "enum" else [node[key]]
                bounds.append(ANYWHERE if any(isinstance(v, (dict, list)) for v in values) else None)
        if any(b is None for b in bounds):
            return None
        return next((b for b in bounds if b is not ANYWHERE), ANYWHERE)

    def _own(self, node: dict[str, Any]) -> _Where:
        """What the node's own type, properties and items say."""
        handled = {"$ref", "allOf", "oneOf", "anyOf", "enum", "const", "type", "properties",
                   "additionalProperties", "items"}
        if any(k not in handled and k not in _RESTRICTING and not k.startswith("x-") for k in node):
            return ANYWHERE
        kind = node.get("type")
        if kind is None:
            return ANYWHERE
        kinds = {kind} if isinstance(kind, str) else set(kind)
        if not kinds & {"object", "array"}:
            return None  # a scalar
        if kinds >= {"object", "array"}:
            return ANYWHERE
        if "object" in kinds:
            members = node.get("properties", {})
            other = self.where(node.get("additionalProperties", True))
            may = all(k in members or other is not None for k in _PARAMETER_KEYS)
            plans = {name: self.where(sub) for name, sub in members.items()}
            plans = {name: p for name, p in plans.items() if p is not None}
            if not may and not plans and other is None:
                return None
            plan: _Where = ("object", may, plans, other)
            return _LEAF if plan == _LEAF else plan
        items = node.get("items", True)
        if isinstance(items, list):
            return ANYWHERE  # an old tuple form: not read here
        item = self.where(items)
        return None if item is None else ("array", item)


def _parameters_planned(node: Any, plan: _Where, out: list[Any]) -> None:
    """``_parameters_fast`` of a node that satisfies the schema of ``plan``: the same list in the
    same order (depth first, members in document order), looking only where one can be. A node
    of another kind than its plan says is walked whole."""
    kind = type(node)
    if plan[0] == "object" and (kind is dict or isinstance(node, dict)):
        if plan[1] and "source" in node and "value" in node and "unit" in node:
            out.append(node)
        members, other = plan[2], plan[3]
        if not members and other is None:
            return
        for key, value in node.items():
            sub = members.get(key, other)
            if sub is None:
                continue
            if sub is _LEAF and type(value) is dict:
                if "source" in value and "value" in value and "unit" in value:
                    out.append(value)
            elif sub is ANYWHERE or sub is _LEAF:
                if type(value) is not str and isinstance(value, _CONTAINERS):
                    _parameters_fast(value, out)
            elif type(value) is not str:
                _parameters_planned(value, sub, out)
    elif plan[0] == "array" and (kind is list or isinstance(node, list)):
        item = plan[1]
        for value in node:
            if item is ANYWHERE:
                if isinstance(value, _CONTAINERS):
                    _parameters_fast(value, out)
            else:
                _parameters_planned(value, item, out)
    elif isinstance(node, _CONTAINERS):
        _parameters_fast(node, out)


def _parameters_of_root(root: Any, memo: dict[Any, Any], out: list[Any]) -> None:
    """``parameters(root)`` in a generated function: along the plan the check was given (the
    document satisfies its schema), else the whole walk."""
    if isinstance(root, _CONTAINERS):
        plan = memo.get(_PARAMETER_PLAN, ANYWHERE)
        if plan is ANYWHERE:
            _parameters_fast(root, out)
        elif plan is not None:
            _parameters_planned(root, plan, out)


_PARAMETER_PLAN = object()  # the memo's key of the check's plan


def _b64(value: Any) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except ValueError:  # binascii.Error: not base64 — the schema reports it; the rule does not apply
        raise _Missing() from None


def month_bounds(year: int, month: int) -> tuple[_dt.datetime, _dt.datetime]:
    """The period rule: month YYYY-MM is [YYYY-MM-01 00:00+08:00, first day of next month 00:00+08:00)."""
    start = _dt.datetime(year, month, 1, tzinfo=CHINA_STANDARD_TIME)
    end = _dt.datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=CHINA_STANDARD_TIME)
    return start, end


def factor_row(spec: dict[str, Any], key: str) -> dict[str, Any]:
    """A row of the factor table (x-cedx-factors) by dotted key: 'power.coal_oxidation_rate',
    'heat.purchased_heat_factor', 'constants.ch4_density', 'defaults.steel.limestone_factor',
    'gwp.CH4.IPCC-SAR', 'grid.2023.national_average'. Returns {value, unit, ...}."""
    table = spec.get("x-cedx-factors") or {}
    parts = key.split(".")
    section = parts[0]
    if section == "gwp" and len(parts) == 3:
        rows = [r for r in table.get("gwp", []) if r["gas"] == parts[1] and r["assessment"] == parts[2]]
        return {**rows[0], "unit": "1"} if rows else _no_factor(key)
    if section == "grid" and len(parts) == 3:
        rows = [r for r in table.get("grid", []) if str(r["year"]) == parts[1] and r["kind"] == parts[2]]
        return {**rows[0], "unit": "tCO2/MWh"} if rows else _no_factor(key)
    node: Any = table.get(section)
    for part in parts[1:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    rows = [r for r in (node or []) if isinstance(r, dict) and r.get("key") == parts[-1]]
    if not rows:
        return _no_factor(key)
    row: dict[str, Any] = rows[0]
    if "numerator" in row:
        return {**row, "value": str(Decimal(row["numerator"]) / Decimal(row["denominator"])), "unit": "1"}
    return row


def _no_factor(key: str) -> dict[str, Any]:
    raise KeyError(f"no factor {key!r} in the factor table")


# --- expression compiler -------------------------------------------------------------------
_Fn = Callable[["_Evaluator"], Any]  # a compiled node: evaluator -> value
# Each AST node becomes, once, a closure over its compiled children taking the evaluator (scope,
# engine, tolerance); parsed expressions are cached, so a rule's tree is compiled once per
# process. The closures do exactly what a tree walk would, in the same order, including where
# an error is raised (a construct outside the whitelist fails when it is evaluated).

#: False: every node gets its general closure (no per-case specialisations); the differential
#: test compiles the rules both ways and compares the violations.
_SPECIALISE = True


def _compile(node: ast.AST) -> _Fn:
    compiler = _COMPILERS.get(type(node))
    fn: _Fn
    if compiler is None:
        message = f"expression construct not allowed: {type(node).__name__}"

        def fn(ev: _Evaluator) -> Any:
            raise ValueError(message)
    else:
        fn = compiler(node)
    node._cedx_fn = fn  # type: ignore[attr-defined]
    return fn


def _fn(node: ast.AST) -> _Fn:
    return getattr(node, "_cedx_fn", None) or _compile(node)


def _lookup(obj: Any, name: str, engine: RuleEngine) -> Any:
    if type(obj) is dict or isinstance(obj, dict):
        return obj.get(name, _ABSENT)
    if isinstance(obj, list):
        return engine._lookup_path(obj, [name])
    return _ABSENT


def _glookup(obj: Any, name: str, engine: RuleEngine) -> Any:
    """``_lookup`` for generated functions (the closures keep the tree walk's own)."""
    if type(obj) is dict or isinstance(obj, dict):
        return obj.get(name, _ABSENT)
    if isinstance(obj, list):
        return _project(obj, name)
    return _ABSENT


def _project(items: list[Any], name: str) -> list[Any]:
    """``RuleEngine._lookup_path(items, [name])``: the name of every element that has it, a
    nested list projected in turn (a list of lists), in one pass."""
    out = []
    for x in items:
        if type(x) is dict or isinstance(x, dict):
            value = x.get(name, _ABSENT)
            if value is not _ABSENT:
                out.append(value)
        elif isinstance(x, list):
            out.append(_project(x, name))
    return out


def _c_constant(node: ast.Constant) -> _Fn:
    decimal = getattr(node, "decimal", None)
    value = node.value if decimal is None else decimal
    return lambda ev: value


def _c_name(node: ast.Name) -> _Fn:
    name = node.id
    if name == "root":
        return lambda ev: ev.scope.root
    if name in ("True", "False"):
        value = name == "True"
        return lambda ev: value

    def fn(ev: _Evaluator) -> Any:
        current = ev.scope.current
        if type(current) is dict:  # the common case inline; _lookup gives the same answer
            return current.get(name, _ABSENT)
        return _lookup(current, name, ev.engine)
    return fn


def _root_only(node: ast.AST) -> bool:
    """The node's value depends on the document root alone (not on the current element)."""
    if isinstance(node, ast.Name):
        return node.id == "root"
    if isinstance(node, ast.Attribute):
        return _root_only(node.value)
    return False


def _memoised(node: ast.AST, compute: _Fn) -> _Fn:
    def fn(ev: _Evaluator) -> Any:
        memo = ev.scope.memo
        try:
            return memo[node]
        except KeyError:
            value = memo[node] = compute(ev)
            return value
    return fn


def _c_attribute(node: ast.Attribute) -> _Fn:
    inner, attr = _fn(node.value), node.attr

    def compute(ev: _Evaluator) -> Any:
        obj = inner(ev)
        if type(obj) is dict:  # the common case inline; _lookup gives the same answer
            return obj.get(attr, _ABSENT)
        return _lookup(obj, attr, ev.engine)
    return _memoised(node, compute) if _root_only(node) else compute


def _c_list(node: ast.List) -> _Fn:
    items = [_fn(e) for e in node.elts]
    return lambda ev: [f(ev) for f in items]


def _c_unaryop(node: ast.UnaryOp) -> _Fn:
    operand = _fn(node.operand)
    if isinstance(node.op, ast.Not):
        return lambda ev: not operand(ev)
    if isinstance(node.op, ast.USub):
        return lambda ev: -ev.number(operand(ev))

    def refuse(ev: _Evaluator) -> Any:
        raise ValueError("unary operator not allowed")
    return refuse


_ARITH_OPS = {ast.Add: _ARITH.add, ast.Sub: _ARITH.subtract, ast.Mult: _ARITH.multiply}


def _c_binop(node: ast.BinOp) -> _Fn:
    left_fn, right_fn, op = _fn(node.left), _fn(node.right), type(node.op)
    arith = _ARITH_OPS.get(op)
    if _SPECIALISE and (op is ast.Sub or op is ast.Mult):
        assert arith is not None

        def numeric(ev: _Evaluator) -> Any:  # the general fn below, for an operator that never joins strings
            left, right = left_fn(ev), right_fn(ev)
            number = ev.number
            return arith(number(left), number(right))
        return numeric
    if _SPECIALISE and op is ast.Div:
        divide = _ARITH.divide

        def division(ev: _Evaluator) -> Any:  # the general fn below, for /
            left, right = left_fn(ev), right_fn(ev)
            number = ev.number
            a, b = number(left), number(right)
            if b == 0:
                raise _Missing()  # a zero divisor makes the rule inapplicable
            return divide(a, b)
        return division

    def fn(ev: _Evaluator) -> Any:
        left, right = left_fn(ev), right_fn(ev)
        if op is ast.Add and isinstance(left, str) and isinstance(right, str):
            return left + right
        a, b = ev.number(left), ev.number(right)
        if arith is not None:
            return arith(a, b)
        if op is ast.Div:
            if b == 0:
                raise _Missing()  # a zero divisor makes the rule inapplicable
            return _ARITH.divide(a, b)
        raise ValueError("operator not allowed")
    return fn


def _c_boolop(node: ast.BoolOp) -> _Fn:
    values = [_fn(v) for v in node.values]
    # What all()/any() over the operands give (a bool, stopping at the first deciding operand),
    # without a generator per evaluation.
    if isinstance(node.op, ast.And):
        def conjunction(ev: _Evaluator) -> bool:
            for f in values:
                if not f(ev):
                    return False
            return True
        return conjunction

    def disjunction(ev: _Evaluator) -> bool:
        for f in values:
            if f(ev):
                return True
        return False
    return disjunction


def _c_compare(node: ast.Compare) -> _Fn:
    left_fn = _fn(node.left)
    steps = [(type(op), _fn(comp), comp if _root_only(comp) else None)
             for op, comp in zip(node.ops, node.comparators)]

    if _SPECIALISE and len(steps) == 1:  # one operator (the usual case): the loop below without the loop
        op, comp, root_node = steps[0]
        if op is ast.Eq or op is ast.NotEq:
            equal = op is ast.Eq

            def equality(ev: _Evaluator) -> bool:
                left, right = left_fn(ev), comp(ev)
                if isinstance(left, _Absent) or isinstance(right, _Absent):
                    raise _Missing()
                if left == right:
                    return equal
                return not equal
            return equality
        if op in _ORDERING:
            order = _ORDERING[op]

            def ordering(ev: _Evaluator) -> bool:
                left, right = left_fn(ev), comp(ev)
                comparable = ev.comparable
                return True if order(comparable(left), comparable(right)) else False
            return ordering
        if op is ast.In:
            def membership(ev: _Evaluator) -> bool:
                left, right = left_fn(ev), comp(ev)
                if isinstance(right, _Absent):
                    return False  # absent: empty
                return True if _member(ev, left, right, root_node) else False
            return membership

    def fn(ev: _Evaluator) -> Any:
        left = left_fn(ev)
        for op, comp, root_node in steps:
            right = comp(ev)
            if op is ast.Eq or op is ast.NotEq:
                if isinstance(left, _Absent) or isinstance(right, _Absent):
                    raise _Missing()
                same = left == right
                ok = same if op is ast.Eq else not same
            elif op is ast.In:
                ok = False if isinstance(right, _Absent) else _member(ev, left, right, root_node)  # absent: empty
            else:
                ok = _ORDERING[op](ev.comparable(left), ev.comparable(right))
            if not ok:
                return False
            left = right
        return True
    return fn


def _member(ev: _Evaluator, left: Any, right: Any, root_node: ast.AST | None) -> bool:
    """``left in right``; a list that depends on the root alone is turned into a set once per
    rule check (same answers: hashable items compare by == in both)."""
    if root_node is not None and isinstance(right, list):
        key = (root_node, "set")
        members: frozenset[Any] | Literal[False] | None = ev.scope.memo.get(key)
        if members is None:
            try:
                members = frozenset(right)
            except TypeError:
                members = False  # unhashable items: plain list membership
            ev.scope.memo[key] = members
        if members is not False:
            try:
                return left in members
            except TypeError:
                pass
    return left in right


def _c_call(node: ast.Call) -> _Fn:
    name = getattr(node.func, "id", None)
    if name not in _Evaluator.FUNCTIONS or node.keywords:
        def refuse(ev: _Evaluator) -> Any:
            raise ValueError(f"function not allowed: {name}")
        return refuse
    method, args = getattr(_Evaluator, f"f_{name}"), node.args
    special = _SPECIAL_CALLS.get((name, len(args))) if _SPECIALISE else None
    if special is not None:
        return special(*[_fn(a) for a in args])
    call: _Fn = lambda ev: method(ev, args)  # noqa: E731
    if _SPECIALISE and name in _PURE and all(isinstance(a, ast.Constant) or _root_only(a) for a in args):
        return _memoised(node, call)  # e.g. hoursInPeriod(root.period) in a forEach rule: once per check
    return call


#: Functions whose value depends on their arguments alone (and the spec): with arguments that are
#: literals or depend on the root alone, computed once per rule check, not once per element.
_PURE = frozenset({"hoursInPeriod", "factor", "monthStart", "monthEnd"})


def _s_approx(a_fn: _Fn, b_fn: _Fn) -> _Fn:
    def fn(ev: _Evaluator) -> bool:  # = _Evaluator.f_approx
        number = ev.number
        a = number(a_fn(ev))
        b = number(b_fn(ev))
        rel, abs_ = ev.tolerance
        x, y = abs(a), abs(b)
        bound = rel * (y if y > x else x)  # max() spelled out: the same element, no call
        return abs(a - b) <= (bound if bound > abs_ else abs_)
    return fn


def _s_present(a_fn: _Fn) -> _Fn:
    return lambda ev: not isinstance(a_fn(ev), _Absent)  # = _Evaluator.f_present


def _s_opt(a_fn: _Fn) -> _Fn:
    def fn(ev: _Evaluator) -> Any:  # = _Evaluator.f_opt
        v = a_fn(ev)
        return Decimal(0) if isinstance(v, _Absent) else v
    return fn


def _s_unit_of(a_fn: _Fn) -> _Fn:
    def fn(ev: _Evaluator) -> str:  # = _Evaluator.f_unitOf
        v = a_fn(ev)
        if isinstance(v, _Absent):
            raise _Missing()
        return cast(str, v["unit"])
    return fn


#: Functions compiled with their arguments (by name and arity); the others get the argument
#: nodes (their second argument may be an expression to evaluate per element).
_SPECIAL_CALLS: dict[tuple[str, int], Callable[..., _Fn]] = {
    ("approx", 2): _s_approx, ("present", 1): _s_present, ("opt", 1): _s_opt, ("unitOf", 1): _s_unit_of,
}


_COMPILERS: dict[type[ast.AST], Callable[[Any], _Fn]] = {
    ast.Constant: _c_constant, ast.Name: _c_name, ast.Attribute: _c_attribute, ast.List: _c_list,
    ast.UnaryOp: _c_unaryop, ast.BinOp: _c_binop, ast.BoolOp: _c_boolop, ast.Compare: _c_compare,
    ast.Call: _c_call,
}


# --- source compiler -----------------------------------------------------------------------
# The fast path: each rule expression becomes, once, one Python function generated from its tree
# (Python source text compiled with ``compile``), so a check is straight-line code over locals
# instead of a call per node. It does exactly what the closures above do, in the same order and
# with the same errors; what it does not treat itself (refused constructs, chained comparisons,
# the rarer functions) it hands to their closure. tests/spec/test_rule_differential.py compares
# it with the general closures on every example and on mutated documents.

#: False: rule checks run on the closures alone (the differential test's reference).
_GENERATE = True


@lru_cache(maxsize=512)
def _group_loop(rules: tuple[tuple[ast.AST | None, ast.AST], ...]) -> _Loop:
    """The generated loop of rules that walk the same elements, once per tuple of parsed
    (when, check) trees (parsed trees are cached, so once per process)."""
    return _generate_group(rules)


def _entry(node: ast.AST) -> _Fn:
    """The function that evaluates an expression's tree: generated, or its closure."""
    if not _GENERATE:
        return _fn(node)
    fn = getattr(node, "_cedx_gen", None)
    if fn is None:
        fn = _generate(node)
        node._cedx_gen = fn  # type: ignore[attr-defined]
    return cast(_Fn, fn)


def _member_memo(memo: dict[Any, Any], left: Any, right: Any, root_node: ast.AST | None) -> bool:
    """``_member`` given the check's memo."""
    if root_node is not None and isinstance(right, list):
        key = (root_node, "set")
        members: frozenset[Any] | Literal[False] | None = memo.get(key)
        if members is None:
            try:
                members = frozenset(right)
            except TypeError:
                members = False  # unhashable items: plain list membership
            memo[key] = members
        if members is not False:
            try:
                return left in members
            except TypeError:
                pass
    return left in right


def _sum_of(number: Callable[[Any], Decimal], si: dict[Any, Decimal], values: Any,
            convert: Callable[[Any, Any], Decimal]) -> Decimal:
    """What ``_Evaluator.f_sum`` adds up once it has its values: their numbers in turn (a
    quantity already in the SI memo ``si`` taken from there, one not yet there converted by
    ``convert`` = ``RuleEngine._convert``, as ``number`` would), each added as it comes."""
    if not isinstance(values, list):
        values = [values]
    total = Decimal(0)
    for v in _flatten_fast(values):
        n = None
        if type(v) is dict:
            try:
                key = (v["value"], v["unit"])
                n = si.get(key)
            except (KeyError, TypeError):
                key = None
            if n is None and key is not None:
                n = convert(key[0], key[1])
        if n is None:
            n = number(v)
        total = total + n
    return total


def _sub_tree(node: ast.AST) -> ast.AST | None:
    """The parsed per-element expression of all()/sum(), or None when it is not a string literal
    that parses (the closure then raises what it raises, when evaluated)."""
    if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
        return None
    try:
        return _parse(node.value)[0].body
    except (SyntaxError, ValueError):
        return None


_GLOBALS: dict[str, Any] = {
    "ABSENT": _ABSENT, "_Absent": _Absent, "_Missing": _Missing, "Decimal": Decimal, "InvalidOperation": InvalidOperation,
    "_lookup": _glookup, "_member_memo": _member_memo, "_sum_of": _sum_of, "_parameters": _parameters_fast,
    "_parameters_of_root": _parameters_of_root,
    "MISS": _MISS, "ADD": _ARITH.add, "SUB": _ARITH.subtract, "MUL": _ARITH.multiply, "DIV": _ARITH.divide,
    "DEC0": Decimal(0),
}

#: The evaluator's parts a generated function may read, as its first lines take them.
_PROLOGUE = {
    "scope": "scope = ev.scope", "cur": "cur = scope.current", "root": "root = scope.root",
    "memo": "memo = scope.memo", "engine": "engine = ev.engine", "num": "num = ev.number",
    "cmp": "cmp = ev.comparable", "tol": "rel, abs_ = ev.tolerance", "SI": "SI = ev._si",
    "convert": "convert = ev.engine._convert; CONV = ev.engine._conversions",
}


def _generate(node: ast.AST) -> _Fn:
    gen = _Source()
    result = gen.value(node, 1, "cur", "ev")
    lines = ["def _rule_expression(ev):", *gen.prologue(set()), *gen.lines, f"    return {result}", ""]
    return cast(_Fn, gen.function(lines, "_rule_expression"))


#: Rules' loop: (their evaluators, elements) -> for each rule, the positions of the elements
#: that break it.
_Loop = Callable[[list["_Evaluator"], Any], list[list[int]]]


def _generate_group(rules: tuple[tuple[ast.AST | None, ast.AST], ...]) -> _Loop:
    """One function checking each element against every rule in turn, as ``check_rule``
    evaluates one rule: an absent name skips the element for that rule, a false ``when`` too, a
    false ``check`` is a violation. The element's names are looked up once at the top (a look-up
    has no effect and cannot fail), a quantity is converted on first use, then reused by the
    rules after it (a conversion that fails is not kept, so it fails again where used again)."""
    gen = _Source(hoist=True)
    body: list[str] = []
    for j, (when, check) in enumerate(rules):
        gen.lines = []
        gen.tol = (f"rel{j}", f"abs{j}")
        ev = f"ev{j}"
        ind = 3
        if when is not None:
            applies = gen.test(when, 3, "cur", ev)
            gen.emit(3, f"if {applies}:")
            ind = 4
        gen.unless(check, ind, "cur", ev, f"f{j}.append(i)")
        body += ["        try:", *gen.lines, "        except _Missing:", "            pass"]
        gen.decimals.clear()  # a Decimal local of one rule's block may be unset in another's
        gen.optional.clear()
    names = list(gen.hoisted.items())
    top = ["        scope.current = cur"]  # what handed-over closures read
    if names:
        gen.use("engine")
        top += ["        if type(cur) is dict:", *[f"            {v} = cur.get({n!r}, ABSENT)" for n, v in names],
                "        else:", *[f"            {v} = _lookup(cur, {n!r}, engine)" for n, v in names]]
    if gen.cached:
        top.append(f"        {' = '.join(gen.cached.values())} = MISS")
    per_rule = [f"    ev{j} = evs[{j}]; rel{j}, abs{j} = ev{j}.tolerance; f{j} = []" for j in range(len(rules))]
    lines = [
        "def _rules_loop(evs, items):", "    ev = evs[0]", *gen.prologue({"scope"}, loop=True), *per_rule,
        "    for i, cur in enumerate(items):", *top, *body,
        f"    return [{', '.join(f'f{j}' for j in range(len(rules)))}]", "",
    ]
    return cast(_Loop, gen.function(lines, "_rules_loop"))


class _Source:
    """Python source for one expression tree: statements that leave each node's value in a local.

    ``value(node, indent, cur, ev)`` emits the statements at ``indent`` and returns a name (or a
    literal) holding the value; ``cur`` and ``ev`` name the current element and its evaluator
    (inside a per-element expression they are the loop's)."""

    def __init__(self, hoist: bool = False) -> None:
        self.hoist = hoist  # the current element's names are looked up at the loop's top
        self.hoisted: dict[str, str] = {}  # name -> local
        self.cached: dict[str, str] = {}  # hoisted local -> local of its number (MISS until converted)
        self.tol = ("rel", "abs_")  # the locals of the tolerance in force
        self.lines: list[str] = []
        self.consts: dict[str, Any] = {}
        self.uses: set[str] = set()
        self.count = 0
        self.decimals: set[str] = set()  # locals that certainly hold a Decimal (arithmetic results)
        self.optional: dict[str, str] = {}  # local of opt(name) -> that element's name (converted once)
        self.converted: set[str] = set()  # element's names that code above may have converted

    def prologue(self, uses: set[str], loop: bool = False) -> list[str]:
        """The first lines: the evaluator's parts the body reads (``cur`` is the loop's own, and
        the loop takes each rule's tolerance itself)."""
        uses = uses | self.uses
        if loop:
            uses -= {"cur", "tol"}
        if uses & {"cur", "root", "memo"}:
            uses.add("scope")
        return [f"    {_PROLOGUE[name]}" for name in _PROLOGUE if name in uses]

    def function(self, lines: list[str], name: str) -> Callable[..., Any]:
        text = "\n".join(lines)
        namespace = dict(_GLOBALS, **self.consts)
        exec(compile(text, "<cedx rule expression>", "exec"), namespace)  # noqa: S102 — our own generated text
        fn = namespace[name]
        fn.source = text  # for reading when debugging
        return cast(Callable[..., Any], fn)

    def const(self, obj: Any) -> str:
        name = f"k{len(self.consts)}"
        self.consts[name] = obj
        return name

    def tmp(self) -> str:
        self.count += 1
        return f"t{self.count}"

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def use(self, *names: str) -> None:
        self.uses.update(names)

    # -- nodes ---------------------------------------------------------------------------
    def value(self, node: ast.AST, ind: int, cur: str, ev: str) -> str:
        method = getattr(self, f"v_{type(node).__name__}", None)
        out = method(node, ind, cur, ev) if method is not None else None
        return self.closure(node, ind, ev) if out is None else cast(str, out)

    def closure(self, node: ast.AST, ind: int, ev: str) -> str:
        """The node's closure, for what is not generated here."""
        t = self.tmp()
        self.emit(ind, f"{t} = {self.const(_fn(node))}({ev})")
        return t

    def is_decimal(self, x: str) -> bool:
        """Operand ``x`` certainly holds a Decimal."""
        return isinstance(self.consts.get(x), Decimal) or x in self.decimals

    def number(self, x: str, ind: int) -> str:
        """``ev.number(x)``, with its common case (a quantity already in the SI memo) inline."""
        if self.is_decimal(x):
            return x  # number() of a Decimal is the Decimal
        source = self.optional.get(x)
        if source is not None:  # opt(name): 0, else the name's number, converted once per element
            t = self.tmp()
            self.emit(ind, f"if {_absent(source)}:")
            self.emit(ind + 1, f"{t} = DEC0")
            self.emit(ind, "else:")
            self.emit(ind + 1, f"{t} = {self.number(source, ind + 1)}")
            self.decimals.add(t)
            return t
        if x in self.consts or _literal(x):
            self.use("num")
            t = self.tmp()
            self.emit(ind, f"{t} = num({x})")
            return t
        if x in self.cached:  # converted once per element, on first use
            t = self.cached[x]
            if x not in self.converted:  # no code above converts it: certainly not yet
                self.converted.add(x)
                self.convert(x, ind, t)
                return t
            self.emit(ind, f"if {t} is MISS:")
            self.convert(x, ind + 1, t)
            return t
        t = self.tmp()
        self.convert(x, ind, t)
        self.decimals.add(t)
        return t

    def convert(self, x: str, ind: int, t: str) -> None:
        self.emit(ind, f"if type({x}) is dict:")
        self.memo_or_convert(x, ind + 1, t, f"{t} = num({x})")  # no such pair: num() says what is wrong
        self.emit(ind, f"elif type({x}) is Decimal:")
        self.emit(ind + 1, f"{t} = {x}")
        self.emit(ind, "else:")
        self.emit(ind + 1, f"{t} = num({x})")

    def memo_or_convert(self, x: str, ind: int, t: str, otherwise: str) -> None:
        """``t`` = the number of quantity ``x`` (a dict): from the SI memo, else converted here
        as ``RuleEngine._convert`` does (what it raises, raised) and memoised; when ``x`` has no
        hashable (value, unit) pair, the statement ``otherwise``. Inline, not a call: converting
        is most of a report of distinct values (issue 14)."""
        self.use("num", "SI", "convert")
        key, factor = self.tmp(), self.tmp()
        self.emit(ind, "try:")
        self.emit(ind + 1, f"{key} = ({x}['value'], {x}['unit'])")
        self.emit(ind + 1, f"{t} = SI.get({key})")
        self.emit(ind, "except (KeyError, TypeError):")
        self.emit(ind + 1, otherwise)
        self.emit(ind, "else:")
        self.emit(ind + 1, f"if {t} is None:")  # the memo's hit: one test
        self.emit(ind + 2, f"{factor} = CONV.get({key}[1])")  # None: not a unit of the table, _convert says so
        self.emit(ind + 2, f"{t} = SI[{key}] = (Decimal({key}[0]) * {factor}[0] + {factor}[1] if {factor} is not None "
                           f"else convert({key}[0], {key}[1]))")

    def comparable(self, x: str, ind: int) -> str:
        """``ev.comparable(x)``: a quantity's number (comparable() gives it when number() does
        not fail) from the element's converted names, the SI memo or converted here; a Decimal
        as it is."""
        if isinstance(self.consts.get(x), Decimal) or x in self.decimals:
            return x
        self.use("cmp")
        if x in self.consts or _literal(x):
            t = self.tmp()
            self.emit(ind, f"{t} = cmp({x})")
            return t
        t, n = self.tmp(), self.tmp()
        q = self.cached.get(x)
        if q is not None and x in self.converted:  # a name of the element: its number once converted
            self.emit(ind, f"if {q} is not MISS and type({x}) is dict:")
            self.emit(ind + 1, f"{t} = {q}")
            self.emit(ind, f"elif type({x}) is dict:")
        else:
            self.emit(ind, f"if type({x}) is dict:")
        if q is not None:
            self.converted.add(x)
        inner = ind + 1
        self.emit(inner, "try:")
        self.memo_or_convert(x, inner + 1, n, f"{n} = num({x})")
        self.emit(inner, "except (TypeError, InvalidOperation):")  # as comparable(): not a number
        self.emit(inner + 1, f"{t} = {x}")
        self.emit(inner, "else:")
        self.emit(inner + 1, f"{t} = {n}" if q is None else f"{t} = {q} = {n}")
        self.emit(ind, f"elif type({x}) is Decimal:")
        self.emit(ind + 1, f"{t} = {x}")
        self.emit(ind, "else:")
        self.emit(ind + 1, f"{t} = cmp({x})")
        return t

    def lookup(self, obj: str, name: str, ind: int, t: str) -> None:
        self.use("engine")
        self.emit(ind, f"{t} = {obj}.get({name!r}, ABSENT) if type({obj}) is dict else "
                       f"(ABSENT if {_absent(obj)} else _lookup({obj}, {name!r}, engine))")

    def v_Constant(self, node: ast.Constant, ind: int, cur: str, ev: str) -> str:
        decimal = getattr(node, "decimal", None)
        value = node.value if decimal is None else decimal
        if value is None or value is True or value is False or type(value) is str:
            return repr(value)
        return self.const(value)

    def v_Name(self, node: ast.Name, ind: int, cur: str, ev: str) -> str:
        if node.id == "root":
            self.use("root")
            return "root"
        if node.id in ("True", "False"):
            return node.id
        if self.hoist and cur == "cur":
            local = self.hoisted.get(node.id)
            if local is None:
                local = self.hoisted[node.id] = f"n{len(self.hoisted)}"
                self.cached[local] = f"q{len(self.cached)}"
            return local
        if cur == "cur":
            self.use("cur")
        t = self.tmp()
        self.lookup(cur, node.id, ind, t)
        return t

    def v_Attribute(self, node: ast.Attribute, ind: int, cur: str, ev: str) -> str:
        t = self.tmp()
        if not _root_only(node):
            obj = self.value(node.value, ind, cur, ev)
            self.lookup(obj, node.attr, ind, t)
            return t
        self.use("memo")
        key = self.const(node)
        self.emit(ind, f"{t} = memo.get({key}, MISS)")
        self.emit(ind, f"if {t} is MISS:")
        obj = self.value(node.value, ind + 1, cur, ev)
        self.lookup(obj, node.attr, ind + 1, t)
        self.emit(ind + 1, f"memo[{key}] = {t}")
        return t

    def v_List(self, node: ast.List, ind: int, cur: str, ev: str) -> str:
        items = [self.value(e, ind, cur, ev) for e in node.elts]
        t = self.tmp()
        self.emit(ind, f"{t} = [{', '.join(items)}]")
        return t

    def v_UnaryOp(self, node: ast.UnaryOp, ind: int, cur: str, ev: str) -> str | None:
        if not isinstance(node.op, (ast.Not, ast.USub)):
            return None
        operand = self.value(node.operand, ind, cur, ev)
        t = self.tmp()
        if isinstance(node.op, ast.Not):
            self.emit(ind, f"{t} = not {operand}")
        else:
            self.emit(ind, f"{t} = -{self.number(operand, ind)}")
            self.decimals.add(t)
        return t

    def v_BinOp(self, node: ast.BinOp, ind: int, cur: str, ev: str) -> str | None:
        op = type(node.op)
        if op not in (ast.Add, ast.Sub, ast.Mult, ast.Div):
            return None
        left = self.value(node.left, ind, cur, ev)
        right = self.value(node.right, ind, cur, ev)
        t = self.tmp()
        if op is ast.Add and not (self.is_decimal(left) or self.is_decimal(right)):  # else never two strings
            self.emit(ind, f"if isinstance({left}, str) and isinstance({right}, str):")
            self.emit(ind + 1, f"{t} = {left} + {right}")
            self.emit(ind, "else:")
            a, b = self.number(left, ind + 1), self.number(right, ind + 1)
            self.emit(ind + 1, f"{t} = ADD({a}, {b})")
            return t  # a string or a Decimal
        a, b = self.number(left, ind), self.number(right, ind)
        if op is ast.Div:
            divisor = self.consts.get(b)
            if not (isinstance(divisor, Decimal) and divisor != 0):  # a literal is checked here, once
                self.emit(ind, f"if {b} == 0:")
                self.emit(ind + 1, "raise _Missing()")  # a zero divisor makes the rule inapplicable
            self.emit(ind, f"{t} = DIV({a}, {b})")
        else:
            self.emit(ind, f"{t} = {'ADD' if op is ast.Add else 'SUB' if op is ast.Sub else 'MUL'}({a}, {b})")
        self.decimals.add(t)
        return t

    def v_BoolOp(self, node: ast.BoolOp, ind: int, cur: str, ev: str) -> str:
        # A bool, stopping at the first deciding operand: each operand nested in the test of the
        # one before (the deciding one leaves at once); flat when that would nest deep.
        conjunction = isinstance(node.op, ast.And)
        t = self.tmp()
        if len(node.values) <= 8 and ind <= 40:
            self.emit(ind, f"{t} = {not conjunction}")
            inner = ind
            for operand in node.values:
                v = self.test(operand, inner, cur, ev)
                self.emit(inner, f"if {v}:" if conjunction else f"if not {v}:")
                inner += 1
            self.emit(inner, f"{t} = {conjunction}")
            return t
        self.emit(ind, f"{t} = {conjunction}")
        for i, operand in enumerate(node.values):
            inner = ind
            if i:
                self.emit(ind, f"if {t}:" if conjunction else f"if not {t}:")
                inner = ind + 1
            v = self.test(operand, inner, cur, ev)
            self.emit(inner, f"if not {v}:" if conjunction else f"if {v}:")
            self.emit(inner + 1, f"{t} = {not conjunction}")
        return t

    def unless(self, node: ast.AST, ind: int, cur: str, ev: str, action: str) -> None:
        """Statements running ``action`` where ``node`` is false: a conjunction or disjunction
        operand by operand, as it decides (no bool stored first); else ``if not`` its test."""
        if isinstance(node, ast.BoolOp) and len(node.values) <= 8 and ind <= 40:
            if isinstance(node.op, ast.Or):  # false when every operand is
                for operand in node.values:
                    self.emit(ind, f"if not {self.test(operand, ind, cur, ev)}:")
                    ind += 1
                self.emit(ind, action)
                return
            for i, operand in enumerate(node.values):  # false at the first false operand
                if i:
                    self.emit(ind, "else:")
                    ind += 1
                self.emit(ind, f"if not {self.test(operand, ind, cur, ev)}:")
                self.emit(ind + 1, action)
            return
        self.emit(ind, f"if not {self.test(node, ind, cur, ev)}:")
        self.emit(ind + 1, action)

    def test(self, node: ast.AST, ind: int, cur: str, ev: str) -> str:
        """A Python condition with ``node``'s truth, for the one ``if`` emitted next: a single
        comparison (or its negation) as an expression there rather than a bool in a local (the
        same test, evaluated once, at the same point); else ``value``'s name."""
        if isinstance(node, ast.Compare):
            out = self.v_Compare(node, ind, cur, ev, inline=True)
            if out is not None:
                return out
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return f"(not {self.test(node.operand, ind, cur, ev)})"
        elif isinstance(node, ast.Call) and not node.keywords and len(node.args) in (1, 2):
            name = getattr(node.func, "id", None)
            if name == "present" and len(node.args) == 1:
                return f"(not {_absent(self.value(node.args[0], ind, cur, ev))})"  # as call_present
            if name == "approx" and len(node.args) == 2:
                return cast(str, self.call_approx(node.args, 2, ind, cur, ev, inline=True))
        return self.value(node, ind, cur, ev)

    def v_Compare(self, node: ast.Compare, ind: int, cur: str, ev: str, inline: bool = False) -> str | None:
        if len(node.ops) != 1:
            return None  # chained: the closure
        op, comp = type(node.ops[0]), node.comparators[0]
        if op not in (ast.Eq, ast.NotEq, ast.In) and op not in _ORDERING:
            return None
        left = self.value(node.left, ind, cur, ev)
        t = self.tmp()
        if op is ast.In and isinstance(comp, ast.List) and all(
                isinstance(e, ast.Constant) and type(e.value) is str for e in comp.elts):
            # a list of string literals: the same membership test over a tuple built once
            members = self.const(tuple(cast(ast.Constant, e).value for e in comp.elts))
            if inline:
                return f"({left} in {members})"
            self.emit(ind, f"{t} = {left} in {members}")
            return t
        right = self.value(comp, ind, cur, ev)
        if op is ast.Eq or op is ast.NotEq:
            absent = [f"{_absent(v)}" for v in (left, right) if not _literal(v)]
            if absent:
                self.emit(ind, f"if {' or '.join(absent)}:")
                self.emit(ind + 1, "raise _Missing()")
            if inline:
                return f"({left} == {right})" if op is ast.Eq else f"(not {left} == {right})"
            yes, no = ("True", "False") if op is ast.Eq else ("False", "True")
            self.emit(ind, f"{t} = {yes} if {left} == {right} else {no}")
        elif op is ast.In:
            self.use("memo")
            if not _root_only(comp):
                self.emit(ind, f"{t} = False if {_absent(right)} else "
                               f"(True if _member_memo(memo, {left}, {right}, None) else False)")
                return t
            # a root-only list: its set, once made in this check, tested inline (_member_memo)
            key, members = self.const((comp, "set")), self.tmp()
            self.emit(ind, f"{members} = memo.get({key}) if type({right}) is list else None")
            self.emit(ind, f"if {members}:")
            self.emit(ind + 1, "try:")
            self.emit(ind + 2, f"{t} = {left} in {members}")
            self.emit(ind + 1, "except TypeError:")
            self.emit(ind + 2, f"{t} = {left} in {right}")
            self.emit(ind, "else:")
            self.emit(ind + 1, f"{t} = False if {_absent(right)} else "
                               f"(True if _member_memo(memo, {left}, {right}, {self.const(comp)}) else False)")
        else:
            symbol = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}[op]
            a, b = self.comparable(left, ind), self.comparable(right, ind)
            if inline:
                return f"({a} {symbol} {b})"
            self.emit(ind, f"{t} = True if {a} {symbol} {b} else False")
        return t

    def v_Call(self, node: ast.Call, ind: int, cur: str, ev: str) -> str | None:
        name = getattr(node.func, "id", None)
        if name not in _Evaluator.FUNCTIONS or node.keywords:
            return None
        args, n = node.args, len(node.args)
        special = getattr(self, f"call_{name}", None)
        if special is not None:
            out = special(args, n, ind, cur, ev)
            if out is not None:
                return cast(str, out)
        if name in _PURE and all(isinstance(a, ast.Constant) or _root_only(a) for a in args):
            self.use("memo")
            key, t = self.const(node), self.tmp()
            self.emit(ind, f"{t} = memo.get({key}, MISS)")
            self.emit(ind, f"if {t} is MISS:")
            self.emit(ind + 1, f"{t} = memo[{key}] = {self.const(getattr(_Evaluator, f'f_{name}'))}"
                               f"({ev}, {self.const(args)})")
            return t
        t = self.tmp()
        self.emit(ind, f"{t} = {self.const(getattr(_Evaluator, f'f_{name}'))}({ev}, {self.const(args)})")
        return t

    # -- functions (None: the general call) ------------------------------------------------
    def call_approx(self, args: list[ast.expr], n: int, ind: int, cur: str, ev: str,
                    inline: bool = False) -> str | None:
        if n != 2:
            return None
        a = self.number(self.value(args[0], ind, cur, ev), ind)  # a's number before b is evaluated, as
        b = self.number(self.value(args[1], ind, cur, ev), ind)  # f_approx: the same error first
        self.use("tol")
        rel, abs_ = self.tol
        t, x, y, bound = self.tmp(), self.tmp(), self.tmp(), self.tmp()
        self.emit(ind, f"{x} = abs({a}); {y} = abs({b})")
        self.emit(ind, f"{bound} = {rel} * ({y} if {y} > {x} else {x})")
        holds = f"abs({a} - {b}) <= ({bound} if {bound} > {abs_} else {abs_})"
        if inline:
            return f"({holds})"
        self.emit(ind, f"{t} = {holds}")
        return t

    def call_present(self, args: list[ast.expr], n: int, ind: int, cur: str, ev: str) -> str | None:
        if n != 1:
            return None
        v, t = self.value(args[0], ind, cur, ev), self.tmp()
        self.emit(ind, f"{t} = not {_absent(v)}")
        return t

    def call_opt(self, args: list[ast.expr], n: int, ind: int, cur: str, ev: str) -> str | None:
        if n != 1:
            return None
        v, t = self.value(args[0], ind, cur, ev), self.tmp()
        self.emit(ind, f"{t} = DEC0 if {_absent(v)} else {v}")
        if v in self.cached:
            self.optional[t] = v
        return t

    def call_unitOf(self, args: list[ast.expr], n: int, ind: int, cur: str, ev: str) -> str | None:  # noqa: N802
        if n != 1:
            return None
        v, t = self.value(args[0], ind, cur, ev), self.tmp()
        if _literal(v) or v in self.consts:
            return None  # nothing emitted yet: the general call
        self.emit(ind, f"if {_absent(v)}:")
        self.emit(ind + 1, "raise _Missing()")
        self.emit(ind, f"{t} = {v}['unit']")
        return t

    def call_parameters(self, args: list[ast.expr], n: int, ind: int, cur: str, ev: str) -> str | None:
        if n < 1:
            return None
        v, t = self.value(args[0], ind, cur, ev), self.tmp()
        self.emit(ind, f"{t} = []")
        if v == "root":  # along the plan the check may have been given
            self.use("memo")
            self.emit(ind, f"_parameters_of_root(root, memo, {t})")
            return t
        self.emit(ind, f"if isinstance({v}, (dict, list)):")
        self.emit(ind + 1, f"_parameters({v}, {t})")
        return t

    def call_sum(self, args: list[ast.expr], n: int, ind: int, cur: str, ev: str) -> str | None:
        sub = _sub_tree(args[1]) if n == 2 else None
        if n != 1 and sub is None:
            return None
        items, t = self.value(args[0], ind, cur, ev), self.tmp()
        self.decimals.add(t)  # 0 or what _sum_of adds up: a Decimal
        self.use("num", "SI")
        self.emit(ind, f"if {_absent(items)}:")
        self.emit(ind + 1, f"{t} = DEC0")
        self.emit(ind, "else:")
        if sub is None:
            self.use("convert")
            self.emit(ind + 1, f"{t} = _sum_of(num, SI, {items}, convert)")
            return t
        values = self.tmp()
        self.emit(ind + 1, f"{values} = []")
        v = self.per_element(sub, items, ind + 1, ev)
        self.emit(ind + 2, f"{values}.append({v})")
        self.use("convert")
        self.emit(ind + 1, f"{t} = _sum_of(num, SI, {values}, convert)")
        return t

    def call_all(self, args: list[ast.expr], n: int, ind: int, cur: str, ev: str) -> str | None:
        sub = _sub_tree(args[1]) if n == 2 else None
        if sub is None:
            return None
        items, t = self.value(args[0], ind, cur, ev), self.tmp()
        # every element is evaluated before all() decides (an absent name anywhere: inapplicable)
        self.emit(ind, f"{t} = True")
        self.emit(ind, f"if not {_absent(items)}:")
        self.per_element(sub, items, ind + 1, ev, unless=f"{t} = False")
        return t

    def per_element(self, sub: ast.AST, items: str, ind: int, ev: str, unless: str | None = None) -> str:
        """A loop over ``items`` (a list, else nothing) evaluating ``sub`` on each element, as
        ``_Evaluator._sub_expr``; returns the value's name inside the loop body (at ind + 1), or
        with ``unless`` runs that statement where the value is false (``unless``).
        The element's evaluator (for handed-over nodes) is made only when the body uses it."""
        item, sub_scope, sub_ev = self.tmp(), self.tmp(), self.tmp()
        start = len(self.lines)
        self.emit(ind, f"for {item} in ({items} if isinstance({items}, list) else ()):")
        self.emit(ind + 1, f"{sub_scope}.current = {item}")
        if unless is None:
            v = self.value(sub, ind + 1, item, sub_ev)
        else:
            v = ""
            self.unless(sub, ind + 1, item, sub_ev, unless)
        if any(sub_ev in line for line in self.lines[start + 2:]):
            self.use("scope", "root", "memo", "engine")
            self.lines[start:start] = [
                "    " * ind + f"{sub_scope} = _Scope(None, root, scope.path, memo)",
                "    " * ind + f"{sub_ev} = _Evaluator(engine, {sub_scope}, {ev}.tolerance)",
            ]
        else:
            del self.lines[start + 1]
        return v


def _absent(x: str) -> str:
    """Python text testing whether generated operand ``x`` is absent (a literal never is)."""
    return "False" if _literal(x) else f"({x} is ABSENT)"


def _literal(text: str) -> bool:
    """A generated operand that is a Python literal (never absent)."""
    return text in ("None", "True", "False") or text[:1] in ("'", '"')


_GLOBALS.update({"_Scope": _Scope, "_Evaluator": _Evaluator})
