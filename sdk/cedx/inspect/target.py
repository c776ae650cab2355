"""What the inspector knows about the implementation under inspection, and helpers shared by
the cases (tokens, clients on the recording session, fresh example documents)."""

from __future__ import annotations

import copy
import random
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

from .. import spec, trust
from ..generated import models
from ..generated.client import AcquisitionClient, CommonClient, ReportingClient
from ..generated.constants import SPEC_VERSION
from ..generated.operations import OPERATIONS
from ..runtime.client import NO_RETRY, Format
from ..trust import x509 as tx
from ..trust.keys import SM2PrivateKey
from .framework import NotApplicable, RecordingSession, check, prerequisite

if TYPE_CHECKING:
    from ..acquisition.confidential import ClientCredentials

MONTHS31 = ("01", "03", "05", "07", "08", "10", "12")


@dataclass
class OtherEntity:
    """Credentials of a second reporting entity on the same platform (cross-entity cases)."""
    client_id: str
    client_secret: str
    credit_code: str


@dataclass
class Credential:
    """A signing key with a certificate registered for the entity (revoked or expired ones)."""
    key: trust.SM2PrivateKey
    certificate: bytes


@dataclass
class AgreementMaterial:
    """For case 2.5 (rule R-EVID-002): the acquisition source that a monthly report's evidence
    references, and that report — a submission on the platform under inspection, or a signed
    report document (e.g. read from a file). The source is read with a bearer token or with
    client credentials (scope acquisition:read at its /oauth/token)."""
    url: str
    trust_anchors: list[bytes]               # the source's CA (its batches are signed under it)
    token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    submission_id: str | None = None         # a monthly report on the platform
    report: dict[str, Any] | None = None     # or the signed report document itself


@dataclass
class Target:
    url: str
    interface: str                          # reporting | acquisition
    trust_anchors: list[bytes]
    client_id: str | None = None
    client_secret: str | None = None
    token_value: str | None = None          # acquisition: a bearer token for the source
    key: trust.SM2PrivateKey | None = None  # the entity's signing key (reporting)
    certificate: bytes | None = None
    credit_code: str | None = None
    point_id: str | None = None             # acquisition: a point to read (default: the first listed)
    # Optional material an inspection body provisions with the operator; a case that needs
    # what was not given is reported not applicable, saying which option supplies it.
    expired_token: str | None = None        # a token the platform issued to this client that has expired
    other: OtherEntity | None = None        # a second entity's client (cross-entity reads)
    revoked: Credential | None = None       # a certificate of this entity that the platform revoked
    expired: Credential | None = None       # a certificate of this entity, registered, now expired
    rate_limit_budget: int = 0              # opt-in: at most this many requests to exhaust the rate limit
    expect_successor: str | None = None     # the successor address the platform is expected to announce
    confidential: ClientCredentials | None = None  # acquisition: for the confidentiality mode
    agreement: AgreementMaterial | None = None  # reporting: a source and a report whose evidence references it
    session: RecordingSession = field(default_factory=RecordingSession)
    _token: str | None = None
    _period_seq: int = field(default_factory=lambda: random.randrange(0, 7 * 700))

    @property
    def entity_key(self) -> SM2PrivateKey:
        """The entity's signing key (a reporting target has one: the CLI requires --key)."""
        if self.key is None:
            raise NotApplicable("needs the entity's signing key (--key)")
        return self.key

    # --- tokens and clients ---------------------------------------------------------------
    def token(self, scope: str | None = None, fresh: bool = False) -> str:
        # An acquisition source takes a static bearer token, or client credentials for scope
        # acquisition:read at its own token endpoint.
        if self.interface == "acquisition" and (self.token_value or not self.client_id):
            check(bool(self.token_value), "an acquisition token (--token-env) or client credentials are required")
            return cast(str, self.token_value)
        if self._token and not fresh and scope is None:
            return self._token
        if scope is not None:  # a token with a narrower scope is the case's own check
            return self.request_token(self.client_id, self.client_secret, scope)
        with prerequisite("token"):
            self._token = self.request_token(self.client_id, self.client_secret, self.default_scope)
        return self._token

    @property
    def default_scope(self) -> str | None:
        return "acquisition:read" if self.interface == "acquisition" else None

    def request_token(self, client_id: str | None, client_secret: str | None, scope: str | None = None,
                      base_url: str | None = None) -> str:
        data = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}
        if scope:
            data["scope"] = scope
        resp = self.session.post(f"{base_url or self.url}/oauth/token", data=data, timeout=30)
        check(resp.status_code == 200, f"token request answered {resp.status_code}: {resp.text[:200]}")
        token = resp.json().get("access_token")
        check(isinstance(token, str) and bool(token), "token response has no access_token")
        return cast(str, token)

    def reporting(self, fmt: Format = Format.JSON, *, token: str | None = None, key: SM2PrivateKey | None = None,
                  **kw: Any) -> ReportingClient:
        client = ReportingClient(self.url, token=token or self.token(), signing_key=key or self.key,
                                 signing_certificate=self.certificate, trust_anchors=self.trust_anchors, format=fmt,
                                 session=self.session, retry=NO_RETRY, validate=False, **kw)  # cases send bad documents
        # a receipt for another document is case 2.3's failure, not the failed prerequisite of every case that submits
        client._receipts_checked = False
        return client

    def acquisition(self, fmt: Format = Format.JSON, token: str | None = None) -> AcquisitionClient:
        return AcquisitionClient(self.url, token=token or self.token(), trust_anchors=self.trust_anchors, format=fmt,
                                 session=self.session, retry=NO_RETRY)

    def common(self) -> CommonClient:
        return CommonClient(self.url, trust_anchors=self.trust_anchors, session=self.session, retry=NO_RETRY)

    def resolver(self) -> tx.ChainResolver:
        """Key resolver for signed documents: the block's certificate chain, validated up to
        the trust anchors the inspector was given."""
        return tx.ChainResolver(self.trust_anchors, ttl=0)  # an inspector re-checks every document

    @staticmethod
    def path_of(operation_id: str, query: str = "", **params: str) -> str:
        """The path of a spec operation (from the generated operations, so a revised path reaches
        the raw-HTTP cases), with path parameters filled in and ``query`` appended."""
        return f"{OPERATIONS[operation_id].path.format(**params)}{query}"

    def url_of(self, operation_id: str, query: str = "", **params: str) -> str:
        """The absolute URL of a spec operation on the target (see :meth:`path_of`)."""
        return f"{self.url}{self.path_of(operation_id, query, **params)}"

    # --- documents ------------------------------------------------------------------------
    def example(self) -> dict[str, Any]:
        """The spec's own signed power example (appendix C), as a template."""
        submit = OPERATIONS["submitMonthlyReport"]
        op = spec.bundled_spec()["paths"][submit.path][submit.method.lower()]
        return copy.deepcopy(op["requestBody"]["content"]["application/json"]["examples"]["power"]["value"])

    def report(self, period: str | None = None) -> models.MonthlyReport:
        """A valid power monthly report for this entity and an unused period."""
        payload = self.example()["payload"]
        payload["creditCode"] = self.credit_code
        payload["reportId"] = str(uuid.uuid4())
        payload["period"] = period or self.fresh_period()
        return models.MonthlyReport.model_validate(payload)

    def fresh_period(self) -> str:
        """A period no earlier case of this run used (31-day months: unit running hours fit);
        runs start at a random point so that re-inspecting a target rarely meets its own data."""
        self._period_seq += 1
        year, month = divmod(self._period_seq % (7 * 700), 7)
        return f"{1200 + year}-{MONTHS31[month]}"

    def signed(self, report: models.MonthlyReport, key: SM2PrivateKey | None = None,
               certificate: bytes | None = None) -> dict[str, Any]:
        chain = [certificate] if certificate else [self.certificate] if self.certificate and key is None else None
        return trust.sign_document(report, key or self.entity_key, certificate_chain=chain,
                                   envelope_fields={"specVersion": SPEC_VERSION})

    def headers(self, path: str, body: bytes, *, ctype: str = "application/json", accept: str | None = None,
                token: str | None = None, idempotency_key: str | Literal[False] | None = None, method: str = "POST",
                signing_key: SM2PrivateKey | None = None) -> dict[str, Any]:
        h = {"Authorization": f"Bearer {token or self.token()}", "Content-Type": ctype}
        if accept:
            h["Accept"] = accept
        if idempotency_key is not False:
            h["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
        signer = signing_key or self.key
        if signer is not None:
            h.update(trust.sign_request(signer, method, trust.reqsign.request_path(self.url, path), "", body))  # base path included
        return h
