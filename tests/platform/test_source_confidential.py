"""Confidentiality mode of the acquisition interface over loopback HTTP (docs/key-exchange.md §6):
SM2 key exchange with both confirmations, SM4-GCM encrypted pages of signed batches, and every
refusal (tampering, wrong key, replay, expiry, bad confirmation, untrusted certificate, downgrade)."""

import base64
import datetime as dt
import json

import pytest
import requests

from cedx.acquisition import confidential as conf
from cedx.acquisition.app import create_source_app
from cedx.acquisition.pull import pull_batches
from cedx.generated.client import AcquisitionClient
from cedx.runtime.errors import ApiError
from cedx.trust import key_exchange as kx
from cedx.trust import sign_request
from cedx.trust import x509 as tx
from cedx.trust.keys import SM2PrivateKey

from ..loopback import serve

CST = dt.timezone(dt.timedelta(hours=8))
MONTH = dt.datetime(2026, 10, 1, tzinfo=CST)
RANGE = {"granularity": "minute", "from": "2026-10-01T00:00:00+08:00", "to": "2026-10-03T00:00:00+08:00"}
START = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)


def _pki(name):
    ca_key, key = SM2PrivateKey.generate(), SM2PrivateKey.generate()
    ca = tx.create_ca(ca_key, {"country_name": "CN", "common_name": f"{name} CA"}, not_before=START)
    cert = tx.issue_certificate(tx.create_csr(key, {"country_name": "CN", "common_name": name}), ca, ca_key,
                                not_before=START)
    return ca, conf.ClientCredentials(key, [cert, ca], "91320500MA1X2P3Q4R")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    client_ca, creds = _pki("accounting client")
    root = tmp_path_factory.mktemp("confidential")
    app = create_source_app("cement", root, ["tok-a", "tok-b"], commissioned=MONTH,
                            client_trust_anchors=[client_ca], confidential_only=True)
    source_ca = tx.load_certificate((root / "pki" / "ca.pem").read_bytes()).dump()
    with serve(app) as url:
        yield url, source_ca, creds, app


def _client(url, token="tok-a"):
    return AcquisitionClient(url, token=token)


def _hdr(token="tok-a"):
    return {"Authorization": f"Bearer {token}"}


def _signed_post(url, path, record, key, token="tok-a", headers=None):
    body = json.dumps(record).encode()
    headers = headers or sign_request(key, "POST", path, "", body)
    return requests.post(url + path, data=body, headers={**_hdr(token), "Content-Type": "application/json", **headers})


def test_full_pull_in_confidential_mode_verifies_and_hides_values(env):
    url, ca, creds, _ = env
    batches = list(pull_batches(_client(url), "CEM-CLINKER", trust_anchors=[ca], limit=1, confidential=creds,
                                granularity=RANGE["granularity"], from_=RANGE["from"], to=RANGE["to"]))
    assert [b.payload["sequenceNumber"] for b in batches] == [1, 2]
    assert [b.payload["count"] for b in batches] == [1440, 1440]
    # On the wire: one encrypted page, none of the clear page's content.
    session = conf.open_session(_client(url), creds, [ca])
    r = requests.get(f"{url}/v1/acquisition/sessions/{session.session_id}/points/CEM-CLINKER/batches",
                     params={**RANGE, "limit": 1}, headers=_hdr())
    wire = r.json()
    assert r.status_code == 200 and set(wire) == {"specVersion", "sessionId", "encryption", "contentType", "nonce", "ciphertext"}
    page = session.open_page(wire, point_id="CEM-CLINKER", cursor=None, limit=1, granularity="minute",
                             from_=RANGE["from"], to=RANGE["to"])
    values = page["items"][0]["payload"]
    clear = json.dumps(page, separators=(",", ":"))
    for secret in (values["pointId"], page["items"][0]["signature"]["value"], "sequenceNumber", "signature",
                   clear[len(clear) // 2:len(clear) // 2 + 24]):
        assert secret.encode() not in r.content
    assert r.headers.get("link") is None
    xml = requests.get(r.url, headers={**_hdr(), "Accept": "application/xml"})   # the outer form may be XML
    assert xml.status_code == 200 and xml.headers["content-type"].startswith("application/xml")
    assert b"<ciphertext>" in xml.content and b"sequenceNumber" not in xml.content


def test_tampered_wrong_key_replayed_and_moved_pages_are_refused(env):
    url, ca, creds, _ = env
    session = conf.open_session(_client(url), creds, [ca])
    path = f"{url}/v1/acquisition/sessions/{session.session_id}/points/CEM-CLINKER/batches"
    where = {"point_id": "CEM-CLINKER", "granularity": "minute", "from_": RANGE["from"], "to": RANGE["to"],
             "cursor": None, "limit": 1}
    wire = requests.get(path, params={**RANGE, "limit": 1}, headers=_hdr()).json()
    sealed = bytearray(base64.b64decode(wire["ciphertext"]))
    sealed[5] ^= 1
    with pytest.raises(conf.ConfidentialityError, match="does not decrypt"):
        session.open_page({**wire, "ciphertext": base64.b64encode(bytes(sealed)).decode()}, **where)
    wrong = conf.ClientSession(session.session_id, bytes(16), session.expires_at)
    with pytest.raises(conf.ConfidentialityError, match="does not decrypt"):
        wrong.open_page(wire, **where)
    with pytest.raises(conf.ConfidentialityError, match="does not decrypt"):   # AAD: another request's page
        session.open_page(wire, **{**where, "cursor": "1"})
    session.open_page(wire, **where)
    with pytest.raises(conf.ConfidentialityError, match="replay"):
        session.open_page(wire, **where)


def test_session_rules_expiry_owner_and_confirmation(env):
    url, ca, creds, app = env
    table = app.state.source.sessions
    r_a, big_r_a = kx.generate_ephemeral()
    body = {"specVersion": "1.0", "certificateChain": [base64.b64encode(c).decode() for c in creds.chain],
            "userId": creds.user_id, "ephemeralKey": base64.b64encode(big_r_a).decode()}
    offer = _signed_post(url, "/v1/acquisition/sessions", body, creds.key)
    assert offer.status_code == 201, offer.text
    replayed = _signed_post(url, "/v1/acquisition/sessions", body, creds.key, headers=json.loads(offer.request.headers
                            and json.dumps({k: v for k, v in offer.request.headers.items() if k.startswith("X-Cedx")})))
    assert (replayed.status_code, replayed.json()["code"]) == (401, "REQUEST_REPLAYED")
    sid = offer.json()["sessionId"]
    pages = f"{url}/v1/acquisition/sessions/{sid}/points/CEM-CLINKER/batches"
    assert requests.get(pages, params=RANGE, headers=_hdr()).json()["code"] == "SESSION_STATE_CONFLICT"
    confirm = f"/v1/acquisition/sessions/{sid}/confirmation"
    zeros = {"specVersion": "1.0", "confirmation": base64.b64encode(bytes(32)).decode()}
    assert _signed_post(url, confirm, zeros, creds.key, "tok-b").json()["code"] == "SESSION_UNKNOWN"  # another client
    unsigned = requests.post(url + confirm, json=zeros, headers=_hdr())
    assert (unsigned.status_code, unsigned.json()["code"]) == (401, "REQUEST_SIGNATURE_INVALID")   # must be signed
    forged = _signed_post(url, confirm, zeros, SM2PrivateKey.generate())
    assert (forged.status_code, forged.json()["code"]) == (401, "REQUEST_SIGNATURE_INVALID")
    bad = _signed_post(url, confirm, zeros, creds.key)
    assert (bad.status_code, bad.json()["code"]) == (403, "KEY_CONFIRMATION_FAILED")
    assert requests.get(pages, params=RANGE, headers=_hdr()).json()["code"] == "SESSION_UNKNOWN"  # K discarded

    session = conf.open_session(_client(url), creds, [ca])
    again = _signed_post(url, f"/v1/acquisition/sessions/{session.session_id}/confirmation", zeros, creds.key)
    assert (again.status_code, again.json()["code"]) == (409, "SESSION_STATE_CONFLICT")
    stolen = requests.get(f"{url}/v1/acquisition/sessions/{session.session_id}/points/CEM-CLINKER/batches",
                          params=RANGE, headers=_hdr("tok-b"))
    assert (stolen.status_code, stolen.json()["code"]) == (404, "SESSION_UNKNOWN")
    real_clock = table.clock
    table.clock = lambda: real_clock() + conf.SESSION_LIFETIME + 1
    try:
        expired = requests.get(f"{url}/v1/acquisition/sessions/{session.session_id}/points/CEM-CLINKER/batches",
                               params=RANGE, headers=_hdr())
    finally:
        table.clock = real_clock
    assert (expired.status_code, expired.json()["code"]) == (401, "SESSION_EXPIRED")
    with pytest.raises(ApiError) as err:     # a pull on the expired session fails with the problem
        list(pull_batches(_client(url), "CEM-CLINKER", trust_anchors=[ca], confidential=session,
                          granularity="minute", from_=RANGE["from"], to=RANGE["to"]))
    assert err.value.code == "SESSION_UNKNOWN"      # expiry removed it


def test_untrusted_certificates_and_mismatched_keys(env):
    url, ca, creds, _ = env
    _, stranger = _pki("stranger")
    with pytest.raises(ApiError) as err:
        conf.open_session(_client(url), stranger, [ca])
    assert (err.value.status, err.value.code) == (422, "CERTIFICATE_INVALID")
    other_ca, _ = _pki("other source CA")
    with pytest.raises(conf.ConfidentialityError, match="source certificate not trusted"):
        conf.open_session(_client(url), creds, [other_ca])
    # A client holding the certificate but not its key cannot even sign the handshake.
    impostor = conf.ClientCredentials(SM2PrivateKey.generate(), creds.chain, creds.user_id)
    with pytest.raises(ApiError) as err:
        conf.open_session(_client(url), impostor, [ca])
    assert (err.value.status, err.value.code) == (401, "REQUEST_SIGNATURE_INVALID")


def test_client_refuses_a_source_whose_confirmation_does_not_match(env):
    url, ca, creds, app = env
    table = app.state.source.sessions
    real_key = table.key
    table.key = SM2PrivateKey.generate()    # a source that shows the certificate without holding its key
    try:
        with pytest.raises(conf.ConfidentialityError, match="key confirmation failed"):
            conf.open_session(_client(url), creds, [ca])
    finally:
        table.key = real_key


def test_no_downgrade(env):
    url, ca, creds, _ = env
    clear = requests.get(f"{url}/v1/acquisition/points/CEM-CLINKER/batches", params=RANGE, headers=_hdr())
    assert (clear.status_code, clear.json()["code"]) == (403, "CONFIDENTIALITY_REQUIRED")
    session = conf.open_session(_client(url), creds, [ca])
    clear_page = {"specVersion": "1.0", "pointId": "CEM-CLINKER", "granularity": "minute", "items": []}
    with pytest.raises(conf.ConfidentialityError, match="downgrade"):
        session.open_page(clear_page, point_id="CEM-CLINKER", granularity="minute", from_=RANGE["from"],
                          to=RANGE["to"], cursor=None, limit=None)


def test_source_without_client_anchors_offers_no_confidentiality(tmp_path):
    _, creds = _pki("client")
    app = create_source_app("cement", tmp_path, ["tok-a"], commissioned=MONTH, client_trust_anchors=[])
    with serve(app) as url:
        with pytest.raises(ApiError) as err:
            conf.open_session(_client(url), creds, [])
        assert (err.value.status, err.value.code) == (403, "CONFIDENTIALITY_UNAVAILABLE")


def test_inspector_case_a9_4(tmp_path):
    from cedx.inspect.runner import run
    from cedx.inspect.target import Target

    client_ca, creds = _pki("inspector")
    month = (dt.datetime.now(CST) - dt.timedelta(days=4)).replace(hour=0, minute=0, second=0, microsecond=0)
    app = create_source_app("power", tmp_path, ["tok-a"], commissioned=month, client_trust_anchors=[client_ca])
    ca = tx.load_certificate((tmp_path / "pki" / "ca.pem").read_bytes()).dump()
    with serve(app) as url:
        verdicts = {}
        for given in (creds, None):
            report = run(Target(url=url, interface="acquisition", trust_anchors=[ca], token_value="tok-a",
                                confidential=given), [9])
            case = next(c for c in report["items"][0]["cases"] if c["case_id"] == "A9.4")
            verdicts[given is not None] = (case["verdict"], case["reason"])
    assert verdicts[True][0] == "pass", verdicts[True]
    assert verdicts[False][0] == "not-applicable"
