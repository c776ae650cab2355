"""Step 1: read spec/ (the OpenAPI document, its tables and the JSON examples)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .strict import check_source


@dataclass
class SpecSource:
    root: Path                     # the spec/ directory
    document: dict[str, Any]                 # openapi.yaml as written
    tables: dict[str, Any]      # name → table content (units, errorCodes, rules)
    examples: dict[str, Any]    # file name → parsed JSON example


def load_spec(spec_dir: Path) -> SpecSource:
    spec_dir = Path(spec_dir)
    document = yaml.safe_load((spec_dir / "openapi.yaml").read_text(encoding="utf-8"))
    tables = {}
    for name, rel in document.get("x-cedx-tables", {}).items():
        tables[name] = yaml.safe_load((spec_dir / rel).read_text(encoding="utf-8"))
    check_source(document, tables)  # before anything reads a stray key as data
    examples = {}
    for path in sorted((spec_dir / "examples").glob("*.json")):
        examples[path.name] = json.loads(path.read_text(encoding="utf-8"))
    return SpecSource(spec_dir, document, tables, examples)
