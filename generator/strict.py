"""Refuse unexpected keys in the spec's tables and schema objects.

A flow-style YAML entry with an unquoted comma (``en: a, b``) silently becomes two keys; the
first half of the text is lost and a stray key appears. Every table entry and every schema
object is therefore checked against the keys it may have (vendor extensions ``x-`` aside).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

SCHEMA_KEYWORDS = frozenset("""
$ref $id $schema $anchor $defs $comment $dynamicRef $dynamicAnchor $vocabulary
type enum const multipleOf maximum exclusiveMaximum minimum exclusiveMinimum
maxLength minLength pattern maxItems minItems uniqueItems maxContains minContains
maxProperties minProperties required dependentRequired
allOf anyOf oneOf not if then else properties patternProperties additionalProperties
propertyNames dependentSchemas items prefixItems contains unevaluatedItems unevaluatedProperties
title description default deprecated readOnly writeOnly examples
format contentEncoding contentMediaType contentSchema
discriminator xml externalDocs example
""".split())
XML_KEYS = frozenset({"name", "namespace", "prefix", "attribute", "wrapped"})
DISCRIMINATOR_KEYS = frozenset({"propertyName", "mapping"})

_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains",
               "propertyNames", "unevaluatedItems", "unevaluatedProperties", "contentSchema")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")

# table name (x-cedx-tables) → (list member, required keys, allowed keys)
TABLE_ENTRY_KEYS = {
    "errorCodes": ("errors", {"code", "status", "zh", "en"}, {"code", "status", "zh", "en"}),
    "units": ("units", {"code", "zh", "en", "dimension", "si"},
              {"code", "zh", "en", "dimension", "si", "conditions", "note"}),
    "rules": ("rules", {"id", "kind", "zh", "en"},
              {"id", "kind", "zh", "en", "appliesTo", "forEach", "when", "check", "tolerance"}),
}
UNIT_SI_KEYS = {"unit", "factor", "offset"}


def _unexpected(obj: dict[Any, Any], allowed: frozenset[str] | set[str]) -> list[str]:
    return sorted(k for k in obj if not (isinstance(k, str) and (k in allowed or k.startswith("x-"))))


def schema_problems(schema: object, where: str) -> Iterator[str]:
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        yield f"{where}: a schema must be an object, not {type(schema).__name__}"
        return
    bad = _unexpected(schema, SCHEMA_KEYWORDS)
    if bad:
        yield f"{where}: unexpected key(s) {', '.join(map(repr, bad))} (an unquoted comma in flow YAML?)"
    for name in ("title", "description", "x-cedx-title-zh"):
        if name in schema and not isinstance(schema[name], str):
            yield f"{where}.{name}: must be a string"
    if " / " in str(schema.get("title", "")):
        yield (f"{where}.title: bilingual; write `title: English` and `x-cedx-title-zh: 中文` "
               "(tools name classes after titles; run tools/split_titles.py)")
    if isinstance(schema.get("xml"), dict):
        bad = _unexpected(schema["xml"], XML_KEYS)
        if bad:
            yield f"{where}.xml: unexpected key(s) {', '.join(map(repr, bad))}"
    if isinstance(schema.get("discriminator"), dict):
        bad = _unexpected(schema["discriminator"], DISCRIMINATOR_KEYS)
        if bad:
            yield f"{where}.discriminator: unexpected key(s) {', '.join(map(repr, bad))}"
    for key in _SCHEMA_MAPS:
        for name, sub in (schema.get(key) or {}).items():
            yield from schema_problems(sub, f"{where}.{key}.{name}")
    for key in _SCHEMA_ONE:
        if key in schema:
            yield from schema_problems(schema[key], f"{where}.{key}")
    for key in _SCHEMA_LISTS:
        for i, sub in enumerate(schema.get(key) or []):
            yield from schema_problems(sub, f"{where}.{key}[{i}]")


def _embedded_schemas(node: object, where: str) -> Iterator[tuple[str, object]]:
    """Schemas in parameters, headers and media types (``schema:`` members) outside components.schemas."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "schema" and isinstance(value, (dict, bool)):
                yield f"{where}.schema", value
            elif isinstance(value, (dict, list)) and not str(key).startswith("x-"):
                yield from _embedded_schemas(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _embedded_schemas(value, f"{where}[{i}]")


def document_problems(document: dict[str, Any]) -> list[str]:
    out: list[str] = []
    components = document.get("components", {})
    for name, schema in components.get("schemas", {}).items():
        out.extend(schema_problems(schema, f"components.schemas.{name}"))
    rest = {k: v for k, v in components.items() if k != "schemas"}
    for where, schema in _embedded_schemas({"paths": document.get("paths", {}), "components": rest}, "$"):
        out.extend(schema_problems(schema, where))
    return out


def table_problems(tables: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for table_name, (name, required, allowed) in TABLE_ENTRY_KEYS.items():
        table = tables.get(table_name)
        if table is None:
            continue
        entries = table.get(name) if isinstance(table, dict) else None
        if not isinstance(entries, list):
            out.append(f"tables/{table_name}: expected a top-level list {name!r}")
            continue
        for i, entry in enumerate(entries):
            label = f"tables/{name}[{i}] ({entry.get('code') or entry.get('id') if isinstance(entry, dict) else '?'})"
            if not isinstance(entry, dict):
                out.append(f"{label}: not a mapping")
                continue
            extra = sorted(set(entry) - allowed)
            missing = sorted(required - set(entry))
            if extra:
                out.append(f"{label}: unexpected key(s) {', '.join(map(repr, extra))} (an unquoted comma in flow YAML?)")
            if missing:
                out.append(f"{label}: missing key(s) {', '.join(missing)}")
            for text in ("zh", "en"):
                if text in entry and not isinstance(entry[text], str):
                    out.append(f"{label}.{text}: must be a string")
            if name == "units" and isinstance(entry.get("si"), dict):
                bad = sorted(set(entry["si"]) - UNIT_SI_KEYS)
                if bad:
                    out.append(f"{label}.si: unexpected key(s) {', '.join(map(repr, bad))}")
    return out


def enum_copy_problems(document: dict[str, Any], tables: dict[str, Any]) -> list[str]:
    """``x-cedx-enum-from: TABLE`` with a literal ``enum`` (for standard tools) must list exactly
    the table's codes, in table order."""
    lists = {"units": ("units", "units", "code"), "errorCodes": ("errorCodes", "errors", "code")}
    out = []
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        table = schema.get("x-cedx-enum-from")
        if table not in lists or "enum" not in schema:
            continue
        key, member, field = lists[table]
        codes = [e[field] for e in (tables.get(key) or {}).get(member, [])]
        if schema["enum"] != codes:
            import json

            out.append(f"components.schemas.{name}.enum differs from tables/{table}; it must be: "
                       f"enum: {json.dumps(codes, ensure_ascii=False)}")
    return out


def check_source(document: dict[str, Any], tables: dict[str, Any]) -> None:
    problems = table_problems(tables) + document_problems(document) + enum_copy_problems(document, tables)
    if problems:
        raise ValueError("spec has unexpected keys:\n  " + "\n  ".join(problems))
