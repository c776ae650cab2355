"""Generated from spec/ by `python -m generator` — do not edit.

Modules: constants (the spec's facts: version, industries, error statuses, operations), models
(pydantic v2 models of every schema), client (typed clients per interface), server
(abstract services and FastAPI routers), operations (metadata shared by both), xml (XML ⇄
models, through the spec-driven cedx.spec.xmlcodec). Data files: openapi.json (the bundled
specification), cedx.xsd (the derived XML Schema, normative), reference.html (the interface
reference) and examples/ (the spec's examples, signed, in JSON and XML).
"""
