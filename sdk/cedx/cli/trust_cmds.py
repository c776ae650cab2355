"""Trust-layer commands: keygen, sign, verify, csr, ca, cert, ts."""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import sys
from pathlib import Path

from ..trust import tsa as tts
from ..trust import x509 as tx
from ..trust.curve import DEFAULT_ID
from ..trust.errors import CertificateError, InvalidKey, InvalidSignature, TimestampError
from ..trust.keys import SM2PrivateKey, SM2PublicKey, write_private_file
from ..trust.sm3 import SM3Hasher

_SUBJECT_KEYS = {
    "C": "country_name",
    "ST": "state_or_province_name",
    "L": "locality_name",
    "O": "organization_name",
    "OU": "organizational_unit_name",
    "CN": "common_name",
    "SERIALNUMBER": "serial_number",
    "EMAIL": "email_address",
}


def _cli_error(message: str, status: int = 2) -> Exception:
    from . import CliError

    return CliError(message, status)


def parse_subject(text: str) -> dict[str, str]:
    """'C=CN,O=Example Ltd,CN=name' → asn1crypto name dict."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise _cli_error(f"subject part {part!r} is not NAME=VALUE")
        name, value = (s.strip() for s in part.split("=", 1))
        key = _SUBJECT_KEYS.get(name.upper())
        if key is None:
            raise _cli_error(f"unknown subject attribute {name!r} (use {', '.join(_SUBJECT_KEYS)})")
        out[key] = value
    if not out:
        raise _cli_error("empty subject")
    return out


def _password(args: argparse.Namespace) -> bytes | None:
    if getattr(args, "password_env", None):
        value = os.environ.get(args.password_env)
        if value is None:
            raise _cli_error(f"environment variable {args.password_env} is not set")
        return value.encode()
    return None


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


def _write(path: str, data: bytes, private: bool = False, force: bool = False) -> None:
    if private:
        try:
            write_private_file(path, data, overwrite=force)
        except FileExistsError as exc:
            raise _cli_error(f"error: {exc} (use --force to replace it)") from exc
    else:
        Path(path).write_bytes(data)


def _load_key(path: str, args: argparse.Namespace) -> SM2PrivateKey:
    return SM2PrivateKey.from_bytes(_read(path), _password(args))


def _load_verifying_key(path: str) -> SM2PublicKey:
    data = _read(path)
    if b"CERTIFICATE" in data[:64] or data[:1] == b"\x30" and _is_cert(data):
        return tx.certificate_public_key(data)
    return SM2PublicKey.from_bytes(data)


def _is_cert(data: bytes) -> bool:
    try:
        tx.load_certificate(data)
        return True
    except CertificateError:
        return False


def _file_bytes(path: str) -> bytes:
    return Path(path).read_bytes() if path != "-" else sys.stdin.buffer.read()


def _uid(args: argparse.Namespace) -> bytes:
    return args.id.encode("utf-8") if args.id else DEFAULT_ID


# --- commands ----------------------------------------------------------------------------
def cmd_keygen(args: argparse.Namespace) -> int:
    key = SM2PrivateKey.generate()
    _write(args.out, key.to_pem(_password(args)), private=True, force=args.force)
    if args.pub:
        _write(args.pub, key.public_key().to_pem())
    print(f"SM2 key written to {args.out}; key ID {key.public_key().fingerprint()}")
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    key = _load_key(args.key, args)
    sig = key.sign(_file_bytes(args.file), _uid(args))
    _write(args.out, sig)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        public = _load_verifying_key(args.pub)
        sig = _read(args.signature)
    except (InvalidKey, CertificateError) as exc:
        raise _cli_error(f"error: {exc}") from exc
    try:
        public.verify(sig, _file_bytes(args.file), _uid(args))
    except InvalidSignature as exc:
        print(f"Verification failure: {exc}")
        return 1
    print("Verified OK")
    return 0


def cmd_csr(args: argparse.Namespace) -> int:
    key = _load_key(args.key, args)
    _write(args.out, tx.to_pem(tx.create_csr(key, parse_subject(args.subject)), "CERTIFICATE REQUEST"))
    return 0


def cmd_ca_init(args: argparse.Namespace) -> int:
    key = _load_key(args.key, args)
    cert = tx.create_ca(key, parse_subject(args.subject), days=args.days)
    _write(args.out, tx.to_pem(cert))
    return 0


def cmd_cert_issue(args: argparse.Namespace) -> int:
    ca_key = _load_key(args.ca_key, args)
    cert = tx.issue_certificate(
        _read(args.csr), _read(args.ca), ca_key, profile=args.profile, days=args.days
    )
    _write(args.out, tx.to_pem(cert))
    return 0


def cmd_cert_verify(args: argparse.Namespace) -> int:
    try:
        tx.validate_chain(
            _read(args.cert),
            trust_anchors=[_read(p) for p in args.ca],
            intermediates=[_read(p) for p in args.untrusted],
            crls=[_read(p) for p in args.crl],
            purpose=args.purpose,
        )
    except CertificateError as exc:
        print(f"{args.cert}: verification failed: {exc}")
        return 1
    print(f"{args.cert}: OK")
    return 0


def cmd_crl(args: argparse.Namespace) -> int:
    ca_key = _load_key(args.ca_key, args)
    now = _dt.datetime.now(_dt.timezone.utc)
    revoked = [(tx.load_certificate(_read(p)).serial_number, now) for p in args.revoke]
    _write(args.out, tx.to_pem(tx.create_crl(_read(args.ca), ca_key, revoked), "X509 CRL"))
    return 0


def _imprint(path: str) -> bytes:
    h = SM3Hasher()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.digest()


def cmd_ts_query(args: argparse.Namespace) -> int:
    _write(args.out, tts.make_request(_imprint(args.file)))
    return 0


def cmd_ts_reply(args: argparse.Namespace) -> int:
    authority = tts.TimeStampAuthority(
        _load_key(args.tsa_key, args), _read(args.tsa_cert),
        chain=[_read(p) for p in args.chain],
    )
    _write(args.out, authority.respond(_read(args.query)))
    return 0


def cmd_ts_verify(args: argparse.Namespace) -> int:
    data = _read(args.response)
    try:
        token = data if args.token_in else tts.token_from_response(data)
        info = tts.verify_token(
            token, imprint=_imprint(args.file), trust_anchors=[_read(p) for p in args.ca],
            intermediates=[_read(p) for p in args.untrusted],
        )
    except TimestampError as exc:
        print(f"Time-stamp verification failure: {exc}")
        return 1
    print(f"Verified OK: time-stamped at {info.gen_time.isoformat()} serial {info.serial_number}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def key_password(p: argparse.ArgumentParser) -> None:
        p.add_argument("--password-env", metavar="VAR",
                       help="read the private-key password from environment variable VAR")

    p = sub.add_parser("keygen", help="generate an SM2 key pair (PKCS#8 PEM)")
    p.add_argument("-o", "--out", required=True, metavar="KEY.pem")
    p.add_argument("--pub", metavar="PUB.pem")
    p.add_argument("--force", action="store_true", help="replace an existing key file (written anew at mode 0600)")
    key_password(p)
    p.set_defaults(func=cmd_keygen)

    p = sub.add_parser("sign", help="SM2-with-SM3 signature over a file's bytes (DER)")
    p.add_argument("-k", "--key", required=True, metavar="KEY.pem")
    p.add_argument("-o", "--out", required=True, metavar="SIG.der")
    p.add_argument("--id", help="SM2 user ID (default 1234567812345678)")
    p.add_argument("file")
    key_password(p)
    p.set_defaults(func=cmd_sign)

    p = sub.add_parser("verify", help="verify a DER SM2 signature over a file")
    p.add_argument("-p", "--pub", required=True, metavar="PUB.pem|CERT.pem")
    p.add_argument("-s", "--signature", required=True, metavar="SIG.der")
    p.add_argument("--id", help="SM2 user ID (default 1234567812345678)")
    p.add_argument("file")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("csr", help="create a PKCS#10 certification request")
    p.add_argument("-k", "--key", required=True)
    p.add_argument("--subject", required=True, help="e.g. 'C=CN,O=Example,CN=91350100M000100Y43'")
    p.add_argument("-o", "--out", required=True)
    key_password(p)
    p.set_defaults(func=cmd_csr)

    ca = sub.add_parser("ca", help="certificate authority operations").add_subparsers(
        dest="ca_command", metavar="ACTION", required=True)
    p = ca.add_parser("init", help="create a self-signed SM2 root CA certificate")
    p.add_argument("-k", "--key", required=True)
    p.add_argument("--subject", required=True)
    p.add_argument("--days", type=int, default=3650)
    p.add_argument("-o", "--out", required=True)
    key_password(p)
    p.set_defaults(func=cmd_ca_init)
    p = ca.add_parser("crl", help="issue a CRL revoking the given certificates")
    p.add_argument("--ca", required=True)
    p.add_argument("--ca-key", required=True)
    p.add_argument("--revoke", nargs="*", default=[], metavar="CERT.pem")
    p.add_argument("-o", "--out", required=True)
    key_password(p)
    p.set_defaults(func=cmd_crl)

    cert = sub.add_parser("cert", help="issue or verify certificates").add_subparsers(
        dest="cert_command", metavar="ACTION", required=True)
    p = cert.add_parser("issue", help="issue a certificate from a CSR")
    p.add_argument("--ca", required=True)
    p.add_argument("--ca-key", required=True)
    p.add_argument("--csr", required=True)
    p.add_argument("--profile", choices=sorted(tx.PROFILES), default="signing")
    p.add_argument("--days", type=int, default=365)
    p.add_argument("-o", "--out", required=True)
    key_password(p)
    p.set_defaults(func=cmd_cert_issue)
    p = cert.add_parser("verify", help="validate a certificate chain")
    p.add_argument("cert")
    p.add_argument("--ca", action="append", required=True, help="trust anchor (repeatable)")
    p.add_argument("--untrusted", action="append", default=[], help="intermediate certificate")
    p.add_argument("--crl", action="append", default=[])
    p.add_argument("--purpose", choices=["signing", "tsa"], default=None)
    p.set_defaults(func=cmd_cert_verify)

    ts = sub.add_parser("ts", help="RFC 3161 time-stamps with SM3/SM2").add_subparsers(
        dest="ts_command", metavar="ACTION", required=True)
    p = ts.add_parser("query", help="create a time-stamp request for a file")
    p.add_argument("file")
    p.add_argument("-o", "--out", required=True)
    p.set_defaults(func=cmd_ts_query)
    p = ts.add_parser("reply", help="answer a time-stamp request as a TSA")
    p.add_argument("query")
    p.add_argument("--tsa-key", required=True)
    p.add_argument("--tsa-cert", required=True)
    p.add_argument("--chain", action="append", default=[])
    p.add_argument("-o", "--out", required=True)
    key_password(p)
    p.set_defaults(func=cmd_ts_reply)
    p = ts.add_parser("verify", help="verify a time-stamp response (or token) for a file")
    p.add_argument("file")
    p.add_argument("--in", dest="response", required=True)
    p.add_argument("--token-in", action="store_true", help="the input is a bare token")
    p.add_argument("--ca", action="append", required=True)
    p.add_argument("--untrusted", action="append", default=[])
    p.set_defaults(func=cmd_ts_verify)
