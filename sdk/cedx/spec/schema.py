"""Read-only view of the bundled specification: component schemas, refs, XML names, tables.

Everything that walks documents by their schema (validation, rules, the XML codec, the XSD and
docs generators) goes through this one index, so the mapping rules live in one place.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from .units import UnitTable

if TYPE_CHECKING:
    from .facts import SpecFacts

REF_PREFIX = "#/components/schemas/"


class Property(NamedTuple):  # not a dataclass: the client's import stays clear of dataclasses, inspect
    name: str
    schema: dict[str, Any]          # the property schema as written (may hold $ref and annotations)
    required: bool
    attribute: bool       # carried as an XML attribute

    @property
    def ref(self) -> str | None:
        ref = self.schema.get("$ref")
        return ref[len(REF_PREFIX):] if ref else None


class SchemaIndex:
    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        self.schemas: dict[str, dict[str, Any]] = spec["components"]["schemas"]

    # --- tables ---------------------------------------------------------------------------
    @cached_property
    def units(self) -> UnitTable:
        return UnitTable(self.spec.get("x-cedx-units", []))

    @cached_property
    def error_codes(self) -> dict[str, dict[str, Any]]:
        return {e["code"]: e for e in self.spec.get("x-cedx-error-codes", [])}

    @cached_property
    def rules(self) -> list[dict[str, Any]]:
        return list(self.spec.get("x-cedx-rules", {}).get("rules", []))

    @cached_property
    def facts(self) -> SpecFacts:
        """Spec facts as plain values (version, industries, error statuses, operations)."""
        from .facts import spec_facts

        return spec_facts(self)

    @property
    def spec_version(self) -> str:
        return cast(str, self.spec["x-cedx-spec-version"])

    @property
    def namespace(self) -> str:
        return cast(str, self.spec["x-cedx-xml-namespace"])

    # --- schemas --------------------------------------------------------------------------
    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        """Follow $ref (and single-element allOf wrappers) to the target schema."""
        seen = 0
        while True:
            if "$ref" in schema:
                schema = self.schemas[schema["$ref"][len(REF_PREFIX):]]
            elif list(schema.get("allOf", [])) and len(schema["allOf"]) == 1 and "type" not in schema:
                schema = schema["allOf"][0]
            else:
                return schema
            seen += 1
            if seen > 32:
                raise ValueError("reference cycle")

    def ref_name(self, schema: dict[str, Any]) -> str | None:
        ref = schema.get("$ref")
        return ref[len(REF_PREFIX):] if ref else None

    def kind(self, schema: dict[str, Any]) -> str:
        """object | array | union | string | integer | boolean | number."""
        target = self.resolve(schema)
        if "oneOf" in target:
            return "union"
        t = target.get("type")
        if t is None and "properties" in target:
            return "object"
        if isinstance(t, list):
            t = next(x for x in t if x != "null")
        return t or "string"

    def properties(self, schema: dict[str, Any]) -> Iterator[Property]:
        target = self.resolve(schema)
        required = set(target.get("required", []))
        for name, prop in target.get("properties", {}).items():
            attribute = bool(prop.get("xml", {}).get("attribute"))
            yield Property(name, prop, name in required, attribute)

    def item_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return cast(dict[str, Any], self.resolve(schema)["items"])

    def item_name(self, schema: dict[str, Any]) -> str:
        items = self.item_schema(schema)
        return cast(str, items.get("xml", {}).get("name", "item"))

    def variants(self, schema: dict[str, Any]) -> tuple[str, dict[str, str]]:
        """For a oneOf with a discriminator: (property name, {value: variant schema name}).

        XML carries the chosen variant as the single child element, named after its schema.
        """
        target = self.resolve(schema)
        disc = target.get("discriminator")
        if not disc:
            raise ValueError("oneOf without a discriminator has no XML mapping")
        mapping = {k: v[len(REF_PREFIX):] for k, v in disc.get("mapping", {}).items()}
        if not mapping:
            for option in target["oneOf"]:
                name = self.ref_name(option)
                value = self.resolve(option)["properties"][disc["propertyName"]].get("enum", [name])[0]
                mapping[value] = name
        return disc["propertyName"], mapping

    def annotation(self, schema: dict[str, Any], key: str) -> Any:
        """An annotation on the schema as written, else on the schema it refers to."""
        if key in schema:
            return schema[key]
        if "$ref" in schema:
            return self.annotation(self.schemas[cast(str, self.ref_name(schema))], key)
        return None

    def document_schemas(self) -> list[str]:
        """Component schemas that are request or response bodies (XML root elements)."""
        names: set[str] = set()
        for item in self.spec.get("paths", {}).values():
            for op in item.values():
                if not isinstance(op, dict):
                    continue
                bodies = [op.get("requestBody", {})] + list(op.get("responses", {}).values())
                for body in bodies:
                    for media, content in body.get("content", {}).items():
                        if media.endswith("xml") and "$ref" in content.get("schema", {}):
                            names.add(cast(str, self.ref_name(content["schema"])))
        return sorted(names)

    def rules_for(self, schema_name: str) -> list[dict[str, Any]]:
        """The document rules that apply to a schema, in the spec's order (a new list each time;
        the selection is made once per schema)."""
        try:
            return list(self._rules_for[schema_name])
        except KeyError:
            pass
        selected = tuple(r for r in self.rules if r.get("kind") == "document" and schema_name in r.get("appliesTo", []))
        self._rules_for[schema_name] = selected
        return list(selected)

    @cached_property
    def _rules_for(self) -> dict[str, tuple[dict[str, Any], ...]]:
        return {}
