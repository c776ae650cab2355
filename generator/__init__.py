"""cedx generator: spec/ → bundled spec, XSD, XML examples, SDK code and docs.

A pipeline of small steps (see ``pipeline.py``); each step is a pure function from the loaded
specification to file contents, so ``make generate`` is deterministic and ``make check`` can
regenerate into memory and compare with what is committed.
"""
