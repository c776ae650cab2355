"""Where the bridge's readings become signed, hash-chained batches.

The bridge writes through the sealed-store API of the acquisition source
(``register_point`` / ``append`` / ``seal`` / ``batches`` / ``points``, see
cedx.acquisition.store.SealedStore). When that store is present it is used as is; otherwise
:class:`LocalSealedStore` offers the same calls and seals batches in the specification's
current MeasurementBatch layout (per-value objects): the base granularity from the readings,
hours and days derived from it.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from .. import trust
from ..generated.constants import SPEC_VERSION
from ..trust import chain as tchain

UTC = dt.timezone.utc
STEP = {"minute": 60, "hour": 3600, "day": 86400}
VALID = frozenset("NSCT")
COARSER = {"minute": "hour", "hour": "day"}


def _aggregate(cells: list[tuple[str, str]]) -> tuple[str, str]:
    """Mean of the valid values of a period (same rule as the reference source)."""
    valid = [Decimal(v) for v, f in cells if f in VALID and v]
    others = Counter(f for v, f in cells if f not in VALID or not v)
    if not valid or len(valid) < 0.75 * len(cells):
        return "", max(others, key=lambda f: (others[f], f)) if others else "B"
    places = max((len(v) - v.index(".") - 1 if "." in v else 0 for v, f in cells if f in VALID and v), default=0)
    mean = Decimal(sum(valid)) / len(valid)
    return format(mean.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP), "f"), "N"


@dataclass(frozen=True)
class Reading:
    time: dt.datetime | int
    value: Decimal | str | None
    flag: str = "N"


@dataclass(frozen=True)
class AppendResult:
    accepted: int
    duplicates: int
    late: int


@dataclass(frozen=True)
class StoredBatch:
    seq: int
    start: int
    end: int
    digest: str
    envelope: bytes


def _epoch(t: dt.datetime | int) -> int:
    return t if isinstance(t, int) else int(t.timestamp())


def _iso(t: int) -> str:
    return dt.datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class LocalSealedStore:
    """A SQLite sealed-batch store with the SealedStore calls the bridge uses."""

    def __init__(self, path: str | Path, *, source_id: str, key: trust.SM2PrivateKey, certificate_chain: list[bytes],
                 utc_offset_hours: int = 8):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # re-creatable: the receive store holds every reading
        self.db.executescript("""
            CREATE TABLE IF NOT EXISTS points(point_id TEXT PRIMARY KEY, base TEXT, since INTEGER, document TEXT);
            CREATE TABLE IF NOT EXISTS pending(point_id TEXT, granularity TEXT, t INTEGER, value TEXT, flag TEXT,
                                               PRIMARY KEY(point_id, granularity, t));
            CREATE TABLE IF NOT EXISTS heads(point_id TEXT, granularity TEXT, seq INTEGER, digest TEXT, next_start INTEGER,
                                             PRIMARY KEY(point_id, granularity));
            CREATE TABLE IF NOT EXISTS batches(point_id TEXT, granularity TEXT, seq INTEGER, start INTEGER, end INTEGER,
                                               digest TEXT, envelope BLOB, PRIMARY KEY(point_id, granularity, seq));
        """)
        self.source_id, self.key, self.chain = source_id, key, certificate_chain
        self.offset = utc_offset_hours * 3600
        self._lock = threading.RLock()

    # --- points -------------------------------------------------------------------------------
    def register_point(self, document: dict[str, Any], *, since: dt.datetime | int, base: str = "minute") -> None:
        text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            row = self.db.execute("SELECT base FROM points WHERE point_id=?", (document["pointId"],)).fetchone()
            if row is None:
                self.db.execute("INSERT INTO points VALUES(?,?,?,?)", (document["pointId"], base, _epoch(since), text))
            elif row[0] != base:
                raise ValueError(f"point {document['pointId']} already has base granularity {row[0]}")
            else:
                self.db.execute("UPDATE points SET document=? WHERE point_id=?", (text, document["pointId"]))

    def points(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(r[0]) for r in self.db.execute("SELECT document FROM points ORDER BY point_id")]

    def point_info(self, point_id: str) -> tuple[dict[str, Any], str, int] | None:
        with self._lock:
            r = self.db.execute("SELECT document, base, since FROM points WHERE point_id=?", (point_id,)).fetchone()
        return None if r is None else (json.loads(r[0]), r[1], r[2])

    def granularities(self, point_id: str) -> list[str]:
        info = self.point_info(point_id)
        if info is None:
            return []
        out = [info[1]]
        while out[-1] in COARSER:
            out.append(COARSER[out[-1]])
        return out

    # --- writing ------------------------------------------------------------------------------
    def _head(self, pid: str, gran: str, since: int) -> tuple[int, str, int]:
        r = self.db.execute("SELECT seq, digest, next_start FROM heads WHERE point_id=? AND granularity=?", (pid, gran)).fetchone()
        return (0, tchain.GENESIS_DIGEST, since) if r is None else r

    def append(self, point_id: str, readings: Iterable[tuple[dt.datetime | int, str | None, str]], *, granularity: str | None = None) -> AppendResult:
        info = self.point_info(point_id)
        if info is None:
            raise KeyError(f"no metering point {point_id}; register it first")
        _, base, since = info
        step = STEP[base]
        rows = {}
        for r in readings:
            t_, v_, f_ = (r.time, r.value, r.flag) if isinstance(r, Reading) else r
            t = _epoch(t_)
            if t % step or t < since:
                raise ValueError(f"{_iso(t)} is not a {base} instant of point {point_id} at or after its commissioning")
            value = "" if v_ in (None, "") else str(v_)
            if f_ in VALID and not value:
                raise ValueError(f"{_iso(t)}: flag {f_} needs a value")
            rows[t] = (value, f_)
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                _, _, start = self._head(point_id, base, since)
                late = sum(1 for t in rows if t < start)
                dup = 0
                for t, (v, f) in rows.items():
                    if t < start:
                        continue
                    old = self.db.execute("SELECT value, flag FROM pending WHERE point_id=? AND granularity=? AND t=?",
                                          (point_id, base, t)).fetchone()
                    dup += old == (v, f)
                    self.db.execute("INSERT OR REPLACE INTO pending VALUES(?,?,?,?,?)", (point_id, base, t, v, f))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return AppendResult(len(rows) - late - dup, dup, late)

    def _next_midnight(self, t: int) -> int:
        return (t + self.offset) // 86400 * 86400 - self.offset + 86400

    def _next_month(self, t: int) -> int:
        local = dt.datetime.fromtimestamp(t + self.offset, UTC)
        nxt = (local.replace(day=1) + dt.timedelta(days=32)).replace(day=1, hour=0, minute=0, second=0)
        return int(nxt.timestamp()) - self.offset

    def _floor(self, gran: str, t: int) -> int:
        if gran == "day":
            return (t + self.offset) // 86400 * 86400 - self.offset
        return t // STEP[gran] * STEP[gran]

    def seal(self, point_id: str | None = None, *, until: dt.datetime | int, signing_time: dt.datetime | None = None) -> int:
        """Seal every unsealed instant before ``until`` (a missing reading as flag B, no value), then
        the coarser periods it completes: hours from minutes, days from hours (mean of the valid
        values N S C T; under 75 % valid: the dominant other flag and no value)."""
        until_s = _epoch(until)
        when = signing_time or dt.datetime.now(UTC)
        total = 0
        with self._lock:
            rows = self.db.execute("SELECT point_id, base, since, document FROM points" +
                                   (" WHERE point_id=?" if point_id else ""), (point_id,) if point_id else ()).fetchall()
            for pid, base, since, document in rows:
                unit = json.loads(document)["unit"]
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    _, _, start = self._head(pid, base, since)
                    end = self._floor(base, until_s)
                    cells = {t: (v, f) for t, v, f in self.db.execute(
                        "SELECT t, value, flag FROM pending WHERE point_id=? AND granularity=? AND t>=? AND t<?",
                        (pid, base, start, end))}
                    gran, n = base, self._write(pid, base, since, unit, end, cells, when)
                    while n and gran in COARSER:
                        fine, gran = gran, COARSER[gran]
                        _, _, cstart = self._head(pid, gran, since)
                        cend = self._floor(gran, self._head(pid, fine, since)[2])
                        derived = self._derive(pid, fine, gran, cstart, cend)
                        total += n
                        n = self._write(pid, gran, since, unit, cend, derived, when)
                    total += n
                    self.db.execute("DELETE FROM pending WHERE point_id=? AND granularity=? AND t<?", (pid, base, end))
                    self.db.execute("COMMIT")
                except BaseException:
                    self.db.execute("ROLLBACK")
                    raise
        return total

    def _write(self, pid: str, gran: str, since: int, unit: str, end: int, cells: dict[int, tuple[str, str]], when: dt.datetime) -> int:
        seq, digest, start = self._head(pid, gran, since)
        if end <= start:
            return 0
        step, n, t = STEP[gran], 0, start
        while t < end:
            bend = min(self._next_month(t) if gran == "day" else self._next_midnight(t), end)
            values = []
            for x in range(t, bend, step):
                v, f = cells.get(x, ("", "B"))
                values.append({"time": _iso(x), **({"value": v} if v else {}), "flag": f})
            payload = {"sourceId": self.source_id, "pointId": pid, "granularity": gran, "unit": unit,
                       "periodStart": _iso(t), "periodEnd": _iso(bend), "sequenceNumber": seq + 1,
                       "previousBatchDigest": digest, "sealedAt": _iso(int(when.timestamp())), "values": values}
            envelope = trust.sign_document(payload, self.key, certificate_chain=self.chain,
                                           envelope_fields={"specVersion": SPEC_VERSION}, signing_time=when)
            digest, seq = tchain.batch_digest(payload), seq + 1
            self.db.execute("INSERT INTO batches VALUES(?,?,?,?,?,?,?)",
                            (pid, gran, seq, t, bend, digest, json.dumps(envelope, ensure_ascii=False).encode()))
            n += 1
            t = bend
        self.db.execute("INSERT OR REPLACE INTO heads VALUES(?,?,?,?,?)", (pid, gran, seq, digest, end))
        return n

    def _derive(self, pid: str, fine: str, coarse: str, start: int, end: int) -> dict[int, tuple[str, str]]:
        values: dict[int, tuple[str, str]] = {}
        for (envelope,) in self.db.execute("SELECT envelope FROM batches WHERE point_id=? AND granularity=? AND end>? AND start<?",
                                           (pid, fine, start, end)):
            for item in json.loads(envelope)["payload"]["values"]:
                t = int(dt.datetime.fromisoformat(item["time"].replace("Z", "+00:00")).timestamp())
                if start <= t < end:
                    values[t] = (item.get("value", ""), item["flag"])
        out, t = {}, start
        while t < end:
            nxt = t + STEP[coarse] if coarse != "day" else self._next_midnight(t)
            cells = [values.get(x, ("", "B")) for x in range(t, nxt, STEP[fine])]
            out[t] = _aggregate(cells)
            t = nxt
        return out

    # --- reading ------------------------------------------------------------------------------
    def sealed_until(self, point_id: str, granularity: str) -> int | None:
        with self._lock:
            r = self.db.execute("SELECT next_start FROM heads WHERE point_id=? AND granularity=?", (point_id, granularity)).fetchone()
        return None if r is None else r[0]

    def batches(self, point_id: str, granularity: str, start: int, end: int, *, after_seq: int = 0,
                limit: int = 100) -> list[StoredBatch]:
        with self._lock:
            rows = self.db.execute(
                "SELECT seq, start, end, digest, envelope FROM batches WHERE point_id=? AND granularity=? AND seq>? "
                "AND end>? AND start<? ORDER BY seq LIMIT ?", (point_id, granularity, after_seq, start, end, limit)).fetchall()
        return [StoredBatch(r[0], r[1], r[2], r[3], bytes(r[4])) for r in rows]

    def close(self) -> None:
        self.db.close()


def open_sealed_store(path: str | Path, *, source_id: str, key: trust.SM2PrivateKey, certificate_chain: list[bytes],
                      utc_offset_hours: int = 8) -> Any:
    """The acquisition source's SealedStore when this installation has it, else LocalSealedStore."""
    try:
        from ..acquisition.store import SealedStore, Signer  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return LocalSealedStore(path, source_id=source_id, key=key, certificate_chain=certificate_chain,
                                utc_offset_hours=utc_offset_hours)
    return SealedStore(path, signer=Signer(source_id, key, certificate_chain), utc_offset_hours=utc_offset_hours)


def reading(time: dt.datetime | int, value: str | None, flag: str) -> tuple[dt.datetime | int, str | None, str]:
    """A Reading of whichever store is in use (both take (time, value, flag) tuples)."""
    return (time, value if value else None, flag)
