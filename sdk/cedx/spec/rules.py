"""The quality-rule engine: evaluates the spec's document rules (x-cedx-rules).

Expressions are parsed with ``ast`` and evaluated by walking a whitelist of node types, never
by ``eval``. Numbers are exact Decimals (literals are read from the source text, not as
floats), and Quantity/Parameter objects become SI values through the unit table, so a formula
holds whatever units a document chose among those its fields allow.
"""

from __future__ import annotations

import ast
import calendar
import datetime as _dt
import operator
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext
from functools import lru_cache
from typing import Any

from . import uscc
from .schema import SchemaIndex

_INDUSTRY_SECTIONS = {
    "power": "power", "cement": "cement", "steel": "steel",
    "coalMining": "coal_mining", "chemical": "chemical",
}
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True)
class Violation:
    rule: str
    path: str
    message: str


class _Missing(Exception):
    """A name in the expression is absent from the document: the rule does not apply."""


class _Scope:
    def __init__(self, current: Any, root: Any, path: str):
        self.current, self.root, self.path = current, root, path


@lru_cache(maxsize=512)
def _parse(expr: str) -> tuple[ast.Expression, str]:
    text = " ".join(expr.split())
    return ast.parse(text, mode="eval"), text


class RuleEngine:
    def __init__(self, index: SchemaIndex):
        self.index = index
        defaults = index.spec.get("x-cedx-rules", {}).get("defaultTolerance", {})
        self.default_tolerance = (
            Decimal(defaults.get("relative", "0.001")),
            Decimal(defaults.get("absolute", "0")),
        )

    # --- public ---------------------------------------------------------------------------
    def check(self, schema_name: str, document: Any) -> list[Violation]:
        """All violations of the document rules that apply to ``schema_name``."""
        out: list[Violation] = []
        for rule in self.index.rules_for(schema_name):
            out.extend(self.check_rule(rule, document))
        return out

    def check_rule(self, rule: dict, document: Any, base_path: str = "$") -> list[Violation]:
        scopes = [_Scope(document, document, base_path)]
        if rule.get("forEach"):
            items = self._lookup_path(document, rule["forEach"].split("."))
            if not isinstance(items, list):
                return []
            field_path = f"{base_path}.{rule['forEach']}"
            scopes = [_Scope(item, document, f"{field_path}[{i}]") for i, item in enumerate(items)]
        out = []
        for scope in scopes:
            tol = rule.get("tolerance")
            tolerance = (
                (Decimal(tol.get("relative", "0")), Decimal(tol.get("absolute", "0")))
                if tol else self.default_tolerance
            )
            try:
                if rule.get("when") and not self._truth(self.evaluate(rule["when"], scope, tolerance)):
                    continue
                if self._truth(self.evaluate(rule["check"], scope, tolerance)):
                    continue
            except _Missing:
                continue
            detail = self._explain(rule, scope, tolerance)
            out.append(Violation(rule["id"], scope.path, f"{rule['en']}{detail}"))
        return out

    # --- evaluation -----------------------------------------------------------------------
    def evaluate(self, expr: str, scope: _Scope, tolerance=None) -> Any:
        tree, text = _parse(expr)
        ev = _Evaluator(self, scope, text, tolerance or self.default_tolerance)
        return ev.visit(tree.body)

    def _explain(self, rule: dict, scope: _Scope, tolerance) -> str:
        # For approx(a, b) checks, say what was reported and what the formula gives.
        tree, text = _parse(rule["check"])
        call = tree.body
        if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "approx" and len(call.args) == 2:
            ev = _Evaluator(self, scope, text, tolerance)
            try:
                a, b = ev.number(ev.visit(call.args[0])), ev.number(ev.visit(call.args[1]))
                return f" (reported {_fmt(a)}, computed {_fmt(b)}, SI units)"
            except (_Missing, TypeError, ValueError, InvalidOperation):
                return ""
        return ""

    @staticmethod
    def _truth(value: Any) -> bool:
        return bool(value)

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


_ABSENT = _Absent()


def _fmt(d: Decimal) -> str:
    return format(d.normalize(), "f") if d == d.to_integral_value() else f"{d:.6g}"


class _Evaluator:
    FUNCTIONS = {
        "approx", "sum", "all", "count", "present", "opt", "unique", "increasing", "q",
        "unitOf", "hoursInPeriod", "usccValid", "industrySections", "startsWith", "length", "flagged",
    }

    def __init__(self, engine: RuleEngine, scope: _Scope, text: str, tolerance):
        self.engine, self.scope, self.text, self.tolerance = engine, scope, text, tolerance

    # values --------------------------------------------------------------------------------
    def number(self, value: Any) -> Decimal:
        if isinstance(value, _Absent):
            raise _Missing()
        if isinstance(value, bool):
            raise TypeError("boolean used as a number")
        if isinstance(value, Decimal):
            return value
        if isinstance(value, int):
            return Decimal(value)
        if isinstance(value, dict) and "value" in value and "unit" in value:
            unit = value["unit"]
            if unit not in self.engine.index.units:
                raise TypeError(f"unknown unit {unit}")
            return self.engine.index.units[unit].to_si(Decimal(value["value"]))
        if isinstance(value, str):
            return Decimal(value)
        raise TypeError(f"not a number: {value!r}")

    def comparable(self, value: Any) -> Any:
        if isinstance(value, _Absent):
            raise _Missing()
        if isinstance(value, str):
            if _INSTANT.match(value):
                return _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            return value
        if isinstance(value, (dict, int, Decimal)) and not isinstance(value, bool):
            try:
                return self.number(value)
            except (TypeError, InvalidOperation):
                return value
        return value

    # nodes ---------------------------------------------------------------------------------
    def visit(self, node: ast.AST) -> Any:
        method = getattr(self, f"v_{type(node).__name__}", None)
        if method is None:
            raise ValueError(f"expression construct not allowed: {type(node).__name__}")
        return method(node)

    def v_Constant(self, node: ast.Constant) -> Any:
        if isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return Decimal(ast.get_source_segment(self.text, node))  # exact, never via float
        return node.value

    def v_Name(self, node: ast.Name) -> Any:
        if node.id == "root":
            return self.scope.root
        if node.id in ("True", "False"):
            return node.id == "True"
        return self.engine._lookup_path(self.scope.current, [node.id])

    def v_Attribute(self, node: ast.Attribute) -> Any:
        return self.engine._lookup_path(self.visit(node.value), [node.attr])

    def v_List(self, node: ast.List) -> list:
        return [self.visit(e) for e in node.elts]

    def v_UnaryOp(self, node: ast.UnaryOp) -> Any:
        if isinstance(node.op, ast.Not):
            return not self.visit(node.operand)
        if isinstance(node.op, ast.USub):
            return -self.number(self.visit(node.operand))
        raise ValueError("unary operator not allowed")

    def v_BinOp(self, node: ast.BinOp) -> Any:
        left, right = self.visit(node.left), self.visit(node.right)
        if isinstance(node.op, ast.Add) and isinstance(left, str) and isinstance(right, str):
            return left + right
        a, b = self.number(left), self.number(right)
        with localcontext() as ctx:
            ctx.prec = 34
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.Mult):
                return a * b
            if isinstance(node.op, ast.Div):
                if b == 0:
                    raise _Missing()  # a zero divisor makes the rule inapplicable
                return a / b
        raise ValueError("operator not allowed")

    def v_BoolOp(self, node: ast.BoolOp) -> bool:
        if isinstance(node.op, ast.And):
            return all(self.visit(v) for v in node.values)
        return any(self.visit(v) for v in node.values)

    def v_Compare(self, node: ast.Compare) -> bool:
        left = self.visit(node.left)
        for op, comp in zip(node.ops, node.comparators):
            right = self.visit(comp)
            if isinstance(op, (ast.Eq, ast.NotEq)):
                if isinstance(left, _Absent) or isinstance(right, _Absent):
                    raise _Missing()
                same = left == right
                ok = same if isinstance(op, ast.Eq) else not same
            elif isinstance(op, ast.In):
                ok = left in right
            else:
                ok = _ORDERING[type(op)](self.comparable(left), self.comparable(right))
            if not ok:
                return False
            left = right
        return True

    def v_Call(self, node: ast.Call) -> Any:
        name = getattr(node.func, "id", None)
        if name not in self.FUNCTIONS or node.keywords:
            raise ValueError(f"function not allowed: {name}")
        return getattr(self, f"f_{name}")(node.args)

    # functions -----------------------------------------------------------------------------
    def _sub_expr(self, items: Any, expr_node: ast.AST) -> list:
        if not isinstance(expr_node, ast.Constant) or not isinstance(expr_node.value, str):
            raise ValueError("the per-element expression must be a string literal")
        tree, text = _parse(expr_node.value)
        return [
            _Evaluator(self.engine, _Scope(item, self.scope.root, self.scope.path), text, self.tolerance).visit(tree.body)
            for item in (items if isinstance(items, list) else [])
        ]

    def f_approx(self, args) -> bool:
        a, b = self.number(self.visit(args[0])), self.number(self.visit(args[1]))
        rel, abs_ = self.tolerance
        return abs(a - b) <= max(abs_, rel * max(abs(a), abs(b)))

    def f_sum(self, args) -> Decimal:
        items = self.visit(args[0])
        if isinstance(items, _Absent):
            return Decimal(0)
        values = self._sub_expr(items, args[1]) if len(args) > 1 else items
        if not isinstance(values, list):
            values = [values]
        return sum((self.number(v) for v in values), Decimal(0))

    def f_all(self, args) -> bool:
        items = self.visit(args[0])
        if isinstance(items, _Absent):
            return True
        return all(self._sub_expr(items, args[1]))

    def f_count(self, args) -> int:
        v = self.visit(args[0])
        return 0 if isinstance(v, _Absent) else (len(v) if isinstance(v, list) else 1)

    def f_present(self, args) -> bool:
        return not isinstance(self.visit(args[0]), _Absent)

    def f_opt(self, args) -> Any:
        v = self.visit(args[0])
        return Decimal(0) if isinstance(v, _Absent) else v

    def f_unique(self, args) -> bool:
        v = self.visit(args[0])
        items = [] if isinstance(v, _Absent) else v
        return len(items) == len({repr(x) for x in items})

    def f_increasing(self, args) -> bool:
        v = self.visit(args[0])
        items = [self.comparable(x) for x in ([] if isinstance(v, _Absent) else v)]
        return all(a < b for a, b in zip(items, items[1:]))

    def f_length(self, args) -> int:
        """Length of a string or list (count() treats a string as one item)."""
        v = self.visit(args[0])
        return 0 if isinstance(v, _Absent) else len(v) if isinstance(v, (str, list)) else 1

    def f_flagged(self, args) -> list:
        """Columnar batches: pair value i with flag character i as {value, flag}."""
        values, flags = self.visit(args[0]), self.visit(args[1])
        if not isinstance(values, list) or not isinstance(flags, str):
            return []
        return [{"value": v, "flag": f} for v, f in zip(values, flags)]

    def f_q(self, args) -> Decimal:
        value, unit = self.visit(args[0]), self.visit(args[1])
        return self.number({"value": value, "unit": unit})

    def f_unitOf(self, args) -> str:
        v = self.visit(args[0])
        if isinstance(v, _Absent):
            raise _Missing()
        return v["unit"]

    def f_hoursInPeriod(self, args) -> Decimal:
        period = self.visit(args[0])
        if isinstance(period, _Absent):
            raise _Missing()
        year, month = (int(x) for x in str(period).split("-"))
        return Decimal(calendar.monthrange(year, month)[1] * 24) * 3600  # SI: seconds

    def f_usccValid(self, args) -> bool:
        v = self.visit(args[0])
        if isinstance(v, _Absent):
            raise _Missing()
        return uscc.is_valid(v)

    def f_industrySections(self, args) -> list:
        doc = self.scope.current
        return [code for key, code in _INDUSTRY_SECTIONS.items() if isinstance(doc, dict) and key in doc]

    def f_startsWith(self, args) -> bool:
        s, prefix = self.visit(args[0]), self.visit(args[1])
        if isinstance(s, _Absent) or isinstance(prefix, _Absent):
            raise _Missing()
        prefix = format(prefix, "f") if isinstance(prefix, Decimal) else str(prefix)
        return str(s).startswith(prefix)
