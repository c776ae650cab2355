"""The spec as third-party tools read it (issue 11 §5): Spectral (spectral:oas) and Redocly
(recommended) report nothing on spec/openapi.yaml and on the published bundle; openapi-python-client
generates every operation; datamodel-code-generator's models load every example. The npm tools
are pinned in tools/package-lock.json and installed by `make venv`; the PyPI ones in
requirements-dev.txt."""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import REPO

TOOLS = REPO / "tools"
BIN = TOOLS / "node_modules" / ".bin"
SOURCE = REPO / "spec" / "openapi.yaml"
BUNDLE = REPO / "sdk" / "cedx" / "generated" / "openapi.json"
METHODS = ("get", "put", "post", "delete", "patch")


def _npm_tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make venv` (it runs `npm ci` in tools/; CI installs node)")
    return str(path)


def _operation_ids(doc: dict) -> set[str]:
    return {op["operationId"] for item in doc["paths"].values() for m, op in item.items() if m in METHODS}


def test_spectral_oas_reports_nothing():
    proc = subprocess.run([_npm_tool("spectral"), "lint", "--ruleset", str(TOOLS / ".spectral.yaml"),
                           "--fail-severity", "hint", "--format", "text", str(SOURCE), str(BUNDLE)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]


def test_redocly_recommended_reports_nothing():
    proc = subprocess.run([_npm_tool("redocly"), "lint", "--config", str(TOOLS / "redocly.yaml"), str(SOURCE), str(BUNDLE)],
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert not re.search(r"You have \d+ warning", out), out[-3000:]


def test_openapi_python_client_generates_every_operation(tmp_path):
    doc = yaml.safe_load(SOURCE.read_text(encoding="utf-8"))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    exe = shutil.which("openapi-python-client", path=env["PATH"])
    assert exe, "openapi-python-client is pinned in requirements-dev.txt: run `make venv`"
    proc = subprocess.run([exe, "generate", "--path", str(SOURCE), "--config", str(TOOLS / "openapi-python-client.yaml"),
                           "--meta", "none", "--output-path", str(tmp_path / "client")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "will not be generated" not in proc.stdout + proc.stderr, proc.stdout[-3000:]
    modules = {p.stem for p in (tmp_path / "client" / "api").rglob("*.py")}
    snake = {re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", op).lower() for op in _operation_ids(doc)}
    assert snake <= modules, sorted(snake - modules)
    assert not [p.name for p in (tmp_path / "client").rglob("*.py") if not p.name.isascii()], "non-ASCII names"


def test_datamodel_code_generator_models_load_every_example(tmp_path):
    from datamodel_code_generator import DataModelType, InputFileType, generate

    bundle = json.loads(BUNDLE.read_text(encoding="utf-8"))
    out = tmp_path / "models.py"
    generate(BUNDLE.read_text(encoding="utf-8"), input_file_type=InputFileType.OpenAPI, output=out,
             output_model_type=DataModelType.PydanticV2BaseModel,
             type_mappings=["string+email=string"],  # EmailStr would need the email-validator package
             formatters=["ruff-format"])
    assert "class SignedMonthlyReport(" in out.read_text(encoding="utf-8")
    spec = importlib.util.spec_from_file_location("third_party_models", out)
    models = importlib.util.module_from_spec(spec)
    sys.modules["third_party_models"] = models
    spec.loader.exec_module(models)
    loaded = 0
    for item in bundle["paths"].values():
        for method, op in item.items():
            if method not in METHODS:
                continue
            bodies = [op.get("requestBody", {})] + list(op["responses"].values())
            for body in bodies:
                for media, content in body.get("content", {}).items():
                    ref = content.get("schema", {}).get("$ref")
                    for name, example in content.get("examples", {}).items():
                        assert "value" in example, f"{op['operationId']} {media} {name} is not inline"
                        if ref and media.endswith(("json", "xml")):
                            getattr(models, ref.rsplit("/", 1)[1]).model_validate(example["value"])
                            loaded += 1
    assert loaded >= 40


def test_xml_is_described_with_standard_keywords():
    doc = yaml.safe_load(SOURCE.read_text(encoding="utf-8"))
    schemas = doc["components"]["schemas"]
    for item in doc["paths"].values():
        for method, op in item.items():
            if method not in METHODS:
                continue
            for body in [op.get("requestBody", {})] + list(op["responses"].values()):
                xml = body.get("content", {}).get("application/xml")
                if xml:
                    name = xml["schema"]["$ref"].rsplit("/", 1)[1]
                    assert schemas[name].get("xml") == {"name": name, "namespace": doc["x-cedx-xml-namespace"]}, name

    def arrays(node):
        if isinstance(node, dict):
            if node.get("type") == "array":
                yield node
            for v in node.values():
                yield from arrays(v)
        elif isinstance(node, list):
            for v in node:
                yield from arrays(v)

    for array in arrays(schemas):
        assert array.get("xml", {}).get("wrapped") is True and array["items"].get("xml", {}).get("name"), array


def test_units_are_a_standard_enum_from_the_unit_table():
    doc = yaml.safe_load(SOURCE.read_text(encoding="utf-8"))
    table = yaml.safe_load((REPO / "spec" / "tables" / "units.yaml").read_text(encoding="utf-8"))
    assert doc["components"]["schemas"]["UnitCode"]["enum"] == [u["code"] for u in table["units"]]


def test_schema_titles_are_english_with_chinese_beside():
    def titles(node):
        if isinstance(node, dict):
            if isinstance(node.get("title"), str):
                yield node
            for v in node.values():
                yield from titles(v)
        elif isinstance(node, list):
            for v in node:
                yield from titles(v)

    doc = yaml.safe_load(SOURCE.read_text(encoding="utf-8"))
    found = list(titles(doc["components"]))
    assert len(found) > 200
    for node in found:
        assert not re.search(r"[\u3000-\u9fff\uff00-\uffef]", node["title"]), node["title"]
    assert sum(1 for n in found if n.get("x-cedx-title-zh")) == len(found)
