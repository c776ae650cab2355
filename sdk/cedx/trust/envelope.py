"""The signed-document envelope: ``{"specVersion": ..., "payload": <record>, "signature": <block>}``.

The signature block (spec schema ``SignatureBlock``) is detached from the payload:

    algorithm         "SM2-with-SM3-prehash" (default) or "SM2-with-SM3"
    canonicalization  "cedx-jcs-1" (RFC 8785 over the logical record, see canonical.py)
    keyId             hex SM3 of the signer's raw public key 04||X||Y
    userId            SM2 user ID, present only when not the default 1234567812345678
    signingTime       UTC instant
    certificateChain  optional, base64 DER certificates, signer first
    value             base64 DER SM2 signature
    timestampToken    optional, base64 DER RFC 3161 token over SM3(value)

What is signed: the canonical form of the whole envelope (every member, such as specVersion
and payload) with ``value``, ``certificateChain`` and ``timestampToken`` removed from the
signature block (the signing input); with "SM2-with-SM3-prehash", its 32-byte SM3 digest
instead, so that a receiver hashes a large document once: the digest resumes from the request
body's own SM3 where the bytes agree, which the SM2 message Z_A || input cannot. The signing metadata is therefore protected too, while a chain or a
time-stamp can be attached after signing. Because the input is the logical record,
the same signature verifies whether the document travelled as JSON or as XML.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .canonical import (
    NOT_PLAIN,
    PLAIN,
    CanonicalizationError,
    EncodedRecord,
    InstantNode,
    OutOfRange,
    _Located,
    _rewrite,
    canonicalize,
    child_node,
    default_instants,
    encode,
    encode_object,
    format_instant,
    prepare,
    scan,
    splice_instants,
    to_logical,
)
from .curve import DEFAULT_ID
from .errors import InvalidSignature
from .keys import Signer, SM2PublicKey
from .sm3 import PrefixDigests, sm3

ALGORITHM = "SM2-with-SM3"  # SM2 over the signing input itself
PREHASH_ALGORITHM = "SM2-with-SM3-prehash"  # SM2 over SM3(signing input): one pass over a large document
ALGORITHMS = (PREHASH_ALGORITHM, ALGORITHM)  # every verifier accepts both
CANONICALIZATION = "cedx-jcs-1"
_UNPROTECTED = ("value", "certificateChain", "timestampToken")

KeyResolver = Callable[[dict[str, Any]], SM2PublicKey]


def b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64d(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidSignature(f"{what} is not valid base64") from exc


def signing_input(envelope: dict[str, Any], *, instants: InstantNode = None) -> bytes:
    """Canonical bytes the signature covers (see the module docstring).

    ``instants``: which members are instants (canonical.instant_tree); default cedx's spec.
    """
    return _Canonical(envelope, instants).signing_input()


def message_for(algorithm: str, signing: bytes, body: PrefixDigests | None = None) -> bytes:
    """The message M an SM2 signature of ``algorithm`` is over (e = SM3(Z_A || M)), given the
    signing input: the input itself for "SM2-with-SM3", its SM3 digest for
    "SM2-with-SM3-prehash" (resumed from ``body``'s states where the bytes agree)."""
    if algorithm != PREHASH_ALGORITHM:
        return signing
    return sm3(signing) if body is None else body.sm3_of(signing)


def signed_message(envelope: dict[str, Any], *, instants: InstantNode = None) -> bytes:
    """The message M that the envelope's block signs (``message_for`` its algorithm)."""
    return message_for(envelope["signature"].get("algorithm", ""), signing_input(envelope, instants=instants))


class _Canonical:
    """The canonical bytes of an envelope's members, each encoded once: the signing input and
    the canonical form of the whole document (the receipt's documentDigest) share the payload,
    by far the largest member, and are spliced from the same bytes (RFC 8785 encodes an object
    member by member, so splicing gives the bytes a single pass would)."""

    def __init__(self, envelope: dict[str, Any], instants: InstantNode, kind: int | None = None,
                 encoding: bytes | None = None):
        """``kind``: what ``scan`` found for the whole envelope, if it was scanned already;
        ``encoding``: the envelope's RFC 8785 bytes before instant rewriting, when a parser
        proved them (``EncodedRecord``; ``kind`` is then PLAIN)."""
        self.tree = default_instants() if instants is None else instants
        self.kind = kind
        self.block: dict[str, Any] = envelope["signature"]
        self._whole: bytes | None = None
        if encoding is not None and kind == PLAIN and self._from_encoding(envelope, encoding):
            return
        self.members = {k: self._member(k, v) for k, v in envelope.items() if k != "signature"}

    def _from_encoding(self, envelope: dict[str, Any], encoding: bytes) -> bool:
        """The whole document's canonical bytes from the parser's encoding, instants spliced in
        (no re-encoding of the payload). The signing input is then the same bytes with the
        signature block's member replaced: the members after it in RFC 8785 order are small
        and encoded again, and the whole form must end with exactly them (else the slow way)."""
        changes: list[tuple[str | None, str, str]] = []
        try:
            _rewrite(envelope, self.tree, changes)
        except _Located:  # an invalid instant: the member-by-member way reports it with its path
            return False
        whole = splice_instants(encoding, changes)
        if whole is None:
            return False
        names = sorted(envelope)  # code point order is RFC 8785's here (EncodedRecord's promise)
        after = names[names.index("signature") + 1:]
        tail = b"".join(b"," + encode_object({k: self._member(k, envelope[k])})[1:-1] for k in after) + b"}"
        block = encode_object({"signature": self._member("signature", self.block)})[1:-1]
        if not whole.endswith(block + tail) or whole[-len(block + tail) - 1] not in b",{":
            return False  # pragma: no cover - the encoding was not the envelope's
        self._whole, self._head, self._tail = whole, memoryview(whole)[:-len(block + tail)], tail
        return True

    def _member(self, name: str, value: Any) -> bytes:
        path = f"$.{name}"
        record, kind = prepare(value, child_node(self.tree, name), path, self.kind)
        return encode(record, kind, path)

    def signing_input(self) -> bytes:
        protected = {k: v for k, v in self.block.items() if k not in _UNPROTECTED}
        if self._whole is not None:
            block = encode_object({"signature": self._member("signature", protected)})[1:-1]
            return b"".join((self._head, block, self._tail))
        return encode_object({**self.members, "signature": self._member("signature", protected)})

    def whole(self) -> bytes:
        if self._whole is not None:
            return self._whole
        return encode_object({**self.members, "signature": self._member("signature", self.block)})


def sign_document(
    payload: Any,
    key: Signer,
    *,
    signing_time: _dt.datetime | None = None,
    certificate_chain: list[bytes] | None = None,
    uid: bytes = DEFAULT_ID,
    timestamper: Callable[[bytes], bytes] | None = None,
    envelope_fields: dict[str, Any] | None = None,
    instants: InstantNode = None,
    algorithm: str = PREHASH_ALGORITHM,
) -> dict[str, Any]:
    """Sign a logical record (or a model) and return the envelope as a logical record.

    ``envelope_fields`` are further top-level members of the envelope (the spec puts
    ``specVersion`` there); they are covered by the signature like the payload.

    ``timestamper`` receives the SM3 imprint of the signature value and returns a DER RFC 3161
    token (see cedx.trust.tsa); it is optional. ``algorithm``: one of ``ALGORITHMS``.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unsupported signature algorithm {algorithm!r}")
    record = to_logical(payload)
    block: dict[str, Any] = {
        "algorithm": algorithm,
        "canonicalization": CANONICALIZATION,
        "keyId": key.public_key().fingerprint(),
        "signingTime": format_instant(signing_time or _dt.datetime.now(_dt.timezone.utc)),
    }
    if uid != DEFAULT_ID:
        block["userId"] = uid.decode("utf-8")
    envelope = {**to_logical(envelope_fields or {}), "payload": record, "signature": block}
    value = key.sign(signed_message(envelope, instants=instants), uid)
    block["value"] = b64e(value)
    if certificate_chain:
        block["certificateChain"] = [b64e(c) for c in certificate_chain]
    if timestamper is not None:
        block["timestampToken"] = b64e(timestamper(sm3(value)))
    return envelope


@dataclass(frozen=True)
class VerifiedDocument:
    """What ``verify_document`` found. ``canonical_document()`` is the canonical form of the
    whole document as received (signature value, chain and token included): what a receipt's
    ``documentDigest`` covers, spliced from the bytes verification already computed, so that a
    receiver need not canonicalize the document a second time."""

    payload: Any
    key_id: str
    signing_time: str
    signature: bytes
    timestamp_token: bytes | None
    _canonical: _Canonical | None = field(default=None, repr=False, compare=False)
    _body: PrefixDigests | None = field(default=None, repr=False, compare=False)

    def canonical_document(self) -> bytes:
        """Canonical bytes of the whole document (raises CanonicalizationError when an
        unsigned member, e.g. the certificate chain, has no canonical form)."""
        if self._canonical is None:
            raise ValueError("not made by verify_document")
        return self._canonical.whole()

    def document_digest(self) -> str:
        """Hex SM3 of ``canonical_document()`` (docs/trust-profile.md §3, ``documentDigest``);
        resumed from the request body's hash states where the two bytes agree (``body``)."""
        whole = self.canonical_document()
        return (sm3(whole) if self._body is None else self._body.sm3_of(whole)).hex()


def document_digest(envelope: Any, *, instants: InstantNode = None) -> str:
    """A receipt's ``documentDigest`` of a signed document (docs/trust-profile.md §3): hex SM3 of
    the canonical form of the *whole* envelope, signature value, certificate chain and any
    time-stamp token included. What a platform computes for a document it has not verified
    itself; ``VerifiedDocument.document_digest()`` gives the same, spliced from the bytes
    verification encoded. Raises CanonicalizationError for a document with no canonical form."""
    return sm3(canonicalize(envelope, instants=instants)).hex()


def binds_document(digest: str, envelope: Any, *, sent: PrefixDigests | None = None,
                   instants: InstantNode = None) -> bool:
    """Whether ``digest`` (a receipt's ``documentDigest``, hex) is that of ``envelope``, the signed
    document a client sent (``document_digest``). ``sent``: the SM3 states of the JSON body it
    was sent in (a client has them from signing the request); then, cheapest first:

    1. the body's own SM3: the body was the canonical form (nothing to rewrite);
    2. the SM3 of the body with its instants put in canonical form (``splice_instants``, as a
       receiver splices them into its parser's encoding), resumed from the body's states: a
       body written with sorted compact members, as cedx writes it, whose instants carry an
       offset (``+08:00``);
    3. ``document_digest(envelope)``, the canonical form encoded in full (an XML body, or a
       body that is neither).

    A digest that matches 1 or 2 is SM3 of the very bytes sent, or of those bytes with only
    instants rewritten to the same instants in UTC, so it names the document sent and no
    other; a platform following the profile matches at the first of them that is the canonical
    form. False also when the document has no canonical form (no receipt can bind it)."""
    if sent is not None:
        if digest == sent.digest.hex():
            return True
        changes: list[tuple[str | None, str, str]] = []
        try:
            _rewrite(envelope, default_instants() if instants is None else instants, changes)
        except _Located:  # an invalid instant: no canonical form, decided below
            changes = []
        spliced = splice_instants(sent.data, changes) if changes else None
        if spliced is not None and digest == sent.sm3_of(spliced).hex():
            return True
    try:
        return digest == document_digest(envelope, instants=instants)
    except CanonicalizationError:
        return False


def verify_document(
    envelope: Any, key: SM2PublicKey | KeyResolver, *, instants: InstantNode = None,
    encoded: EncodedRecord | None = None, body: PrefixDigests | None = None,
) -> VerifiedDocument:
    """Verify an envelope against a key, or a resolver that maps the block to a key.

    Raises InvalidSignature naming the first thing wrong. The time-stamp token, if any, is
    returned undecoded; verify it with cedx.trust.tsa.verify_token(token, imprint=sm3(sig)).
    A plain JSON record (what a JSON parser returns) is not copied: the returned ``payload`` is
    the one given; anything else (a model, Python values) is first converted by ``to_logical``.
    ``encoded``: what the parser that read ``envelope`` proved about it (ignored unless made for
    this very object): its types are not scanned again and its canonical bytes are spliced from
    the parser's encoding instead of encoded again. ``body``: SM3 states of the bytes the
    document arrived as, from which ``document_digest`` resumes where they agree with the
    canonical form. The answers are the same either way.
    """
    encoding = None
    if encoded is not None and encoded.value is envelope and type(envelope) is dict:
        kind: int | None = PLAIN
        encoding = encoded.encoding
    else:
        try:
            kind = scan(envelope) if type(envelope) is dict else NOT_PLAIN
        except OutOfRange:  # an integer beyond I-JSON: refused below, as "no canonical form"
            kind = NOT_PLAIN
    doc = envelope if kind != NOT_PLAIN else to_logical(envelope)
    if not isinstance(doc, dict) or "payload" not in doc or "signature" not in doc:
        raise InvalidSignature("document is not a signed envelope (payload + signature)")
    block = doc["signature"]
    if not isinstance(block, dict):
        raise InvalidSignature("signature block is not an object")
    for name in ("algorithm", "keyId", "signingTime", "value"):
        if not isinstance(block.get(name), str):
            raise InvalidSignature(f"signature block lacks {name}")
    if block["algorithm"] not in ALGORITHMS:
        raise InvalidSignature(f"unsupported signature algorithm {block['algorithm']!r}")
    if block.get("canonicalization", CANONICALIZATION) != CANONICALIZATION:
        raise InvalidSignature(f"unsupported canonicalization {block['canonicalization']!r}")
    public = key if isinstance(key, SM2PublicKey) else key(block)
    if public.fingerprint() != block["keyId"]:
        raise InvalidSignature("signature keyId does not match the verifying key")
    uid = block.get("userId", DEFAULT_ID.decode()).encode("utf-8")
    value = b64d(block["value"], "signature value")
    try:
        canonical = _Canonical(doc, instants, kind if kind != NOT_PLAIN else None, encoding)
        message = canonical.signing_input()
    except CanonicalizationError as exc:  # e.g. a ten-digit fraction: refused, never cut
        raise InvalidSignature(f"document has no canonical form: {exc}") from exc
    try:
        public.verify(value, message_for(block["algorithm"], message, body), uid)
    except InvalidSignature as exc:
        other = next(a for a in ALGORITHMS if a != block["algorithm"])
        hint = public.why_not(value, message_for(block["algorithm"], message), uid, (other, message_for(other, message)))
        raise InvalidSignature(f"document signature invalid: {exc}{hint}") from exc
    token = block.get("timestampToken")
    return VerifiedDocument(
        payload=doc["payload"],
        key_id=block["keyId"],
        signing_time=block["signingTime"],
        signature=value,
        timestamp_token=b64d(token, "timestamp token") if token else None,
        _canonical=canonical,
        _body=body,
    )
