"""Revision workflow: edit a copy of the spec, regenerate, and see the change everywhere."""

import shutil

import yaml

from generator.pipeline import REPO, build


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
    assert b'name="biomassCofiring"' in files["spec/cedx.xsd"]
    assert b'"biomassCofiring"' in files["sdk/cedx/generated/openapi.json"]   # drives the XML codec
    assert b"biomass_cofiring" in files["sdk/cedx/generated/xmlbind/cedx.py"]  # xsdata binding
    client = files["sdk/cedx/generated/client.py"].decode()
    assert "def list_entity_certificates(" in client
    server = files["sdk/cedx/generated/server.py"].decode()
    assert "def list_entity_certificates(" in server and "/v1/reporting/entities/{creditCode}/certificates" in server
    for doc_file in ("docs/reference.md", "docs/index.html"):
        text = files[doc_file].decode()
        assert "biomassCofiring" in text and "listEntityCertificates" in text
    # Nothing else moved: the unchanged examples regenerate identically.
    unchanged = build(REPO)
    assert files["spec/examples/monthly-report-cement.json"] == unchanged["spec/examples/monthly-report-cement.json"]
