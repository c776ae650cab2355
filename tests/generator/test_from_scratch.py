"""Generation depends only on spec/, templates/ and the hand-written SDK: in a copy of the
repository whose sdk/cedx/generated/ was deleted, `python -m generator generate` recreates every
generated file byte for byte, without importing cedx.generated or cedx.inspect."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from generator.pipeline import REPO

# Runs the generator with imports of generated code (or of code that needs it) refused, so a
# new dependency fails here even where a stale installed copy could have satisfied it.
_RUN = """
import sys
from importlib.abc import MetaPathFinder

class Refuse(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[:2] in (["cedx", "generated"], ["cedx", "inspect"]):
            raise ImportError(f"the generator must not import {name}")
        return None

sys.meta_path.insert(0, Refuse())
import cedx
assert cedx.__file__.startswith(sys.argv[1]), cedx.__file__
from generator.__main__ import main
sys.exit(main(["generate"]))
"""


def _files(root: Path, sub: str) -> dict[str, bytes]:
    base = root / sub
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(base.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def test_generate_from_a_tree_without_generated_code(tmp_path):
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copy2(REPO / "pyproject.toml", tmp_path / "pyproject.toml")  # ruff formats generated code
    for name in ("spec", "generator", "templates", "sdk", "docs"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=ignore)
    shutil.rmtree(tmp_path / "sdk" / "cedx" / "generated")
    (tmp_path / "docs" / "reference.md").unlink()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "sdk"), str(tmp_path)])}
    proc = subprocess.run([sys.executable, "-c", _RUN, str(tmp_path / "sdk")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for sub in ("sdk/cedx/generated", "spec", "docs"):
        made, committed = _files(tmp_path, sub), _files(REPO, sub)
        assert sorted(made) == sorted(committed), sub
        differing = [name for name in made if made[name] != committed[name]]
        assert not differing, differing


def test_example_sources_hold_no_derived_fields():
    """spec/examples/*.json are what a person writes; signatures are the generator's."""
    import json

    from generator.examples import source_form

    stale = [p.name for p in sorted((REPO / "spec" / "examples").glob("*.json"))
             if (doc := json.loads(p.read_text(encoding="utf-8"))) != source_form(doc)]
    assert not stale, f"{stale}: run `python -m generator strip-examples`"
