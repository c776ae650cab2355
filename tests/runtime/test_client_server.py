"""The generated client against the generated server stubs, over real HTTP on loopback.

The service here is a minimal in-memory implementation written for the test (the reference
platform is its own issue); what is under test is the generated layer and its runtime:
negotiation, validation, signing on send, verification on receive, errors, pagination.
"""

import datetime as dt
import json
import uuid

import pytest
import requests
from fastapi import FastAPI

from cedx import spec, trust
from cedx.generated import models
from cedx.generated.client import AcquisitionClient, ReportingClient
from cedx.generated.server import Reply, ReportingService, ServerHooks, build_reporting_router
from cedx.runtime.client import Format
from cedx.runtime.errors import (
    ApiError,
    AuthenticationError,
    NotFoundError,
    SignatureVerificationError,
    UnprocessableError,
)
from cedx.runtime.server import Problem
from cedx.trust import x509 as tx

from ..loopback import serve
from ..spec.conftest import load_example

TOKEN = "test-token-0123456789"
UTC = dt.timezone.utc


class Pki:
    def __init__(self):
        now = dt.datetime.now(UTC) - dt.timedelta(minutes=1)
        self.ca_key = trust.generate_private_key()
        self.ca = tx.create_ca(self.ca_key, {"common_name": "test root"}, not_before=now)
        self.entity_key = trust.generate_private_key()
        self.entity_cert = tx.issue_certificate(tx.create_csr(self.entity_key, {"common_name": "entity"}), self.ca, self.ca_key, not_before=now)
        self.platform_key = trust.generate_private_key()
        self.platform_cert = tx.issue_certificate(tx.create_csr(self.platform_key, {"common_name": "platform"}), self.ca, self.ca_key, not_before=now)


class Hooks(ServerHooks):
    max_body_bytes = 256 * 1024

    def __init__(self, pki: Pki):
        self.pki = pki

    def authenticate(self, ctx):
        if ctx.header("authorization") != f"Bearer {TOKEN}":
            raise Problem("TOKEN_MISSING" if not ctx.header("authorization") else "TOKEN_INVALID", "bearer token required")
        ctx.principal = "91320500MA1X2P3Q4R"

    def verify_request_signature(self, ctx):
        verifier = trust.RequestVerifier({self.pki.entity_key.public_key().fingerprint(): self.pki.entity_key.public_key()}.get)
        try:
            verifier.verify(ctx.request.method, ctx.request.url.path, ctx.request.url.query, ctx.request.headers, ctx.raw_body)
        except trust.TrustError as exc:
            raise Problem("REQUEST_SIGNATURE_INVALID", str(exc)) from exc

    def verify_document(self, ctx, record):
        try:
            trust.verify_document(record, self.pki.entity_key.public_key())
        except trust.InvalidSignature as exc:
            raise Problem("SIGNATURE_INVALID", str(exc)) from exc


class MemoryPlatform(ReportingService):
    """Just enough behaviour to exercise every generated route."""

    def __init__(self, pki: Pki):
        self.pki = pki
        self.submissions: dict[str, dict] = {}

    def _receipt(self, body, kind):
        sid = str(uuid.uuid4())
        payload = body.payload
        receipt = {
            "receiptId": str(uuid.uuid4()), "submissionId": sid, "documentType": kind,
            "reportId": str(payload.report_id), "creditCode": payload.credit_code,
            "period": getattr(payload, "period", None) or str(payload.year), "version": 1,
            "submissionKind": payload.submission_kind.value,
            "documentDigest": trust.sm3(trust.canonicalize(body)).hex(),
            "receivedAt": dt.datetime.now(UTC).isoformat(), "platformId": "test-platform",
        }
        signed = trust.sign_document(receipt, self.pki.platform_key, certificate_chain=[self.pki.platform_cert],
                                     envelope_fields={"specVersion": "1.0"})
        self.submissions[sid] = {"doc": body, "receipt": signed, "status": {
            "specVersion": "1.0", "submissionId": sid, "documentType": kind, "reportId": receipt["reportId"],
            "period": receipt["period"], "version": 1, "submissionKind": receipt["submissionKind"],
            "state": "accepted", "receivedAt": receipt["receivedAt"], "receiptId": receipt["receiptId"]}}
        return Reply(signed, headers={"Location": f"/v1/reporting/submissions/{sid}"})

    def submit_monthly_report(self, ctx, *, idempotency_key, body):
        assert isinstance(body, models.SignedMonthlyReport)
        return self._receipt(body, "monthly_report")

    def submit_annual_report(self, ctx, *, idempotency_key, body):
        return self._receipt(body, "annual_report")

    def get_monthly_report(self, ctx, *, submission_id):
        if submission_id not in self.submissions:
            raise Problem("NOT_FOUND", f"no submission {submission_id}")
        return self.submissions[submission_id]["doc"]

    get_annual_report = get_monthly_report

    def get_receipt(self, ctx, *, submission_id):
        if submission_id not in self.submissions:
            raise Problem("NOT_FOUND", f"no submission {submission_id}")
        return self.submissions[submission_id]["receipt"]

    def get_submission_status(self, ctx, *, submission_id):
        if submission_id not in self.submissions:
            raise Problem("NOT_FOUND", f"no submission {submission_id}")
        return self.submissions[submission_id]["status"]

    def list_submissions(self, ctx, *, limit, cursor, document_type, period, state):
        items = sorted(self.submissions)
        start = items.index(cursor) + 1 if cursor else 0
        page = items[start:start + (limit or 50)]
        body = {"specVersion": "1.0", "items": [self.submissions[i]["status"] for i in page]}
        if start + len(page) < len(items):
            body["nextCursor"] = page[-1]
        return body

    def register_entity(self, ctx, *, body):
        if body.credit_code != ctx.principal:
            raise Problem("ENTITY_FORBIDDEN", "the token is bound to another entity")
        return Reply(body, status=201)

    def get_entity(self, ctx, *, credit_code):
        return load_example("entity-power.json")

    def update_entity(self, ctx, *, credit_code, body):
        return body

    def list_facilities(self, ctx, *, credit_code, limit, cursor):
        return load_example("facility-list-power.json")

    def put_facility(self, ctx, *, credit_code, facility_id, body):
        return body


@pytest.fixture(scope="module")
def pki():
    return Pki()


@pytest.fixture(scope="module")
def platform(pki):
    service = MemoryPlatform(pki)
    app = FastAPI()
    app.include_router(build_reporting_router(service, Hooks(pki)))
    with serve(app) as url:
        yield url, service


def client(url, pki, fmt=Format.JSON, **kw):
    return ReportingClient(url, token=TOKEN, signing_key=pki.entity_key, signing_certificate=pki.entity_cert,
                           trust_anchors=[pki.ca], format=fmt, **kw)


def _payload():
    return models.MonthlyReport.model_validate(load_example("monthly-report-power.json")["payload"])


@pytest.mark.parametrize("fmt", [Format.JSON, Format.XML])
def test_submit_signs_on_send_and_verifies_the_receipt(platform, pki, fmt):
    url, service = platform
    c = client(url, pki, fmt)
    receipt = c.submit_monthly_report(_payload())
    assert isinstance(receipt, models.SignedReceipt)
    assert receipt.payload.document_type.value == "monthly_report"
    sid = str(receipt.payload.submission_id)
    stored = c.get_monthly_report(sid, format=fmt)
    trust.verify_document(stored, pki.entity_key.public_key())
    status = c.get_submission_status(sid)
    assert status.state.value == "accepted"
    assert c.get_receipt(sid).payload.receipt_id == receipt.payload.receipt_id


def test_both_formats_return_the_same_resource(platform, pki):
    url, _ = platform
    as_json = client(url, pki, Format.JSON).get_entity("91320500MA1X2P3Q4R")
    as_xml = client(url, pki, Format.XML).get_entity("91320500MA1X2P3Q4R")
    assert as_json == as_xml
    raw = requests.get(f"{url}/v1/reporting/entities/91320500MA1X2P3Q4R", headers={"Authorization": f"Bearer {TOKEN}", "Accept": "application/xml"})
    assert raw.headers["content-type"].startswith("application/xml")
    assert spec.xml_codec().loads(raw.content, "Entity")[1] == load_example("entity-power.json")


def test_pagination_iterates_across_pages(platform, pki):
    url, service = platform
    c = client(url, pki)
    for _ in range(3):
        c.submit_monthly_report(_payload())
    everything = list(c.iter_submissions(limit=2))
    assert len(everything) == len(service.submissions) >= 3
    assert len({s.submission_id for s in everything}) == len(everything)


def test_rule_violation_is_a_typed_error_with_rule_and_path(platform, pki):
    url, _ = platform
    bad = _payload()
    bad.power.units[1].combustion_emission.value += 1000
    with pytest.raises(UnprocessableError) as exc:
        client(url, pki, validate=False).submit_monthly_report(bad)  # the server's check, not the client's
    assert exc.value.code == "RULE_VIOLATION"
    assert "R-POW-001" in exc.value.rules and "$.payload.power.units[1]" in exc.value.paths


@pytest.mark.parametrize("fmt", [Format.JSON, Format.XML])
def test_schema_violation_names_the_field(platform, pki, fmt):
    url, _ = platform
    doc = trust.sign_document(load_example("monthly-report-power.json")["payload"], pki.entity_key, envelope_fields={"specVersion": "1.0"})
    doc["payload"]["combustion"][0]["consumption"]["unit"] = "tonnes"
    with pytest.raises(UnprocessableError) as exc:
        client(url, pki, fmt, validate=False).submit_monthly_report(doc)  # already an envelope: sent as is
    assert exc.value.code == "SCHEMA_VIOLATION"
    assert ("$.payload.combustion[0].consumption.unit", "R-UNIT-001") in [(e.path, e.rule) for e in exc.value.errors]


def test_tampered_document_is_refused(platform, pki):
    url, _ = platform
    doc = trust.sign_document(load_example("monthly-report-power.json")["payload"], pki.entity_key, envelope_fields={"specVersion": "1.0"})
    doc["payload"]["entityName"] = "某某公司"
    with pytest.raises(UnprocessableError) as exc:
        client(url, pki).submit_monthly_report(doc)
    assert exc.value.code == "SIGNATURE_INVALID"


def test_authentication_errors(platform, pki):
    url, _ = platform
    c = ReportingClient(url, token="wrong", signing_key=pki.entity_key)
    with pytest.raises(AuthenticationError) as exc:
        c.get_entity("91320500MA1X2P3Q4R")
    assert exc.value.code == "TOKEN_INVALID"
    with pytest.raises(NotFoundError):
        client(url, pki).get_submission_status(str(uuid.uuid4()))


def test_request_signature_is_required_on_writes(platform, pki):
    url, _ = platform
    unsigned = ReportingClient(url, token=TOKEN)  # no key: no X-Cedx-* headers, no document signing
    with pytest.raises(ApiError) as exc:
        unsigned.register_entity(models.Entity.model_validate(load_example("entity-power.json")))
    assert exc.value.status == 401 and exc.value.code == "REQUEST_SIGNATURE_INVALID"


def test_receipt_from_an_untrusted_platform_is_refused(platform, pki):
    url, _ = platform
    other = Pki()
    c = ReportingClient(url, token=TOKEN, signing_key=pki.entity_key, trust_anchors=[other.ca])
    with pytest.raises(SignatureVerificationError):
        c.submit_monthly_report(_payload())


def _raw(url, method, path, body=b"", **headers):
    h = {"Authorization": f"Bearer {TOKEN}", **headers}
    return requests.request(method, url + path, data=body, headers=h)


def test_negotiation_and_transport_errors_are_problem_json(platform, pki):
    url, _ = platform
    path = "/v1/reporting/entities/91320500MA1X2P3Q4R"
    r = _raw(url, "GET", path, Accept="text/csv")
    assert r.status_code == 406 and r.json()["code"] == "NOT_ACCEPTABLE"
    assert r.headers["content-type"] == "application/problem+json"
    body = json.dumps(load_example("entity-power.json")).encode()
    from cedx.trust import sign_request
    signed = sign_request(pki.entity_key, "PUT", path, "", body)
    r = _raw(url, "PUT", path, body, **{"Content-Type": "text/csv"}, **signed)
    assert r.status_code == 415 and r.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"
    big = b"{" + b" " * (300 * 1024) + b"}"
    r = _raw(url, "PUT", path, big, **{"Content-Type": "application/json"}, **sign_request(pki.entity_key, "PUT", path, "", big))
    assert r.status_code == 413 and r.json()["code"] == "PAYLOAD_TOO_LARGE"
    bad = b'{"specVersion": "1.0",'
    r = _raw(url, "PUT", path, bad, **{"Content-Type": "application/json"}, **sign_request(pki.entity_key, "PUT", path, "", bad))
    assert r.status_code == 400 and r.json()["code"] == "MALFORMED_BODY"
    xxe = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Entity xmlns="urn:cedx:1.0">&e;</Entity>'
    r = _raw(url, "PUT", path, xxe, **{"Content-Type": "application/xml"}, **sign_request(pki.entity_key, "PUT", path, "", xxe))
    assert r.status_code == 400 and r.json()["code"] == "XML_FORBIDDEN_CONSTRUCT"
    assert "root:" not in r.text
    r = _raw(url, "POST", "/v1/reporting/monthly-reports", b"{}", **{"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "IDEMPOTENCY_KEY_REQUIRED"
    r = _raw(url, "GET", "/v1/reporting/submissions?limit=zero")
    assert r.status_code == 400 and r.json()["code"] == "INVALID_PARAMETER"
    r = _raw(url, "GET", "/v1/reporting/submissions?limit=501")
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "SCHEMA-MAXIMUM"
    r = _raw(url, "GET", "/v1/reporting/submissions?state=lost")
    assert r.status_code == 400 and r.json()["errors"][0]["rule"] == "R-CODE-001"


def test_acquisition_client_is_grouped_separately():
    assert hasattr(AcquisitionClient, "list_measurement_batches") and hasattr(AcquisitionClient, "iter_measurement_batches")
    assert not hasattr(AcquisitionClient, "submit_monthly_report")
