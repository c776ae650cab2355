"""Rules of docs/trust-profile.md that the conformance flow does not reach, each sent by the
independent client (stdlib + openssl, no cedx) to the reference platform exactly as the profile
words them: I-JSON and fraction digits (§1.2, §1.4), signed reads, timestamp forms, nonce bounds,
replay window (§5), a non-default SM2 user ID under both algorithms (§2, §6), the freshness
window (§9), the token endpoint (§10), XML DTDs (§12) and idempotency across formats (§3)."""

import base64
import datetime as dt
import json
import re
import secrets
import urllib.parse
import uuid

import pytest

from .client import PROFILE, REPO, http
from .test_conformance import POWER, cedx_cli, problem, report
from .test_profile_text import check_problem

pytestmark = pytest.mark.openssl


def _post(client, body: bytes, media="application/json"):
    return client.request("POST", "/v1/reporting/monthly-reports", body=body, sign=True,
                          headers={"Content-Type": media, "Idempotency-Key": str(uuid.uuid4())})


def _now(offset: float = 0.0, tz=dt.timezone.utc, fmt="%Y-%m-%dT%H:%M:%SZ"):
    return (dt.datetime.now(tz) + dt.timedelta(seconds=offset)).strftime(fmt)


def test_non_i_json_is_400_and_ten_fraction_digits_422(power):
    text = json.dumps(power.sign_document(report(POWER, period="2025-01")), ensure_ascii=False)
    extra = lambda member: text.replace('"specVersion": "1.0"', f'"specVersion": "1.0", {member}', 1).encode()  # noqa: E731
    for body in (extra('"x": 9007199254740993'), extra('"x": NaN'), extra('"x": "\\ud800"'),
                 extra('"specVersion": "1.0"'), text.encode().replace(b'"specVersion"', b'"spec\xffVersion"', 1)):
        problem(_post(power, body), 400, "MALFORMED_BODY")
    problem(_post(power, text.replace('"value": "35.20"', '"value": 35.2', 1).encode()), 422, "SCHEMA_VIOLATION")
    sent = json.loads(text)
    sent["payload"]["preparedAt"] = sent["payload"]["preparedAt"][:19] + ".1234567891Z"  # never cut to nine digits
    body = problem(_post(power, json.dumps(sent).encode()), 422, "SCHEMA_VIOLATION")
    assert any(e["path"] == "$.payload.preparedAt" for e in body["errors"]), body
    dtd = _post(power, b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "b">]><SignedMonthlyReport xmlns="urn:cedx:1.0"/>',
                "application/xml")
    check_problem(problem(dtd, 400, "XML_FORBIDDEN_CONSTRUCT"))  # JSON problem although XML was sent
    check_problem(body)


def test_signed_reads_timestamp_forms_nonces_and_window(power):
    def get(stamp, nonce, signature=None, key_id=None, path="/v1/reporting/submissions"):
        lines = ["CEDX-SM2-SM3", "GET", path, "", stamp, nonce, power.ssl.sm3(b"")]
        value = signature or base64.b64encode(power.ssl.sign(power.key_pem, "\n".join(lines).encode())).decode()
        return http("GET", power.base_url + path, {"Authorization": f"Bearer {power.token}", "X-Cedx-Timestamp": stamp,
                                                   "X-Cedx-Nonce": nonce, "X-Cedx-Key-Id": key_id or power.key_id,
                                                   "X-Cedx-Signature": value})

    assert get(_now(), secrets.token_hex(16)).status == 200  # reads MAY be signed ...
    problem(get(_now(), secrets.token_hex(16), signature=base64.b64encode(bytes(70)).decode()),  # ... and are then verified
            401, "REQUEST_SIGNATURE_INVALID")
    # receivers accept any DateTime and sign the text as received
    beijing = _now(tz=dt.timezone(dt.timedelta(hours=8)), fmt="%Y-%m-%dT%H:%M:%S.250+08:00")
    assert get(beijing, secrets.token_hex(16)).status == 200
    assert get(_now(), "aB_-" * 16).status == 200  # 64 characters of the allowed set
    problem(get(_now(), "a" * 15), 401, "REQUEST_SIGNATURE_INVALID")
    problem(get(_now(), "a" * 16 + "."), 401, "REQUEST_SIGNATURE_INVALID")
    nonce = secrets.token_hex(16)
    assert get(_now(), nonce).status == 200
    problem(get(_now(), nonce), 401, "REQUEST_REPLAYED")
    problem(get(_now(-400), secrets.token_hex(16)), 401, "REQUEST_REPLAYED")
    problem(get(_now(), secrets.token_hex(16), key_id="ab" * 32), 401, "REQUEST_SIGNATURE_INVALID")


def test_a_non_default_user_id_under_both_algorithms(power):
    """§2/§6: a block carrying `userId` is signed and verified with that ID (UTF-8)."""
    cert = base64.b64encode(power.ssl.run("x509", "-in", power.cert_pem, "-outform", "DER").stdout).decode()
    for period, user_id, algorithm in (("2025-07", "91320500MA1X2P3Q4R", "SM2-with-SM3"),
                                       ("2025-05", "华东示范电厂", "SM2-with-SM3-prehash")):
        block = {"algorithm": algorithm, "canonicalization": "cedx-jcs-1", "keyId": power.key_id, "userId": user_id,
                 "signingTime": _now()}
        sent = {"specVersion": "1.0", "payload": report(POWER, period=period), "signature": block}
        value = power.ssl.run("dgst", "-sm3", "-sign", power.key_pem, "-sigopt", f"distid:{user_id}",
                              input=power.signed_message(sent)).stdout
        block.update(value=base64.b64encode(value).decode(), certificateChain=[cert])
        power.check_receipt(power.submit(sent), sent)
        block["userId"] = "1234567812345678"  # the same value under another ID is not a signature
        sent["payload"]["reportId"] = str(uuid.uuid4())
        problem(power.submit(sent), 422, "SIGNATURE_INVALID")


def test_signing_time_from_the_future_is_refused(power):
    body = problem(power.submit(power.sign_document(report(POWER, period="2025-03"), signing_time=_now(400))),
                   422, "SIGNATURE_INVALID")
    assert [e["path"] for e in body["errors"]] == ["$.signature.signingTime"]


def test_the_same_document_as_xml_under_the_same_key_is_a_replay(power):
    sent = power.sign_document(report(POWER, period="2025-08"))
    key = str(uuid.uuid4())
    first = power.check_receipt(power.submit(sent, key=key), sent)
    again = power.submit(sent, key=key, xml=True)
    assert again.status == 201 and again.headers.get("idempotency-replayed") == "true"
    assert power.record(again)["payload"] == power.record(power.submit(sent, key=key))["payload"]
    assert power.record(again)["payload"]["submissionId"] == first["submissionId"]


def test_token_endpoint_client_authentication(power):
    basic = base64.b64encode(f"{urllib.parse.quote_plus(power.client_id)}:{urllib.parse.quote_plus(power.client_secret)}"
                             .encode()).decode()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    both = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": power.client_id,
                                   "client_secret": power.client_secret}).encode()
    answer = http("POST", power.base_url + "/oauth/token", {**form, "Authorization": f"Basic {basic}"}, both)
    assert answer.status == 400 and answer.json()["error"] == "invalid_request"
    wrong = base64.b64encode(f"{power.client_id}:wrong".encode()).decode()
    answer = http("POST", power.base_url + "/oauth/token", {**form, "Authorization": f"Basic {wrong}"},
                  b"grant_type=client_credentials")
    assert answer.status == 401 and answer.json()["error"] == "invalid_client"
    assert answer.headers["www-authenticate"].startswith("Basic")
    assert http("POST", power.base_url + "/oauth/token", form, both).status == 200  # body parameters alone


def test_the_token_example_of_section_10_as_written(platform, monkeypatch):
    """§10's example: the Authorization header is the form-encoded id and secret, and the platform
    takes exactly that request (same secret, with '/', '+' and a space) for a client it knows."""
    section = PROFILE.read_text(encoding="utf-8").split('<a id="oauth"></a>', 1)[1].split('<a id="urls"></a>', 1)[0]
    client_id, secret = re.search(r"`client_id` = `([^`]+)`，`client_secret` = `([^`]+)`", section).groups()
    block = re.search(r"```\n(POST /oauth/token\n.*?)```", section, re.S).group(1)
    head, body = block.split("\n\n", 1)
    headers = dict(line.split(": ", 1) for line in head.splitlines()[1:])
    user, _, password = base64.b64decode(headers["Authorization"].removeprefix("Basic ")).decode().partition(":")
    assert (urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(password)) == (client_id, secret)
    assert urllib.parse.quote_plus(secret) in section  # the form-encoded secret the text shows
    code = client_id.rsplit("-", 1)[0]
    monkeypatch.setenv("CEDX_PROFILE_EXAMPLE_SECRET", secret)
    cedx_cli("platform", "add-client", code, "--client-id", client_id.replace("-erp", "-profile"),
             "--secret-env", "CEDX_PROFILE_EXAMPLE_SECRET", data_dir=platform["dir"])
    basic = base64.b64encode(f"{urllib.parse.quote_plus(client_id.replace('-erp', '-profile'))}:"
                             f"{urllib.parse.quote_plus(secret)}".encode()).decode()
    answer = http("POST", platform["base"] + "/oauth/token",
                  {"Authorization": f"Basic {basic}", "Content-Type": headers["Content-Type"]}, body.strip().encode())
    assert answer.status == 200, answer.body
    assert set(answer.json()["scope"].split()) == {"reporting:submit", "reporting:read"}


def test_idempotency_keys_are_scoped_to_the_entity(power, cement):
    """Spec `Idempotency-Key`: another entity's use of the same key is unrelated (no 409, no replay)."""
    from .test_conformance import CEMENT

    key = f"shared-{uuid.uuid4().hex}"
    sent = power.sign_document(report(POWER, period="2024-01"))
    first = power.check_receipt(power.submit(sent, key=key), sent)
    other = cement.sign_document(report(CEMENT, period="2024-01"))
    answer = cement.submit(other, key=key)
    assert "idempotency-replayed" not in answer.headers
    assert cement.check_receipt(answer, other)["submissionId"] != first["submissionId"]


def test_a_submitters_time_stamp_token_is_stored_as_received(power):
    """§2: the platform keeps a submitted document's timestampToken unevaluated, and it counts in
    documentDigest (it is outside the signing input, so the signature still verifies)."""
    from .client import canonical

    sent = power.sign_document(report(POWER, period="2024-07"))
    sent["signature"]["timestampToken"] = base64.b64encode(b"the submitter's own evidence").decode()
    receipt = power.check_receipt(power.submit(sent), sent)  # documentDigest covers the token
    stored = power.request("GET", f"/v1/reporting/monthly-reports/{receipt['submissionId']}").json()
    assert stored["signature"]["timestampToken"] == sent["signature"]["timestampToken"]
    assert power.ssl.sm3(canonical(stored, power.instants)) == receipt["documentDigest"]


def test_registration_is_not_a_prerequisite_but_updates_need_it(power):
    """Spec putFacility / updateEntity: a facility can be put for the token's entity before
    registerEntity; updating the entity's details needs the registration (404 until then)."""
    power.get_token("reporting:entity:write reporting:submit reporting:read")
    code = POWER["creditCode"]
    examples = REPO / "spec" / "examples"
    facility = json.loads((examples / "facility-power.json").read_text(encoding="utf-8"))
    entity = json.loads((examples / "entity-power.json").read_text(encoding="utf-8"))
    body = lambda record: json.dumps(record, ensure_ascii=False).encode()  # noqa: E731
    media = {"Content-Type": "application/json"}
    put = power.request("PUT", f"/v1/reporting/entities/{code}/facilities/{facility['facilityId']}",
                        body=body(facility), sign=True, headers=media)
    assert put.status == 200, put.body
    problem(power.request("PUT", f"/v1/reporting/entities/{code}", body=body(entity), sign=True, headers=media),
            404, "NOT_FOUND")
    registered = power.request("POST", "/v1/reporting/entities", body=body(entity), sign=True,
                               headers={**media, "Idempotency-Key": str(uuid.uuid4())})
    assert registered.status == 201, registered.body
    assert power.request("PUT", f"/v1/reporting/entities/{code}", body=body(entity), sign=True, headers=media).status == 200
    power.get_token()


def test_time_stamp_service_errors_as_section_4_states(power):
    """§4: query errors are a 200 TimeStampResp `rejection`; wrong media type 415, over 4096 bytes 413."""
    url = power.configuration()["endpoints"]["timestamp"]
    ssl = power.ssl
    media = {"Content-Type": "application/timestamp-query"}

    def status_text(body: bytes) -> str:
        answer = http("POST", url, media, body)
        assert answer.status == 200 and answer.media == "application/timestamp-reply", answer.status
        return ssl.run("ts", "-reply", "-in", ssl.file(answer.body), "-text").stdout.decode()

    assert "Rejected" in status_text(b"not DER") and "wrong format" in status_text(b"not DER")
    sha256 = ssl.run("ts", "-query", "-digest", "ab" * 32, "-sha256", "-cert").stdout
    assert "unsupported algorithm" in status_text(sha256)
    sm3 = ssl.run("ts", "-query", "-digest", "ab" * 32, "-sm3", "-cert").stdout
    assert "Granted" in status_text(sm3)
    check_problem(problem(http("POST", url, {"Content-Type": "application/octet-stream"}, sm3),
                          415, "UNSUPPORTED_MEDIA_TYPE"))
    check_problem(problem(http("POST", url, media, sm3 + bytes(4097)), 413, "PAYLOAD_TOO_LARGE"))


def test_forgetting_distid_is_named_in_the_refusal(power):
    """§6: OpenSSL 3 has no default SM2 user ID; a vendor who leaves out -sigopt distid: is told so."""
    sent = power.sign_document(report(POWER, period="2024-08"))
    message = power.signed_message(sent)
    value = power.ssl.run("dgst", "-sm3", "-sign", power.key_pem, input=message).stdout  # no distid
    sent["signature"]["value"] = base64.b64encode(value).decode()
    body = problem(power.submit(sent), 422, "SIGNATURE_INVALID")
    assert "empty SM2 user ID" in body["detail"] and "distid:1234567812345678" in body["detail"]
    stamp, nonce = _now(), secrets.token_hex(16)
    lines = ["CEDX-SM2-SM3", "GET", "/v1/reporting/submissions", "", stamp, nonce, power.ssl.sm3(b"")]
    value = power.ssl.run("dgst", "-sm3", "-sign", power.key_pem, input="\n".join(lines).encode()).stdout
    answer = http("GET", power.base_url + "/v1/reporting/submissions", {
        "Authorization": f"Bearer {power.token}", "X-Cedx-Timestamp": stamp, "X-Cedx-Nonce": nonce,
        "X-Cedx-Key-Id": power.key_id, "X-Cedx-Signature": base64.b64encode(value).decode()})
    assert "empty SM2 user ID" in problem(answer, 401, "REQUEST_SIGNATURE_INVALID")["detail"]


def test_token_revocation_as_the_configuration_announces(power):
    """`endpoints.revocation`: RFC 7009, the client authenticating as at the token endpoint (§10)."""
    url = power.configuration()["endpoints"]["revocation"]
    token = power.get_token()
    assert power.request("GET", "/v1/reporting/submissions").status == 200
    basic = base64.b64encode(f"{urllib.parse.quote_plus(power.client_id)}:{urllib.parse.quote_plus(power.client_secret)}"
                             .encode()).decode()
    answer = http("POST", url, {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
                  urllib.parse.urlencode({"token": token, "token_type_hint": "access_token"}).encode())
    assert answer.status == 200
    problem(power.request("GET", "/v1/reporting/submissions"), 401, "TOKEN_INVALID")
    power.get_token()


def test_the_platform_crl_verifies_with_the_recipe(power, tmp_path):
    """`endpoints.crl` (DER, application/pkix-crl) checked with profile §13 recipe verify-crl."""
    import subprocess

    url = power.configuration()["endpoints"]["crl"]
    answer = http("GET", url)
    assert answer.status == 200 and answer.media == "application/pkix-crl"
    (tmp_path / "crl.der").write_bytes(answer.body)
    (tmp_path / "ca.pem").write_bytes((power.ssl.dir / power.anchor_pem).read_bytes())
    (tmp_path / "signer.pem").write_bytes((power.ssl.dir / power.cert_pem).read_bytes())
    recipe = re.search(r"<!-- recipe: verify-crl -->\n.*?```sh\n(.*?)```", PROFILE.read_text(encoding="utf-8"), re.S).group(1)
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", recipe], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0 and "signer.pem: not revoked" in proc.stdout, proc.stderr


def test_what_xml_cannot_carry_is_refused_as_section_1_2_says(power):
    """§1.2: beyond I-JSON, a BOM, numbers beyond doubles, nesting past 64 and characters XML 1.0
    cannot carry are 400; DEL and C1 controls are accepted (and answered in XML too)."""
    section = PROFILE.read_text(encoding="utf-8").split("**1.2", 1)[1].split("**1.3", 1)[0]
    assert all(word in section for word in ("BOM", "64", "U+FFFE", "TAB, LF and CR", "DEL"))
    for reason in ("a\u0001b", "a\ufffeb", "a\u001fb"):
        sent = power.sign_document(report(POWER, period="2024-10", reason=reason))
        check_problem(problem(_post(power, json.dumps(sent, ensure_ascii=False).encode()), 400, "MALFORMED_BODY"))
    text = json.dumps(power.sign_document(report(POWER, period="2024-10")))
    for body in (b"\xef\xbb\xbf" + text.encode(),
                 text.replace('"specVersion": "1.0"', '"specVersion": "1.0", "x": ' + "[" * 70 + "]" * 70, 1).encode(),
                 text.replace('"specVersion": "1.0"', '"specVersion": "1.0", "x": 1e400', 1).encode()):
        problem(_post(power, body), 400, "MALFORMED_BODY")
    sent = power.sign_document(report(POWER, period="2024-10", reason="tab\there, DEL\u007f, NEL\u0085"))
    receipt = power.check_receipt(power.submit(sent), sent)
    back = power.request("GET", f"/v1/reporting/monthly-reports/{receipt['submissionId']}", accept="application/xml")
    assert back.status == 200 and power.record(back)["payload"]["reason"] == sent["payload"]["reason"]


def test_signed_before_it_was_prepared_is_refused(power):
    """§9: signingTime ≥ payload.preparedAt − 300 s."""
    prepared = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    early = power.sign_document(report(POWER, period="2024-12", preparedAt=prepared), signing_time=_now(-400))
    body = problem(power.submit(early), 422, "SIGNATURE_INVALID")
    assert [e["path"] for e in body["errors"]] == ["$.signature.signingTime"]
    on_time = power.sign_document(report(POWER, period="2024-12", preparedAt=prepared), signing_time=_now(-200))
    power.check_receipt(power.submit(on_time), on_time)  # within the 300 s allowance
