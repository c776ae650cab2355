"""Trust profile §8: the order of checks on receipt, as documented, over loopback: when a request
is wrong in two ways, the earlier check answers."""

import json
import uuid

import requests

from cedx import trust

from ..spec.conftest import load_example

PATH = "/v1/reporting/monthly-reports"


def _post(env, body: bytes, *, token: str | None, key=None, content_type="application/json"):
    headers = {"Content-Type": content_type, "Accept": "application/json", "Idempotency-Key": str(uuid.uuid4())}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if key is not None:
        headers.update(trust.sign_request(key, "POST", PATH, "", body))
    return requests.post(env.url + PATH, data=body, headers=headers, timeout=30)


def _code(resp) -> tuple[int, str]:
    assert resp.headers["Content-Type"].startswith("application/problem+json"), resp.text
    return resp.status_code, resp.json()["code"]


def _document(env, entity, key, **changes) -> bytes:
    payload = {**load_example("monthly-report-power.json")["payload"], "reportId": str(uuid.uuid4()), **changes}
    doc = trust.sign_document(payload, key, envelope_fields={"specVersion": "1.0"})
    return json.dumps(doc).encode()


def test_token_before_request_signature_before_parsing(env):
    token = env.tokens(env.power).token()
    key = env.power.key
    assert _code(_post(env, b"{not json", token="bogus", key=key)) == (401, "TOKEN_INVALID")
    assert _code(_post(env, b"{not json", token=token, key=None)) == (401, "REQUEST_SIGNATURE_INVALID")
    assert _code(_post(env, b"{not json", token=token, key=key)) == (400, "MALFORMED_BODY")


def test_rules_before_entity_certificate_and_signature(env):
    token = env.tokens(env.power).token()
    key = env.power.key
    # September has 720 hours; a unit of the example runs 744 (R-POW-004) — and the document is
    # for the other entity: the rule failure answers first (step 8 before step 9).
    bad_both = _document(env, env.power, key, period="2016-09", creditCode=env.cement.credit_code)
    assert _code(_post(env, bad_both, token=token, key=key)) == (422, "RULE_VIOLATION")
    # Another entity's document that satisfies the rules: 403 before any certificate check.
    other = _document(env, env.power, key, period="2016-10", creditCode=env.cement.credit_code)
    assert _code(_post(env, other, token=token, key=key)) == (403, "ENTITY_FORBIDDEN")
    # A key with no registered certificate signs the document but not the request: the request
    # signature fails first (401, step 6); with the request signed by the registered key, the
    # document key is the certificate problem (422 CERTIFICATE_INVALID, step 10).
    stranger = trust.generate_private_key()
    doc = _document(env, env.power, stranger, period="2016-10")
    assert _code(_post(env, doc, token=token, key=stranger)) == (401, "REQUEST_SIGNATURE_INVALID")
    assert _code(_post(env, doc, token=token, key=key)) == (422, "CERTIFICATE_INVALID")
    tampered = json.loads(_document(env, env.power, key, period="2016-10"))
    tampered["payload"]["entityName"] += "（改）"
    assert _code(_post(env, json.dumps(tampered).encode(), token=token, key=key)) == (422, "SIGNATURE_INVALID")
