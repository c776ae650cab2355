"""Per-stage platform CPU of a signed power report outside the quality rules (issue 14, target 1):
ms per report, in process, for the 2-unit and the 200-unit report as cedx's client sends them
(compact JSON, members in canonical order), each stage beside the same stage on the small report
(ratio = what 100× the generating units costs). The last two lines are the sum of the stages,
and the same work done the previous way (no parser proof: the document's types scanned and
encoded again, JSON Schema and then the allowed-units walk, a full SM3 pass for the receipt
digest) as the anchor. The collector is tuned as in a serving process (``tune_gc_for_serving``).

Stages, in the order the platform runs them: the request signature's SM3 of the body (kept with
its prefix states), parsing (orjson, with the I-JSON checks and the sorted-key encoding that
becomes the canonical form), JSON Schema with the allowed units (one jsonschema-rs pass), the
document signature
(canonical form spliced from the parser's encoding; SM2-with-SM3-prehash: the signing input's
SM3 resumed from the body's states, then one SM2 verify over that digest),
and the receipt's documentDigest (SM3 resumed from the body's states where the bytes agree).

    .venv/bin/python bench/report_stages.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import REPO  # noqa: F401  (puts the repository on sys.path for tests.*)
from reporting import signed_reports

from cedx import spec, trust
from cedx.platform.admin import Admin
from cedx.platform.settings import PlatformSettings
from cedx.runtime import server
from cedx.runtime.serve import tune_gc_for_serving
from cedx.trust import x509 as tx
from tests.platform.conftest import Entity


def ms(fn: Callable[[], object], rounds: int) -> float:
    """CPU ms per call: the mean of the fastest third of ``rounds`` calls (a shared machine)."""
    times = []
    for _ in range(rounds):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    times.sort()
    best = times[: max(1, rounds // 3)]
    return 1e3 * sum(best) / len(best)


def stages(raw: bytes, public: trust.SM2PublicKey) -> dict[str, Callable[[], object]]:
    validator = spec.context(spec.BUNDLE_PACKAGE).validator
    record, encoded = server.parse_json_encoded(raw)
    assert encoded is not None
    body = trust.PrefixDigests(raw)
    verified = trust.verify_document(record, public, encoded=encoded, body=body)
    both = validator._schema_and_units_check("SignedMonthlyReport")

    def previous() -> None:
        trust.sm3(raw)
        doc = server.parse_json(raw)
        validator.schema_issues("SignedMonthlyReport", doc)
        validator.unit_issues("SignedMonthlyReport", doc)
        trust.verify_document(doc, public).document_digest()

    def schema_and_units(doc: object) -> None:  # as Validator.validate does before the rules
        if not (both is not None and both(doc)):
            validator.schema_issues("SignedMonthlyReport", doc)
            validator.unit_issues("SignedMonthlyReport", doc)

    def now() -> None:
        digests = trust.PrefixDigests(raw)
        doc, proof = server.parse_json_encoded(raw)
        schema_and_units(doc)
        trust.verify_document(doc, public, encoded=proof, body=digests).document_digest()

    return {
        "body SM3 (request signature)": lambda: trust.PrefixDigests(raw),
        "parse (orjson + I-JSON proof)": lambda: server.parse_json_encoded(raw),
        "JSON Schema + allowed units": lambda: schema_and_units(record),
        "document signature": lambda: trust.verify_document(record, public, encoded=encoded, body=body),
        "receipt documentDigest": verified.document_digest,
        "all of the above": now,
        "the same, previous way": previous,
    }


def small_and_large_reports() -> tuple[dict[int, dict[str, Any]], trust.SM2PublicKey]:
    """One signed power report of 2 and one of 200 units, and the signer's public key (its
    certificate chain checked against a fresh platform's anchor)."""
    with tempfile.TemporaryDirectory() as tmp:
        admin = Admin(PlatformSettings(data_dir=Path(tmp)))
        entity = Entity(admin, "91320500MA1X2P3Q4R", "monthly-report-power.json")
        public = tx.validate_chain(entity.cert, trust_anchors=admin.pki.anchors)
        return {units: signed_reports(entity, 1, units)[0] for units in (2, 200)}, public


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    docs, public = small_and_large_reports()
    figures: dict[int, dict[str, float]] = {}
    sizes: dict[int, int] = {}
    tune_gc_for_serving()  # the collector as a serving platform process has it
    for units, doc in docs.items():
        # as cedx's client sends it (runtime.client: compact, members in canonical order)
        raw = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
        sizes[units] = len(raw)
        rounds = args.rounds * (10 if units == 2 else 1)
        figures[units] = {name: ms(fn, rounds) for name, fn in stages(raw, public).items()}
    print(f"platform stages outside the rules, CPU ms per report (2 units {sizes[2] / 1024:.0f} KiB, "
          f"200 units {sizes[200] / 1024:.0f} KiB)")
    for name in figures[2]:
        small, large = figures[2][name], figures[200][name]
        print(f"  {name:<34} {large:8.2f} ms   2 units {small:6.2f} ms   ratio {large / small:6.1f}")
    now, before = figures[200]["all of the above"], figures[200]["the same, previous way"]
    print(f"  {'200 units: now / previous way':<34} {now:8.2f} ms   previous {before:6.2f} ms   ratio {now / before:6.2f}")


if __name__ == "__main__":
    main()
