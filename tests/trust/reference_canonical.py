"""The canonical form as cedx computed it before the single-pass rewrite (commit 66574da,
sdk/cedx/trust/canonical.py, kept verbatim below this docstring): the reference that
tests/trust/test_canonical.py compares the current implementation with, byte for byte, and
that bench/canonical.py measures as the "before" anchor. Not used by cedx itself.
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import rfc8785

# cedx.instants.INSTANT_PATTERN with groups; fraction digits unbounded here so that a tenth
# digit is seen and refused rather than not matching; ASCII digits only ([0-9], not \d).
_INSTANT = re.compile(
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2})T([0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]+))?(Z|[+-][0-9]{2}:[0-9]{2})$"
)
MAX_FRACTION_DIGITS = 9
ITEMS = "[]"  # tree key for array items
ANY_KEY = "*"  # tree key for additionalProperties members

# A path tree: key -> subtree, or True where the member is an instant.
InstantTree = dict


class CanonicalizationError(ValueError):
    """A value cannot be represented in a logical record; ``path`` says where."""

    def __init__(self, message: str, path: str):
        super().__init__(f"{path}: {message}")
        self.path = path


def format_instant(value: _dt.datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetime (no UTC offset)")
    utc = value.astimezone(_dt.timezone.utc)
    text = utc.replace(tzinfo=None).isoformat(timespec="seconds")  # YYYY zero-padded (strftime: not on glibc)
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def canonical_instant(text: str) -> str:
    """The canonical form of an RFC 3339 instant string (see the module docstring).

    The fraction is carried as text, so nanosecond digits survive; the offset is whole
    minutes, so converting to UTC never touches the fraction.
    """
    m = _INSTANT.match(text)
    if not m:
        raise ValueError("not an RFC 3339 instant with an explicit offset")
    date_part, clock, fraction, offset = m.groups()
    fraction = fraction or ""
    if len(fraction) > MAX_FRACTION_DIGITS:
        raise ValueError(f"more than {MAX_FRACTION_DIGITS} fraction digits (refused, not truncated)")
    base = _dt.datetime.fromisoformat(f"{date_part}T{clock}")  # validates the calendar; no leap second
    if offset != "Z":
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            raise ValueError(f"invalid offset {offset}")
        delta = _dt.timedelta(hours=hours, minutes=minutes)
        base = base - delta if offset[0] == "+" else base + delta
    fraction = fraction.rstrip("0")
    return base.isoformat(timespec="seconds") + (f".{fraction}" if fraction else "") + "Z"


def _already_canonical(text: str) -> bool:
    """A UTC instant already in canonical form needs no rewriting — the common case."""
    if not text.endswith("Z") or len(text) < 20:
        return False
    try:
        _dt.datetime.fromisoformat(text[:19])  # still validates the calendar (C speed)
    except ValueError:
        return False  # the full path reports it
    if len(text) == 20:
        return text[10] == "T"
    fraction = text[20:-1]
    return (text[10] == "T" and text[19] == "." and 1 <= len(fraction) <= MAX_FRACTION_DIGITS
            and fraction.isdigit() and not fraction.endswith("0"))


# --------------------------------------------------------------------------- instant paths
def _is_instant_schema(schema: dict) -> bool:
    ref = schema.get("$ref", "")
    return ref.endswith("/DateTime") or (schema.get("type") == "string" and schema.get("format") == "date-time")


def _walk(schema: Any, spec: dict, path: tuple, out: dict[tuple, bool], seen: tuple) -> None:
    """Record every string-typed leaf path: True for instants, False for other strings."""
    if not isinstance(schema, dict):
        return
    if _is_instant_schema(schema):
        out[path] = out.get(path, False) or True
        return
    ref = schema.get("$ref")
    if ref:
        if ref in seen:
            return
        target: Any = spec
        for part in ref.lstrip("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        _walk(target, spec, path, out, seen + (ref,))
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key) or []:
            _walk(sub, spec, path, out, seen)
    if schema.get("type") == "string" and path not in out:
        out[path] = False
    for name, sub in (schema.get("properties") or {}).items():
        _walk(sub, spec, path + (name,), out, seen)
    if isinstance(schema.get("additionalProperties"), dict):
        _walk(schema["additionalProperties"], spec, path + (ANY_KEY,), out, seen)
    if isinstance(schema.get("items"), dict):
        _walk(schema["items"], spec, path + (ITEMS,), out, seen)


def instant_tree(spec: dict, roots: Iterable[str] | None = None) -> InstantTree:
    """Paths of the ``DateTime`` members of the signed documents of ``spec`` (see above).

    ``roots`` are schema names (default: every schema with ``x-cedx-signed``). Raises
    ValueError when one path is an instant in one root and another string in another.
    """
    schemas = spec.get("components", {}).get("schemas", {})
    names = list(roots) if roots is not None else [n for n, s in schemas.items() if "x-cedx-signed" in s]
    kinds: dict[tuple, set[bool]] = {}
    origin: dict[tuple, list[str]] = {}
    for name in names:
        found: dict[tuple, bool] = {}
        _walk(schemas[name], spec, (), found, (f"#/components/schemas/{name}",))
        for p, is_instant in found.items():
            kinds.setdefault(p, set()).add(is_instant)
            origin.setdefault(p, []).append(name)
    conflicts = sorted(".".join(p) for p, k in kinds.items() if len(k) > 1)
    if conflicts:
        raise ValueError("paths that are an instant in one signed document and another string in "
                         f"another (rename one): {', '.join(conflicts)}")
    tree: InstantTree = {}
    for p, k in kinds.items():
        if True not in k or not p:
            continue
        node = tree
        for part in p[:-1]:
            node = node.setdefault(part, {})
            if node is True:  # pragma: no cover - a string cannot have members
                break
        else:
            node[p[-1]] = True
    return tree


_default_tree: InstantTree | None = None


def default_instants() -> InstantTree:
    """The instant paths of cedx's own bundled spec (loaded once, on first use)."""
    global _default_tree
    if _default_tree is None:
        from cedx import spec  # late: the trust layer itself does not depend on the spec

        _default_tree = instant_tree(spec.bundled_spec())
    return _default_tree


def _child(node: Any, key: str) -> Any:
    if not isinstance(node, dict):
        return None
    return node.get(key) or node.get(ANY_KEY)


def format_decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError("decimal must be finite")
    return format(value, "f")


def to_logical(value: Any, path: str = "$", *, normalize: bool = False,
               instants: InstantTree | None = None) -> Any:
    """Convert Python values (models, Decimals, datetimes, enums) into a logical record.

    ``datetime`` values become canonical UTC instants; strings keep their lexical form (an
    instant keeps its offset) unless ``normalize`` is set, which rewrites the members
    ``instants`` marks (a path tree, see ``instant_tree``) into canonical UTC instants.
    ``canonicalize`` always normalizes.
    """
    if hasattr(value, "model_dump"):  # pydantic models, without importing pydantic here
        value = value.model_dump(mode="json", by_alias=True, exclude_none=True)
    try:
        return _logical(value, normalize, instants)
    except _Located as exc:  # the path is built only for an error, on the way out
        raise CanonicalizationError(exc.message, path + "".join(reversed(exc.steps))) from exc.__cause__


class _Located(Exception):
    """A canonicalization error on its way up; each level adds its step to the path (building a
    path string for every member instead costs a third of canonicalizing a large report)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message, self.steps = message, []


def _logical(value: Any, normalize: bool, node: Any) -> Any:
    """``node``: this member's place in the instant tree (True: a DateTime member)."""
    if isinstance(value, str):
        if normalize and node is True and not _already_canonical(value):
            try:
                return canonical_instant(value)
            except ValueError as exc:
                raise _Located(f"invalid instant {value!r}: {exc}") from exc
        return value
    if value is None or isinstance(value, bool) or isinstance(value, int):
        return value
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise _Located("object keys must be strings")
            try:
                out[k] = _logical(v, normalize, _child(node, k))
            except _Located as exc:
                exc.steps.append(f".{k}")
                raise
        return out
    if isinstance(value, (list, tuple)):
        item = _child(node, ITEMS)
        out_list = []
        for i, v in enumerate(value):
            try:
                out_list.append(_logical(v, normalize, item))
            except _Located as exc:
                exc.steps.append(f"[{i}]")
                raise
        return out_list
    if isinstance(value, float):
        raise _Located("binary float; decimals must travel as strings")
    if isinstance(value, Decimal):
        try:
            return format_decimal(value)
        except ValueError as exc:
            raise _Located(str(exc)) from exc
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise _Located("naive datetime (no UTC offset)")
        return format_instant(value)  # typed as an instant by Python, wherever it is
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return _logical(value.value, normalize, node)
    if hasattr(value, "model_dump"):
        dumped = value.model_dump(mode="json", by_alias=True, exclude_none=True)
        return _logical(dumped, normalize, node)
    raise _Located(f"unsupported type {type(value).__name__}")


_I_JSON_MAX = 2**53 - 1


def _fast_path_ok(value: Any) -> bool:
    """True when json.dumps gives the RFC 8785 bytes: ASCII keys only (so code-point order is
    UTF-16 order), no floats, integers inside the I-JSON range."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            for k, item in v.items():
                if not k.isascii():
                    return False
                stack.append(item)
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, bool) or v is None or isinstance(v, str):
            continue
        elif isinstance(v, int):
            if abs(v) > _I_JSON_MAX:
                return False
        else:
            return False
    return True


def canonicalize(value: Any, *, instants: InstantTree | None = None) -> bytes:
    """RFC 8785 bytes of the logical record of ``value``.

    ``instants`` (default: ``default_instants()``, the signed documents of cedx's spec) says
    which members are instants; pass ``{}`` to rewrite no string at all.

    The logical data model has no floats, so for ASCII object keys the C-accelerated json.dumps
    (sorted keys, no whitespace, UTF-8 literals; control characters escaped as RFC 8785 does) is
    byte-identical to RFC 8785 and several times faster; anything else goes through rfc8785.
    The test suite compares both on every example and on adversarial strings.
    """
    logical = to_logical(value, normalize=True, instants=default_instants() if instants is None else instants)
    if _fast_path_ok(logical):
        return json.dumps(logical, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    try:
        return rfc8785.dumps(logical)
    except rfc8785.IntegerDomainError as exc:
        raise CanonicalizationError(f"integer outside the I-JSON range: {exc}", "$") from exc
