"""The reference platform's business rules behind the generated stubs; persistence is the
store's (store.py), signatures and limits the hooks' (security.py).

Submissions: one accepted version per entity, document type and period; a correction names
the accepted version it replaces (which becomes superseded) and gets the next version number;
a supplementary (late) submission is an original for a period that has none. Every accepted
submission gets a receipt signed by the platform and time-stamped by its TSA, decided, signed
and stored in one transaction. The same Idempotency-Key with the same body answers the stored
receipt; with another body, 409.

Bodies arrive as received (`as_received`): validated against the spec and verified, never
rebuilt into models and back; a JSON document is stored byte for byte.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import urllib.parse
import uuid
from typing import Any

from .. import trust
from ..accounting import annual
from ..accounting.period import is_late, upload_deadline
from ..generated.constants import DOCUMENT_OPERATIONS, SPEC_VERSION
from ..generated.operations import OPERATIONS
from ..generated.server import CommonService, Reply, ReportingService
from ..instants import UTC, iso_z
from ..runtime.errors import OAuthError, Problem, ProblemItem
from ..runtime.server import JSON, RequestContext, as_received, client_credentials
from ..spec.facts import submission_period
from ..trust import x509 as tx
from ..trust.tsa import TimeStampAuthority
from .security import (
    RateLimiter,
    check_secret,
    check_signing_time,
    client_address,
    new_token,
    token_hash,
)
from .settings import PlatformPki, PlatformSettings
from .store import (
    ClientRecord,
    IdempotencyRecord,
    Store,
    StoreConflict,
    SubmissionReader,
    SubmissionRecord,
    TokenRecord,
)


def _now() -> dt.datetime:
    return dt.datetime.now(UTC)


def _iso(value: dt.datetime) -> str:
    """The platform's instants (receivedAt, deadline, cursors): UTC, microseconds, ``Z``."""
    return iso_z(value, "microseconds")


def _document_type(ctx: RequestContext) -> str:
    """The document type the operation submits or reads (DocumentType, as the spec ties it to
    the operation): nothing here spells a document type, so a spec revision cannot leave one stale."""
    return DOCUMENT_OPERATIONS[ctx.operation.operation_id]


def _fresh(record: dict[str, Any], settings: PlatformSettings, now: dt.datetime) -> bool:
    """Whether check_signing_time passes (else the usual order decides: replay first)."""
    try:
        check_signing_time(record, settings, now)
    except Exception:  # noqa: BLE001 - whatever it is, the usual path meets it in its place
        return False
    return True


def _status_path(submission_id: str) -> str:
    """Where a submission's status is read (the Location of an accepted submission)."""
    return OPERATIONS["getSubmissionStatus"].path.format(submissionId=submission_id)


def _cursor(received_at: dt.datetime, submission_id: str) -> str:
    return base64.urlsafe_b64encode(f"{_iso(received_at)}|{submission_id}".encode()).decode().rstrip("=")


def _parse_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, sid = raw.split("|")
        parsed = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
        uuid.UUID(sid)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem("INVALID_PARAMETER", "cursor is not one this platform issued") from exc
    if parsed.tzinfo is None:  # every cursor this platform issues carries its offset
        raise Problem("INVALID_PARAMETER", "cursor is not one this platform issued (its instant has no time zone)")
    return parsed, sid


class Platform(ReportingService, CommonService):
    def __init__(self, store: Store, pki: PlatformPki, settings: PlatformSettings, limiter: RateLimiter | None = None):
        self.store, self.pki, self.settings = store, pki, settings
        self.limiter = limiter or RateLimiter(store, settings.rate_limit_per_minute, settings.auth_failures_per_minute)
        self.tsa = TimeStampAuthority(pki.tsa_key, pki.tsa_cert)
        self._configs: dict[str, dict[str, Any]] = {}
        self._crl: tuple[int, bytes, dt.datetime] | None = None  # counter, DER, when to re-sign
        self._lock = threading.Lock()
        self.clock = _now  # the time of receipt (replaceable in tests of the upload deadline)

    # --- helpers --------------------------------------------------------------------------
    @staticmethod
    def _own(ctx: RequestContext, credit_code: str) -> None:
        if ctx.principal is None or ctx.principal.credit_code != credit_code:
            raise Problem("ENTITY_FORBIDDEN", "the token is bound to another entity")

    def _sign(self, payload: dict[str, Any], timestamp: bool = False) -> dict[str, Any]:
        # SM2-with-SM3: the platform's answers are small, and clients of earlier releases read them
        return trust.sign_document(payload, self.pki.platform_key, certificate_chain=[self.pki.platform_cert, self.pki.ca],
                                   timestamper=self.tsa.timestamp if timestamp else None,
                                   envelope_fields={"specVersion": SPEC_VERSION}, algorithm=trust.ALGORITHM)

    @staticmethod
    def _status(row: SubmissionRecord) -> dict[str, Any]:
        out = {"specVersion": SPEC_VERSION, "submissionId": row.submission_id, "documentType": row.document_type,
               "reportId": row.report_id, "period": row.period, "version": row.version,
               "submissionKind": row.kind, "state": row.state, "receivedAt": _iso(row.received_at),
               "receiptId": row.receipt_id}
        if row.supersedes:
            out["supersedes"] = row.supersedes
        if row.superseded_by:
            out["supersededBy"] = row.superseded_by
        if '"deadline"' in row.receipt:  # cheap pre-check; the parsed receipt decides
            # The lateness marker is read from the stored signed receipt: one record, so the
            # status can never disagree with what the platform signed (R-POW-008).
            receipt = json.loads(row.receipt)["payload"]
            if "late" in receipt:
                out["deadline"], out["late"] = receipt["deadline"], receipt["late"]
        return out

    @staticmethod
    def _lateness(payload: dict[str, Any], received_at: dt.datetime) -> dict[str, Any]:
        """R-POW-008: a power-sector monthly report (a report of a `period`, not a `year`) is due
        40 days (factor table) after its month ends; one received later is accepted and marked
        late, never refused."""
        if "period" not in payload or payload.get("industry") != "power":
            return {}
        period = payload["period"]
        return {"deadline": _iso(upload_deadline(period)), "late": is_late(period, received_at)}

    def _submission(self, ctx: RequestContext, submission_id: str, document_type: str | None = None) -> SubmissionRecord:
        row = self.store.submission(submission_id)
        if row is None or row.credit_code != ctx.principal.credit_code or (document_type and row.document_type != document_type):
            # Another entity's submission is reported as absent: its existence is not disclosed.
            raise Problem("NOT_FOUND", f"no submission {submission_id} for this entity")
        return row

    def base_url(self, ctx: RequestContext) -> str:
        """The announced address: the configured public URL, else the address this request
        arrived on (the local socket the server accepted it on, not the client's Host header)."""
        if self.settings.base_url:
            return self.settings.base_url.rstrip("/")
        host, port = ctx.request.scope.get("server") or ("127.0.0.1", 80)
        host = f"[{host}]" if ":" in host else host
        scheme = ctx.request.scope.get("scheme", "http")
        default = (scheme == "http" and port == 80) or (scheme == "https" and port == 443)
        return f"{scheme}://{host}" + ("" if default else f":{port}")

    # --- common ---------------------------------------------------------------------------
    def get_configuration(self, ctx: RequestContext) -> Reply:
        base = self.base_url(ctx)
        with self._lock:
            config = self._configs.get(base)
            if config is None:
                s = self.settings
                payload = {
                    "platformId": s.platform_id, "platformName": s.platform_name,
                    "validFrom": _iso(_now().replace(microsecond=0)),
                    "endpoints": {"reporting": f"{base}/v1/reporting", "token": f"{base}/oauth/token",
                                  "timestamp": f"{base}/tsa", "crl": f"{base}/pki/crl",
                                  "revocation": f"{base}/oauth/revoke"},
                    "supportedSpecVersions": [SPEC_VERSION],
                    "signingCertificates": [base64.b64encode(c).decode() for c in (self.pki.platform_cert, self.pki.ca)],
                }
                if s.successor_url:
                    payload["successor"] = {"baseUrl": s.successor_url,
                                            "effectiveFrom": s.successor_from or payload["validFrom"],
                                            "reason": "平台地址变更 / the platform's address changes"}
                config = self._configs[base] = self._sign(payload)
        return Reply(config, headers={"Cache-Control": "max-age=300"})

    def _authenticate_client(self, ctx: RequestContext, record: dict[str, Any]) -> ClientRecord:
        """RFC 6749 §2.3.1 client authentication (Basic or form), failures limited per client
        ID and per address before the (deliberately slow) secret check."""
        client_id, secret = client_credentials(ctx, record)
        keys = (f"client:{client_id}", f"addr:{client_address(ctx)}")
        try:
            self.limiter.check_failures(*keys)
        except Problem as problem:
            raise OAuthError("invalid_client", "too many failed attempts; retry later", 429,
                             headers=problem.headers) from None
        client = self.store.client(client_id)
        if client is None or not client.active or not check_secret(secret, client.secret_hash):
            self.limiter.failed(*keys)
            raise OAuthError("invalid_client", "unknown client, wrong secret or disabled client", 401)
        return client

    @as_received
    def issue_token(self, ctx: RequestContext, *, body: Any) -> Reply:
        client = self._authenticate_client(ctx, body)
        granted = set(client.scopes.split())
        asked = set((body.get("scope") or client.scopes).split())
        if not asked <= granted:
            raise OAuthError("invalid_scope", "a requested scope is not granted to this client")
        token = new_token()
        lifetime = self.settings.token_lifetime
        self.store.add_token(TokenRecord(token_hash(token), client.client_id, client.credit_code, " ".join(sorted(asked)),
                                         _now() + dt.timedelta(seconds=lifetime)))
        return Reply({"access_token": token, "token_type": "Bearer", "expires_in": lifetime,
                      "scope": " ".join(sorted(asked))}, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def revoke_token(self, ctx: RequestContext, form: dict[str, str]) -> None:
        """RFC 7009: the authenticated client revokes one of its tokens; unknown tokens are
        not an error (the answer is 200 either way, so it tells nothing about the token)."""
        client = self._authenticate_client(ctx, form)
        token = form.get("token")
        if not token:
            raise OAuthError("invalid_request", "the token parameter is required")
        self.store.revoke_token(token_hash(token), client.client_id)

    def crl(self) -> bytes:
        """The platform CA's CRL, rebuilt whenever the store's revocation counter moves, and
        re-signed once half its validity has passed, so that a platform running for longer than
        ``crl_next_update_days`` without a revocation never serves a CRL past its nextUpdate."""
        counter = self.store.revocation_counter()
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        with self._lock:
            if self._crl is None or self._crl[0] != counter or now >= self._crl[2]:
                # Only what the platform CA issued: a certificate from another anchor (pki/trust) is
                # refused all the same, but its serial number means nothing in this CA's CRL.
                issuer = tx.load_certificate(self.pki.ca).subject.dump()
                revoked = [(c.serial, c.revoked_at) for c in self.store.certificates() if c.revoked_at is not None
                           and tx.load_certificate(c.der).issuer.dump() == issuer]
                days = self.settings.crl_next_update_days
                der = tx.create_crl(self.pki.ca, self.pki.ca_key, revoked, this_update=now, next_update_days=days)
                self._crl = (counter, der, now + dt.timedelta(days=days) / 2)
            return self._crl[1]

    # --- entities and facilities ----------------------------------------------------------
    @as_received
    def register_entity(self, ctx: RequestContext, *, body: Any) -> Reply:
        code = body["creditCode"]
        self._own(ctx, code)
        if not self.store.register_entity(code, body):
            raise Problem("ENTITY_EXISTS", "the entity is registered; update it with PUT")
        return Reply(body, status=201, headers={"Location": OPERATIONS["getEntity"].path.format(creditCode=code)})

    def get_entity(self, ctx: RequestContext, *, credit_code: str) -> Reply:
        self._own(ctx, credit_code)
        document = self.store.entity_document(credit_code)
        if document is None:
            raise Problem("NOT_FOUND", "the entity has not registered its details yet")
        return Reply(document)

    @as_received
    def update_entity(self, ctx: RequestContext, *, credit_code: str, body: Any) -> Reply:
        self._own(ctx, credit_code)
        if body["creditCode"] != credit_code:
            raise Problem("INVALID_PARAMETER", "the document's creditCode differs from the path")
        if not self.store.update_entity(credit_code, body):
            raise Problem("NOT_FOUND", "register the entity first")
        return Reply(body)

    def list_facilities(self, ctx: RequestContext, *, credit_code: str, limit: int | None, cursor: str | None) -> Reply:
        self._own(ctx, credit_code)
        limit = limit or 50
        rows = self.store.facilities(credit_code, cursor, limit + 1)
        page = rows[:limit]
        out = {"specVersion": SPEC_VERSION, "items": [document for _, document in page]}
        if len(rows) > len(page):
            out["nextCursor"] = page[-1][0]
        return Reply(out)

    @as_received
    def put_facility(self, ctx: RequestContext, *, credit_code: str, facility_id: str, body: Any) -> Reply:
        self._own(ctx, credit_code)
        if body["facilityId"] != facility_id:
            raise Problem("INVALID_PARAMETER", "the document's facilityId differs from the path")
        self.store.put_facility(credit_code, facility_id, body)
        return Reply(body)

    # --- submissions ----------------------------------------------------------------------
    @as_received
    def submit_monthly_report(self, ctx: RequestContext, *, idempotency_key: str, body: Any) -> Reply:
        return self._submit(ctx, idempotency_key, _document_type(ctx), body)

    @as_received
    def submit_annual_report(self, ctx: RequestContext, *, idempotency_key: str, body: Any) -> Reply:
        return self._submit(ctx, idempotency_key, _document_type(ctx), body)

    def _submit(self, ctx: RequestContext, key: str, document_type: str, record: dict[str, Any]) -> Reply:
        credit_code = ctx.principal.credit_code
        # SM3 of the document's canonical form, spliced from what signature verification encoded
        verified = ctx.verified
        digest = verified.document_digest() if verified is not None else trust.document_digest(record)
        try:
            return self._accept(ctx, key, document_type, record, digest)
        except (Problem, StoreConflict) as exc:
            if isinstance(exc, Problem) and exc.code != "SUBMISSION_CONFLICT":
                raise
            # A concurrent request with the same key (or another accepted version) won the race.
            with self.store.submission_reader() as state:
                replay = self._replay(state.idempotency(credit_code, key), key, digest)
            if replay is not None:
                return replay
            if isinstance(exc, Problem):
                raise
            raise Problem("SUBMISSION_CONFLICT", "another submission for this period was accepted concurrently") from None

    def _accept(self, ctx: RequestContext, key: str, document_type: str, record: dict[str, Any], digest: str) -> Reply:
        payload = record["payload"]
        credit_code = ctx.principal.credit_code
        period = submission_period(payload)
        kind, replaces = payload["submissionKind"], payload.get("replacesSubmissionId")
        submission_id, now = str(uuid.uuid4()), self.clock()
        # One transaction per submission: decide, sign the receipt and write it with the
        # document, so the decision is made on the state the write commits on (SQLite: the
        # write lock is held from the first read; PostgreSQL: the unique index on accepted
        # versions and the guarded supersede refuse what a concurrent worker accepted first).
        with self.store.submission_transaction() as tx_:
            if tx_.insert_first and kind == "original" and "months" not in payload and _fresh(record, self.settings, now):
                # An original needs nothing read to be decided when its key and period are free:
                # its receipt is made first and the store's one statement inserts it unless
                # they are taken (PostgreSQL: one round trip less). Otherwise nothing was
                # written and the same decisions as below answer (a replay's receipt is the
                # stored one; this one is discarded).
                receipt, row = self._receipt(ctx, document_type, record, digest, submission_id, now, None)
                prior, current = tx_.insert_unless_taken(row, key, digest)
                if prior is None and current is None:
                    return Reply(receipt, status=201, headers={"Location": _status_path(submission_id)})
            else:
                prior, current = tx_.idempotency_and_accepted(credit_code, key, document_type, period)
            replay = self._replay(prior, key, digest)
            if replay is not None:
                return replay
            check_signing_time(record, self.settings, now)
            replaced = self._decide(tx_, credit_code, document_type, period, kind, replaces, current)
            if "months" in payload:
                self._check_annual(tx_, credit_code, payload)
            receipt, row = self._receipt(ctx, document_type, record, digest, submission_id, now, replaced)
            if replaced is not None and not tx_.supersede(replaced.submission_id, by=submission_id):
                raise Problem("SUBMISSION_CONFLICT", f"submission {replaced.submission_id} was superseded "
                              "concurrently; correct the latest version")
            tx_.insert(row, key, digest)
        return Reply(receipt, status=201, headers={"Location": _status_path(submission_id)})

    def _receipt(self, ctx: RequestContext, document_type: str, record: dict[str, Any], digest: str,
                 submission_id: str, now: dt.datetime,
                 replaced: SubmissionRecord | None) -> tuple[dict[str, Any], SubmissionRecord]:
        """The signed, time-stamped receipt and the row that stores it with the document."""
        payload = record["payload"]
        credit_code = ctx.principal.credit_code
        period = submission_period(payload)
        kind = payload["submissionKind"]
        version, supersedes = (replaced.version + 1, replaced.submission_id) if replaced else (1, None)
        receipt_id = str(uuid.uuid4())
        receipt_payload = {
            "receiptId": receipt_id, "submissionId": submission_id, "documentType": document_type,
            "reportId": payload["reportId"], "creditCode": credit_code, "period": period, "version": version,
            "submissionKind": kind}
        if supersedes:
            receipt_payload["supersedes"] = supersedes
        receipt_payload.update({"documentDigest": digest, "receivedAt": _iso(now), "platformId": self.settings.platform_id})
        receipt_payload.update(self._lateness(payload, now))
        receipt = self._sign(receipt_payload, timestamp=True)
        # Stored as received: a JSON body byte for byte (it is exactly the validated record; the
        # bytes themselves, UTF-8 checked by the parser, so that a large one is not decoded only
        # to be encoded again by the driver); an XML body as its logical record, from which the
        # receipt's digest is recomputed.
        document = ctx.raw_body if ctx.body_format == JSON else json.dumps(record, ensure_ascii=False)
        row = SubmissionRecord(
            submission_id=submission_id, credit_code=credit_code, document_type=document_type,
            report_id=payload["reportId"], period=period, version=version, kind=kind, state="accepted",
            supersedes=supersedes, superseded_by=None, document=document, document_digest=digest,
            receipt=json.dumps(receipt, ensure_ascii=False), receipt_id=receipt_id, received_at=now)
        return receipt, row

    @staticmethod
    def _decide(state: SubmissionReader, credit_code: str, document_type: str, period: str, kind: str,
                replaces: str | None, current: SubmissionRecord | None) -> SubmissionRecord | None:
        """The accepted submission a correction replaces (None for an original); the rules of
        one accepted version per entity, document type and period (``current``: the period's
        accepted version, read in the same transaction)."""
        if kind == "correction":
            replaced = state.submission(replaces) if replaces else None
            if replaced is None or replaced.credit_code != credit_code or replaced.document_type != document_type \
                    or replaced.period != period:
                raise Problem("SUBMISSION_CONFLICT", "replacesSubmissionId names no submission of this entity, type and period")
            if replaced.state != "accepted":
                raise Problem("SUBMISSION_CONFLICT", f"submission {replaced.submission_id} is already superseded"
                              f"{' by ' + replaced.superseded_by if replaced.superseded_by else ''}; "
                              "correct the latest version")
            return replaced
        if current is not None:
            raise Problem("SUBMISSION_CONFLICT", f"{period} already has accepted submission {current.submission_id}; "
                          "send a correction that replaces it")
        return None

    @staticmethod
    def _check_annual(state: SubmissionReader, credit_code: str, payload: dict[str, Any]) -> None:
        """R-ANN-012 on arrival: each month's submissionId names this entity's monthly report of
        that month, still the accepted version; when every month references one, the annual
        figures must agree with those reports (cedx.accounting.annual.check). An annual report
        that references no months (allowed outside power, R-ANN-004) is checked by its document
        rules only."""
        items: list[ProblemItem] = []
        monthlies: list[dict[str, Any]] = []
        months = payload.get("months", [])
        for i, summary in enumerate(months):
            ref = summary.get("submissionId")
            if not ref:
                continue
            at = f"$.payload.months[{i}].submissionId"
            row = state.submission(ref)
            if row is None or row.credit_code != credit_code or row.period != summary["period"]:
                items.append(ProblemItem(at, "R-ANN-012", f"{ref} is not this entity's monthly report for "
                                         f"{summary['period']}", "R-ANN-012"))
            elif row.state != "accepted":
                items.append(ProblemItem(at, "R-ANN-012", f"{ref} was superseded by {row.superseded_by}; "
                                         "reference the accepted version", "R-ANN-012"))
            else:
                monthlies.append(json.loads(row.document)["payload"])
        if not items and monthlies and len(monthlies) == len(months):
            items = [ProblemItem("$.payload" + d.path[1:], "R-ANN-012", d.message, "R-ANN-012")
                     for d in annual.check(payload, monthlies)]
        if items:
            raise Problem("RULE_VIOLATION", f"{len(items)} problem(s): the annual report does not agree with the "
                          "monthly reports it references", items)

    def _replay(self, prior: IdempotencyRecord | None, key: str, digest: str) -> Reply | None:
        if prior is None:
            return None
        if prior.request_digest != digest:
            raise Problem("IDEMPOTENCY_CONFLICT", f"Idempotency-Key {key} was first used with another body")
        sub = prior.submission
        return Reply(json.loads(sub.receipt), status=201,
                     headers={"Idempotency-Replayed": "true", "Location": _status_path(sub.submission_id)})

    def get_monthly_report(self, ctx: RequestContext, *, submission_id: str) -> Reply:
        return Reply(json.loads(self._submission(ctx, submission_id, _document_type(ctx)).document))

    def get_annual_report(self, ctx: RequestContext, *, submission_id: str) -> Reply:
        return Reply(json.loads(self._submission(ctx, submission_id, _document_type(ctx)).document))

    def get_submission_status(self, ctx: RequestContext, *, submission_id: str) -> Reply:
        return Reply(self._status(self._submission(ctx, submission_id)))

    def get_receipt(self, ctx: RequestContext, *, submission_id: str) -> Reply:
        return Reply(json.loads(self._submission(ctx, submission_id).receipt))

    def list_submissions(self, ctx: RequestContext, *, limit: int | None, cursor: str | None, document_type: Any,
                         period: str | None, state: Any) -> Reply:
        limit = limit or 50
        rows = self.store.submissions(ctx.principal.credit_code, document_type=document_type, period=period, state=state,
                                      after=_parse_cursor(cursor) if cursor else None, limit=limit + 1)
        page = rows[:limit]
        out = {"specVersion": SPEC_VERSION, "items": [self._status(r) for r in page]}
        headers = {}
        if len(rows) > limit:
            out["nextCursor"] = _cursor(page[-1].received_at, page[-1].submission_id)
            # the next page keeps the filters of this one (RFC 8288 link, query per the spec)
            query = {"limit": str(limit), "cursor": out["nextCursor"], "documentType": document_type,
                     "period": period, "state": state}
            query_text = urllib.parse.urlencode({k: getattr(v, "value", v) for k, v in query.items() if v is not None})
            # absolute, at the announced base URL: a bare /v1/... would drop a base URL's path (§11)
            headers["Link"] = f'<{self.base_url(ctx)}{OPERATIONS["listSubmissions"].path}?{query_text}>; rel="next"'
        return Reply(out, headers=headers)
