"""python -m generator [generate|check]

generate  (default) write every generated file
check     regenerate in memory; exit 1 with a unified diff when committed files are stale,
          and run the XSD-vs-JSON-Schema drift check
diff OLD NEW  changes between two spec versions, classified compatible / breaking
strip-examples  reduce spec/examples/*.json to their source form (signatures: signingTime only)
"""

from __future__ import annotations

import difflib
import json
import sys
import time

from cedx.spec.schema import SchemaIndex

from .drift import check_drift
from .pipeline import GENERATED, REPO, build


def orphans(files: dict[str, bytes]) -> list[str]:
    """Files in the generated folder that the generator no longer makes (a renamed example…)."""
    return sorted(rel for path in (REPO / GENERATED).rglob("*")
                  if path.is_file() and "__pycache__" not in path.parts
                  and (rel := path.relative_to(REPO).as_posix()) not in files)


def generate() -> int:
    start = time.perf_counter()
    files = build()
    changed = 0
    for rel in orphans(files):
        (REPO / rel).unlink()
        changed += 1
    for rel, data in sorted(files.items()):
        path = REPO / rel
        if path.exists() and path.read_bytes() == data:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        changed += 1
    print(f"generator: {len(files)} files, {changed} changed, {time.perf_counter() - start:.1f} s")
    return 0


def check() -> int:
    files = build()
    stale = []
    for rel, data in sorted(files.items()):
        path = REPO / rel
        current = path.read_bytes() if path.exists() else b""
        if current != data:
            stale.append(rel)
            diff = difflib.unified_diff(
                current.decode("utf-8", "replace").splitlines(),
                data.decode("utf-8", "replace").splitlines(),
                f"{rel} (committed)", f"{rel} (generated)", lineterm="", n=1,
            )
            for i, line in enumerate(diff):
                if i >= 40:
                    print("  ...")
                    break
                print(line)
    for rel in orphans(files):
        stale.append(rel)
        print(f"{rel}: no longer generated")
    if stale:
        print(f"generator check: {len(stale)} generated file(s) are stale; run `make generate`",
              file=sys.stderr)
        return 1
    drift = check_drift(SchemaIndex(json.loads(files["sdk/cedx/generated/openapi.json"])),
                        (REPO / GENERATED / "cedx.xsd").read_bytes())
    for line in drift:
        print(f"drift: {line}", file=sys.stderr)
    if drift:
        return 1
    print(f"generator check: {len(files)} generated files are up to date; XSD and JSON Schemas agree")
    return 0


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "generate"
    if command == "generate":
        return generate()
    if command == "check":
        return check()
    if command == "strip-examples":
        from .examples import example_json_bytes, source_form

        for path in sorted((REPO / "spec" / "examples").glob("*.json")):
            text = example_json_bytes(source_form(json.loads(path.read_text(encoding="utf-8"))))
            if path.read_bytes() != text:
                path.write_bytes(text)
                print(f"stripped {path.relative_to(REPO)}")
        return 0
    if command == "diff":
        from .diff import main as diff_main

        return diff_main(argv[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
