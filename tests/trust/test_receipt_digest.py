"""A receipt's documentDigest against the document a client sent (docs/trust-profile.md §3),
with the published vector ``instant-offset-fraction``: ``trust.document_digest`` and
``trust.binds_document`` along each of its three ways (the body is the canonical form; the body
as cedx writes it with offset instants; anything else), and the client's ReceiptMismatch."""

import json
from pathlib import Path

import pytest

from cedx import spec, trust
from cedx.generated.client import ReportingClient
from cedx.runtime.client import sorted_json
from cedx.runtime.errors import ReceiptMismatch, SignatureVerificationError
from cedx.trust import envelope as envelope_module

VECTORS = Path(__file__).resolve().parents[2] / "sdk" / "cedx" / "generated" / "vectors"
DOCUMENTS = json.loads((VECTORS / "documents.json").read_text(encoding="utf-8"))["vectors"]
VECTOR = next(v for v in DOCUMENTS if v["name"] == "instant-offset-fraction")
DIGEST = VECTOR["documentDigest"]
OTHER = next(v for v in DOCUMENTS if v["name"] != VECTOR["name"] and v["documentDigest"] != DIGEST)


@pytest.fixture
def full_encodings(monkeypatch):
    """How many times the canonical form is computed in full (the third way)."""
    calls = []
    original = envelope_module.document_digest

    def counting(envelope, **kw):
        calls.append(1)
        return original(envelope, **kw)

    monkeypatch.setattr(envelope_module, "document_digest", counting)
    return calls


def test_the_published_document_digest():
    sent = json.loads(VECTOR["inputJson"])
    assert DIGEST == "00dfe64c3617f50099ff73b78af522f46d0baf0df0c0aad72ab14f98632103e9"
    assert trust.document_digest(sent) == DIGEST
    _root, from_xml = spec.xml_codec().loads(VECTOR["inputXml"].encode("utf-8"), VECTOR["schema"])
    assert trust.document_digest(from_xml) == DIGEST  # the logical document, whatever its format


def test_a_body_that_is_the_canonical_form_is_its_own_digest(full_encodings):
    sent = json.loads(VECTOR["inputJson"])
    body = VECTOR["documentCanonical"].encode("utf-8")
    assert trust.binds_document(DIGEST, sent, sent=trust.PrefixDigests(body))
    assert full_encodings == []


def test_a_body_as_cedx_writes_it_binds_with_its_instants_spliced(full_encodings):
    sent = json.loads(VECTOR["inputJson"])
    body = sorted_json(sent)  # what the clients send: sorted compact members, instants as written
    assert b"+08:00" in body and trust.sm3(body).hex() != DIGEST  # not the canonical form
    assert trust.binds_document(DIGEST, sent, sent=trust.PrefixDigests(body, step=64))
    assert full_encodings == []


def test_any_other_body_binds_by_the_canonical_form(full_encodings):
    sent = json.loads(VECTOR["inputJson"])
    pretty = VECTOR["inputJson"].encode("utf-8")  # indented: neither the canonical form nor cedx's
    assert trust.binds_document(DIGEST, sent, sent=trust.PrefixDigests(pretty))
    assert trust.binds_document(DIGEST, sent)  # no body (an XML one)
    assert len(full_encodings) == 2


@pytest.mark.parametrize("body", ["canonical", "cedx", "pretty", None])
def test_another_documents_digest_never_binds(body):
    sent = json.loads(VECTOR["inputJson"])
    data = {"canonical": VECTOR["documentCanonical"].encode("utf-8"), "cedx": sorted_json(sent),
            "pretty": VECTOR["inputJson"].encode("utf-8"), None: None}[body]
    digests = trust.PrefixDigests(data, step=64) if data is not None else None
    assert not trust.binds_document(OTHER["documentDigest"], sent, sent=digests)
    changed = json.loads(VECTOR["inputJson"])
    changed["payload"]["period"] = "2026-09"  # the same document but for one member
    assert not trust.binds_document(trust.document_digest(changed), sent, sent=digests)
    assert not trust.binds_document(DIGEST.upper(), sent, sent=digests)  # the form is lower-case hex


def test_a_document_without_a_canonical_form_binds_nothing():
    sent = json.loads(VECTOR["inputJson"])
    sent["payload"]["preparedAt"] = "2026-11-05T10:30:00.1234567890+08:00"  # ten fraction digits
    body = sorted_json(sent)
    assert not trust.binds_document(trust.sm3(b"x").hex(), sent, sent=trust.PrefixDigests(body))
    with pytest.raises(trust.CanonicalizationError):
        trust.document_digest(sent)


def _receipt(**changes):
    sent = json.loads(VECTOR["inputJson"])
    payload = sent["payload"]
    receipt = {"receiptId": "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d", "submissionId": "0b7e6f2a-1c3d-4e5f-8a9b-0c1d2e3f4a5b",
               "documentType": "monthly_report", "reportId": payload["reportId"], "creditCode": payload["creditCode"],
               "period": payload["period"], "version": 1, "submissionKind": payload["submissionKind"],
               "documentDigest": DIGEST, "receivedAt": "2026-11-05T02:31:07Z", "platformId": "p"}
    receipt.update(changes)
    return {"specVersion": "1.0", "payload": receipt, "signature": {}}


def test_the_client_check_names_both_digests_and_says_to_look_the_document_up():
    client = ReportingClient("http://127.0.0.1:9", token="t")
    op = client.operations["submitMonthlyReport"]
    sent = json.loads(VECTOR["inputJson"])
    client._check_receipt(op, _receipt(), sent, trust.PrefixDigests(sorted_json(sent)))  # binds
    client._check_receipt(op, _receipt(), sent, None)
    with pytest.raises(ReceiptMismatch) as exc:
        client._check_receipt(op, _receipt(documentDigest=OTHER["documentDigest"]), sent,
                              trust.PrefixDigests(sorted_json(sent)))
    assert isinstance(exc.value, SignatureVerificationError)  # caught where bad signatures are
    assert (exc.value.field, exc.value.got, exc.value.expected) == ("documentDigest", OTHER["documentDigest"], DIGEST)
    message = str(exc.value)
    assert OTHER["documentDigest"] in message and DIGEST in message
    assert "may or may not" in message and "list_submissions(period='2026-10')" in message


@pytest.mark.parametrize("field, value", [("reportId", "00000000-0000-4000-8000-000000000000"),
                                          ("creditCode", "91530100MA6K7L8M9M"), ("period", "2026-09"),
                                          ("submissionKind", "correction"), ("documentType", "annual_report")])
def test_a_receipt_naming_another_report_is_refused_even_with_the_digest(field, value):
    client = ReportingClient("http://127.0.0.1:9", token="t")
    sent = json.loads(VECTOR["inputJson"])
    with pytest.raises(ReceiptMismatch) as exc:
        client._check_receipt(client.operations["submitMonthlyReport"], _receipt(**{field: value}), sent, None)
    assert exc.value.field == field and exc.value.got == value
    assert f"its {field} is {value!r}" in str(exc.value)
