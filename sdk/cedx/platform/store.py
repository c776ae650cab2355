"""What the reference platform keeps, as a small interface: entities and facilities, API clients
and their tokens, request nonces, certificates and revocation state, rate-limit counters,
submissions with their receipts and idempotency keys.

The service (`service.py`) and the security hooks (`security.py`) speak only this interface;
`db.py` implements it with SQLAlchemy, and every SQLite/PostgreSQL difference lives there.
Everything that must hold across worker processes and hosts (nonces, token and client state,
revocations, rate-limit counters, one accepted version per period) is decided by the database.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any


class StoreConflict(Exception):
    """A uniqueness rule of the store refused the write (another worker won a race)."""


@dataclass(frozen=True)
class ClientRecord:
    client_id: str
    secret_hash: str
    credit_code: str
    scopes: str
    active: bool = True


@dataclass(frozen=True)
class ClientListing:
    """An API client as the operator lists it: never its secret or the secret's hash."""
    client_id: str
    credit_code: str
    scopes: str
    active: bool
    created_at: dt.datetime | None  # None: created before the platform recorded it
    live_tokens: int                # tokens not yet expired


@dataclass(frozen=True)
class EntityRecord:
    """A registered reporting entity as the operator lists it."""
    credit_code: str
    name: str | None                # from its Entity document, once it registered one
    registered_at: dt.datetime


@dataclass(frozen=True)
class TokenRecord:
    token_hash: str
    client_id: str
    credit_code: str
    scopes: str
    expires_at: dt.datetime
    client_active: bool = True
    #: the revocation counter (see revocation_counter), read with the token when looked up:
    #: the request's certificate checks use the state of the moment it was authenticated
    revocations: int | None = None


@dataclass(frozen=True)
class CertificateRecord:
    key_id: str
    credit_code: str
    der: bytes
    serial: int
    revoked_at: dt.datetime | None = None


@dataclass(frozen=True)
class SubmissionRecord:
    submission_id: str
    credit_code: str
    document_type: str
    report_id: str
    period: str
    version: int
    kind: str
    state: str
    supersedes: str | None
    superseded_by: str | None
    document: str | bytes  # the signed document exactly as received (JSON text; its UTF-8 bytes on insert)
    document_digest: str
    receipt: str           # the signed receipt (JSON text)
    receipt_id: str
    received_at: dt.datetime


@dataclass(frozen=True)
class IdempotencyRecord:
    request_digest: str
    submission: SubmissionRecord


class SubmissionReader(ABC):
    """A consistent read of the submission state (one snapshot)."""

    @abstractmethod
    def idempotency(self, credit_code: str, key: str) -> IdempotencyRecord | None: ...

    @abstractmethod
    def accepted(self, credit_code: str, document_type: str, period: str) -> SubmissionRecord | None: ...

    @abstractmethod
    def submission(self, submission_id: str) -> SubmissionRecord | None: ...

    def idempotency_and_accepted(self, credit_code: str, key: str, document_type: str,
                                 period: str) -> tuple[IdempotencyRecord | None, SubmissionRecord | None]:
        """The two reads that open every submission (a store may make them one statement)."""
        return self.idempotency(credit_code, key), self.accepted(credit_code, document_type, period)


class SubmissionTransaction(SubmissionReader):
    """The one write transaction of a submission: read the state, decide, write, commit."""

    @abstractmethod
    def supersede(self, submission_id: str, by: str) -> bool:
        """Mark an accepted submission superseded; False when it is no longer the accepted one."""

    @abstractmethod
    def insert(self, submission: SubmissionRecord, idempotency_key: str, request_digest: str) -> None: ...

    #: True when ``insert_unless_taken`` saves a round trip, so that the service may make an
    #: original's receipt before it reads (PostgreSQL: the read and the insert one statement)
    insert_first = False

    def insert_unless_taken(self, submission: SubmissionRecord, idempotency_key: str,
                            request_digest: str) -> tuple[IdempotencyRecord | None, SubmissionRecord | None]:
        """``idempotency_and_accepted`` for the submission's key and period and, when both are
        None, ``insert``; what was found (nothing was written when either is not None). The
        transaction's last step: a store may commit the insert as it runs."""
        r = submission
        prior, current = self.idempotency_and_accepted(r.credit_code, idempotency_key, r.document_type, r.period)
        if prior is None and current is None:
            self.insert(submission, idempotency_key, request_digest)
        return prior, current


class Store(ABC):
    # --- entities and facilities -----------------------------------------------------------
    @abstractmethod
    def add_entity(self, credit_code: str) -> None: ...

    @abstractmethod
    def entity_known(self, credit_code: str) -> bool: ...

    @abstractmethod
    def entities(self) -> list[EntityRecord]:
        """Every registered entity, by credit code."""

    @abstractmethod
    def entity_document(self, credit_code: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def register_entity(self, credit_code: str, document: dict[str, Any]) -> bool:
        """Store the entity's first document; False when it has one already."""

    @abstractmethod
    def update_entity(self, credit_code: str, document: dict[str, Any]) -> bool:
        """Replace the entity's document; False when it has none yet."""

    @abstractmethod
    def put_facility(self, credit_code: str, facility_id: str, document: dict[str, Any]) -> None: ...

    @abstractmethod
    def facilities(self, credit_code: str, after: str | None, limit: int) -> list[tuple[str, dict[str, Any]]]: ...

    # --- API clients and tokens ------------------------------------------------------------
    @abstractmethod
    def add_client(self, client: ClientRecord) -> None:
        """Raises StoreConflict when the client ID exists."""

    @abstractmethod
    def client(self, client_id: str) -> ClientRecord | None: ...

    @abstractmethod
    def clients(self, credit_code: str | None, now: dt.datetime) -> list[ClientListing]:
        """Every client (or one entity's), by entity and client ID, with its tokens live at ``now``."""

    @abstractmethod
    def set_client_active(self, client_id: str, active: bool) -> bool:
        """Enable or disable; disabling also deletes the client's tokens. False if unknown."""

    @abstractmethod
    def add_token(self, token: TokenRecord) -> None: ...

    @abstractmethod
    def token(self, token_hash: str) -> TokenRecord | None:
        """The token with its client's current state (checked on every request) and the
        current revocation counter."""

    #: True when ``token_and_hit`` counts the hit in the token's lookup (saves a round trip)
    token_and_hit_merged = False

    def token_and_hit(self, token_hash: str, scopes: tuple[str, ...], now: dt.datetime, key_prefix: str,
                      window: int) -> tuple[TokenRecord | None, int | None]:
        """The token (as ``token``) and, when it authenticates a request for ``scopes`` at ``now``
        (client active, not expired, every scope granted), the rate-limit hit of key
        ``key_prefix + client_id`` in ``window`` (as ``hit``), else None: the caller counts
        it itself when its own check passes. A store may do both in one statement."""
        return self.token(token_hash), None

    @abstractmethod
    def revoke_token(self, token_hash: str, client_id: str) -> bool: ...

    # --- request nonces --------------------------------------------------------------------
    @abstractmethod
    def add_nonce(self, nonce: str, expires_at: float) -> bool:
        """Record a nonce; False when it was seen and has not expired (a replay)."""

    # --- certificates and revocation -------------------------------------------------------
    @abstractmethod
    def add_certificate(self, certificate: CertificateRecord) -> None: ...

    @abstractmethod
    def certificate(self, key_id: str) -> CertificateRecord | None: ...

    @abstractmethod
    def certificates(self, credit_code: str | None = None) -> list[CertificateRecord]: ...

    @abstractmethod
    def revoke_certificate(self, key_id: str, at: dt.datetime) -> CertificateRecord | None:
        """Mark revoked and advance the revocation counter in the same transaction."""

    @abstractmethod
    def revocation_counter(self) -> int:
        """Advances with every revocation; workers compare it per request to drop cached keys."""

    # --- rate limits -----------------------------------------------------------------------
    @abstractmethod
    def hit(self, key: str, window: int) -> int:
        """Count one event for ``key`` in fixed window ``window``; the new count."""

    @abstractmethod
    def count(self, key: str, window: int) -> int: ...

    # --- submissions -----------------------------------------------------------------------
    @abstractmethod
    def submission_reader(self) -> AbstractContextManager[SubmissionReader]: ...

    @abstractmethod
    def submission_transaction(self) -> AbstractContextManager[SubmissionTransaction]:
        """Commits on a clean exit; raises StoreConflict when a uniqueness rule refused it."""

    @abstractmethod
    def submission(self, submission_id: str) -> SubmissionRecord | None: ...

    @abstractmethod
    def submissions(self, credit_code: str, *, document_type: str | None, period: str | None,
                    state: str | None, after: tuple[dt.datetime, str] | None,
                    limit: int) -> list[SubmissionRecord]:
        """Ordered by (received_at, submission_id), strictly after the cursor position."""
