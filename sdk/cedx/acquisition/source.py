"""The reference acquisition source: the generated AcquisitionService over a simulation.

Batches: minute data in hourly batches, hourly data in daily batches, daily data in monthly
batches; each (point, granularity) is one hash chain from the commissioning date, sealed in
order (digests cached) and signed by the source's key when served. Hourly and daily values are
averages of the valid minutes (flags N, S, C, T); an hour with under 75 % valid minutes carries
the dominant other flag. Only periods that have ended are served.
"""

from __future__ import annotations

import base64
import calendar
import datetime as dt
import threading
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal

from .. import trust
from ..generated.server import AcquisitionService, Reply
from ..instants import CST as SITES_TZ
from ..instants import iso_z as _iso
from ..instants import parse_instant as _parse
from ..runtime.errors import Problem
from ..trust import chain
from .simulate import SITES, UTC, PointModel

VALID = {"N", "S", "C", "T"}
SPEC_VERSION = "1.0"


def _month_end(t: dt.datetime) -> dt.datetime:
    days = calendar.monthrange(t.year, t.month)[1]
    return t + dt.timedelta(days=days)


class Source(AcquisitionService):
    def __init__(self, site: str, key: trust.SM2PrivateKey, certificate_chain: list[bytes], *,
                 commissioned: dt.datetime, seed: str = "cedx", source_id: str | None = None,
                 operator: str = "91320500MA1X2P3Q4R", clock=None):
        self.site, self.key, self.chain, self.seed = site, key, certificate_chain, seed
        self.commissioned = commissioned.astimezone(UTC)
        self.source_id = source_id or f"SRC-{site.upper()}-01"
        self.operator = operator
        self.points: dict[str, PointModel] = {p.point_id: p for p in SITES[site](commissioned)}
        self._digests: dict[tuple[str, str], list[str]] = {}
        self._lock = threading.Lock()
        self.clock = clock or (lambda: dt.datetime.now(UTC))

    def add_synthetic_points(self, n: int, template: str | None = None) -> None:
        """Load tests: n more points, copies of a template point with their own IDs and data."""
        base = self.points[template or sorted(self.points)[0]]
        for i in range(n):
            pid = f"SYN-{i:03d}"
            self.points[pid] = PointModel(pid, f"{base.name} #{i}", base.measurand, base.unit, base.total_unit,
                                          base.per_hour, base.mean, base.amplitude, base.noise, base.upper,
                                          base.decimals, [], base.instrument)

    # --- documents ------------------------------------------------------------------------
    def get_source_info(self, ctx):
        return {"specVersion": SPEC_VERSION, "sourceId": self.source_id,
                "name": f"参考数据源（{self.site}） / reference source ({self.site})", "systemType": "energy_metering",
                "operatorCreditCode": self.operator,
                "signingCertificates": [base64.b64encode(c).decode() for c in self.chain],
                "granularities": ["minute", "hour", "day"]}

    def _point_doc(self, p: PointModel) -> dict:
        doc = {"specVersion": SPEC_VERSION, "pointId": p.point_id, "name": p.name, "measurand": p.measurand, "unit": p.unit}
        if p.facility_id:
            doc["facilityId"] = p.facility_id
        if p.source_id:
            doc["emissionSourceId"] = p.source_id
        if p.hj212:
            doc["hj212Code"] = p.hj212
        doc["instrument"] = p.instrument
        return doc

    def _point(self, point_id: str) -> PointModel:
        if point_id not in self.points:
            raise Problem("NOT_FOUND", f"no metering point {point_id}")
        return self.points[point_id]

    def list_metering_points(self, ctx, *, limit, cursor):
        ids = sorted(self.points)
        start = ids.index(cursor) + 1 if cursor in ids else 0
        page = ids[start:start + (limit or 50)]
        out = {"specVersion": SPEC_VERSION, "items": [self._point_doc(self.points[i]) for i in page]}
        if start + len(page) < len(ids):
            out["nextCursor"] = page[-1]
        return out

    def get_metering_point(self, ctx, *, point_id):
        return self._point_doc(self._point(point_id))

    # --- series ---------------------------------------------------------------------------
    def _minutes(self, p: PointModel, start: dt.datetime, end: dt.datetime):
        t = start
        while t < end:
            yield t, *p.sample(self.seed, t)
            t += dt.timedelta(minutes=1)

    def _aggregate(self, p: PointModel, start: dt.datetime, end: dt.datetime) -> tuple[Decimal | None, str, int, int]:
        values, flags, n = [], Counter(), 0
        for _, v, f in self._minutes(p, start, end):
            n += 1
            flags[f] += 1
            if f in VALID and v is not None:
                values.append(v)
        if not values:
            other = max((f for f in flags if f not in VALID), key=lambda f: flags[f], default="B")
            return None, other, 0, n
        avg = (sum(values) / len(values)).quantize(Decimal(1).scaleb(-p.decimals), ROUND_HALF_UP)
        if len(values) < 0.75 * n:
            other = max((f for f in flags if f not in VALID), key=lambda f: flags[f])
            return avg, other, len(values), n
        return avg, "N", len(values), n

    def _period(self, granularity: str, seq: int) -> tuple[dt.datetime, dt.datetime]:
        if granularity == "minute":
            start = self.commissioned + dt.timedelta(hours=seq - 1)
            return start, start + dt.timedelta(hours=1)
        if granularity == "hour":
            start = self.commissioned + dt.timedelta(days=seq - 1)
            return start, start + dt.timedelta(days=1)
        start = self.commissioned
        for _ in range(seq - 1):
            start = _month_end(start)
        return start, _month_end(start)

    def _payload(self, p: PointModel, granularity: str, seq: int, previous: str) -> dict:
        start, end = self._period(granularity, seq)
        values = []
        if granularity == "minute":
            for t, v, f in self._minutes(p, start, end):
                values.append({"time": _iso(t), **({"value": str(v)} if v is not None else {}), "flag": f})
        else:
            step = dt.timedelta(hours=1) if granularity == "hour" else dt.timedelta(days=1)
            t = start
            while t < end:
                v, f, _valid, _n = self._aggregate(p, t, t + step)
                values.append({"time": _iso(t), **({"value": str(v)} if v is not None and f in VALID else {}), "flag": f})
                t += step
        return {"sourceId": self.source_id, "pointId": p.point_id, "granularity": granularity, "unit": p.unit,
                "periodStart": _iso(start), "periodEnd": _iso(end), "sequenceNumber": seq,
                "previousBatchDigest": previous, "sealedAt": _iso(end + dt.timedelta(minutes=5)), "values": values}

    def batch(self, point_id: str, granularity: str, seq: int) -> dict:
        """The payload of batch ``seq`` (sealing every earlier batch of the chain first)."""
        p = self._point(point_id)
        with self._lock:
            digests = self._digests.setdefault((point_id, granularity), [])
            while len(digests) < seq:
                k = len(digests) + 1
                previous = digests[-1] if digests else chain.GENESIS_DIGEST
                digests.append(chain.batch_digest(self._payload(p, granularity, k, previous)))
            previous = digests[seq - 2] if seq > 1 else chain.GENESIS_DIGEST
        return self._payload(p, granularity, seq, previous)

    def list_measurement_batches(self, ctx, *, point_id, granularity, from_, to, limit, cursor):
        p = self._point(point_id)
        if granularity not in ("minute", "hour", "day"):
            raise Problem("INVALID_PARAMETER", f"granularity {granularity} is not offered (minute, hour, day)")
        start, end = _parse(from_), min(_parse(to), self.clock())
        if start < self.commissioned:
            start = self.commissioned
        seq = int(cursor) if cursor and cursor.isdigit() else 1
        # Skip ahead to the first batch that ends after `start`.
        while self._period(granularity, seq)[1] <= start:
            seq += 1 if granularity != "minute" else max(1, int((start - self._period(granularity, seq)[1]).total_seconds() // 3600))
        items, limit = [], limit or 24
        while len(items) < limit:
            b_start, b_end = self._period(granularity, seq)
            if b_start >= end or b_end > self.clock():
                break
            payload = self.batch(p.point_id, granularity, seq)
            items.append(trust.sign_document(payload, self.key, certificate_chain=self.chain,
                                             envelope_fields={"specVersion": SPEC_VERSION}))
            seq += 1
        out = {"specVersion": SPEC_VERSION, "pointId": point_id, "granularity": granularity, "items": items}
        b_start, b_end = self._period(granularity, seq)
        if items and b_start < end and b_end <= self.clock():
            out["nextCursor"] = str(seq)
        return Reply(out)

    def get_period_statistics(self, ctx, *, point_id, period_type, from_, to):
        p = self._point(point_id)
        start, end = _parse(from_), min(_parse(to), self.clock())
        items, t = [], start
        while t < end:
            nxt = t + dt.timedelta(days=1) if period_type == "day" else _month_end(t)
            values, n = [], 0
            for _, v, f in self._minutes(p, t, min(nxt, end)):
                n += 1
                if f in VALID and v is not None:
                    values.append(v)
            item = {"period": t.astimezone(SITES_TZ).strftime("%Y-%m-%d" if period_type == "day" else "%Y-%m"),
                    "validCount": len(values), "expectedCount": max(n, 1),
                    "coverage": str((Decimal(len(values)) / max(n, 1)).quantize(Decimal("0.000001"), ROUND_HALF_UP))}
            if values:
                q = Decimal(1).scaleb(-p.decimals)
                if p.total_unit != p.unit:
                    item["total"] = str((sum(values) * p.per_hour).quantize(q, ROUND_HALF_UP))
                item.update({"average": str((sum(values) / len(values)).quantize(q, ROUND_HALF_UP)),
                             "minimum": str(min(values)), "maximum": str(max(values))})
            items.append(item)
            t = nxt
        payload = {"sourceId": self.source_id, "pointId": point_id, "periodType": period_type,
                   "unit": p.total_unit if p.total_unit != p.unit else p.unit,
                   "generatedAt": _iso(self.clock()), "items": items}
        return trust.sign_document(payload, self.key, certificate_chain=self.chain, envelope_fields={"specVersion": SPEC_VERSION})
