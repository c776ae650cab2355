"""Platform settings: from arguments or the environment (CEDX_*), with safe local defaults."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..trust import x509 as tx
from ..trust.keys import SM2PrivateKey


@dataclass
class PlatformSettings:
    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("CEDX_PLATFORM_DIR", "cedx-platform")))
    database_url: str | None = field(default_factory=lambda: os.environ.get("CEDX_DATABASE_URL"))
    platform_id: str = "cedx-reference-platform"
    platform_name: str = "cedx 参考报送平台 / cedx reference platform"
    base_url: str = field(default_factory=lambda: os.environ.get("CEDX_PUBLIC_URL", "http://127.0.0.1:8000"))
    successor_url: str | None = field(default_factory=lambda: os.environ.get("CEDX_SUCCESSOR_URL"))
    successor_from: str | None = field(default_factory=lambda: os.environ.get("CEDX_SUCCESSOR_FROM"))
    token_lifetime: int = 3600
    rate_limit_per_minute: int = field(default_factory=lambda: int(os.environ.get("CEDX_RATE_LIMIT", "1200")))
    max_body_bytes: int = 10 * 1024 * 1024

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'platform.db').resolve()}"

    @property
    def pki_dir(self) -> Path:
        return self.data_dir / "pki"


@dataclass
class PlatformPki:
    ca: bytes
    ca_key: SM2PrivateKey
    platform_cert: bytes
    platform_key: SM2PrivateKey
    tsa_cert: bytes
    tsa_key: SM2PrivateKey
    extra_anchors: list[bytes]

    @property
    def anchors(self) -> list[bytes]:
        return [self.ca, *self.extra_anchors]


def init_pki(pki_dir: Path, name: str = "cedx reference platform") -> None:
    """Create the platform's CA, signing and TSA keys and certificates (once)."""
    pki_dir.mkdir(parents=True, exist_ok=True)
    if (pki_dir / "ca.pem").exists():
        return
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    ca_key = SM2PrivateKey.generate()
    ca = tx.create_ca(ca_key, {"country_name": "CN", "organization_name": name, "common_name": f"{name} CA"}, not_before=start)
    items = {"ca": (ca_key, ca)}
    for role, profile in (("platform", "signing"), ("tsa", "tsa")):
        key = SM2PrivateKey.generate()
        cert = tx.issue_certificate(tx.create_csr(key, {"country_name": "CN", "common_name": f"{name} {role}"}),
                                    ca, ca_key, profile=profile, not_before=start, days=3650)
        items[role] = (key, cert)
    for role, (key, cert) in items.items():
        path = pki_dir / f"{role}.key.pem"
        path.write_bytes(key.to_pem())
        path.chmod(0o600)
        (pki_dir / f"{role}.pem").write_bytes(tx.to_pem(cert))
    (pki_dir / "trust").mkdir(exist_ok=True)


def load_pki(pki_dir: Path) -> PlatformPki:
    def key(name: str) -> SM2PrivateKey:
        return SM2PrivateKey.from_bytes((pki_dir / f"{name}.key.pem").read_bytes())

    def cert(name: str) -> bytes:
        return tx.load_certificate((pki_dir / f"{name}.pem").read_bytes()).dump()

    extra = [tx.load_certificate(p.read_bytes()).dump() for p in sorted((pki_dir / "trust").glob("*.pem"))]
    return PlatformPki(cert("ca"), key("ca"), cert("platform"), key("platform"), cert("tsa"), key("tsa"), extra)
