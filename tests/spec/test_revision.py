"""Revision workflow: edit a copy of the spec, regenerate, and see the change everywhere."""

import shutil

import yaml

from generator.pipeline import GENERATED, REPO, build

CEMENT = f"{GENERATED}/examples/monthly-report-cement.json"


def test_added_field_and_operation_reach_every_artefact(tmp_path):
    shutil.copytree(REPO / "spec", tmp_path / "spec")
    path = tmp_path / "spec" / "openapi.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    # A new optional field in a schema ...
    doc["components"]["schemas"]["GeneratingUnit"]["properties"]["biomassCofiring"] = {
        "title": "Biomass co-fired", "x-cedx-title-zh": "掺烧生物质量", "$ref": "#/components/schemas/Quantity", "x-cedx-units": ["t"],
    }
    # ... and a new operation.
    doc["paths"]["/v1/reporting/entities/{creditCode}/certificates"] = {
        "parameters": [{"$ref": "#/components/parameters/CreditCode"}],
        "get": {
            "operationId": "listEntityCertificates",
            "tags": ["reporting"],
            "summary": "列出排放单位证书 / List the entity's certificates",
            "security": [{"oauth2": ["reporting:read"]}],
            "responses": {
                "200": {"description": "证书 / Certificates", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Entity"}},
                    "application/xml": {"schema": {"$ref": "#/components/schemas/Entity"}}}},
                **{s: {"$ref": f"#/components/responses/{r}"} for s, r in [
                    ("400", "BadRequest"), ("401", "Unauthorized"), ("403", "Forbidden"), ("404", "NotFound"),
                    ("409", "Conflict"), ("413", "PayloadTooLarge"), ("415", "UnsupportedMediaType"),
                    ("422", "UnprocessableContent"), ("429", "TooManyRequests")]},
            },
        }
    }
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")

    files = build(tmp_path)
    models = files["sdk/cedx/generated/models.py"].decode()
    assert "biomass_cofiring" in models and 'alias="biomassCofiring"' in models
    assert b'name="biomassCofiring"' in files["sdk/cedx/generated/cedx.xsd"]
    assert b'"biomassCofiring"' in files["sdk/cedx/generated/openapi.json"]   # drives the XML codec
    client = files["sdk/cedx/generated/client.py"].decode()
    assert "def list_entity_certificates(" in client
    server = files["sdk/cedx/generated/server.py"].decode()
    assert "def list_entity_certificates(" in server and "/v1/reporting/entities/{creditCode}/certificates" in server
    for doc_file in ("docs/reference.md", "sdk/cedx/generated/reference.html"):
        text = files[doc_file].decode()
        assert "biomassCofiring" in text and "listEntityCertificates" in text
    # Nothing else moved: the unchanged examples regenerate identically.
    unchanged = build(REPO)
    assert files[CEMENT] == unchanged[CEMENT]


def test_spec_version_and_a_new_industry_need_no_hand_edits(tmp_path):
    """Spec facts are derived: bump the version and add an industry with its report section in a
    copy of spec/, regenerate, and the constants, the examples and the rule engine follow."""
    import json

    from cedx.spec.schema import SchemaIndex
    from cedx.spec.validate import Validator

    shutil.copytree(REPO / "spec", tmp_path / "spec")
    path = tmp_path / "spec" / "openapi.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["x-cedx-spec-version"] = "1.1"
    schemas = doc["components"]["schemas"]
    schemas["SpecVersion"]["enum"] = ["1.1"]  # the versions documents may state
    schemas["Industry"]["enum"].append("nonferrous_metals")
    schemas["Industry"]["x-cedx-enum-titles"]["nonferrous_metals"] = "有色金属 / Non-ferrous metals"
    schemas["MonthlyReport"]["properties"]["nonferrousMetals"] = {"$ref": "#/components/schemas/PowerMonthlyData"}
    # an operation renamed: the platform finds the document type it reads by the new name
    doc["paths"]["/v1/reporting/annual-reports/{submissionId}"]["get"]["operationId"] = "readAnnualReport"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")

    files = build(tmp_path)
    namespace: dict = {}
    exec(files[f"{GENERATED}/constants.py"].decode(), namespace)  # noqa: S102  (generated, ours)
    assert namespace["SPEC_VERSION"] == "1.1"
    assert namespace["INDUSTRY_SECTIONS"]["nonferrousMetals"] == "nonferrous_metals"
    assert namespace["SUBMIT_OPERATIONS"]["monthly_report"] == "submitMonthlyReport"
    assert namespace["DOCUMENT_OPERATIONS"] == {"submitMonthlyReport": "monthly_report", "getMonthlyReport": "monthly_report",
                                                "submitAnnualReport": "annual_report", "readAnnualReport": "annual_report"}
    bundled = json.loads(files[f"{GENERATED}/openapi.json"])
    example = json.loads(files[f"{GENERATED}/examples/monthly-report-power.json"])
    assert example["specVersion"] == "1.1"
    validator = Validator(SchemaIndex(bundled))
    assert validator.validate("SignedMonthlyReport", example) == []
    # R-IND-001 sees the new section without any hand-written table
    payload = example["payload"]
    both = {**example, "payload": {**payload, "nonferrousMetals": payload["power"]}}
    issues = validator.validate("SignedMonthlyReport", both)
    assert "R-IND-001" in {i.rule for i in issues}, issues


# Hand-written files that still type the spec version; each goes when its owner's branch reads
# cedx.generated.constants.SPEC_VERSION instead (issue 10.2). The list only shrinks.
PENDING_VERSION_LITERALS: set[str] = set()


def test_hand_written_code_does_not_type_the_spec_version(bundled):
    """A spec revision bumps x-cedx-spec-version and regenerates (test above); hand-written code
    must then need no edit, so it may not spell the version itself."""
    version = bundled["x-cedx-spec-version"]
    needles = (f'"{version}"', f"'{version}'")
    offenders = {str(path.relative_to(REPO)) for folder in ("sdk/cedx", "generator", "bench")
                 for path in sorted((REPO / folder).rglob("*.py")) if "generated" not in path.parts
                 and any(needle in path.read_text(encoding="utf-8") for needle in needles)}
    assert offenders <= PENDING_VERSION_LITERALS, sorted(offenders - PENDING_VERSION_LITERALS)


def test_demo_entities_follow_the_spec_examples():
    """The demo registers one entity per industry, taken from the spec's examples (no hand table)."""
    from cedx.demo import ENTITIES
    from cedx.generated.constants import INDUSTRIES

    assert tuple(ENTITIES) == INDUSTRIES
    assert ENTITIES["power"] == ("91320500MA1X2P3Q4R", "华东示范电厂有限公司")


# Hand-written files that may spell a document type, and why. The list only shrinks.
DOCUMENT_TYPE_LITERALS = {
    # the default of Outbox.enqueue(kind=...): the runtime layer never imports generated
    # constants; an unknown kind is refused there (ValueError), never sent stale
    "sdk/cedx/runtime/outbox.py",
}


def _hand_written(root):
    import ast

    for folder in ("sdk/cedx", "generator", "bench"):
        for path in sorted((root / folder).rglob("*.py")):
            if "generated" not in path.parts:
                yield str(path.relative_to(root)), ast.parse(path.read_text(encoding="utf-8"))


def _strings(node):
    import ast

    nodes = [node] if isinstance(node, ast.Constant) else getattr(node, "elts", [])
    return [n.value for n in nodes if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _stale_facts(root):
    """Spec facts typed in hand-written code: no document type (DocumentType) at all — code takes
    it from the operation (cedx.generated.constants.DOCUMENT_OPERATIONS) — and every error code
    raised or expected, and every operation id looked up or compared, must be one the spec has.
    A spec revision that renames or drops one then fails here, at the file that names it."""
    import ast

    from cedx.generated.constants import DOCUMENT_TYPES, ERROR_STATUS, OPERATIONS

    found = []
    for rel, tree in _hand_written(root):
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in DOCUMENT_TYPES and rel not in DOCUMENT_TYPE_LITERALS:
                found.append(f"{rel}:{node.lineno}: document type {node.value!r}")
            codes, ops = [], []
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name == "Problem" and node.args:                # Problem("CODE", ...)
                    codes += _strings(node.args[0])
                if name in ("_expect_problem", "_api_error") and len(node.args) > 2:   # inspection cases
                    codes += _strings(node.args[2])
                codes += [s for k in node.keywords if k.arg == "code" for s in _strings(k.value)]
            elif isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute):
                if node.left.attr == "code":                       # exc.code == "CODE"
                    codes += [s for c in node.comparators for s in _strings(c)]
                elif node.left.attr == "operation_id":             # ctx.operation.operation_id == "opId"
                    ops += [s for c in node.comparators for s in _strings(c)]
            elif isinstance(node, ast.Subscript) and getattr(node.value, "id", None) == "OPERATIONS":
                ops += _strings(node.slice)                        # OPERATIONS["opId"]
            found += [f"{rel}:{node.lineno}: error code {c!r}" for c in codes if c.isupper() and c not in ERROR_STATUS]
            found += [f"{rel}:{node.lineno}: operation {o!r}" for o in ops if o not in OPERATIONS]
    return found


def test_hand_written_code_names_only_spec_facts_that_exist():
    found = _stale_facts(REPO)
    assert not found, found


def test_the_fact_check_sees_a_stale_literal(tmp_path):
    """The check above is not vacuous: a stale error code, operation id and document type in a
    hand-written file are each reported."""
    fake = tmp_path / "sdk" / "cedx" / "stale.py"
    fake.parent.mkdir(parents=True)
    fake.write_text('def f(ctx):\n    if ctx.operation.operation_id == "submitQuarterlyReport":\n'
                    '        raise Problem("QUOTA_EXCEEDED", "x")\n    return OPERATIONS["getQuarterlyReport"], '
                    '"annual_report"\n', encoding="utf-8")
    report = "\n".join(_stale_facts(tmp_path))
    for needle in ("'submitQuarterlyReport'", "'QUOTA_EXCEEDED'", "'getQuarterlyReport'", "'annual_report'"):
        assert needle in report, report
