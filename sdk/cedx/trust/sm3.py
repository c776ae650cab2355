"""SM3 (GB/T 32905) and the SM2 key-derivation function built on it.

SM3 comes from `cryptography` (OpenSSL underneath), which every backend shares: it is fast and
already cross-checked against the published vectors by the test suite.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes

DIGEST_SIZE = 32


def sm3(data: bytes) -> bytes:
    """SM3 digest of ``data`` (32 bytes)."""
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


class SM3Hasher:
    """Incremental SM3, for data that arrives in pieces (files, streams)."""

    def __init__(self) -> None:
        self._h = hashes.Hash(hashes.SM3())

    def update(self, data: bytes) -> SM3Hasher:
        self._h.update(data)
        return self

    def digest(self) -> bytes:
        return self._h.finalize()


def kdf(z: bytes, klen: int) -> bytes:
    """Key-derivation function of GB/T 32918.4 §5.4.3: SM3(Z || ct) for ct = 1, 2, ..."""
    out = bytearray()
    counter = 1
    while len(out) < klen:
        out += sm3(z + counter.to_bytes(4, "big"))
        counter += 1
    return bytes(out[:klen])
