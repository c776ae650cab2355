"""`make check` refuses stray keys in tables and schema objects (issue 11 §4)."""

import subprocess
from pathlib import Path

import pytest
import yaml

from generator.load import load_spec
from generator.strict import document_problems, table_problems

REPO = Path(__file__).resolve().parents[2]


def test_committed_spec_has_no_stray_keys():
    doc = yaml.safe_load((REPO / "spec/openapi.yaml").read_text(encoding="utf-8"))
    tables = {k: yaml.safe_load((REPO / "spec" / v).read_text(encoding="utf-8")) for k, v in doc["x-cedx-tables"].items()}
    assert table_problems(tables) == []
    assert document_problems(doc) == []


def test_unquoted_comma_in_a_table_entry_is_refused():
    table = yaml.safe_load("errors:\n  - {code: X, status: 400, zh: 甲, en: A path, query or header}\n")
    problems = table_problems({"errorCodes": table})
    assert len(problems) == 1 and "query or header" in problems[0] and "errors[0] (X)" in problems[0]


def test_unquoted_comma_in_a_schema_title_is_refused_anywhere():
    doc = yaml.safe_load("""
components:
  schemas:
    A:
      type: object
      properties:
        v: {title: Version (1 for the original, +1 per correction), type: integer}
        list: {type: array, items: {type: string, xml: {name: x, wraped: true}}}
paths:
  /a:
    get:
      parameters:
        - {name: q, in: query, schema: {type: string, maxLenght: 3}}
""")
    problems = document_problems(doc)
    assert any("A.properties.v" in p and "+1 per correction" in p for p in problems)
    assert any("items.xml" in p and "wraped" in p for p in problems)
    assert any("maxLenght" in p for p in problems)


def test_load_spec_raises_on_a_stray_key(tmp_path):
    spec = tmp_path / "spec"
    subprocess.run(["cp", "-r", str(REPO / "spec"), str(spec)], check=True)
    errors = spec / "tables/errors.yaml"
    errors.write_text(errors.read_text(encoding="utf-8").replace(
        'en: "The XML document contains a DTD, entity or processing instruction"',
        "en: The XML document contains a DTD, entity or processing instruction"), encoding="utf-8")
    with pytest.raises(ValueError, match="entity or processing instruction"):
        load_spec(spec)


def test_served_problem_titles_are_whole():
    import json

    from cedx.runtime.server import Problem, problem_response

    body = json.loads(problem_response(Problem(code="INVALID_PARAMETER", status=400)).body)
    assert body["title"] == "请求参数无效 / A path, query or header parameter is invalid"
    body = json.loads(problem_response(Problem(code="CERTIFICATE_INVALID", status=422)).body)
    assert body["title"].endswith("unknown, expired, revoked or not issued by a trusted CA")
