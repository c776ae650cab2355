"""SM4 (GB/T 32907) in CBC and GCM, and the encrypted-field envelope built on SM2 + SM4-GCM."""

from __future__ import annotations

import base64
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.padding import PKCS7

from .errors import DecryptionError
from .keys import SM2PrivateKey, SM2PublicKey

KEY_SIZE = 16
GCM_NONCE_SIZE = 12
GCM_TAG_SIZE = 16
FIELD_ALGORITHM = "SM2-SM4-GCM"


def _check_key(key: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise ValueError(f"SM4 key must be {KEY_SIZE} bytes, got {len(key)}")


def encrypt_block(key: bytes, block: bytes) -> bytes:
    """One raw SM4 block (ECB of 16 bytes): for test vectors only."""
    _check_key(key)
    enc = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def cbc_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """SM4-CBC with PKCS#7 padding."""
    _check_key(key)
    padder = PKCS7(128).padder()
    data = padder.update(plaintext) + padder.finalize()
    enc = Cipher(algorithms.SM4(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    _check_key(key)
    if len(ciphertext) % 16:
        raise DecryptionError("SM4-CBC ciphertext length is not a multiple of 16")
    dec = Cipher(algorithms.SM4(key), modes.CBC(iv)).decryptor()
    data = dec.update(ciphertext) + dec.finalize()
    try:
        unpadder = PKCS7(128).unpadder()
        return unpadder.update(data) + unpadder.finalize()
    except ValueError as exc:
        raise DecryptionError("SM4-CBC padding is invalid (wrong key or tampered)") from exc


def gcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """SM4-GCM; returns ciphertext || 16-byte tag."""
    _check_key(key)
    enc = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    if aad:
        enc.authenticate_additional_data(aad)
    body = enc.update(plaintext) + enc.finalize()
    return body + enc.tag


def gcm_decrypt(key: bytes, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes:
    _check_key(key)
    if len(data) < GCM_TAG_SIZE:
        raise DecryptionError("SM4-GCM ciphertext is shorter than its tag")
    body, tag = data[:-GCM_TAG_SIZE], data[-GCM_TAG_SIZE:]
    dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
    if aad:
        dec.authenticate_additional_data(aad)
    try:
        return dec.update(body) + dec.finalize()
    except InvalidTag as exc:
        raise DecryptionError("SM4-GCM tag does not match (tampered or wrong key)") from exc


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def seal_field(plaintext: bytes, recipient: SM2PublicKey, aad: bytes = b"") -> dict[str, Any]:
    """Encrypt one field for a recipient: a fresh SM4 key, wrapped with SM2 (C1C3C2 DER).

    The result is the spec's EncryptedField object; ``aad`` binds it to its context (for
    example the JSON path of the field) so it cannot be moved to another field.
    """
    cek = os.urandom(KEY_SIZE)
    nonce = os.urandom(GCM_NONCE_SIZE)
    return {
        "algorithm": FIELD_ALGORITHM,
        "recipientKeyId": recipient.fingerprint(),
        "encryptedKey": _b64(recipient.encrypt(cek)),
        "nonce": _b64(nonce),
        "ciphertext": _b64(gcm_encrypt(cek, nonce, plaintext, aad)),
    }


def open_field(envelope: dict[str, Any], key: SM2PrivateKey, aad: bytes = b"") -> bytes:
    if envelope.get("algorithm") != FIELD_ALGORITHM:
        raise DecryptionError(f"unsupported field encryption {envelope.get('algorithm')!r}")
    if envelope.get("recipientKeyId") != key.public_key().fingerprint():
        raise DecryptionError("the field is encrypted for another recipient key")
    try:
        wrapped = base64.b64decode(envelope["encryptedKey"], validate=True)
        nonce = base64.b64decode(envelope["nonce"], validate=True)
        body = base64.b64decode(envelope["ciphertext"], validate=True)
    except (KeyError, ValueError) as exc:
        raise DecryptionError(f"malformed encrypted field: {exc}") from exc
    cek = key.decrypt(wrapped)
    if len(cek) != KEY_SIZE:
        raise DecryptionError("wrapped content key has the wrong length")
    return gcm_decrypt(cek, nonce, body, aad)
