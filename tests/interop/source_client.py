"""An independent acquisition-side client written from docs/trust-batches.md, docs/trust-profile.md
and the published spec alone: the Python standard library plus the `openssl` command line,
nothing from cedx (tests/interop/test_conformance.py checks every module here for that).

It pulls the sealed measurement batches of a point page by page (trust-batches §4), verifies
each batch's signature and certificate chain (§2) and the hash chain and contiguity across
pages (§3), the way another vendor's accounting system would.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

try:
    from .client import DISTID, OpenSSL, http
except ImportError:  # imported as a top-level module (the clean-interpreter check)
    from client import DISTID, OpenSSL, http  # type: ignore[no-redef]

GENESIS = "0" * 64
STEPS = {"minute": ("PT1M", 60), "hour": ("PT1H", 3600), "day": ("P1D", 86400)}  # trust-batches §1.1
MEMBERS = {"sourceId", "pointId", "granularity", "unit", "start", "step", "count", "values", "flags",
           "sequenceNumber", "previousBatchDigest", "sealedAt"}  # §1: exactly these
DECIMAL = re.compile(r"^-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,12})?$")  # §1.3
UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")  # §1.4
BATCH_DOC = Path(__file__).resolve().parents[2] / "docs" / "trust-batches.md"


def source_time_zone() -> dt.timezone:
    """§1.5 names the source's time zone (local midnights and month starts bound the batches)."""
    item = BATCH_DOC.read_text(encoding="utf-8").split("\n5. ", 1)[1].split("\n6. ", 1)[0]
    sign, hours, minutes = re.search(r"UTC([+-])(\d{2}):(\d{2})", item).groups()
    offset = dt.timedelta(hours=int(hours), minutes=int(minutes))
    return dt.timezone(offset if sign == "+" else -offset)


class BatchRefused(Exception):
    pass


def canonical_payload(payload: dict) -> bytes:
    """§2.1: P is one pass of a standard JSON encoder (sorted members, no whitespace, UTF-8)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signing_input(envelope: dict) -> bytes:
    """§2.2: {"payload":P,"signature":<protected block, RFC 8785>,"specVersion":"1.0"}."""
    block = {k: v for k, v in envelope["signature"].items() if k not in ("value", "certificateChain", "timestampToken")}
    protected = json.dumps(block, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return (b'{"payload":' + canonical_payload(envelope["payload"]) + b',"signature":' + protected
            + b',"specVersion":' + json.dumps(envelope["specVersion"]).encode() + b"}")


def _instant(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


@dataclass
class ChainHead:
    sequence: int
    digest: str
    end: dt.datetime


class BatchReader:
    """Verifies batches of one (source, point, granularity) chain, in order."""

    def __init__(self, ssl: OpenSSL, anchor_pem: str, point: str, granularity: str, head: ChainHead | None = None):
        self.ssl, self.anchor, self.point, self.granularity, self.head = ssl, anchor_pem, point, granularity, head
        self._trusted: dict[bytes, str] = {}  # signer certificate DER -> public key file, chain already validated
        self.zone = source_time_zone()

    def _signer_key(self, block: dict) -> str:
        chain = [base64.b64decode(c) for c in block.get("certificateChain", [])]
        if not chain:
            raise BatchRefused("no certificate chain")
        if chain[0] not in self._trusted:
            signer = self.ssl.der_to_pem(chain[0])
            cmd = ["verify", "-vfyopt", DISTID, "-CAfile", self.anchor]
            if len(chain) > 1:
                rest = b"".join((self.ssl.dir / self.ssl.der_to_pem(c)).read_bytes() for c in chain[1:])
                cmd += ["-untrusted", self.ssl.file(rest, ".pem")]
            if self.ssl.run(*cmd, signer, check=False).returncode != 0:
                raise BatchRefused("signer certificate does not chain to the anchor")
            self._trusted[chain[0]] = self.ssl.cert_pubkey(signer)
        public = self._trusted[chain[0]]
        if self.ssl.key_id(public) != block["keyId"]:
            raise BatchRefused("keyId is not the certificate's key")
        return public

    def verify(self, envelope: dict) -> dict:
        payload, block = envelope["payload"], envelope["signature"]
        if set(payload) != MEMBERS:
            raise BatchRefused(f"members {sorted(set(payload) ^ MEMBERS)}")
        message = signing_input(envelope)
        if block["algorithm"] == "SM2-with-SM3-prehash":  # verifiers MUST accept both (§2.2)
            message = self.ssl.run("dgst", "-sm3", "-binary", input=message).stdout
        elif block["algorithm"] != "SM2-with-SM3":
            raise BatchRefused(f"algorithm {block['algorithm']}")
        public = self._signer_key(block)
        if not self.ssl.verify(public, base64.b64decode(block["value"]), message):
            raise BatchRefused(f"signature of batch {payload['sequenceNumber']}")
        # §1: shape of the columns
        step, seconds = STEPS[payload["granularity"]]
        count = payload["count"]
        if payload["step"] != step or len(payload["values"]) != count or len(payload["flags"]) != count:
            raise BatchRefused("columns do not match count/step")
        for value, flag in zip(payload["values"], payload["flags"]):
            if value and not DECIMAL.match(value):
                raise BatchRefused(f"value {value!r}")
            if flag in "NSCT" and not value or flag == "B" and value:
                raise BatchRefused(f"flag {flag} with value {value!r}")  # R-ACQ-001 / R-ACQ-005
        if not (UTC.match(payload["start"]) and UTC.match(payload["sealedAt"])):
            raise BatchRefused("start/sealedAt not canonical UTC")
        # §1.5: a batch never crosses a local midnight (minute, hour) or a local month start (day)
        first = _instant(payload["start"]).astimezone(self.zone)
        last = (_instant(payload["start"]) + dt.timedelta(seconds=(count - 1) * seconds)).astimezone(self.zone)
        if (first.year, first.month) != (last.year, last.month) or payload["granularity"] != "day" and first.day != last.day:
            raise BatchRefused(f"batch {payload['sequenceNumber']} crosses a local day or month boundary")
        # §3: the hash chain and contiguity
        if payload["pointId"] != self.point or payload["granularity"] != self.granularity:
            raise BatchRefused("another point or granularity")
        start = _instant(payload["start"])
        if self.head is None:
            if payload["sequenceNumber"] == 1 and payload["previousBatchDigest"] != GENESIS:
                raise BatchRefused("first batch without the genesis digest")
        else:
            if payload["sequenceNumber"] != self.head.sequence + 1:
                raise BatchRefused(f"sequence {payload['sequenceNumber']} after {self.head.sequence}")
            if payload["previousBatchDigest"] != self.head.digest:
                raise BatchRefused(f"previousBatchDigest of batch {payload['sequenceNumber']}")
            if start != self.head.end:
                raise BatchRefused(f"batch {payload['sequenceNumber']} does not abut its predecessor")
        digest = self.ssl.sm3(canonical_payload(payload))
        self.head = ChainHead(payload["sequenceNumber"], digest, start + dt.timedelta(seconds=count * seconds))
        return payload


def next_link(header: str) -> str | None:
    """RFC 8288: the target of rel="next"."""
    for part in header.split(","):
        m = re.match(r'\s*<([^>]*)>\s*;(.*)$', part)
        if m and re.search(r'rel="?next"?', m.group(2)):
            return m.group(1)
    return None


def pull(base_url: str, token: str, reader: BatchReader, start: str, end: str, limit: int = 7) -> list[dict]:
    """§4: every page of [start, end), verified as it arrives; pages followed by nextCursor,
    which must name the same page as the Link header."""
    query = urllib.parse.urlencode({"granularity": reader.granularity, "from": start, "to": end, "limit": limit})
    url = f"{base_url}/v1/acquisition/points/{urllib.parse.quote(reader.point, safe='')}/batches?{query}"
    out: list[dict] = []
    while url:
        answer = http("GET", url, {"Authorization": f"Bearer {token}", "Accept": "application/json"})
        assert answer.status == 200, (answer.status, answer.body[:300])
        page = answer.json()
        assert page["pointId"] == reader.point and page["granularity"] == reader.granularity
        out += [reader.verify(item) for item in page["items"]]
        cursor = page.get("nextCursor")
        link = next_link(answer.headers.get("link", ""))
        assert (cursor is None) == (link is None), (cursor, link)
        if cursor is None:
            break
        assert dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query))["cursor"] == cursor
        url = f"{base_url}/v1/acquisition/points/{urllib.parse.quote(reader.point, safe='')}/batches?{query}&" \
              + urllib.parse.urlencode({"cursor": cursor})
    return out
