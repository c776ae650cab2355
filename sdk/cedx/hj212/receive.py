"""The bridge's durable receive store: every accepted packet and its readings, committed before
the data logger is acknowledged.

SQLite in WAL mode with ``synchronous=FULL``: a commit is on disk when it returns. Writes are
group-committed by one writer thread (many connections, one fsync per group). Idempotence:

* a packet is identified by (MN, CN, QN, PNO) — by the SM3 of its data segment when it has no
  QN — and stored once; a re-sent packet is answered again but adds nothing;
* a reading is identified by (MN, code, CN, DataTime) and stored once; a different value for
  the same key is kept aside in ``conflicts`` (first value wins) and reported;
* the parts of a split message are stored as they come and joined, in any order, when the last
  one arrives, in the same transaction.

Feeding (readings → metering points of the sealed store) is a separate, re-runnable step that
marks each reading with what happened to it (``fed``), so nothing is lost if the process stops
between acknowledging and feeding, and readings of a logger added to the table later replay.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..generated.constants import FLAGS_CARRYING_VALUE
from ..trust.sm3 import sm3
from . import codec
from .errors import HJ212Error
from .mapping import Mapping

log = logging.getLogger("cedx.hj212.bridge")

# fed: what feeding did with a reading
PENDING, FED, NOT_MAPPED, NO_VALUE, OUT_OF_RANGE, LATE, EVIDENCE = 0, 1, 2, 3, 4, 5, 6
FED_NAMES = {PENDING: "pending", FED: "fed", NOT_MAPPED: "not mapped (MN or code not in the table, or no instrument record for the code)",
             NO_VALUE: "no value", OUT_OF_RANGE: "misaligned or before commissioning", LATE: "late (period already sealed)",
             EVIDENCE: "kept as evidence (not the logger's base granularity)"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS packets(
    id INTEGER PRIMARY KEY, received_at TEXT NOT NULL, peer TEXT, mn TEXT, qn TEXT, cn TEXT NOT NULL,
    pnum INTEGER, pno INTEGER, ident TEXT NOT NULL UNIQUE, raw BLOB NOT NULL, status TEXT NOT NULL, note TEXT);
CREATE INDEX IF NOT EXISTS packets_parts ON packets(mn, qn, cn, pnum) WHERE status = 'part';
CREATE TABLE IF NOT EXISTS readings(
    mn TEXT NOT NULL, code TEXT NOT NULL, cn TEXT NOT NULL, t INTEGER NOT NULL, items TEXT NOT NULL,
    packet_id INTEGER NOT NULL, fed INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(mn, code, cn, t));
CREATE INDEX IF NOT EXISTS readings_unfed ON readings(fed) WHERE fed = 0;
CREATE TABLE IF NOT EXISTS conflicts(
    mn TEXT, code TEXT, cn TEXT, t INTEGER, items TEXT, packet_id INTEGER, received_at TEXT);
"""


@dataclass
class Outcome:
    status: str            # stored | duplicate | part | assembled | refused
    readings: int = 0
    duplicates: int = 0
    conflicts: int = 0
    note: str | None = None


class ReceiveStore:
    def __init__(self, path: str | Path, mapping: Mapping, *, max_incomplete: int = 64):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self.mapping = mapping
        self.max_incomplete = max_incomplete
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")      # acknowledged means on disk
        self.db.executescript(SCHEMA)
        self._lock = threading.Lock()

    # --- storing (one transaction per group) -----------------------------------------------------
    def store_group(self, group: list[tuple[codec.Packet, bytes, str]]) -> list[Outcome]:
        now = dt.datetime.now(dt.timezone.utc).isoformat()
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                out = [self._store_one(p, raw, peer, now) for p, raw, peer in group]
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return out

    def _store_one(self, p: codec.Packet, raw: bytes, peer: str, now: str) -> Outcome:
        ident = "|".join((p.mn or "", p.cn, p.qn or "sm3:" + sm3((p.segment or "").encode()).hex(), str(p.pno or 0)))
        if p.split:
            incomplete = self.db.execute("SELECT COUNT(DISTINCT qn || '|' || cn) FROM packets WHERE status='part' AND mn IS ?",
                                         (p.mn,)).fetchone()[0]
            known = self.db.execute("SELECT 1 FROM packets WHERE status='part' AND mn IS ? AND qn IS ? AND cn=? LIMIT 1",
                                    (p.mn, p.qn, p.cn)).fetchone()
            if incomplete >= self.max_incomplete and not known:
                return Outcome("refused", note=f"{incomplete} split messages of MN {p.mn} incomplete (limit)")
        cur = self.db.execute(
            "INSERT OR IGNORE INTO packets(received_at, peer, mn, qn, cn, pnum, pno, ident, raw, status) VALUES(?,?,?,?,?,?,?,?,?,?)",
            (now, peer, p.mn, p.qn, p.cn, p.pnum, p.pno, ident, raw, "part" if p.split else "stored"))
        if cur.rowcount == 0:
            return Outcome("duplicate")
        packet_id = int(cur.lastrowid or 0)
        if not p.split:
            return self._readings(p, packet_id, now, Outcome("stored"))
        rows = self.db.execute("SELECT id, raw FROM packets WHERE status='part' AND mn IS ? AND qn IS ? AND cn=? AND pnum=?",
                               (p.mn, p.qn, p.cn, p.pnum)).fetchall()
        if len(rows) < (p.pnum or 0):  # (MN, CN, QN, PNO) is unique: one row per part
            return Outcome("part")
        ids = [r[0] for r in rows]
        marks = ",".join("?" * len(ids))
        try:
            whole = codec.reassemble([codec.decode(r[1]) for r in rows])
        except HJ212Error as exc:
            self.db.execute(f"UPDATE packets SET status='rejected', note=? WHERE id IN ({marks})", (str(exc), *ids))
            return Outcome("part", note=f"message refused on reassembly: {exc}")
        self.db.execute(f"UPDATE packets SET status='assembled' WHERE id IN ({marks})", ids)
        return self._readings(whole, packet_id, now, Outcome("assembled"))

    def _readings(self, p: codec.Packet, packet_id: int, now: str, out: Outcome) -> Outcome:
        if p.cn not in self.mapping.commands or "DataTime" not in p.fields:
            return out
        t = int(self.mapping.local_time(p.fields["DataTime"]).timestamp())
        for code, items in p.items.items():
            text = json.dumps(items, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
            cur = self.db.execute("INSERT OR IGNORE INTO readings(mn, code, cn, t, items, packet_id) VALUES(?,?,?,?,?,?)",
                                  (p.mn or "", code, p.cn, t, text, packet_id))
            if cur.rowcount:
                out.readings += 1
                continue
            old = self.db.execute("SELECT items FROM readings WHERE mn=? AND code=? AND cn=? AND t=?",
                                  (p.mn or "", code, p.cn, t)).fetchone()[0]
            if old == text:
                out.duplicates += 1
            else:
                out.conflicts += 1
                self.db.execute("INSERT INTO conflicts VALUES(?,?,?,?,?,?,?)", (p.mn, code, p.cn, t, text, packet_id, now))
                log.warning("MN %s %s-%s at %s: a different value arrived again; the first one is kept",
                            p.mn, code, p.cn, p.fields["DataTime"])
        return out

    # --- feeding ----------------------------------------------------------------------------------
    def feed(self, sink: Any, registered: set[str], limit: int = 20_000) -> Counter[str]:
        """Move unfed readings into the sealed store (see the module doc); returns counts by outcome."""
        m = self.mapping
        with self._lock:
            rows = self.db.execute("SELECT rowid, mn, code, cn, t, items FROM readings WHERE fed=0 ORDER BY t LIMIT ?",
                                   (limit,)).fetchall()
        marks: dict[int, int] = {}
        batches: dict[str, list[Any]] = {}
        point_rows: dict[str, list[int]] = {}
        for rowid, mn, code, cn, t, items_text in rows:
            logger, cm = m.loggers.get(mn), m.codes.get(code)
            gran = m.commands.get(cn)
            if logger is None or cm is None or code not in logger.instruments:
                marks[rowid] = NOT_MAPPED
                continue
            if gran != logger.base:
                marks[rowid] = EVIDENCE
                continue
            pid = m.point_id(logger, code)
            if pid not in registered:
                sink.register_point(m.point_document(logger, code), since=logger.since, base=logger.base)
                registered.add(pid)
            step = 60 if gran == "minute" else 3600
            if t % step or t < int(logger.since.timestamp()):
                marks[rowid] = OUT_OF_RANGE
                continue
            sealed = sink.sealed_until(pid, gran)
            if sealed is not None and t < sealed:
                marks[rowid] = LATE
                continue
            items = json.loads(items_text)
            value = next((items[s] for s in m.value_suffix.get(gran, ["Avg"]) if items.get(s)), "")
            flag = m.flag(items.get("Flag"))
            if not value and flag in FLAGS_CARRYING_VALUE:
                marks[rowid] = NO_VALUE
                continue
            batches.setdefault(pid, []).append((t, m.convert(cm, value) if value else None, flag))
            point_rows.setdefault(pid, []).append(rowid)
        for pid, readings in batches.items():
            try:
                sink.append(pid, readings)
                outcome = FED
            except ValueError as exc:   # the sealed store's own checks (value format, instants)
                log.warning("point %s: readings refused by the sealed store: %s", pid, exc)
                outcome = OUT_OF_RANGE
            for rowid in point_rows[pid]:
                marks[rowid] = outcome
        if marks:
            with self._lock:
                # Marks are re-creatable (feeding again is idempotent): no fsync needed for them.
                self.db.execute("PRAGMA synchronous=NORMAL")
                self.db.execute("BEGIN IMMEDIATE")
                self.db.executemany("UPDATE readings SET fed=? WHERE rowid=?", [(v, k) for k, v in marks.items()])
                self.db.execute("COMMIT")
                self.db.execute("PRAGMA synchronous=FULL")
        return Counter(FED_NAMES[v] for v in marks.values())

    def replay(self) -> int:
        """Readings that fed nothing because their MN or code was not in the table: feed them again."""
        with self._lock:
            return self.db.execute("UPDATE readings SET fed=0 WHERE fed=?", (NOT_MAPPED,)).rowcount

    # --- reporting --------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        with self._lock:
            packets = dict(self.db.execute("SELECT status, COUNT(*) FROM packets GROUP BY status").fetchall())
            fed = {FED_NAMES[k]: n for k, n in self.db.execute("SELECT fed, COUNT(*) FROM readings GROUP BY fed")}
            conflicts = self.db.execute("SELECT COUNT(*) FROM conflicts").fetchone()[0]
        return {"packets": packets, "readings": fed, "conflicts": conflicts}

    def close(self) -> None:
        self.db.close()
