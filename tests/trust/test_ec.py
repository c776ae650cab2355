"""The pure-Python curve arithmetic (cedx.trust.ec) against a textbook affine reference, on
edge scalars and on the example curve of GB/T 32918 (a != -3), and the portable backend's
per-key table path."""

import secrets

import pytest

from cedx.trust.ec import SM2P256V1, Curve
from cedx.trust.keys import SM2PrivateKey, SM2PublicKey

# The 256-bit example curve of GB/T 32918 Annex A (a is not -3: exercises the generic doubling).
EXAMPLE = Curve(
    name="gbt32918-example-fp256",
    p=0x8542D69E4C044F18E8B92435BF6FF7DE457283915C45517D722EDB8B08F1DFC3,
    a=0x787968B4FA32C3FD2417842E73BBFEFF2F3C848B6831D7E0EC65228B3937E498,
    b=0x63E4C6D3B23B0C849CF84241484BFE48F61D59A5B16BA06E6E12D1DA27C5249A,
    n=0x8542D69E4C044F18E8B92435BF6FF7DD297720630485628D5AE74EE7C32E79B7,
    gx=0x421DEBD61B62EAB6746434EBC3CC315E32220B3BADD50BDC4C4E6C147FEDD43D,
    gy=0x0680512BCBB42C07D47349D2153B70C4E5D7FDFCBFA36EA1A85841B9E46E09A2,
)


def ref_add(c: Curve, p1, p2):
    """Affine textbook addition, the slow obvious reference."""
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2 and (y1 + y2) % c.p == 0:
        return None
    if p1 == p2:
        lam = (3 * x1 * x1 + c.a) * pow(2 * y1, -1, c.p) % c.p
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, c.p) % c.p
    x3 = (lam * lam - x1 - x2) % c.p
    return (x3, (lam * (x1 - x3) - y1) % c.p)


def ref_mul(c: Curve, k: int, pt):
    acc = None
    for bit in bin(k)[2:]:
        acc = ref_add(c, acc, acc)
        if bit == "1":
            acc = ref_add(c, acc, pt)
    return acc


@pytest.mark.parametrize("curve", [SM2P256V1, EXAMPLE], ids=lambda c: c.name)
def test_scalar_multiplication_matches_the_reference(curve):
    assert curve.contains(curve.g)
    q = ref_mul(curve, 0xC0FFEE, curve.g)
    scalars = [1, 2, 3, 15, 16, 17, 31, curve.n - 1, curve.n - 2, (1 << 255) + 1, secrets.randbelow(curve.n)]
    for k in scalars:
        expected = ref_mul(curve, k, curve.g)
        assert curve.multiply_base(k) == expected, k
        assert curve.multiply(k, q) == ref_mul(curve, k, q), k
        assert curve.contains(expected)
    assert curve.multiply_base(curve.n) is None
    assert curve.multiply_base(0) is None
    assert curve.multiply(curve.n, q) is None


@pytest.mark.parametrize("curve", [SM2P256V1, EXAMPLE], ids=lambda c: c.name)
def test_multiply_sum_and_tables(curve):
    q = curve.multiply_base(secrets.randbelow(curve.n - 1) + 1)
    table = curve.precompute(q)
    for _ in range(3):
        u, v = secrets.randbelow(curve.n), secrets.randbelow(curve.n)
        expected = ref_add(curve, ref_mul(curve, u, curve.g), ref_mul(curve, v, q))
        assert curve.multiply_sum(u, v, q) == expected
        assert curve.multiply_sum(u, v, q, table) == expected
    # u·G + v·Q = infinity when Q = G and u + v = n; and P + (-P) = infinity.
    assert curve.multiply_sum(5, curve.n - 5, curve.g) is None
    assert curve.add(q, (q[0], curve.p - q[1])) is None
    assert curve.add(q, q) == ref_add(curve, q, q)


def test_portable_verification_through_the_per_key_table():
    """After a few verifications a key gets its own table: results must not change."""
    from cedx.trust.backends import get_backend

    backend = get_backend("portable")
    key = SM2PrivateKey.generate(backend)
    pub = SM2PublicKey(key.public_key().point, backend)
    sigs = [(key.sign(m), m) for m in (b"a", b"b", b"c")]
    for _ in range(4):
        for sig, m in sigs:
            pub.verify(sig, m)
            assert not pub.is_valid(sig, m + b"x")
    assert pub._get_handle().table is not None
    other = SM2PrivateKey.generate(backend)
    assert not pub.is_valid(other.sign(b"a"), b"a")


def test_per_key_tables_are_bounded():
    from cedx.trust.backends import portable

    tables = portable._Tables(2)
    a, b, c = (SM2P256V1.multiply_base(k) for k in (2, 3, 5))
    for q in (a, b):
        tables.put(q, [q])
    assert tables.get(a) == [a]  # a is now the most recently used
    tables.put(c, [c])
    assert tables.get(b) is None and tables.get(a) == [a] and tables.get(c) == [c]
