"""SealedStore: where an acquisition source keeps its data, sealed once, served as stored.

Writers (the simulation, the HJ 212 bridge, any gateway) register metering points and append
readings; ``seal`` turns the readings of a point up to an instant into signed, hash-chained
columnar batches (cedx.acquisition.batches) and stores each batch's envelope bytes once. The
source answers requests straight from those bytes: nothing is recomputed or re-signed per
request. SQLite by path, PostgreSQL (or any SQLAlchemy URL) by URL.

Usage (a writer)::

    store = SealedStore("source.db", signer=Signer("SRC-01", key, [cert_der, ca_der]))
    store.register_point(metering_point_document, since=commissioning_instant)
    store.append("CEMS-CO2", [Reading(t, Decimal("231000"), "N"), ...])   # minute readings
    store.seal(until=now - dt.timedelta(minutes=2))                        # all points

Rules (normative text in docs/trust-batches.md):

* Each point has a base granularity (``minute`` or ``hour``); writers append at that step, on
  step boundaries, at or after the point's ``since`` (its commissioning, aligned to a local
  midnight of the source's time zone). Coarser series are derived when sealing: hourly values
  from minutes, daily values from hours: the mean of the valid values — flag N only (spec
  QualityFlag: S, C, T carry a number that is not valid data) — flagged N; under 75 % valid
  gives the dominant other flag, so the gap shows at the coarser step and the accounting step
  substitutes it (R-GAP-002); the value is then the mean of the values with that flag when it
  carries one (S, C, T; rule R-ACQ-001), otherwise none.
* ``seal(until)`` seals every instant before ``until`` (floored to the step) that is not yet
  sealed: a reading that never arrived is sealed as flag B with no value. Batches never cross
  a local midnight (minute, hour) or local month start (day), so a batch holds at most 1,440
  values; sealing in real time gives shorter batches, sealing after the fact whole days.
* A reading for an instant already sealed is refused (counted in ``AppendResult.late``): a
  sealed batch never changes. A reading appended again for an unsealed instant replaces the
  earlier one (``duplicates`` counts identical repeats, e.g. a re-sent HJ 212 packet).
* Sealing is atomic per chain: a concurrent sealer (another process) makes one of them fail
  with ``SealConflict`` and nothing half-written remains; call seal again.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    and_,
    create_engine,
    delete,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection

from .batches import (
    CARRIES_VALUE,
    COUNTS_AS_VALID,
    FLAGS,
    GENESIS,
    STEP_CODES,
    STEP_SECONDS,
    VALUES_RE,
    WITHOUT_VALUE,
    Signer,
    utc_text,
)

UTC = dt.timezone.utc
COARSER = {"minute": "hour", "hour": "day"}
BASES = ("minute", "hour")

metadata = MetaData()
points_t = Table("acq_points", metadata,
                 Column("point_id", String(64), primary_key=True),
                 Column("base", String(8), nullable=False),
                 Column("since", BigInteger, nullable=False),
                 Column("document", Text, nullable=False))
pending_t = Table("acq_pending", metadata,
                  Column("point_id", String(64), primary_key=True),
                  Column("granularity", String(8), primary_key=True),
                  Column("t", BigInteger, primary_key=True),
                  Column("value", String(40), nullable=False),     # "" = no value
                  Column("flag", String(1), nullable=False))
heads_t = Table("acq_heads", metadata,
                Column("point_id", String(64), primary_key=True),
                Column("granularity", String(8), primary_key=True),
                Column("seq", Integer, nullable=False),
                Column("digest", String(64), nullable=False),
                Column("next_start", BigInteger, nullable=False))
batches_t = Table("acq_batches", metadata,
                  Column("point_id", String(64), primary_key=True),
                  Column("granularity", String(8), primary_key=True),
                  Column("seq", Integer, primary_key=True),
                  Column("start", BigInteger, nullable=False),
                  Column("end", BigInteger, nullable=False, index=True),
                  Column("digest", String(64), nullable=False),
                  Column("envelope", LargeBinary, nullable=False))


class SealConflict(RuntimeError):
    """Another sealer advanced the chain concurrently; nothing was written. Seal again."""


@dataclass(frozen=True)
class Reading:
    time: dt.datetime | int          # aware datetime or epoch seconds, on a step boundary
    value: Decimal | str | None      # None (or "") = no value
    flag: str = "N"


@dataclass(frozen=True)
class AppendResult:
    accepted: int
    duplicates: int
    late: int                        # instants already sealed: refused


@dataclass(frozen=True)
class StoredBatch:
    seq: int
    start: int
    end: int
    digest: str
    envelope: bytes


def _epoch(t: dt.datetime | int) -> int:
    if isinstance(t, int):
        return t
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError("naive datetime (no UTC offset)")
    return int(t.timestamp())


def _value_text(v: Decimal | str | None) -> str:
    if v is None or v == "":
        return ""
    if isinstance(v, Decimal):
        if not v.is_finite():
            raise ValueError(f"value {v} is not finite")
        text = format(v, "f")
    elif isinstance(v, str):
        text = v
    else:
        raise ValueError(f"value {v!r}: use Decimal or a decimal string (binary floats are refused)")
    if not VALUES_RE.fullmatch(text):
        raise ValueError(f"value {text!r} is not a decimal string")
    return text


def _flag_check(document: dict[str, Any]) -> Callable[[int, str, str], None]:
    """Flag/value agreement at the source (rules R-ACQ-001/005/006, cedx.accounting.flags): a base
    reading flagged N must lie in the instrument's measuring range, T at or above its upper limit,
    and B carries no value. Readings that disagree are refused before they can be sealed."""
    from ..accounting import flags

    rng = (document.get("instrument") or {}).get("range") or {}
    if not rng or rng.get("unit") != document.get("unit"):
        return lambda t, text, f: None  # no comparable range: only the value/flag presence rules apply
    lower, upper = Decimal(rng["lower"]), Decimal(rng["upper"])

    def check(t: int, text: str, f: str) -> None:
        # fast path first (the bulk writers call this per minute); the message comes from flags.check
        if f == "N":
            if text and lower <= Decimal(text) <= upper:
                return
        elif f == "T":
            if text and Decimal(text) >= upper:
                return
        elif f != "B" or not text:
            return
        bad = flags.check([(utc_text(t), Decimal(text) if text else None, f)], lower, upper)
        if bad:
            raise ValueError(f"{utc_text(t)}: {bad[0].rule} {bad[0].message}")
    return check


def _mean(values: list[str]) -> str:
    """Mean at the inputs' precision (half up)."""
    places = max((len(v) - v.index(".") - 1 if "." in v else 0) for v in values)
    mean = sum((Decimal(v) for v in values), Decimal(0)) / len(values)
    return format(mean.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP), "f")


def _aggregate(cells: list[tuple[str, str]], expected: int) -> tuple[str, str]:
    """One value of a coarser period (see the module doc), as (value, flag): the mean of the valid
    (N) values if they are at least 75 % of the expected ones; otherwise the period takes the
    dominant other flag, and — when that flag carries a number (S, C, T: rule R-ACQ-001) — the
    mean of the values so flagged, which stays invalid data (a gap for accounting)."""
    valid = [v for v, f in cells if f in COUNTS_AS_VALID and v != ""]
    if valid and len(valid) >= 0.75 * expected:
        return _mean(valid), "N"
    flags = Counter(f for _, f in cells)
    flags["B"] += expected - len(cells)                    # instants without a reading
    others = {f: n for f, n in flags.items() if f not in COUNTS_AS_VALID and n}
    flag = max(others, key=lambda f: (others[f], f)) if others else "B"
    flagged = [v for v, f in cells if f == flag and v != ""]
    if flag in CARRIES_VALUE and flagged:
        return _mean(flagged), flag    # e.g. T: the mean of over-range values is at or above the limit (R-ACQ-006)
    return "", flag


class SealedStore:
    def __init__(self, url: str | Path, *, signer: Signer | None = None, utc_offset_hours: int = 8):
        url = str(url)
        if "://" not in url:
            Path(url).parent.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{url}"
        self.engine = create_engine(url, future=True)
        if url.startswith("sqlite"):
            @event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")   # sealed data is re-creatable from readings
                cur.execute("PRAGMA busy_timeout=10000")
                cur.close()
        metadata.create_all(self.engine)
        self.signer = signer
        self.offset = utc_offset_hours * 3600
        self._lock = threading.Lock()

    # --- calendar of the source's time zone -------------------------------------------------
    def _day_floor(self, t: int) -> int:
        return (t + self.offset) // 86400 * 86400 - self.offset

    def _month_next(self, t: int) -> int:
        local = dt.datetime.fromtimestamp(t + self.offset, UTC)
        nxt = (local.replace(day=1) + dt.timedelta(days=32)).replace(day=1, hour=0, minute=0, second=0)
        return int(nxt.timestamp()) - self.offset

    def floor(self, granularity: str, t: int) -> int:
        return self._day_floor(t) if granularity == "day" else t // STEP_SECONDS[granularity] * STEP_SECONDS[granularity]

    def _split(self, granularity: str, t: int) -> int:
        """The first boundary after t that a batch may not cross."""
        return self._month_next(t) if granularity == "day" else self._day_floor(t) + 86400

    # --- points -----------------------------------------------------------------------------
    def register_point(self, document: dict[str, Any], *, since: dt.datetime | int, base: str = "minute") -> None:
        """Register (or update the description of) a metering point. ``document`` is its
        MeteringPoint record; ``since`` (commissioning) is fixed at the first registration."""
        if base not in BASES:
            raise ValueError(f"base granularity must be one of {BASES}")
        start = _epoch(since)
        if self._day_floor(start) != start:
            raise ValueError("since must be a local midnight of the source's time zone")
        from .. import spec

        issues = spec.validator().validate("MeteringPoint", document)
        if issues:  # served as is: it must conform
            raise ValueError("not a valid MeteringPoint: " + "; ".join(f"{i.path}: {i.message}" for i in issues[:5]))
        pid = document["pointId"]
        text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
        with self.engine.begin() as c:
            row = c.execute(select(points_t.c.base).where(points_t.c.point_id == pid)).first()
            if row is None:
                c.execute(insert(points_t).values(point_id=pid, base=base, since=start, document=text))
                grans = [base]
                while grans[-1] in COARSER:
                    grans.append(COARSER[grans[-1]])
                # the chain heads exist from the start, so writers and sealers only ever lock them
                c.execute(insert(heads_t), [{"point_id": pid, "granularity": g, "seq": 0, "digest": GENESIS,
                                             "next_start": start} for g in grans])
            elif row.base != base:
                raise ValueError(f"point {pid} already has base granularity {row.base}")
            else:
                c.execute(update(points_t).where(points_t.c.point_id == pid).values(document=text))

    def points(self) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            rows = c.execute(select(points_t.c.document).order_by(points_t.c.point_id)).all()
        return [json.loads(r.document) for r in rows]

    def point_info(self, point_id: str) -> tuple[dict[str, Any], str, int] | None:
        """(document, base granularity, since) or None."""
        with self.engine.connect() as c:
            r = c.execute(select(points_t).where(points_t.c.point_id == point_id)).first()
        return None if r is None else (json.loads(r.document), r.base, r.since)

    def granularities(self, point_id: str) -> list[str]:
        info = self.point_info(point_id)
        if info is None:
            return []
        out = [info[1]]
        while out[-1] in COARSER:
            out.append(COARSER[out[-1]])
        return out

    # --- writing ----------------------------------------------------------------------------
    def append(self, point_id: str, readings: Iterable[Reading | tuple[Any, ...]], *, granularity: str | None = None) -> AppendResult:
        """Add readings (at the point's base granularity) that are not yet sealed."""
        info = self.point_info(point_id)
        if info is None:
            raise KeyError(f"no metering point {point_id}; register it first")
        _, base, since = info
        gran = granularity or base
        if gran != base:
            raise ValueError(f"point {point_id} takes {base} readings ({gran} values are derived)")
        step = STEP_SECONDS[gran]
        in_range = _flag_check(info[0])
        rows: dict[int, tuple[str, str]] = {}
        for r in readings:
            t_, v, f = (r.time, r.value, r.flag) if isinstance(r, Reading) else r
            t = _epoch(t_)
            if t % step:
                raise ValueError(f"{utc_text(t)} is not on a {gran} boundary")
            if t < since:
                raise ValueError(f"{utc_text(t)} is before the point's commissioning {utc_text(since)}")
            if f not in FLAGS or len(f) != 1:
                raise ValueError(f"flag {f!r} is not one of N F M S D C T B")
            text = _value_text(v)
            if f in CARRIES_VALUE and text == "":
                raise ValueError(f"{utc_text(t)}: flag {f} needs a value")
            if f in WITHOUT_VALUE and text != "":
                raise ValueError(f"{utc_text(t)}: flag {f} carries no value (R-ACQ-005)")
            in_range(t, text, f)
            rows[t] = (text, f)
        if not rows:
            return AppendResult(0, 0, 0)
        with self._lock, self.engine.begin() as c:
            head = self._head(c, point_id, gran, since)
            late = sum(1 for t in rows if t < head[2])
            fresh = {t: vf for t, vf in rows.items() if t >= head[2]}
            dup = 0
            if fresh:
                lo, hi = min(fresh), max(fresh)
                existing = {r[0]: (r[1], r[2]) for r in c.execute(
                    select(pending_t.c.t, pending_t.c.value, pending_t.c.flag).where(
                        self._range(point_id, gran, lo, hi + 1)))}
                dup = sum(1 for t, vf in fresh.items() if existing.get(t) == vf)
                replace = [t for t in fresh if t in existing]
                for i in range(0, len(replace), 500):
                    c.execute(delete(pending_t).where(and_(pending_t.c.point_id == point_id, pending_t.c.granularity == gran,
                                                           pending_t.c.t.in_(replace[i:i + 500]))))
                c.execute(insert(pending_t), [{"point_id": point_id, "granularity": gran, "t": t, "value": v, "flag": f}
                                              for t, (v, f) in fresh.items()])
        return AppendResult(len(rows) - late - dup, dup, late)

    def seal(self, point_id: str | None = None, *, until: dt.datetime | int,
             signing_time: dt.datetime | None = None) -> int:
        """Seal every unsealed instant before ``until`` of one point (or all points), with the
        derived coarser series; returns the number of batches written."""
        return self._seal(point_id, _epoch(until), {}, signing_time)

    def append_and_seal(self, point_id: str, readings: Iterable[Reading | tuple[Any, ...]], *, until: dt.datetime | int,
                        signing_time: dt.datetime | None = None) -> int:
        """Bulk writers (the simulation, back-fills): readings before ``until`` go straight into
        batches without a round trip through the pending table; later ones are appended."""
        info = self.point_info(point_id)
        if info is None:
            raise KeyError(f"no metering point {point_id}")
        end = _epoch(until)
        in_range = _flag_check(info[0])
        now_part, later = {}, []
        for r in readings:
            t_, v, f = (r.time, r.value, r.flag) if isinstance(r, Reading) else r
            t = _epoch(t_)
            if t < end:
                if f in CARRIES_VALUE and (v is None or v == ""):
                    raise ValueError(f"{utc_text(t)}: flag {f} needs a value")
                if f in WITHOUT_VALUE and v is not None and v != "":
                    raise ValueError(f"{utc_text(t)}: flag {f} carries no value (R-ACQ-005)")
                # strings are checked once per batch when sealed (Signer.seal -> check_payload)
                now_part[t] = (v if type(v) is str else _value_text(v), f)
                in_range(t, now_part[t][0], f)
            else:
                later.append((t, v, f))
        n = self._seal(point_id, end, now_part, signing_time)
        if later:
            self.append(point_id, later)
        return n

    def _seal(self, point_id: str | None, until: int, extra: dict[int, tuple[str, str]],
              signing_time: dt.datetime | None) -> int:
        if self.signer is None:
            raise RuntimeError("this store has no signer: only the source (holding the key) seals")
        with self.engine.connect() as c:
            infos = c.execute(select(points_t.c.point_id, points_t.c.base, points_t.c.since).where(
                points_t.c.point_id == point_id) if point_id else select(points_t.c.point_id, points_t.c.base,
                                                                         points_t.c.since)).all()
        if point_id and not infos:
            raise KeyError(f"no metering point {point_id}")
        when = signing_time or dt.datetime.now(UTC)
        total = 0
        with self._lock:
            for info in infos:
                with self.engine.begin() as c:
                    total += self._cascade(c, info.point_id, info.base, info.since, until,
                                           extra if point_id else {}, when)
        return total

    # --- sealing internals ------------------------------------------------------------------
    def _range(self, pid: str, gran: str, lo: int, hi: int) -> Any:
        return and_(pending_t.c.point_id == pid, pending_t.c.granularity == gran, pending_t.c.t >= lo, pending_t.c.t < hi)

    def _head(self, c: Connection, pid: str, gran: str, since: int) -> tuple[int, str, int]:
        """The chain head, locked for this transaction: a no-op UPDATE takes the write lock
        (SQLite) or the row lock (PostgreSQL) before reading, so an append and a seal in
        different processes cannot interleave between reading the head and writing."""
        where = and_(heads_t.c.point_id == pid, heads_t.c.granularity == gran)
        if c.execute(update(heads_t).where(where).values(seq=heads_t.c.seq)).rowcount == 0:
            c.execute(insert(heads_t).values(point_id=pid, granularity=gran, seq=0, digest=GENESIS, next_start=since))
            return 0, GENESIS, since
        r = c.execute(select(heads_t).where(where)).one()
        return r.seq, r.digest, r.next_start

    def _cascade(self, c: Connection, pid: str, gran: str, since: int, until: int, extra: dict[int, tuple[str, str]],
                 when: dt.datetime) -> int:
        seq0, digest0, start = self._head(c, pid, gran, since)
        end = self.floor(gran, until)
        if end <= start:
            return 0
        cells = {r[0]: (r[1], r[2]) for r in c.execute(
            select(pending_t.c.t, pending_t.c.value, pending_t.c.flag).where(self._range(pid, gran, start, end)))}
        cells.update({t: vf for t, vf in extra.items() if start <= t < end})
        doc = self._document(c, pid)
        n = self._write_batches(c, pid, gran, doc["unit"], seq0, digest0, start, end, cells, when)
        coarse = COARSER.get(gran)
        if coarse is None:
            c.execute(delete(pending_t).where(self._range(pid, gran, 0, end)))
            return n
        # Derive the coarser periods completed by this seal; keep the fine values of a period
        # still open (they are needed when it completes).
        _, _, cstart = self._head(c, pid, coarse, since)
        cend = self.floor(coarse, end)
        derived: dict[int, tuple[str, str]] = {}
        if cend > cstart:
            older = {r[0]: (r[1], r[2]) for r in c.execute(
                select(pending_t.c.t, pending_t.c.value, pending_t.c.flag).where(self._range(pid, gran, cstart, start)))}
            older.update(cells)
            step, cstep = STEP_SECONDS[gran], STEP_SECONDS[coarse]
            p = cstart
            while p < cend:
                q = p + cstep
                derived[p] = _aggregate([older[t] for t in range(p, q, step) if t in older], (q - p) // step)
                p = q
        keep_from = max(cend, cstart)
        c.execute(delete(pending_t).where(self._range(pid, gran, 0, keep_from)))
        c.execute(delete(pending_t).where(self._range(pid, gran, max(keep_from, start), end)))
        keep = [{"point_id": pid, "granularity": gran, "t": t, "value": v, "flag": f}
                for t, (v, f) in cells.items() if t >= keep_from]
        if keep:
            c.execute(insert(pending_t), keep)
        if cend > cstart:
            n += self._cascade(c, pid, coarse, since, cend, derived, when)
        return n

    def _document(self, c: Connection, pid: str) -> dict[str, Any]:
        return cast(dict[str, Any], json.loads(c.execute(select(points_t.c.document).where(points_t.c.point_id == pid)).scalar_one()))

    def _write_batches(self, c: Connection, pid: str, gran: str, unit: str, seq: int, digest: str, start: int, end: int,
                       cells: dict[int, tuple[str, str]], when: dt.datetime) -> int:
        assert self.signer is not None  # _seal checked
        step = STEP_SECONDS[gran]
        sealed_at = utc_text(int(when.timestamp()))
        rows, t, seq0 = [], start, seq
        while t < end:
            bend = min(self._split(gran, t), end)
            times = range(t, bend, step)
            got = [cells.get(x, ("", "B")) for x in times]
            payload = {"sourceId": self.signer.source_id, "pointId": pid, "granularity": gran, "unit": unit,
                       "start": utc_text(t), "step": STEP_CODES[gran], "count": len(got),
                       "values": [v for v, _ in got], "flags": "".join(f for _, f in got),
                       "sequenceNumber": seq + 1, "previousBatchDigest": digest, "sealedAt": sealed_at}
            digest, envelope = self.signer.seal(payload, when)
            seq += 1
            rows.append({"point_id": pid, "granularity": gran, "seq": seq, "start": t, "end": bend,
                         "digest": digest, "envelope": envelope})
            t = bend
        if rows:
            c.execute(insert(batches_t), rows)
            moved = c.execute(update(heads_t).where(and_(heads_t.c.point_id == pid, heads_t.c.granularity == gran,
                                                         heads_t.c.seq == seq0))
                              .values(seq=seq, digest=digest, next_start=end)).rowcount
            if moved != 1:
                raise SealConflict(f"chain {pid}/{gran} advanced concurrently")
        return len(rows)

    # --- reading ----------------------------------------------------------------------------
    def sealed_until(self, point_id: str, granularity: str) -> int | None:
        with self.engine.connect() as c:
            r = c.execute(select(heads_t.c.next_start).where(and_(heads_t.c.point_id == point_id,
                                                                  heads_t.c.granularity == granularity))).first()
        return None if r is None else r.next_start

    def batches(self, point_id: str, granularity: str, start: int, end: int, *, after_seq: int = 0,
                limit: int = 100) -> list[StoredBatch]:
        """Stored batches overlapping [start, end) with sequence > after_seq, in order."""
        q = (select(batches_t.c.seq, batches_t.c.start, batches_t.c.end, batches_t.c.digest, batches_t.c.envelope)
             .where(and_(batches_t.c.point_id == point_id, batches_t.c.granularity == granularity,
                         batches_t.c.seq > after_seq, batches_t.c.end > start, batches_t.c.start < end))
             .order_by(batches_t.c.seq).limit(limit))
        with self.engine.connect() as c:
            return [StoredBatch(r.seq, r.start, r.end, r.digest, bytes(r.envelope)) for r in c.execute(q)]

    def iter_values(self, point_id: str, granularity: str, start: int, end: int) -> Iterator[tuple[int, str, str]]:
        """(epoch, value, flag) of the sealed series in [start, end), one batch at a time."""
        after = 0
        step = STEP_SECONDS[granularity]
        while True:
            page = self.batches(point_id, granularity, start, end, after_seq=after, limit=32)
            if not page:
                return
            for b in page:
                p = json.loads(b.envelope)["payload"]
                for i, (v, f) in enumerate(zip(p["values"], p["flags"])):
                    t = b.start + i * step
                    if start <= t < end:
                        yield t, v, f
            after = page[-1].seq

    def close(self) -> None:
        self.engine.dispose()


__all__ = ["AppendResult", "Reading", "SealConflict", "SealedStore", "Signer", "StoredBatch"]
