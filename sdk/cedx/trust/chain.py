"""Hash chain of acquisition batches.

Each batch (the payload of a signed envelope) carries its ``sequenceNumber`` and the
``previousBatchDigest``: hex SM3 of the canonical bytes of the previous batch's payload, or 64
zeros for the first batch of a chain. Because the payload is signed, an altered, removed or
reordered batch breaks either a signature or the chain, and ``verify_chain`` says where.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .canonical import InstantNode, canonicalize, child_node, default_instants
from .errors import ChainError
from .sm3 import sm3

GENESIS_DIGEST = "0" * 64
SEQUENCE_FIELD = "sequenceNumber"
PREVIOUS_FIELD = "previousBatchDigest"


def batch_digest(payload: Any, *, instants: InstantNode = None) -> str:
    """Hex SM3 of the canonical bytes of a batch payload (instants as under ``payload`` of
    the signed documents; ``instants`` is the envelope-level tree, default cedx's spec)."""
    tree = child_node(default_instants() if instants is None else instants, "payload")
    return sm3(canonicalize(payload, instants=tree if isinstance(tree, dict) else {})).hex()


def link(payload: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """Return ``payload`` with sequence number and previous digest set after ``previous``."""
    out = dict(payload)
    if previous is None:
        out[SEQUENCE_FIELD] = 1
        out[PREVIOUS_FIELD] = GENESIS_DIGEST
    else:
        out[SEQUENCE_FIELD] = int(previous[SEQUENCE_FIELD]) + 1
        out[PREVIOUS_FIELD] = batch_digest(previous)
    return out


def verify_chain(
    batches: Sequence[dict[str, Any]], *, anchor: dict[str, Any] | None = None
) -> str:
    """Check that ``batches`` form an unbroken chain; return the digest of the last one.

    ``anchor`` is the batch known to precede the first one (when verifying a later part of a
    chain); without it the first batch must be a genesis batch or is accepted as the start.
    Raises ChainError with the position (index into ``batches``) of the first problem.
    """
    previous = anchor
    last = GENESIS_DIGEST
    # each batch is canonicalized and digested once: its digest is both the link the next
    # batch must carry and, for the last one, the result
    previous_digest: str | None = None
    for i, batch in enumerate(batches):
        try:
            seq = int(batch[SEQUENCE_FIELD])
            prev_digest = str(batch[PREVIOUS_FIELD])
        except (KeyError, TypeError, ValueError) as exc:
            raise ChainError(f"batch {i} lacks {SEQUENCE_FIELD}/{PREVIOUS_FIELD}", i) from exc
        if previous is not None:
            expected_seq = int(previous[SEQUENCE_FIELD]) + 1
            if seq != expected_seq:
                raise ChainError(
                    f"gap before batch {i}: sequence {seq} follows {expected_seq - 1}", i
                )
            if previous_digest is None:  # the anchor
                previous_digest = batch_digest(previous)
            if prev_digest != previous_digest:
                raise ChainError(
                    f"batch {i} (sequence {seq}) does not link to its predecessor: "
                    f"the predecessor was altered or replaced",
                    i,
                )
        elif seq == 1 and prev_digest != GENESIS_DIGEST:
            raise ChainError("first batch of the chain must link to the genesis digest", i)
        previous = batch
        last = previous_digest = batch_digest(batch)
    return last
