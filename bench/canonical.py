"""Canonical-form figures (issue 14, target 1): µs per document for the signed 2-unit power
report (the published example, as sent: +08:00 instants) and a 200-unit one built as
bench/reporting.py builds it, beside anchors measured in the same run on the same document:

* ``json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))`` — the C encoder
  alone, with no schema-typed instant rewriting and no I-JSON checks (the floor of a pure
  json-module implementation);
* ``orjson.dumps(doc, option=OPT_SORT_KEYS)`` — the encoder cedx uses when the ``fast`` extra
  is installed, alone.

cedx's figure is shown with orjson (``fast`` extra) and with the json-module fallback (same bytes).

Figures: ``canonicalize`` (the whole document, what documentDigest covers) now and before, and
what a receiver does with a document per request — verify its signature and compute the
receipt's documentDigest — less the SM2 verification itself: as it was, as the platform does it
now (canonicalizing twice), and with the digest taken from ``verify_document``'s result.

    .venv/bin/python bench/canonical.py [--seconds 0.3] [--rounds 5]
"""

from __future__ import annotations

import argparse
import base64
import json
import time
from collections.abc import Callable
from typing import Any

from common import REPO, figure, widen_power_report

from cedx import trust
from cedx.trust import canonical as canonical_module
from tests.trust import reference_canonical as before

EXAMPLE = REPO / "sdk/cedx/generated/examples/monthly-report-power.json"


def power_report(units: int) -> tuple[dict[str, Any], trust.SM2PublicKey]:
    """The published power report with ``units`` generating units (totals kept consistent, as
    bench/reporting.py does), signed, with the example's +08:00 instants as a client sends them."""
    doc = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    base = doc["payload"]
    widen_power_report(base, units)
    key = trust.generate_private_key()
    signed = trust.sign_document(base, key, envelope_fields={"specVersion": doc["specVersion"]})
    signed["payload"] = base  # as the client sent it (sign_document returns the logical record)
    return signed, key.public_key()


def per_call_us(fns: dict[str, Callable[[], object]], seconds: float, rounds: int) -> dict[str, float]:
    """µs per call of each function: best of ``rounds`` rounds, each timing every function for
    about ``seconds`` in turn, so that a busy neighbour on a shared machine hits all alike."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            n, start = 0, time.perf_counter()
            while True:
                for _ in range(5):
                    fn()
                n += 5
                now = time.perf_counter()
                if now - start >= seconds:
                    break
            best[name] = min(best[name], 1e6 * (now - start) / n)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=0.3)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    orjson = canonical_module._fast_encoder()
    trust.canonicalize({})  # load the spec's instant paths once, outside the timing
    before.canonicalize({})
    print("canonical form, µs per document (anchors on the same document in the same run; "
          "'before' = the implementation this one replaced, tests/trust/reference_canonical.py):")
    for units in (2, 200):
        measure(units, args.seconds, args.rounds, orjson)


def measure(units: int, seconds: float, rounds: int, orjson: Any) -> None:
    doc, public = power_report(units)
    canonical = trust.canonicalize(doc)
    assert canonical == before.canonicalize(doc)  # byte-identical, or the figures mean nothing
    label = f"{units}-unit report ({len(canonical) / 1024:.0f} KiB)"

    trust.verify_document(doc, public)  # for real, once; then with a key whose SM2 check is a no-op
    public = _NoCurve(public.point)

    def twice() -> object:  # the platform today: verify, then canonicalize the whole again
        trust.verify_document(doc, public)
        return trust.sm3(trust.canonicalize(doc))

    def old_twice() -> object:
        before_verify(doc, public)
        return trust.sm3(before.canonicalize(doc))

    def once() -> object:  # the digest spliced from the bytes verification computed
        return trust.verify_document(doc, public).document_digest()

    fns: dict[str, Callable[[], object]] = {
        "anchor": lambda: json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode(),
        "old": lambda: before.canonicalize(doc),
        "new": lambda: trust.canonicalize(doc),
        "old_twice": old_twice, "twice": twice, "once": once,
    }
    if orjson is not None:
        fns["orjson"] = lambda: orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
        fns["fallback"] = lambda: json_module_only(doc)
    r = per_call_us(fns, seconds, rounds)
    anchor, old, new = r["anchor"], r["old"], r["new"]
    encoder = "orjson" if orjson is not None else "json module"
    print(f" {label}")
    figure(f"canonicalize ({encoder})", new, "µs", "json.dumps sorted", anchor, higher_is_better=False, precision=0)
    if orjson is not None:
        figure("canonicalize (orjson)", new, "µs", "orjson sorted", r["orjson"], higher_is_better=False, precision=0)
        figure("canonicalize (json module, no `fast` extra)", r["fallback"], "µs", "json.dumps sorted", anchor,
               higher_is_better=False, precision=0)
    figure("canonicalize, before", old, "µs", "json.dumps sorted", anchor, higher_is_better=False, precision=0)
    figure(f"canonicalize ({encoder}) vs before", new, "µs", "before", old, higher_is_better=False, precision=0)
    # What a receiver does with the document per request: verify the signature (signing input)
    # and compute the receipt's documentDigest (SM3 included), SM2 verification excluded.
    t_old, t_twice, t_once = r["old_twice"], r["twice"], r["once"]
    figure("verify + documentDigest, no SM2: before", t_old, "µs", "json.dumps sorted", anchor,
           higher_is_better=False, precision=0)
    figure("  now, canonicalizing twice", t_twice, "µs", "before", t_old, higher_is_better=False, precision=0)
    figure("  now, digest from verify_document", t_once, "µs", "before", t_old, higher_is_better=False, precision=0)


def json_module_only(doc: dict[str, Any]) -> bytes:
    saved, canonical_module._fast_encoder = canonical_module._fast_encoder, lambda: None
    try:
        return trust.canonicalize(doc)
    finally:
        canonical_module._fast_encoder = saved


class _NoCurve(trust.SM2PublicKey):
    """The signer's key with SM2 verification skipped (it was checked once, for real)."""

    __slots__ = ()

    def verify(self, signature: bytes, message: bytes, uid: bytes = b"") -> None:
        return None


def before_verify(doc: dict[str, Any], public: trust.SM2PublicKey) -> None:
    """verify_document as it was: a logical copy, then the signing input canonicalized."""
    record = before.to_logical(doc)
    block = {k: v for k, v in record["signature"].items() if k not in ("value", "certificateChain", "timestampToken")}
    message = before.canonicalize({**record, "signature": block})
    public.verify(base64.b64decode(record["signature"]["value"]), message)


if __name__ == "__main__":
    main()
