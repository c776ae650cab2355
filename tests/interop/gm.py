"""SM2 key exchange with confirmation (GB/T 32918.3 §6), SM4 (GB/T 32907) and GCM (NIST SP 800-38D)
in plain Python: an independent second implementation for reproducing the published vectors
(nothing from cedx; SM3 comes from hashlib, i.e. OpenSSL). Slow and not constant-time: test use only."""

from __future__ import annotations

import hashlib
import math

P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
G = (0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7,
     0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0)


def sm3(data: bytes) -> bytes:
    return hashlib.new("sm3", data).digest()


def _add(p1, p2):
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    if p1[0] == p2[0] and (p1[1] + p2[1]) % P == 0:
        return None
    if p1 == p2:
        lam = (3 * p1[0] * p1[0] + A) * pow(2 * p1[1], -1, P) % P
    else:
        lam = (p2[1] - p1[1]) * pow(p2[0] - p1[0], -1, P) % P
    x = (lam * lam - p1[0] - p2[0]) % P
    return x, (lam * (p1[0] - x) - p1[1]) % P


def mul(k: int, point=G):
    out = None
    while k:
        if k & 1:
            out = _add(out, point)
        point, k = _add(point, point), k >> 1
    return out


def b32(x: int) -> bytes:
    return x.to_bytes(32, "big")


def point_bytes(point) -> bytes:
    return b"\x04" + b32(point[0]) + b32(point[1])


def z_value(uid: bytes, point) -> bytes:
    return sm3((len(uid) * 8).to_bytes(2, "big") + uid + b"".join(b32(v) for v in (A, B, *G, *point)))


def kdf(z: bytes, length: int) -> bytes:
    out, counter = b"", 1
    while len(out) < length:
        out += sm3(z + counter.to_bytes(4, "big"))
        counter += 1
    return out[:length]


def exchange(d_a: int, r_a: int, id_a: bytes, d_b: int, r_b: int, id_b: bytes, length: int) -> dict:
    """Both sides of §6 of GB/T 32918.3 (docs/key-exchange.md §3): K, Z_A, Z_B, S_A, S_B."""
    w = math.ceil(math.ceil(math.log2(N)) / 2) - 1
    bar = lambda x: 2 ** w + (x % 2 ** w)  # noqa: E731
    p_a, p_b, big_a, big_b = mul(d_a), mul(d_b), mul(r_a), mul(r_b)
    u = mul((d_a + bar(big_a[0]) * r_a) % N, _add(p_b, mul(bar(big_b[0]), big_b)))
    v = mul((d_b + bar(big_b[0]) * r_b) % N, _add(p_a, mul(bar(big_a[0]), big_a)))
    assert u == v and u is not None
    z_a, z_b = z_value(id_a, p_a), z_value(id_b, p_b)
    inner = sm3(b32(u[0]) + z_a + z_b + b32(big_a[0]) + b32(big_a[1]) + b32(big_b[0]) + b32(big_b[1]))
    return {"key": kdf(b32(u[0]) + b32(u[1]) + z_a + z_b, length), "z_a": z_a, "z_b": z_b,
            "s_b": sm3(b"\x02" + b32(u[1]) + inner), "s_a": sm3(b"\x03" + b32(u[1]) + inner),
            "R_a": point_bytes(big_a), "R_b": point_bytes(big_b)}


# --------------------------------------------------------------------------- SM4 and GCM
_SBOX = bytes.fromhex(
    "d690e9fecce13db716b614c228fb2c052b679a762abe04c3aa441326498606999c4250f491ef987a33540b43edcfac62"
    "e4b31ca9c908e89580df94fa758f3fa64707a7fcf37317ba83593c19e6854fa8686b81b27164da8bf8eb0f4b70569d35"
    "1e240e5e6358d1a225227c3b01217887d40046579fd327524c3602e7a0c4c89eeabf8ad240c738b5a3f7f2cef96115a1"
    "e0ae5da49b341a55ad933230f58cb1e31df6e22e8266ca60c02923ab0d534e6fd5db3745defd8e2f03ff6a726d6c5b51"
    "8d1baf92bbddbc7f11d95c411f105ad80ac13188a5cd7bbd2d74d012b8e5b4b08969974a0c96777e65b9f109c56ec684"
    "18f07dec3adc4d2079ee5f3ed7cb3948")
_FK = (0xA3B1BAC6, 0x56AA3350, 0x677D9197, 0xB27022DC)
_CK = [int.from_bytes(bytes((4 * i + j) * 7 % 256 for j in range(4)), "big") for i in range(32)]


def _rol(x: int, n: int) -> int:
    return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF


def _tau(a: int) -> int:
    return int.from_bytes(bytes(_SBOX[b] for b in a.to_bytes(4, "big")), "big")


def sm4_round_keys(key: bytes) -> list[int]:
    k = [int.from_bytes(key[i:i + 4], "big") ^ _FK[i // 4] for i in range(0, 16, 4)]
    for i in range(32):
        t = _tau(k[i + 1] ^ k[i + 2] ^ k[i + 3] ^ _CK[i])
        k.append(k[i] ^ t ^ _rol(t, 13) ^ _rol(t, 23))
    return k[4:]


def sm4_block(round_keys: list[int], block: bytes) -> bytes:
    x = [int.from_bytes(block[i:i + 4], "big") for i in range(0, 16, 4)]
    for i in range(32):
        t = _tau(x[i + 1] ^ x[i + 2] ^ x[i + 3] ^ round_keys[i])
        x.append(x[i] ^ t ^ _rol(t, 2) ^ _rol(t, 10) ^ _rol(t, 18) ^ _rol(t, 24))
    return b"".join(v.to_bytes(4, "big") for v in reversed(x[-4:]))


def _gf_mul(x: int, y: int) -> int:
    out, r = 0, 0xE1 << 120
    for i in range(127, -1, -1):
        if (y >> i) & 1:
            out ^= x
        x = (x >> 1) ^ r if x & 1 else x >> 1
    return out


def _gcm(key: bytes, nonce: bytes, data: bytes, aad: bytes) -> tuple[bytes, callable]:
    rk = sm4_round_keys(key)
    h = int.from_bytes(sm4_block(rk, bytes(16)), "big")
    j0 = int.from_bytes(nonce + b"\x00\x00\x00\x01", "big")
    out = bytearray()
    for n, i in enumerate(range(0, len(data), 16), start=1):
        counter = (j0 & ~0xFFFFFFFF) | ((j0 + n) & 0xFFFFFFFF)
        out += bytes(a ^ b for a, b in zip(data[i:i + 16], sm4_block(rk, counter.to_bytes(16, "big"))))

    def tag(ciphertext: bytes) -> bytes:
        pad = lambda b: b + bytes(-len(b) % 16)  # noqa: E731
        blob = pad(aad) + pad(ciphertext) + (len(aad) * 8).to_bytes(8, "big") + (len(ciphertext) * 8).to_bytes(8, "big")
        y = 0
        for i in range(0, len(blob), 16):
            y = _gf_mul(y ^ int.from_bytes(blob[i:i + 16], "big"), h)
        return (int.from_bytes(sm4_block(rk, j0.to_bytes(16, "big")), "big") ^ y).to_bytes(16, "big")

    return bytes(out), tag


def gcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """ciphertext || 16-byte tag (12-byte nonce)."""
    body, tag = _gcm(key, nonce, plaintext, aad)
    return body + tag(body)


def gcm_decrypt(key: bytes, nonce: bytes, sealed: bytes, aad: bytes = b"") -> bytes:
    body, tag = sealed[:-16], sealed[-16:]
    plaintext, expected = _gcm(key, nonce, body, aad)
    if expected(body) != tag:
        raise ValueError("SM4-GCM tag does not match")
    return plaintext


def initiator(d_a: int, r_a: int, id_a: bytes, p_b: bytes, big_b: bytes, id_b: bytes, length: int) -> dict:
    """The initiator's side alone (docs/key-exchange.md §3, A column): what a client computes from
    its own keys and the responder's public and ephemeral keys (65-byte 04‖X‖Y)."""
    def point(data: bytes):
        assert len(data) == 65 and data[0] == 4, "not an uncompressed point"
        x, y = int.from_bytes(data[1:33], "big"), int.from_bytes(data[33:], "big")
        assert (y * y - (x * x * x + A * x + B)) % P == 0, "not on the curve"
        return x, y

    w = math.ceil(math.ceil(math.log2(N)) / 2) - 1
    bar = lambda x: 2 ** w + (x % 2 ** w)  # noqa: E731
    big_a, pb, rb = mul(r_a), point(p_b), point(big_b)
    u = mul((d_a + bar(big_a[0]) * r_a) % N, _add(pb, mul(bar(rb[0]), rb)))
    assert u is not None
    z_a, z_b = z_value(id_a, mul(d_a)), z_value(id_b, pb)
    inner = sm3(b32(u[0]) + z_a + z_b + b32(big_a[0]) + b32(big_a[1]) + b32(rb[0]) + b32(rb[1]))
    return {"key": kdf(b32(u[0]) + b32(u[1]) + z_a + z_b, length), "R_a": point_bytes(big_a),
            "s_a": sm3(b"\x03" + b32(u[1]) + inner), "expected_s_b": sm3(b"\x02" + b32(u[1]) + inner)}
