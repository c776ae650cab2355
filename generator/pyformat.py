"""Format generated Python with the project's own ruff configuration (lint fixes, then format),
so generated code passes `make check` exactly as it is written."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _ruff() -> str:
    local = Path(sys.executable).parent / "ruff"
    return str(local) if local.exists() else (shutil.which("ruff") or "ruff")


def format_python(code: str, filename: str) -> str:
    for args in (["check", "--fix", "--exit-zero", "--quiet"], ["format", "--quiet"]):
        proc = subprocess.run(
            [_ruff(), *args, "--stdin-filename", filename, "-"],
            input=code, capture_output=True, text=True, cwd=REPO, check=True,
        )
        code = proc.stdout
    return code
