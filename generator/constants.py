"""Step: sdk/cedx/generated/constants.py — the spec's facts (cedx.spec.facts) as constants."""

from __future__ import annotations

from cedx.spec.facts import spec_facts
from cedx.spec.schema import SchemaIndex

from .pyformat import format_python
from .render import CODE_HEADER, environment


def generate_constants(index: SchemaIndex) -> bytes:
    facts = spec_facts(index)
    code = environment().get_template("constants.py.j2").render(
        header=CODE_HEADER, facts=facts,
        section_of={code: section for section, code in facts.industry_sections.items()},
    )
    return format_python(code, "sdk/cedx/generated/constants.py").encode("utf-8")
