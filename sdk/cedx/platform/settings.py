"""Platform settings: from arguments or the environment (CEDX_*), with safe local defaults."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..trust import x509 as tx
from ..trust.keys import SM2PrivateKey, write_private_file


@dataclass
class PlatformSettings:
    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("CEDX_PLATFORM_DIR", "cedx-platform")))
    database_url: str | None = field(default_factory=lambda: os.environ.get("CEDX_DATABASE_URL"))
    platform_id: str = "cedx-reference-platform"
    platform_name: str = "cedx 参考报送平台 / cedx reference platform"
    #: The address clients use, announced in the signed configuration document. Unset: the
    #: address each request actually arrived on (the local socket, never the Host header).
    base_url: str | None = field(default_factory=lambda: os.environ.get("CEDX_PUBLIC_URL") or None)
    successor_url: str | None = field(default_factory=lambda: os.environ.get("CEDX_SUCCESSOR_URL"))
    successor_from: str | None = field(default_factory=lambda: os.environ.get("CEDX_SUCCESSOR_FROM"))
    token_lifetime: int = 3600
    #: Requests a minute per authenticated client (or per address before authentication),
    #: counted in the database so every worker and host shares the count.
    rate_limit_per_minute: int = field(default_factory=lambda: int(os.environ.get("CEDX_RATE_LIMIT", "1200")))
    #: Failed authentications a minute per client ID and per address before 429.
    auth_failures_per_minute: int = field(default_factory=lambda: int(os.environ.get("CEDX_AUTH_FAILURE_LIMIT", "10")))
    max_body_bytes: int = 10 * 1024 * 1024
    #: Freshness of a submitted document's signingTime (docs/trust-profile: signing time):
    #: at most this far in the future of the time of receipt ...
    signing_time_future_seconds: int = 300
    #: ... no older than this at receipt ...
    signing_time_max_age_seconds: int = 7 * 24 * 3600
    #: ... and not before the payload's preparedAt less this tolerance.
    signing_time_before_prepared_seconds: int = 300
    #: Next-update interval announced in the published CRL.
    crl_next_update_days: int = 7

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


def private_dir(path: Path) -> Path:
    """Create a directory only its owner can enter (0700 whatever the umask). An existing one is
    left as it is: load_pki refuses a PKI directory others could have written into."""
    if not path.exists():
        path.mkdir(parents=True, mode=0o700)
        path.chmod(0o700)
    return path


def init_pki(pki_dir: Path, name: str = "cedx reference platform", reissue: bool = False) -> None:
    """Create the platform's CA, signing and TSA keys and certificates (once). With a CA in
    place and ``reissue`` (``cedx platform init`` only), a platform or TSA key and certificate
    moved aside (both files) are issued again from that CA: the rotation of docs/security.md.
    Without ``reissue`` (every other command, every worker) a missing pair is refused, never
    replaced: a restore that missed it must not bring the platform up under a new signing key;
    a pair with one file missing is always refused."""
    private_dir(pki_dir.parent)
    private_dir(pki_dir)
    private_dir(pki_dir / "trust")
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    roles: tuple[tuple[str, str], ...] = (("platform", "signing"), ("tsa", "tsa"))
    items: dict[str, tuple[SM2PrivateKey, bytes]] = {}
    if (pki_dir / "ca.pem").exists():
        missing = [role for role, _ in roles
                   if not (pki_dir / f"{role}.pem").exists() and not (pki_dir / f"{role}.key.pem").exists()]
        for role, _ in roles:
            if role not in missing and not (pki_dir / f"{role}.pem").exists():
                raise FileNotFoundError(2, f"No such file (move {role}.key.pem aside too, to have both issued "
                                           "again)", str(pki_dir / f"{role}.pem"))
            if role not in missing and not (pki_dir / f"{role}.key.pem").exists():
                raise FileNotFoundError(2, f"No such file (move {role}.pem aside too, to have both issued again)",
                                        str(pki_dir / f"{role}.key.pem"))
        if not missing:
            return
        if not reissue:
            raise FileNotFoundError(2, f"No such file ({missing[0]}.pem and {missing[0]}.key.pem are missing; run "
                                       "`cedx platform init` to issue a new pair from the platform CA)",
                                    str(pki_dir / f"{missing[0]}.pem"))
        ca_key = SM2PrivateKey.from_bytes((pki_dir / "ca.key.pem").read_bytes())
        ca = tx.load_certificate((pki_dir / "ca.pem").read_bytes()).dump()
        roles = tuple(r for r in roles if r[0] in missing)
    else:
        ca_key = SM2PrivateKey.generate()
        ca = tx.create_ca(ca_key, {"country_name": "CN", "organization_name": name, "common_name": f"{name} CA"},
                          not_before=start)
        items["ca"] = (ca_key, ca)
    for role, profile in roles:
        key = SM2PrivateKey.generate()
        cert = tx.issue_certificate(tx.create_csr(key, {"country_name": "CN", "common_name": f"{name} {role}"}),
                                    ca, ca_key, profile=profile, not_before=start, days=3650)
        items[role] = (key, cert)
    for role, (key, cert) in items.items():
        write_private_file(pki_dir / f"{role}.key.pem", key.to_pem())
        (pki_dir / f"{role}.pem").write_bytes(tx.to_pem(cert))


def load_pki(pki_dir: Path) -> PlatformPki:
    def key(name: str) -> SM2PrivateKey:
        return SM2PrivateKey.from_bytes((pki_dir / f"{name}.key.pem").read_bytes())

    def cert(name: str) -> bytes:
        return bytes(tx.load_certificate((pki_dir / f"{name}.pem").read_bytes()).dump())

    trust_dir = pki_dir / "trust"
    # Extra trust anchors are honoured only from a directory no one else could write into.
    mode = trust_dir.stat().st_mode if trust_dir.exists() else 0
    if mode & 0o022 or (pki_dir.stat().st_mode & 0o022):
        raise PermissionError(f"{trust_dir} is writable by others; fix with chmod 700 before the platform trusts it")
    extra = [tx.load_certificate(p.read_bytes()).dump() for p in sorted(trust_dir.glob("*.pem"))]
    return PlatformPki(cert("ca"), key("ca"), cert("platform"), key("platform"), cert("tsa"), key("tsa"), extra)
