import datetime as dt

import pytest

from cedx import trust
from cedx.trust.errors import InvalidSignature, ReplayError
from cedx.trust.reqsign import RequestVerifier, canonical_query, sign_request

UTC = dt.timezone.utc


@pytest.fixture
def setup():
    key = trust.generate_private_key()
    keys = {key.public_key().fingerprint(): key.public_key()}
    return key, RequestVerifier(keys.get)


def test_valid_request(setup):
    key, verifier = setup
    body = b'{"period":"2026-10"}'
    h = sign_request(key, "post", "/v1/submissions", "b=2&a=1", body)
    assert verifier.verify("POST", "/v1/submissions", "a=1&b=2", h, body) == key.public_key()


def test_replayed_nonce_rejected(setup):
    key, verifier = setup
    h = sign_request(key, "GET", "/v1/submissions")
    verifier.verify("GET", "/v1/submissions", "", h, b"")
    with pytest.raises(ReplayError, match="already been used"):
        verifier.verify("GET", "/v1/submissions", "", h, b"")


def test_outside_window_rejected(setup):
    key, verifier = setup
    old = dt.datetime.now(UTC) - dt.timedelta(minutes=10)
    h = sign_request(key, "GET", "/v1/x", now=old)
    with pytest.raises(ReplayError, match="window"):
        verifier.verify("GET", "/v1/x", "", h, b"")


@pytest.mark.parametrize("field", ["method", "path", "query", "body"])
def test_tampering_rejected(setup, field):
    key, verifier = setup
    h = sign_request(key, "POST", "/v1/a", "x=1", b"body")
    args = {"method": "POST", "path": "/v1/a", "query": "x=1", "body": b"body"}
    args[field] = {"method": "PUT", "path": "/v1/b", "query": "x=2", "body": b"bodY"}[field]
    with pytest.raises(InvalidSignature):
        verifier.verify(args["method"], args["path"], args["query"], h, args["body"])


def test_missing_header_and_unknown_key(setup):
    key, verifier = setup
    h = sign_request(key, "GET", "/v1/a")
    partial = {k: v for k, v in h.items() if k != "X-Cedx-Nonce"}
    with pytest.raises(InvalidSignature, match="X-Cedx-Nonce"):
        verifier.verify("GET", "/v1/a", "", partial, b"")
    stranger = sign_request(trust.generate_private_key(), "GET", "/v1/a")
    with pytest.raises(InvalidSignature, match="unknown"):
        verifier.verify("GET", "/v1/a", "", stranger, b"")


def test_forged_request_does_not_burn_nonce(setup):
    key, verifier = setup
    h = sign_request(key, "GET", "/v1/a")
    with pytest.raises(InvalidSignature):
        verifier.verify("GET", "/v1/b", "", h, b"")
    verifier.verify("GET", "/v1/a", "", h, b"")  # still accepted once


def test_canonical_query():
    assert canonical_query("b=2&a=1&a=0&c=%E7%A2%B3") == "a=0&a=1&b=2&c=%E7%A2%B3"


def test_body_digest_given_by_the_caller_is_the_one_checked(setup):
    key, verifier = setup
    body = b'{"period":"2026-10"}'
    h = sign_request(key, "POST", "/v1/a", "", body)
    with pytest.raises(InvalidSignature):  # a digest of other bytes does not verify
        verifier.verify("POST", "/v1/a", "", h, body, body_sm3=trust.sm3(b"other"))
    assert verifier.verify("POST", "/v1/a", "", h, body, body_sm3=trust.PrefixDigests(body).digest) == key.public_key()


# --------------------------------------------------------------------------- PrefixDigests
def test_prefix_digests_equal_sm3_on_every_length_and_every_shared_prefix():
    import random

    rng = random.Random(32905)
    step = 64
    for size in (0, 1, 63, 64, 65, 127, 128, 129, 640, 1000):
        data = rng.randbytes(size)
        digests = trust.PrefixDigests(data, step=step)
        assert digests.digest == trust.sm3(data)
        for shared in sorted({0, 1, step - 1, step, step + 1, size // 2, max(size - 1, 0), size}):
            if shared > size:
                continue
            for tail in (b"", b"x", rng.randbytes(200)):
                other = data[:shared] + tail
                assert digests.sm3_of(other) == trust.sm3(other), (size, shared, tail[:4])
            if shared < size:  # the first differing byte exactly at ``shared``
                flipped = data[:shared] + bytes([data[shared] ^ 1]) + data[shared + 1:]
                assert digests.sm3_of(flipped) == trust.sm3(flipped), (size, shared)
    assert trust.PrefixDigests(b"abc").digest.hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"


def test_a_signature_made_with_an_empty_user_id_is_named(setup):
    """OpenSSL 3 signs SM2 with an empty user ID unless given -sigopt distid: the refusal says so."""
    import base64

    from cedx.trust.reqsign import string_to_sign

    key, verifier = setup
    h = sign_request(key, "GET", "/v1/submissions")
    signed = string_to_sign("GET", "/v1/submissions", "", h["X-Cedx-Timestamp"], h["X-Cedx-Nonce"], b"")
    h["X-Cedx-Signature"] = base64.b64encode(key.sign(signed, b"")).decode()
    with pytest.raises(InvalidSignature, match="empty SM2 user ID.*distid:1234567812345678"):
        verifier.verify("GET", "/v1/submissions", "", h, b"")
    h = sign_request(key, "GET", "/v1/submissions")
    h["X-Cedx-Signature"] = sign_request(key, "GET", "/v1/other")["X-Cedx-Signature"]
    with pytest.raises(InvalidSignature) as info:
        verifier.verify("GET", "/v1/submissions", "", h, b"")
    assert "user ID" not in str(info.value)  # a plain mismatch gets no misleading hint


def test_signed_path_puts_the_base_urls_path_back():
    """Profile §5/§11: the signed path is the full path the client sent; a server behind a proxy
    that removes its base URL's path puts it back; without a path, or already there, nothing changes."""
    from cedx.trust.reqsign import signed_path

    assert signed_path("/v1/reporting/submissions", "https://p.example.cn/cedx") == "/cedx/v1/reporting/submissions"
    assert signed_path("/v1/reporting/submissions", "https://p.example.cn/cedx/") == "/cedx/v1/reporting/submissions"
    assert signed_path("/cedx/v1/reporting/submissions", "https://p.example.cn/cedx") == "/cedx/v1/reporting/submissions"
    assert signed_path("/cedxx/v1", "https://p.example.cn/cedx") == "/cedx/cedxx/v1"
    for base in (None, "", "https://p.example.cn", "https://p.example.cn/"):
        assert signed_path("/v1/reporting/submissions", base) == "/v1/reporting/submissions"
