"""Published test vectors, run against every backend (data files under vectors/)."""

import pytest

from cedx.trust import sm4
from cedx.trust.curve import decode_point
from cedx.trust.der import decode_ciphertext, decode_signature, encode_signature
from cedx.trust.keys import SM2PrivateKey, SM2PublicKey
from cedx.trust.sm3 import sm3

from .conftest import load_vectors


@pytest.mark.parametrize("v", load_vectors("sm3.json"), ids=lambda v: v["message_hex"][:8] or "empty")
def test_sm3(v):
    assert sm3(bytes.fromhex(v["message_hex"])).hex() == v["digest"]


@pytest.mark.parametrize("v", load_vectors("sm4.json"))
def test_sm4_block(v):
    key = bytes.fromhex(v["key"])
    assert sm4.encrypt_block(key, bytes.fromhex(v["plaintext"])).hex() == v["ciphertext"]


@pytest.mark.parametrize("v", load_vectors("sm2_sign.json"))
def test_sm2_signature_vector(backend, v):
    key = SM2PrivateKey(int(v["private_key"], 16), backend)
    x, y = key.public_key().point
    assert (x, y) == (int(v["public_x"], 16), int(v["public_y"], 16))
    uid, msg = v["user_id"].encode(), v["message"].encode()
    sig = key.sign(msg, uid, k=int(v["k"], 16))
    assert decode_signature(sig) == (int(v["r"], 16), int(v["s"], 16))
    # The published (r, s) verifies through the production path of this backend.
    published = encode_signature(int(v["r"], 16), int(v["s"], 16))
    SM2PublicKey((x, y), backend).verify(published, msg, uid)
    assert not SM2PublicKey((x, y), backend).is_valid(published, msg + b"!", uid)


@pytest.mark.parametrize("v", load_vectors("sm2_encrypt.json"))
def test_sm2_encryption_vector(backend, v):
    key = SM2PrivateKey(int(v["private_key"], 16), backend)
    ct = key.public_key().encrypt(v["plaintext"].encode(), k=int(v["k"], 16))
    assert ct.hex().upper() == v["der"]
    x, y, c3, c2 = decode_ciphertext(ct)
    assert (x, y) == (int(v["c1_x"], 16), int(v["c1_y"], 16))
    assert c3.hex().upper() == v["c3"] and c2.hex().upper() == v["c2"]
    assert key.decrypt(bytes.fromhex(v["der"])) == v["plaintext"].encode()


def test_backends_agree_on_random_keys(backend):
    """Signatures made by one backend verify on the other, both ways."""
    from cedx.trust.backends import available_backends, get_backend

    for other_name in available_backends():
        other = get_backend(other_name)
        key = SM2PrivateKey.generate(backend)
        sig = key.sign(b"cross-backend")
        SM2PublicKey(key.public_key().point, other).verify(sig, b"cross-backend")
        ct = SM2PublicKey(key.public_key().point, other).encrypt(b"secret")
        assert key.decrypt(ct) == b"secret"
        assert decode_point(key.public_key().raw()) == key.public_key().point


def test_native_backend_present_on_linux_x86_64():
    import platform
    import sys

    from cedx.trust.backends import available_backends

    if sys.platform == "linux" and platform.machine() == "x86_64":
        assert "native" in available_backends(), "tongsuopy wheel expected on linux x86_64"


def test_backend_choice_follows_the_environment_variable():
    import os
    import subprocess
    import sys

    code = "from cedx.trust.backends import get_backend; print(get_backend().name)"
    for name in ("portable", "native"):
        env = dict(os.environ, CEDX_SM2_BACKEND=name)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert out.stdout.strip() == name, out.stderr
    env = dict(os.environ, CEDX_SM2_BACKEND="bogus")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "unknown SM2 backend" in out.stderr
