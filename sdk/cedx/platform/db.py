"""The platform's store on SQLAlchemy 2: a SQLite file by default, PostgreSQL when
CEDX_DATABASE_URL is given. This is the one file that knows SQL and the differences between
the two databases (upserts, write-transaction mode, pragmas, durability per transaction). The
tables are declared here for SQLAlchemy (schema, administration, listings); the statements of
every request (token, rate limit, nonce, the submission transaction) are SQL text run on the
driver's connections, for speed (issue 14).

Documents are stored exactly as received (JSON text), so a receipt's digest can always be
recomputed from what is on disk.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    and_,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from .store import (
    CertificateRecord,
    ClientListing,
    ClientRecord,
    EntityRecord,
    IdempotencyRecord,
    Store,
    StoreConflict,
    SubmissionReader,
    SubmissionRecord,
    SubmissionTransaction,
    TokenRecord,
)


class Base(DeclarativeBase):
    pass


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite returns naive datetimes; everything stored is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


class EntityRow(Base):
    __tablename__ = "entities"
    credit_code: Mapped[str] = mapped_column(String(18), primary_key=True)
    document: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # the Entity document once registered
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ClientRow(Base):
    __tablename__ = "clients"
    client_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(256))
    credit_code: Mapped[str] = mapped_column(ForeignKey("entities.credit_code"))
    scopes: Mapped[str] = mapped_column(String(512))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Added after the table (see _ADDED_COLUMNS): NULL for clients created before.
    created_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, default=utcnow)


class CertificateRow(Base):
    __tablename__ = "certificates"
    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SM3 of the public key
    credit_code: Mapped[str] = mapped_column(ForeignKey("entities.credit_code"), index=True)
    der: Mapped[bytes] = mapped_column(LargeBinary)
    serial: Mapped[str] = mapped_column(String(64), default="0")  # decimal; up to 20 octets (RFC 5280)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class RevocationRow(Base):
    """One row: a counter every worker reads per signed request to drop cached verified keys."""

    __tablename__ = "revocation_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    counter: Mapped[int] = mapped_column(BigInteger, default=0)


class TokenRow(Base):
    __tablename__ = "tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # SM3 of the token
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id"), index=True)
    credit_code: Mapped[str] = mapped_column(String(18), index=True)
    scopes: Mapped[str] = mapped_column(String(512))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class SubmissionRow(Base):
    __tablename__ = "submissions"
    submission_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), index=True)
    document_type: Mapped[str] = mapped_column(String(20))
    report_id: Mapped[str] = mapped_column(String(36))
    period: Mapped[str] = mapped_column(String(7), index=True)
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    supersedes: Mapped[str | None] = mapped_column(String(36), nullable=True)
    superseded_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    document: Mapped[str] = mapped_column(Text)          # the signed envelope as received (JSON)
    document_digest: Mapped[str] = mapped_column(String(64))
    receipt: Mapped[str] = mapped_column(Text)           # the signed receipt (JSON)
    receipt_id: Mapped[str] = mapped_column(String(36), default="")
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)

    # One accepted version per entity, document type and period — enforced by the database,
    # so that concurrent workers cannot both accept an original for the same month.
    __table_args__ = (
        Index("ux_submissions_accepted", "credit_code", "document_type", "period", unique=True,
              sqlite_where=text("state = 'accepted'"), postgresql_where=text("state = 'accepted'")),
    )


class IdempotencyRow(Base):
    __tablename__ = "idempotency"
    __table_args__ = (UniqueConstraint("credit_code", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    credit_code: Mapped[str] = mapped_column(String(18))
    key: Mapped[str] = mapped_column(String(64))
    request_digest: Mapped[str] = mapped_column(String(64))
    submission_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class NonceRow(Base):
    __tablename__ = "nonces"
    nonce: Mapped[str] = mapped_column(String(160), primary_key=True)  # key id + nonce
    expires_at: Mapped[int] = mapped_column(BigInteger)


class RateCounterRow(Base):
    __tablename__ = "rate_counters"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)   # "client:<id>", "addr:<ip>", "fail:..."
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # start of the window, Unix seconds
    count: Mapped[int] = mapped_column(Integer, default=0)


class FacilityRow(Base):
    __tablename__ = "facilities"
    credit_code: Mapped[str] = mapped_column(String(18), primary_key=True)
    facility_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)


# --- engine ---------------------------------------------------------------------------------
SQLITE_PAGE_SIZE = 16384


def _sqlite_pragmas(dbapi_conn: Any, synchronous: str = "FULL") -> None:
    """Durable (or, for counters and nonces, ``NORMAL``: a WAL keeps them consistent, an OS
    crash may forget the last few), and concurrent enough for one host. pysqlite's own
    transaction handling is switched off so that write transactions can BEGIN IMMEDIATE."""
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    # A new database gets 16 KiB pages (an existing one keeps its own): a document of hundreds
    # of KiB is stored as received, in overflow pages, and each page costs a WAL frame and a
    # checkpoint write; a 563 KiB report's commit takes ~0.25 ms less CPU than with 4 KiB.
    cur.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA synchronous={synchronous}")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str | URL, raw: bool = False, durable: bool = False) -> Engine:
    """The store's engine (SQLAlchemy: administration, listings). ``raw`` (PostgreSQL): a pool
    of the request path's DBAPI connections, in autocommit (a statement is its own transaction,
    no BEGIN/COMMIT round trips) with commits not waited for on disk (rate-limit counters and
    nonces: visible at once to every session all the same; a crash may forget the last few),
    or, ``durable``, with the server's configured durability (submissions: a lone INSERT is
    then a durable transaction in one round trip)."""
    url = make_url(url)
    if url.get_backend_name() == "sqlite":
        path = url.database or ""
        if path and path != ":memory:":
            _create_private_file(Path(path))
        # No pre-ping: a local file does not drop connections.
        engine = create_engine(url)
        event.listen(engine, "connect", lambda dbapi_conn, _record: _sqlite_pragmas(dbapi_conn))

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # A write transaction takes the write lock up front: a deferred transaction that
            # reads first and writes later fails with SQLITE_BUSY when another worker wrote between.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("cedx_write") else "BEGIN")
    elif raw:
        engine = create_engine(url, pool_recycle=1800, isolation_level="AUTOCOMMIT")

        @event.listens_for(engine, "connect")
        def _light(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.autocommit = True
            if not durable:
                dbapi_conn.execute("SET synchronous_commit TO off")
                return
            # Documents and receipts are compressed when stored (TOAST): lz4 costs the server a
            # fraction of the default pglz's CPU (a 563 KiB report: ~5.3 -> ~1.5 ms); reads
            # decompress either. PostgreSQL 14+ built with lz4; otherwise the default stays.
            try:
                dbapi_conn.execute("SET default_toast_compression TO lz4")
            except dbapi_conn.Error:  # an autocommit statement: nothing is left open
                pass
        return engine
    else:
        # No ping per checkout (a round trip per request); stale connections are recycled instead.
        engine = create_engine(url, pool_recycle=1800)
    Base.metadata.create_all(engine)
    _add_missing_columns(engine)
    with engine.begin() as conn:
        if conn.execute(select(RevocationRow.id)).first() is None:
            try:
                conn.execute(insert(RevocationRow).values(id=1, counter=0))
            except IntegrityError:  # another worker created it
                pass
    return engine


#: Columns declared after their table was first created: ``create_all`` makes missing tables,
#: never missing columns, so a database from an earlier version gets them here (nullable).
_ADDED_COLUMNS = ((ClientRow.__tablename__, "created_at"),)


def _add_missing_columns(engine: Engine) -> None:
    """Add the columns of _ADDED_COLUMNS a database lacks (one reflection at start-up; workers
    starting together: SQLite holds the write lock while it looks, PostgreSQL's IF NOT EXISTS)."""
    sqlite_ = engine.dialect.name == "sqlite"
    with engine.execution_options(cedx_write=True).begin() as conn:
        inspector = sa_inspect(conn)
        for table, name in _ADDED_COLUMNS:
            if name in {c["name"] for c in inspector.get_columns(table)}:
                continue
            column_type = Base.metadata.tables[table].c[name].type.compile(dialect=engine.dialect)
            exists = "" if sqlite_ else "IF NOT EXISTS "
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {exists}{name} {column_type}")


def _create_private_file(path: Path) -> None:
    """The database file (and its WAL/SHM companions) readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if name == path and not name.exists():
            os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o600))
        if name.exists():
            os.chmod(name, 0o600)


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


# --- records ----------------------------------------------------------------------------------
def _submission(row: Any) -> SubmissionRecord:
    """From a SubmissionRow or a Core row with the same column names."""
    return SubmissionRecord(
        submission_id=row.submission_id, credit_code=row.credit_code, document_type=row.document_type,
        report_id=row.report_id, period=row.period, version=row.version, kind=row.kind, state=row.state,
        supersedes=row.supersedes, superseded_by=row.superseded_by, document=row.document,
        document_digest=row.document_digest, receipt=row.receipt, receipt_id=row.receipt_id,
        received_at=_aware(row.received_at))


def _entity_name(document: Any) -> str | None:
    name = document.get("name") if isinstance(document, dict) else None
    return name if isinstance(name, str) and name else None


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


def _certificate(row: CertificateRow) -> CertificateRecord:
    return CertificateRecord(key_id=row.key_id, credit_code=row.credit_code, der=row.der, serial=int(row.serial),
                             revoked_at=_aware(row.revoked_at) if row.revoked_at else
                             (utcnow() if row.revoked else None))


# --- the request path on DBAPI connections ----------------------------------------------------
# A signed submission runs about ten statements. Through SQLAlchemy's Core each cost more CPU
# (statement cache, execution context, result processing, events) than the database's own work,
# so the request path's statements are SQL text here, run on the driver's own connections
# (SQLite: one per thread; PostgreSQL: from a SQLAlchemy pool) (issue 14). They write exactly
# what the mapped types above write (SQLite: datetimes as the DateTime type's
# 'YYYY-MM-DD HH:MM:SS.ffffff' text, booleans as 0/1; the document as received), so the ORM's
# reads (listings, administration) see the same values.
_SUBMISSION_COLUMNS = ("submission_id, credit_code, document_type, report_id, period, version, kind, state, "
                       "supersedes, superseded_by, document, document_digest, receipt, receipt_id, received_at")
_S = ", ".join(f"s.{c}" for c in _SUBMISSION_COLUMNS.split(", "))


class _Sql:
    """The request path's statements in one dialect's spelling (written with ``?``)."""

    # the revocation counter comes along: one statement per request instead of two
    TOKEN = ("SELECT t.token_hash, t.client_id, t.credit_code, t.scopes, t.expires_at, c.active, "
             "(SELECT counter FROM revocation_state WHERE id = 1) "
             "FROM tokens t JOIN clients c ON c.client_id = t.client_id WHERE t.token_hash = ?")
    REVOCATIONS = "SELECT counter FROM revocation_state WHERE id = 1"
    # PostgreSQL: the token and the rate-limit hit of the request it authenticates in one
    # statement. The hit is counted only under conditions never looser than the hooks' own
    # check (active, not expired at the same instant, every scope among the blank-separated
    # ones; the scopes asked for are passed blank-joined, a text parameter being cheaper to
    # send than an array), so no failed authentication is counted; when they are stricter,
    # the hooks count the hit themselves.
    TOKEN_AND_HIT = ("WITH tok AS (SELECT t.token_hash, t.client_id, t.credit_code, t.scopes, t.expires_at, "
                     "c.active, (SELECT counter FROM revocation_state WHERE id = 1) AS revocations "
                     "FROM tokens t JOIN clients c ON c.client_id = t.client_id WHERE t.token_hash = ?), "
                     'hit AS (INSERT INTO rate_counters ("key", "window", count) SELECT ? || tok.client_id, ?, 1 '
                     "FROM tok WHERE tok.active AND tok.expires_at > ? "
                     "AND string_to_array(tok.scopes, ' ') @> string_to_array(?, ' ') "
                     'ON CONFLICT ("key", "window") DO UPDATE SET count = rate_counters.count + 1 RETURNING count) '
                     "SELECT tok.*, (SELECT count FROM hit) FROM tok")
    NONCE = ("INSERT INTO nonces (nonce, expires_at) VALUES (?, ?) ON CONFLICT (nonce) DO UPDATE "
             "SET expires_at = excluded.expires_at WHERE nonces.expires_at < ? RETURNING nonce")
    NONCES_EXPIRED = "DELETE FROM nonces WHERE expires_at < ?"
    HIT = ('INSERT INTO rate_counters ("key", "window", count) VALUES (?, ?, 1) ON CONFLICT ("key", "window") '
           "DO UPDATE SET count = rate_counters.count + 1 RETURNING count")
    COUNT = 'SELECT count FROM rate_counters WHERE "key" = ? AND "window" = ?'
    WINDOWS_OLD = 'DELETE FROM rate_counters WHERE "window" < ?'
    IDEMPOTENCY = (f"SELECT i.request_digest, {_S} FROM idempotency i "
                   'JOIN submissions s ON s.submission_id = i.submission_id WHERE i.credit_code = ? AND i."key" = ?')
    ACCEPTED = (f"SELECT {_S} FROM submissions s WHERE s.credit_code = ? AND s.document_type = ? AND s.period = ? "
                "AND s.state = 'accepted'")
    SUBMISSION = f"SELECT {_S} FROM submissions s WHERE s.submission_id = ?"
    # Both opening reads of a submission in one statement: the key's row has its request
    # digest (never NULL), the period's accepted version none.
    IDEMPOTENCY_AND_ACCEPTED = f"{IDEMPOTENCY} UNION ALL SELECT NULL, {ACCEPTED[len('SELECT '):]}"
    SUPERSEDE = ("UPDATE submissions SET state = 'superseded', superseded_by = ? "
                 "WHERE submission_id = ? AND state = 'accepted'")
    INSERT_SUBMISSION = f"INSERT INTO submissions ({_SUBMISSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    # SQLite: a document given as the received UTF-8 bytes is bound as a blob and stored as the
    # same TEXT (CAST reinterprets the bytes, already checked as UTF-8 by the JSON parser), so
    # a large body is neither decoded into a str nor encoded back by the driver.
    INSERT_SUBMISSION_UTF8 = INSERT_SUBMISSION.replace("?, ?, ?, ?, ?)", "CAST(? AS TEXT), ?, ?, ?, ?)")
    INSERT_IDEMPOTENCY = ('INSERT INTO idempotency (credit_code, "key", request_digest, submission_id, created_at) '
                          "VALUES (?, ?, ?, ?, ?)")
    # PostgreSQL: the opening read and the insert in one statement, the insert done only when
    # the read finds neither the key nor an accepted version (one snapshot; a concurrent
    # insert is refused by the unique indexes as ever). The rows found come back.
    INSERT_UNLESS_TAKEN = (f"WITH found AS ({IDEMPOTENCY_AND_ACCEPTED}), "
                           f"s AS (INSERT INTO submissions ({_SUBMISSION_COLUMNS}) "
                           "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS timestamptz) "
                           "WHERE NOT EXISTS (SELECT 1 FROM found) RETURNING submission_id), "
                           'k AS (INSERT INTO idempotency (credit_code, "key", request_digest, submission_id, created_at) '
                           "SELECT ?, ?, ?, s.submission_id, CAST(? AS timestamptz) FROM s) "
                           "SELECT * FROM found")
    # PostgreSQL: a document given as the received UTF-8 bytes is sent as they are (bytea) and
    # decoded by the server, which checks UTF-8 for text anyway: psycopg's str path (decode,
    # then encode for the wire) costs ~1 ms of the platform's CPU per 700 KB document.
    INSERT_UNLESS_TAKEN_UTF8 = INSERT_UNLESS_TAKEN.replace(
        "?, ?, ?, ?, CAST(? AS timestamptz) WHERE", "convert_from(?, 'UTF8'), ?, ?, ?, CAST(? AS timestamptz) WHERE")

    def __init__(self, sqlite: bool):
        self.sqlite = sqlite
        # PostgreSQL: the submission and its idempotency key in one statement (one round trip)
        self.INSERT_BOTH = self.INSERT_BOTH_UTF8 = None
        if not sqlite:  # psycopg's placeholder (none of the statements has a literal ? or %)
            self.INSERT_BOTH = f"WITH s AS ({self.INSERT_SUBMISSION}) {self.INSERT_IDEMPOTENCY}"
            self.INSERT_BOTH_UTF8 = self.INSERT_BOTH.replace("?, ?, ?, ?, ?)", "convert_from(?, 'UTF8'), ?, ?, ?, ?)", 1)
            for name, value in list(vars(_Sql).items()) + list(vars(self).items()):
                if name.isupper() and isinstance(value, str):
                    setattr(self, name, value.replace("?", "%s"))

    def instant(self, value: dt.datetime) -> Any:
        """A DateTime(timezone=True) column's bound value: SQLite's DateTime text (UTC), PostgreSQL's timestamptz."""
        if not self.sqlite:
            return value
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
        return (f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
                f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}")

    def read_instant(self, value: Any) -> dt.datetime:
        return _aware(dt.datetime.fromisoformat(value) if isinstance(value, str) else value)

    def submission(self, row: Any) -> SubmissionRecord:
        """From the columns of _SUBMISSION_COLUMNS, in order."""
        (submission_id, credit_code, document_type, report_id, period, version, kind, state, supersedes, superseded_by,
         document, document_digest, receipt, receipt_id, received_at) = row
        return SubmissionRecord(submission_id, credit_code, document_type, report_id, period, version, kind, state,
                                supersedes, superseded_by, document, document_digest, receipt, receipt_id,
                                self.read_instant(received_at))


class _Pool:
    """DBAPI connections from an engine's pool (PostgreSQL; a checkout costs a few µs, the
    statements run on the driver's cursor). A connection the server dropped is discarded by
    the pool itself when it is returned (its reset fails), so the next checkout gets a new one."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        conn = self.engine.raw_connection()
        try:
            cur = conn.cursor()
            try:
                yield cur
            finally:
                cur.close()
        finally:
            conn.close()

    def dispose(self) -> None:
        self.engine.dispose()


class _PerThread:
    """SQLite: one connection per thread (and durability mode), kept while the thread lives: a
    pool's checkout and return cost more CPU than the statements they serve, and a local file
    needs no pooling. Each connection is used by its own thread only."""

    def __init__(self, path: str, synchronous: str):
        self.path, self.synchronous = path, synchronous
        self._local = threading.local()

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
            _sqlite_pragmas(conn, self.synchronous)
            local.conn, local.depth = conn, 0
        local.depth += 1
        cur = conn.cursor()
        try:
            yield cur
        finally:
            cur.close()
            local.depth -= 1
            if local.depth == 0 and conn.in_transaction:  # left open by a failure: not carried into the next use
                try:
                    conn.rollback()
                except sqlite3.Error:
                    local.conn = None
                    conn.close()

    def dispose(self) -> None:
        """Forget every thread's connection (each is closed once no thread uses it)."""
        self._local = threading.local()


class _SqlSubmissionReader(SubmissionReader):
    def __init__(self, cur: Any, sql: _Sql):
        self.cur, self.sql = cur, sql

    def _one(self, statement: str, params: tuple[Any, ...]) -> Any:
        self.cur.execute(statement, params)
        return self.cur.fetchone()

    def idempotency(self, credit_code: str, key: str) -> IdempotencyRecord | None:
        row = self._one(self.sql.IDEMPOTENCY, (credit_code, key))
        # The key and its submission are written in one transaction: the join finds both or neither.
        return None if row is None else IdempotencyRecord(row[0], self.sql.submission(row[1:]))

    def accepted(self, credit_code: str, document_type: str, period: str) -> SubmissionRecord | None:
        row = self._one(self.sql.ACCEPTED, (credit_code, document_type, period))
        return self.sql.submission(row) if row else None

    def idempotency_and_accepted(self, credit_code: str, key: str, document_type: str,
                                 period: str) -> tuple[IdempotencyRecord | None, SubmissionRecord | None]:
        self.cur.execute(self.sql.IDEMPOTENCY_AND_ACCEPTED, (credit_code, key, credit_code, document_type, period))
        return self._found(self.cur.fetchall())

    def _found(self, rows: list[Any]) -> tuple[IdempotencyRecord | None, SubmissionRecord | None]:
        prior = current = None
        for row in rows:
            if row[0] is not None:
                prior = IdempotencyRecord(row[0], self.sql.submission(row[1:]))
            else:
                current = self.sql.submission(row[1:])
        return prior, current

    def submission(self, submission_id: str) -> SubmissionRecord | None:
        row = self._one(self.sql.SUBMISSION, (submission_id,))
        return self.sql.submission(row) if row else None


class _SqlSubmissionTransaction(_SqlSubmissionReader, SubmissionTransaction):
    began = True  # SQLite: from the first statement (the write lock is taken before the reads)

    def supersede(self, submission_id: str, by: str) -> bool:
        self.cur.execute(self.sql.SUPERSEDE, (by, submission_id))
        return int(self.cur.rowcount) == 1

    def insert(self, submission: SubmissionRecord, idempotency_key: str, request_digest: str) -> None:
        # SQLite: a document given as bytes is bound as a blob (INSERT_SUBMISSION_UTF8)
        statement = self.sql.INSERT_SUBMISSION_UTF8 if isinstance(submission.document, bytes) else self.sql.INSERT_SUBMISSION
        params = self.insert_parameters(submission, idempotency_key, request_digest)
        self.cur.execute(statement, params[:15])
        self.cur.execute(self.sql.INSERT_IDEMPOTENCY, params[15:])

    def insert_parameters(self, r: SubmissionRecord, idempotency_key: str, request_digest: str) -> tuple[Any, ...]:
        """The submission row's 15 values, then the idempotency key's 5."""
        sql = self.sql
        return (r.submission_id, r.credit_code, r.document_type, r.report_id, r.period, r.version, r.kind, r.state,
                r.supersedes, r.superseded_by, r.document, r.document_digest, r.receipt, r.receipt_id,
                sql.instant(r.received_at),
                r.credit_code, idempotency_key, request_digest, r.submission_id, sql.instant(utcnow()))


class _PgSubmissionTransaction(_SqlSubmissionTransaction):
    """PostgreSQL, on an autocommit connection with the server's durability: the reads run
    on their own (at read committed each statement of a transaction reads its own snapshot
    anyway); a transaction begins only for a correction's supersede; the insert (one
    statement: submission and key) is sent when the transaction ends cleanly. An original is
    then one durable round trip instead of four (BEGIN, read, INSERT, COMMIT):
    insert_unless_taken, the read and the insert in one statement, committed as it runs.
    Races are decided by the unique indexes and the guarded supersede, as before. Reads see
    nothing of a pending insert (the service reads before it writes)."""

    began = False
    pending: tuple[str, tuple[Any, ...]] | None = None

    def supersede(self, submission_id: str, by: str) -> bool:
        if not self.began:  # with the insert that follows: both or neither
            self.cur.execute("BEGIN")
            self.began = True
        return super().supersede(submission_id, by)

    def insert(self, submission: SubmissionRecord, idempotency_key: str, request_digest: str) -> None:
        assert self.pending is None, "one insert per transaction"
        statement = self.sql.INSERT_BOTH_UTF8 if isinstance(submission.document, bytes) else self.sql.INSERT_BOTH
        assert statement is not None  # PostgreSQL's
        self.pending = statement, self.insert_parameters(submission, idempotency_key, request_digest)

    def flush(self) -> None:
        if self.pending is not None:
            self.cur.execute(*self.pending)

    insert_first = True

    def insert_unless_taken(self, submission: SubmissionRecord, idempotency_key: str,
                            request_digest: str) -> tuple[IdempotencyRecord | None, SubmissionRecord | None]:
        assert self.pending is None and not self.began, "the transaction's one statement"
        r = submission
        params = self.insert_parameters(submission, idempotency_key, request_digest)
        self.cur.execute(self.sql.INSERT_UNLESS_TAKEN_UTF8 if isinstance(r.document, bytes) else self.sql.INSERT_UNLESS_TAKEN,
                         (r.credit_code, idempotency_key, r.credit_code, r.document_type, r.period, *params[:18],
                          params[19]))  # (the key's submission_id comes from the inserted row)
        return self._found(self.cur.fetchall())


class SqlStore(Store):
    def __init__(self, engine: Engine):
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self.sessions = make_sessions(engine)  # reads (and tests that look inside)
        self._writes = sessionmaker(engine.execution_options(cedx_write=True), expire_on_commit=False)
        self._write_lock = threading.Lock() if self.sqlite else None
        self._sql = _Sql(self.sqlite)
        self.token_and_hit_merged = not self.sqlite
        # The request path: durable transactions (submissions), and reads, counters and nonces
        # whose commits are not waited for on disk, without switching a connection's mode per
        # transaction: SQLite has a connection per thread for each, PostgreSQL a pool for each.
        self._fast: _PerThread | _Pool
        self._durable: _PerThread | _Pool
        path = engine.url.database or ""
        if self.sqlite and path not in ("", ":memory:"):
            self._fast, self._durable = _PerThread(path, "NORMAL"), _PerThread(path, "FULL")
        elif self.sqlite:  # a memory database exists once, in the engine's one connection
            self._fast = self._durable = _Pool(engine)
        else:  # two pools, so that no round trip switches a connection's durability
            self._fast = _Pool(make_engine(engine.url, raw=True))
            self._durable = _Pool(make_engine(engine.url, raw=True, durable=True))

    @classmethod
    def from_url(cls, url: str) -> SqlStore:
        return cls(make_engine(url))

    def dispose(self) -> None:
        """Close the connections (tests that drop a database)."""
        for part in (self._fast, self._durable):
            part.dispose()
        self.engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """A durable write transaction (administration; the request path uses _transaction)."""
        # SQLite has one writer at a time: the threads of this process queue on a lock rather
        # than in SQLite's busy handler, which sleeps in coarse steps (other processes still
        # wait there, bounded by busy_timeout).
        with self._write_lock or nullcontext(), self._writes() as s:
            try:
                yield s
                s.commit()
            except IntegrityError as exc:
                s.rollback()
                raise StoreConflict(str(exc.orig)) from None

    @contextmanager
    def _transaction(self) -> Iterator[_SqlSubmissionTransaction]:
        """A durable write transaction on a DBAPI cursor (SQLite: holding the write lock from
        its first statement; PostgreSQL: _PgSubmissionTransaction); StoreConflict when a
        uniqueness rule refused a write."""
        with self._write_lock or nullcontext(), self._durable.cursor() as cur:
            conn = cur.connection
            if self.sqlite:  # pysqlite's own transaction handling is off
                cur.execute("BEGIN IMMEDIATE")
                tx_: _SqlSubmissionTransaction = _SqlSubmissionTransaction(cur, self._sql)
            else:
                tx_ = _PgSubmissionTransaction(cur, self._sql)
            try:
                yield tx_
                if isinstance(tx_, _PgSubmissionTransaction):
                    tx_.flush()
            except BaseException as exc:
                if tx_.began:  # (a failed autocommit statement left nothing open)
                    conn.rollback()
                if isinstance(exc, self.engine.dialect.loaded_dbapi.IntegrityError):
                    raise StoreConflict(str(exc)) from None
                raise
            if tx_.began:
                conn.commit()

    @contextmanager
    def _light(self) -> Iterator[Any]:
        """A cursor on the fast pool for one write statement (its own transaction)."""
        with self._write_lock or nullcontext(), self._fast.cursor() as cur:
            yield cur

    # --- entities and facilities -----------------------------------------------------------
    def add_entity(self, credit_code: str) -> None:
        with self._write() as s:
            if s.get(EntityRow, credit_code) is None:
                s.add(EntityRow(credit_code=credit_code))

    def entity_known(self, credit_code: str) -> bool:
        with self.sessions() as s:
            return s.get(EntityRow, credit_code) is not None

    def entities(self) -> list[EntityRecord]:
        with self.sessions() as s:
            rows = s.execute(select(EntityRow.credit_code, EntityRow.document, EntityRow.created_at)
                             .order_by(EntityRow.credit_code)).all()
        return [EntityRecord(code, _entity_name(document), _aware(created)) for code, document, created in rows]

    def entity_document(self, credit_code: str) -> dict[str, Any] | None:
        with self.sessions() as s:
            row = s.get(EntityRow, credit_code)
            return row.document if row else None

    def register_entity(self, credit_code: str, document: dict[str, Any]) -> bool:
        with self._write() as s:
            row = s.get(EntityRow, credit_code)
            if row is not None and row.document is not None:
                return False
            if row is None:
                s.add(EntityRow(credit_code=credit_code, document=document))
            else:
                row.document = document
            return True

    def update_entity(self, credit_code: str, document: dict[str, Any]) -> bool:
        with self._write() as s:
            row = s.get(EntityRow, credit_code)
            if row is None or row.document is None:
                return False
            row.document = document
            return True

    def put_facility(self, credit_code: str, facility_id: str, document: dict[str, Any]) -> None:
        with self._write() as s:
            s.merge(FacilityRow(credit_code=credit_code, facility_id=facility_id, document=document))

    def facilities(self, credit_code: str, after: str | None, limit: int) -> list[tuple[str, dict[str, Any]]]:
        with self.sessions() as s:
            q = select(FacilityRow).where(FacilityRow.credit_code == credit_code)
            if after:
                q = q.where(FacilityRow.facility_id > after)
            return [(r.facility_id, r.document)
                    for r in s.scalars(q.order_by(FacilityRow.facility_id).limit(limit)).all()]

    # --- clients and tokens ----------------------------------------------------------------
    def add_client(self, client: ClientRecord) -> None:
        with self._write() as s:
            s.add(ClientRow(client_id=client.client_id, secret_hash=client.secret_hash,
                            credit_code=client.credit_code, scopes=client.scopes, active=client.active))

    def client(self, client_id: str) -> ClientRecord | None:
        with self.sessions() as s:
            row = s.get(ClientRow, client_id)
            return ClientRecord(row.client_id, row.secret_hash, row.credit_code, row.scopes, row.active) if row else None

    def clients(self, credit_code: str | None, now: dt.datetime) -> list[ClientListing]:
        # The secret's hash is never selected: a listing cannot show what it never read.
        live = (select(TokenRow.client_id, func.count().label("n")).where(TokenRow.expires_at > now)
                .group_by(TokenRow.client_id).subquery())
        q = (select(ClientRow.client_id, ClientRow.credit_code, ClientRow.scopes, ClientRow.active,
                    ClientRow.created_at, func.coalesce(live.c.n, 0))
             .outerjoin(live, live.c.client_id == ClientRow.client_id))
        if credit_code:
            q = q.where(ClientRow.credit_code == credit_code)
        with self.sessions() as s:
            rows = s.execute(q.order_by(ClientRow.credit_code, ClientRow.client_id)).all()
        return [ClientListing(client_id, code, scopes, bool(active), _aware(created) if created else None, int(n))
                for client_id, code, scopes, active, created, n in rows]

    def set_client_active(self, client_id: str, active: bool) -> bool:
        with self._write() as s:
            done = _rowcount(s.execute(update(ClientRow).where(ClientRow.client_id == client_id).values(active=active)))
            if not active:
                s.execute(delete(TokenRow).where(TokenRow.client_id == client_id))
            return done == 1

    def add_token(self, token: TokenRecord) -> None:
        with self._write() as s:
            s.add(TokenRow(token_hash=token.token_hash, client_id=token.client_id, credit_code=token.credit_code,
                           scopes=token.scopes, expires_at=token.expires_at))

    def token(self, token_hash: str) -> TokenRecord | None:
        with self._fast.cursor() as cur:
            cur.execute(self._sql.TOKEN, (token_hash,))
            t = cur.fetchone()
        if t is None:
            return None
        return TokenRecord(t[0], t[1], t[2], t[3], self._sql.read_instant(t[4]), bool(t[5]),
                           None if t[6] is None else int(t[6]))

    def token_and_hit(self, token_hash: str, scopes: tuple[str, ...], now: dt.datetime, key_prefix: str,
                      window: int) -> tuple[TokenRecord | None, int | None]:
        if self.sqlite or any(not s or " " in s for s in scopes):  # SQLite: a local file, no round trips to save
            return super().token_and_hit(token_hash, scopes, now, key_prefix, window)
        with self._fast.cursor() as cur:
            if secrets.randbelow(500) == 0:  # as in hit
                cur.execute(self._sql.WINDOWS_OLD, (window - 3600,))
            cur.execute(self._sql.TOKEN_AND_HIT, (token_hash, key_prefix, window, now, " ".join(scopes)))
            t = cur.fetchone()
        if t is None:
            return None, None
        return (TokenRecord(t[0], t[1], t[2], t[3], self._sql.read_instant(t[4]), bool(t[5]),
                            None if t[6] is None else int(t[6])),
                None if t[7] is None else int(t[7]))

    def revoke_token(self, token_hash: str, client_id: str) -> bool:
        with self._write() as s:
            return _rowcount(s.execute(delete(TokenRow).where(TokenRow.token_hash == token_hash,
                                                              TokenRow.client_id == client_id))) == 1

    # --- nonces ----------------------------------------------------------------------------
    def add_nonce(self, nonce: str, expires_at: float) -> bool:
        now = int(time.time())
        with self._light() as cur:
            if secrets.randbelow(200) == 0:  # now and then, forget expired nonces
                cur.execute(self._sql.NONCES_EXPIRED, (now,))
            # One statement, so its own transaction: a row back means recorded (new, or expired and renewed).
            cur.execute(self._sql.NONCE, (nonce, int(expires_at) + 1, now))
            return len(cur.fetchall()) == 1

    # --- certificates and revocation -------------------------------------------------------
    def add_certificate(self, certificate: CertificateRecord) -> None:
        with self._write() as s:
            s.merge(CertificateRow(key_id=certificate.key_id, credit_code=certificate.credit_code,
                                   der=certificate.der, serial=str(certificate.serial), revoked=False,
                                   revoked_at=None))

    def certificate(self, key_id: str) -> CertificateRecord | None:
        with self.sessions() as s:
            row = s.get(CertificateRow, key_id)
            return _certificate(row) if row else None

    def certificates(self, credit_code: str | None = None) -> list[CertificateRecord]:
        with self.sessions() as s:
            q = select(CertificateRow)
            if credit_code:
                q = q.where(CertificateRow.credit_code == credit_code)
            return [_certificate(r) for r in s.scalars(q.order_by(CertificateRow.key_id)).all()]

    def revoke_certificate(self, key_id: str, at: dt.datetime) -> CertificateRecord | None:
        with self._write() as s:
            row = s.get(CertificateRow, key_id)
            if row is None:
                return None
            if not row.revoked:
                row.revoked, row.revoked_at = True, at
                s.execute(update(RevocationRow).where(RevocationRow.id == 1)
                          .values(counter=RevocationRow.counter + 1))
            s.flush()
            return _certificate(row)

    def revocation_counter(self) -> int:
        with self._fast.cursor() as cur:
            cur.execute(self._sql.REVOCATIONS)
            return int(cur.fetchone()[0])

    # --- rate limits -----------------------------------------------------------------------
    def hit(self, key: str, window: int) -> int:
        with self._light() as cur:
            if secrets.randbelow(500) == 0:  # now and then, forget windows older than an hour
                cur.execute(self._sql.WINDOWS_OLD, (window - 3600,))
            cur.execute(self._sql.HIT, (key, window))  # one statement, so its own transaction
            return int(cur.fetchall()[0][0])

    def count(self, key: str, window: int) -> int:
        with self._fast.cursor() as cur:
            cur.execute(self._sql.COUNT, (key, window))
            row = cur.fetchone()
        return int(row[0]) if row else 0

    # --- submissions -----------------------------------------------------------------------
    @contextmanager
    def submission_reader(self) -> Iterator[SubmissionReader]:
        with self._fast.cursor() as cur:
            if not self.sqlite:  # autocommit, as PostgreSQL's read committed reads anyway
                yield _SqlSubmissionReader(cur, self._sql)
                return
            cur.execute("BEGIN")  # one snapshot
            try:
                yield _SqlSubmissionReader(cur, self._sql)
            finally:
                cur.connection.rollback()

    @contextmanager
    def submission_transaction(self) -> Iterator[SubmissionTransaction]:
        with self._transaction() as tx_:
            yield tx_

    def submission(self, submission_id: str) -> SubmissionRecord | None:
        with self._fast.cursor() as cur:
            return _SqlSubmissionReader(cur, self._sql).submission(submission_id)

    def submissions(self, credit_code: str, *, document_type: str | None, period: str | None, state: str | None,
                    after: tuple[dt.datetime, str] | None, limit: int) -> list[SubmissionRecord]:
        with self.sessions() as s:
            q = select(SubmissionRow).where(SubmissionRow.credit_code == credit_code)
            if document_type:
                q = q.where(SubmissionRow.document_type == document_type)
            if period:
                q = q.where(SubmissionRow.period == period)
            if state:
                q = q.where(SubmissionRow.state == state)
            if after:
                when, sid = after
                q = q.where(or_(SubmissionRow.received_at > when,
                                and_(SubmissionRow.received_at == when, SubmissionRow.submission_id > sid)))
            rows = s.scalars(q.order_by(SubmissionRow.received_at, SubmissionRow.submission_id).limit(limit)).all()
            return [_submission(r) for r in rows]

    def count_submissions(self, credit_code: str, period_prefix: str = "") -> dict[str, int]:
        """Per period (tests and operators)."""
        with self.sessions() as s:
            rows = s.execute(select(SubmissionRow.period, func.count()).where(
                SubmissionRow.credit_code == credit_code, SubmissionRow.period.like(f"{period_prefix}%"))
                .group_by(SubmissionRow.period)).all()
        return {p: int(n) for p, n in rows}
