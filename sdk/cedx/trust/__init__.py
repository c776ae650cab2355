"""cedx.trust — the data-trust layer: SM3, SM2, SM4, certificates, time-stamps.

One small API over interchangeable SM2 backends (native tongsuopy, portable pure Python); see
``cedx.trust.backends``. Typical use::

    from cedx import trust
    key = trust.generate_private_key()
    doc = trust.sign_document({"entity": "91350100M000100Y43"}, key)
    trust.verify_document(doc, key.public_key())
"""

from .backends import available_backends, get_backend
from .canonical import CanonicalizationError, canonicalize, to_logical
from .chain import GENESIS_DIGEST, batch_digest, link, verify_chain
from .curve import DEFAULT_ID
from .envelope import (
    ALGORITHM,
    ALGORITHMS,
    PREHASH_ALGORITHM,
    VerifiedDocument,
    binds_document,
    document_digest,
    sign_document,
    verify_document,
)
from .errors import (
    BackendUnavailable,
    CertificateError,
    ChainError,
    DecryptionError,
    InvalidKey,
    InvalidSignature,
    ReplayError,
    TimestampError,
    TrustError,
)
from .keys import SM2PrivateKey, SM2PublicKey, load_private_key, load_public_key
from .reqsign import MemoryNonceStore, RequestVerifier, sign_request
from .sm3 import PrefixDigests, sm3


def generate_private_key() -> SM2PrivateKey:
    return SM2PrivateKey.generate()


__all__ = [
    "ALGORITHM",
    "ALGORITHMS",
    "DEFAULT_ID",
    "PREHASH_ALGORITHM",
    "GENESIS_DIGEST",
    "BackendUnavailable",
    "CanonicalizationError",
    "CertificateError",
    "ChainError",
    "DecryptionError",
    "InvalidKey",
    "InvalidSignature",
    "MemoryNonceStore",
    "PrefixDigests",
    "ReplayError",
    "RequestVerifier",
    "SM2PrivateKey",
    "SM2PublicKey",
    "TimestampError",
    "TrustError",
    "VerifiedDocument",
    "available_backends",
    "batch_digest",
    "binds_document",
    "canonicalize",
    "document_digest",
    "generate_private_key",
    "get_backend",
    "link",
    "load_private_key",
    "load_public_key",
    "sign_document",
    "sign_request",
    "sm3",
    "to_logical",
    "verify_chain",
    "verify_document",
]
