"""The confidentiality mode's published vector (tests/trust/vectors/confidential_page.json,
docs/key-exchange.md §6.7) reproduced from the docs alone: SM2 key exchange with confirmation,
page-key derivation, AAD, nonce and SM4-GCM in plain Python (tests/interop/gm.py; SM3 from
hashlib), and the decrypted page's batches verified with openssl (trust-batches §2, §3)."""

import base64
import json

import pytest

from . import gm
from .client import REPO, OpenSSL
from .source_client import BatchReader

VECTORS = REPO / "tests" / "trust" / "vectors"
PAGE = json.loads((VECTORS / "confidential_page.json").read_text(encoding="utf-8"))


def test_sm4_and_sm4_gcm_known_answers():
    v = json.loads((VECTORS / "sm4.json").read_text())["vectors"][0]
    assert gm.sm4_block(gm.sm4_round_keys(bytes.fromhex(v["key"])), bytes.fromhex(v["plaintext"])).hex() == v["ciphertext"]
    # RFC 8998 appendix A.1 (SM4-GCM)
    sealed = gm.gcm_encrypt(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"), bytes.fromhex("00001234567800000000ABCD"),
                            bytes.fromhex("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
                                          "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"),
                            bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2"))
    assert sealed.hex().upper() == (
        "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735D82710CA5C22F0CCFA7CBF93D496AC15"
        "A56834CBCF98C397B4024A2691233B8D" "83DE3541E4C2B58177E065A9BF7B62EC")


def test_the_published_sm2p256v1_exchange():
    v = json.loads((VECTORS / "sm2_key_exchange.json").read_text())["vectors"][1]
    got = gm.exchange(int(v["d_a"], 16), int(v["r_a"], 16), v["initiator_id"].encode(),
                      int(v["d_b"], 16), int(v["r_b"], 16), v["responder_id"].encode(), v["key_length"])
    assert got["key"].hex().upper() == v["key"] and got["s_a"].hex().upper() == v["s_a"]
    assert got["s_b"].hex().upper() == v["s_b"] and got["z_a"].hex().upper() == v["z_a"]


def _reproduce_page() -> dict:
    v = PAGE
    ex = gm.exchange(int(v["d_a"], 16), int(v["r_a"], 16), v["initiator_id"].encode(),
                     int(v["d_b"], 16), int(v["r_b"], 16), v["responder_id"].encode(), v["key_length"])
    assert (ex["z_a"].hex().upper(), ex["z_b"].hex().upper()) == (v["z_a"], v["z_b"])
    assert ex["key"].hex().upper() == v["key"] and len(ex["key"]) == 32  # klen = 32 bytes (§6.1)
    assert base64.b64encode(ex["R_a"]).decode() == v["ephemeralKeyA"]  # SessionRequest.ephemeralKey
    assert base64.b64encode(ex["R_b"]).decode() == v["ephemeralKeyB"]  # SessionOffer.ephemeralKey
    assert base64.b64encode(ex["s_b"]).decode() == v["confirmationB"]  # SessionOffer.confirmation
    assert base64.b64encode(ex["s_a"]).decode() == v["confirmationA"]  # SessionConfirmation.confirmation
    # §6.3: key = KDF(K ‖ label ‖ 0x00 ‖ sessionId, 16)
    page_key = gm.kdf(ex["key"] + v["label"].encode() + b"\x00" + v["sessionId"].encode("ascii"), 16)
    assert page_key.hex() == v["pageKey"]
    # §6.4: AAD fields joined by LF, the request's values as sent; nonce 00 00 00 01 ‖ counter (first page: 1)
    q = v["request"]
    aad = "\n".join(["cedx-acq-page-v1", v["sessionId"], q["pointId"], q["granularity"], q["from"], q["to"],
                     q["cursor"], q["limit"], "application/json"]).encode()
    assert aad.decode() == v["aad"]
    nonce = b"\x00\x00\x00\x01" + (1).to_bytes(8, "big")
    assert base64.b64encode(nonce).decode() == v["nonce"]
    sealed = base64.b64decode(v["ciphertext"])
    assert gm.gcm_encrypt(page_key, nonce, v["plaintext"].encode(), aad) == sealed
    page = json.loads(gm.gcm_decrypt(page_key, nonce, sealed, aad))
    with pytest.raises(ValueError, match="tag"):  # a page moved to another request does not open
        gm.gcm_decrypt(page_key, nonce, sealed, aad.replace(b"PWR-U1-CO2", b"PWR-U1-COAL"))
    return page


def test_the_confidential_page_vector():
    assert _reproduce_page()["granularity"] == "minute"


@pytest.mark.openssl
def test_the_decrypted_page_holds_verifiable_batches(tmp_path):
    page = _reproduce_page()
    ssl = OpenSSL(tmp_path)
    (tmp_path / "ca.pem").write_bytes((REPO / "spec" / "examples" / "pki" / "ca.pem").read_bytes())
    reader = BatchReader(ssl, "ca.pem", page["pointId"], page["granularity"])
    assert [reader.verify(b)["sequenceNumber"] for b in page["items"]] == [1, 2]


def test_the_worked_example_in_the_docs_is_the_vector():
    text = (REPO / "docs" / "key-exchange.md").read_text(encoding="utf-8")
    example = text.split("### 6.6", 1)[1].split("### 6.7", 1)[0]
    for key in ("z_a", "z_b", "key", "confirmationB", "confirmationA", "pageKey", "nonce", "sessionId"):
        assert PAGE[key] in example, key
    assert PAGE["aad"].replace("\n", "⏎") in example
    assert PAGE["ciphertext"][:24] in example and PAGE["ciphertext"][-24:] in example
