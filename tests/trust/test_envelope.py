"""Canonical record signing: the signed-document envelope."""

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from cedx import trust
from cedx.instants import CST
from cedx.trust.canonical import CanonicalizationError, canonicalize
from cedx.trust.envelope import signing_input
from cedx.trust.errors import InvalidSignature

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def key():
    return trust.generate_private_key()


RECORD = {
    "specVersion": "1.0",
    "entityCode": "91350100M000100Y43",
    "period": "2026-10",
    "fuels": [
        {"fuelCode": "bituminous", "consumption": {"value": "152340.50", "unit": "t"}},
        {"fuelCode": "diesel", "consumption": {"value": "12.3", "unit": "t"}},
    ],
    "totalEmission": {"value": "281234.712", "unit": "tCO2"},
    "unitCount": 2,
    "final": True,
}


def test_canonical_bytes_are_rfc8785():
    assert canonicalize({"b": 1, "a": "x", "c": [True, None]}) == b'{"a":"x","b":1,"c":[true,null]}'
    assert canonicalize({"\u6d4b": "碳"}) == '{"测":"碳"}'.encode()


def test_python_values_become_logical_values():
    t = dt.datetime(2026, 11, 1, 8, 0, tzinfo=CST)
    assert canonicalize({"t": t, "d": Decimal("1.50"), "e": Decimal("1E-7")}) == (
        b'{"d":"1.50","e":"0.0000001","t":"2026-11-01T00:00:00Z"}'
    )
    with pytest.raises(CanonicalizationError, match=r"\$\.x\[1\]: binary float"):
        canonicalize({"x": [1, 2.5]})
    with pytest.raises(CanonicalizationError, match="naive"):
        canonicalize({"t": dt.datetime(2026, 1, 1)})
    with pytest.raises(CanonicalizationError, match="I-JSON"):
        canonicalize({"n": 2**60})


def test_instant_strings_normalise_by_schema_type_only():
    at = {"t": True}  # the member t is a DateTime
    assert canonicalize({"t": "2026-11-01T08:00:00+08:00"}, instants=at) == b'{"t":"2026-11-01T00:00:00Z"}'
    assert canonicalize({"t": "2026-11-01T00:00:00.500Z"}, instants=at) == b'{"t":"2026-11-01T00:00:00.5Z"}'
    assert canonicalize({"t": "2026-11-01T00:00:00.000-05:30"}, instants=at) == b'{"t":"2026-11-01T05:30:00Z"}'
    assert canonicalize({"t": "2026-01-01T01:00:00+08:00"}, instants=at) == b'{"t":"2025-12-31T17:00:00Z"}'
    with pytest.raises(CanonicalizationError, match="invalid instant"):
        canonicalize({"t": "2026-13-01T00:00:00Z"}, instants=at)
    with pytest.raises(CanonicalizationError, match="invalid instant"):
        canonicalize({"t": "not 2026-11-01T00:00:00Z"}, instants=at)
    # the same text in a member that is not a DateTime is left exactly as sent
    assert canonicalize({"u": "2026-11-01T08:00:00+08:00"}, instants=at) == b'{"u":"2026-11-01T08:00:00+08:00"}'
    assert canonicalize({"t": "2026-11-01T08:00:00+08:00"}, instants={}) == b'{"t":"2026-11-01T08:00:00+08:00"}'
    as_string = {"t": "2026-11-01T08:00:00+08:00"}
    as_datetime = {"t": dt.datetime(2026, 11, 1, 8, tzinfo=CST)}
    assert canonicalize(as_string, instants=at) == canonicalize(as_datetime, instants=at)


def test_fraction_digits_are_kept_never_truncated():
    at = {"t": True}
    assert canonicalize({"t": "2026-11-01T08:00:00.123456789+08:00"}, instants=at) == (
        b'{"t":"2026-11-01T00:00:00.123456789Z"}')
    assert canonicalize({"t": "2026-11-01T00:00:00.1234567Z"}, instants=at) != canonicalize(
        {"t": "2026-11-01T00:00:00.1234568Z"}, instants=at)
    with pytest.raises(CanonicalizationError, match="more than 9 fraction digits"):
        canonicalize({"t": "2026-11-01T00:00:00.1234567891Z"}, instants=at)


def test_the_instant_paths_come_from_the_signed_schemas():
    from cedx.trust.canonical import default_instants

    tree = default_instants()
    assert tree["signature"]["signingTime"] is True
    assert tree["payload"]["preparedAt"] is True
    assert "reason" not in tree["payload"] and "entityName" not in tree["payload"]


def _report(**changes):
    doc = json.loads((REPO / "spec/examples/monthly-report-power.json").read_text(encoding="utf-8"))
    doc["payload"].update(changes)
    return doc["payload"]


def test_free_text_that_looks_like_a_time_is_signed_as_sent(key):
    looks = "2026-11-05T10:30:00+08:00"
    doc = json.loads(json.dumps(trust.sign_document(_report(reason=looks), key, envelope_fields={"specVersion": "1.0"})))
    trust.verify_document(doc, key.public_key())
    assert looks.encode() in signing_input(doc)
    doc["payload"]["reason"] = "2026-11-05T02:30:00Z"  # the same instant, but a different text
    with pytest.raises(InvalidSignature, match="does not verify"):
        trust.verify_document(doc, key.public_key())


def test_a_changed_sub_microsecond_digit_does_not_verify(key):
    sent = "2026-11-05T10:30:00.123456789+08:00"
    doc = json.loads(json.dumps(trust.sign_document(_report(preparedAt=sent), key, envelope_fields={"specVersion": "1.0"})))
    trust.verify_document(doc, key.public_key())
    assert b'"preparedAt":"2026-11-05T02:30:00.123456789Z"' in signing_input(doc)
    doc["payload"]["preparedAt"] = "2026-11-05T02:30:00.1234567890Z"  # trailing zero: same instant
    with pytest.raises(InvalidSignature, match="more than 9 fraction digits"):  # refused, not cut
        trust.verify_document(doc, key.public_key())
    doc["payload"]["preparedAt"] = "2026-11-05T02:30:00.123456780Z"
    with pytest.raises(InvalidSignature, match="does not verify"):
        trust.verify_document(doc, key.public_key())
    doc["payload"]["preparedAt"] = "2026-11-05T02:30:00.123456789Z"
    trust.verify_document(doc, key.public_key())  # the same instant written in UTC verifies


def test_sign_and_verify_after_json_transport(key):
    doc = trust.sign_document(RECORD, key)
    received = json.loads(json.dumps(doc, ensure_ascii=False, indent=2))
    verified = trust.verify_document(received, key.public_key())
    assert verified.payload == RECORD
    assert verified.key_id == key.public_key().fingerprint()


def test_offsets_normalise_so_equal_instants_verify(key):
    local = {"at": dt.datetime(2026, 11, 1, 8, 0, tzinfo=CST)}
    utc = {"at": dt.datetime(2026, 11, 1, 0, 0, tzinfo=dt.timezone.utc)}
    doc = trust.sign_document(local, key)
    trust.verify_document({"payload": utc, "signature": doc["signature"]}, key.public_key())
    later = {"at": dt.datetime(2026, 11, 1, 0, 0, 1, tzinfo=dt.timezone.utc)}
    with pytest.raises(InvalidSignature):
        trust.verify_document({"payload": later, "signature": doc["signature"]}, key.public_key())


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r["fuels"][0]["consumption"].__setitem__("value", "152340.51"),  # value
        lambda r: r["fuels"][0]["consumption"].__setitem__("value", "152340.5"),  # same number, other string
        lambda r: r.__setitem__("extra", "x"),  # added field
        lambda r: r.pop("final"),  # removed field
        lambda r: r["fuels"].reverse(),  # order of an order-significant list
        lambda r: r.__setitem__("unitCount", 3),
        lambda r: r.__setitem__("final", False),
    ],
    ids=["value", "decimal-string", "added", "removed", "list-order", "integer", "boolean"],
)
def test_any_change_breaks_the_signature(key, mutate):
    doc = json.loads(json.dumps(trust.sign_document(RECORD, key)))
    mutate(doc["payload"])
    with pytest.raises(InvalidSignature, match="does not verify"):
        trust.verify_document(doc, key.public_key())


def test_protected_metadata_and_wrong_key(key):
    doc = trust.sign_document(RECORD, key)
    moved = json.loads(json.dumps(doc))
    moved["signature"]["signingTime"] = "2020-01-01T00:00:00Z"
    with pytest.raises(InvalidSignature, match="does not verify"):
        trust.verify_document(moved, key.public_key())
    with pytest.raises(InvalidSignature, match="keyId"):
        trust.verify_document(doc, trust.generate_private_key().public_key())
    alg = json.loads(json.dumps(doc))
    alg["signature"]["algorithm"] = "RSA"
    with pytest.raises(InvalidSignature, match="unsupported signature algorithm"):
        trust.verify_document(alg, key.public_key())
    bad = json.loads(json.dumps(doc))
    bad["signature"]["value"] = "***"
    with pytest.raises(InvalidSignature, match="base64"):
        trust.verify_document(bad, key.public_key())
    with pytest.raises(InvalidSignature, match="not a signed envelope"):
        trust.verify_document(RECORD, key.public_key())


def test_envelope_fields_are_protected(key):
    doc = trust.sign_document(RECORD, key, envelope_fields={"specVersion": "1.0"})
    assert list(doc) == ["specVersion", "payload", "signature"]
    trust.verify_document(doc, key.public_key())
    doc["specVersion"] = "1.1"
    with pytest.raises(InvalidSignature, match="does not verify"):
        trust.verify_document(doc, key.public_key())


def test_custom_user_id_is_recorded_and_used(key):
    doc = trust.sign_document(RECORD, key, uid=b"entity-91350100")
    assert doc["signature"]["userId"] == "entity-91350100"
    trust.verify_document(doc, key.public_key())
    doc["signature"].pop("userId")
    with pytest.raises(InvalidSignature):
        trust.verify_document(doc, key.public_key())


def test_certificate_chain_and_timestamp_attach_unprotected(key):
    from cedx.trust import tsa as tts
    from cedx.trust import x509 as tx
    from cedx.trust.sm3 import sm3

    ca_key = trust.generate_private_key()
    ca = tx.create_ca(ca_key, {"common_name": "Root"})
    cert = tx.issue_certificate(tx.create_csr(key, {"common_name": "signer"}), ca, ca_key)
    tsa_key = trust.generate_private_key()
    tsa_cert = tx.issue_certificate(tx.create_csr(tsa_key, {"common_name": "TSA"}), ca, ca_key, profile="tsa")
    authority = tts.TimeStampAuthority(tsa_key, tsa_cert)
    doc = trust.sign_document(RECORD, key, certificate_chain=[cert], timestamper=authority.timestamp)

    def resolve(block):
        import base64

        return tx.validate_chain(base64.b64decode(block["certificateChain"][0]), trust_anchors=[ca])

    verified = trust.verify_document(doc, resolve)
    info = tts.verify_token(verified.timestamp_token, imprint=sm3(verified.signature), trust_anchors=[ca])
    assert info.gen_time.tzinfo is not None


ADVERSARIAL = [
    "", "plain", "引号\"与反斜杠\\", "\u0000\u0001\u001f\u007f", "\b\f\n\r\t", "\u2028\u2029", "€𝄞😀",
    "\ud7ff\ue000\uffff", "</script>", "a\u0300", "2026-11-01T08:00:00+08:00", "-0", "1e5",
]


@pytest.mark.parametrize("text", ADVERSARIAL)
def test_fast_canonical_form_equals_rfc8785(text):
    import rfc8785

    from cedx.trust.canonical import to_logical

    record = {"z": text, "a": [text, 1, -(2**53 - 1), True, None], "m": {"k": text, "K": {}}, "b": []}
    assert canonicalize(record) == rfc8785.dumps(to_logical(record, normalize=True))


def test_fast_canonical_form_equals_rfc8785_on_every_example():
    import json as _json
    from pathlib import Path

    import rfc8785

    from cedx.trust.canonical import default_instants, to_logical

    repo = Path(__file__).resolve().parents[2]
    published = {p.name: p for p in (repo / "spec" / "examples").glob("*.json")}  # sources …
    published.update({p.name: p for p in (repo / "sdk" / "cedx" / "generated" / "examples").glob("*.json")})  # … or signed
    examples = [published[name] for name in sorted(published)]
    assert len(examples) > 30
    for path in examples:
        doc = _json.loads(path.read_text(encoding="utf-8"))
        assert canonicalize(doc) == rfc8785.dumps(to_logical(doc, normalize=True, instants=default_instants())), path.name


def test_non_ascii_keys_fall_back_to_rfc8785_ordering():
    import rfc8785

    record = {"\ue000": 1, "😀": 2, "a": 3}  # UTF-16 order differs from code-point order here
    assert canonicalize(record) == rfc8785.dumps(record)


@pytest.mark.parametrize("text,canonical", [
    ("2026-11-01T00:00:00Z", "2026-11-01T00:00:00Z"),
    ("2026-11-01T00:00:00.5Z", "2026-11-01T00:00:00.5Z"),
    ("2026-11-01T00:00:00.500Z", "2026-11-01T00:00:00.5Z"),
    ("2026-11-01T00:00:00.000Z", "2026-11-01T00:00:00Z"),
    ("2026-11-01T00:00:00.1234567Z", "2026-11-01T00:00:00.1234567Z"),  # kept, never truncated
    ("2026-11-01T00:00:00.123456780+00:00", "2026-11-01T00:00:00.12345678Z"),
    ("2026-11-01T08:00:00.250+08:00", "2026-11-01T00:00:00.25Z"),
])
def test_instant_canonical_forms(text, canonical):
    assert canonicalize({"t": text}, instants={"t": True}) == f'{{"t":"{canonical}"}}'.encode()


def test_instant_tree_refuses_a_path_that_is_an_instant_in_one_document_and_text_in_another():
    from cedx.trust.canonical import instant_tree

    spec = {"components": {"schemas": {
        "DateTime": {"type": "string", "format": "date-time"},
        "A": {"x-cedx-signed": {}, "properties": {"payload": {"properties": {"at": {"$ref": "#/components/schemas/DateTime"}}}}},
        "B": {"x-cedx-signed": {}, "properties": {"payload": {"properties": {"at": {"type": "string"}}}}},
    }}}
    assert instant_tree(spec, ["A"]) == {"payload": {"at": True}}
    with pytest.raises(ValueError, match="payload.at"):
        instant_tree(spec)


def test_usual_signing_mistakes_are_named(key):
    """A refused document says when its signature holds under the other algorithm or with an
    empty SM2 user ID (OpenSSL 3 without -sigopt distid:), so another vendor finds the slip."""
    import base64

    from cedx.trust.envelope import message_for

    doc = trust.sign_document(RECORD, key, algorithm=trust.PREHASH_ALGORITHM)
    plain = message_for(trust.ALGORITHM, signing_input(doc))
    mislabelled = json.loads(json.dumps(doc))
    mislabelled["signature"]["value"] = base64.b64encode(key.sign(plain)).decode()  # M of the other algorithm
    with pytest.raises(InvalidSignature, match="verifies as SM2-with-SM3"):
        trust.verify_document(mislabelled, key.public_key())
    empty = json.loads(json.dumps(doc))
    empty["signature"]["value"] = base64.b64encode(key.sign(message_for(trust.PREHASH_ALGORITHM, signing_input(doc)),
                                                            b"")).decode()
    with pytest.raises(InvalidSignature, match="empty SM2 user ID"):
        trust.verify_document(empty, key.public_key())
    tampered = json.loads(json.dumps(doc))
    tampered["payload"]["period"] = "2026-11"
    with pytest.raises(InvalidSignature) as info:
        trust.verify_document(tampered, key.public_key())
    assert "verifies" not in str(info.value)
