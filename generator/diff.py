"""`python -m generator diff OLD NEW`: changes between two spec versions, classified.

OLD and NEW are spec/ directories (or bundled openapi.json files). A change is BREAKING when a
client or server written against OLD can fail against NEW (something removed, newly required,
narrowed, or a new quality rule); otherwise it is compatible.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from .bundle import bundle_core
from .load import load_spec

METHODS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True)
class Change:
    breaking: bool
    where: str
    what: str

    def __str__(self) -> str:
        return f"{'BREAKING  ' if self.breaking else 'compatible'} {self.where}: {self.what}"


def load(path: Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_file() and path.suffix == ".json":
        return cast(dict[str, Any], json.loads(path.read_text(encoding="utf-8")))
    return bundle_core(load_spec(path.parent if path.is_file() else path))


def _ops(doc: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {op["operationId"]: (m.upper(), p, op) for p, item in doc["paths"].items()
            for m, op in item.items() if m in METHODS}


def _param_names(item_params: list[Any], op: dict[str, Any], doc: dict[str, Any]) -> dict[str, bool]:
    out = {}
    for p in item_params + op.get("parameters", []):
        if "$ref" in p:
            p = doc["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]
        out[p["name"]] = bool(p.get("required"))
    return out


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    changes: list[Change] = []
    add = changes.append
    old_ops, new_ops = _ops(old), _ops(new)
    for op_id in sorted(old_ops.keys() - new_ops.keys()):
        add(Change(True, f"operation {op_id}", "removed"))
    for op_id in sorted(new_ops.keys() - old_ops.keys()):
        m, p, _ = new_ops[op_id]
        add(Change(False, f"operation {op_id}", f"added ({m} {p})"))
    for op_id in sorted(old_ops.keys() & new_ops.keys()):
        (om, op_, oo), (nm, np_, no) = old_ops[op_id], new_ops[op_id]
        where = f"operation {op_id}"
        if (om, op_) != (nm, np_):
            add(Change(True, where, f"moved from {om} {op_} to {nm} {np_}"))
        oparams = _param_names(old["paths"][op_].get("parameters", []), oo, old)
        nparams = _param_names(new["paths"][np_].get("parameters", []), no, new)
        for name in sorted(oparams.keys() - nparams.keys()):
            add(Change(True, where, f"parameter {name} removed"))
        for name in sorted(nparams.keys() - oparams.keys()):
            add(Change(nparams[name], where, f"parameter {name} added ({'required' if nparams[name] else 'optional'})"))
        for name in sorted(oparams.keys() & nparams.keys()):
            if nparams[name] and not oparams[name]:
                add(Change(True, where, f"parameter {name} became required"))
        getter: Callable[[dict[str, Any]], dict[str, Any]]
        for label, getter in (("request", lambda o: o.get("requestBody", {}).get("content", {})),
                              ("response", lambda o: next((r.get("content", {}) for s, r in o["responses"].items() if s.startswith("2")), {}))):
            gone = set(getter(oo)) - set(getter(no))
            if gone:
                add(Change(True, where, f"{label} media types removed: {', '.join(sorted(gone))}"))
    changes += _schema_changes(old["components"]["schemas"], new["components"]["schemas"])
    changes += _table_changes(old, new)
    return changes


def _ref(schema: dict[str, Any]) -> str | None:
    return schema.get("$ref", "").rsplit("/", 1)[-1] or None


def _schema_changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    out = []
    for name in sorted(old.keys() - new.keys()):
        out.append(Change(True, f"schema {name}", "removed"))
    for name in sorted(new.keys() - old.keys()):
        out.append(Change(False, f"schema {name}", "added"))
    for name in sorted(old.keys() & new.keys()):
        o, n = old[name], new[name]
        where = f"schema {name}"
        if o.get("type") != n.get("type"):
            out.append(Change(True, where, f"type {o.get('type')} -> {n.get('type')}"))
        oe, ne = set(map(str, o.get("enum", []))), set(map(str, n.get("enum", [])))
        if oe - ne:
            out.append(Change(True, where, f"enum values removed: {', '.join(sorted(oe - ne))}"))
        if ne - oe and oe:
            out.append(Change(False, where, f"enum values added: {', '.join(sorted(ne - oe))}"))
        if o.get("pattern") != n.get("pattern") and "pattern" in n:
            out.append(Change(True, where, "pattern changed"))
        oprops, nprops = o.get("properties", {}), n.get("properties", {})
        oreq, nreq = set(o.get("required", [])), set(n.get("required", []))
        for prop in sorted(oprops.keys() - nprops.keys()):
            out.append(Change(True, where, f"property {prop} removed"))
        for prop in sorted(nprops.keys() - oprops.keys()):
            req = prop in nreq
            out.append(Change(req, where, f"property {prop} added ({'required' if req else 'optional'})"))
        for prop in sorted(oprops.keys() & nprops.keys()):
            if prop in nreq and prop not in oreq:
                out.append(Change(True, where, f"property {prop} became required"))
            if _ref(oprops[prop]) != _ref(nprops[prop]) or oprops[prop].get("type") != nprops[prop].get("type"):
                out.append(Change(True, where, f"property {prop} changed type"))
            ou, nu = set(oprops[prop].get("x-cedx-units", [])), set(nprops[prop].get("x-cedx-units", []))
            if ou - nu:
                out.append(Change(True, where, f"property {prop} no longer allows units {', '.join(sorted(ou - nu))}"))
    return out


def _table_changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    out = []
    orules = {r["id"]: r for r in old.get("x-cedx-rules", {}).get("rules", [])}
    nrules = {r["id"]: r for r in new.get("x-cedx-rules", {}).get("rules", [])}
    for rid in sorted(nrules.keys() - orules.keys()):
        out.append(Change(True, f"rule {rid}", "added (documents valid before may now be refused)"))
    for rid in sorted(orules.keys() - nrules.keys()):
        out.append(Change(False, f"rule {rid}", "removed"))
    for rid in sorted(orules.keys() & nrules.keys()):
        for key in ("check", "when", "forEach", "appliesTo", "tolerance"):
            if orules[rid].get(key) != nrules[rid].get(key):
                out.append(Change(True, f"rule {rid}", f"{key} changed"))
    for table, key in (("x-cedx-units", "code"), ("x-cedx-error-codes", "code")):
        ocodes = {e[key] for e in old.get(table, [])}
        ncodes = {e[key] for e in new.get(table, [])}
        for code in sorted(ocodes - ncodes):
            out.append(Change(True, f"{table[7:]} {code}", "removed"))
        for code in sorted(ncodes - ocodes):
            out.append(Change(False, f"{table[7:]} {code}", "added"))
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m generator diff OLD NEW   (spec/ directories or openapi.json files)")
        return 2
    changes = diff(load(Path(argv[0])), load(Path(argv[1])))
    for change in changes:
        print(change)
    breaking = sum(c.breaking for c in changes)
    print(f"{len(changes)} change(s), {breaking} breaking")
    return 0
