"""Validate a logical document against the spec: JSON Schema, allowed units, quality rules.

Every finding is an ``Issue`` with the field path (``$.payload.combustion[0].emission``), a
code (a rule ID such as ``R-FUEL-001``, or ``SCHEMA-<KEYWORD>`` for a plain schema failure)
and a message: exactly what a problem+json ``errors[]`` item carries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from .rules import RuleEngine
from .schema import REF_PREFIX, SchemaIndex

_DECIMAL = re.compile(r"^-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,12})?$")

SPEC_URI = "urn:cedx:openapi"


@dataclass(frozen=True)
class Issue:
    path: str
    code: str
    message: str
    rule: str | None = None

    def as_problem_item(self) -> dict:
        item = {"path": self.path, "code": self.code, "message": self.message}
        if self.rule:
            item["rule"] = self.rule
        return item


def json_path(parts) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


class Validator:
    def __init__(self, index: SchemaIndex):
        self.index = index
        self.rules = RuleEngine(index)
        self._validators: dict[str, Draft202012Validator] = {}

    @cached_property
    def _registry(self) -> Registry:
        resource = Resource.from_contents(self.index.spec, default_specification=DRAFT202012)
        return Registry().with_resource(SPEC_URI, resource)

    def _validator(self, schema_name: str) -> Draft202012Validator:
        cached = self._validators.get(schema_name)
        if cached is None:
            if schema_name not in self.index.schemas:
                raise KeyError(f"unknown schema {schema_name}")
            cached = Draft202012Validator({"$ref": f"{SPEC_URI}{REF_PREFIX}{schema_name}"}, registry=self._registry)
            self._validators[schema_name] = cached
        return cached

    # --- stages ---------------------------------------------------------------------------
    def schema_issues(self, schema_name: str, document: Any) -> list[Issue]:
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
        self._walk_units(self.index.schemas[schema_name], document, "$", issues)
        return issues

    def _walk_units(self, schema: dict, value: Any, path: str, issues: list[Issue]) -> None:
        kind = self.index.kind(schema)
        if kind == "union" and isinstance(value, dict):
            prop, mapping = self.index.variants(schema)
            variant = mapping.get(value.get(prop))
            if variant:
                self._walk_units(self.index.schemas[variant], value, path, issues)
            return
        if kind == "object" and isinstance(value, dict):
            for prop in self.index.properties(schema):
                if prop.name not in value:
                    continue
                child, child_path = value[prop.name], f"{path}.{prop.name}"
                allowed = prop.schema.get("x-cedx-units")
                if allowed and isinstance(child, dict) and child.get("unit") not in allowed:
                    issues.append(Issue(
                        f"{child_path}.unit", "R-UNIT-002",
                        f"unit {child.get('unit')!r} not allowed here; use one of {', '.join(allowed)}",
                        "R-UNIT-002",
                    ))
                self._walk_units(prop.schema, child, child_path, issues)
        elif kind == "array" and isinstance(value, list):
            items = self.index.item_schema(schema)
            for i, item in enumerate(value):
                self._walk_units(items, item, f"{path}[{i}]", issues)

    def rule_issues(self, schema_name: str, document: Any) -> list[Issue]:
        issues = []
        targets = [(schema_name, document, "$")]
        signed = self.index.schemas[schema_name].get("x-cedx-signed")
        if signed and isinstance(document, dict) and "payload" in document:
            targets.append((signed["payload"], document["payload"], "$.payload"))
        for name, doc, base in targets:
            for rule in self.index.rules_for(name):
                for v in self.rules.check_rule(rule, doc, base):
                    issues.append(Issue(v.path, v.rule, v.message, v.rule))
        return issues

    def validate(self, schema_name: str, document: Any) -> list[Issue]:
        """All issues; quality rules run only on documents that pass the schema."""
        issues = self.schema_issues(schema_name, document)
        issues += self.unit_issues(schema_name, document)
        if issues:
            return issues
        return self.rule_issues(schema_name, document)
