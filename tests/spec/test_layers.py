"""One-way flow: spec/ → generator → cedx.generated → the rest. The generator and the layers the
generated code builds on (cedx.runtime, cedx.spec, cedx.trust) never import generated modules —
not even lazily inside a function — nor the inspector."""

from __future__ import annotations

import ast

import pytest

from generator.pipeline import REPO

FORBIDDEN = ("cedx.generated", "cedx.inspect")


def _imports(path):
    """Absolute names of every module a file imports, anywhere in it."""
    package = path.relative_to(REPO / "sdk").with_suffix("").parts[:-1] if "sdk" in path.parts else ()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
                yield module
                yield from (f"{module}.{alias.name}" for alias in node.names)
            else:
                yield node.module or ""


@pytest.mark.parametrize("folder", ["generator", "sdk/cedx/runtime", "sdk/cedx/spec", "sdk/cedx/trust"])
def test_layer_does_not_import_generated_code(folder):
    offenders = [f"{path.relative_to(REPO)}: {name}" for path in sorted((REPO / folder).rglob("*.py"))
                 for name in _imports(path) if name.startswith(FORBIDDEN)]
    assert not offenders, offenders


def test_the_check_sees_relative_imports():
    # the outbox used to import ..generated.operations inside a method
    sample = REPO / "sdk" / "cedx" / "acquisition" / "source.py"
    assert any(name.startswith("cedx.generated") for name in _imports(sample))


def test_instant_pattern_is_the_specs(bundled):
    from cedx.instants import INSTANT_PATTERN

    assert INSTANT_PATTERN.pattern == bundled["components"]["schemas"]["DateTime"]["pattern"]


def test_shared_helpers_are_defined_once():
    # UTC+8 and the instant pattern live in cedx.instants; a second definition drifts
    needles = ("timedelta(hours=8))", "T\\d{2}:\\d{2}:\\d{2}", "T[0-9]{2}:[0-9]{2}:[0-9]{2}(")
    home = REPO / "sdk" / "cedx" / "instants.py"
    offenders = [f"{path.relative_to(REPO)}: {needle}"
                 for folder in ("sdk/cedx", "generator") for path in sorted((REPO / folder).rglob("*.py"))
                 if path != home and "generated" not in path.parts
                 for needle in needles if needle in path.read_text(encoding="utf-8")]
    assert not offenders, offenders


# Modules mypy --strict may skip (pyproject [tool.mypy] overrides): none since issue 10.8 was done.
MYPY_EXEMPT: set[str] = set()


def test_mypy_strict_exempts_nothing_new():
    """`make check` runs mypy --strict over sdk/cedx and generator/ (issue 10.8); an override that
    relaxes it for a module must not come back once the module is typed."""
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert config["strict"] is True and set(config["files"]) == {"sdk/cedx", "generator"}
    exempt = set()
    for override in config.get("overrides", []):
        modules = override["module"]
        exempt |= {modules} if isinstance(modules, str) else set(modules)
    assert exempt <= MYPY_EXEMPT, sorted(exempt - MYPY_EXEMPT)
