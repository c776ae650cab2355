"""RFC 3161 time-stamps with SM3/SM2: issuing and full verification, and its rejections."""

import datetime as dt

import pytest
from asn1crypto import cms

from cedx.trust import tsa as tts
from cedx.trust import x509 as tx
from cedx.trust.errors import TimestampError
from cedx.trust.keys import SM2PrivateKey
from cedx.trust.sm3 import sm3

UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def pki():
    ca_key = SM2PrivateKey.generate()
    ca = tx.create_ca(ca_key, {"common_name": "Root"})
    tsa_key = SM2PrivateKey.generate()
    tsa_cert = tx.issue_certificate(tx.create_csr(tsa_key, {"common_name": "TSA"}), ca, ca_key, profile="tsa")
    return ca_key, ca, tsa_key, tsa_cert


def test_request_response_verify(pki):
    _, ca, tsa_key, tsa_cert = pki
    authority = tts.TimeStampAuthority(tsa_key, tsa_cert)
    imprint = sm3(b"signed receipt")
    req = tts.make_request(imprint)
    token = tts.token_from_response(authority.respond(req), req)
    info = tts.verify_token(token, imprint=imprint, trust_anchors=[ca])
    assert abs((info.gen_time - dt.datetime.now(UTC)).total_seconds()) < 5
    assert info.tsa_certificate == tsa_cert
    second = tts.verify_token(authority.timestamp(imprint), imprint=imprint, trust_anchors=[ca])
    assert second.serial_number > info.serial_number


def test_token_over_different_imprint(pki):
    _, ca, tsa_key, tsa_cert = pki
    token = tts.TimeStampAuthority(tsa_key, tsa_cert).timestamp(sm3(b"a"))
    with pytest.raises(TimestampError, match="imprint does not match"):
        tts.verify_token(token, imprint=sm3(b"b"), trust_anchors=[ca])


def test_tampered_token(pki):
    _, ca, tsa_key, tsa_cert = pki
    imprint = sm3(b"a")
    token = tts.TimeStampAuthority(tsa_key, tsa_cert).timestamp(imprint)
    ci = cms.ContentInfo.load(token)
    si = ci["content"]["signer_infos"][0]
    sig = bytearray(si["signature"].native)
    sig[-3] ^= 1
    si["signature"] = bytes(sig)
    with pytest.raises(TimestampError):
        tts.verify_token(ci.dump(force=True), imprint=imprint, trust_anchors=[ca])


def test_tsa_certificate_without_timestamping_eku(pki):
    ca_key, ca, _, _ = pki
    key = SM2PrivateKey.generate()
    cert = tx.issue_certificate(tx.create_csr(key, {"common_name": "not a TSA"}), ca, ca_key, profile="signing")
    token = tts.TimeStampAuthority(key, cert).timestamp(sm3(b"a"))
    with pytest.raises(TimestampError, match="timeStamping"):
        tts.verify_token(token, imprint=sm3(b"a"), trust_anchors=[ca])


def test_untrusted_tsa(pki):
    _, _, tsa_key, tsa_cert = pki
    other_key = SM2PrivateKey.generate()
    other = tx.create_ca(other_key, {"common_name": "Other"})
    token = tts.TimeStampAuthority(tsa_key, tsa_cert).timestamp(sm3(b"a"))
    with pytest.raises(TimestampError, match="TSA certificate invalid"):
        tts.verify_token(token, imprint=sm3(b"a"), trust_anchors=[other])


def test_tsa_certificate_expired_at_gen_time(pki):
    ca_key, ca, _, _ = pki
    key = SM2PrivateKey.generate()
    past = dt.datetime.now(UTC) - dt.timedelta(days=100)
    cert = tx.issue_certificate(tx.create_csr(key, {"common_name": "old TSA"}), ca, ca_key, profile="tsa", not_before=past, days=10)
    token = tts.TimeStampAuthority(key, cert).timestamp(sm3(b"a"))
    with pytest.raises(TimestampError, match="expired"):
        tts.verify_token(token, imprint=sm3(b"a"), trust_anchors=[ca])


def test_nonce_mismatch_and_rejections(pki):
    _, ca, tsa_key, tsa_cert = pki
    authority = tts.TimeStampAuthority(tsa_key, tsa_cert)
    req = tts.make_request(sm3(b"a"), nonce=1)
    other_req = tts.make_request(sm3(b"a"), nonce=2)
    with pytest.raises(TimestampError, match="nonce"):
        tts.token_from_response(authority.respond(req), other_req)
    with pytest.raises(TimestampError, match="refused"):
        tts.token_from_response(authority.respond(b"\x30\x00"))
    with pytest.raises(TimestampError, match="32-byte"):
        tts.make_request(b"short")


def test_key_must_match_certificate(pki):
    _, _, _, tsa_cert = pki
    from cedx.trust.errors import CertificateError

    with pytest.raises(CertificateError):
        tts.TimeStampAuthority(SM2PrivateKey.generate(), tsa_cert)


def reference_token(authority, tsa_cert: bytes, chain, imprint, *, gen_time, serial, nonce, signature, certs=True):
    """The token as a full asn1crypto build (the encoder before pre-encoded DER), with a given
    signature: the hand-assembled DER must be byte-identical to it."""
    from asn1crypto import tsp, x509

    cert = tx.load_certificate(tsa_cert)
    sm3_alg = {"algorithm": "1.2.156.10197.1.401"}
    fields = {
        "version": "v1", "policy": tts.DEFAULT_POLICY,
        "message_imprint": {"hash_algorithm": sm3_alg, "hashed_message": imprint},
        "serial_number": serial, "gen_time": gen_time, "accuracy": {"seconds": 1}, "ordering": False,
        "tsa": x509.GeneralName(name="directory_name", value=cert.subject),
    }
    if nonce is not None:
        fields["nonce"] = nonce
    tst_der = tsp.TSTInfo(fields).dump()
    attrs = cms.CMSAttributes([
        {"type": "content_type", "values": ["tst_info"]},
        {"type": "signing_time", "values": [cms.Time(name="utc_time", value=gen_time)]},
        {"type": "message_digest", "values": [sm3(tst_der)]},
        {"type": "signing_certificate_v2", "values": [{"certs": [{
            "hash_algorithm": sm3_alg, "cert_hash": sm3(tsa_cert),
            "issuer_serial": {"issuer": [x509.GeneralName(name="directory_name", value=cert.issuer)],
                              "serial_number": cert.serial_number}}]}]},
    ])
    signer = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier(name="issuer_and_serial_number",
                                    value={"issuer": cert.issuer, "serial_number": cert.serial_number}),
        "digest_algorithm": sm3_alg, "signed_attrs": attrs,
        "signature_algorithm": {"algorithm": "1.2.156.10197.1.501"}, "signature": signature,
    })
    signed = {
        "version": "v3", "digest_algorithms": [sm3_alg],
        "encap_content_info": {"content_type": "tst_info", "content": cms.ParsableOctetString(tst_der)},
        "signer_infos": [signer],
    }
    if certs:
        signed["certificates"] = [tx.load_certificate(d) for d in [tsa_cert, *chain]]
    return cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump(), attrs


@pytest.mark.parametrize("nonce", [None, 0, 1, 127, 128, 255, 2**63 - 1, 2**200, -5])
@pytest.mark.parametrize("certs", [True, False])
def test_pre_encoded_token_is_byte_identical_to_a_full_asn1crypto_build(pki, nonce, certs):
    _, ca, tsa_key, tsa_cert = pki
    when = dt.datetime.now(UTC).replace(microsecond=0)
    authority = tts.TimeStampAuthority(tsa_key, tsa_cert, chain=[ca], clock=lambda: when)
    imprint = sm3(b"receipt %r" % nonce)
    serial = 0x1234567890ABCDEF00 + (nonce or 0) % 1000
    token = authority.timestamp(imprint, nonce=nonce, include_certificate=certs, serial_number=serial)
    signature = cms.ContentInfo.load(token)["content"]["signer_infos"][0]["signature"].native
    expected, attrs = reference_token(authority, tsa_cert, [ca], imprint, gen_time=when, serial=serial,
                                      nonce=nonce, signature=signature, certs=certs)
    assert token == expected
    tsa_key.public_key().verify(signature, attrs.untag().dump(True))
    info = tts.verify_token(token, imprint=imprint, trust_anchors=[ca], nonce=nonce,
                            tsa_certificate=None if certs else tsa_cert)
    assert (info.gen_time, info.serial_number, info.nonce) == (when, serial, nonce)


def test_granted_response_wraps_the_token(pki):
    _, ca, tsa_key, tsa_cert = pki
    authority = tts.TimeStampAuthority(tsa_key, tsa_cert)
    imprint = sm3(b"r")
    req = tts.make_request(imprint, nonce=77)
    resp = authority.respond(req)
    parsed = tts.TimeStampResp.load(resp, strict=True)
    assert parsed["status"]["status"].native == "granted"
    assert parsed.dump(force=True) == resp  # canonical DER
    token = tts.token_from_response(resp, req)
    assert tts.verify_token(token, imprint=imprint, trust_anchors=[ca], nonce=77).nonce == 77
