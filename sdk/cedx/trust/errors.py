"""Exceptions of the trust layer. Every one carries a human-readable reason.

``TrustError`` (their base) is a ``cedx.CedxError``; see ``cedx.errors`` for the whole tree.
"""

from .._exceptions import TrustError as TrustError  # re-exported: the base of this module's errors


class InvalidKey(TrustError):
    """A key could not be decoded or is not a valid SM2 key (wrong length, off the curve...)."""


class InvalidSignature(TrustError):
    """A signature does not verify, or is not a well-formed GB/T 35276 signature."""


class DecryptionError(TrustError):
    """An SM2 or SM4 ciphertext is malformed or fails its integrity check (C3 / GCM tag)."""


class CertificateError(TrustError):
    """A certificate, CSR, chain or CRL is invalid for the requested use."""


class TimestampError(TrustError):
    """A time-stamp request, response or token is invalid."""


class ReplayError(TrustError):
    """A signed request is outside the replay window or reuses a nonce."""


class ChainError(TrustError):
    """An acquisition batch chain has a gap or an altered batch.

    ``position`` is the index of the first offending batch in the sequence given.
    """

    def __init__(self, message: str, position: int):
        super().__init__(message)
        self.position = position


class BackendUnavailable(TrustError):
    """The requested cryptographic backend is not installed on this machine."""
