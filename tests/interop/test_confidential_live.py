"""The acquisition interface's confidentiality mode driven by an independent client (stdlib +
openssl + tests/interop/gm.py, no cedx) from docs/key-exchange.md §6 alone, against the reference
source started through its command line: a client CA and certificate made with the OpenSSL
command line (profile §7 extensions), the signed handshake, S_B checked before S_A is sent,
encrypted pages opened with the derived key and AAD and their batches verified as in
docs/trust-batches.md; a wrong S_A discards the session."""

import base64
import datetime as dt
import json
import re
import secrets
import urllib.parse

import pytest

from . import gm
from .client import DISTID, OpenSSL, http
from .source_client import BatchReader
from .test_acquisition import POINT, _month_before
from .test_base_path import PREFIX, _proxy
from .test_conformance import _free_port, cedx_serving

pytestmark = pytest.mark.openssl
SECRET = "acq-secret-9876543210"
CODE = "91320500MA1X2P3Q4R"


def _client_pki(ssl: OpenSSL) -> None:
    """A client CA and an entity certificate made with openssl alone (SM2, distid everywhere)."""
    ssl.run("genpkey", "-algorithm", "SM2", "-out", "cca.key")
    ssl.run("req", "-x509", "-new", "-key", "cca.key", "-sm3", "-sigopt", DISTID, "-subj", "/C=CN/CN=ERP client CA",
            "-days", "30", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "cca.pem")
    ssl.run("genpkey", "-algorithm", "SM2", "-out", "client.key")
    ssl.run("req", "-new", "-key", "client.key", "-sm3", "-sigopt", DISTID, "-subj", f"/C=CN/CN={CODE}", "-out", "client.csr")
    (ssl.dir / "ext.cnf").write_text("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\n")
    ssl.run("x509", "-req", "-in", "client.csr", "-CA", "cca.pem", "-CAkey", "cca.key", "-CAcreateserial", "-sm3",
            "-sigopt", DISTID, "-vfyopt", DISTID, "-days", "30", "-extfile", "ext.cnf", "-out", "client.pem")
    ssl.run("verify", "-vfyopt", DISTID, "-CAfile", "cca.pem", "client.pem")


def _start(tmp_path_factory, prefixed: bool):
    ssl = OpenSSL(tmp_path_factory.mktemp("conf-client"))
    _client_pki(ssl)
    data = tmp_path_factory.mktemp("conf-source")
    port = _free_port()
    proxy = _proxy(port) if prefixed else None
    base = f"http://127.0.0.1:{proxy.server_address[1]}{PREFIX}" if proxy else f"http://127.0.0.1:{port}"
    env = {"CEDX_ACQ_SECRET": SECRET, "CEDX_SOURCE_CLIENT_CA": str(ssl.dir / "cca.pem")}
    commissioned = _month_before(dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date())
    try:
        with cedx_serving("acquisition", "--site", "power", "--dir", str(data), "--port", str(port),
                          "--client", "erp-acq:CEDX_ACQ_SECRET", "--commissioned", commissioned, "--public-url", base,
                          "--log-level", "warning", probe=f"{base}/.well-known/cedx-configuration", what="source",
                          env=env):
            (ssl.dir / "anchor.pem").write_bytes((data / "pki" / "ca.pem").read_bytes())  # out of band
            basic = base64.b64encode(f"erp-acq:{SECRET}".encode()).decode()
            token = http("POST", f"{base}/oauth/token", {"Authorization": f"Basic {basic}",
                                                          "Content-Type": "application/x-www-form-urlencoded"},
                         b"grant_type=client_credentials&scope=acquisition%3Aread").json()["access_token"]
            yield {"base": base, "ssl": ssl, "token": token, "commissioned": commissioned}
    finally:
        if proxy:
            proxy.shutdown()


@pytest.fixture(scope="module", params=["root", "base-path"])
def source(request, tmp_path_factory):
    """The source at its own root, and announced at …/cedx behind a proxy that removes the path."""
    yield from _start(tmp_path_factory, request.param == "base-path")


def _private_scalar(ssl: OpenSSL, key: str) -> int:
    text = ssl.run("pkey", "-in", key, "-text", "-noout").stdout.decode()
    block = text.split("priv:", 1)[1].split("pub:", 1)[0]
    return int(re.sub(r"[^0-9a-f]", "", block), 16)


def _signed_post(source, path: str, record: dict):
    """Profile §5 with the client certificate's key (§6.1: the handshake proves possession)."""
    ssl, body = source["ssl"], json.dumps(record).encode()
    pub = ssl.cert_pubkey("client.pem")
    stamp, nonce = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), secrets.token_hex(16)
    signed = urllib.parse.urlsplit(source["base"]).path + path  # the full path, base path included (profile §5)
    lines = ["CEDX-SM2-SM3", "POST", signed, "", stamp, nonce, ssl.sm3(body)]
    signature = base64.b64encode(ssl.sign("client.key", "\n".join(lines).encode())).decode()
    return http("POST", source["base"] + path, {
        "Authorization": f"Bearer {source['token']}", "Content-Type": "application/json", "Accept": "application/json",
        "X-Cedx-Timestamp": stamp, "X-Cedx-Nonce": nonce, "X-Cedx-Key-Id": ssl.key_id(pub), "X-Cedx-Signature": signature},
        body)


def _handshake(source):
    ssl = source["ssl"]
    d_a, r_a = _private_scalar(ssl, "client.key"), secrets.randbelow(gm.N - 1) + 1
    cert = ssl.run("x509", "-in", "client.pem", "-outform", "DER").stdout
    request = {"specVersion": "1.0", "certificateChain": [base64.b64encode(cert).decode()], "userId": CODE,
               "ephemeralKey": base64.b64encode(gm.point_bytes(gm.mul(r_a))).decode()}
    answer = _signed_post(source, "/v1/acquisition/sessions", request)
    assert answer.status == 201, answer.body
    offer = answer.json()
    assert offer["encryption"] == "SM4-GCM"
    # §6.1 step 2: the source's chain to our anchor, then S_B, before anything is sent
    chain = [base64.b64decode(c) for c in offer["certificateChain"]]
    signer = ssl.der_to_pem(chain[0])
    cmd = ["verify", "-vfyopt", DISTID, "-CAfile", "anchor.pem"]
    if len(chain) > 1:
        cmd += ["-untrusted", ssl.der_to_pem(chain[1])]
    ssl.run(*cmd, signer)
    p_b = ssl.run("pkey", "-pubin", "-in", ssl.cert_pubkey(signer), "-outform", "DER").stdout[-65:]
    agreed = gm.initiator(d_a, r_a, CODE.encode(), p_b, base64.b64decode(offer["ephemeralKey"]),
                          offer["userId"].encode(), 32)  # ID_B: the userId the source announces (its sourceId)
    assert base64.b64decode(offer["confirmation"]) == agreed["expected_s_b"], "S_B does not match"
    return offer, agreed


def test_handshake_pages_and_batches(source):
    offer, agreed = _handshake(source)
    sid = offer["sessionId"]
    confirmed = _signed_post(source, f"/v1/acquisition/sessions/{sid}/confirmation",
                             {"specVersion": "1.0", "confirmation": base64.b64encode(agreed["s_a"]).decode()})
    assert confirmed.status == 200 and confirmed.json()["status"] == "confirmed", confirmed.body
    page_key = gm.kdf(agreed["key"] + b"cedx-acq-v1 source-to-client pages\x00" + sid.encode("ascii"), 16)
    year, month = map(int, source["commissioned"].split("-"))
    start = dt.datetime(year, month, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    frm, to = start.isoformat(), (start + dt.timedelta(days=9)).isoformat()  # offsets as written: +08:00
    reader = BatchReader(source["ssl"], "anchor.pem", POINT, "hour")
    cursor, last, pages, batches = None, 0, 0, []
    while True:
        query = {"granularity": "hour", "from": frm, "to": to, "limit": 4, **({"cursor": cursor} if cursor else {})}
        answer = http("GET", f"{source['base']}/v1/acquisition/sessions/{sid}/points/{POINT}/batches?"
                      + urllib.parse.urlencode(query), {"Authorization": f"Bearer {source['token']}"})
        assert answer.status == 200, answer.body
        assert "link" not in answer.headers  # §6.4: the next cursor is inside the plaintext
        page = answer.json()
        assert page["sessionId"] == sid and page["contentType"] == "application/json"
        nonce = base64.b64decode(page["nonce"])
        counter = int.from_bytes(nonce[4:], "big")
        assert nonce[:4] == b"\x00\x00\x00\x01" and counter > last
        last, pages = counter, pages + 1
        aad = "\n".join(["cedx-acq-page-v1", sid, POINT, "hour", frm, to, cursor or "", "4", "application/json"]).encode()
        clear = json.loads(gm.gcm_decrypt(page_key, nonce, base64.b64decode(page["ciphertext"]), aad))
        batches += [reader.verify(b) for b in clear["items"]]
        cursor = clear.get("nextCursor")
        if not cursor:
            break
    assert pages >= 3 and [b["sequenceNumber"] for b in batches] == list(range(1, len(batches) + 1))


def test_a_wrong_confirmation_discards_the_session(source):
    offer, agreed = _handshake(source)
    sid = offer["sessionId"]
    wrong = _signed_post(source, f"/v1/acquisition/sessions/{sid}/confirmation",
                         {"specVersion": "1.0", "confirmation": base64.b64encode(agreed["expected_s_b"]).decode()})
    assert wrong.status == 403 and wrong.json()["code"] == "KEY_CONFIRMATION_FAILED"
    again = _signed_post(source, f"/v1/acquisition/sessions/{sid}/confirmation",
                         {"specVersion": "1.0", "confirmation": base64.b64encode(agreed["s_a"]).decode()})
    assert again.status == 404 and again.json()["code"] == "SESSION_UNKNOWN"


def test_at_most_sixteen_open_sessions_per_client(source):
    """§6.2: a client holds at most 16 unexpired sessions; the next handshake is 429 with Retry-After."""
    if PREFIX in source["base"]:
        pytest.skip("once is enough (the root variant)")
    ssl = source["ssl"]
    cert = ssl.run("x509", "-in", "client.pem", "-outform", "DER").stdout
    answers = []
    for _ in range(17):
        r_a = secrets.randbelow(gm.N - 1) + 1
        request = {"specVersion": "1.0", "certificateChain": [base64.b64encode(cert).decode()], "userId": CODE,
                   "ephemeralKey": base64.b64encode(gm.point_bytes(gm.mul(r_a))).decode()}
        answers.append(_signed_post(source, "/v1/acquisition/sessions", request))
        if answers[-1].status == 429:
            break
    # earlier tests of this module opened sessions too: the 429 comes at the 17th open one at the latest
    assert answers[-1].status == 429 and answers[-1].json()["code"] == "RATE_LIMITED"
    assert int(answers[-1].headers["retry-after"]) > 0
    assert all(a.status == 201 for a in answers[:-1])
