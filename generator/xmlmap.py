"""Step: the generated mapping between XML documents and the pydantic models
(sdk/cedx/generated/xml.py). The wire mapping itself is cedx.spec.xmlcodec, driven by the
bundled spec; there are no separate XML bindings (one XML path — see bench/xmlpaths.py)."""

from __future__ import annotations

from cedx.spec.schema import SchemaIndex

from .pyformat import format_python
from .render import CODE_HEADER, environment


def generate_mapping(index: SchemaIndex) -> bytes:
    code = environment().get_template("xml.py.j2").render(
        header=CODE_HEADER, documents=index.document_schemas(),
    )
    return format_python(code, "sdk/cedx/generated/xml.py").encode("utf-8")
