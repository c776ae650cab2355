"""Canonicalization errors name the exact member, however deep (paths are built on the way out)."""

import datetime as dt
from decimal import Decimal

import pytest

from cedx.trust.canonical import CanonicalizationError, canonicalize, to_logical


@pytest.mark.parametrize("bad, message", [
    (1.5, "binary float"),
    (Decimal("NaN"), "finite"),
    (dt.datetime(2026, 1, 1), "naive datetime"),
    (object(), "unsupported type object"),
])
def test_error_path_names_the_member(bad, message):
    doc = {"a": [{"b": "ok"}, {"c": {"d": [1, bad]}}]}
    with pytest.raises(CanonicalizationError, match=message) as info:
        canonicalize(doc)
    assert info.value.path == "$.a[1].c.d[1]"
    with pytest.raises(CanonicalizationError) as info:
        to_logical({"x": bad}, "$.payload", normalize=True)
    assert info.value.path == "$.payload.x"


def test_non_string_key_is_reported_at_its_object():
    with pytest.raises(CanonicalizationError, match="keys must be strings") as info:
        canonicalize({"a": {"b": {1: "x"}}})
    assert info.value.path == "$.a.b"


def test_valid_values_are_unchanged():
    doc = {"v": Decimal("1.50"), "t": dt.datetime(2026, 1, 1, 8, tzinfo=dt.timezone(dt.timedelta(hours=8))),
           "n": [None, True, 3], "s": "text"}
    assert canonicalize(doc) == b'{"n":[null,true,3],"s":"text","t":"2026-01-01T00:00:00Z","v":"1.50"}'
