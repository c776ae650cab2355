"""Sealed columnar measurement batches: canonical bytes, sealing, verification.

A batch payload (spec schema ``MeasurementBatch``) holds only ASCII keys, integers and strings
that are already in canonical lexical form (``UtcInstant``, decimal strings, a flag string), so
its RFC 8785 form is exactly ``json.dumps(payload, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)``: one pass of the C encoder. The signed envelope is the usual cedx one
(``{"specVersion", "payload", "signature"}``, see cedx.trust.envelope); its signing input is
spliced from the payload bytes, which are therefore encoded once for both the signature and the
chain digest. docs/trust-batches.md states the rules normatively.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from .. import trust
from ..generated.constants import (
    FLAGS_CARRYING_VALUE,
    FLAGS_COUNTING_AS_VALID,
    FLAGS_WITHOUT_VALUE,
    QUALITY_FLAGS,
    SPEC_VERSION,
)
from ..trust.curve import DEFAULT_ID
from ..trust.envelope import message_for
from ..trust.sm3 import sm3

UTC = dt.timezone.utc
GENESIS = "0" * 64
STEP_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
STEP_CODES = {"minute": "PT1M", "hour": "PT1H", "day": "P1D"}
MAX_VALUES = 1440
FIELDS = frozenset({"sourceId", "pointId", "granularity", "unit", "start", "step", "count", "values", "flags",
                    "sequenceNumber", "previousBatchDigest", "sealedAt"})
# Flag facts come from the spec's QualityFlag table (x-cedx-flag-rules): carrying a value is not
# being valid — C, S and T carry a number (R-ACQ-001) that enters no mean, total or coverage.
FLAGS = frozenset(QUALITY_FLAGS)
CARRIES_VALUE = FLAGS_CARRYING_VALUE        # N S C T: the instant must carry a number
WITHOUT_VALUE = FLAGS_WITHOUT_VALUE         # B: the instant must carry no number (R-ACQ-005)
COUNTS_AS_VALID = FLAGS_COUNTING_AS_VALID   # N only: the values derived statistics are made of

_DEC = r"(?:-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,12})?)?"
VALUES_RE = re.compile(_DEC + r"(?:\x00" + _DEC + r")*")  # all values of a batch in one match
_FLAGS = re.compile(f"[{QUALITY_FLAGS}]{{1,{MAX_VALUES}}}")
_UTC = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z")
_HEX = re.compile(r"[0-9a-f]{64}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# the canonical UTC form of a signing time (cedx.trust.canonical.format_instant): Z, no trailing zeros
_SIGNING_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T([0-9]{2}:){2}[0-9]{2}(\.[0-9]{0,5}[1-9])?Z")
_BLOCK_KEYS = frozenset({"algorithm", "canonicalization", "keyId", "userId", "signingTime", "value",
                         "certificateChain", "timestampToken"})
_UNPROTECTED = ("value", "certificateChain", "timestampToken")


class BatchError(trust.TrustError):
    """A batch is malformed, does not verify, or breaks its chain; ``position`` is its index in
    the stream being verified (0-based) when known."""

    def __init__(self, message: str, position: int | None = None):
        super().__init__(message)
        self.position = position


def utc_text(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: str) -> int:
    return int(dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())


def canonical_payload(payload: dict[str, Any]) -> bytes:
    """RFC 8785 bytes of a conforming batch payload (one encoder pass; see the module doc)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _signing_input(payload_bytes: bytes, protected: dict[str, Any], spec_version: str) -> bytes:
    # RFC 8785 orders members by code point: "payload" < "signature" < "specVersion".
    return b"".join((b'{"payload":', payload_bytes, b',"signature":', canonical_payload(protected),
                     b',"specVersion":', json.dumps(spec_version).encode(), b"}"))


def check_payload(p: Any) -> None:
    """Structural check of a batch payload, strict enough that ``canonical_payload`` is its
    RFC 8785 form. Raises BatchError naming the first problem."""
    if not isinstance(p, dict):
        raise BatchError("the payload is not an object")
    if p.keys() != FIELDS:
        missing, extra = FIELDS - p.keys(), p.keys() - FIELDS
        raise BatchError(f"payload members: missing {sorted(missing)}, unexpected {sorted(extra)}")
    for name in ("sourceId", "pointId", "unit", "granularity", "step", "start", "flags", "previousBatchDigest", "sealedAt"):
        if not isinstance(p[name], str):
            raise BatchError(f"{name} is not a string")
    for name in ("count", "sequenceNumber"):
        if not isinstance(p[name], int) or isinstance(p[name], bool) or p[name] < 1:
            raise BatchError(f"{name} is not a positive integer")
    if not (_ID.fullmatch(p["sourceId"]) and _ID.fullmatch(p["pointId"])):
        raise BatchError("sourceId or pointId is not an identifier")
    if STEP_CODES.get(p["granularity"]) != p["step"]:
        raise BatchError(f"step {p['step']!r} does not match granularity {p['granularity']!r}")
    if not (_UTC.fullmatch(p["start"]) and _UTC.fullmatch(p["sealedAt"])):
        raise BatchError("start and sealedAt must be canonical UTC instants (YYYY-MM-DDThh:mm:ssZ)")
    if not _HEX.fullmatch(p["previousBatchDigest"]):
        raise BatchError("previousBatchDigest is not 64 lower-case hex digits")
    values, n = p["values"], p["count"]
    if not isinstance(values, list) or len(values) != n or len(p["flags"]) != n or n > MAX_VALUES:
        raise BatchError(f"count {n} does not match {len(values) if isinstance(values, list) else '?'} values "
                         f"and {len(p['flags'])} flags (at most {MAX_VALUES})")
    if not _FLAGS.fullmatch(p["flags"]):
        raise BatchError(f"flags hold a character outside {' '.join(QUALITY_FLAGS)}")
    try:
        ok = VALUES_RE.fullmatch("\x00".join(values)) is not None
    except TypeError:
        ok = False
    if not ok or any("\x00" in v for v in values):
        raise BatchError("a value is not a decimal string (or empty)")


def end_of(p: dict[str, Any]) -> int:
    return parse_utc(p["start"]) + int(p["count"]) * STEP_SECONDS[p["granularity"]]


# --- sealing (the source side) ---------------------------------------------------------------
@dataclass
class Signer:
    """The source's data-signing identity: what SealedStore.seal needs."""

    source_id: str
    key: trust.SM2PrivateKey
    certificate_chain: list[bytes]
    spec_version: str = SPEC_VERSION

    def __post_init__(self) -> None:
        self._key_id = self.key.public_key().fingerprint()
        self._chain = [base64.b64encode(c).decode("ascii") for c in self.certificate_chain]

    def seal(self, payload: dict[str, Any], signing_time: dt.datetime | None = None) -> tuple[str, bytes]:
        """Sign one batch payload; return (hex SM3 of its canonical bytes, envelope JSON bytes)."""
        check_payload(payload)
        pbytes = canonical_payload(payload)
        when = (signing_time or dt.datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
        block: dict[str, Any] = {"algorithm": "SM2-with-SM3", "canonicalization": "cedx-jcs-1",
                                 "keyId": self._key_id, "signingTime": when.strftime("%Y-%m-%dT%H:%M:%SZ")}
        value = self.key.sign(_signing_input(pbytes, block, self.spec_version))
        block["value"] = base64.b64encode(value).decode("ascii")
        if self._chain:
            block["certificateChain"] = self._chain
        envelope = b"".join((b'{"specVersion":', json.dumps(self.spec_version).encode(), b',"payload":', pbytes,
                             b',"signature":', json.dumps(block, separators=(",", ":")).encode(), b"}"))
        return sm3(pbytes).hex(), envelope


# --- verification (the client side) ----------------------------------------------------------
@dataclass(frozen=True)
class ChainHead:
    """Where a verified chain stands: enough to continue verifying it in a later pull."""

    sequence_number: int
    digest: str
    end: int                  # epoch seconds where the next batch must start


@dataclass
class VerifiedBatch:
    payload: dict[str, Any]
    digest: str
    key_id: str


class BatchVerifier:
    """Verifies a stream of signed batches of one point and granularity, in order.

    Each batch: payload structure, signature (certificate chain to the trust anchors through
    ``resolver``, e.g. cedx.trust.x509.ChainResolver), and the chain: consecutive sequence
    numbers, ``previousBatchDigest`` equal to the SM3 of the previous payload, ``start`` equal to
    the previous batch's end. ``anchor`` continues a chain verified earlier; without it the first
    batch is accepted as the start (and must link to the genesis digest if it is sequence 1).
    """

    def __init__(self, resolver: Callable[[dict[str, Any]], trust.SM2PublicKey], *, point_id: str | None = None,
                 granularity: str | None = None, anchor: ChainHead | None = None):
        self.resolver, self.point_id, self.granularity = resolver, point_id, granularity
        self.head = anchor
        self.position = 0

    def verify(self, envelope: Any) -> VerifiedBatch:
        i = self.position
        if not isinstance(envelope, dict) or envelope.keys() != {"specVersion", "payload", "signature"}:
            raise BatchError(f"batch {i}: not a signed envelope (specVersion, payload, signature)", i)
        p, block, version = envelope["payload"], envelope["signature"], envelope["specVersion"]
        try:
            check_payload(p)
        except BatchError as exc:
            raise BatchError(f"batch {i}: {exc}", i) from None
        if self.point_id is not None and p["pointId"] != self.point_id:
            raise BatchError(f"batch {i}: point {p['pointId']} where {self.point_id} was asked for", i)
        if self.granularity is not None and p["granularity"] != self.granularity:
            raise BatchError(f"batch {i}: granularity {p['granularity']} where {self.granularity} was asked for", i)
        pbytes = canonical_payload(p)
        key_id = self._verify_signature(i, pbytes, block, version)
        digest = sm3(pbytes).hex()
        seq, prev = p["sequenceNumber"], p["previousBatchDigest"]
        if self.head is not None:
            if seq != self.head.sequence_number + 1:
                raise BatchError(f"batch {i}: sequence {seq} follows {self.head.sequence_number} "
                                 "(a batch is missing, repeated or out of order)", i)
            if prev != self.head.digest:
                raise BatchError(f"batch {i} (sequence {seq}) does not link to its predecessor", i)
            if parse_utc(p["start"]) != self.head.end:
                raise BatchError(f"batch {i} (sequence {seq}) starts at {p['start']}, not where its predecessor "
                                 f"ended ({utc_text(self.head.end)})", i)
        elif seq == 1 and prev != GENESIS:
            raise BatchError(f"batch {i}: the first batch of a chain must link to the genesis digest", i)
        self.head = ChainHead(seq, digest, end_of(p))
        self.position += 1
        return VerifiedBatch(p, digest, key_id)

    def _verify_signature(self, i: int, pbytes: bytes, block: Any, version: Any) -> str:
        if not isinstance(block, dict) or not block.keys() <= _BLOCK_KEYS or not isinstance(version, str):
            raise BatchError(f"batch {i}: malformed signature block", i)
        for name in ("algorithm", "keyId", "signingTime", "value"):
            if not isinstance(block.get(name), str):
                raise BatchError(f"batch {i}: signature block lacks {name}", i)
        # both algorithms of every signed document (docs/trust-profile.md §2); a source seals with SM2-with-SM3
        if block["algorithm"] not in trust.ALGORITHMS or block.get("canonicalization", "cedx-jcs-1") != "cedx-jcs-1":
            raise BatchError(f"batch {i}: unsupported algorithm or canonicalization", i)
        if not _SIGNING_TIME.fullmatch(block["signingTime"]) or not all(
                isinstance(v, str) and v.isascii() for v in block.values() if not isinstance(v, list)):
            # Not in the form the splice assumes: let the general canonicalizer decide.
            try:
                trust.verify_document({"specVersion": version, "payload": json.loads(pbytes), "signature": block},
                                      self.resolver)
            except (trust.InvalidSignature, trust.CertificateError) as exc:
                raise BatchError(f"batch {i}: {exc}", i) from exc
            return cast(str, block["keyId"])
        try:
            public = self.resolver(block)
        except trust.TrustError as exc:
            raise BatchError(f"batch {i}: {exc}", i) from exc
        if public.fingerprint() != block["keyId"]:
            raise BatchError(f"batch {i}: keyId does not match the signing certificate", i)
        protected = {k: v for k, v in block.items() if k not in _UNPROTECTED}
        uid = block.get("userId", DEFAULT_ID.decode()).encode("utf-8")
        try:
            value = base64.b64decode(block["value"], validate=True)
            public.verify(value, message_for(block["algorithm"], _signing_input(pbytes, protected, version)), uid)
        except (trust.InvalidSignature, ValueError) as exc:
            raise BatchError(f"batch {i}: signature invalid: {exc}", i) from None
        return cast(str, block["keyId"])


def verify_batches(envelopes: Iterable[Any], resolver: Callable[[dict[str, Any]], trust.SM2PublicKey],
                   **kwargs: Any) -> list[VerifiedBatch]:
    v = BatchVerifier(resolver, **kwargs)
    return [v.verify(e) for e in envelopes]
