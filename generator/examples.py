"""Step 4: examples — re-sign the JSON examples reproducibly and render their XML form.

Signatures in examples are real and verify against the example PKI (spec/examples/pki/). They
are made with a deterministic nonce (k from HMAC-SM3 of the key and the digest, in the manner
of RFC 6979) so that regenerating gives byte-identical files; production signing always uses a
random k. Derived trust fields are recomputed too: the hash chain of batch pages and the
document digest in receipts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.hmac import HMAC

from cedx.instants import parse_instant
from cedx.spec.schema import SchemaIndex
from cedx.spec.xmlcodec import XmlCodec
from cedx.trust import ALGORITHM, PREHASH_ALGORITHM, canonicalize, chain, sign_document, sm3
from cedx.trust import x509 as tx
from cedx.trust.canonical import instant_tree
from cedx.trust.curve import DEFAULT_ID, N
from cedx.trust.keys import SM2PrivateKey, SM2PublicKey
from cedx.trust.tsa import TimeStampAuthority

# Receipts confirm a submitted example; their documentDigest is derived from it.
RECEIPT_SOURCES = {
    "receipt-power.json": "monthly-report-power.json",
    "receipt-annual.json": "annual-report-power.json",
}


class DeterministicKey:
    """Signs with k = HMAC-SM3(d, e) mod (n-1) + 1: reproducible example signatures."""

    def __init__(self, key: SM2PrivateKey):
        self._key = key

    def public_key(self) -> SM2PublicKey:
        return self._key.public_key()

    def sign(self, message: bytes, uid: bytes = DEFAULT_ID) -> bytes:
        e = self._key.public_key().digest(message, uid)
        mac = HMAC(self._key.private_value.to_bytes(32, "big"), hashes.SM3())
        mac.update(e)
        k = int.from_bytes(mac.finalize(), "big") % (N - 1) + 1
        return self._key.sign_digest(e, k=k)


class ExamplePki:
    def __init__(self, pki_dir: Path):
        self.dir = pki_dir

    def key(self, name: str) -> DeterministicKey:
        return DeterministicKey(SM2PrivateKey.from_bytes((self.dir / f"{name}.key.pem").read_bytes()))

    def cert(self, name: str) -> bytes:
        return cast(bytes, tx.load_certificate((self.dir / f"{name}.pem").read_bytes()).dump())

    def entity_key_name(self, credit_code: str) -> str:
        """The example entity whose certificate names ``credit_code`` (its common name), so no
        table of industries is needed here."""
        for path in sorted(self.dir.glob("entity-*.pem")):
            if not path.name.endswith(".key.pem"):
                subject = tx.load_certificate(path.read_bytes()).subject.native
                if subject.get("common_name") == credit_code:
                    return path.name[: -len(".pem")]
        raise KeyError(f"no example entity certificate for credit code {credit_code}")


class ExampleSigner:
    def __init__(self, index: SchemaIndex, pki: ExamplePki):
        self.index = index
        self.pki = pki
        # instants of the spec being generated, not of the committed bundle
        self.instants = instant_tree(index.spec)

    def _signer_name(self, signed: dict[str, Any], payload: dict[str, Any]) -> str:
        if signed["signer"] == "entity":
            return self.pki.entity_key_name(payload["creditCode"])
        return cast(str, signed["signer"])

    def sign_envelope(self, schema_name: str, doc: dict[str, Any]) -> dict[str, Any]:
        signed = self.index.schemas[schema_name]["x-cedx-signed"]
        payload = doc["payload"]
        signer = self._signer_name(signed, payload)
        signing_time = parse_instant(doc["signature"]["signingTime"])
        timestamper = None
        if signed.get("timestamped"):
            tsa = TimeStampAuthority(
                self.pki.key("tsa"), self.pki.cert("tsa"), clock=lambda: signing_time
            )
            serial = int.from_bytes(sm3(json.dumps(payload, sort_keys=True).encode())[:8], "big") >> 1

            def timestamper(imprint: bytes) -> bytes:
                return tsa.timestamp(imprint, serial_number=serial)

        return sign_document(
            payload,
            self.pki.key(signer),
            # as cedx signs them: an entity's reports with the prehash algorithm (large documents),
            # what a platform or a source answers with SM2-with-SM3 (readable by earlier releases)
            algorithm=PREHASH_ALGORITHM if signed["signer"] == "entity" else ALGORITHM,
            signing_time=signing_time,
            certificate_chain=[self.pki.cert(signer)],
            timestamper=timestamper,
            envelope_fields={"specVersion": self.index.spec_version},  # the spec's, not the source's
            instants=self.instants,
        )

    def sign(self, schema_name: str, doc: dict[str, Any]) -> dict[str, Any]:
        schema = self.index.schemas[schema_name]
        if "x-cedx-signed" in schema:
            return self.sign_envelope(schema_name, doc)
        # Pages of signed items (batch pages): re-link the chain in order, then sign each.
        items_prop = schema.get("properties", {}).get("items")
        if items_prop:
            item_ref = self.index.ref_name(items_prop["items"])
            if item_ref and "x-cedx-signed" in self.index.schemas[item_ref]:
                out, previous = [], None
                for item in doc["items"]:
                    payload = dict(item["payload"])
                    if previous is not None and payload.get(chain.SEQUENCE_FIELD) == previous[chain.SEQUENCE_FIELD] + 1:
                        payload[chain.PREVIOUS_FIELD] = chain.batch_digest(previous, instants=self.instants)
                    out.append(self.sign_envelope(item_ref, {**item, "payload": payload}))
                    previous = payload
                return {**doc, "items": out}
        return doc


def _spec_version(value: object, version: str) -> object:
    """Every ``specVersion`` of an example states the spec's own version."""
    if isinstance(value, dict):
        return {k: version if k == "specVersion" else _spec_version(v, version) for k, v in value.items()}
    if isinstance(value, list):
        return [_spec_version(v, version) for v in value]
    return value


def sign_examples(index: SchemaIndex, examples: dict[str, Any], schemas: dict[str, str], pki_dir: Path) -> dict[str, object]:
    """Return the examples with every signature (and derived digest) made afresh."""
    signer = ExampleSigner(index, ExamplePki(pki_dir))
    out: dict[str, Any] = {name: _spec_version(doc, index.spec_version) for name, doc in examples.items()}
    ordered = sorted(examples, key=lambda n: n in RECEIPT_SOURCES)  # receipts last
    for name in ordered:
        schema_name = schemas.get(name)
        if schema_name is None:
            continue
        doc = out[name]
        if name in RECEIPT_SOURCES:
            digest = sm3(canonicalize(out[RECEIPT_SOURCES[name]], instants=signer.instants)).hex()
            doc = {**doc, "payload": {**doc["payload"], "documentDigest": digest}}
        out[name] = signer.sign(schema_name, doc)
    return out


def source_form(value: object) -> object:
    """An example as a person writes it: a signature block states only ``signingTime``; the
    value, chain, time-stamp token and key id are the generator's. (``python -m generator
    strip-examples`` rewrites spec/examples/*.json so, e.g. after merging signed examples.)"""
    if isinstance(value, dict):
        out = {k: source_form(v) for k, v in value.items()}
        signature = value.get("signature")
        if "payload" in value and isinstance(signature, dict) and "signingTime" in signature:
            out["signature"] = {"signingTime": signature["signingTime"]}
        return out
    if isinstance(value, list):
        return [source_form(v) for v in value]
    return value


def render_xml(index: SchemaIndex, examples: dict[str, Any], schemas: dict[str, str], xml_names: set[str]) -> dict[str, str]:
    codec = XmlCodec(index)
    out = {}
    for xml_name in sorted(xml_names):
        json_name = xml_name[:-4] + ".json"
        out[xml_name] = codec.dumps(schemas[json_name], examples[json_name]).decode("utf-8")
    return out


def example_json_bytes(doc: object) -> bytes:
    return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


__all__ = ["ExampleSigner", "example_json_bytes", "render_xml", "sign_examples"]
