"""The reference acquisition source: the generated AcquisitionService over a SealedStore.

Every batch is sealed (signed, chained) once when written into the store — by the simulation
of a site, the HJ 212 bridge or any other writer — and answered as stored: a page of batches
is the stored envelope bytes streamed one after another, never re-encoded or re-signed. Daily
and monthly statistics are computed from the sealed minute series, within the maximum range
the spec declares, and the computation stops when the client goes away or the server stops.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast
from urllib.parse import urlencode, urlsplit

from starlette.responses import Response, StreamingResponse

from .. import trust
from ..generated.constants import SPEC_VERSION
from ..generated.server import AcquisitionService, Reply
from ..instants import INSTANT_PATTERN
from ..runtime.errors import Problem
from ..runtime.server import RequestContext
from .batches import COUNTS_AS_VALID, STEP_SECONDS, Signer, utc_text
from .confidential import ConfidentialMode
from .simulate import Simulation
from .store import SealedStore

UTC = dt.timezone.utc
MAX_RANGE_DAYS = {"minute": 92, "hour": 366, "day": 3660}           # spec: x-cedx-max-range
MAX_STATISTICS_DAYS = {"day": 366, "month": 366}
DEFAULT_PAGE, MAX_PAGE = 7, 100
GRANULARITIES = {"minute": ("minute", "hour", "day"), "hour": ("hour", "day")}   # base -> served (derived)
# Rate units whose minute values integrate to a total: unit -> (total unit, factor per minute).
TOTALS = {"t/h": ("t", Decimal(1) / 60), "MW": ("MWh", Decimal(1) / 60), "kW": ("kWh", Decimal(1) / 60),
          "GJ/h": ("GJ", Decimal(1) / 60), "Nm3/h": ("Nm3", Decimal(1) / 60), "m3/h": ("m3", Decimal(1) / 60)}


def parse_instant(name: str, text: str) -> int:
    """A query instant as epoch seconds; an impossible date (year 0, month 13) is the client's
    mistake (400), never a server error."""
    if not isinstance(text, str) or not INSTANT_PATTERN.match(text):
        raise Problem("INVALID_PARAMETER", f"query parameter {name}: not an RFC 3339 instant with an offset")
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise Problem("INVALID_PARAMETER", f"query parameter {name}: invalid date or time ({exc})") from None
    if t.year < 1000:
        raise Problem("INVALID_PARAMETER", f"query parameter {name}: years before 1000 are not served")
    return int(t.timestamp())


class Source(ConfidentialMode, AcquisitionService):
    def __init__(self, store: SealedStore, signer: Signer, *, name: str, simulation: Simulation | None = None,
                 operator: str = "91320500MA1X2P3Q4R", clock: Callable[[], dt.datetime] | None = None,
                 system_type: str = "energy_metering"):
        self.store, self.signer, self.name, self.simulation = store, signer, name, simulation
        self.source_id = signer.source_id
        self.operator, self.system_type = operator, system_type
        self.public_url: str | None = None   # the announced base URL (Link headers point there)
        self.clock = clock or (lambda: dt.datetime.now(UTC))
        self.stopping = threading.Event()
        self.abandoned = 0                      # statistics requests stopped early (client gone)
        self._write_lock = threading.Lock()
        self._written = 0                       # the simulation has written everything before this
        self._points: dict[str, tuple[float, tuple[dict[str, Any], str, int]]] = {}
        if simulation is not None:
            simulation.register(store)

    # --- keeping the store current --------------------------------------------------------
    def catch_up(self, until: int | None = None) -> None:
        """Let the simulation write (and seal) everything up to ``until`` (epoch; at most now).
        Writers other than the simulation seal on their own; the source only reads what they
        stored."""
        if self.simulation is not None:
            now = int(self.clock().timestamp())
            target = (min(until, now) if until is not None else now) // 60 * 60
            if target <= self._written:   # already there: no database round trips
                return
            with self._write_lock:
                self.simulation.write(self.store, target)
                self._written = max(self._written, target)

    # --- documents ------------------------------------------------------------------------
    def get_source_info(self, ctx: RequestContext) -> Any:
        return {"specVersion": SPEC_VERSION, "sourceId": self.source_id, "name": self.name,
                "systemType": self.system_type, "operatorCreditCode": self.operator,
                "signingCertificates": [base64.b64encode(c).decode() for c in self.signer.certificate_chain],
                "granularities": ["minute", "hour", "day"]}

    def _doc(self, point_id: str) -> tuple[dict[str, Any], str, int]:
        """(document, base granularity, since), remembered for a few seconds: base and since
        never change, and a renamed instrument may take that long to show."""
        now = time.monotonic()
        hit = self._points.get(point_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        info = self.store.point_info(point_id)
        if info is None:
            raise Problem("NOT_FOUND", f"no metering point {point_id}")
        if len(self._points) > 10000:
            self._points.clear()
        self._points[point_id] = (now + 5, info)
        return info

    def list_metering_points(self, ctx: RequestContext, *, limit: int | None, cursor: str | None) -> Any:
        docs = self.store.points()
        ids = [d["pointId"] for d in docs]
        start = ids.index(cursor) + 1 if cursor in ids else 0
        if cursor is not None and cursor not in ids:
            raise Problem("INVALID_PARAMETER", "query parameter cursor: not a cursor of this listing")
        page = docs[start:start + (limit or 50)]
        out = {"specVersion": SPEC_VERSION, "items": page}
        headers = {}
        if start + len(page) < len(docs):
            out["nextCursor"] = page[-1]["pointId"]
            headers["Link"] = _link(ctx, {"cursor": out["nextCursor"]}, self.public_url)
        return Reply(out, headers=headers)

    def get_metering_point(self, ctx: RequestContext, *, point_id: str) -> Any:
        return self._doc(point_id)[0]

    # --- batches --------------------------------------------------------------------------
    def _range(self, name: str, from_: str, to: str, limit_days: int, since: int) -> tuple[int, int]:
        start, end = parse_instant("from", from_), parse_instant("to", to)
        if end <= start:
            raise Problem("INVALID_PARAMETER", "query parameter to must be later than from")
        if end - start > limit_days * 86400:
            raise Problem("INVALID_PARAMETER", f"the range exceeds {limit_days} days, the maximum for {name}")
        return max(start, since), end

    def list_measurement_batches(self, ctx: RequestContext, *, point_id: str, granularity: str, from_: str, to: str,
                                 limit: int | None, cursor: str | None) -> Any:
        _, base, since = self._doc(point_id)
        offered = GRANULARITIES[base]
        if granularity not in offered:
            raise Problem("INVALID_PARAMETER", f"granularity {granularity} is not offered for {point_id} "
                                               f"({', '.join(offered)})")
        start, end = self._range(granularity, from_, to, MAX_RANGE_DAYS[granularity], since)
        if limit is not None and not 1 <= limit <= MAX_PAGE:
            raise Problem("INVALID_PARAMETER", f"query parameter limit must be 1..{MAX_PAGE}")
        if cursor is not None and not (cursor.isdigit() and len(cursor) <= 10):
            raise Problem("INVALID_PARAMETER", "query parameter cursor: not a cursor of this listing")
        self.catch_up(end)
        size = limit or DEFAULT_PAGE
        after = int(cursor) if cursor else 0
        found = self.store.batches(point_id, granularity, start, end, after_seq=after, limit=size + 1) if start < end else []
        page, more = found[:size], len(found) > size
        head = {"specVersion": SPEC_VERSION, "pointId": point_id, "granularity": granularity}
        headers = dict(ctx.response_headers)
        if more:
            headers["Link"] = _link(ctx, {"cursor": str(page[-1].seq)}, self.public_url)
        if ctx.format != "application/json":   # XML: through the codec (the stored bytes are JSON)
            record = {**head, "items": [json.loads(b.envelope) for b in page]}
            if more:
                record["nextCursor"] = str(page[-1].seq)
            return Reply(record, headers=headers)

        def body() -> Iterator[bytes]:
            # Stored bytes go out as they are, in chunks of ~256 KiB (small writes would meet
            # delayed ACKs; one huge write would hold the whole page twice).
            chunk = [json.dumps(head, separators=(",", ":"))[:-1].encode() + b',"items":[']
            size = 0
            for i, b in enumerate(page):
                if self.stopping.is_set() or _disconnected(ctx):
                    return
                chunk.append((b"," if i else b"") + b.envelope)
                size += len(b.envelope)
                if size >= 262144:
                    yield b"".join(chunk)
                    chunk, size = [], 0
            chunk.append(b"]" + (f',"nextCursor":"{page[-1].seq}"'.encode() if more else b"") + b"}")
            yield b"".join(chunk)

        if sum(len(b.envelope) for b in page) < 262144:   # a small page: one write with Content-Length
            return Response(b"".join(body()), media_type="application/json; charset=utf-8", headers=headers)
        return StreamingResponse(body(), media_type="application/json; charset=utf-8", headers=headers)

    # --- statistics -----------------------------------------------------------------------
    def get_period_statistics(self, ctx: RequestContext, *, point_id: str, period_type: str, from_: str, to: str) -> Any:
        doc, base, since = self._doc(point_id)
        start, end = self._range(f"{period_type} statistics", from_, to, MAX_STATISTICS_DAYS[period_type], since)
        self.catch_up(end)
        sealed = self.store.sealed_until(point_id, base) or since
        end = min(end, sealed)
        unit = doc["unit"]
        total_unit, per_step = TOTALS.get(unit, (None, None))
        if base == "hour" and per_step is not None:
            per_step = per_step * 60
        step = STEP_SECONDS[base]
        items, t = [], self.store.floor("day", start) if start < end else end
        while t < end:
            nxt = t + 86400 if period_type == "day" else self.store._month_next(t)
            lo, hi = max(t, start), min(nxt, end)
            if self.stopping.is_set() or _disconnected(ctx):
                self.abandoned += 1
                raise Problem("SERVICE_UNAVAILABLE", "the request was abandoned (client gone or server stopping)")
            values, n = [], 0
            for _, v, f in self.store.iter_values(point_id, base, lo, hi):
                n += 1
                if f in COUNTS_AS_VALID and v != "":  # N only: S, C, T values are gaps
                    values.append(Decimal(v))
            n = max(n, (hi - lo) // step, 1)
            local = dt.datetime.fromtimestamp(t + self.store.offset, UTC)
            period = f"{local.year:04d}-{local.month:02d}" + (f"-{local.day:02d}" if period_type == "day" else "")
            item = {"period": period, "validCount": len(values), "expectedCount": n,
                    "coverage": str((Decimal(len(values)) / n).quantize(Decimal("0.000001"), ROUND_HALF_UP))}
            if values:
                places = max(-cast(int, v.as_tuple().exponent) for v in values)
                q = Decimal(1).scaleb(-max(places, 0))
                if per_step is not None:
                    item["total"] = str((sum(values, Decimal(0)) * per_step).quantize(q, ROUND_HALF_UP))
                item.update({"average": str((sum(values, Decimal(0)) / len(values)).quantize(q, ROUND_HALF_UP)),
                             "minimum": str(min(values)), "maximum": str(max(values))})
            items.append(item)
            t = nxt
        payload = {"sourceId": self.source_id, "pointId": point_id, "periodType": period_type,
                   "unit": total_unit or unit, "generatedAt": utc_text(int(self.clock().timestamp())), "items": items}
        return trust.sign_document(payload, self.signer.key, certificate_chain=self.signer.certificate_chain,
                                   envelope_fields={"specVersion": SPEC_VERSION},
                                   algorithm=trust.ALGORITHM)  # as the platform's answers


def _disconnected(ctx: RequestContext) -> bool:
    flag = ctx.request.scope.get("cedx.disconnected")
    return bool(flag is not None and flag.is_set())


def _link(ctx: RequestContext, changes: dict[str, Any], public_url: str | None = None) -> str:
    """RFC 8288 Link to the next page: the same request with the new cursor, at the announced
    base URL when there is one (behind a proxy the received URL names the proxy's backend and
    lacks the base URL's path, docs/trust-profile.md §11)."""
    query = dict(ctx.request.query_params)
    query.update(changes)
    if not public_url:
        return f'<{ctx.request.url.replace(query=urlencode(query))}>; rel="next"'
    base = public_url.rstrip("/")
    prefix, path = urlsplit(base).path, ctx.request.url.path
    if prefix and path.startswith(prefix + "/"):
        path = path[len(prefix):]
    return f'<{base}{path}?{urlencode(query)}>; rel="next"'
