"""Canonical bytes of a logical record: what every cedx signature covers.

A logical record is the JSON data model of a document (objects, arrays, strings, integers,
booleans, null), independent of whether it travelled as JSON or XML. Its canonical form is
RFC 8785 (JCS) with two cedx rules applied first, so that equal records give equal bytes:

* decimal quantities are strings (``Decimal`` values become their plain positional string);
  binary floats are refused, since they cannot carry an exact decimal;
* instants are UTC strings ``YYYY-MM-DDThh:mm:ss[.ffffff]Z``: aware ``datetime`` values and
  every string that is an RFC 3339 instant with an offset are converted (naive datetimes are
  refused), so "2026-11-05T10:30:00+08:00" as JSON text, as XML text or as a parsed datetime
  gives the same bytes.
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import re
from decimal import Decimal
from typing import Any

import rfc8785

from ..instants import INSTANT_PATTERN as _INSTANT


class CanonicalizationError(ValueError):
    """A value cannot be represented in a logical record; ``path`` says where."""

    def __init__(self, message: str, path: str):
        super().__init__(f"{path}: {message}")
        self.path = path


def format_instant(value: _dt.datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetime (no UTC offset)")
    utc = value.astimezone(_dt.timezone.utc)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def _already_canonical(text: str) -> bool:
    """A UTC instant already in canonical form (seconds, or a fraction without trailing zeros,
    up to microseconds) needs no parsing — the common case on hot paths."""
    if not text.endswith("Z"):
        return False
    try:
        _dt.datetime.fromisoformat(text[:19])  # still validates the calendar (C speed)
    except ValueError:
        return False  # the full path reports it
    if len(text) == 20:
        return True
    fraction = text[20:-1]
    return text[19] == "." and 1 <= len(fraction) <= 6 and fraction.isdigit() and not fraction.endswith("0")


def _parse_instant(text: str) -> _dt.datetime:
    date_part, _, rest = text.partition("T")
    clock, frac, offset = rest[:8], "", rest[8:]
    if offset.startswith("."):
        digits = re.match(r"\.(\d+)", offset).group(1)
        frac, offset = digits, offset[1 + len(digits):]
    micro = (frac + "000000")[:6]  # sub-microsecond digits are beyond datetime's precision
    base = _dt.datetime.fromisoformat(f"{date_part}T{clock}")
    tz = _dt.timezone.utc if offset == "Z" else _dt.timezone(
        (1 if offset[0] == "+" else -1) * _dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
    )
    return base.replace(microsecond=int(micro), tzinfo=tz)


def format_decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError("decimal must be finite")
    return format(value, "f")


def to_logical(value: Any, path: str = "$", *, normalize: bool = False) -> Any:
    """Convert Python values (models, Decimals, datetimes, enums) into a logical record.

    Lexical forms are kept (an instant keeps its offset) unless ``normalize`` is set, which
    applies the canonical rules: instants in UTC. ``canonicalize`` always normalizes.
    """
    if hasattr(value, "model_dump"):  # pydantic models, without importing pydantic here
        value = value.model_dump(mode="json", by_alias=True, exclude_none=True)
    try:
        return _logical(value, normalize)
    except _Located as exc:  # the path is built only for an error, on the way out
        raise CanonicalizationError(exc.message, path + "".join(reversed(exc.steps))) from exc.__cause__


class _Located(Exception):
    """A canonicalization error on its way up; each level adds its step to the path (building a
    path string for every member instead costs a third of canonicalizing a large report)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message, self.steps = message, []


def _logical(value: Any, normalize: bool) -> Any:
    if isinstance(value, str):
        if normalize and _INSTANT.match(value) and not _already_canonical(value):
            try:
                return format_instant(_parse_instant(value))
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
                out[k] = _logical(v, normalize)
            except _Located as exc:
                exc.steps.append(f".{k}")
                raise
        return out
    if isinstance(value, (list, tuple)):
        out_list = []
        for i, v in enumerate(value):
            try:
                out_list.append(_logical(v, normalize))
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
        return format_instant(value) if normalize else value.isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return _logical(value.value, normalize)
    if hasattr(value, "model_dump"):
        return _logical(value.model_dump(mode="json", by_alias=True, exclude_none=True), normalize)
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


def canonicalize(value: Any) -> bytes:
    """RFC 8785 bytes of the logical record of ``value``.

    The logical data model has no floats, so for ASCII object keys the C-accelerated json.dumps
    (sorted keys, no whitespace, UTF-8 literals; control characters escaped as RFC 8785 does) is
    byte-identical to RFC 8785 and several times faster; anything else goes through rfc8785.
    The test suite compares both on every example and on adversarial strings.
    """
    logical = to_logical(value, normalize=True)
    if _fast_path_ok(logical):
        return json.dumps(logical, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    try:
        return rfc8785.dumps(logical)
    except rfc8785.IntegerDomainError as exc:
        raise CanonicalizationError(f"integer outside the I-JSON range: {exc}", "$") from exc
