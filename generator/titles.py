"""Bilingual titles: the spec gives schemas English ``title``s (standard tools name classes after
them) with the Chinese in ``x-cedx-title-zh``; cedx's docs, models and XSD show both."""

from __future__ import annotations

from typing import Any

ZH = "x-cedx-title-zh"


def bilingual(schema: dict[str, Any], default: str = "") -> str:
    """"中文 / English" for a schema node (or its English title alone when it has no Chinese)."""
    en = schema.get("title") or default
    zh = schema.get(ZH)
    return f"{zh} / {en}" if zh and en else en


def rejoin(node: Any) -> Any:
    """A copy of ``node`` whose titles are bilingual again (for tools that show one title)."""
    if isinstance(node, dict):
        out = {k: rejoin(v) for k, v in node.items() if k != ZH}
        if ZH in node and isinstance(node.get("title"), str):
            out["title"] = bilingual(node)
        return out
    if isinstance(node, list):
        return [rejoin(v) for v in node]
    return node
