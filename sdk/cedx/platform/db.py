"""Storage of the reference platform (SQLAlchemy 2): SQLite file by default, PostgreSQL when
CEDX_DATABASE_URL is given. Documents are stored exactly as received (JSON text), so a receipt's
digest can always be recomputed from what is on disk."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker


class Base(DeclarativeBase):
    pass


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class EntityRow(Base):
    __tablename__ = "entities"
    credit_code: Mapped[str] = mapped_column(String(18), primary_key=True)
    document: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # the Entity document once registered
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
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class TokenRow(Base):
    __tablename__ = "tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # SM3 of the token
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id"))
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
    expires_at: Mapped[float] = mapped_column(Integer)


class FacilityRow(Base):
    __tablename__ = "facilities"
    credit_code: Mapped[str] = mapped_column(String(18), primary_key=True)
    facility_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    document: Mapped[dict] = mapped_column(JSON)




def make_engine(url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=True, future=True)
    if url.startswith("sqlite"):
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # durable and concurrent enough for one host
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()
    Base.metadata.create_all(engine)
    return engine


def make_sessions(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
