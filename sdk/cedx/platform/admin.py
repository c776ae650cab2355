"""Administration of the reference platform: entities, API clients and their tokens,
certificates and their revocation. The `cedx platform ...` commands and tests call this."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from .. import trust
from ..spec.uscc import is_valid
from ..trust import x509 as tx
from .db import SqlStore
from .security import hash_secret, new_token, token_hash
from .settings import PlatformSettings, init_pki, load_pki, private_dir
from .store import CertificateRecord, ClientListing, ClientRecord, StoreConflict, TokenRecord

DEFAULT_SCOPES = "reporting:entity:write reporting:submit reporting:read"
UTC = dt.timezone.utc


def names_entity(subject: dict[str, Any], credit_code: str) -> bool:
    """Whether a certificate's or CSR's subject (asn1crypto ``Name.native``) names this entity
    and no other: its CN is the credit code (the trust profile), and a serialNumber or
    organizationIdentifier, where present, carries the same code."""
    others = [str(subject[k]) for k in ("serial_number", "organization_identifier") if k in subject]
    return subject.get("common_name") == credit_code and all(credit_code in value for value in others)


class AdminError(Exception):
    pass


def certificate_state(record: CertificateRecord, now: dt.datetime) -> tuple[dt.datetime, str]:
    """A registered certificate's notAfter and its state: "valid", "expired" or "revoked <instant>"."""
    not_after: dt.datetime = tx.load_certificate(record.der)["tbs_certificate"]["validity"]["not_after"].native
    state = (f"revoked {record.revoked_at:%Y-%m-%dT%H:%M:%SZ}" if record.revoked_at
             else "expired" if not_after < now else "valid")
    return not_after, state


@dataclass(frozen=True)
class EntityOverview:
    """A registered entity with what it has at the platform (``cedx platform list-entities``)."""
    credit_code: str
    name: str | None
    registered_at: dt.datetime
    valid_certificates: int
    expired_certificates: int
    revoked_certificates: int
    clients: int


class Admin:
    def __init__(self, settings: PlatformSettings):
        self.settings = settings
        private_dir(settings.data_dir)
        init_pki(settings.pki_dir)
        self.pki = load_pki(settings.pki_dir)
        self.store = SqlStore.from_url(settings.url)
        self.sessions = self.store.sessions  # for tests that look inside the database

    def add_entity(self, credit_code: str) -> None:
        if not is_valid(credit_code):
            raise AdminError(f"{credit_code} is not a valid unified social credit code (GB 32100)")
        self.store.add_entity(credit_code)

    def add_client(self, credit_code: str, client_id: str, scopes: str = DEFAULT_SCOPES,
                   secret: str | None = None) -> str:
        secret = secret or secrets.token_urlsafe(24)
        if not self.store.entity_known(credit_code):
            raise AdminError(f"entity {credit_code} is not registered; add it first")
        try:
            self.store.add_client(ClientRecord(client_id, hash_secret(secret), credit_code, scopes))
        except StoreConflict as exc:
            raise AdminError(f"client {client_id} exists already") from exc
        return secret

    def clients(self, credit_code: str | None = None) -> list[ClientListing]:
        """The API clients (of one entity, or all), without their secrets."""
        return self.store.clients(credit_code, dt.datetime.now(UTC))

    def entities(self) -> list[EntityOverview]:
        now = dt.datetime.now(UTC)
        counts: dict[str, list[int]] = {}
        for record in self.store.certificates():
            state = certificate_state(record, now)[1].split()[0]
            counts.setdefault(record.credit_code, [0, 0, 0])[("valid", "expired", "revoked").index(state)] += 1
        clients: dict[str, int] = {}
        for client in self.store.clients(None, now):
            clients[client.credit_code] = clients.get(client.credit_code, 0) + 1
        overviews = []
        for e in self.store.entities():
            valid, expired, revoked = counts.get(e.credit_code, [0, 0, 0])
            overviews.append(EntityOverview(e.credit_code, e.name, e.registered_at, valid, expired, revoked,
                                            clients.get(e.credit_code, 0)))
        return overviews

    def set_client_active(self, client_id: str, active: bool) -> None:
        """Disabling takes effect on the next request of every worker: tokens are deleted and
        each request checks the client's state."""
        if not self.store.set_client_active(client_id, active):
            raise AdminError(f"no client {client_id}")

    def disable_client(self, client_id: str) -> None:
        self.set_client_active(client_id, False)

    def enable_client(self, client_id: str) -> None:
        self.set_client_active(client_id, True)

    def issue_token(self, client_id: str, lifetime: int, scopes: str | None = None) -> str:
        """A token without the token endpoint, e.g. a short-lived one to test expiry."""
        client = self.store.client(client_id)
        if client is None or not client.active:
            raise AdminError(f"no active client {client_id}")
        token = new_token()
        self.store.add_token(TokenRecord(token_hash(token), client_id, client.credit_code, scopes or client.scopes,
                                         dt.datetime.now(UTC) + dt.timedelta(seconds=lifetime)))
        return token

    def add_certificate(self, credit_code: str, certificate: bytes) -> str:
        cert = tx.load_certificate(certificate)
        validity = cert["tbs_certificate"]["validity"]
        # The chain is checked at the start of the certificate's validity, so that an expired
        # (or not yet valid) certificate can be registered; it is refused when used.
        at = max(validity["not_before"].native, min(validity["not_after"].native, dt.datetime.now(UTC)))
        try:
            public = tx.validate_chain(cert.dump(), trust_anchors=self.pki.anchors, at=at)
        except trust.CertificateError as exc:
            raise AdminError(f"certificate refused: {exc}") from exc
        if not self.store.entity_known(credit_code):
            raise AdminError(f"entity {credit_code} is not registered; add it first")
        # The certificate speaks for the entity its subject names (trust profile: CN = credit
        # code), never for another one.
        if not names_entity(cert.subject.native, credit_code):
            raise AdminError(f"the certificate's subject ({cert.subject.human_friendly}) does not name entity "
                             f"{credit_code} (its CN must be the credit code)")
        key_id = public.fingerprint()
        known = self.store.certificate(key_id)
        if known is not None and known.revoked_at is not None:
            # Registering it again must not undo the revocation (X.509 revocation is final).
            raise AdminError(f"certificate {key_id} was revoked at {known.revoked_at:%Y-%m-%d %H:%M:%S} UTC and stays "
                             "revoked; issue a new certificate for a new key")
        if known is not None and known.credit_code != credit_code:
            raise AdminError(f"certificate {key_id} is registered for entity {known.credit_code}")
        self.store.add_certificate(CertificateRecord(key_id, credit_code, cert.dump(), int(cert.serial_number)))
        return key_id

    def issue_certificate(self, credit_code: str, csr: bytes, days: int = 365,
                          not_before: dt.datetime | None = None) -> bytes:
        """Issue an entity signing certificate from the platform CA and register it.

        Trust profile: the CSR's subject commonName is the entity's credit code (it names
        whose documents the key may sign); other subject attributes are copied as requested.
        """
        subject, _public = tx.load_csr(csr)
        common_name = subject.native.get("common_name")
        if common_name != credit_code:
            raise AdminError(f"the CSR's subject CN is {common_name!r}; it must be the credit code {credit_code}")
        self.check_validity(days, not_before)
        cert = tx.issue_certificate(csr, self.pki.ca, self.pki.ca_key, days=days, not_before=not_before)
        self.add_certificate(credit_code, cert)
        return cert

    def _ca_not_after(self) -> dt.datetime:
        value: dt.datetime = tx.load_certificate(self.pki.ca)["tbs_certificate"]["validity"]["not_after"].native
        return value

    def longest_validity(self, not_before: dt.datetime | None = None) -> int:
        """The most whole days a certificate issued now (or from ``not_before``) may be valid:
        none outlives the platform CA (path validation would refuse it from then on)."""
        # now: a second's margin, for the clock passing a second before the certificate is made
        start = not_before or dt.datetime.now(UTC).replace(microsecond=0) + dt.timedelta(seconds=1)
        return (self._ca_not_after() - start).days

    def check_validity(self, days: int, not_before: dt.datetime | None = None) -> None:
        """Refuse (never shorten silently) a validity below 0 days or beyond the CA's notAfter."""
        if days < 0:
            raise AdminError(f"a certificate cannot be valid for {days} days; give 0 or more "
                             "(0: valid only in the second it is issued)")
        longest = self.longest_validity(not_before)
        if longest < 0:
            raise AdminError(f"the platform CA is no longer valid (not after {self._ca_not_after():%Y-%m-%dT%H:%M:%SZ}); "
                             "no certificate it issues would verify")
        if days > longest:
            raise AdminError(f"a certificate valid for {days} days would outlive the platform CA (not after "
                             f"{self._ca_not_after():%Y-%m-%dT%H:%M:%SZ}); give at most {longest} days")

    def revoke_certificate(self, key_id_or_certificate: str | bytes) -> str:
        """Revoke by key ID (SM3 of the public key) or by the certificate (PEM/DER). Effective
        at the next signed request in every worker and host; the CRL is reissued at once."""
        if isinstance(key_id_or_certificate, bytes):
            key_id = tx.certificate_public_key(key_id_or_certificate).fingerprint()
        else:
            key_id = key_id_or_certificate
        if self.store.revoke_certificate(key_id, dt.datetime.now(UTC).replace(microsecond=0)) is None:
            raise AdminError(f"no certificate with key ID {key_id}")
        return key_id
