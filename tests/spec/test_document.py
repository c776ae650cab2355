"""The OpenAPI document: valid, versioned, complete in the ways the issue requires."""

import json
import re

import pytest
from openapi_spec_validator import validate

METHODS = {"get", "put", "post", "delete", "patch"}


def operations(doc):
    """The operations in cedx's own formats (not /tsa, whose wire format RFC 3161 fixes)."""
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS and not op.get("x-cedx-protocol"):
                yield path, method, op


def test_source_and_bundle_are_valid_openapi_31(source_doc, bundled):
    validate(source_doc)
    validate(bundled)
    assert bundled["openapi"].startswith("3.1")
    assert re.fullmatch(r"\d+\.\d+\.\d+", bundled["info"]["version"])


def test_paths_are_versioned_and_grouped_by_interface(bundled):
    tags = {t["name"] for t in bundled["tags"]}
    assert {"reporting", "acquisition"} <= tags
    for path, _method, op in operations(bundled):
        if path.startswith(("/.well-known/", "/oauth/")):
            assert op["tags"] == ["common"]
            continue
        assert path.startswith("/v1/"), path
        group = path.split("/")[2]
        assert group in ("reporting", "acquisition"), path
        assert op["tags"] == [group], f"{path} is tagged {op['tags']}"


def test_every_operation_documents_the_error_responses(bundled):
    """Which statuses each operation lists is checked in test_statuses.py; here: some, and unique IDs."""
    ids = []
    for path, method, op in operations(bundled):
        ids.append(op["operationId"])
        assert {"406", "429"} <= set(op["responses"]), f"{method.upper()} {path}"
    assert len(ids) == len(set(ids)), "operationIds must be unique"


def test_data_operations_offer_json_and_xml(bundled):
    for path, method, op in operations(bundled):
        if op["operationId"] == "issueToken":
            continue  # RFC 6749 fixes the token endpoint's formats
        bodies = [op.get("requestBody")] + [r for s, r in op["responses"].items() if s.startswith("2")]
        for body in filter(None, bodies):
            media = set(body.get("content", {}))
            assert {"application/json", "application/xml"} <= media, f"{method} {path}: {media}"
            for content in body["content"].values():
                assert content.get("examples"), f"{method} {path} has no examples"


def test_errors_are_problem_json_with_the_code_table(bundled, index):
    for name, resp in bundled["components"]["responses"].items():
        assert list(resp["content"]) == ["application/problem+json"], name
    codes = set(index.error_codes)
    assert index.schemas["ErrorCode"]["enum"] == list(index.error_codes)
    for entry in index.error_codes.values():
        assert entry["zh"] and entry["en"] and 400 <= entry["status"] <= 599
    assert {"SIGNATURE_INVALID", "RULE_VIOLATION", "IDEMPOTENCY_CONFLICT", "TOKEN_EXPIRED"} <= codes


def test_every_document_carries_spec_version(index):
    for name in index.document_schemas():
        props = {p.name: p for p in index.properties(index.schemas[name])}
        assert "specVersion" in props and props["specVersion"].required, name
        assert props["specVersion"].attribute, f"{name}: specVersion is an XML attribute"


def test_arrays_name_their_xml_items_and_objects_are_closed(index):
    for name, schema in index.schemas.items():
        if index.kind(schema) != "object":
            continue
        assert schema.get("additionalProperties") is False, f"{name} must be closed"
        for prop in index.properties(schema):
            if index.kind(prop.schema) == "array":
                assert prop.schema.get("xml", {}).get("wrapped") is True, f"{name}.{prop.name}"
                assert "name" in prop.schema["items"].get("xml", {}), f"{name}.{prop.name} items"


def test_titles_are_bilingual(index):
    """English `title` (what third-party tools name classes after) with `x-cedx-title-zh` beside it."""
    for name, schema in index.schemas.items():
        assert schema.get("title") and schema.get("x-cedx-title-zh"), f"{name}: needs title and x-cedx-title-zh"
        for prop in index.properties(schema):
            node = prop.schema if prop.schema.get("title") else index.resolve(prop.schema)
            if node.get("title"):
                assert node.get("x-cedx-title-zh"), f"{name}.{prop.name}: {node['title']!r} lacks x-cedx-title-zh"


def test_units_have_allowed_codes_from_the_table(index):
    codes = set(index.units.codes())
    assert index.schemas["UnitCode"]["enum"] == index.units.codes()
    for name, schema in index.schemas.items():
        for prop in index.properties(schema):
            for unit in prop.schema.get("x-cedx-units", []):
                assert unit in codes, f"{name}.{prop.name}: {unit} not in the unit table"


def test_rule_ids_are_stable_and_referenced(index, bundled):
    ids = [r["id"] for r in index.rules]
    assert len(ids) == len(set(ids))
    for rule in index.rules:
        assert re.fullmatch(r"R-[A-Z0-9]+-[0-9]{3}", rule["id"])
        assert rule["zh"] and rule["en"]
        for target in rule.get("appliesTo", []):
            assert target in index.schemas, f"{rule['id']} applies to unknown {target}"
    used = set()

    def walk(node):
        if isinstance(node, dict):
            if "x-cedx-rule" in node:
                used.add(node["x-cedx-rule"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(bundled["components"]["schemas"])
    assert used <= set(ids), used - set(ids)


@pytest.mark.parametrize("scope", ["reporting:submit", "reporting:read", "reporting:entity:write", "acquisition:read"])
def test_scopes_are_declared_and_used(bundled, scope):
    flows = bundled["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]
    assert flows["tokenUrl"] == "/oauth/token"
    assert scope in flows["scopes"]
    used = {s for _p, _m, op in operations(bundled) for req in op.get("security", []) for s in req.get("oauth2", [])}
    assert scope in used


def test_writes_require_request_signatures_and_submissions_idempotency(bundled):
    for path, method, op in operations(bundled):
        if method in ("post", "put") and path.startswith("/v1/"):
            assert op.get("x-cedx-request-signature") == "required", path
            assert {"requestSignature": []} in [{k: v for k, v in req.items() if k == "requestSignature"}
                                                for req in op["security"]], path
            # the four headers are the security scheme, never also parameters (issue 11 §5)
            assert not [p for p in op.get("parameters", []) if "X-Cedx" in json.dumps(p) or "Request" in p.get("$ref", "")]
        if op["operationId"].startswith("submit"):
            assert any(p.get("$ref", "").endswith("IdempotencyKey") for p in op["parameters"])


def test_configuration_document_is_signed_and_announces_successors(index):
    assert index.schemas["SignedPlatformConfiguration"]["x-cedx-signed"]["signer"] == "platform"
    props = {p.name for p in index.properties(index.schemas["PlatformConfiguration"])}
    assert {"endpoints", "signingCertificates", "validFrom", "successor"} <= props


def test_quality_flag_facts_come_from_the_flag_table(index):
    """Spec QualityFlag (x-cedx-flag-rules): carrying a value and being valid are separate facts;
    the rules that test value presence use the same sets, and a malformed table is refused."""
    import copy

    from cedx.generated import constants
    from cedx.spec.facts import _flag_facts

    facts = index.facts
    assert (facts.quality_flags, facts.flags_carrying_value, facts.flags_without_value, facts.flags_counting_as_valid,
            facts.flags_stopped) == ("NFMSDCTB", "NSCT", "B", "N", "F")
    assert (constants.FLAGS_CARRYING_VALUE, constants.FLAGS_COUNTING_AS_VALID) == (frozenset("NSCT"), frozenset("N"))
    rules = {r["id"]: r for r in index.rules}
    for rid, flags in (("R-ACQ-001", facts.flags_carrying_value), ("R-ACQ-005", facts.flags_without_value)):
        assert re.search(rf"flag (in|!=) '{flags}'", rules[rid]["check"]), (rid, rules[rid]["check"])
    broken = copy.deepcopy(index.schemas["QualityFlag"])
    del broken["x-cedx-flag-rules"]["B"]
    with pytest.raises(ValueError, match="exactly the codes"):
        _flag_facts(broken)
    broken = copy.deepcopy(index.schemas["QualityFlag"])
    broken["x-cedx-flag-rules"]["N"] = {"value": "required", "counts": "yes"}
    with pytest.raises(ValueError, match="counts"):
        _flag_facts(broken)
