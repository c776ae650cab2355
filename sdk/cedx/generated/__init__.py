"""Generated from spec/ by `python -m generator` — do not edit.

Modules: constants, models, client, server, operations, xml. Data: openapi.json (bundled spec),
cedx.xsd (normative XML Schema), reference.html, examples/ (signed JSON, every XML form).
"""
