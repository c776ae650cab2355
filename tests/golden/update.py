"""Regenerate the golden tree after an intended generator change:

    .venv/bin/python -m tests.golden.update

then review `git diff tests/golden/expected` like any other change.
"""

from __future__ import annotations

import shutil

from generator.pipeline import REPO, build

GOLDEN = REPO / "tests" / "golden"
EXPECTED = GOLDEN / "expected"
PKI = REPO / "spec" / "examples" / "pki"


def golden_files() -> dict[str, bytes]:
    return build(GOLDEN, pki_dir=PKI)


def main() -> None:
    if EXPECTED.exists():
        shutil.rmtree(EXPECTED)
    for rel, data in golden_files().items():
        path = EXPECTED / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    print(f"golden tree written to {EXPECTED}")


if __name__ == "__main__":
    main()
