"""The generation pipeline: spec/ → every generated file, as {relative path: bytes}.

Nothing here writes to disk; ``__main__`` decides whether to write (generate) or compare
(check), which is what makes ``make check`` exact.
"""

from __future__ import annotations

import json
from pathlib import Path

from cedx.spec.schema import SchemaIndex

from .bundle import bundle_core, example_schemas, inline_examples
from .client import generate_client
from .constants import generate_constants
from .docs import generate_docs, generate_trust_profile
from .examples import example_json_bytes, render_xml, sign_examples
from .ir import build_ir
from .load import load_spec
from .models import generate_models
from .server import generate_server
from .vectors import generate_vectors
from .xmlmap import generate_mapping
from .xsd import derive_xsd

REPO = Path(__file__).resolve().parent.parent
GENERATED = "sdk/cedx/generated"  # the one place for everything derived from spec/
PACKAGE_INIT = '''"""Generated from spec/ by `python -m generator` — do not edit.

Modules: constants, models, client, server, operations, xml. Data: openapi.json (bundled spec),
cedx.xsd (normative XML Schema), reference.html, examples/ (signed JSON, every XML form).
"""
'''


def build(repo: Path = REPO, pki_dir: Path | None = None) -> dict[str, bytes]:
    """Every generated file for the spec under ``repo/spec``, as {path relative to repo: bytes}.

    ``pki_dir`` holds the keys that sign the examples (default: the spec's example PKI).
    """
    source = load_spec(repo / "spec")
    core = bundle_core(source)
    index = SchemaIndex(core)
    usage = example_schemas(source.document)
    schemas = {name: schema for name, (schema, _media) in usage.items() if name.endswith(".json")}
    xml_names = {name for name in usage if name.endswith(".xml")}
    examples = sign_examples(index, source.examples, schemas, pki_dir or repo / "spec" / "examples" / "pki")
    xml_examples = render_xml(index, examples, schemas, xml_names)
    xsd = derive_xsd(index)
    bundled = inline_examples(core, examples, xml_examples)
    bundled_index = SchemaIndex(bundled)

    # Every derived artefact lives under one generated folder, committed once; the package ships
    # it (the XSD is normative and published from there). spec/ holds only what people write.
    files: dict[str, bytes] = {}
    for name, doc in examples.items():
        if doc != source.examples[name]:  # signed, digested or re-versioned; else the source is it
            files[f"{GENERATED}/examples/{name}"] = example_json_bytes(doc)
    for name, text in xml_examples.items():
        files[f"{GENERATED}/examples/{name}"] = text.encode("utf-8")
    files[f"{GENERATED}/cedx.xsd"] = xsd
    files[f"{GENERATED}/openapi.json"] = (
        json.dumps(bundled, ensure_ascii=False, indent=1, sort_keys=False) + "\n"
    ).encode("utf-8")
    files["sdk/cedx/generated/__init__.py"] = PACKAGE_INIT.encode("utf-8")
    files["sdk/cedx/generated/models.py"] = generate_models(core)
    files["sdk/cedx/generated/constants.py"] = generate_constants(bundled_index)
    ops = build_ir(bundled_index)
    schemas = bundled["components"]["schemas"]
    files["sdk/cedx/generated/client.py"] = generate_client(ops, schemas)
    files["sdk/cedx/generated/aio.py"] = generate_client(ops, schemas, aio=True)
    files.update(generate_server(ops))
    files.update(generate_docs(bundled_index, ops))
    files["sdk/cedx/generated/xml.py"] = generate_mapping(index)
    if "monthly-report-power.json" in examples and "receipt-power.json" in examples:  # not for test specs
        vectors = generate_vectors(index, examples, pki_dir or repo / "spec" / "examples" / "pki")
        files.update(vectors)
        files["docs/trust-profile.md"] = generate_trust_profile(bundled_index, vectors)
    return files
