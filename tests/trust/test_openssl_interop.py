"""Both directions against the OpenSSL command line: keys, signatures, encryption,
certificates, CSRs, time-stamp tokens."""


import pytest

from cedx.trust import tsa as tts
from cedx.trust import x509 as tx
from cedx.trust.errors import CertificateError
from cedx.trust.keys import SM2PrivateKey, SM2PublicKey
from cedx.trust.sm3 import sm3

DISTID = "distid:1234567812345678"
pytestmark = pytest.mark.openssl


def test_openssl_verifies_our_signature_and_reads_our_keys(openssl, backend):
    key = SM2PrivateKey.generate(backend)
    openssl.write("k.pem", key.to_pem())
    openssl.write("ke.pem", key.to_pem(password=b"pw"))
    openssl.write("p.pem", key.public_key().to_pem())
    openssl.write("m", b"monthly report bytes")
    openssl.write("s.der", key.sign(b"monthly report bytes"))
    out = openssl.run("dgst", "-sm3", "-verify", "p.pem", "-sigopt", DISTID, "-signature", "s.der", "m")
    assert b"Verified OK" in out.stdout
    # A tampered message fails in OpenSSL too, so the check above is meaningful.
    openssl.write("m2", b"monthly report bytez")
    bad = openssl.run("dgst", "-sm3", "-verify", "p.pem", "-sigopt", DISTID, "-signature", "s.der", "m2", check=False)
    assert bad.returncode != 0
    text = openssl.run("pkey", "-in", "k.pem", "-noout", "-text").stdout.decode()
    assert "ASN1 OID: SM2" in text
    openssl.run("pkey", "-in", "ke.pem", "-passin", "pass:pw", "-noout")
    assert openssl.run("pkey", "-in", "ke.pem", "-passin", "pass:no", "-noout", check=False).returncode != 0
    # OpenSSL derives the same public key from our private key.
    openssl.run("pkey", "-in", "k.pem", "-pubout", "-out", "derived.pem")
    assert SM2PublicKey.from_bytes(openssl.read("derived.pem")) == key.public_key()


def test_we_verify_openssl_signature_and_read_its_keys(openssl, backend):
    openssl.run("genpkey", "-algorithm", "SM2", "-out", "o.pem")
    openssl.run("pkey", "-in", "o.pem", "-pubout", "-out", "op.pem")
    openssl.run("pkcs8", "-topk8", "-in", "o.pem", "-passout", "pass:pw", "-out", "oe.pem")
    openssl.write("m", b"acquisition batch")
    openssl.run("dgst", "-sm3", "-sign", "o.pem", "-sigopt", DISTID, "-out", "s.der", "m")
    pub = SM2PublicKey.from_bytes(openssl.read("op.pem"), backend)
    pub.verify(openssl.read("s.der"), b"acquisition batch")
    assert not pub.is_valid(openssl.read("s.der"), b"acquisition batcH")
    key = SM2PrivateKey.from_bytes(openssl.read("o.pem"), backend=backend)
    assert key.public_key() == pub
    assert SM2PrivateKey.from_bytes(openssl.read("oe.pem"), b"pw", backend).public_key() == pub


def test_custom_id_interoperates(openssl, backend):
    key = SM2PrivateKey.generate(backend)
    openssl.write("p.pem", key.public_key().to_pem())
    openssl.write("k.pem", key.to_pem())
    openssl.write("m", b"m")
    openssl.write("s.der", key.sign(b"m", uid=b"platform-01"))
    openssl.run("dgst", "-sm3", "-verify", "p.pem", "-sigopt", "distid:platform-01", "-signature", "s.der", "m")
    openssl.run("dgst", "-sm3", "-sign", "k.pem", "-sigopt", "distid:gateway-7", "-out", "o.der", "m")
    key.public_key().verify(openssl.read("o.der"), b"m", uid=b"gateway-7")


def test_encryption_both_directions(openssl, backend):
    openssl.run("genpkey", "-algorithm", "SM2", "-out", "o.pem")
    openssl.run("pkey", "-in", "o.pem", "-pubout", "-out", "op.pem")
    key = SM2PrivateKey.from_bytes(openssl.read("o.pem"), backend=backend)
    openssl.write("c.bin", key.public_key().encrypt(b"from cedx to openssl"))
    out = openssl.run("pkeyutl", "-decrypt", "-inkey", "o.pem", "-in", "c.bin")
    assert out.stdout == b"from cedx to openssl"
    openssl.write("pt", b"from openssl to cedx")
    openssl.run("pkeyutl", "-encrypt", "-pubin", "-inkey", "op.pem", "-in", "pt", "-out", "c2.bin")
    assert key.decrypt(openssl.read("c2.bin")) == b"from openssl to cedx"


@pytest.fixture
def pki():
    ca_key = SM2PrivateKey.generate()
    ca = tx.create_ca(ca_key, {"country_name": "CN", "organization_name": "cedx 测试", "common_name": "cedx Test Root"})
    return ca_key, ca


def test_openssl_verifies_our_certificates_and_csr(openssl, pki):
    ca_key, ca = pki
    ee_key = SM2PrivateKey.generate()
    csr = tx.create_csr(ee_key, {"country_name": "CN", "organization_name": "某发电有限公司", "common_name": "91350100M000100Y43"})
    ee = tx.issue_certificate(csr, ca, ca_key)
    tsa_key = SM2PrivateKey.generate()
    tsa_cert = tx.issue_certificate(tx.create_csr(tsa_key, {"common_name": "cedx TSA"}), ca, ca_key, profile="tsa")
    openssl.write("ca.pem", tx.to_pem(ca))
    openssl.write("ee.pem", tx.to_pem(ee))
    openssl.write("tsa.pem", tx.to_pem(tsa_cert))
    openssl.write("req.pem", tx.to_pem(csr, "CERTIFICATE REQUEST"))
    assert b"ee.pem: OK" in openssl.run("verify", "-vfyopt", DISTID, "-CAfile", "ca.pem", "ee.pem").stdout
    openssl.run("verify", "-vfyopt", DISTID, "-CAfile", "ca.pem", "-purpose", "timestampsign", "tsa.pem")
    openssl.run("req", "-in", "req.pem", "-verify", "-vfyopt", DISTID, "-noout")
    # A certificate from another CA fails in OpenSSL as well.
    other_key = SM2PrivateKey.generate()
    openssl.write("other.pem", tx.to_pem(tx.create_ca(other_key, {"common_name": "Other"})))
    assert openssl.run("verify", "-vfyopt", DISTID, "-CAfile", "other.pem", "ee.pem", check=False).returncode != 0


def test_we_validate_openssl_issued_certificate(openssl, pki):
    """OpenSSL as the CA (its own SM2 root), cedx as the relying party."""
    openssl.run("genpkey", "-algorithm", "SM2", "-out", "ca.key")
    openssl.run("req", "-new", "-x509", "-key", "ca.key", "-sm3", "-sigopt", DISTID, "-subj", "/C=CN/CN=OpenSSL Root",
                "-days", "30", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "ca.pem")
    openssl.run("genpkey", "-algorithm", "SM2", "-out", "ee.key")
    openssl.run("req", "-new", "-key", "ee.key", "-sm3", "-sigopt", DISTID, "-subj", "/CN=ee", "-out", "ee.csr")
    openssl.write("ext.cnf", b"keyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n")
    openssl.run("x509", "-req", "-in", "ee.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-sm3",
                "-sigopt", DISTID, "-vfyopt", DISTID, "-days", "10", "-extfile", "ext.cnf", "-out", "ee.pem")
    pub = tx.validate_chain(openssl.read("ee.pem"), trust_anchors=[openssl.read("ca.pem")])
    assert pub == SM2PrivateKey.from_bytes(openssl.read("ee.key")).public_key()
    # And our CA's key cannot vouch for it.
    with pytest.raises(CertificateError):
        tx.validate_chain(openssl.read("ee.pem"), trust_anchors=[pki[1]])
    # OpenSSL reads our CSR and issues from it; we accept the result.
    ee_key = SM2PrivateKey.generate()
    openssl.write("our.csr", tx.to_pem(tx.create_csr(ee_key, {"common_name": "ours"}), "CERTIFICATE REQUEST"))
    openssl.run("x509", "-req", "-in", "our.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-sm3",
                "-sigopt", DISTID, "-vfyopt", DISTID, "-days", "10", "-extfile", "ext.cnf", "-out", "our.pem")
    assert tx.validate_chain(openssl.read("our.pem"), trust_anchors=[openssl.read("ca.pem")]) == ee_key.public_key()


def test_openssl_parses_time_stamp_tokens(openssl, pki):
    ca_key, ca = pki
    tsa_key = SM2PrivateKey.generate()
    tsa_cert = tx.issue_certificate(tx.create_csr(tsa_key, {"common_name": "cedx TSA"}), ca, ca_key, profile="tsa")
    authority = tts.TimeStampAuthority(tsa_key, tsa_cert)
    imprint = sm3(b"receipt")
    request = tts.make_request(imprint, nonce=424242)
    response = authority.respond(request)
    openssl.write("req.tsq", request)
    openssl.write("resp.tsr", response)
    openssl.write("token.der", tts.token_from_response(response, request))
    q = openssl.run("ts", "-query", "-in", "req.tsq", "-text").stdout.decode()
    assert "Hash Algorithm: sm3" in q
    text = openssl.run("ts", "-reply", "-in", "resp.tsr", "-text").stdout.decode()
    assert "Status: Granted." in text and "Hash Algorithm: sm3" in text
    assert "Nonce: 0x067932" in text  # 424242
    assert imprint.hex()[:8] in text.replace(" ", "").replace("-", "")
    tok = openssl.run("ts", "-reply", "-in", "token.der", "-token_in", "-text").stdout.decode()
    assert "Policy OID: " + tts.DEFAULT_POLICY in tok
