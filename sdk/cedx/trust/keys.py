"""SM2 keys: generation, signing, verification, encryption and their standard encodings.

Private keys: PKCS#8 PEM/DER ("PRIVATE KEY"), optionally password-protected (PBES2 with
PBKDF2-HMAC-SHA256 and AES-256-CBC, the OpenSSL default), and SEC1 ("EC PRIVATE KEY") on input.
Public keys: SubjectPublicKeyInfo PEM/DER ("PUBLIC KEY") and raw 04||X||Y.
The algorithm identifier is id-ecPublicKey with the named curve sm2, as OpenSSL writes it.
"""

from __future__ import annotations

import hmac
import os
import secrets
from typing import Any, Protocol, cast

from asn1crypto import core, pem
from asn1crypto import keys as asn1keys
from asn1crypto.algos import Pbkdf2Salt
from asn1crypto.keys import ECDomainParameters, EncryptedPrivateKeyInfo, PrivateKeyInfo
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.padding import PKCS7

from . import der
from .backends import Backend, get_backend
from .curve import (
    DEFAULT_ID,
    GX,
    GY,
    OID_SM2,
    N,
    Point,
    decode_point,
    encode_point,
    validate_private_scalar,
    validate_public_point,
    z_value,
)
from .errors import DecryptionError, InvalidKey, InvalidSignature
from .sm3 import kdf, sm3

_PBKDF2_ITERATIONS = 100_000

# asn1crypto needs the key length of a named curve to encode an ECPrivateKey.
if OID_SM2 not in asn1keys.NamedCurve._map:
    asn1keys.NamedCurve.register("sm2", OID_SM2, 32)


def _sm2_algorithm() -> dict[str, Any]:
    return {
        "algorithm": "ec",
        "parameters": ECDomainParameters(name="named", value=OID_SM2),
    }


class SM2PublicKey:
    """An SM2 public key. Verifies signatures and encrypts."""

    __slots__ = ("point", "_backend", "_handle", "_z_cache", "_fingerprint")

    def __init__(self, point: Point, backend: Backend | None = None):
        self.point = validate_public_point(point)
        self._backend = backend or get_backend()
        self._handle = None
        self._z_cache: dict[bytes, bytes] = {}
        self._fingerprint: str | None = None

    def digest(self, message: bytes, uid: bytes = DEFAULT_ID) -> bytes:
        """e = SM3(Z_A || M), with Z_A cached per user ID (it depends only on key and ID)."""
        z = self._z_cache.get(uid)
        if z is None:
            z = self._z_cache.setdefault(uid, z_value(self.point, uid))
        h = hashes.Hash(hashes.SM3())  # Z then M fed apart: no copy of a large message
        h.update(z)
        h.update(message)
        return h.finalize()

    # --- construction -------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes, backend: Backend | None = None) -> SM2PublicKey:
        """Load from PEM, SubjectPublicKeyInfo DER, or raw 04||X||Y."""
        if data.lstrip().startswith(b"-----"):
            try:
                kind, _, data = pem.unarmor(data.strip())
            except ValueError as exc:
                raise InvalidKey(f"malformed PEM: {exc}") from exc
            if kind != "PUBLIC KEY":
                raise InvalidKey(f"expected a PUBLIC KEY PEM block, found {kind!r}")
        if data[:1] != b"\x30":  # not a DER SEQUENCE: a raw point, 04||X||Y
            return cls(decode_point(data), backend)
        try:
            info = asn1keys.PublicKeyInfo.load(data, strict=True)
            algo = info["algorithm"]
            if algo["algorithm"].dotted != "1.2.840.10045.2.1":
                raise InvalidKey("public key algorithm is not id-ecPublicKey")
            params = algo["parameters"]
            if params.name != "named" or params.chosen.dotted != OID_SM2:
                raise InvalidKey("public key curve is not sm2 (1.2.156.10197.1.301)")
            raw = bytes(info["public_key"])
        except InvalidKey:
            raise
        except (ValueError, TypeError, KeyError) as exc:
            raise InvalidKey(f"not a SubjectPublicKeyInfo: {exc}") from exc
        return cls(decode_point(raw), backend)

    # --- encodings ----------------------------------------------------------------------
    def raw(self) -> bytes:
        return encode_point(self.point)

    def public_key_info(self) -> asn1keys.PublicKeyInfo:
        return asn1keys.PublicKeyInfo(
            {"algorithm": _sm2_algorithm(), "public_key": self.raw()}
        )

    def to_der(self) -> bytes:
        return cast(bytes, self.public_key_info().dump())

    def to_pem(self) -> bytes:
        return cast(bytes, pem.armor("PUBLIC KEY", self.to_der()))

    def fingerprint(self) -> str:
        """Hex SM3 of the raw point: the key ID used in signature blocks (computed once: every
        receipt and token the platform signs names its key)."""
        if self._fingerprint is None:
            self._fingerprint = sm3(self.raw()).hex()
        return self._fingerprint

    # --- operations ---------------------------------------------------------------------
    def _get_handle(self) -> Any:
        if self._handle is None:
            self._handle = self._backend.public_handle(self.point)
        return self._handle

    def verify_digest(self, signature: bytes, e: bytes) -> None:
        r, s = der.decode_signature(signature)
        if not self._backend.verify_digest(self._get_handle(), e, signature, r, s):
            raise InvalidSignature("SM2 signature does not verify")

    def verify(self, signature: bytes, message: bytes, uid: bytes = DEFAULT_ID) -> None:
        """Verify an SM2-with-SM3 DER signature; raise InvalidSignature with the reason."""
        self.verify_digest(signature, self.digest(message, uid))

    def is_valid(self, signature: bytes, message: bytes, uid: bytes = DEFAULT_ID) -> bool:
        try:
            self.verify(signature, message, uid)
        except InvalidSignature:
            return False
        return True

    def why_not(self, signature: bytes, message: bytes, uid: bytes = DEFAULT_ID,
                other_message: tuple[str, bytes] | None = None) -> str:
        """After a failed verification: a hint when the signature holds under a usual mistake —
        an empty SM2 user ID (OpenSSL 3 signs with one unless given `-sigopt distid:`) or, for
        ``other_message`` = (name, M), the message of the other algorithm. Empty when neither."""
        if other_message is not None and self.is_valid(signature, other_message[1], uid):
            return f" (it verifies as {other_message[0]}: name the algorithm that was used)"
        if uid and self.is_valid(signature, message, b""):
            return (f" (it verifies with an empty SM2 user ID: sign with the user ID {uid.decode(errors='replace')}; "
                    f"OpenSSL 3: -sigopt distid:{uid.decode(errors='replace')})")
        return ""

    def encrypt(self, plaintext: bytes, *, k: int | None = None) -> bytes:
        """SM2 public-key encryption (GB/T 32918.4), output DER C1C3C2 (GB/T 35276)."""
        while True:
            nonce = k if k is not None else secrets.randbelow(N - 1) + 1
            x1, y1 = self._backend.multiply(nonce, (GX, GY))
            x2, y2 = self._backend.multiply(nonce, self.point)
            xb, yb = x2.to_bytes(32, "big"), y2.to_bytes(32, "big")
            t = kdf(xb + yb, len(plaintext))
            if plaintext and not any(t):
                if k is not None:
                    raise ValueError("the given k yields an all-zero key stream")
                continue
            c2 = bytes(a ^ b for a, b in zip(plaintext, t))
            c3 = sm3(xb + plaintext + yb)
            return der.encode_ciphertext(x1, y1, c3, c2)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SM2PublicKey) and other.point == self.point

    def __hash__(self) -> int:
        return hash(self.point)

    def __repr__(self) -> str:
        return f"<SM2PublicKey {self.fingerprint()[:16]}… backend={self._backend.name}>"


class Signer(Protocol):
    """What signing a document or a time-stamp needs of a key: an SM2PrivateKey, or a wrapper
    (the generator's deterministic example signer)."""

    def public_key(self) -> SM2PublicKey: ...

    def sign(self, message: bytes, uid: bytes = DEFAULT_ID) -> bytes: ...


class SM2PrivateKey:
    """An SM2 private key. Signs and decrypts; never printed."""

    __slots__ = ("_d", "_public", "_backend", "_handle")

    def __init__(self, d: int, backend: Backend | None = None):
        self._d = validate_private_scalar(d)
        self._backend = backend or get_backend()
        self._public = SM2PublicKey(self._backend.public_point(d), self._backend)
        self._handle = None

    @classmethod
    def generate(cls, backend: Backend | None = None) -> SM2PrivateKey:
        return cls(secrets.randbelow(N - 2) + 1, backend)

    def public_key(self) -> SM2PublicKey:
        return self._public

    @property
    def private_value(self) -> int:
        return self._d

    def _get_handle(self) -> Any:
        if self._handle is None:
            self._handle = self._backend.private_handle(self._d, self._public.point)
        return self._handle

    # --- operations ---------------------------------------------------------------------
    def sign_digest(self, e: bytes, *, k: int | None = None) -> bytes:
        return self._backend.sign_digest(self._get_handle(), e, k)

    def sign(self, message: bytes, uid: bytes = DEFAULT_ID, *, k: int | None = None) -> bytes:
        """SM2-with-SM3 signature over ``message`` with user ID ``uid``, DER-encoded.

        ``k`` fixes the nonce and exists only to reproduce published test vectors.
        """
        return self.sign_digest(self._public.digest(message, uid), k=k)

    def decrypt(self, ciphertext: bytes) -> bytes:
        """Decrypt DER C1C3C2; the C1 point and the C3 hash are both checked."""
        x1, y1, c3, c2 = der.decode_ciphertext(ciphertext)
        try:
            validate_public_point((x1, y1))
            x2, y2 = self._backend.multiply(self._d, (x1, y1))
        except (InvalidKey, ArithmeticError) as exc:
            raise DecryptionError("ciphertext C1 is not a valid point on the SM2 curve") from exc
        xb, yb = x2.to_bytes(32, "big"), y2.to_bytes(32, "big")
        t = kdf(xb + yb, len(c2))
        if c2 and not any(t):
            raise DecryptionError("derived key stream is all zero")
        plaintext = bytes(a ^ b for a, b in zip(c2, t))
        if not hmac.compare_digest(sm3(xb + plaintext + yb), c3):
            raise DecryptionError("ciphertext hash C3 does not match (tampered or wrong key)")
        return plaintext

    # --- encodings ----------------------------------------------------------------------
    def _ec_private_key(self) -> asn1keys.ECPrivateKey:
        return asn1keys.ECPrivateKey(
            {
                "version": "ecPrivkeyVer1",
                "private_key": self._d,
                "public_key": self._public.raw(),
            }
        )

    def to_der(self, password: bytes | None = None) -> bytes:
        info = PrivateKeyInfo(
            {
                "version": 0,
                "private_key_algorithm": _sm2_algorithm(),
                "private_key": self._ec_private_key(),
            }
        ).dump()
        return _encrypt_pkcs8(info, password) if password else info

    def to_pem(self, password: bytes | None = None) -> bytes:
        label = "ENCRYPTED PRIVATE KEY" if password else "PRIVATE KEY"
        return cast(bytes, pem.armor(label, self.to_der(password)))

    @classmethod
    def from_bytes(
        cls, data: bytes, password: bytes | None = None, backend: Backend | None = None
    ) -> SM2PrivateKey:
        """Load PKCS#8 (plain or encrypted) or SEC1, PEM or DER."""
        kind = None
        if data.lstrip().startswith(b"-----"):
            try:
                kind, _, data = pem.unarmor(data.strip())
            except ValueError as exc:
                raise InvalidKey(f"malformed PEM: {exc}") from exc
            if kind not in ("PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "EC PRIVATE KEY"):
                raise InvalidKey(f"expected a PRIVATE KEY PEM block, found {kind!r}")
        try:
            if kind == "ENCRYPTED PRIVATE KEY" or (kind is None and _looks_encrypted(data)):
                if not password:
                    raise InvalidKey("the private key is encrypted: a password is required")
                data = _decrypt_pkcs8(data, password)
                kind = "PRIVATE KEY"
                # A wrong password yields random plaintext whose padding is valid about once in
                # 256 tries; what follows must then say "wrong password", not a DER parse error.
                if not _is_private_key_info(data):
                    raise InvalidKey("wrong password for the encrypted private key")
            if kind == "EC PRIVATE KEY":
                ec = asn1keys.ECPrivateKey.load(data, strict=True)
            else:
                info = PrivateKeyInfo.load(data, strict=True)
                algo = info["private_key_algorithm"]
                if algo["algorithm"].dotted != "1.2.840.10045.2.1":
                    raise InvalidKey("private key algorithm is not id-ecPublicKey")
                params = algo["parameters"]
                if params.name != "named" or params.chosen.dotted != OID_SM2:
                    raise InvalidKey("private key curve is not sm2 (1.2.156.10197.1.301)")
                ec = info["private_key"].parsed
            d = int(ec["private_key"].native)
        except InvalidKey:
            raise
        except (ValueError, TypeError, KeyError) as exc:
            raise InvalidKey(f"not an SM2 private key: {exc}") from exc
        key = cls(d, backend)
        embedded = ec["public_key"]
        if embedded.native is not None and bytes(embedded) != key.public_key().raw():
            raise InvalidKey("embedded public key does not match the private key")
        return key

    def __repr__(self) -> str:
        return f"<SM2PrivateKey public={self._public.fingerprint()[:16]}…>"


def _is_private_key_info(data: bytes) -> bool:
    try:
        _ = PrivateKeyInfo.load(data, strict=True)["private_key"].parsed.native
        return True
    except (ValueError, TypeError, KeyError):
        return False


def _looks_encrypted(data: bytes) -> bool:
    try:
        _ = EncryptedPrivateKeyInfo.load(data, strict=True).native  # full parse or ValueError
        return True
    except (ValueError, TypeError, KeyError):
        return False


_CIPHERS = {"aes128_cbc": 16, "aes192_cbc": 24, "aes256_cbc": 32}


def _pbkdf2(password: bytes, salt: bytes, iterations: int, length: int, prf: str) -> bytes:
    algo = {"sha1": hashes.SHA1(), "sha256": hashes.SHA256(), "sha512": hashes.SHA512()}.get(prf)
    if algo is None:
        raise InvalidKey(f"unsupported PBKDF2 PRF {prf}")
    return PBKDF2HMAC(algorithm=algo, length=length, salt=salt, iterations=iterations).derive(
        password
    )


def _encrypt_pkcs8(info: bytes, password: bytes) -> bytes:
    salt, iv = os.urandom(16), os.urandom(16)
    key = _pbkdf2(password, salt, _PBKDF2_ITERATIONS, 32, "sha256")
    padder = PKCS7(128).padder()
    padded = padder.update(info) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    body = enc.update(padded) + enc.finalize()
    return cast(bytes, EncryptedPrivateKeyInfo(
        {
            "encryption_algorithm": {
                "algorithm": "pbes2",
                "parameters": {
                    "key_derivation_func": {
                        "algorithm": "pbkdf2",
                        "parameters": {
                            "salt": Pbkdf2Salt(name="specified", value=salt),
                            "iteration_count": _PBKDF2_ITERATIONS,
                            "prf": {"algorithm": "sha256"},
                        },
                    },
                    "encryption_scheme": {"algorithm": "aes256_cbc", "parameters": core.OctetString(iv)},
                },
            },
            "encrypted_data": body,
        }
    ).dump())


def _decrypt_pkcs8(data: bytes, password: bytes) -> bytes:
    epki = EncryptedPrivateKeyInfo.load(data, strict=True)
    algo = epki["encryption_algorithm"]
    if algo["algorithm"].native != "pbes2":
        raise InvalidKey(f"unsupported key encryption {algo['algorithm'].native}")
    params = algo["parameters"]
    kdf_params = params["key_derivation_func"]["parameters"]
    scheme = params["encryption_scheme"]
    name = scheme["algorithm"].native
    if name not in _CIPHERS:
        raise InvalidKey(f"unsupported key cipher {name}")
    key = _pbkdf2(
        password,
        bytes(kdf_params["salt"].native),
        int(kdf_params["iteration_count"].native),
        _CIPHERS[name],
        kdf_params["prf"]["algorithm"].native,
    )
    dec = Cipher(algorithms.AES(key), modes.CBC(bytes(scheme["parameters"].native))).decryptor()
    padded = dec.update(bytes(epki["encrypted_data"].native)) + dec.finalize()
    try:
        unpadder = PKCS7(128).unpadder()
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError as exc:
        raise InvalidKey("wrong password for the encrypted private key") from exc


def _key_bytes(data: Any, what: str) -> bytes:
    """The key as given, PEM or DER bytes; a file name or PEM text is named as the mistake
    (instead of a TypeError from the parser)."""
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    raise InvalidKey(f"{what} takes the key as PEM or DER bytes, not {type(data).__name__}; "
                     "read the file first: Path(...).read_bytes()")


def load_private_key(data: bytes, password: bytes | None = None) -> SM2PrivateKey:
    """An SM2 private key from PEM or DER (PKCS#8, encrypted with ``password``, or SEC 1)."""
    return SM2PrivateKey.from_bytes(_key_bytes(data, "load_private_key"), password)


def load_public_key(data: bytes) -> SM2PublicKey:
    """An SM2 public key from PEM or DER (SubjectPublicKeyInfo)."""
    return SM2PublicKey.from_bytes(_key_bytes(data, "load_public_key"))


def write_private_file(path: str | os.PathLike[str], data: bytes, *, overwrite: bool = False) -> None:
    """Write key material readable by the owner only: created with O_EXCL at mode 0600 before a
    byte is written (never world-readable for an instant, never through a planted symlink).
    An existing file raises FileExistsError unless ``overwrite``; then a fresh 0600 file replaces it."""
    target = os.fspath(path)
    if os.path.lexists(target) and not overwrite:
        raise FileExistsError(f"{target} exists; refusing to overwrite a key")
    tmp = target if not os.path.lexists(target) else f"{target}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask cannot widen it, but a restrictive one could narrow it
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    if tmp != target:
        os.replace(tmp, target)
