"""The single-pass canonical form equals, byte for byte, the implementation it replaced
(tests/trust/reference_canonical.py) and the rfc8785 package: on every published example, on
generated documents (supplementary-plane keys, fractions, offsets, time-looking free text,
Python values), and for the envelope's spliced signing input and whole-document bytes."""

from __future__ import annotations

import copy
import datetime as dt
import enum
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cedx import trust
from cedx.trust import canonical
from cedx.trust.canonical import (
    CanonicalizationError,
    canonicalize,
    default_instants,
    encode_object,
    format_instant,
    to_logical,
)
from cedx.trust.envelope import _Canonical, signing_input

from . import reference_canonical as old

REPO = Path(__file__).resolve().parents[2]
_UNPROTECTED = ("value", "certificateChain", "timestampToken")


def _examples() -> list[Path]:
    published = {p.name: p for p in (REPO / "spec" / "examples").glob("*.json")}
    signed = {p.name: p for p in (REPO / "sdk" / "cedx" / "generated" / "examples").glob("*.json")}
    return [p for _, p in sorted(published.items())] + [p for _, p in sorted(signed.items())]


def _old_signing_input(envelope: dict[str, Any], instants: Any = None) -> bytes:
    block = {k: v for k, v in envelope["signature"].items() if k not in _UNPROTECTED}
    return old.canonicalize({**envelope, "signature": block}, instants=instants)


def test_every_example_is_byte_identical_to_the_previous_implementation():
    paths = _examples()
    assert len(paths) > 50  # the spec's sources and the generated (re-signed) examples
    tree = default_instants()
    for path in paths:
        doc = json.loads(path.read_text(encoding="utf-8"))
        before = copy.deepcopy(doc)
        expected = old.canonicalize(doc)
        assert canonicalize(doc) == expected, path
        assert canonicalize(doc) == rfc8785.dumps(old.to_logical(doc, normalize=True, instants=tree)), path
        assert canonicalize(doc, instants={}) == old.canonicalize(doc, instants={}), path
        if isinstance(doc, dict) and isinstance(doc.get("signature"), dict):
            assert signing_input(doc) == _old_signing_input(doc), path
            assert _Canonical(doc, None).whole() == expected, path
        assert doc == before, f"{path}: the input was modified"


def test_signed_examples_verify_and_give_the_receipt_digest_from_the_same_bytes():
    import base64

    from cedx.trust import x509 as tx

    ca = (REPO / "spec" / "examples" / "pki" / "ca.pem").read_bytes()

    def resolver(block: dict[str, Any]) -> trust.SM2PublicKey:
        return tx.validate_chain(base64.b64decode(block["certificateChain"][0]), trust_anchors=[ca])

    checked = 0
    for path in (REPO / "sdk" / "cedx" / "generated" / "examples").glob("*.json"):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not (isinstance(doc, dict) and "signature" in doc and "certificateChain" in doc["signature"]):
            continue
        verified = trust.verify_document(doc, resolver)
        assert verified.canonical_document() == old.canonicalize(doc), path
        assert verified.document_digest() == trust.sm3(old.canonicalize(doc)).hex(), path
        assert verified.payload is doc["payload"]  # a parsed record is not copied
        checked += 1
    assert checked >= 5


# --------------------------------------------------------------------------- UTF-16 order
def test_member_order_is_by_utf16_code_units_not_code_points():
    # U+E000 sorts after U+1F600 in UTF-16 (0xE000 > 0xD83D) but before it by code point
    record = {"\ue000": 1, "😀": 2, "a": 3, "nested": [{"\uffff": "x", "\U00020000": "y", "z": "w"}]}
    expected = '{"a":3,"nested":[{"z":"w","\U00020000":"y","\uffff":"x"}],"😀":2,"\ue000":1}'.encode()
    assert canonicalize(record) == expected == rfc8785.dumps(record) == old.canonicalize(record)
    assert encode_object({"\ue000": b"1", "😀": b"2", "a": b"3"}) == '{"a":3,"😀":2,"\ue000":1}'.encode()


def test_supplementary_keys_in_one_object_order_every_object_by_utf16():
    record = {"b": {"\ue001": 1, "\ue000": 2}, "a": {"😀": {"y": 1, "x": 2}}}
    assert canonicalize(record) == rfc8785.dumps(record) == old.canonicalize(record)


# --------------------------------------------------------------------------- refusals
def test_integer_outside_i_json_is_refused_at_its_member():
    with pytest.raises(CanonicalizationError, match="I-JSON") as info:
        canonicalize({"a": [1, {"b": 2**53}]})
    assert info.value.path == "$.a[1].b"
    assert canonicalize({"a": [-(2**53 - 1), 2**53 - 1]}) == b'{"a":[-9007199254740991,9007199254740991]}'


@pytest.mark.parametrize("record, path", [
    ({"a": ["ok", "\ud800"]}, "$.a[1]"),
    ({"a": {"\udc00": "x"}}, "$.a"),
])
def test_unpaired_surrogate_is_refused_not_encoded(record, path):
    with pytest.raises(CanonicalizationError, match="surrogate") as info:
        canonicalize(record)
    assert info.value.path == path


def test_ten_fraction_digits_refused_where_a_schema_instant_is_and_kept_in_free_text():
    at = {"payload": {"preparedAt": True}}
    with pytest.raises(CanonicalizationError, match="more than 9") as info:
        canonicalize({"payload": {"preparedAt": "2026-11-01T00:00:00.1234567891Z"}}, instants=at)
    assert info.value.path == "$.payload.preparedAt"
    text = {"payload": {"reason": "2026-11-01T00:00:00.1234567891+08:00"}}
    assert canonicalize(text, instants=at) == json.dumps(text, separators=(",", ":")).encode()


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-00:01"])
def test_an_instant_outside_years_1_to_9999_in_utc_is_refused_not_a_crash(text):
    # the previous implementation raised OverflowError (a 500 on the platform)
    with pytest.raises(CanonicalizationError, match="outside the years") as info:
        canonicalize({"payload": {"preparedAt": text}}, instants={"payload": {"preparedAt": True}})
    assert info.value.path == "$.payload.preparedAt"


@pytest.mark.parametrize("text", ["0999-01-01T08:00:00+08:00", "0999-01-01T00:00:00Z", "0998-12-31T23:00:00-01:00"])
def test_a_year_before_1000_keeps_four_digits(text):
    # one instant, one form: strftime("%Y") gave "999-01-01..." from an offset but kept "0999" from Z
    at = {"payload": {"preparedAt": True}}
    assert canonicalize({"payload": {"preparedAt": text}}, instants=at) == b'{"payload":{"preparedAt":"0999-01-01T00:00:00Z"}}'
    assert format_instant(dt.datetime(999, 1, 1, 8, tzinfo=dt.timezone(dt.timedelta(hours=8)))) == "0999-01-01T00:00:00Z"


@pytest.mark.parametrize("text", ["2024-W01-1T00:00:00Z", "2024-W01-1T00:00:00.5Z", "2024-001T00:00:00.000Z"])
def test_week_and_ordinal_dates_are_not_instants(text):
    # fromisoformat (3.11) reads them; the canonical form's pattern does not
    with pytest.raises(CanonicalizationError):
        canonicalize({"payload": {"preparedAt": text}}, instants={"payload": {"preparedAt": True}})


def test_input_with_offsets_is_not_modified_and_shared_parts_are_not_copied():
    doc = {"payload": {"preparedAt": "2026-11-05T10:30:00+08:00", "units": [{"x": "1"}]}, "z": ["a"]}
    before = copy.deepcopy(doc)
    at = {"payload": {"preparedAt": True}}
    assert canonicalize(doc, instants=at) == (
        b'{"payload":{"preparedAt":"2026-11-05T02:30:00Z","units":[{"x":"1"}]},"z":["a"]}')
    assert doc == before


# --------------------------------------------------------------------------- generated documents
KEYS = st.sampled_from(["a", "b", "t", "value", "测", "é", "\ue000", "\uffff", "😀", "\U00020000", "a😀", "[]", "*"])
INSTANT_KEYS = st.sampled_from(["a", "b", "t", "测", "\ue000", "😀", "[]", "*"])


@st.composite
def instants(draw: Any, valid: bool = True) -> str:
    """RFC 3339 instants with offsets and 0-9 fraction digits (trailing zeros included); with
    ``valid=False`` also a bad calendar, a leap second, a tenth digit or a bad offset."""
    bad = not valid and draw(st.booleans())
    year = draw(st.integers(1, 9999))
    month = draw(st.sampled_from([1, 2, 12, 13] if bad else [1, 2, 12]))
    day = draw(st.sampled_from([1, 28, 29, 31] if bad else [1, 28]))
    hour, minute = draw(st.integers(0, 24 if bad else 23)), draw(st.integers(0, 59))
    second = draw(st.sampled_from([0, 59, 60] if bad else [0, 59]))
    digits = draw(st.integers(0, 10 if bad else 9))
    fraction = "." + "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=digits, max_size=digits))) if digits else ""
    offsets = ["Z", "+08:00", "-05:30", "+00:00", "-00:00", "+14:00", "-23:59"]
    offset = draw(st.sampled_from(offsets + ["+24:00", "+08:60", "z", "+0800"] if bad else offsets))
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{fraction}{offset}"


TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)  # no lone surrogates
STRINGS = st.one_of(TEXT, instants(), instants(), instants(valid=False), instants().map(lambda s: f"at {s}"),
                    st.sampled_from(["", "-0", "1e5", "35.20"]))
SCALARS = st.one_of(
    STRINGS, STRINGS, STRINGS,
    st.integers(-(2**53 - 1), 2**53 - 1), st.booleans(), st.none(),
)


class Flag(str, enum.Enum):
    NORMAL = "N"


class Level(enum.IntEnum):
    HIGH = 3


PYTHON = st.one_of(
    st.decimals(min_value=-(10**12), max_value=10**12, places=6),
    st.sampled_from([Decimal("1E-7"), Decimal("1.50"), Decimal("-0"), Decimal("35.20")]),
    st.datetimes(timezones=st.sampled_from([dt.timezone.utc, dt.timezone(dt.timedelta(hours=8))])),
    st.sampled_from([Flag.NORMAL, Level.HIGH, dt.date(2026, 11, 5)]),
)
BAD = st.one_of(st.floats(allow_nan=False), st.integers(2**53, 2**64), st.just(Decimal("NaN")),
                st.just(dt.datetime(2026, 1, 1)))


def documents(scalars: Any) -> Any:
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=5)),
        max_leaves=25,
    )


INSTANT_TREES = st.recursive(
    st.just(True),
    lambda inner: st.dictionaries(INSTANT_KEYS, inner, max_size=4),
    max_leaves=8,
).filter(lambda t: isinstance(t, dict))

def _string_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths to the string leaves: member names (str) and item indices (int)."""
    if isinstance(value, str):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _string_paths(v, path + (k,))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _string_paths(v, path + (i,))]
    return []


@st.composite
def documents_with_instants(draw: Any, scalars: Any) -> tuple[Any, dict[str, Any]]:
    """A document and an instant tree that marks some of its string members (by name or by
    ``*``), most of them then holding an instant, plus the odd random path elsewhere."""
    doc = draw(documents(scalars))
    tree: dict[str, Any] = draw(st.one_of(st.just({}), INSTANT_TREES))
    for path in draw(st.lists(st.sampled_from(_string_paths(doc) or [()]), max_size=4)):
        if not path:
            continue
        node, holder = tree, doc
        for i, step in enumerate(path):
            key = "[]" if isinstance(step, int) else step if not draw(st.booleans()) else "*"
            if i == len(path) - 1:
                node.setdefault(key, True)
                if draw(st.integers(0, 3)):  # mostly an instant where the schema says so
                    holder[step] = draw(instants(valid=draw(st.integers(0, 5)) > 0))
            elif not isinstance(node.setdefault(key, {}), dict):
                break
            else:
                node, holder = node[key], holder[step]
    return doc, tree


SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _outcome(fn: Any, *args: Any, **kwargs: Any) -> bytes | type:
    try:
        return fn(*args, **kwargs)
    except (CanonicalizationError, old.CanonicalizationError):  # either, as "refused"
        return CanonicalizationError
    except OverflowError:  # the previous implementation's answer to an instant beyond year 1-9999 in UTC
        return CanonicalizationError


@SETTINGS
@given(documents_with_instants(SCALARS))
def test_json_documents_equal_the_previous_implementation(doc_tree):
    doc, tree = doc_tree
    before = copy.deepcopy(doc)
    new = _outcome(canonicalize, doc, instants=tree)
    assert new == _outcome(old.canonicalize, doc, instants=tree)
    if new is not CanonicalizationError:
        assert new == rfc8785.dumps(old.to_logical(doc, normalize=True, instants=tree))
    assert doc == before


@SETTINGS
@given(documents_with_instants(st.one_of(SCALARS, PYTHON, PYTHON)))
def test_python_values_equal_the_previous_implementation(doc_tree):
    doc, tree = doc_tree
    assert _outcome(canonicalize, doc, instants=tree) == _outcome(old.canonicalize, doc, instants=tree)
    assert to_logical(doc) == old.to_logical(doc)


@SETTINGS
@given(documents(st.one_of(SCALARS, SCALARS, BAD)))
def test_refusals_match_the_previous_implementation(doc):
    assert _outcome(canonicalize, doc, instants={}) == _outcome(old.canonicalize, doc, instants={})


@settings(SETTINGS, max_examples=150)
@given(st.dictionaries(KEYS, documents(SCALARS), max_size=4),
       st.dictionaries(st.sampled_from(["algorithm", "keyId", "signingTime", "value", "certificateChain",
                                        "timestampToken", "😀"]), STRINGS, max_size=6),
       INSTANT_TREES)
def test_spliced_envelope_bytes_equal_one_pass(fields, block, tree):
    envelope = {**fields, "payload": fields.get("payload", {"x": "1"}), "signature": block}
    old_input = _outcome(_old_signing_input, envelope, tree)
    assert _outcome(signing_input, envelope, instants=tree) == old_input
    if old_input is not CanonicalizationError:
        assert _outcome(lambda: _Canonical(envelope, tree).whole()) == _outcome(old.canonicalize, envelope, instants=tree)


# --------------------------------------------------------------------------- the two encoders
def _with_json_module(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn`` run with the json module's encoder instead of orjson (the `fast` extra)."""
    saved, canonical._fast_encoder = canonical._fast_encoder, lambda: None
    try:
        return _outcome(fn, *args, **kwargs)
    finally:
        canonical._fast_encoder = saved


def test_the_fast_extra_encoder_is_installed_where_make_venv_ran():
    # make venv installs `.[fast]`; without orjson the json module gives the same bytes, slower
    assert canonical._fast_encoder() is not None


def test_both_encoders_give_the_same_bytes_on_every_example():
    for path in _examples():
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert canonicalize(doc) == _with_json_module(canonicalize, doc), path


@settings(SETTINGS, max_examples=200)
@given(documents_with_instants(SCALARS))
def test_both_encoders_give_the_same_bytes_on_generated_documents(doc_tree):
    doc, tree = doc_tree
    assert _outcome(canonicalize, doc, instants=tree) == _with_json_module(canonicalize, doc, instants=tree)


def test_nesting_deeper_than_orjson_allows_is_encoded_by_the_json_module():
    deep: Any = "x"
    for i in range(400):
        deep = {"k": deep} if i % 2 else [deep]
    assert canonicalize(deep, instants={}) == old.canonicalize(deep, instants={})


def test_document_digest_of_python_values_and_of_a_bad_unsigned_member():
    key = trust.generate_private_key()
    payload = {"amount": Decimal("35.20"), "at": dt.datetime(2026, 11, 5, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))}
    doc = trust.sign_document(payload, key, envelope_fields={"specVersion": "1.0"})
    with_python = {**doc, "payload": payload}  # the same record as Python values
    verified = trust.verify_document(with_python, key.public_key())
    assert verified.document_digest() == trust.sm3(old.canonicalize(doc)).hex()
    assert verified.payload == {"amount": "35.20", "at": "2026-11-05T02:30:00Z"}  # a logical copy
    bad = {**doc, "signature": {**doc["signature"], "certificateChain": [2**60]}}  # not signed, not I-JSON
    verified = trust.verify_document(bad, key.public_key())
    with pytest.raises(CanonicalizationError, match="I-JSON") as info:
        verified.document_digest()
    assert info.value.path == "$.signature.certificateChain[0]"


# --------------------------------------------------------------------------- a parser's encoding
# A request body the JSON parser proved (cedx.runtime.server.parse_json_encoded) reaches the
# verification with its sorted-key encoding: the canonical bytes are then spliced from it (the
# instants put in place) instead of scanned and encoded again. Same bytes, or the slow way.
from cedx.runtime.errors import Problem  # noqa: E402
from cedx.runtime.server import parse_json_encoded  # noqa: E402
from cedx.trust.canonical import PLAIN, EncodedRecord, splice_instants  # noqa: E402


def _encoded_forms(envelope: dict[str, Any], tree: Any) -> tuple[Any, Any, bool]:
    """(signing input, whole bytes, spliced?) through the parser's encoding of ``envelope``
    sent as compact JSON in its own member order."""
    raw = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
    try:
        record, encoded = parse_json_encoded(raw)
    except Problem:  # e.g. a control character XML cannot carry: refused before any signature
        return None, None, False
    if encoded is None:
        return None, None, False
    try:
        canonical = _Canonical(record, tree, PLAIN, encoded.encoding)
    except CanonicalizationError:  # a member other than the signature block has no canonical form
        return CanonicalizationError, CanonicalizationError, False
    return (_outcome(canonical.signing_input), _outcome(canonical.whole), canonical._whole is not None)


SIGNATURE_BLOCKS = st.fixed_dictionaries(
    {"algorithm": st.just("SM2-with-SM3"), "keyId": st.just("ab" * 32), "signingTime": instants(),
     "value": st.just("MEQCIA==")},
    optional={"certificateChain": st.lists(st.just("MIIB"), max_size=2), "timestampToken": st.just("MIIC"),
              "userId": TEXT, "😀": STRINGS})


@settings(SETTINGS, max_examples=250)
@given(documents_with_instants(SCALARS), SIGNATURE_BLOCKS, st.sampled_from([None, "1.0"]))
def test_envelopes_through_the_parsers_encoding_give_the_same_bytes(doc_tree, block, version):
    payload, payload_tree = doc_tree
    envelope = {"payload": payload, "signature": block, **({"specVersion": version} if version else {})}
    tree = {"payload": payload_tree, "signature": {"signingTime": True}} if payload_tree else {"signature": {"signingTime": True}}
    signing, whole, _ = _encoded_forms(envelope, tree)
    if signing is not None:
        assert signing == _outcome(_old_signing_input, envelope, tree)
        assert whole == _outcome(old.canonicalize, envelope, instants=tree)


def _instant_envelope(**payload: Any) -> dict[str, Any]:
    return {"specVersion": "1.0", "payload": {"creditCode": "X", **payload},
            "signature": {"algorithm": "SM2-with-SM3", "keyId": "ab", "signingTime": "2026-11-05T10:31:02.5+08:00",
                          "value": "MEQ=", "certificateChain": ["MIIB"]}}


AT = "2026-11-05T10:30:00+08:00"


@pytest.mark.parametrize("payload, tree, spliced", [
    ({"preparedAt": AT}, {"payload": {"preparedAt": True}}, True),
    ({"preparedAt": AT, "evidence": [{"periodStart": AT, "periodEnd": "2026-11-06T00:00:00.000Z"}] * 3},
     {"payload": {"preparedAt": True, "evidence": {"[]": {"periodStart": True, "periodEnd": True}}}}, True),
    # the same name and text where the schema has free text: counted twice, so encoded instead
    ({"preparedAt": AT, "notes": {"preparedAt": AT}}, {"payload": {"preparedAt": True}}, False),
    ({"preparedAt": AT, "notes": [{"preparedAt": AT}]}, {"payload": {"preparedAt": True}}, False),
    # a member look-alike inside free text is escaped, so it is not found
    ({"preparedAt": AT, "reason": f'x","preparedAt":"{AT}"'}, {"payload": {"preparedAt": True}}, True),
    ({"preparedAt": AT, "reason": f'{{"preparedAt":"{AT}"'}, {"payload": {"preparedAt": True}}, True),
    # names the search could mistake, arrays of instants, too many distinct instants: encoded
    ({"m": {"a\\": AT, 'q"': AT, ":x": AT, "ok": AT}}, {"payload": {"m": {"*": True}}}, False),
    ({"times": [AT, "2026-11-05T10:30:00Z"]}, {"payload": {"times": {"[]": True}}}, False),
    ({"m": {f"k{i}": f"2026-11-05T10:3{i}:00+08:00" for i in range(6)}}, {"payload": {"m": {"*": True}}}, False),
    ({"m": {"测": AT, "é": AT}}, {"payload": {"m": {"*": True}}}, True),
    # nothing to rewrite: the encoding itself
    ({"preparedAt": "2026-11-05T02:30:00Z"}, {"payload": {"preparedAt": True}}, True),
])
def test_instants_are_spliced_only_where_the_text_search_is_exact(payload, tree, spliced):
    envelope = _instant_envelope(**payload)
    tree = {**tree, "signature": {"signingTime": True}}
    signing, whole, took = _encoded_forms(envelope, tree)
    assert took is spliced
    assert signing == _old_signing_input(envelope, tree)
    assert whole == old.canonicalize(envelope, instants=tree)


def test_an_invalid_instant_is_refused_at_its_path_as_without_the_encoding():
    key = trust.generate_private_key()
    doc = trust.sign_document({"preparedAt": AT, "x": "1"}, key, envelope_fields={"specVersion": "1.0"})
    doc["payload"]["preparedAt"] = "2026-11-05T10:30:00.1234567891+08:00"
    raw = json.dumps(doc, separators=(",", ":")).encode()
    record, encoded = parse_json_encoded(raw)
    assert encoded is not None
    with pytest.raises(trust.InvalidSignature) as fast:
        trust.verify_document(record, key.public_key(), encoded=encoded)
    with pytest.raises(trust.InvalidSignature) as slow:
        trust.verify_document(json.loads(raw), key.public_key())
    assert str(fast.value) == str(slow.value)
    assert "$.payload.preparedAt" in str(fast.value)


def test_verification_through_the_encoding_equals_verification_without():
    key = trust.generate_private_key()
    payload = json.loads((REPO / "spec" / "examples" / "monthly-report-power.json").read_text(encoding="utf-8"))["payload"]
    doc = trust.sign_document(payload, key, envelope_fields={"specVersion": "1.0"},
                              certificate_chain=[b"\x30\x00"])
    raw = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()  # +08:00 instants, as sent
    record, encoded = parse_json_encoded(raw)
    assert encoded is not None and "+08:00" in record["payload"]["preparedAt"]
    fast = trust.verify_document(record, key.public_key(), encoded=encoded)
    slow = trust.verify_document(json.loads(raw), key.public_key())
    assert fast._canonical is not None and fast._canonical._whole is not None  # the spliced way
    assert fast.canonical_document() == slow.canonical_document() == old.canonicalize(doc)
    assert fast.document_digest() == slow.document_digest()
    assert fast.payload is record["payload"]
    # made for another object: not used
    other = trust.verify_document(json.loads(raw), key.public_key(), encoded=encoded)
    assert other._canonical is not None and other._canonical._whole is None
    # a payload changed after signing still fails, through the encoding too
    tampered = raw.replace(b'"period":"', b'"period":"1')
    record, encoded = parse_json_encoded(tampered)
    assert encoded is not None
    with pytest.raises(trust.InvalidSignature, match="document signature invalid"):
        trust.verify_document(record, key.public_key(), encoded=encoded)


def test_splice_refuses_what_it_cannot_show():
    enc = b'{"a":"2026-11-05T10:30:00+08:00","b":["x"]}'
    new = "2026-11-05T02:30:00Z"
    assert splice_instants(enc, []) is enc
    assert splice_instants(enc, [("a", "2026-11-05T10:30:00+08:00", new)]) == b'{"a":"2026-11-05T02:30:00Z","b":["x"]}'
    assert splice_instants(enc, [("a", "2026-11-05T10:30:00+08:00", new)] * 2) is None  # one found, two rewritten
    assert splice_instants(enc, [(None, "2026-11-05T10:30:00+08:00", new)]) is None
    assert splice_instants(enc, [("a", 'x"', new)]) is None
    assert EncodedRecord({}, b"{}").encoding == b"{}"


def test_document_digest_resumes_from_the_body_states_where_they_agree():
    """A body in canonical member order (what cedx's client sends) agrees with the canonical
    form up to the first instant rewritten: the prehash signature's digest of the signing input
    and the receipt digest resume from the body's SM3 states there and are the same digests."""
    key = trust.generate_private_key()
    payload = json.loads((REPO / "spec" / "examples" / "monthly-report-power.json").read_text(encoding="utf-8"))["payload"]
    doc = trust.sign_document(payload, key, envelope_fields={"specVersion": "1.0"})
    expected = trust.sm3(old.canonicalize(doc)).hex()
    resumed = []

    class Spy(trust.PrefixDigests):
        def sm3_of(self, other: bytes) -> bytes:
            shared = next((i for i in range(len(self._states))
                           if not other.startswith(memoryview(self.data)[i * self.step:(i + 1) * self.step], i * self.step)),
                          len(self._states))
            resumed.append(shared)
            return super().sm3_of(other)

    for sort_keys, step in ((True, 256), (False, 256), (True, 1 << 20)):
        raw = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys).encode()
        record, encoded = parse_json_encoded(raw)
        verified = trust.verify_document(record, key.public_key(), encoded=encoded, body=Spy(raw, step=step))
        assert verified.document_digest() == expected
        unrelated = trust.verify_document(json.loads(raw), key.public_key(), body=trust.PrefixDigests(b"{}" * 500, step=64))
        assert unrelated.document_digest() == expected
    # per body: the signing input's digest, then the receipt's; sorted: most of each shared
    assert resumed[0] > 10 and resumed[1] > 10 and resumed[2:] == [0, 0, 0, 0]


def test_a_prehash_signature_checks_the_bytes_received_not_the_body_states():
    """The prehash digest resumes from the body's SM3 states: a body altered after signing,
    or a signature block relabelled with the other algorithm, still fails."""
    key = trust.generate_private_key()
    payload = json.loads((REPO / "spec" / "examples" / "monthly-report-power.json").read_text(encoding="utf-8"))["payload"]
    doc = trust.sign_document(payload, key, envelope_fields={"specVersion": "1.0"})
    assert doc["signature"]["algorithm"] == "SM2-with-SM3-prehash"
    raw = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    record, encoded = parse_json_encoded(raw)
    trust.verify_document(record, key.public_key(), encoded=encoded, body=trust.PrefixDigests(raw, step=64))
    altered = raw.replace(b'"35.20"', b'"35.21"', 1)
    assert altered != raw
    record, encoded = parse_json_encoded(altered)
    with pytest.raises(trust.InvalidSignature):
        trust.verify_document(record, key.public_key(), encoded=encoded, body=trust.PrefixDigests(altered, step=64))
    with pytest.raises(trust.InvalidSignature):  # states of the signed bytes, record of the altered ones
        trust.verify_document(record, key.public_key(), encoded=encoded, body=trust.PrefixDigests(raw, step=64))
    relabelled = json.loads(raw)
    relabelled["signature"]["algorithm"] = "SM2-with-SM3"
    with pytest.raises(trust.InvalidSignature):
        trust.verify_document(relabelled, key.public_key())
    with pytest.raises(ValueError):
        trust.sign_document(payload, key, algorithm="SM2-with-SHA256")


def test_a_signing_time_before_year_1_in_utc_is_an_invalid_signature_not_a_crash():
    key = trust.generate_private_key()
    doc = trust.sign_document({"x": "1"}, key, envelope_fields={"specVersion": "1.0"})
    doc["signature"]["signingTime"] = "0001-01-01T00:00:00+08:00"
    for encoded in (False, True):
        raw = json.dumps(doc, separators=(",", ":")).encode()
        record, proof = parse_json_encoded(raw) if encoded else (json.loads(raw), None)
        with pytest.raises(trust.InvalidSignature, match="outside the years"):
            trust.verify_document(record, key.public_key(), encoded=proof)
