"""cedx reproduces the confidentiality mode's published vector (tests/trust/vectors/confidential_page.json,
docs/key-exchange.md §6.7): both sides of the handshake, the page key, and the client's open_page
decrypting the page — so the reference and the documented example cannot drift apart."""

import base64
import json
from pathlib import Path

import pytest

from cedx.acquisition.confidential import (
    LABEL_PAGES,
    ClientSession,
    ConfidentialityError,
    derive_key,
    page_aad,
)
from cedx.trust import key_exchange as kx
from cedx.trust import sm4

V = json.loads((Path(__file__).resolve().parents[1] / "trust" / "vectors" / "confidential_page.json").read_text("utf-8"))


def test_cedx_reproduces_the_published_page():
    d_a, r_a, d_b, r_b = (int(V[k], 16) for k in ("d_a", "r_a", "d_b", "r_b"))
    id_a, id_b = V["initiator_id"].encode(), V["responder_id"].encode()
    big_a, big_b = base64.b64decode(V["ephemeralKeyA"]), base64.b64decode(V["ephemeralKeyB"])
    a = kx.agree("initiator", id_a, d_a, r_a, id_b, kx.public_key_of(d_b), big_b, V["key_length"])
    b = kx.agree("responder", id_b, d_b, r_b, id_a, kx.public_key_of(d_a), big_a, V["key_length"])
    assert a.key.hex().upper() == b.key.hex().upper() == V["key"]
    assert base64.b64encode(b.confirmation).decode() == V["confirmationB"]
    assert base64.b64encode(a.confirmation).decode() == V["confirmationA"]
    key = derive_key(a.key, LABEL_PAGES, V["sessionId"])
    assert key.hex() == V["pageKey"] and LABEL_PAGES.decode() == V["label"]
    q = V["request"]
    aad = page_aad(V["sessionId"], q["pointId"], q["granularity"], q["from"], q["to"], q["cursor"] or None,
                   int(q["limit"]) if q["limit"] else None)
    assert aad.decode() == V["aad"]
    nonce = base64.b64decode(V["nonce"])
    assert base64.b64encode(sm4.gcm_encrypt(key, nonce, V["plaintext"].encode(), aad)).decode() == V["ciphertext"]
    session = ClientSession(V["sessionId"], key, "2026-10-31T16:14:05Z")
    wire = {"specVersion": "1.0", "sessionId": V["sessionId"], "encryption": "SM4-GCM", "contentType": "application/json",
            "nonce": V["nonce"], "ciphertext": V["ciphertext"]}
    request = dict(point_id=q["pointId"], granularity=q["granularity"], from_=q["from"], to=q["to"], cursor=None, limit=7)
    assert session.open_page(wire, **request) == json.loads(V["plaintext"])
    with pytest.raises(ConfidentialityError, match="replay"):
        session.open_page(wire, **request)
