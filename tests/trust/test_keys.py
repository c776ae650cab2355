"""SM2 keys, signatures and encryption: encodings and every rejection path."""

import pytest

from cedx.trust import der
from cedx.trust.curve import GX, GY, N, P, encode_point
from cedx.trust.errors import DecryptionError, InvalidKey, InvalidSignature
from cedx.trust.keys import SM2PrivateKey, SM2PublicKey


@pytest.fixture
def key(backend):
    return SM2PrivateKey.generate(backend)


def test_sign_verify_default_and_custom_id(key):
    pub = key.public_key()
    sig = key.sign(b"payload")
    pub.verify(sig, b"payload")
    custom = key.sign(b"payload", uid=b"ALICE123@YAHOO.COM")
    pub.verify(custom, b"payload", uid=b"ALICE123@YAHOO.COM")
    with pytest.raises(InvalidSignature):
        pub.verify(custom, b"payload")  # wrong ID
    with pytest.raises(InvalidSignature):
        pub.verify(sig, b"payload", uid=b"other")


def test_tampered_payload_and_signature_rejected(key):
    sig = key.sign(b"payload")
    with pytest.raises(InvalidSignature, match="does not verify"):
        key.public_key().verify(sig, b"payloaD")
    r, s = der.decode_signature(sig)
    with pytest.raises(InvalidSignature, match="does not verify"):
        key.public_key().verify(der.encode_signature(r, (s + 1) % N or 1), b"payload")


def test_wrong_key_rejected(key, backend):
    other = SM2PrivateKey.generate(backend)
    with pytest.raises(InvalidSignature):
        other.public_key().verify(key.sign(b"m"), b"m")


def _der_int(value: int, pad: bool = False) -> bytes:
    body = value.to_bytes((value.bit_length() + 8) // 8, "big")
    if pad:
        body = b"\x00" + body  # a redundant leading zero: valid BER, invalid DER
    return b"\x02" + bytes([len(body)]) + body


def test_non_minimal_and_malformed_der_rejected(key):
    sig = key.sign(b"m")
    r, s = der.decode_signature(sig)
    body = _der_int(r, pad=True) + _der_int(s)
    nonminimal = b"\x30" + bytes([len(body)]) + body
    with pytest.raises(InvalidSignature, match="non-canonical|not a DER"):
        key.public_key().verify(nonminimal, b"m")
    with pytest.raises(InvalidSignature, match="length does not match|trailing"):
        key.public_key().verify(sig + b"\x00", b"m")  # trailing byte
    with pytest.raises(InvalidSignature):
        key.public_key().verify(b"\x30\x03\x02\x01\x01", b"m")  # one INTEGER only
    with pytest.raises(InvalidSignature):
        key.public_key().verify(sig[:-1], b"m")  # truncated
    long_form = b"\x30\x81" + sig[1:]  # long-form length where the short form suffices
    with pytest.raises(InvalidSignature):
        key.public_key().verify(long_form, b"m")
    # The well-formed signature still verifies: the rejections are about encoding only.
    body = _der_int(r) + _der_int(s)
    key.public_key().verify(b"\x30" + bytes([len(body)]) + body, b"m")


def test_signature_components_out_of_range(key):
    with pytest.raises(InvalidSignature, match="outside"):
        key.public_key().verify(der.encode_signature(0, 5), b"m")
    with pytest.raises(InvalidSignature, match="outside"):
        key.public_key().verify(der.encode_signature(N, 5), b"m")


def test_public_key_validation(backend):
    with pytest.raises(InvalidKey, match="not on the SM2 curve"):
        SM2PublicKey((GX, (GY + 1) % P), backend)
    with pytest.raises(InvalidKey, match="65 bytes"):
        SM2PublicKey.from_bytes(encode_point((GX, GY))[:64], backend)
    with pytest.raises(InvalidKey, match="uncompressed"):
        SM2PublicKey.from_bytes(b"\x02" + encode_point((GX, GY))[1:], backend)
    with pytest.raises(InvalidKey):
        SM2PublicKey.from_bytes(b"\x04" + b"\x00" * 64, backend)


def test_public_key_whose_x_starts_with_0_or_4(backend):
    """Some libraries strip leading '0'/'4' hex digits of such keys (gmssl 3.2.2); cedx must not."""
    from cedx.trust.backends import get_backend

    finder = get_backend("portable")
    d = 1
    while True:
        x = finder.public_point(d)[0]
        if f"{x:064x}"[0] in "04" and f"{x:064x}"[:2] in ("04", "00", "40", "44"):
            break
        d += 1
    key = SM2PrivateKey(d, backend)
    key.public_key().verify(key.sign(b"m"), b"m")
    assert key.decrypt(key.public_key().encrypt(b"m")) == b"m"


def test_private_key_range(backend):
    for bad in (0, N - 1, N, N + 5):
        with pytest.raises(InvalidKey):
            SM2PrivateKey(bad, backend)


def test_pem_der_roundtrip_and_password(key, backend):
    for data in (key.to_pem(), key.to_der()):
        assert SM2PrivateKey.from_bytes(data, backend=backend).private_value == key.private_value
    enc = key.to_pem(password=b"s3cret")
    assert b"ENCRYPTED PRIVATE KEY" in enc
    assert SM2PrivateKey.from_bytes(enc, b"s3cret", backend).private_value == key.private_value
    with pytest.raises(InvalidKey, match="password is required"):
        SM2PrivateKey.from_bytes(enc, backend=backend)
    with pytest.raises(InvalidKey, match="wrong password"):
        SM2PrivateKey.from_bytes(enc, b"wrong", backend)
    pub = key.public_key()
    for data in (pub.to_pem(), pub.to_der(), pub.raw()):
        assert SM2PublicKey.from_bytes(data, backend) == pub
    with pytest.raises(InvalidKey, match="PUBLIC KEY"):
        SM2PublicKey.from_bytes(key.to_pem(), backend)


def test_wrong_password_error_is_deterministic(key, backend, monkeypatch):
    """A wrong password gives random plaintext whose PKCS#7 padding is valid about once in 256
    tries; each such case must still say "wrong password". Fresh encryptions (random salt and IV;
    PBKDF2 cut to one round so the loop is fast) until that case was met five times (~1,300)."""
    from cedx.trust import keys as k

    monkeypatch.setattr(k, "_PBKDF2_ITERATIONS", 1)
    plain = key.to_der()
    valid_padding = 0
    for _ in range(100_000):
        if valid_padding >= 5:
            break
        enc = k._encrypt_pkcs8(plain, b"right")
        try:
            k._decrypt_pkcs8(enc, b"wrong")
            valid_padding += 1
        except InvalidKey:
            pass
        with pytest.raises(InvalidKey, match="wrong password"):
            SM2PrivateKey.from_bytes(enc, b"wrong", backend)
    assert valid_padding >= 5, "the loop must reach plaintext with valid padding"
    assert SM2PrivateKey.from_bytes(enc, b"right", backend).private_value == key.private_value


def test_encryption_roundtrip_and_c3_check(key):
    for msg in (b"", b"x", b"A" * 1000):
        assert key.decrypt(key.public_key().encrypt(msg)) == msg
    ct = key.public_key().encrypt(b"sensitive value")
    x, y, c3, c2 = der.decode_ciphertext(ct)
    tampered = der.encode_ciphertext(x, y, c3, bytes([c2[0] ^ 1]) + c2[1:])
    with pytest.raises(DecryptionError, match="C3"):
        key.decrypt(tampered)
    with pytest.raises(DecryptionError, match="C3"):
        SM2PrivateKey.generate().decrypt(ct)  # wrong key
    with pytest.raises(DecryptionError, match="not a valid point"):
        key.decrypt(der.encode_ciphertext(x, (y + 1) % P, c3, c2))
    with pytest.raises(DecryptionError):
        key.decrypt(ct[:-1])


def test_repr_never_shows_private_value(key):
    assert f"{key.private_value:x}" not in repr(key)


def test_a_file_name_or_a_certificate_given_as_a_key_is_named():
    """An integrator's first mistakes: a file name (a TypeError from deep in the parser), the
    certificate instead of the key (an OID as the message)."""
    import pytest

    from cedx import trust
    from cedx.trust import x509 as tx

    key = trust.generate_private_key()
    for loader in (trust.load_private_key, trust.load_public_key):
        with pytest.raises(trust.InvalidKey, match="takes the key as PEM or DER bytes, not str; read the file first"):
            loader("entity.key.pem")
    cert = tx.to_pem(tx.create_ca(key, {"common_name": "x"}))
    with pytest.raises(trust.InvalidKey, match="expected a PRIVATE KEY PEM block, found 'CERTIFICATE'"):
        trust.load_private_key(cert)
