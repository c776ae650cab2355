"""The JSON-vs-XML drift check: compares the committed XSD with the JSON Schemas.

Independent of xsd.py on purpose: it reads the XSD as a document and reports every field,
type, cardinality or enumeration on which the two disagree, so a hand edit of either side, or a
bug in the derivation, shows up as a named mismatch.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from cedx.spec.schema import SchemaIndex

XS = "{http://www.w3.org/2001/XMLSchema}"


def _local(qname: str) -> str:
    return qname.split(":", 1)[1] if ":" in qname else qname


def _xsd_fields(ct: etree._Element) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    seq = ct.find(f"{XS}sequence")
    elements = []
    for el in (seq if seq is not None else []):
        if el.tag != f"{XS}element":
            continue
        entry = {"name": el.get("name"), "min": int(el.get("minOccurs", "1")),
                 "type": _local(el.get("type", "")) or None, "item": None,
                 "choice": sorted(c.get("name") for c in el.findall(f"{XS}complexType/{XS}choice/{XS}element"))}
        inner = el.find(f"{XS}complexType/{XS}sequence/{XS}element")
        if inner is not None:
            entry["item"] = {"name": inner.get("name"), "type": _local(inner.get("type", "")) or None,
                             "min": int(inner.get("minOccurs", "1")), "max": inner.get("maxOccurs", "1")}
        elements.append(entry)
    attributes = [{"name": a.get("name"), "required": a.get("use") == "required",
                   "type": _local(a.get("type", "")) or None}
                  for a in ct.findall(f"{XS}attribute")]
    return elements, attributes


def check_drift(index: SchemaIndex, xsd: bytes) -> list[str]:
    root = etree.fromstring(xsd)
    problems: list[str] = []
    complex_types = {ct.get("name"): ct for ct in root.findall(f"{XS}complexType")}
    simple_types = {st.get("name"): st for st in root.findall(f"{XS}simpleType")}
    if root.get("targetNamespace") != index.namespace:
        problems.append(f"XSD targetNamespace {root.get('targetNamespace')} != {index.namespace}")
    for name, schema in index.schemas.items():
        if schema.get("x-cedx-no-xml"):
            continue
        kind = index.kind(schema)
        if kind == "union":
            continue  # checked where used
        if kind == "object":
            ct = complex_types.get(name)
            if ct is None:
                problems.append(f"{name}: no complexType in the XSD")
                continue
            problems += _compare_object(index, name, schema, ct)
        else:
            st = simple_types.get(name)
            if st is None:
                problems.append(f"{name}: no simpleType in the XSD")
                continue
            xsd_enum = [e.get("value") for e in st.iter(f"{XS}enumeration")]
            json_enum = [str(v) for v in schema.get("enum", [])]
            if xsd_enum != json_enum:
                problems.append(f"{name}: enumeration differs (JSON {json_enum}, XSD {xsd_enum})")
    for name in complex_types:
        if name not in index.schemas:
            problems.append(f"{name}: complexType in the XSD has no JSON schema")
    declared = {e.get("name") for e in root.findall(f"{XS}element")}
    for name in index.document_schemas():
        if name not in declared:
            problems.append(f"{name}: body schema has no global XSD element")
    return problems


def _compare_object(index: SchemaIndex, name: str, schema: dict[str, Any], ct: etree._Element) -> list[str]:
    problems = []
    elements, attributes = _xsd_fields(ct)
    props = list(index.properties(schema))
    json_elements = [p for p in props if not p.attribute]
    json_attributes = [p for p in props if p.attribute]
    if [e["name"] for e in elements] != [p.name for p in json_elements]:
        problems.append(
            f"{name}: element names/order differ (JSON {[p.name for p in json_elements]}, "
            f"XSD {[e['name'] for e in elements]})"
        )
    if [a["name"] for a in attributes] != [p.name for p in json_attributes]:
        problems.append(f"{name}: attributes differ (JSON {[p.name for p in json_attributes]}, XSD {[a['name'] for a in attributes]})")
    by_name = {e["name"]: e for e in elements}
    for prop in json_elements:
        el = by_name.get(prop.name)
        if el is None:
            continue
        where = f"{name}.{prop.name}"
        if el["min"] != (1 if prop.required else 0):
            problems.append(f"{where}: cardinality differs (required={prop.required}, minOccurs={el['min']})")
        if index.kind(prop.schema) == "union":
            expected = sorted(set(index.variants(prop.schema)[1].values()))
            if el["choice"] != expected:
                problems.append(f"{where}: union variants differ (JSON {expected}, XSD {el['choice']})")
            continue
        if index.kind(prop.schema) == "array":
            item = el["item"]
            if item is None:
                problems.append(f"{where}: array without a wrapped item element in the XSD")
                continue
            target = index.resolve(prop.schema)
            if item["name"] != index.item_name(prop.schema):
                problems.append(f"{where}: item element {item['name']} != {index.item_name(prop.schema)}")
            if item["min"] != target.get("minItems", 0):
                problems.append(f"{where}: minItems {target.get('minItems', 0)} != minOccurs {item['min']}")
            expected_max = str(target["maxItems"]) if "maxItems" in target else "unbounded"
            if item["max"] != expected_max:
                problems.append(f"{where}: maxItems {expected_max} != maxOccurs {item['max']}")
            ref = index.ref_name(target["items"])
            if ref and index.kind(target["items"]) == "union":
                ref = None  # a choice holder; its variants are checked by the validator tests
            if ref and item["type"] != ref:
                problems.append(f"{where}: item type {item['type']} != {ref}")
        else:
            ref = index.ref_name(prop.schema)
            if ref and el["type"] != ref:
                problems.append(f"{where}: type {el['type']} != {ref}")
    for prop in json_attributes:
        attr = next((a for a in attributes if a["name"] == prop.name), None)
        if attr and attr["required"] != prop.required:
            problems.append(f"{name}@{prop.name}: attribute use differs")
    return problems
