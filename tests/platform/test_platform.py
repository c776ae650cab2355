"""The reference platform over real HTTP: the reporting flow and every rejection."""

import datetime as dt
import json
import uuid

import pytest
import requests
from sqlalchemy import update

from cedx import trust
from cedx.platform.db import TokenRow
from cedx.runtime.client import Format
from cedx.runtime.errors import (
    AuthenticationError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    UnprocessableError,
)
from cedx.trust import tsa as tts

from ..spec.conftest import load_example


def test_configuration_document_is_signed_by_the_platform(env):
    config = env.common().get_configuration()  # verified on receipt against the platform CA
    assert config.payload.endpoints.token.endswith("/oauth/token")
    trust.verify_document(config, env.admin.pki.platform_key.public_key())


@pytest.mark.parametrize("fmt", [Format.JSON, Format.XML])
def test_full_reporting_flow(env, fmt):
    from cedx.generated import models

    c = env.client(env.power, fmt)
    entity = load_example("entity-power.json")
    if fmt is Format.JSON:
        assert c.register_entity(models.Entity.model_validate(entity)).credit_code == env.power.credit_code
        with pytest.raises(ConflictError) as exc:
            c.register_entity(models.Entity.model_validate(entity))
        assert exc.value.code == "ENTITY_EXISTS"
        c.put_facility(env.power.credit_code, "PWR-U1", models.Facility.model_validate(load_example("facility-power.json")))
        assert [f.facility_id for f in c.list_facilities(env.power.credit_code).items] == ["PWR-U1"]
    report = env.power.report()
    report.period = "2026-08" if fmt is Format.JSON else "2026-07"
    report.report_id = uuid.uuid4()
    receipt = c.submit_monthly_report(report)
    assert receipt.payload.version == 1 and receipt.payload.submission_kind.value == "original"
    # The receipt is signed by the platform and time-stamped by its TSA over the signature.
    verified = c.verify_signed(receipt.model_dump(mode="json", by_alias=True, exclude_none=True))
    info = tts.verify_token(verified.timestamp_token, imprint=trust.sm3(verified.signature), trust_anchors=[env.ca])
    assert abs((info.gen_time - dt.datetime.now(dt.timezone.utc)).total_seconds()) < 60
    sid = str(receipt.payload.submission_id)
    stored = c.get_monthly_report(sid)
    assert trust.sm3(trust.canonicalize(stored)).hex() == receipt.payload.document_digest
    trust.verify_document(stored, env.power.key.public_key())
    # Correction: a new version replaces the accepted one.
    corrected = report.model_copy(deep=True)
    corrected.submission_kind = models.SubmissionKind.correction
    corrected.replaces_submission_id = receipt.payload.submission_id
    corrected.reason = "修正 / corrected"
    corrected.report_id = uuid.uuid4()
    second = c.submit_monthly_report(corrected)
    assert second.payload.version == 2 and str(second.payload.supersedes) == sid
    assert c.get_submission_status(sid).state.value == "superseded"
    assert c.get_submission_status(str(second.payload.submission_id)).state.value == "accepted"
    # Correcting the superseded version again is refused.
    again = corrected.model_copy(update={"report_id": uuid.uuid4()})
    with pytest.raises(ConflictError) as exc:
        c.submit_monthly_report(again)
    assert exc.value.code == "SUBMISSION_CONFLICT"


def test_signature_algorithms_reports_either_answers_readable_by_earlier_releases(env):
    """A client signs with SM2-with-SM3-prehash by default or SM2-with-SM3 when told; the platform
    accepts both and stores each as sent; its own answers (receipts, configuration) are signed
    with SM2-with-SM3, which clients of earlier releases verify."""
    from cedx.runtime.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        env.client(env.power, signature_algorithm="SM2-with-SHA256")
    for algorithm, period in ((None, "2022-05"), (trust.ALGORITHM, "2022-07")):
        c = env.client(env.power, **({"signature_algorithm": algorithm} if algorithm else {}))
        report = env.power.report()
        report.period, report.report_id = period, uuid.uuid4()
        receipt = c.submit_monthly_report(report)
        stored = c.get_monthly_report(str(receipt.payload.submission_id)).model_dump(
            mode="json", by_alias=True, exclude_none=True)
        assert stored["signature"]["algorithm"] == (algorithm or trust.PREHASH_ALGORITHM)
        assert trust.sm3(trust.canonicalize(stored)).hex() == receipt.payload.document_digest
        assert receipt.signature.algorithm.value == trust.ALGORITHM
    assert env.common().get_configuration().signature.algorithm.value == trust.ALGORITHM


def test_listing_pages_through_everything(env):
    c = env.client(env.cement)
    for month in range(1, 6):
        report = env.cement.report()
        report.period, report.report_id = f"2025-{month:02d}", uuid.uuid4()
        c.submit_monthly_report(report)
    page = c.list_submissions(limit=2)
    assert len(page.items) == 2 and page.next_cursor
    everything = list(c.iter_submissions(limit=2, period=None))
    assert len([s for s in everything if s.period.startswith("2025-")]) == 5
    assert [s.period for s in c.list_submissions(period="2025-03").items] == ["2025-03"]
    raw = requests.get(f"{env.url}/v1/reporting/submissions?limit=1",
                       headers={"Authorization": f"Bearer {env.tokens(env.cement).token()}"})
    assert 'rel="next"' in raw.headers["Link"]
    # Following the Link keeps the filters: the next page of accepted monthly reports holds no
    # superseded or annual submission.
    auth = {"Authorization": f"Bearer {env.tokens(env.cement).token()}"}
    url = f"{env.url}/v1/reporting/submissions?limit=1&documentType=monthly_report&state=accepted"
    seen = []
    while url:
        r = requests.get(url, headers=auth)
        assert r.status_code == 200
        seen += [(i["documentType"], i["state"]) for i in r.json()["items"]]
        link = r.headers.get("Link")
        url = link[1:link.index('>')] if link else None   # absolute, at the announced base URL
        assert link is None or ("documentType=monthly_report" in link and "state=accepted" in link)
    assert len(seen) >= 5 and set(seen) == {("monthly_report", "accepted")}


def test_idempotency(env):
    c = env.client(env.power)
    report = env.power.report()
    report.period, report.report_id = "2024-01", uuid.uuid4()
    signed = trust.sign_document(report, env.power.key, certificate_chain=[env.power.cert], envelope_fields={"specVersion": "1.0"})
    key = str(uuid.uuid4())
    first = c.submit_monthly_report(signed, idempotency_key=key)
    second = c.submit_monthly_report(signed, idempotency_key=key)
    assert first == second
    other = json.loads(json.dumps(signed))
    other["payload"]["reason"] = "x"
    other["payload"]["submissionKind"] = "supplementary"
    other = trust.sign_document(other["payload"], env.power.key, envelope_fields={"specVersion": "1.0"})
    with pytest.raises(ConflictError) as exc:
        c.submit_monthly_report(other, idempotency_key=key)
    assert exc.value.code == "IDEMPOTENCY_CONFLICT"
    # A second original for the same month with a new key is a state conflict.
    with pytest.raises(ConflictError) as exc:
        c.submit_monthly_report(report.model_copy(update={"report_id": uuid.uuid4()}))
    assert exc.value.code == "SUBMISSION_CONFLICT"


def test_entities_see_only_their_own_data(env):
    power, cement = env.client(env.power), env.client(env.cement)
    report = env.power.report()
    report.period, report.report_id = "2024-05", uuid.uuid4()
    sid = str(power.submit_monthly_report(report).payload.submission_id)
    with pytest.raises(NotFoundError):
        cement.get_submission_status(sid)
    with pytest.raises(NotFoundError):
        cement.get_monthly_report(sid)
    with pytest.raises(ForbiddenError) as exc:
        cement.get_entity(env.power.credit_code)
    assert exc.value.code == "ENTITY_FORBIDDEN"
    # A document for another entity, even correctly signed by its own key, is refused.
    with pytest.raises(ForbiddenError) as exc:
        env.client(env.cement, signing_key=env.cement.key).submit_monthly_report(env.power.report())
    assert exc.value.code == "ENTITY_FORBIDDEN"


def test_token_errors(env):
    with pytest.raises(AuthenticationError) as exc:
        env.client(env.power, token_provider=None, token="not-a-token").get_entity(env.power.credit_code)
    assert exc.value.code == "TOKEN_INVALID"
    token = env.tokens(env.power).token()
    with env.admin.sessions() as s:
        s.execute(update(TokenRow).values(expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1))
                  .where(TokenRow.token_hash == trust.sm3(token.encode()).hex()))
        s.commit()
    with pytest.raises(AuthenticationError) as exc:
        env.client(env.power, token_provider=None, token=token).get_entity(env.power.credit_code)
    assert exc.value.code == "TOKEN_EXPIRED"
    read_only = env.client(env.power, token_provider=env.tokens(env.power, "reporting:read"))
    with pytest.raises(ForbiddenError) as exc:
        read_only.submit_monthly_report(env.power.report())
    assert exc.value.code == "SCOPE_INSUFFICIENT"
    r = requests.post(f"{env.url}/oauth/token", data={"grant_type": "client_credentials",
                      "client_id": f"{env.power.credit_code}-erp", "client_secret": "wrong"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = requests.post(f"{env.url}/oauth/token", data={"grant_type": "client_credentials",
                      "client_id": f"{env.power.credit_code}-erp", "client_secret": env.power.secret, "scope": "acquisition:read"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    r = requests.post(f"{env.url}/oauth/token", data={"grant_type": "password", "client_id": "x", "client_secret": "y"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_signature_and_certificate_rejections(env):
    report = env.power.report()
    report.period, report.report_id = "2024-03", uuid.uuid4()
    stranger = trust.generate_private_key()
    with pytest.raises(AuthenticationError) as exc:  # the request itself signed by an unknown key
        env.client(env.power, signing_key=stranger).submit_monthly_report(report)
    assert exc.value.code == "REQUEST_SIGNATURE_INVALID"
    by_stranger = trust.sign_document(report, stranger, envelope_fields={"specVersion": "1.0"})
    with pytest.raises(UnprocessableError) as exc:  # a document signed by a key nobody registered
        env.client(env.power).submit_monthly_report(by_stranger)
    assert exc.value.code == "CERTIFICATE_INVALID"
    signed = trust.sign_document(report, env.power.key, envelope_fields={"specVersion": "1.0"})
    signed["payload"]["entityName"] = "篡改 / tampered"
    with pytest.raises(UnprocessableError) as exc:
        env.client(env.power).submit_monthly_report(signed)
    assert exc.value.code == "SIGNATURE_INVALID"


def test_quality_rule_failure(env):
    report = env.power.report()
    report.period, report.report_id = "2024-07", uuid.uuid4()
    report.power.units[0].coal_consumption.value += 1000
    with pytest.raises(UnprocessableError) as exc:
        env.client(env.power, Format.XML, validate=False).submit_monthly_report(report)  # the platform's check
    assert exc.value.code == "RULE_VIOLATION"
    assert ("R-POW-001", "$.payload.power.units[0]") in [(e.rule, e.path) for e in exc.value.errors]


def _post(env, body: bytes, ctype: str):
    from cedx.trust import sign_request

    path = "/v1/reporting/monthly-reports"
    headers = {"Authorization": f"Bearer {env.tokens(env.power).token()}", "Content-Type": ctype,
               "Idempotency-Key": str(uuid.uuid4()), **sign_request(env.power.key, "POST", path, "", body)}
    return requests.post(env.url + path, data=body, headers=headers)


def test_transport_rejections(env):
    r = _post(env, b'{"specVersion": "1.0", ', "application/json")
    assert r.status_code == 400 and r.json()["code"] == "MALFORMED_BODY"
    r = _post(env, b"<SignedMonthlyReport xmlns='urn:cedx:1.0'><payload>", "application/xml")
    assert r.status_code == 400 and r.json()["code"] == "MALFORMED_BODY"
    xxe = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           b'<SignedMonthlyReport xmlns="urn:cedx:1.0">&x;</SignedMonthlyReport>')
    r = _post(env, xxe, "application/xml")
    assert r.status_code == 400 and r.json()["code"] == "XML_FORBIDDEN_CONSTRUCT" and "root:" not in r.text
    r = _post(env, b"x" * (11 * 1024 * 1024), "application/json")
    assert r.status_code == 413 and r.json()["code"] == "PAYLOAD_TOO_LARGE"
    r = _post(env, b"a,b\n", "text/csv")
    assert r.status_code == 415
    r = _post(env, b'{"specVersion": "1.0", "payload": {"x": NaN}}', "application/json")
    assert r.status_code == 400
    body = json.dumps({"specVersion": "1.0"}).encode()
    from cedx.trust import sign_request

    path = "/v1/reporting/monthly-reports"
    headers = {"Authorization": f"Bearer {env.tokens(env.power).token()}", "Content-Type": "application/json",
               "Idempotency-Key": str(uuid.uuid4()), **sign_request(env.power.key, "POST", path, "", body)}
    assert requests.post(env.url + path, data=body, headers=headers).status_code == 422
    r = requests.post(env.url + path, data=body, headers=headers)  # the same signed request again
    assert r.status_code == 401 and r.json()["code"] == "REQUEST_REPLAYED"


def test_openapi_and_docs_are_served(env):
    assert requests.get(f"{env.url}/openapi.json").json()["info"]["version"]
    html = requests.get(f"{env.url}/docs").text
    assert "op-submitMonthlyReport" in html and "<script src" not in html  # inline search script only


def test_time_stamp_authority_over_http(env, openssl):
    from cedx.trust import tsa as tts

    imprint = trust.sm3(b"an auditor's file")
    query = tts.make_request(imprint)
    r = requests.post(f"{env.url}/tsa", data=query, headers={"Content-Type": "application/timestamp-query"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/timestamp-reply"
    token = tts.token_from_response(r.content, query)
    assert tts.verify_token(token, imprint=imprint, trust_anchors=[env.ca]).policy == tts.DEFAULT_POLICY
    openssl.write("r.tsr", r.content)
    assert "Status: Granted." in openssl.run("ts", "-reply", "-in", "r.tsr", "-text").stdout.decode()
    assert requests.post(f"{env.url}/tsa", data=b"x", headers={"Content-Type": "text/plain"}).status_code == 415


def test_json_document_is_stored_as_text_byte_for_byte(env):
    """The received JSON body goes to the database as its bytes (no decode/encode on the way,
    issue 14) yet is stored as TEXT equal to the body, non-ASCII characters included, and read
    back and served as such."""
    from sqlalchemy import select, text

    from cedx.platform.db import SubmissionRow

    c = env.client(env.cement)
    report = env.cement.report()
    report.period, report.report_id = "2026-10", uuid.uuid4()
    receipt = c.submit_monthly_report(report)
    sid = str(receipt.payload.submission_id)
    store = env.app.state.store
    with store.sessions() as s:
        stored = s.execute(select(SubmissionRow.document).where(SubmissionRow.submission_id == sid)).scalar_one()
        if store.sqlite:
            kind = s.execute(text("SELECT typeof(document) FROM submissions WHERE submission_id = :s"), {"s": sid})
            assert kind.scalar_one() == "text"
    assert isinstance(stored, str) and not stored.isascii()  # the example's names are Chinese
    document = json.loads(stored)
    trust.verify_document(document, env.cement.key.public_key())
    assert trust.sm3(trust.canonicalize(document)).hex() == receipt.payload.document_digest
    assert trust.sm3(trust.canonicalize(c.get_monthly_report(sid))).hex() == receipt.payload.document_digest
