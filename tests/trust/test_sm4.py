import os

import pytest

from cedx import trust
from cedx.trust import sm4
from cedx.trust.errors import DecryptionError

KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")


def test_cbc_roundtrip_and_bad_padding():
    iv = os.urandom(16)
    for msg in (b"", b"a" * 15, b"b" * 16, b"c" * 100):
        assert sm4.cbc_decrypt(KEY, iv, sm4.cbc_encrypt(KEY, iv, msg)) == msg
    ct = sm4.cbc_encrypt(KEY, iv, b"hello")
    with pytest.raises(DecryptionError):
        sm4.cbc_decrypt(bytes(16), iv, ct)
    with pytest.raises(DecryptionError, match="multiple of 16"):
        sm4.cbc_decrypt(KEY, iv, ct[:-1])


def test_gcm_roundtrip_and_tamper():
    nonce = os.urandom(12)
    ct = sm4.gcm_encrypt(KEY, nonce, b"hello", b"aad")
    assert sm4.gcm_decrypt(KEY, nonce, ct, b"aad") == b"hello"
    with pytest.raises(DecryptionError, match="tag"):
        sm4.gcm_decrypt(KEY, nonce, ct, b"other aad")
    with pytest.raises(DecryptionError, match="tag"):
        sm4.gcm_decrypt(KEY, nonce, bytes([ct[0] ^ 1]) + ct[1:], b"aad")
    with pytest.raises(ValueError):
        sm4.gcm_encrypt(b"short", nonce, b"x")


def test_encrypted_field_envelope():
    key = trust.generate_private_key()
    env = sm4.seal_field("联系人电话 13800000000".encode(), key.public_key(), aad=b"$.contacts[0].phone")
    assert sm4.open_field(env, key, aad=b"$.contacts[0].phone").decode() == "联系人电话 13800000000"
    with pytest.raises(DecryptionError, match="tag"):
        sm4.open_field(env, key, aad=b"$.contacts[1].phone")  # moved to another field
    with pytest.raises(DecryptionError, match="another recipient"):
        sm4.open_field(env, trust.generate_private_key(), aad=b"$.contacts[0].phone")
