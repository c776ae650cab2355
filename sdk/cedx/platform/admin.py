"""Administration of the reference platform: entities, API clients, certificates."""

from __future__ import annotations

import secrets

from sqlalchemy.exc import IntegrityError

from .. import trust
from ..spec.uscc import is_valid
from ..trust import x509 as tx
from .db import CertificateRow, ClientRow, EntityRow, make_engine, make_sessions
from .security import hash_secret
from .settings import PlatformSettings, init_pki, load_pki

DEFAULT_SCOPES = "reporting:entity:write reporting:submit reporting:read"


class AdminError(Exception):
    pass


class Admin:
    def __init__(self, settings: PlatformSettings):
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        init_pki(settings.pki_dir)
        self.pki = load_pki(settings.pki_dir)
        self.sessions = make_sessions(make_engine(settings.url))

    def add_entity(self, credit_code: str) -> None:
        if not is_valid(credit_code):
            raise AdminError(f"{credit_code} is not a valid unified social credit code (GB 32100)")
        with self.sessions() as s:
            if s.get(EntityRow, credit_code) is None:
                s.add(EntityRow(credit_code=credit_code))
                s.commit()

    def add_client(self, credit_code: str, client_id: str, scopes: str = DEFAULT_SCOPES,
                   secret: str | None = None) -> str:
        secret = secret or secrets.token_urlsafe(24)
        with self.sessions() as s:
            if s.get(EntityRow, credit_code) is None:
                raise AdminError(f"entity {credit_code} is not registered; add it first")
            s.add(ClientRow(client_id=client_id, secret_hash=hash_secret(secret), credit_code=credit_code, scopes=scopes))
            try:
                s.commit()
            except IntegrityError as exc:
                raise AdminError(f"client {client_id} exists already") from exc
        return secret

    def add_certificate(self, credit_code: str, certificate: bytes) -> str:
        try:
            public = tx.validate_chain(tx.load_certificate(certificate).dump(), trust_anchors=self.pki.anchors)
        except trust.CertificateError as exc:
            raise AdminError(f"certificate refused: {exc}") from exc
        with self.sessions() as s:
            if s.get(EntityRow, credit_code) is None:
                raise AdminError(f"entity {credit_code} is not registered; add it first")
            s.merge(CertificateRow(key_id=public.fingerprint(), credit_code=credit_code,
                                   der=tx.load_certificate(certificate).dump(), revoked=False))
            s.commit()
        return public.fingerprint()

    def issue_certificate(self, credit_code: str, csr: bytes, days: int = 365) -> bytes:
        """Issue an entity signing certificate from the platform CA and register it.

        Trust profile: the CSR's subject commonName is the entity's credit code (it names
        whose documents the key may sign); other subject attributes are copied as requested.
        """
        subject, _public = tx.load_csr(csr)
        common_name = subject.native.get("common_name")
        if common_name != credit_code:
            raise AdminError(f"the CSR's subject CN is {common_name!r}; it must be the credit code {credit_code}")
        cert = tx.issue_certificate(csr, self.pki.ca, self.pki.ca_key, days=days)
        self.add_certificate(credit_code, cert)
        return cert

    def revoke_certificate(self, key_id: str) -> None:
        with self.sessions() as s:
            row = s.get(CertificateRow, key_id)
            if row is None:
                raise AdminError(f"no certificate with key ID {key_id}")
            row.revoked = True
            s.commit()
