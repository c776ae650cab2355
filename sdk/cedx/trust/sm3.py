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


class PrefixDigests:
    """SM3 of ``data`` that also keeps the hash state after every ``step`` bytes, so that the
    SM3 of other bytes sharing a long prefix with ``data`` costs only what follows the shared
    whole steps. A platform hashes a request body for its signature, then the document's
    signing input (SM2-with-SM3-prehash) and canonical form (the receipt's documentDigest): when
    a client sends the members in canonical order, they agree with the body up to the first
    instant the canonical form rewrites (issue 14)."""

    STEP = 8 * 1024  # a resume hashes at most this much again; a state copy per step is cheaper (issue 14)

    def __init__(self, data: bytes, step: int = STEP):
        self.data, self.step = data, step
        self._states: list[hashes.Hash] = []  # the state after data[:(i + 1) * step]
        h = hashes.Hash(hashes.SM3())
        view = memoryview(data)
        for end in range(step, len(data) + 1, step):
            h.update(view[end - step:end])
            self._states.append(h.copy())
        h.update(view[len(self._states) * step:])
        self.digest = h.finalize()

    def sm3_of(self, other: bytes) -> bytes:
        """SM3 of ``other``: resumed from the state after the longest run of whole steps that
        ``other`` shares with ``data`` (compared byte for byte), else computed from the start."""
        view, step, shared = memoryview(self.data), self.step, 0
        for i in range(len(self._states)):
            if not other.startswith(view[i * step:(i + 1) * step], i * step):
                break
            shared = i + 1
        if not shared:
            return sm3(other)
        h = self._states[shared - 1].copy()
        h.update(memoryview(other)[shared * step:])
        return h.finalize()


def kdf(z: bytes, klen: int) -> bytes:
    """Key-derivation function of GB/T 32918.4 §5.4.3: SM3(Z || ct) for ct = 1, 2, ..."""
    out = bytearray()
    counter = 1
    while len(out) < klen:
        out += sm3(z + counter.to_bytes(4, "big"))
        counter += 1
    return bytes(out[:klen])
