"""The published trust vectors (sdk/cedx/generated/vectors/) against both SM2 backends, cedx's
own canonicalisation, request signing, hash chain and time-stamp verification, and the OpenSSL
command line (issue 11 §2)."""

import base64
import datetime as dt
import json
from pathlib import Path

import pytest

from cedx import spec, trust
from cedx.trust import tsa as tts
from cedx.trust import x509 as tx
from cedx.trust.canonical import canonicalize, default_instants
from cedx.trust.envelope import signed_message, signing_input
from cedx.trust.keys import SM2PublicKey
from cedx.trust.reqsign import RequestVerifier, canonical_query, string_to_sign

VECTORS = Path(__file__).resolve().parents[2] / "sdk" / "cedx" / "generated" / "vectors"
DISTID = "distid:1234567812345678"


def _load(name):
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


DOCUMENTS = _load("documents.json")["vectors"]
REQUESTS = _load("request-signatures.json")["vectors"]
CHAIN = _load("hash-chain.json") if (VECTORS / "hash-chain.json").exists() else None
STAMP = _load("timestamp.json")
ANCHOR = _load("anchor.json")


def test_the_vector_set_covers_what_the_profile_promises():
    names = {v["name"] for v in DOCUMENTS}
    assert {"instant-offset-fraction", "non-ascii-text", "time-looking-free-text"} <= names
    first = next(v for v in DOCUMENTS if v["name"] == "instant-offset-fraction")
    assert "+08:00" in first["inputJson"] and ".1234567" in first["inputJson"]
    assert "\\u" in next(v for v in DOCUMENTS if v["name"] == "non-ascii-text")["inputJson"]
    assert {v["algorithm"] for v in DOCUMENTS} == {"SM2-with-SM3", "SM2-with-SM3-prehash"}
    assert len(REQUESTS) >= 2 and (CHAIN is None or len(CHAIN["batches"]) == 2)


@pytest.mark.parametrize("vector", DOCUMENTS, ids=lambda v: v["name"])
def test_document_vector(vector, backend):
    received = json.loads(vector["inputJson"])
    assert signing_input(received) == vector["signingInput"].encode("utf-8")
    assert trust.sm3(vector["signingInput"].encode("utf-8")).hex() == vector["signingInputSm3"]
    public = SM2PublicKey.from_bytes(bytes.fromhex(vector["signer"]["publicKey"]), backend)
    assert public.fingerprint() == vector["signer"]["keyId"] == received["signature"]["keyId"]
    assert public == tx.certificate_public_key(vector["signer"]["certificatePem"].encode())
    signing = vector["signingInput"].encode("utf-8")
    prehash = vector["algorithm"] == "SM2-with-SM3-prehash"
    assert received["signature"]["algorithm"] == vector["algorithm"]
    message = bytes.fromhex(vector["signingInputSm3"]) if prehash else signing  # M
    assert signed_message(received) == message
    assert public.digest(message).hex() == vector["e"]
    signature = base64.b64decode(vector["signatureDer"])
    public.verify(signature, message)
    assert not public.is_valid(signature, message.replace(b"power", b"powe\x72 ") if not prehash else trust.sm3(message))
    trust.verify_document(received, public)
    # the same signature read under the other algorithm is not valid
    other = json.loads(vector["inputJson"])
    other["signature"]["algorithm"] = "SM2-with-SM3" if prehash else "SM2-with-SM3-prehash"
    with pytest.raises(trust.InvalidSignature):
        trust.verify_document(other, public)
    assert canonicalize(received) == vector["documentCanonical"].encode("utf-8")
    assert trust.sm3(vector["documentCanonical"].encode("utf-8")).hex() == vector["documentDigest"]
    # The XML form carries the same logical record: the same signature and digest.
    _root, from_xml = spec.xml_codec().loads(vector["inputXml"].encode("utf-8"), vector["schema"])
    trust.verify_document(from_xml, public)
    assert trust.sm3(canonicalize(from_xml)).hex() == vector["documentDigest"]
    assert spec.validator().validate(vector["schema"], received) == []


def test_document_vectors_with_openssl(openssl):
    for vector in DOCUMENTS:
        openssl.write("pub.pem", vector["signer"]["publicKeyPem"].encode())
        openssl.write("cert.pem", vector["signer"]["certificatePem"].encode())
        openssl.write("ca.pem", ANCHOR["caCertificatePem"].encode())
        openssl.write("m.bin", vector["signingInput"].encode("utf-8"))
        if vector["algorithm"] == "SM2-with-SM3-prehash":  # M is the signing input's SM3, by OpenSSL
            openssl.write("m.bin", openssl.run("dgst", "-sm3", "-binary", "m.bin").stdout)
        openssl.write("sig.der", base64.b64decode(vector["signatureDer"]))
        openssl.write("doc.bin", vector["documentCanonical"].encode("utf-8"))
        out = openssl.run("dgst", "-sm3", "-verify", "pub.pem", "-sigopt", DISTID, "-signature", "sig.der", "m.bin")
        assert b"Verified OK" in out.stdout
        openssl.write("input.bin", vector["signingInput"].encode("utf-8"))
        assert openssl.run("dgst", "-sm3", "-r", "input.bin").stdout[:64].decode() == vector["signingInputSm3"]
        assert openssl.run("dgst", "-sm3", "-r", "doc.bin").stdout[:64].decode() == vector["documentDigest"]
        spki = openssl.run("pkey", "-pubin", "-in", "pub.pem", "-outform", "DER").stdout
        openssl.write("point.bin", spki[-65:])
        assert openssl.run("dgst", "-sm3", "-r", "point.bin").stdout[:64].decode() == vector["signer"]["keyId"]
        assert b"cert.pem: OK" in openssl.run("verify", "-vfyopt", DISTID, "-CAfile", "ca.pem", "cert.pem").stdout
        openssl.write("m2.bin", openssl.read("m.bin") + b" ")
        bad = openssl.run("dgst", "-sm3", "-verify", "pub.pem", "-sigopt", DISTID, "-signature", "sig.der", "m2.bin",
                          check=False)
        assert bad.returncode != 0


def test_hash_chain_vector(backend):
    if CHAIN is None:
        pytest.skip("no chained batch example in this spec version")
    first, second = CHAIN["batches"]
    canonical = canonicalize(first["payload"], instants=default_instants()["payload"])
    assert canonical == CHAIN["firstPayloadCanonical"].encode("utf-8")
    assert trust.sm3(canonical).hex() == CHAIN["firstPayloadDigest"] == second["payload"][CHAIN["previousField"]]
    assert trust.batch_digest(first["payload"]) == CHAIN["firstPayloadDigest"]
    assert trust.verify_chain([first["payload"], second["payload"]]) == trust.batch_digest(second["payload"])
    public = SM2PublicKey.from_bytes(bytes.fromhex(CHAIN["signer"]["publicKey"]), backend)
    for batch in (first, second):
        trust.verify_document(batch, public)
    altered = json.loads(json.dumps(first["payload"]))
    first_value = altered["values"][0]
    if isinstance(first_value, dict):  # row-wise batches
        first_value["value"] = "0.00"
    else:  # columnar batches: values are decimal strings
        altered["values"][0] = "0.00" if first_value != "0.00" else "0.01"
    with pytest.raises(trust.ChainError):
        trust.verify_chain([altered, second["payload"]])


@pytest.mark.parametrize("vector", REQUESTS, ids=lambda v: f"{v['method']} {v['path']}")
def test_request_signature_vector(vector, backend):
    headers = vector["headers"]
    body = base64.b64decode(vector["bodyBase64"])
    assert trust.sm3(body).hex() == vector["bodySm3"]
    assert canonical_query(vector["query"]) == vector["canonicalQuery"]
    sts = string_to_sign(vector["method"], vector["requestPath"], vector["query"], headers["X-Cedx-Timestamp"],
                         headers["X-Cedx-Nonce"], body)
    assert sts == vector["stringToSign"].encode("utf-8") and not sts.endswith(b"\n")
    public = SM2PublicKey.from_bytes(bytes.fromhex(vector["signer"]["publicKey"]), backend)
    assert headers["X-Cedx-Key-Id"] == public.fingerprint()
    public.verify(base64.b64decode(headers["X-Cedx-Signature"]), sts)
    signed_at = dt.datetime.fromisoformat(headers["X-Cedx-Timestamp"].replace("Z", "+00:00")).timestamp()
    verifier = RequestVerifier(lambda key_id: public if key_id == public.fingerprint() else None,
                               clock=lambda: signed_at + 10)
    verifier.verify(vector["method"], vector["requestPath"], vector["query"], headers, body)
    with pytest.raises(trust.InvalidSignature):  # the path without the base path is another request
        RequestVerifier(lambda _k: public, clock=lambda: signed_at).verify(
            vector["method"], vector["requestPath"] + "x", vector["query"], headers, body)


def test_request_signature_vectors_with_openssl(openssl):
    for vector in REQUESTS:
        openssl.write("pub.pem", vector["signer"]["publicKeyPem"].encode())
        openssl.write("sts.txt", vector["stringToSign"].encode("utf-8"))
        openssl.write("sig.der", base64.b64decode(vector["headers"]["X-Cedx-Signature"]))
        openssl.write("body.bin", base64.b64decode(vector["bodyBase64"]))
        assert b"Verified OK" in openssl.run("dgst", "-sm3", "-verify", "pub.pem", "-sigopt", DISTID, "-signature",
                                             "sig.der", "sts.txt").stdout
        assert openssl.run("dgst", "-sm3", "-r", "body.bin").stdout[:64].decode() == vector["bodySm3"]


def test_timestamp_vector():
    signature = base64.b64decode(STAMP["signatureDer"])
    assert trust.sm3(signature).hex() == STAMP["messageImprint"]
    token = base64.b64decode(STAMP["token"])
    info = tts.verify_token(token, imprint=trust.sm3(signature), trust_anchors=[STAMP["caCertificatePem"].encode()])
    assert info.policy == STAMP["policy"]
    with pytest.raises(trust.TimestampError):
        tts.verify_token(token, imprint=trust.sm3(signature + b"\x00"), trust_anchors=[STAMP["caCertificatePem"].encode()])
    assert STAMP["receipt"]["signature"]["timestampToken"] == STAMP["token"]


def test_timestamp_vector_with_openssl(openssl):
    openssl.write("token.der", base64.b64decode(STAMP["token"]))
    text = openssl.run("ts", "-reply", "-token_in", "-in", "token.der", "-text").stdout.decode()
    assert "Hash Algorithm: sm3" in text and STAMP["policy"] in text
    hexdump = "".join(line[11:58] for line in text.splitlines() if line.startswith("    00"))
    assert hexdump.replace(" ", "").replace("-", "") == STAMP["messageImprint"]


def test_anchor_vector():
    der = tx.load_certificate(ANCHOR["caCertificatePem"].encode()).dump()
    assert trust.sm3(der).hex() == ANCHOR["caCertificateSm3"]


@pytest.mark.parametrize("query", ["a=1&&b=2", "flag&x=%20+y", "z=%E4%B8%AD&a=~-._", "b=2&b=1&a", "",
                                   "k=a%2Bb+c", "cursor=a+b%2Fc&kind=&limit=2&period=2026-10"])
def test_the_independent_client_agrees_on_canonical_queries(query):
    from tests.interop.client import canonical_query as independent

    assert independent(query) == canonical_query(query)


@pytest.mark.parametrize("vector", DOCUMENTS, ids=lambda v: v["name"])
def test_the_independent_client_agrees_on_signing_inputs(vector):
    from tests.interop.client import instant_paths_from_profile
    from tests.interop.client import signing_input as independent

    assert independent(json.loads(vector["inputJson"]), instant_paths_from_profile()) == vector["signingInput"].encode()


def test_hash_chain_vector_with_openssl(openssl):
    if CHAIN is None:
        pytest.skip("no chained batch example in this spec version")
    openssl.write("first.bin", CHAIN["firstPayloadCanonical"].encode("utf-8"))
    assert openssl.run("dgst", "-sm3", "-r", "first.bin").stdout[:64].decode() == CHAIN["firstPayloadDigest"]
    openssl.write("pub.pem", CHAIN["signer"]["publicKeyPem"].encode())
    for i, batch in enumerate(CHAIN["batches"]):
        openssl.write(f"m{i}.bin", signing_input(batch))
        if batch["signature"]["algorithm"] == "SM2-with-SM3-prehash":
            openssl.write(f"m{i}.bin", openssl.run("dgst", "-sm3", "-binary", f"m{i}.bin").stdout)
        openssl.write(f"s{i}.der", base64.b64decode(batch["signature"]["value"]))
        out = openssl.run("dgst", "-sm3", "-verify", "pub.pem", "-sigopt", DISTID, "-signature", f"s{i}.der", f"m{i}.bin")
        assert b"Verified OK" in out.stdout
