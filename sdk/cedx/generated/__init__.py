"""Generated from spec/ by `python -m generator` — do not edit.

Modules: models (pydantic v2 models of every schema). Data files: openapi.json (the bundled
specification) and cedx.xsd (the derived XML Schema).
"""
