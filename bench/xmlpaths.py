"""The XML path measured on every XML example of the spec: parse + serialise time per document.

    .venv/bin/python bench/xmlpaths.py

* codec: the spec-driven ``XmlCodec`` (bytes ⇄ logical record, the JSON data model) — what the
  SDK, the platform and the source use on the wire.
* models: the same plus the pydantic models (``cedx.generated.xml.from_xml`` / ``to_xml``).

When the xsdata bindings still existed (issue 10.4), the same 22 examples measured: codec median
258–281 µs per document (12.3–12.7 ms for all), xsdata bindings median 635–845 µs (34–40 ms for
all), and xsdata accepted a DTD with an external entity silently (the codec refuses it). The
bindings were removed: one XML path.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from cedx import spec
from cedx.generated import xml

EXAMPLES = Path(__file__).resolve().parent.parent / "sdk" / "cedx" / "generated" / "examples"
ROUNDS = 200


def _per_doc(fn, data) -> float:
    fn(data)  # warm
    start = time.perf_counter()
    for _ in range(ROUNDS):
        fn(data)
    return (time.perf_counter() - start) / ROUNDS * 1e6


def main() -> int:
    codec = spec.xml_codec()
    docs = {p.name: p.read_bytes() for p in sorted(EXAMPLES.glob("*.xml"))}

    def codec_round(data: bytes) -> bytes:
        name, record = codec.loads(data)
        return codec.dumps(name, record, pretty=False)

    def model_round(data: bytes) -> bytes:
        return xml.to_xml(xml.from_xml(data), pretty=False)

    paths = {"codec": codec_round, "models": model_round}
    sizes = [len(d) for d in docs.values()]
    print(f"{len(docs)} XML examples, {min(sizes)}–{max(sizes)} bytes (median {statistics.median(sizes):.0f})")
    for label, fn in paths.items():
        times = [_per_doc(fn, data) for data in docs.values()]
        print(f"{label:7s} parse+serialise per document: median {statistics.median(times):7.0f} µs, "
              f"max {max(times):7.0f} µs, total {sum(times) / 1000:6.1f} ms for all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
