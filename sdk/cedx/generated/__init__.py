"""Generated from spec/ by `python -m generator` — do not edit.

Data files: openapi.json (the bundled specification) and cedx.xsd (the derived XML Schema).
"""
