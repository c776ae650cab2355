"""The reference platform's behaviour behind the generated stubs.

Submissions: one accepted version per entity, document type and period; a correction names
the accepted version it replaces (which becomes superseded) and gets the next version number;
a supplementary (late) submission is an original for a period that has none. Every accepted
submission gets a receipt signed by the platform and time-stamped by its TSA. The same
Idempotency-Key with the same body answers the stored receipt; with another body, 409.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import uuid

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError

from .. import trust
from ..generated.server import CommonService, Reply, ReportingService
from ..runtime.errors import OAuthError, Problem
from ..trust.tsa import TimeStampAuthority
from .db import ClientRow, EntityRow, FacilityRow, IdempotencyRow, SubmissionRow, TokenRow
from .security import check_secret, new_token, token_hash

UTC = dt.timezone.utc
SPEC_VERSION = "1.0"


def _now() -> dt.datetime:
    return dt.datetime.now(UTC)


def _iso(value: dt.datetime) -> str:
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _cursor(received_at: dt.datetime, submission_id: str) -> str:
    return base64.urlsafe_b64encode(f"{_iso(received_at)}|{submission_id}".encode()).decode().rstrip("=")


def _parse_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, sid = raw.split("|")
        return dt.datetime.fromisoformat(when.replace("Z", "+00:00")), sid
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem("INVALID_PARAMETER", "cursor is not one this platform issued") from exc


class Platform(ReportingService, CommonService):
    def __init__(self, sessions, pki, settings):
        self.sessions, self.pki, self.settings = sessions, pki, settings
        self.tsa = TimeStampAuthority(pki.tsa_key, pki.tsa_cert)
        self._config: dict | None = None
        self._lock = threading.Lock()

    # --- helpers --------------------------------------------------------------------------
    @staticmethod
    def _own(ctx, credit_code: str) -> None:
        if ctx.principal is None or ctx.principal.credit_code != credit_code:
            raise Problem("ENTITY_FORBIDDEN", "the token is bound to another entity")

    def _sign(self, payload: dict, timestamp: bool = False) -> dict:
        return trust.sign_document(payload, self.pki.platform_key, certificate_chain=[self.pki.platform_cert, self.pki.ca],
                                   timestamper=self.tsa.timestamp if timestamp else None,
                                   envelope_fields={"specVersion": SPEC_VERSION})

    @staticmethod
    def _status(row: SubmissionRow) -> dict:
        out = {"specVersion": SPEC_VERSION, "submissionId": row.submission_id, "documentType": row.document_type,
               "reportId": row.report_id, "period": row.period, "version": row.version,
               "submissionKind": row.kind, "state": row.state, "receivedAt": _iso(row.received_at),
               "receiptId": json.loads(row.receipt)["payload"]["receiptId"]}
        if row.supersedes:
            out["supersedes"] = row.supersedes
        if row.superseded_by:
            out["supersededBy"] = row.superseded_by
        return out

    def _submission(self, ctx, submission_id: str, document_type: str | None = None) -> SubmissionRow:
        with self.sessions() as s:
            row = s.get(SubmissionRow, submission_id)
        if row is None or row.credit_code != ctx.principal.credit_code or (document_type and row.document_type != document_type):
            # Another entity's submission is reported as absent: its existence is not disclosed.
            raise Problem("NOT_FOUND", f"no submission {submission_id} for this entity")
        return row

    # --- common ---------------------------------------------------------------------------
    def get_configuration(self, ctx):
        with self._lock:
            if self._config is None:
                s = self.settings
                payload = {
                    "platformId": s.platform_id, "platformName": s.platform_name,
                    "validFrom": _iso(_now().replace(microsecond=0)),
                    "endpoints": {"reporting": f"{s.base_url}/v1/reporting", "token": f"{s.base_url}/oauth/token",
                                  "timestamp": f"{s.base_url}/tsa"},
                    "supportedSpecVersions": [SPEC_VERSION],
                    "signingCertificates": [base64.b64encode(c).decode() for c in (self.pki.platform_cert, self.pki.ca)],
                }
                if s.successor_url:
                    payload["successor"] = {"baseUrl": s.successor_url,
                                            "effectiveFrom": s.successor_from or payload["validFrom"],
                                            "reason": "平台地址变更 / the platform's address changes"}
                self._config = self._sign(payload)
            return Reply(self._config, headers={"Cache-Control": "max-age=300"})

    def issue_token(self, ctx, *, body):
        with self.sessions() as s:
            client = s.get(ClientRow, body.client_id)
            if client is None or not client.active or not check_secret(body.client_secret, client.secret_hash):
                raise OAuthError("invalid_client", "unknown client or wrong secret", 401)
            granted = set(client.scopes.split())
            asked = set((body.scope or client.scopes).split())
            if not asked <= granted:
                raise OAuthError("invalid_scope", f"scope {' '.join(sorted(asked - granted))} is not granted to this client")
            token = new_token()
            s.add(TokenRow(token_hash=token_hash(token), client_id=client.client_id, credit_code=client.credit_code,
                           scopes=" ".join(sorted(asked)),
                           expires_at=_now() + dt.timedelta(seconds=self.settings.token_lifetime)))
            s.commit()
        return Reply({"access_token": token, "token_type": "Bearer", "expires_in": self.settings.token_lifetime,
                      "scope": " ".join(sorted(asked))}, headers={"Cache-Control": "no-store"})

    # --- entities and facilities ----------------------------------------------------------
    def register_entity(self, ctx, *, body):
        self._own(ctx, body.credit_code)
        record = body.model_dump(mode="json", by_alias=True, exclude_none=True)
        with self.sessions() as s:
            row = s.get(EntityRow, body.credit_code)
            if row is not None and row.document is not None:
                raise Problem("ENTITY_EXISTS", "the entity is registered; update it with PUT")
            if row is None:
                s.add(EntityRow(credit_code=body.credit_code, document=record))
            else:
                row.document = record
            s.commit()
        return Reply(record, status=201, headers={"Location": f"/v1/reporting/entities/{body.credit_code}"})

    def get_entity(self, ctx, *, credit_code):
        self._own(ctx, credit_code)
        with self.sessions() as s:
            row = s.get(EntityRow, credit_code)
        if row is None or row.document is None:
            raise Problem("NOT_FOUND", "the entity has not registered its details yet")
        return row.document

    def update_entity(self, ctx, *, credit_code, body):
        self._own(ctx, credit_code)
        if body.credit_code != credit_code:
            raise Problem("INVALID_PARAMETER", "the document's creditCode differs from the path")
        with self.sessions() as s:
            row = s.get(EntityRow, credit_code)
            if row is None or row.document is None:
                raise Problem("NOT_FOUND", "register the entity first")
            row.document = body.model_dump(mode="json", by_alias=True, exclude_none=True)
            s.commit()
            return row.document

    def list_facilities(self, ctx, *, credit_code, limit, cursor):
        self._own(ctx, credit_code)
        with self.sessions() as s:
            q = select(FacilityRow).where(FacilityRow.credit_code == credit_code)
            if cursor:
                q = q.where(FacilityRow.facility_id > cursor)
            rows = s.scalars(q.order_by(FacilityRow.facility_id).limit((limit or 50) + 1)).all()
        page = rows[: limit or 50]
        out = {"specVersion": SPEC_VERSION, "items": [r.document for r in page]}
        if len(rows) > len(page):
            out["nextCursor"] = page[-1].facility_id
        return out

    def put_facility(self, ctx, *, credit_code, facility_id, body):
        self._own(ctx, credit_code)
        if body.facility_id != facility_id:
            raise Problem("INVALID_PARAMETER", "the document's facilityId differs from the path")
        record = body.model_dump(mode="json", by_alias=True, exclude_none=True)
        with self.sessions() as s:
            s.merge(FacilityRow(credit_code=credit_code, facility_id=facility_id, document=record))
            s.commit()
        return record

    # --- submissions ----------------------------------------------------------------------
    def submit_monthly_report(self, ctx, *, idempotency_key, body):
        return self._submit(ctx, idempotency_key, "monthly_report")

    def submit_annual_report(self, ctx, *, idempotency_key, body):
        return self._submit(ctx, idempotency_key, "annual_report")

    def _submit(self, ctx, key: str, document_type: str):
        record = ctx.record  # the logical record exactly as received (validated and verified)
        payload = record["payload"]
        credit_code = ctx.principal.credit_code
        digest = trust.sm3(trust.canonicalize(record)).hex()
        replay = self._replay(credit_code, key, digest)
        if replay is not None:
            return replay
        period = payload.get("period") or str(payload["year"])
        kind = payload["submissionKind"]
        submission_id, now = str(uuid.uuid4()), _now()
        with self.sessions() as s:
            current = s.scalars(select(SubmissionRow).where(
                SubmissionRow.credit_code == credit_code, SubmissionRow.document_type == document_type,
                SubmissionRow.period == period, SubmissionRow.state == "accepted")).first()
            version, supersedes = 1, None
            if kind == "correction":
                replaced = s.get(SubmissionRow, payload["replacesSubmissionId"])
                if replaced is None or replaced.credit_code != credit_code or replaced.document_type != document_type \
                        or replaced.period != period:
                    raise Problem("SUBMISSION_CONFLICT", "replacesSubmissionId names no submission of this entity, type and period")
                if replaced.state != "accepted":
                    raise Problem("SUBMISSION_CONFLICT", f"submission {replaced.submission_id} is already superseded by "
                                  f"{replaced.superseded_by}; correct the latest version")
                version, supersedes = replaced.version + 1, replaced.submission_id
                replaced.state, replaced.superseded_by = "superseded", submission_id
                s.flush()  # retire the old version before the new one is inserted (unique index)
            elif current is not None:
                raise Problem("SUBMISSION_CONFLICT", f"{period} already has accepted submission {current.submission_id}; "
                              "send a correction that replaces it")
            receipt_payload = {
                "receiptId": str(uuid.uuid4()), "submissionId": submission_id, "documentType": document_type,
                "reportId": payload["reportId"], "creditCode": credit_code, "period": period, "version": version,
                "submissionKind": kind}
            if supersedes:
                receipt_payload["supersedes"] = supersedes
            receipt_payload.update({"documentDigest": digest, "receivedAt": _iso(now),
                                    "platformId": self.settings.platform_id})
            receipt = self._sign(receipt_payload, timestamp=True)
            s.add(SubmissionRow(
                submission_id=submission_id, credit_code=credit_code, document_type=document_type,
                report_id=payload["reportId"], period=period, version=version, kind=kind, state="accepted",
                supersedes=supersedes, document=json.dumps(record, ensure_ascii=False), document_digest=digest,
                receipt=json.dumps(receipt, ensure_ascii=False), received_at=now))
            s.add(IdempotencyRow(credit_code=credit_code, key=key, request_digest=digest, submission_id=submission_id))
            try:
                s.commit()
            except IntegrityError:
                s.rollback()
                # A concurrent request with the same key, or another accepted version, won the race.
                replay = self._replay(credit_code, key, digest)
                if replay is not None:
                    return replay
                raise Problem("SUBMISSION_CONFLICT", "another submission for this period was accepted concurrently") from None
        return Reply(receipt, status=201, headers={"Location": f"/v1/reporting/submissions/{submission_id}"})

    def _replay(self, credit_code: str, key: str, digest: str) -> Reply | None:
        with self.sessions() as s:
            row = s.scalars(select(IdempotencyRow).where(IdempotencyRow.credit_code == credit_code,
                                                         IdempotencyRow.key == key)).first()
            if row is None:
                return None
            if row.request_digest != digest:
                raise Problem("IDEMPOTENCY_CONFLICT", f"Idempotency-Key {key} was first used with another body")
            sub = s.get(SubmissionRow, row.submission_id)
        return Reply(json.loads(sub.receipt), status=201,
                     headers={"Idempotency-Replayed": "true", "Location": f"/v1/reporting/submissions/{sub.submission_id}"})

    def get_monthly_report(self, ctx, *, submission_id):
        return json.loads(self._submission(ctx, submission_id, "monthly_report").document)

    def get_annual_report(self, ctx, *, submission_id):
        return json.loads(self._submission(ctx, submission_id, "annual_report").document)

    def get_submission_status(self, ctx, *, submission_id):
        return self._status(self._submission(ctx, submission_id))

    def get_receipt(self, ctx, *, submission_id):
        return json.loads(self._submission(ctx, submission_id).receipt)

    def list_submissions(self, ctx, *, limit, cursor, document_type, period, state):
        limit = limit or 50
        with self.sessions() as s:
            q = select(SubmissionRow).where(SubmissionRow.credit_code == ctx.principal.credit_code)
            if document_type:
                q = q.where(SubmissionRow.document_type == document_type)
            if period:
                q = q.where(SubmissionRow.period == period)
            if state:
                q = q.where(SubmissionRow.state == state)
            if cursor:
                when, sid = _parse_cursor(cursor)
                q = q.where(or_(SubmissionRow.received_at > when,
                                and_(SubmissionRow.received_at == when, SubmissionRow.submission_id > sid)))
            rows = s.scalars(q.order_by(SubmissionRow.received_at, SubmissionRow.submission_id).limit(limit + 1)).all()
        page = rows[:limit]
        out = {"specVersion": SPEC_VERSION, "items": [self._status(r) for r in page]}
        headers = {}
        if len(rows) > limit:
            out["nextCursor"] = _cursor(page[-1].received_at, page[-1].submission_id)
            headers["Link"] = f'</v1/reporting/submissions?limit={limit}&cursor={out["nextCursor"]}>; rel="next"'
        return Reply(out, headers=headers)
