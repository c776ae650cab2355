"""A durable outbox (SQLite) for submissions: what an ERP/MES embeds so that a report survives a
crash or an outage and is stored by the platform exactly once.

``enqueue`` signs the document and stores it with a fresh idempotency key before anything is
sent (fsync'd: synchronous=FULL). ``deliver`` sends pending items in order with their stored
key and exact bytes; whatever happened before — a crash after the platform stored it, a lost
answer — the platform answers the same receipt for the same key and body, so a retry can never
create a second submission. Items the platform refuses (4xx other than 408/429) are parked as
failed with the problem, for a person to look at; except one refused as signed too long ago
(an outage of more than 7 days) or for a certificate the client has replaced (a key rotation),
which is signed again under a new idempotency key and sent once more — when the outbox signed it
in the first place: a document the caller enqueued already signed is parked saying so (only
the caller can sign it again, with its own key and envelope). A
refusal of the client's credentials (401, or 403 SCOPE_INSUFFICIENT) parks nothing: the item
stays pending and ``deliver`` raises it. Nor does a receipt that is no proof of delivery (its
signature does not verify, or it is for another document: ``ReceiptMismatch``): the item stays
pending with the reason as ``last_error``, and ``deliver`` raises it. The platform answered 201,
so nothing was refused, and the item keeps its key and bytes: once the platform answers the
receipt it stored for them, the next ``deliver`` records it, still without a second submission.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from .. import spec
from ..spec.facts import SpecFacts
from .errors import (
    ApiError,
    AuthenticationError,
    ConfigurationError,
    SignatureVerificationError,
    TransportError,
)
from .operations import OperationInfo

log = logging.getLogger("cedx.outbox")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    document TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    receipt TEXT,
    created_at REAL NOT NULL,
    delivered_at REAL,
    signed_here INTEGER
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(state, seq);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


_STATES = ("pending", "delivered", "failed")
_ITEM_COLUMNS = "id, kind, state, attempts, last_error, receipt"


@dataclass(frozen=True)
class OutboxItem:
    """One queued document: ``state`` is ``pending`` (not delivered yet; ``last_error`` says why),
    ``delivered`` (``receipt`` is the verified receipt as JSON) or ``failed`` (refused by the
    platform; ``last_error`` holds the problem)."""

    id: str
    kind: str
    state: str
    attempts: int
    last_error: str | None
    receipt: dict[str, Any] | None


class Outbox:
    """A durable, ordered queue of signed documents in SQLite: ``enqueue`` validates, signs and
    stores; ``deliver`` sends with the stored idempotency key, so each is stored exactly once."""

    def __init__(self, path: str | Path, client: Any):
        aio = sys.modules.get("cedx.runtime.aio")  # loaded if the caller holds an asyncio client
        if aio is not None and isinstance(client, aio.AsyncBaseClient):
            raise ConfigurationError("the Outbox delivers with a blocking client (cedx.ReportingClient), "
                                     f"not {type(client).__name__}; run deliver() in a thread from asyncio")
        self.path = str(path)
        self.client = client
        self._lock = threading.Lock()  # one delivery loop at a time per process
        try:
            with self._db() as db:
                db.executescript(_SCHEMA)
                # an outbox made by cedx before this column: added under the write lock, so that
                # processes opening the same file at once do not both add it
                db.execute("BEGIN IMMEDIATE")
                columns = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
                if "signed_here" not in columns:
                    db.execute("ALTER TABLE outbox ADD COLUMN signed_here INTEGER")
                db.execute("COMMIT")
        except sqlite3.Error as exc:  # a directory that does not exist, a file that is not a database...
            raise ConfigurationError(f"cannot use {self.path} as the outbox: {exc}") from exc

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A connection for one unit of work, always closed (sqlite3's own context manager only
        commits, leaving the connection to the garbage collector and a ResourceWarning)."""
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            yield db
        finally:
            db.close()

    # --- writing --------------------------------------------------------------------------
    def enqueue(self, document: Any, kind: str = "monthly_report") -> str:
        """Validate, sign (if a payload is given) and store durably; returns the item id. A
        document that breaks the schema or a quality rule raises ValidationError, and a client
        that could not verify the receipt (no trust anchors) ConfigurationError; neither is stored."""
        if kind not in self._facts().submit_operations:
            raise ConfigurationError(  # also a ValueError, as this once was
                f"unknown document kind {kind!r}; one of: {', '.join(sorted(self._facts().submit_operations))}")
        operation = self.client_operation(kind)
        if hasattr(self.client, "_validate_document"):
            self.client._validate_document(operation, document)
        if hasattr(self.client, "_check_verifiable"):  # no usable trust anchors: refused now, not at every deliver
            self.client._check_verifiable(operation)
        record = self.client._record(document)
        # 1: the outbox signs it (it may sign it again, see _sign_again); 0: the caller did
        signed_here = 0 if isinstance(record, dict) and "signature" in record else 1
        envelope = self.client._sign_body(operation, record)
        item_id = str(uuid.uuid4())
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox").fetchone()[0]
            db.execute(
                "INSERT INTO outbox (id, seq, kind, document, idempotency_key, created_at, signed_here) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (item_id, seq, kind, json.dumps(envelope, ensure_ascii=False), str(uuid.uuid4()), time.time(),
                 signed_here),
            )
            db.execute("COMMIT")
        return item_id

    def _facts(self) -> SpecFacts:
        """The spec the client was generated from: which operation submits which document type
        (DocumentType), by what method name. The client carries its operations, so the runtime
        never imports generated modules."""
        ops = self.client.operations
        package = next(iter(ops.values())).spec_package if ops else spec.BUNDLE_PACKAGE
        return spec.context(package).index.facts

    def client_operation(self, kind: str) -> OperationInfo:
        operation: OperationInfo = self.client.operations[self._facts().submit_operations[kind]]
        return operation

    # --- delivering -----------------------------------------------------------------------
    def deliver(self, limit: int | None = None) -> int:
        """Send pending items in order; stops at the first transient failure. Returns how many
        were delivered in this call. Raises ``AuthError`` when the platform refuses the client's
        credentials, and ``SignatureVerificationError`` (``ReceiptMismatch``) when a receipt is no
        proof that the item was stored (the items stay pending)."""
        delivered = 0
        resigned: set[str] = set()
        with self._lock:
            while limit is None or delivered < limit:
                with self._db() as db:
                    row = db.execute(
                        "SELECT id, kind, document, idempotency_key, signed_here FROM outbox WHERE state = 'pending' "
                        "ORDER BY seq LIMIT 1"
                    ).fetchone()
                if row is None:
                    return delivered
                item_id, kind, document, key, signed_here = row
                try:
                    method = self._facts().operations[self._facts().submit_operations[kind]]
                    receipt = getattr(self.client, method)(json.loads(document), idempotency_key=key)
                except ApiError as exc:
                    if exc.status in (408, 429) or exc.status >= 500:
                        self._note(item_id, f"{exc.status} {exc.code}: {exc.detail}")
                        return delivered
                    if (isinstance(exc, AuthenticationError) or exc.code == "SCOPE_INSUFFICIENT"
                            or getattr(exc, "token_endpoint", False)):
                        # the client's credentials or token URL, not the document: parking would fail
                        # the whole queue over a wrong or rotated secret (or a mistyped token URL's
                        # 404); it stays pending and the caller hears
                        self._note(item_id, f"{exc.status} {exc.code}: {exc.detail}")
                        raise
                    why, again = (None, False) if item_id in resigned else self._signable_again(document, exc, signed_here)
                    if again:
                        self._sign_again(item_id, kind, document, exc)
                        resigned.add(item_id)
                        continue
                    items = [e.as_problem_item() for e in exc.errors]  # problem+json items: path, code, message, rule
                    # Signed again and then a conflict: the first delivery may have been stored
                    # (its answer lost) before the refusal that led to signing again; say so.
                    maybe = (" (signed again in this delivery: the document as first signed may already be stored, "
                             "its answer lost; look the period up with list_submissions)"
                             if item_id in resigned and exc.status == 409 else "")
                    if why and signed_here == 0:
                        maybe = (f" (refused for its {why}; it was enqueued signed by the caller, so the outbox does not "
                                 "sign it again: sign the payload afresh with your key and enqueue it)")
                    self._park(item_id, f"{exc.status} {exc.code}: {exc.detail}{maybe} "
                                        f"{json.dumps(items, ensure_ascii=False)}")
                    continue
                except (TransportError, requests.ConnectionError, requests.Timeout) as exc:
                    self._note(item_id, f"{type(exc).__name__}: {exc}")
                    return delivered
                except SignatureVerificationError as exc:
                    # The answer is no proof of delivery (ReceiptMismatch: a receipt for another
                    # document). Not parked: the platform refused nothing and may well have
                    # stored the document; the item keeps its key and bytes, so a later deliver
                    # gets the stored receipt without a second submission. Not passed over
                    # either: the caller hears of a platform whose receipts prove nothing.
                    self._note(item_id, f"{type(exc).__name__}: {exc}")
                    raise
                record = receipt.model_dump(mode="json", by_alias=True, exclude_none=True)
                with self._db() as db:
                    db.execute("UPDATE outbox SET state = 'delivered', receipt = ?, delivered_at = ?, attempts = attempts + 1 "
                               "WHERE id = ?", (json.dumps(record, ensure_ascii=False), time.time(), item_id))
                delivered += 1
        return delivered

    def _signable_again(self, document: str, exc: ApiError, signed_here: int | None) -> tuple[str | None, bool]:
        """Why signing the document again might help, and whether the outbox will: refused for
        its signing time (docs/trust-profile.md §9: delivered more than 7 days after signing,
        say after a long outage), or for its certificate (docs/security.md §4: the old
        certificate revoked after a key rotation). The outbox signs again only what it signed
        itself (``signed_here``; None, an item enqueued before cedx kept it, counts as its own),
        with a key, and for a certificate only when the client's key is another one."""
        if exc.code == "SIGNATURE_INVALID" and "$.signature.signingTime" in exc.paths:
            why = "signing time"
        elif exc.code == "CERTIFICATE_INVALID":
            why = "certificate"
        else:
            return None, False
        key = getattr(self.client, "signing_key", None)
        if signed_here == 0 or key is None:
            return why, False
        if why == "certificate" and json.loads(document).get("signature", {}).get("keyId") == key.public_key().fingerprint():
            return None, False  # the same key again would be refused again
        return why, True

    def _sign_again(self, item_id: str, kind: str, document: str, exc: ApiError) -> None:
        """The payload of a document the outbox signed, signed again under a new idempotency
        key (once per deliver()). It cannot make a second submission: a document stored under
        the old signature is still the period's (or the replaced one's) accepted version, so
        the platform refuses the new one as a conflict. Such an item is then parked with that
        said: it may be stored, its first answer lost (look it up)."""
        envelope = json.loads(document)
        fresh = self.client._sign_body(self.client_operation(kind), envelope["payload"])
        log.warning("outbox item %s: %s; signed again under a new idempotency key", item_id, exc.detail)
        with self._db() as db:
            db.execute("UPDATE outbox SET document = ?, idempotency_key = ?, attempts = attempts + 1, last_error = ? "
                       "WHERE id = ?", (json.dumps(fresh, ensure_ascii=False), str(uuid.uuid4()),
                                        f"{exc.status} {exc.code}: {exc.detail} (signed again)", item_id))

    def _note(self, item_id: str, error: str) -> None:
        log.warning("outbox item %s not delivered yet: %s", item_id, error)
        with self._db() as db:
            db.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?", (error, item_id))

    def _park(self, item_id: str, error: str) -> None:
        log.error("outbox item %s refused by the platform: %s", item_id, error)
        with self._db() as db:
            db.execute("UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ? WHERE id = ?",
                       (error, item_id))

    # --- reading --------------------------------------------------------------------------
    def item(self, item_id: str) -> OutboxItem:
        with self._db() as db:
            row = db.execute(f"SELECT {_ITEM_COLUMNS} FROM outbox WHERE id = ?", (item_id,)).fetchone()
        if row is None:
            raise KeyError(item_id)
        return _item(row)

    def counts(self) -> dict[str, int]:
        with self._db() as db:
            return dict(db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall())

    def items(self, state: str | None = None) -> list[OutboxItem]:
        """The items in the order they were enqueued; only those in ``state`` (``pending``,
        ``delivered`` or ``failed``) if given."""
        if state is not None and state not in _STATES:
            raise ConfigurationError(f"state is one of {', '.join(_STATES)}, not {state!r}")
        query = f"SELECT {_ITEM_COLUMNS} FROM outbox"
        with self._db() as db:
            rows = (db.execute(query + " WHERE state = ? ORDER BY seq", (state,)) if state is not None
                    else db.execute(query + " ORDER BY seq")).fetchall()
        return [_item(row) for row in rows]

    def requeue(self, item_id: str) -> None:
        """A failed item back to pending, once the cause of its refusal is put right on the
        platform's side (a limit raised, a certificate registered...): it is sent again with
        the same bytes and idempotency key, so it cannot be stored twice (a platform that did
        store it answers its receipt); unless ``deliver`` then signs it again, as for any item,
        after a refusal for its signing time or certificate (a conflict guards that one). Its ``last_error`` keeps the refusal, marked as requeued.
        A document that itself must change is not requeued but enqueued anew."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT state FROM outbox WHERE id = ?", (item_id,)).fetchone()
            if row is None:
                db.execute("ROLLBACK")
                raise KeyError(item_id)
            if row[0] != "failed":
                db.execute("ROLLBACK")
                raise ConfigurationError(f"outbox item {item_id} is {row[0]}: only a failed item is requeued")
            db.execute("UPDATE outbox SET state = 'pending', last_error = 'requeued after: ' || COALESCE(last_error, '') "
                       "WHERE id = ?", (item_id,))
            db.execute("COMMIT")


def _item(row: Any) -> OutboxItem:
    """An OutboxItem from a row of ``_ITEM_COLUMNS``."""
    return OutboxItem(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]) if row[5] else None)


class AddressFollower:
    """Reads the platform's signed configuration document and follows an announced address
    change, but only when the document verifies against the trust anchors.

    ``common_client`` is the client class of the common interface (``cedx.generated.client.
    CommonClient``); it is passed in because the runtime does not import generated code."""

    def __init__(self, client: Any, common_client: type):
        self.client = client
        self.common_client = common_client

    def check(self, now: float | None = None) -> str | None:
        """Return the new base URL if the client switched, else None. Raises
        SignatureVerificationError for an unsigned or wrongly signed document."""
        if not self.client.trust_anchors:  # a ConfigurationError is also a ValueError, as this once was
            raise ConfigurationError("configure trust_anchors before following address changes")
        common = self.common_client(self.client.base_url, trust_anchors=self.client.trust_anchors,
                              session=self.client.session, verify=self.client.verify, retry=self.client.retry)
        config = common.get_configuration()  # verified on receipt (signed response)
        successor = config.payload.successor
        if successor is None:
            return None
        if successor.effective_from.timestamp() > (now or time.time()):
            return None
        new = str(successor.base_url).rstrip("/")
        if new == self.client.base_url:
            return None
        log.warning("platform address changes: %s -> %s (%s)", self.client.base_url, new, successor.reason)
        self.client.base_url = new
        return new


__all__ = ["AddressFollower", "Outbox", "OutboxItem"]
