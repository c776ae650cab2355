"""Step: xsdata bindings (dataclasses) from the derived XSD, and the generated mapping between
XML documents, the xsdata bindings and the pydantic models (sdk/cedx/generated/xml.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from cedx.spec.schema import SchemaIndex

from .pyformat import format_python
from .render import CODE_HEADER, environment

PACKAGE = "cedx.generated.xmlbind"


def generate_bindings(xsd: bytes) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "cedx.xsd").write_bytes(xsd)
        env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        subprocess.run(
            [sys.executable, "-m", "xsdata", "generate", "cedx.xsd", "--package", PACKAGE],
            cwd=tmp, env=env, check=True, capture_output=True,
        )
        out = {}
        root = Path(tmp) / Path(*PACKAGE.split("."))
        for path in sorted(root.glob("*.py")):
            rel = f"sdk/{'/'.join(PACKAGE.split('.'))}/{path.name}"
            # xsdata imports absolutely; relative imports keep the package relocatable.
            code = path.read_text(encoding="utf-8").replace(f"from {PACKAGE}.", "from .")
            out[rel] = format_python(f"{CODE_HEADER} (via xsdata)\n{code}", rel).encode("utf-8")
        return out


def generate_mapping(index: SchemaIndex) -> bytes:
    code = environment().get_template("xml.py.j2").render(
        header=CODE_HEADER, documents=index.document_schemas(),
    )
    return format_python(code, "sdk/cedx/generated/xml.py").encode("utf-8")
