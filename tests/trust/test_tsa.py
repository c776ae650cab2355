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
