"""Certificate issuing and chain validation, with every rejection the issue lists."""

import datetime as dt

import pytest
from asn1crypto import x509 as ax

from cedx.trust import x509 as tx
from cedx.trust.errors import CertificateError
from cedx.trust.keys import SM2PrivateKey

UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def root():
    key = SM2PrivateKey.generate()
    return key, tx.create_ca(key, {"country_name": "CN", "common_name": "Root"})


def _issue(root, profile="signing", **kw):
    ca_key, ca = root
    key = SM2PrivateKey.generate()
    return key, tx.issue_certificate(tx.create_csr(key, {"common_name": f"ee-{profile}"}), ca, ca_key, profile=profile, **kw)


def test_valid_chain_returns_leaf_key(root):
    key, cert = _issue(root)
    assert tx.validate_chain(cert, trust_anchors=[root[1]]) == key.public_key()


def test_intermediate_ca_chain(root):
    ca_key, ca = root
    mid_key = SM2PrivateKey.generate()
    mid = tx.issue_certificate(tx.create_csr(mid_key, {"common_name": "Issuing CA"}), ca, ca_key, profile="ca", path_length=0)
    leaf_key = SM2PrivateKey.generate()
    leaf = tx.issue_certificate(tx.create_csr(leaf_key, {"common_name": "leaf"}), mid, mid_key)
    assert tx.validate_chain(leaf, trust_anchors=[ca], intermediates=[mid]) == leaf_key.public_key()
    with pytest.raises(CertificateError, match="no trusted issuer"):
        tx.validate_chain(leaf, trust_anchors=[ca])  # intermediate missing


def test_expired_and_not_yet_valid(root):
    past = dt.datetime.now(UTC) - dt.timedelta(days=400)
    _, expired = _issue(root, not_before=past, days=30)
    with pytest.raises(CertificateError, match="expired"):
        tx.validate_chain(expired, trust_anchors=[root[1]])
    _, future = _issue(root, not_before=dt.datetime.now(UTC) + dt.timedelta(days=2))
    with pytest.raises(CertificateError, match="not yet valid"):
        tx.validate_chain(future, trust_anchors=[root[1]])
    # Validation at a past instant inside every validity window succeeds.
    old_key = SM2PrivateKey.generate()
    old_root = tx.create_ca(old_key, {"common_name": "Old Root"}, not_before=past - dt.timedelta(days=1))
    _, then_valid = _issue((old_key, old_root), not_before=past, days=30)
    tx.validate_chain(then_valid, trust_anchors=[old_root], at=past + dt.timedelta(days=1))
    with pytest.raises(CertificateError, match="expired"):
        tx.validate_chain(then_valid, trust_anchors=[old_root])


def test_wrongly_issued_certificate(root):
    """Same issuer name, different key: the signature check catches it."""
    impostor_key = SM2PrivateKey.generate()
    impostor = tx.create_ca(impostor_key, {"country_name": "CN", "common_name": "Root"})
    _, forged = _issue((impostor_key, impostor))
    with pytest.raises(CertificateError, match="signature does not verify"):
        tx.validate_chain(forged, trust_anchors=[root[1]])


def test_untrusted_self_signed(root):
    other_key = SM2PrivateKey.generate()
    other = tx.create_ca(other_key, {"common_name": "Other"})
    with pytest.raises(CertificateError, match="CA certificate, not an end entity"):
        tx.validate_chain(other, trust_anchors=[root[1]])


def test_end_entity_cannot_issue(root):
    ee_key, ee = _issue(root)
    leaf_key = SM2PrivateKey.generate()
    leaf = tx.issue_certificate(tx.create_csr(leaf_key, {"common_name": "sub"}), ee, ee_key)
    with pytest.raises(CertificateError, match="not a CA"):
        tx.validate_chain(leaf, trust_anchors=[root[1]], intermediates=[ee])


def test_tsa_purpose_requires_critical_eku(root):
    _, tsa_cert = _issue(root, "tsa")
    tx.validate_chain(tsa_cert, trust_anchors=[root[1]], purpose="tsa")
    _, plain = _issue(root)
    with pytest.raises(CertificateError, match="timeStamping"):
        tx.validate_chain(plain, trust_anchors=[root[1]], purpose="tsa")


def test_crl_revocation(root):
    ca_key, ca = root
    _, cert = _issue(root)
    serial = tx.load_certificate(cert).serial_number
    crl = tx.create_crl(ca, ca_key, [(serial, dt.datetime.now(UTC))])
    with pytest.raises(CertificateError, match="revoked"):
        tx.validate_chain(cert, trust_anchors=[ca], crls=[crl])
    _, other = _issue(root)
    tx.validate_chain(other, trust_anchors=[ca], crls=[crl])  # not listed: fine
    stale = tx.create_crl(ca, ca_key, [], this_update=dt.datetime.now(UTC) - dt.timedelta(days=30))
    with pytest.raises(CertificateError, match="out of date"):
        tx.validate_chain(other, trust_anchors=[ca], crls=[stale])
    forged_key = SM2PrivateKey.generate()
    forged_crl = tx.create_crl(tx.create_ca(forged_key, {"country_name": "CN", "common_name": "Root"}), forged_key, [])
    with pytest.raises(CertificateError, match="CRL signature"):
        tx.validate_chain(other, trust_anchors=[ca], crls=[forged_crl])


def test_csr_without_proof_of_possession(root):
    key = SM2PrivateKey.generate()
    csr = bytearray(tx.create_csr(key, {"common_name": "x"}))
    csr[-5] ^= 0x01  # inside the signature
    with pytest.raises(CertificateError):
        tx.issue_certificate(bytes(csr), root[1], root[0])


def test_issuer_key_must_match(root):
    key = SM2PrivateKey.generate()
    with pytest.raises(CertificateError, match="issuer key does not match"):
        tx.issue_certificate(tx.create_csr(key, {"common_name": "x"}), root[1], SM2PrivateKey.generate())


def test_unknown_critical_extension_rejected(root):
    ca_key, ca = root
    _, cert = _issue(root)
    parsed = tx.load_certificate(cert)
    tbs = parsed["tbs_certificate"].copy()
    exts = list(tbs["extensions"]) + [
        ax.Extension({"extn_id": "2.25.1", "critical": True, "extn_value": b"\x05\x00"})
    ]
    tbs["extensions"] = exts
    forged = ax.Certificate({
        "tbs_certificate": tbs,
        "signature_algorithm": parsed["signature_algorithm"],
        "signature_value": ca_key.sign(tbs.dump()),
    }).dump()
    with pytest.raises(CertificateError, match="unknown critical extension"):
        tx.validate_chain(forged, trust_anchors=[ca])


def test_malformed_certificate():
    with pytest.raises(CertificateError, match="malformed"):
        tx.load_certificate(b"\x30\x03\x02\x01\x01")


def test_csr_signed_with_an_empty_user_id_is_named(tmp_path):
    """`openssl req -new` without -sigopt distid: signs with an empty SM2 user ID."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command line")
    subprocess.run(["openssl", "genpkey", "-algorithm", "SM2", "-out", "k.pem"], cwd=tmp_path, check=True)
    subprocess.run(["openssl", "req", "-new", "-key", "k.pem", "-sm3", "-subj", "/CN=x", "-out", "r.csr"],
                   cwd=tmp_path, check=True, capture_output=True)
    with pytest.raises(CertificateError, match="empty SM2 user ID.*distid:1234567812345678"):
        tx.load_csr((tmp_path / "r.csr").read_bytes())
