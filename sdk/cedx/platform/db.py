"""The platform's store on SQLAlchemy 2: a SQLite file by default, PostgreSQL when
CEDX_DATABASE_URL is given. This is the one file that knows SQL and the differences between
the two databases (upserts, write-transaction mode, pragmas).

Documents are stored exactly as received (JSON text), so a receipt's digest can always be
recomputed from what is on disk.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, cast

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
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from .store import (
    CertificateRecord,
    ClientRecord,
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
def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            _create_private_file(Path(path))
        # No pre-ping: a local file does not drop connections. pysqlite's own transaction
        # handling is switched off so that write transactions can BEGIN IMMEDIATE (below).
        engine = create_engine(url, future=True)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:  # durable, and concurrent enough for one host
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            options = conn.get_execution_options()
            # Rate-limit counters and nonces need no fsync per commit (WAL keeps them consistent;
            # an OS crash may forget the last few); submissions and everything else do.
            mode = "NORMAL" if options.get("cedx_light") else "FULL"
            info = conn.connection.info
            if info.get("synchronous") != mode:  # a statement only when the mode changes
                conn.exec_driver_sql(f"PRAGMA synchronous={mode}")
                info["synchronous"] = mode
            # A write transaction takes the write lock up front: a deferred transaction that
            # reads first and writes later fails with SQLITE_BUSY when another worker wrote between.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get("cedx_write") else "BEGIN")
    else:
        # No ping per checkout (a round trip per request); stale connections are recycled instead.
        engine = create_engine(url, future=True, pool_recycle=1800)
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        if conn.execute(select(RevocationRow.id)).first() is None:
            try:
                conn.execute(insert(RevocationRow).values(id=1, counter=0))
            except IntegrityError:  # another worker created it
                pass
    return engine


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


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


def _certificate(row: CertificateRow) -> CertificateRecord:
    return CertificateRecord(key_id=row.key_id, credit_code=row.credit_code, der=row.der, serial=int(row.serial),
                             revoked_at=_aware(row.revoked_at) if row.revoked_at else
                             (utcnow() if row.revoked else None))


# The request path's statements, built once and run on Core connections: the ORM's unit of work
# and identity map cost more than the statements themselves at this size (issue 14).
_SUBMISSIONS = cast(Table, SubmissionRow.__table__)
_IDEMPOTENCY = cast(Table, IdempotencyRow.__table__)
_IDEMPOTENCY_Q = (select(_IDEMPOTENCY.c.request_digest, _SUBMISSIONS)
                  .join(_SUBMISSIONS, _SUBMISSIONS.c.submission_id == _IDEMPOTENCY.c.submission_id)
                  .where(_IDEMPOTENCY.c.credit_code == bindparam("credit_code"), _IDEMPOTENCY.c.key == bindparam("key")))
_ACCEPTED_Q = select(_SUBMISSIONS).where(
    _SUBMISSIONS.c.credit_code == bindparam("credit_code"), _SUBMISSIONS.c.document_type == bindparam("document_type"),
    _SUBMISSIONS.c.period == bindparam("period"), _SUBMISSIONS.c.state == "accepted")
_SUBMISSION_Q = select(_SUBMISSIONS).where(_SUBMISSIONS.c.submission_id == bindparam("submission_id"))
_SUPERSEDE = (update(_SUBMISSIONS).where(_SUBMISSIONS.c.submission_id == bindparam("sid"),
                                         _SUBMISSIONS.c.state == "accepted")
              .values(state="superseded", superseded_by=bindparam("by")))
_TOKEN_Q = (select(TokenRow.token_hash, TokenRow.client_id, TokenRow.credit_code, TokenRow.scopes, TokenRow.expires_at,
                   ClientRow.active)
            .join(ClientRow, ClientRow.client_id == TokenRow.client_id).where(TokenRow.token_hash == bindparam("h")))
_REVOCATION_Q = select(RevocationRow.counter).where(RevocationRow.id == 1)
_INSERT_SUBMISSION = insert(_SUBMISSIONS)
# SQLite: a document given as the received UTF-8 bytes is bound as a blob and stored as the
# same TEXT (CAST reinterprets the bytes, already checked as UTF-8 by the JSON parser), so
# a large body is neither decoded into a str nor encoded back by the driver (issue 14).
_INSERT_SUBMISSION_UTF8 = insert(_SUBMISSIONS).values(
    document=type_coerce(bindparam("document_utf8", type_=LargeBinary()), Text()).cast(Text()))
_INSERT_IDEMPOTENCY = insert(_IDEMPOTENCY)


class _SqlSubmissionReader(SubmissionReader):
    def __init__(self, conn: Connection):
        self.c = conn

    def idempotency(self, credit_code: str, key: str) -> IdempotencyRecord | None:
        row = self.c.execute(_IDEMPOTENCY_Q, {"credit_code": credit_code, "key": key}).first()
        # The key and its submission are written in one transaction: the join finds both or neither.
        return None if row is None else IdempotencyRecord(row.request_digest, _submission(row))

    def accepted(self, credit_code: str, document_type: str, period: str) -> SubmissionRecord | None:
        row = self.c.execute(_ACCEPTED_Q, {"credit_code": credit_code, "document_type": document_type,
                                           "period": period}).first()
        return _submission(row) if row else None

    def submission(self, submission_id: str) -> SubmissionRecord | None:
        row = self.c.execute(_SUBMISSION_Q, {"submission_id": submission_id}).first()
        return _submission(row) if row else None


class _SqlSubmissionTransaction(_SqlSubmissionReader, SubmissionTransaction):
    def supersede(self, submission_id: str, by: str) -> bool:
        return _rowcount(self.c.execute(_SUPERSEDE, {"sid": submission_id, "by": by})) == 1

    def insert(self, submission: SubmissionRecord, idempotency_key: str, request_digest: str) -> None:
        r = submission
        values = {
            "submission_id": r.submission_id, "credit_code": r.credit_code, "document_type": r.document_type,
            "report_id": r.report_id, "period": r.period, "version": r.version, "kind": r.kind, "state": r.state,
            "supersedes": r.supersedes, "superseded_by": r.superseded_by,
            "document_digest": r.document_digest, "receipt": r.receipt, "receipt_id": r.receipt_id,
            "received_at": r.received_at}
        if isinstance(r.document, str):
            self.c.execute(_INSERT_SUBMISSION, {**values, "document": r.document})
        elif self.c.dialect.name == "sqlite":
            self.c.execute(_INSERT_SUBMISSION_UTF8, {**values, "document_utf8": r.document})
        else:
            self.c.execute(_INSERT_SUBMISSION, {**values, "document": r.document.decode("utf-8")})
        self.c.execute(_INSERT_IDEMPOTENCY, {
            "credit_code": r.credit_code, "key": idempotency_key, "request_digest": request_digest,
            "submission_id": r.submission_id, "created_at": utcnow()})


class SqlStore(Store):
    def __init__(self, engine: Engine):
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self.sessions = make_sessions(engine)  # reads (and tests that look inside)
        self._writes = sessionmaker(engine.execution_options(cedx_write=True), expire_on_commit=False)
        self._light_writes = sessionmaker(engine.execution_options(cedx_write=True, cedx_light=True),
                                          expire_on_commit=False)
        self._write_lock = threading.Lock() if self.sqlite else None
        self._write_engine = engine.execution_options(cedx_write=True)
        # The upserts of every signed request, built once (INSERT ... ON CONFLICT in either dialect).
        nonce = self._insert(NonceRow).values(nonce=bindparam("nonce"), expires_at=bindparam("exp"))
        self._nonce_upsert = nonce.on_conflict_do_update(
            index_elements=["nonce"], set_={"expires_at": nonce.excluded.expires_at},
            where=NonceRow.expires_at < bindparam("now")).returning(NonceRow.nonce)
        hit = self._insert(RateCounterRow).values(key=bindparam("key"), window=bindparam("window"), count=1)
        self._hit_upsert = hit.on_conflict_do_update(index_elements=["key", "window"],
                                                     set_={"count": RateCounterRow.count + 1}).returning(RateCounterRow.count)
        self._light_engine = engine.execution_options(cedx_write=True, cedx_light=True)

    @classmethod
    def from_url(cls, url: str) -> SqlStore:
        return cls(make_engine(url))

    @contextmanager
    def _write(self, light: bool = False) -> Iterator[Session]:
        """A write transaction; ``light`` ones (counters, nonces) skip the flush to disk."""
        # SQLite has one writer at a time: the threads of this process queue on a lock rather
        # than in SQLite's busy handler, which sleeps in coarse steps (other processes still
        # wait there, bounded by busy_timeout).
        with self._write_lock or nullcontext(), (self._light_writes if light else self._writes)() as s:
            try:
                if light and not self.sqlite:
                    s.execute(text("SET LOCAL synchronous_commit TO OFF"))
                yield s
                s.commit()
            except IntegrityError as exc:
                s.rollback()
                raise StoreConflict(str(exc.orig)) from None

    @contextmanager
    def _write_conn(self, light: bool = False) -> Iterator[Connection]:
        """``_write`` on a Core connection (the request path's writes)."""
        with self._write_lock or nullcontext(), (self._light_engine if light else self._write_engine).connect() as c:
            try:
                with c.begin():
                    if light and not self.sqlite:
                        c.execute(text("SET LOCAL synchronous_commit TO OFF"))
                    yield c
            except IntegrityError as exc:
                raise StoreConflict(str(exc.orig)) from None

    def _insert(self, entity: type[Base]) -> Any:
        """INSERT with ON CONFLICT (both dialects have it, spelled by their own constructs)."""
        return (sqlite.insert if self.sqlite else postgresql.insert)(entity)

    # --- entities and facilities -----------------------------------------------------------
    def add_entity(self, credit_code: str) -> None:
        with self._write() as s:
            if s.get(EntityRow, credit_code) is None:
                s.add(EntityRow(credit_code=credit_code))

    def entity_known(self, credit_code: str) -> bool:
        with self.sessions() as s:
            return s.get(EntityRow, credit_code) is not None

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
        with self.engine.connect() as conn:
            t = conn.execute(_TOKEN_Q, {"h": token_hash}).first()
        if t is None:
            return None
        return TokenRecord(t.token_hash, t.client_id, t.credit_code, t.scopes, _aware(t.expires_at), bool(t.active))

    def revoke_token(self, token_hash: str, client_id: str) -> bool:
        with self._write() as s:
            return _rowcount(s.execute(delete(TokenRow).where(TokenRow.token_hash == token_hash,
                                                              TokenRow.client_id == client_id))) == 1

    # --- nonces ----------------------------------------------------------------------------
    def add_nonce(self, nonce: str, expires_at: float) -> bool:
        now = int(time.time())
        with self._write_conn(light=True) as s:
            if secrets.randbelow(200) == 0:  # now and then, forget expired nonces
                s.execute(delete(NonceRow).where(NonceRow.expires_at < now))
            return s.execute(self._nonce_upsert, {"nonce": nonce, "exp": int(expires_at) + 1, "now": now}).first() \
                is not None

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
        with self.engine.connect() as conn:
            return int(conn.execute(_REVOCATION_Q).scalar_one())

    # --- rate limits -----------------------------------------------------------------------
    def hit(self, key: str, window: int) -> int:
        with self._write_conn(light=True) as s:
            if secrets.randbelow(500) == 0:  # now and then, forget windows older than an hour
                s.execute(delete(RateCounterRow).where(RateCounterRow.window < window - 3600))
            return int(s.execute(self._hit_upsert, {"key": key, "window": window}).scalar_one())

    def count(self, key: str, window: int) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(RateCounterRow.count).where(
                RateCounterRow.key == key, RateCounterRow.window == window)).scalar() or 0)

    # --- submissions -----------------------------------------------------------------------
    @contextmanager
    def submission_reader(self) -> Iterator[SubmissionReader]:
        with self.engine.connect() as conn:
            yield _SqlSubmissionReader(conn)

    @contextmanager
    def submission_transaction(self) -> Iterator[SubmissionTransaction]:
        with self._write_conn() as conn:
            yield _SqlSubmissionTransaction(conn)

    def submission(self, submission_id: str) -> SubmissionRecord | None:
        with self.sessions() as s:
            row = s.get(SubmissionRow, submission_id)
            return _submission(row) if row else None

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
