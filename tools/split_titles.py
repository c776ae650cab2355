"""Rewrite bilingual schema titles in spec/openapi.yaml: ``title: 中文 / English`` becomes
``title: English`` plus ``x-cedx-title-zh: 中文``.

Standard tools (openapi-python-client, datamodel-code-generator) name classes after titles, so
titles are English; cedx's docs, models and XSD read both and stay bilingual. The rewrite is
line-based (no reflow, no reordering) and idempotent; it checks that the parsed document differs
only by the split. `make check` refuses a bilingual title, so after merging a branch that adds
one, run:  .venv/bin/python tools/split_titles.py [path/to/openapi.yaml]
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path

import yaml

SPEC = Path(__file__).resolve().parent.parent / "spec" / "openapi.yaml"
# the value of a title: a double-quoted string, or plain text up to the next flow separator
TITLE = re.compile(r'(?P<lead>(?:^\s*|[{,]\s*)title: )(?P<value>"(?:[^"\\]|\\.)*"|[^,{}\n][^,}\n]*[^,}\n\s])')
PLAIN = re.compile(r"^[^\s\"'{}\[\],:#&*!|>%@`?-][^{}\[\],#\"]*$")


def _scalar(text: str) -> str:
    """YAML flow-safe form of a text: plain when unambiguous, else a JSON (YAML) string."""
    if PLAIN.match(text) and ": " not in text and not text.endswith(":"):
        return text
    return json.dumps(text, ensure_ascii=False)


def split(text: str) -> tuple[str, str] | None:
    if " / " not in text:
        return None
    zh, en = text.split(" / ", 1)
    return zh.strip(), en.strip()


def rewrite(source: str) -> str:
    out = []
    for line in source.split("\n"):
        if line.startswith("  title:"):  # info.title: the document's own bilingual name
            out.append(line)
            continue
        block = re.match(r"^(\s+)title: (.+)$", line)
        if block and not block.group(2).startswith(("{", "[")):  # block style: the rest of the line
            raw = block.group(2).strip()
            value = json.loads(raw) if raw.startswith('"') else raw
            parts = split(value)
            if parts:
                indent = block.group(1)
                out.append(f"{indent}title: {_scalar(parts[1])}\n{indent}x-cedx-title-zh: {_scalar(parts[0])}")
                continue
        def repl(m: re.Match) -> str:
            raw = m.group("value")
            value = json.loads(raw) if raw.startswith('"') else raw
            parts = split(value)
            if parts is None:
                return m.group(0)
            zh, en = parts
            lead = m.group("lead")
            return f"{lead}{_scalar(en)}, x-cedx-title-zh: {_scalar(zh)}"
        out.append(TITLE.sub(repl, line))
    return "\n".join(out)


def _expected(node):
    """The old tree with every bilingual schema title split (what the rewrite must produce)."""
    if isinstance(node, dict):
        new = {}
        for k, v in node.items():
            new[k] = _expected(v)
        title = node.get("title")
        if isinstance(title, str) and split(title) and "x-cedx-title-zh" not in node:
            zh, en = split(title)
            new["title"], new["x-cedx-title-zh"] = en, zh
        return new
    if isinstance(node, list):
        return [_expected(v) for v in node]
    return node


def main() -> int:
    spec = Path(sys.argv[1]) if len(sys.argv) > 1 else SPEC
    before = spec.read_text(encoding="utf-8")
    after = rewrite(before)
    old, new = yaml.safe_load(before), yaml.safe_load(after)
    expected = _expected(copy.deepcopy(old))
    expected["info"]["title"] = old["info"]["title"]
    expected["info"].pop("x-cedx-title-zh", None)
    if new != expected:
        print("split_titles: the rewrite changed more than the titles; nothing written", file=sys.stderr)
        return 1
    if after != before:
        spec.write_text(after, encoding="utf-8")
    print(f"split_titles: {before.count(' / ') - after.count(' / ')} bilingual titles split")
    return 0


if __name__ == "__main__":
    sys.exit(main())
