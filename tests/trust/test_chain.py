import pytest

from cedx import trust
from cedx.trust.chain import GENESIS_DIGEST, link, verify_chain
from cedx.trust.errors import ChainError


def _chain(n):
    batches, prev = [], None
    for i in range(n):
        b = link({"pointId": "P1", "values": [{"t": f"2026-10-01T00:{i:02d}:00Z", "v": str(i)}]}, prev)
        batches.append(b)
        prev = b
    return batches


def test_valid_chain():
    batches = _chain(5)
    assert batches[0]["previousBatchDigest"] == GENESIS_DIGEST
    assert verify_chain(batches) == trust.batch_digest(batches[-1])
    verify_chain(batches[2:], anchor=batches[1])


def test_gap_reported_with_position():
    batches = _chain(5)
    with pytest.raises(ChainError, match="gap") as exc:
        verify_chain(batches[:2] + batches[3:])
    assert exc.value.position == 2


def test_altered_batch_reported_with_position():
    batches = _chain(5)
    batches[1]["values"][0]["v"] = "999"
    with pytest.raises(ChainError, match="does not link") as exc:
        verify_chain(batches)
    assert exc.value.position == 2  # the successor no longer links to the altered batch


def test_reordered_and_wrong_anchor():
    batches = _chain(4)
    with pytest.raises(ChainError):
        verify_chain([batches[0], batches[2], batches[1], batches[3]])
    with pytest.raises(ChainError) as exc:
        verify_chain(batches[2:], anchor=batches[0])
    assert exc.value.position == 0
    forged = dict(batches[0], previousBatchDigest="1" * 64)
    with pytest.raises(ChainError, match="genesis"):
        verify_chain([forged])
