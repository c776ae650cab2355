"""SM2 X.509 certificates in the GB/T 25056 style: CA, CSR, issuing, chain validation, CRL.

Certificates and CRLs are signed SM2-with-SM3 (OID 1.2.156.10197.1.501) with the default user
ID, so OpenSSL 3 verifies them with ``-vfyopt distid:1234567812345678``.
"""

from __future__ import annotations

import datetime as _dt
import secrets
from collections.abc import Iterable, Sequence
from typing import Any, cast

from asn1crypto import crl as asn1crl
from asn1crypto import csr as asn1csr
from asn1crypto import pem, x509

from .curve import OID_SM2_WITH_SM3
from .errors import CertificateError, InvalidKey, InvalidSignature
from .keys import SM2PrivateKey, SM2PublicKey

_SIG_ALG = {"algorithm": OID_SM2_WITH_SM3}
UTC = _dt.timezone.utc

#: Certificate profiles: key usages and extended key usages per role.
PROFILES: dict[str, dict[str, Any]] = {
    "ca": {"key_usage": {"key_cert_sign", "crl_sign"}, "eku": None, "ca": True},
    "signing": {"key_usage": {"digital_signature", "non_repudiation"}, "eku": None, "ca": False},
    "tsa": {"key_usage": {"digital_signature", "non_repudiation"}, "eku": "time_stamping", "ca": False},
    "tls": {"key_usage": {"digital_signature", "key_agreement"}, "eku": "server_auth", "ca": False},
}


def _now() -> _dt.datetime:
    return _dt.datetime.now(UTC).replace(microsecond=0)


def _name(subject: dict[str, Any] | x509.Name) -> x509.Name:
    if isinstance(subject, x509.Name):
        return subject
    return x509.Name.build(subject, use_printable=False)


def _sign_tbs(tbs: x509.TbsCertificate | asn1crl.TbsCertList, key: SM2PrivateKey) -> bytes:
    return key.sign(tbs.dump())


def _extensions(
    profile: str, public: SM2PublicKey, issuer_public: SM2PublicKey, path_length: int | None
) -> list[dict[str, Any]]:
    spec = PROFILES[profile]
    exts = [
        {
            "extn_id": "key_usage",
            "critical": True,
            "extn_value": x509.KeyUsage(set(spec["key_usage"])),
        },
        {
            "extn_id": "key_identifier",
            "critical": False,
            "extn_value": bytes.fromhex(public.fingerprint())[:20],
        },
        {
            "extn_id": "authority_key_identifier",
            "critical": False,
            "extn_value": {"key_identifier": bytes.fromhex(issuer_public.fingerprint())[:20]},
        },
    ]
    if spec["ca"]:
        bc: dict[str, Any] = {"ca": True}
        if path_length is not None:
            bc["path_len_constraint"] = path_length
        exts.append({"extn_id": "basic_constraints", "critical": True, "extn_value": bc})
    else:
        exts.append({"extn_id": "basic_constraints", "critical": True, "extn_value": {"ca": False}})
    if spec["eku"]:
        # RFC 3161 §2.3: the TSA's extendedKeyUsage is critical and holds timeStamping only.
        exts.append(
            {"extn_id": "extended_key_usage", "critical": spec["eku"] == "time_stamping",
             "extn_value": [spec["eku"]]}
        )
    return exts


def _build_certificate(
    subject: x509.Name,
    public: SM2PublicKey,
    issuer: x509.Name,
    issuer_key: SM2PrivateKey,
    profile: str,
    not_before: _dt.datetime | None,
    days: int,
    serial: int | None,
    path_length: int | None = None,
) -> bytes:
    start = (not_before or _now()).astimezone(UTC)
    tbs = x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": serial or secrets.randbits(63) + 1,
            "signature": _SIG_ALG,
            "issuer": issuer,
            "validity": {
                "not_before": x509.Time(name="utc_time", value=start),
                "not_after": x509.Time(
                    name="utc_time", value=start + _dt.timedelta(days=days)
                ),
            },
            "subject": subject,
            "subject_public_key_info": public.public_key_info(),
            "extensions": _extensions(profile, public, issuer_key.public_key(), path_length),
        }
    )
    cert = x509.Certificate(
        {
            "tbs_certificate": tbs,
            "signature_algorithm": _SIG_ALG,
            "signature_value": _sign_tbs(tbs, issuer_key),
        }
    )
    return cast(bytes, cert.dump())


def create_ca(
    key: SM2PrivateKey,
    subject: dict[str, Any],
    *,
    days: int = 3650,
    not_before: _dt.datetime | None = None,
    path_length: int | None = None,
) -> bytes:
    """Self-signed SM2 root CA certificate (DER)."""
    name = _name(subject)
    return _build_certificate(
        name, key.public_key(), name, key, "ca", not_before, days, None, path_length
    )


def create_csr(key: SM2PrivateKey, subject: dict[str, Any]) -> bytes:
    """PKCS#10 certification request signed with the subject's SM2 key (DER)."""
    info = asn1csr.CertificationRequestInfo(
        {
            "version": "v1",
            "subject": _name(subject),
            "subject_pk_info": key.public_key().public_key_info(),
            "attributes": [],
        }
    )
    return cast(bytes, asn1csr.CertificationRequest(
        {
            "certification_request_info": info,
            "signature_algorithm": _SIG_ALG,
            "signature": key.sign(info.dump()),
        }
    ).dump())


def load_csr(data: bytes) -> tuple[x509.Name, SM2PublicKey]:
    """Parse a CSR (PEM or DER) and check its proof of possession."""
    data = _unarmor(data, "CERTIFICATE REQUEST")
    try:
        req = asn1csr.CertificationRequest.load(data, strict=True)
        info = req["certification_request_info"]
        public = SM2PublicKey.from_bytes(info["subject_pk_info"].dump())
        alg = req["signature_algorithm"]["algorithm"].dotted
        sig = bytes(req["signature"])
    except (ValueError, TypeError, KeyError, InvalidKey) as exc:
        raise CertificateError(f"malformed certification request: {exc}") from exc
    if alg != OID_SM2_WITH_SM3:
        raise CertificateError(f"CSR is not signed with SM2-with-SM3 (algorithm {alg})")
    try:
        public.verify(sig, info.dump())
    except InvalidSignature as exc:
        raise CertificateError("CSR signature does not verify (no proof of possession)"
                               + public.why_not(sig, info.dump())) from exc
    return info["subject"], public


def issue_certificate(
    csr: bytes,
    issuer_certificate: bytes,
    issuer_key: SM2PrivateKey,
    *,
    profile: str = "signing",
    days: int = 365,
    not_before: _dt.datetime | None = None,
    serial: int | None = None,
    path_length: int | None = None,
) -> bytes:
    """Issue a certificate (DER) for a verified CSR under the given profile."""
    if profile not in PROFILES:
        raise CertificateError(f"unknown profile {profile!r}; one of {', '.join(PROFILES)}")
    subject, public = load_csr(csr)
    issuer = load_certificate(issuer_certificate)
    if certificate_public_key(issuer_certificate) != issuer_key.public_key():
        raise CertificateError("issuer key does not match the issuer certificate")
    return _build_certificate(
        subject, public, issuer.subject, issuer_key, profile, not_before, days, serial,
        path_length,
    )


def _unarmor(data: bytes, label: str) -> bytes:
    if data.lstrip().startswith(b"-----"):
        kind, _, der = pem.unarmor(data.strip())
        if kind != label:
            raise CertificateError(f"expected a {label} PEM block, found {kind!r}")
        return cast(bytes, der)
    return data


def load_certificate(data: bytes) -> x509.Certificate:
    try:
        cert = x509.Certificate.load(_unarmor(data, "CERTIFICATE"), strict=True)
        _ = cert.native  # force a full parse so that malformed bodies fail here
        return cert
    except (ValueError, TypeError, KeyError) as exc:
        raise CertificateError(f"malformed certificate: {exc}") from exc


def certificate_public_key(data: bytes | x509.Certificate) -> SM2PublicKey:
    cert = data if isinstance(data, x509.Certificate) else load_certificate(data)
    try:
        return SM2PublicKey.from_bytes(cert["tbs_certificate"]["subject_public_key_info"].dump())
    except InvalidKey as exc:
        raise CertificateError(f"certificate key is not an SM2 key: {exc}") from exc


def to_pem(der: bytes, label: str = "CERTIFICATE") -> bytes:
    return cast(bytes, pem.armor(label, der))


def _describe(cert: x509.Certificate) -> str:
    return cast(str, cert.subject.human_friendly)


def _check_signature(child_tbs: bytes, alg: str, sig: bytes, issuer: x509.Certificate, what: str) -> None:
    if alg != OID_SM2_WITH_SM3:
        raise CertificateError(f"{what} is not signed with SM2-with-SM3 (algorithm {alg})")
    try:
        certificate_public_key(issuer).verify(sig, child_tbs)
    except InvalidSignature as exc:
        raise CertificateError(f"{what} signature does not verify with its issuer's key") from exc


_KNOWN_CRITICAL = {"key_usage", "basic_constraints", "extended_key_usage"}


def _check_certificate(
    cert: x509.Certificate, at: _dt.datetime, *, as_ca: bool, purpose: str | None
) -> None:
    name = _describe(cert)
    validity = cert["tbs_certificate"]["validity"]
    if at < validity["not_before"].native:
        raise CertificateError(f"certificate '{name}' is not yet valid")
    if at > validity["not_after"].native:
        raise CertificateError(f"certificate '{name}' has expired")
    for ext in cert["tbs_certificate"]["extensions"]:
        if ext["critical"].native and ext["extn_id"].native not in _KNOWN_CRITICAL:
            raise CertificateError(
                f"certificate '{name}' has an unknown critical extension {ext['extn_id'].dotted}"
            )
    usage = cert.key_usage_value.native if cert.key_usage_value else None
    if as_ca:
        if not cert.ca:
            raise CertificateError(f"issuer '{name}' is not a CA (basicConstraints)")
        if usage is not None and "key_cert_sign" not in usage:
            raise CertificateError(f"issuer '{name}' may not sign certificates (keyUsage)")
        return
    if cert.ca:
        raise CertificateError(f"certificate '{name}' is a CA certificate, not an end entity")
    if usage is not None and "digital_signature" not in usage:
        raise CertificateError(f"certificate '{name}' may not sign (keyUsage)")
    if purpose == "tsa":
        eku = cert.extended_key_usage_value
        ext = next(
            (e for e in cert["tbs_certificate"]["extensions"]
             if e["extn_id"].native == "extended_key_usage"),
            None,
        )
        if eku is None or ext is None or eku.native != ["time_stamping"] or not ext["critical"].native:
            raise CertificateError(
                f"certificate '{name}' lacks the critical timeStamping extended key usage"
            )


def validate_chain(
    leaf: bytes,
    *,
    trust_anchors: Sequence[bytes],
    intermediates: Iterable[bytes] = (),
    at: _dt.datetime | None = None,
    purpose: str | None = None,
    crls: Iterable[bytes] = (),
) -> SM2PublicKey:
    """Build and validate the path from ``leaf`` to one of ``trust_anchors``.

    Checks, for each certificate: validity at ``at`` (default now), signature by its issuer
    (SM2 with the default ID), issuer name, CA and keyUsage of issuers, path length, unknown
    critical extensions, the leaf's keyUsage and, for ``purpose="tsa"``, its critical
    timeStamping EKU; and revocation against any CRL given (whose own signature is checked).
    Returns the leaf's public key; raises CertificateError naming what failed.
    """
    at = (at or _dt.datetime.now(UTC)).astimezone(UTC)
    anchors = [load_certificate(a) for a in trust_anchors]
    pool = anchors + [load_certificate(c) for c in intermediates]
    revoked = _load_revocations(crls, pool, at)
    cert = load_certificate(leaf)
    _check_certificate(cert, at, as_ca=False, purpose=purpose)
    depth = 0
    while True:
        _check_revocation(cert, revoked)
        if any(cert.dump() == a.dump() for a in anchors):
            return certificate_public_key(leaf)
        issuer = next(
            (c for c in pool if c.subject == cert.issuer and c.dump() != cert.dump()), None
        )
        if issuer is None:
            if cert.self_signed != "no":
                raise CertificateError(f"self-signed certificate '{_describe(cert)}' is not trusted")
            raise CertificateError(
                f"no trusted issuer found for '{_describe(cert)}' (issuer '{cert.issuer.human_friendly}')"
            )
        _check_signature(
            cert["tbs_certificate"].dump(),
            cert["signature_algorithm"]["algorithm"].dotted,
            bytes(cert["signature_value"]),
            issuer,
            f"certificate '{_describe(cert)}'",
        )
        _check_certificate(issuer, at, as_ca=True, purpose=None)
        if issuer.max_path_length is not None and depth > issuer.max_path_length:
            raise CertificateError(f"path length constraint of '{_describe(issuer)}' exceeded")
        depth += 0 if cert is None else (1 if cert.ca else 0)
        cert = issuer
        if depth > 8:
            raise CertificateError("certificate path too long")


# --- CRLs --------------------------------------------------------------------------------
def create_crl(
    issuer_certificate: bytes,
    issuer_key: SM2PrivateKey,
    revoked: Iterable[tuple[int, _dt.datetime]],
    *,
    this_update: _dt.datetime | None = None,
    next_update_days: int = 7,
) -> bytes:
    issuer = load_certificate(issuer_certificate)
    start = (this_update or _now()).astimezone(UTC)
    entries = [
        {"user_certificate": serial, "revocation_date": x509.Time(name="utc_time", value=when)}
        for serial, when in revoked
    ]
    tbs = asn1crl.TbsCertList(
        {
            "version": "v2",
            "signature": _SIG_ALG,
            "issuer": issuer.subject,
            "this_update": x509.Time(name="utc_time", value=start),
            "next_update": x509.Time(
                name="utc_time", value=start + _dt.timedelta(days=next_update_days)
            ),
            "revoked_certificates": entries or None,
        }
    )
    return cast(bytes, asn1crl.CertificateList(
        {
            "tbs_cert_list": tbs,
            "signature_algorithm": _SIG_ALG,
            "signature": _sign_tbs(tbs, issuer_key),
        }
    ).dump())


def _load_revocations(
    crls: Iterable[bytes], pool: list[x509.Certificate], at: _dt.datetime
) -> dict[bytes, set[int]]:
    revoked: dict[bytes, set[int]] = {}
    for data in crls:
        try:
            crl = asn1crl.CertificateList.load(_unarmor(data, "X509 CRL"), strict=True)
            tbs = crl["tbs_cert_list"]
            _ = tbs.native  # full parse
        except (ValueError, TypeError, KeyError) as exc:
            raise CertificateError(f"malformed CRL: {exc}") from exc
        issuer = next((c for c in pool if c.subject == tbs["issuer"]), None)
        if issuer is None:
            raise CertificateError(f"CRL issuer '{tbs['issuer'].human_friendly}' is unknown")
        _check_signature(
            tbs.dump(), crl["signature_algorithm"]["algorithm"].dotted,
            bytes(crl["signature"]), issuer, "CRL",
        )
        next_update = tbs["next_update"].native
        if next_update is not None and at > next_update:
            raise CertificateError(f"CRL of '{issuer.subject.human_friendly}' is out of date")
        serials = {int(e["user_certificate"].native) for e in tbs["revoked_certificates"]}
        revoked.setdefault(issuer.subject.dump(), set()).update(serials)
    return revoked


def _check_revocation(cert: x509.Certificate, revoked: dict[bytes, set[int]]) -> None:
    if cert.serial_number in revoked.get(cert.issuer.dump(), set()):
        raise CertificateError(f"certificate '{_describe(cert)}' has been revoked")


class ChainResolver:
    """Key resolver for signed documents that carry a certificate chain: validates the chain to
    the trust anchors and remembers the result for ``ttl`` seconds, so a stream of documents
    from one signer (a month of batches) validates its chain once, not per document."""

    def __init__(self, trust_anchors: Sequence[bytes], *, purpose: str | None = None, ttl: float = 300.0):
        import threading

        self.trust_anchors = list(trust_anchors)
        self.purpose, self.ttl = purpose, ttl
        self._cache: dict[tuple[bytes, ...], tuple[float, SM2PublicKey]] = {}
        self._lock = threading.Lock()

    def __call__(self, block: dict[str, Any]) -> SM2PublicKey:
        import base64
        import binascii
        import time

        try:
            chain = tuple(base64.b64decode(c, validate=True) for c in block.get("certificateChain") or [])
        except (binascii.Error, ValueError) as exc:
            raise CertificateError("certificate chain is not valid base64") from exc
        if not chain:
            raise CertificateError("the signed document carries no certificate chain")
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(chain)
            if hit and hit[0] > now:
                return hit[1]
        key = validate_chain(chain[0], trust_anchors=self.trust_anchors, intermediates=chain[1:], purpose=self.purpose)
        with self._lock:
            if len(self._cache) > 1000:
                self._cache.clear()
            self._cache[chain] = (now + self.ttl, key)
        return key

