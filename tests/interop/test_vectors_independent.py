"""Every published trust vector reproduced from the profile's words with the Python standard library
and the openssl command line alone (no cedx): documents (signing input from the JSON and from the
XML, SM3, keyId, Z_A, e, signature, documentDigest), request signatures, the hash chain, the
sealed batches, the time-stamp imprint and the anchor fingerprint."""

import base64
import hashlib
import json
import urllib.parse

import pytest

from . import gm
from .client import (
    BUNDLE,
    REPO,
    OpenSSL,
    Schemas,
    canonical,
    canonical_query,
    from_xml,
    instant_paths_from_profile,
    signing_input,
)

VECTORS = REPO / "sdk" / "cedx" / "generated" / "vectors"
DOCUMENTS = json.loads((VECTORS / "documents.json").read_text(encoding="utf-8"))["vectors"]
INSTANTS = instant_paths_from_profile()
pytestmark = pytest.mark.openssl


def sm3(data: bytes) -> str:
    return hashlib.new("sm3", data).hexdigest()


def _strict(text: str):
    def pairs(items):
        names = [k for k, _ in items]
        assert len(names) == len(set(names)), "duplicate member names"
        return dict(items)
    return json.loads(text, object_pairs_hook=pairs)


def _verify(ssl: OpenSSL, public_pem: str, signature: bytes, message: bytes) -> bool:
    return ssl.verify(ssl.file(public_pem.encode(), ".pem"), signature, message)


@pytest.mark.parametrize("v", DOCUMENTS, ids=lambda v: v["name"])
def test_document_vector(v, tmp_path):
    ssl = OpenSSL(tmp_path)
    received = _strict(v["inputJson"])
    name, from_xml_record = from_xml(Schemas(json.loads(BUNDLE.read_text(encoding="utf-8"))), v["inputXml"].encode())
    assert name == v["schema"]
    for record in (received, from_xml_record):  # §1.1: one logical record, whatever the format
        assert signing_input(record, INSTANTS).decode() == v["signingInput"]
        assert canonical(record, INSTANTS).decode() == v["documentCanonical"]
    message = v["signingInput"].encode()
    assert sm3(message) == v["signingInputSm3"]
    point = bytes.fromhex(v["signer"]["publicKey"])
    assert sm3(point) == v["signer"]["keyId"] == received["signature"]["keyId"]  # §3
    z_a = gm.z_value(v["signer"]["userId"].encode(), (int.from_bytes(point[1:33], "big"), int.from_bytes(point[33:], "big")))
    assert z_a.hex() == v["signer"]["za"]
    m = bytes.fromhex(sm3(message)) if received["signature"]["algorithm"] == "SM2-with-SM3-prehash" else message  # §2
    assert received["signature"]["algorithm"] == v["algorithm"] and sm3(z_a + m) == v["e"]
    value = base64.b64decode(received["signature"]["value"])
    assert received["signature"]["value"] == v["signatureDer"]
    assert _verify(ssl, v["signer"]["publicKeyPem"], value, m)
    assert not _verify(ssl, v["signer"]["publicKeyPem"], value, message if m != message else bytes.fromhex(sm3(message)))
    assert sm3(v["documentCanonical"].encode()) == v["documentDigest"]
    cert = ssl.file(v["signer"]["certificatePem"].encode(), ".pem")
    assert ssl.key_id(ssl.cert_pubkey(cert)) == v["signer"]["keyId"]


def test_request_signature_vectors(tmp_path):
    ssl = OpenSSL(tmp_path)
    for v in json.loads((VECTORS / "request-signatures.json").read_text(encoding="utf-8"))["vectors"]:
        url = urllib.parse.urlsplit(v["url"])
        assert (url.path, url.query) == (v["requestPath"], v["query"])  # §5 line 3: the path as sent
        assert canonical_query(v["query"]) == v["canonicalQuery"]
        body = base64.b64decode(v["bodyBase64"])
        headers = v["headers"]
        lines = ["CEDX-SM2-SM3", v["method"], url.path, v["canonicalQuery"], headers["X-Cedx-Timestamp"],
                 headers["X-Cedx-Nonce"], sm3(body)]
        assert "\n".join(lines) == v["stringToSign"] and sm3(body) == v["bodySm3"]
        assert headers["X-Cedx-Key-Id"] == sm3(bytes.fromhex(v["signer"]["publicKey"]))
        assert _verify(ssl, v["signer"]["publicKeyPem"], base64.b64decode(headers["X-Cedx-Signature"]),
                       v["stringToSign"].encode())


def test_hash_chain_and_sealed_batch_vectors(tmp_path):
    ssl = OpenSSL(tmp_path)
    chain = json.loads((VECTORS / "hash-chain.json").read_text(encoding="utf-8"))
    first, second = chain["batches"]
    assert canonical(first["payload"], INSTANTS).decode() == chain["firstPayloadCanonical"]
    assert sm3(chain["firstPayloadCanonical"].encode()) == chain["firstPayloadDigest"] == second["payload"]["previousBatchDigest"]
    for batch in chain["batches"]:
        assert _verify(ssl, chain["signer"]["publicKeyPem"], base64.b64decode(batch["signature"]["value"]),
                       signing_input(batch, INSTANTS))
    sealed = json.loads((REPO / "spec" / "vectors" / "sealed-batches.json").read_text(encoding="utf-8"))
    previous = "0" * 64
    for b in sealed["batches"]:
        payload = b["envelope"]["payload"]
        assert json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False) == b["canonicalPayload"]
        assert payload["previousBatchDigest"] == previous and sm3(b["canonicalPayload"].encode()) == b["payloadSm3"]
        assert signing_input(b["envelope"], INSTANTS).decode() == b["signingInput"]
        previous = b["payloadSm3"]


def test_time_stamp_and_anchor_vectors(tmp_path):
    ssl = OpenSSL(tmp_path)
    stamp = json.loads((VECTORS / "timestamp.json").read_text(encoding="utf-8"))
    assert sm3(base64.b64decode(stamp["signatureDer"])) == stamp["messageImprint"]  # §3: SM3 of the DER value
    receipt = stamp["receipt"]
    assert receipt["signature"]["value"] == stamp["signatureDer"] and receipt["signature"]["timestampToken"] == stamp["token"]
    platform = ssl.der_to_pem(base64.b64decode(receipt["signature"]["certificateChain"][0]))
    assert _verify(ssl, (ssl.dir / ssl.cert_pubkey(platform)).read_text(), base64.b64decode(stamp["signatureDer"]),
                   signing_input(receipt, INSTANTS))
    anchor = json.loads((VECTORS / "anchor.json").read_text(encoding="utf-8"))
    der = ssl.run("x509", "-in", ssl.file(anchor["caCertificatePem"].encode(), ".pem"), "-outform", "DER").stdout
    assert sm3(der) == anchor["caCertificateSm3"] and anchor["caCertificatePem"] == stamp["caCertificatePem"]
