"""Canonical bytes of a logical record: what every cedx signature covers (profile cedx-jcs-1).

A logical record is the JSON data model of a document (objects, arrays, strings, integers,
booleans, null), independent of whether it travelled as JSON or XML. Its canonical form is
RFC 8785 (JCS) after exactly two transformations, each chosen by the *schema type* of a member,
never by what a string looks like:

* decimal quantities are strings (``Decimal`` values become their plain positional string);
  binary floats are refused, since they cannot carry an exact decimal;
* a member whose schema is ``DateTime`` (an RFC 3339 instant) is rewritten in UTC:
  ``YYYY-MM-DDThh:mm:ss[.f]Z`` where the fraction keeps every digit that was sent (up to nine)
  except trailing zeros, and is omitted when it is all zeros. More than nine fraction digits
  are refused, never cut. A free-text member that happens to look like a time is left as sent.

Which members are ``DateTime`` comes from the spec: ``instant_tree`` walks every signed-document
schema (``x-cedx-signed``) and returns the paths of its instants, merged over all signed
documents (the merge is refused when one path is an instant in one document and another string
in another, so the merged tree equals the per-schema rule). Python ``datetime`` values are
instants by their type wherever they appear; naive datetimes are refused.

How it is computed (docs/trust-profile.md §1 is the rule; this is only the fast way to it). A
record parsed from JSON — the common case, e.g. every document a platform receives — takes three
steps, none of which copies the document:

1. one type check over the tree (only JSON types, string keys, integers within I-JSON);
2. instant rewriting that visits only the paths of the instant tree (the per-schema plan) and
   copies just the containers on the way to an instant that actually changes — an instant
   already in canonical UTC form, the usual case, changes nothing;
3. one pass of a C JSON encoder (orjson when the ``fast`` extra is installed, else the json
   module's, with identical bytes: sorted keys, no whitespace, UTF-8 literals, control characters
   escaped exactly as RFC 8785 does). Its key order is by code point, which equals RFC 8785's
   UTF-16 order unless a key holds a supplementary-plane character; such documents (found in
   step 1) have their objects put in UTF-16 order first and are encoded unsorted.

Anything else (pydantic models, ``Decimal``, ``datetime``, enums, tuples, subclasses of the JSON
types) is first converted by ``to_logical`` into such a record. tests/trust/test_canonical.py
checks this module byte for byte against the implementation it replaced and against the
rfc8785 package, on every example and on generated documents.
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Union

from .. import _optional as optional

# cedx.instants.INSTANT_PATTERN with groups; fraction digits unbounded here so that a tenth
# digit is seen and refused rather than not matching; ASCII digits only ([0-9], not \d).
_INSTANT = re.compile(
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2})T([0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]+))?(Z|[+-][0-9]{2}:[0-9]{2})$"
)
MAX_FRACTION_DIGITS = 9
ITEMS = "[]"  # tree key for array items
ANY_KEY = "*"  # tree key for additionalProperties members

# A path tree: key -> subtree, or True where the member is an instant.
InstantTree = dict[str, Union[bool, "InstantTree"]]
# A place in the tree: a subtree, True (an instant), or None/False (nothing to rewrite below).
InstantNode = bool | InstantTree | None


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
        try:
            base = base - delta if offset[0] == "+" else base + delta
        except OverflowError:  # 0001-01-01T00:00:00+08:00 is in year 0 in UTC: no canonical form
            raise ValueError("the instant in UTC is outside the years 0001 to 9999") from None
    fraction = fraction.rstrip("0")
    return base.isoformat(timespec="seconds") + (f".{fraction}" if fraction else "") + "Z"


def _already_canonical(text: str) -> bool:
    """A UTC instant already in canonical form needs no rewriting — the common case."""
    if not text.endswith("Z") or len(text) < 20:
        return False
    if not (text[4] == text[7] == "-" and text[13] == text[16] == ":"):
        return False  # fromisoformat also reads week dates ("2024-W01-1") and basic formats
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
def _is_instant_schema(schema: dict[str, Any]) -> bool:
    ref = schema.get("$ref", "")
    return bool(ref.endswith("/DateTime")
                or (schema.get("type") == "string" and schema.get("format") == "date-time"))


def _walk(schema: Any, spec: dict[str, Any], path: tuple[str, ...], out: dict[tuple[str, ...], bool],
          seen: tuple[str, ...]) -> None:
    """Record every string-typed leaf path: True for instants, False for other strings."""
    if not isinstance(schema, dict):
        return
    if _is_instant_schema(schema):
        out[path] = True
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


def instant_tree(spec: dict[str, Any], roots: Iterable[str] | None = None) -> InstantTree:
    """Paths of the ``DateTime`` members of the signed documents of ``spec`` (see above).

    ``roots`` are schema names (default: every schema with ``x-cedx-signed``). Raises
    ValueError when one path is an instant in one root and another string in another.
    """
    schemas = spec.get("components", {}).get("schemas", {})
    names = list(roots) if roots is not None else [n for n, s in schemas.items() if "x-cedx-signed" in s]
    kinds: dict[tuple[str, ...], set[bool]] = {}
    for name in names:
        found: dict[tuple[str, ...], bool] = {}
        _walk(schemas[name], spec, (), found, (f"#/components/schemas/{name}",))
        for p, is_instant in found.items():
            kinds.setdefault(p, set()).add(is_instant)
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
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # pragma: no cover - a string cannot have members
                break
            node = child
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


def child_node(node: InstantNode, key: str) -> InstantNode:
    """The place in the instant tree of member ``key`` (or of array items, ``ITEMS``)."""
    if not isinstance(node, dict):
        return None
    return node.get(key) or node.get(ANY_KEY)


def format_decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError("decimal must be finite")
    return format(value, "f")


# --------------------------------------------------------------------------- Python -> logical
def to_logical(value: Any, path: str = "$", *, normalize: bool = False,
               instants: InstantNode = None) -> Any:
    """Convert Python values (models, Decimals, datetimes, enums) into a logical record (a copy
    made of exactly dict, list, str, int, bool and None).

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
        self.message = message
        self.steps: list[str] = []


def _instant(value: str) -> str:
    if _already_canonical(value):
        return value
    try:
        return canonical_instant(value)
    except ValueError as exc:
        raise _Located(f"invalid instant {value!r}: {exc}") from exc


def _logical(value: Any, normalize: bool, node: InstantNode) -> Any:
    """``node``: this member's place in the instant tree (True: a DateTime member)."""
    if isinstance(value, str):
        text = value if type(value) is str else str.__str__(value)  # exactly str (an enum's text)
        return _instant(text) if normalize and node is True else text
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if type(value) is int else int(value)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise _Located("object keys must be strings")
            try:
                out[k if type(k) is str else str.__str__(k)] = _logical(v, normalize, child_node(node, k))
            except _Located as exc:
                exc.steps.append(f".{k}")
                raise
        return out
    if isinstance(value, (list, tuple)):
        item = child_node(node, ITEMS)
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


# --------------------------------------------------------------------------- the fast path
_I_JSON_MAX = 2**53 - 1
_SUPPLEMENTARY = "\U00010000"

# What scan finds: a plain record (JSON types only, encodable as it is), one whose keys need
# UTF-16 ordering, or one that needs to_logical first (another type, or a key that is not a str).
PLAIN, UTF16_KEYS, NOT_PLAIN = 0, 1, 2


class OutOfRange(Exception):
    """An integer outside I-JSON's ±(2^53 − 1): located by a second, slow walk."""


def scan(value: Any) -> int:
    """Classify ``value`` (see PLAIN …) in one walk with no copying. Exact types only: a str or
    int subclass (an enum), tuple or dict subclass is NOT_PLAIN and goes through to_logical.
    Recursive on purpose: a reference cycle ends in RecursionError, as before."""
    t = type(value)
    if t is dict:
        try:
            keys = "".join(value)  # TypeError for a non-str key; one C pass for every key
        except TypeError:
            return NOT_PLAIN
        kind = PLAIN if keys.isascii() or max(keys) < _SUPPLEMENTARY else UTF16_KEYS
        members: Iterable[Any] = value.values()
    elif t is list:
        kind, members = PLAIN, value
    elif t is str or t is bool or value is None:
        return PLAIN
    elif t is int:
        if not -_I_JSON_MAX <= value <= _I_JSON_MAX:
            raise OutOfRange
        return PLAIN
    else:
        return NOT_PLAIN
    for v in members:
        tv = type(v)
        if tv is str:
            continue
        if tv is dict or tv is list:
            sub = scan(v)
            if sub == NOT_PLAIN:
                return NOT_PLAIN
            kind |= sub
        elif tv is int:
            if not -_I_JSON_MAX <= v <= _I_JSON_MAX:
                raise OutOfRange
        elif tv is not bool and v is not None:
            return NOT_PLAIN
    return kind


def _rewrite(value: Any, node: InstantNode, changes: list[tuple[str | None, str, str]] | None = None) -> Any:
    """Rewrite the instants of a plain record, visiting only the paths of ``node``; returns
    ``value`` itself when nothing changes, else a copy of just the containers that changed.
    ``changes``, if given, receives (member name or None for an array item, old, new) for every
    instant rewritten."""
    if node is True:
        return _instant(value) if type(value) is str else value
    if not node:
        return value
    assert isinstance(node, dict)
    t = type(value)
    if t is dict:
        wild = node.get(ANY_KEY)
        out: dict[str, Any] | None = None
        for k in (value if wild else [k for k in node if k in value]):
            v = value[k]
            try:
                new = _rewrite(v, node.get(k) or wild, changes)
            except _Located as exc:
                exc.steps.append(f".{k}")
                raise
            if new is not v:
                if out is None:
                    out = dict(value)
                out[k] = new
                if changes is not None and type(v) is str:
                    changes.append((k, v, new))
        return value if out is None else out
    if t is list:
        item = node.get(ITEMS) or node.get(ANY_KEY)
        if not item:
            return value
        out_list: list[Any] | None = None
        for i, v in enumerate(value):
            try:
                new = _rewrite(v, item, changes)
            except _Located as exc:
                exc.steps.append(f"[{i}]")
                raise
            if new is not v:
                if out_list is None:
                    out_list = list(value)
                out_list[i] = new
                if changes is not None and type(v) is str:
                    changes.append((None, v, new))
        return value if out_list is None else out_list
    return value


def _utf16_order(name: str) -> bytes:
    """RFC 8785 orders member names by their UTF-16 code units."""
    return name.encode("utf-16-be", "surrogatepass")


def _utf16_key(item: tuple[str, Any]) -> bytes:
    return _utf16_order(item[0])


def _utf16_sorted(value: Any) -> Any:
    """A copy of a plain record whose objects list their members in RFC 8785 (UTF-16) order."""
    if type(value) is dict:
        return {k: _utf16_sorted(v) for k, v in sorted(value.items(), key=_utf16_key)}
    if type(value) is list:
        return [_utf16_sorted(v) for v in value]
    return value


# RFC 8785 for the logical data model (no floats): sorted members, no whitespace, UTF-8
# literals, and the C encoder escapes exactly '"', '\' and U+0000-U+001F, as RFC 8785 does.
# No circular-reference bookkeeping: scan has walked the record already.
_SORTED = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), check_circular=False)
_IN_ORDER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)

# orjson (the `fast` extra) writes the same bytes for such a record — same escapes, key order by
# code point, UTF-8 — about ten times faster; tests/trust/test_canonical.py compares the two.
# The orjson module or None, imported on first use (importing the trust layer stays cheap).
_fast_encoder = optional.orjson


def _locate(value: Any, bad: Any, path: str = "$") -> str | None:
    """The path of the first member for which ``bad`` holds (slow; only to explain an error)."""
    if bad(value):
        return path
    items: Iterable[tuple[str, Any]] = ()
    if isinstance(value, dict):
        items = ((f"{path}.{k}", v) for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    for sub_path, v in items:
        found = _locate(v, bad, sub_path)
        if found:
            return found
    return None


def _has_lone_surrogate(value: Any) -> bool:
    texts = [value] if isinstance(value, str) else list(value) if isinstance(value, dict) else []
    return any(isinstance(t, str) and not _encodes(t) for t in texts)


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _out_of_range(value: Any) -> bool:
    return type(value) is int and not -_I_JSON_MAX <= value <= _I_JSON_MAX


def prepare(value: Any, node: InstantNode, path: str = "$", kind: int | None = None) -> tuple[Any, int]:
    """The logical record of ``value`` with its instants rewritten (``node``: its place in the
    instant tree), and its kind (PLAIN or UTF16_KEYS). The input is never modified; it is
    returned itself when it is a plain record with nothing to rewrite. ``kind``: what ``scan``
    already found for ``value`` (a part of a record scanned whole), not to scan it again."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json", by_alias=True, exclude_none=True)
    try:
        kind = scan(value) if kind is None else kind
        if kind == NOT_PLAIN:
            value = to_logical(value, path, normalize=True, instants=node)
            kind = scan(value)
        else:
            value = _rewrite(value, node)
    except OutOfRange:
        raise CanonicalizationError("integer outside the I-JSON range ±(2^53 - 1)",
                                    _locate(value, _out_of_range, path) or path) from None
    except _Located as exc:
        raise CanonicalizationError(exc.message, path + "".join(reversed(exc.steps))) from exc.__cause__
    return value, kind


def encode(value: Any, kind: int = PLAIN, path: str = "$") -> bytes:
    """RFC 8785 bytes of a record that ``prepare`` returned (with its kind)."""
    ordered = value if kind == PLAIN else _utf16_sorted(value)
    fast = _fast_encoder()
    if fast is not None:
        try:
            out: bytes = fast.dumps(ordered, option=fast.OPT_SORT_KEYS if kind == PLAIN else 0)
            return out
        except TypeError:  # an unpaired surrogate, or deeper than orjson's 254 levels: see below
            pass
    text = _SORTED.encode(ordered) if kind == PLAIN else _IN_ORDER.encode(ordered)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # I-JSON: strings are Unicode scalar values
        where = _locate(value, _has_lone_surrogate, path) or path
        raise CanonicalizationError("unpaired surrogate in a string or member name (not I-JSON)", where) from None


def encode_object(members: Mapping[str, bytes]) -> bytes:
    """RFC 8785 bytes of an object from the canonical bytes of its members (so that members
    shared by several canonical forms, such as a large payload, are encoded once)."""
    parts = [_IN_ORDER.encode(k).encode("utf-8") + b":" + members[k]
             for k in sorted(members, key=_utf16_order)]
    return b"{" + b",".join(parts) + b"}"


# --------------------------------------------------------------------------- a parser's encoding
class EncodedRecord:
    """A record together with its RFC 8785 bytes *before* instant rewriting, as a JSON parser
    that proved both hands them over (cedx.runtime.server does, for request bodies), so that the
    receiver of a document neither scans its types again nor encodes it a second time.

    Whoever makes one vouches that ``value`` holds only dict, list, str, int within I-JSON's
    ±(2^53 − 1), bool and None, that no member name holds a character above U+FFFF (so code
    point order is RFC 8785's UTF-16 order), and that ``encoding`` is exactly
    ``encode(value, PLAIN)``. It is used only with the very object it was made for (identity)."""

    __slots__ = ("value", "encoding")

    def __init__(self, value: Any, encoding: bytes):
        self.value, self.encoding = value, encoding


#: at most this many distinct (name, instant) pairs are spliced into an encoding; beyond that
#: one re-encoding is cheaper than a search of the whole text per pair
MAX_SPLICED_INSTANTS = 4
_NOT_AFTER_OPENING_QUOTE = frozenset(":,]}")
_MEMBER_START = b",{"


def _spliceable_name(name: str) -> bool:
    """A member name that the encoder writes as it is and that cannot be mistaken for anything
    else in compact JSON (see ``splice_instants``)."""
    return (bool(name) and name[0] not in _NOT_AFTER_OPENING_QUOTE and name.isprintable()
            and '"' not in name and "\\" not in name)


def splice_instants(encoding: bytes, changes: list[tuple[str | None, str, str]]) -> bytes | None:
    """``encoding`` (a record's RFC 8785 bytes) with the instants ``_rewrite`` rewrote put in
    place, i.e. the canonical form of the rewritten record; None when this cannot be shown, and
    the caller encodes the rewritten record instead.

    Why a text search finds exactly the rewritten members. In compact JSON a string's content
    holds a quote only escaped, after a backslash, so a quote after ``,`` or ``{`` delimits a
    string; it does not end one when the next byte may not follow a string (``:,]}``), so it
    opens one; a name with no quote and no backslash then ends at the very next quote, and
    ``:`` makes it a member name; a rewritten instant matched the instant pattern, so it is
    printable ASCII without quote or backslash and its string ends at its own closing quote.
    So every occurrence of ``"name":"old"`` after ``,`` or ``{`` is a member ``name`` whose
    value is ``old``; every such member is one (a member name always follows ``,`` or ``{``),
    members are disjoint, and when their number is the number of such members rewritten, each
    occurrence is one of them. Replacing a value's text changes no member name, hence no order."""
    if not changes:
        return encoding
    counts: dict[tuple[str, str], int] = {}
    new_text: dict[tuple[str, str], str] = {}
    for name, old, new in changes:
        if name is None:  # an array item of instants: not spliced
            return None
        counts[(name, old)] = counts.get((name, old), 0) + 1
        new_text[(name, old)] = new
    if len(counts) > MAX_SPLICED_INSTANTS:
        return None
    cuts: list[tuple[int, int, bytes]] = []  # (start, end, replacement) of each member's text
    for (name, old), n in counts.items():
        if not (_spliceable_name(name) and old.isascii() and old.isprintable() and '"' not in old
                and "\\" not in old):
            return None
        head = b'"' + name.encode("utf-8") + b'":"'
        before, after = head + old.encode("ascii") + b'"', head + new_text[(name, old)].encode("ascii") + b'"'
        found = 0
        i = encoding.find(before, 1)
        while i > 0:
            if encoding[i - 1] in _MEMBER_START:
                found += 1
                cuts.append((i, i + len(before), after))
            i = encoding.find(before, i + 1)
        if found != n:
            return None  # the same name and text elsewhere (not an instant there): re-encode
    cuts.sort()
    parts: list[Any] = []
    at = 0
    view = memoryview(encoding)
    for start, end, text in cuts:
        parts += (view[at:start], text)
        at = end
    parts.append(view[at:])
    return b"".join(parts)


def canonicalize(value: Any, *, instants: InstantNode = None) -> bytes:
    """RFC 8785 bytes of the logical record of ``value``.

    ``instants`` (default: ``default_instants()``, the signed documents of cedx's spec) says
    which members are instants; pass ``{}`` to rewrite no string at all.
    """
    record, kind = prepare(value, default_instants() if instants is None else instants)
    return encode(record, kind)
