"""SM2 key exchange (GB/T 32918.3): the standard's worked examples, an independent
implementation (gmalg) on sm2p256v1, and refusals of bad peer data."""

import gmalg
import pytest

from cedx.trust.ec import SM2P256V1, Curve
from cedx.trust.errors import InvalidKey
from cedx.trust.key_exchange import (
    Agreement,
    KeyExchangeError,
    agree,
    generate_ephemeral,
    public_key_of,
    z_value,
)

from .conftest import load_vectors


def curve_of(v) -> Curve:
    c = v["curve"]
    if c == "sm2p256v1":
        return SM2P256V1
    return Curve(name=v["name"], h=c["h"], **{k: int(c[k], 16) for k in ("p", "a", "b", "n", "gx", "gy")})


@pytest.mark.parametrize("v", load_vectors("sm2_key_exchange.json"), ids=lambda v: v["name"])
def test_worked_examples(v):
    curve = curve_of(v)
    d_a, r_a, d_b, r_b = (int(v[k], 16) for k in ("d_a", "r_a", "d_b", "r_b"))
    id_a, id_b = v["initiator_id"].encode(), v["responder_id"].encode()
    p_a, p_b = public_key_of(d_a, curve), public_key_of(d_b, curve)
    assert p_a.hex().upper() == v["p_a"] and p_b.hex().upper() == v["p_b"]
    big_r_a, big_r_b = public_key_of(r_a, curve), public_key_of(r_b, curve)
    if "r_b_point" in v:
        assert big_r_b.hex().upper() == v["r_b_point"]
    if "z_a" in v:
        assert z_value(id_a, curve.multiply_base(d_a), curve).hex().upper() == v["z_a"]
        assert z_value(id_b, curve.multiply_base(d_b), curve).hex().upper() == v["z_b"]
    a = agree("initiator", id_a, d_a, r_a, id_b, p_b, big_r_b, v["key_length"], curve=curve)
    b = agree("responder", id_b, d_b, r_b, id_a, p_a, big_r_a, v["key_length"], curve=curve)
    assert a.key.hex().upper() == v["key"] == b.key.hex().upper()
    assert a.confirmation.hex().upper() == v["s_a"] == b.expected_confirmation.hex().upper()
    assert b.confirmation.hex().upper() == v["s_b"] == a.expected_confirmation.hex().upper()
    a.confirm(b.confirmation)
    b.confirm(a.confirmation)
    with pytest.raises(KeyExchangeError):
        a.confirm(a.confirmation)  # S_A is not S_B: a reflected confirmation is refused


@pytest.mark.parametrize("key_length", [1, 16, 32, 33, 65])
def test_same_key_as_gmalg_on_sm2p256v1(key_length):
    """gmalg (independent pure-Python implementation; it derives K without confirmation)."""
    d_a, d_b = (generate_ephemeral()[0] % (SM2P256V1.n - 2) + 1 for _ in range(2))
    (r_a, big_r_a), (r_b, big_r_b) = generate_ephemeral(), generate_ephemeral()
    id_a, id_b = b"source-01@plant.example", b"91320500MA1X2P3Q4R"
    p_a, p_b = public_key_of(d_a), public_key_of(d_b)

    def gm(d, uid, r):
        return gmalg.SM2(d.to_bytes(32, "big"), uid, None, rnd_fn=lambda _bits: r)

    ga, gb = gm(d_a, id_a, r_a), gm(d_b, id_b, r_b)
    ra_bytes, t_a = ga.begin_key_exchange()
    rb_bytes, t_b = gb.begin_key_exchange()
    assert (ra_bytes, rb_bytes) == (big_r_a, big_r_b)
    k_gm = ga.end_key_exchange(key_length, t_a, rb_bytes, id_b, p_b, gmalg.KEYXCHG_MODE.INITIATOR)
    assert gb.end_key_exchange(key_length, t_b, ra_bytes, id_a, p_a, gmalg.KEYXCHG_MODE.RESPONDER) == k_gm
    a = agree("initiator", id_a, d_a, r_a, id_b, p_b, big_r_b, key_length)
    b = agree("responder", id_b, d_b, r_b, id_a, p_a, big_r_a, key_length)
    assert a.key == b.key == k_gm and len(k_gm) == key_length
    a.confirm(b.confirmation)
    b.confirm(a.confirmation)


def parties():
    d_a, d_b = 0x1234567, 0x7654321ABCDEF
    r_a, big_r_a = generate_ephemeral()
    r_b, big_r_b = generate_ephemeral()
    return d_a, r_a, big_r_a, d_b, r_b, big_r_b


def test_mismatches_are_caught_by_confirmation():
    d_a, r_a, big_r_a, d_b, r_b, big_r_b = parties()
    p_a, p_b = public_key_of(d_a), public_key_of(d_b)
    b = agree("responder", b"B", d_b, r_b, b"A", p_a, big_r_a, 16)
    # Wrong peer ID, wrong peer key, a replaced ephemeral key, both claiming the same role.
    wrong = [
        agree("initiator", b"A", d_a, r_a, b"B2", p_b, big_r_b, 16),
        agree("initiator", b"A", d_a, r_a, b"B", public_key_of(d_b + 1), big_r_b, 16),
        agree("initiator", b"A", d_a, r_a, b"B", p_b, generate_ephemeral()[1], 16),
        agree("responder", b"A", d_a, r_a, b"B", p_b, big_r_b, 16),
    ]
    for a in wrong:
        assert a.key != b.key
        with pytest.raises(KeyExchangeError, match="confirmation failed"):
            a.confirm(b.confirmation)
        with pytest.raises(KeyExchangeError):
            b.confirm(a.confirmation)
    good = agree("initiator", b"A", d_a, r_a, b"B", p_b, big_r_b, 16)
    assert good.key == b.key and "key=" in repr(good) and good.key.hex() not in repr(good)
    assert isinstance(good, Agreement)


def test_bad_peer_points_and_arguments_are_refused():
    d_a, r_a, _, d_b, _, big_r_b = parties()
    p_b = public_key_of(d_b)
    off_curve = p_b[:-1] + bytes([p_b[-1] ^ 1])
    cases = [
        (off_curve, big_r_b, "not a point"),
        (p_b, off_curve, "ephemeral public key is not a point"),
        (p_b[:64], big_r_b, "65 bytes"),
        (b"\x02" + p_b[1:], big_r_b, "uncompressed"),
        (b"\x04" + bytes(64), big_r_b, "not a point"),  # (0, 0): also the usual stand-in for infinity
    ]
    for peer, peer_r, message in cases:
        with pytest.raises(InvalidKey, match=message):
            agree("initiator", b"A", d_a, r_a, b"B", peer, peer_r, 16)
    n = SM2P256V1.n
    for bad_d in (0, n - 1, n):
        with pytest.raises(InvalidKey):
            agree("initiator", b"A", bad_d, r_a, b"B", p_b, big_r_b, 16)
    for bad_r in (0, n):
        with pytest.raises(InvalidKey):
            agree("initiator", b"A", d_a, bad_r, b"B", p_b, big_r_b, 16)
    with pytest.raises(ValueError, match="role"):
        agree("client", b"A", d_a, r_a, b"B", p_b, big_r_b, 16)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="key_length"):
        agree("initiator", b"A", d_a, r_a, b"B", p_b, big_r_b, 0)
    with pytest.raises(InvalidKey):
        public_key_of(0)


def test_ephemeral_keys_are_fresh_and_valid():
    seen = {generate_ephemeral()[0] for _ in range(8)}
    assert len(seen) == 8
    r, big_r = generate_ephemeral()
    assert big_r == public_key_of(r) and len(big_r) == 65 and big_r[0] == 4
