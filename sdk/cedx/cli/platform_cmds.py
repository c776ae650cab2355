"""`cedx platform ...` (administration) and `cedx serve platform`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datetime as dt
    from types import FrameType

    from ..platform.admin import Admin
    from ..platform.settings import PlatformSettings


def _settings(args: argparse.Namespace, create: bool = False) -> PlatformSettings:
    """The platform's directory: --dir, else $CEDX_HOME, else $CEDX_PLATFORM_DIR — never a silent
    default (a new directory would mean a new CA, and certificates issued before would not verify).
    Only ``init`` creates one; every other command needs an initialised directory."""
    from ..platform.settings import PlatformSettings
    from . import CliError

    chosen = getattr(args, "dir", None) or os.environ.get("CEDX_HOME") or os.environ.get("CEDX_PLATFORM_DIR")
    if not chosen:
        raise CliError("error: which platform? give --dir DIR (or set CEDX_HOME); "
                       "create one with: cedx platform init --dir DIR", 2)
    settings = PlatformSettings()
    settings.data_dir = Path(chosen)
    url = settings.database_url
    for alias in ("postgresql://", "postgres://"):  # the usual spellings, for the driver cedx installs
        if url and url.startswith(alias):
            url = settings.database_url = os.environ["CEDX_DATABASE_URL"] = "postgresql+psycopg://" + url[len(alias):]
    if url and not url.startswith(_DATABASE_SCHEMES):
        # Told here rather than by a driver's traceback (psycopg2, MySQLdb, an unparsable URL).
        raise CliError(f"error: CEDX_DATABASE_URL is not a database cedx can use; give "
                       f"{_DATABASE_FORM} (or unset it for SQLite in the platform directory)", 2)
    if not create and not (settings.pki_dir / "ca.pem").is_file():
        raise CliError(f"error: {chosen} is not an initialised platform directory (no pki/ca.pem); "
                       f"create it with: cedx platform init --dir {chosen}", 2)
    if not create and not url and not (settings.data_dir / "platform.db").is_file():
        # A platform initialised on PostgreSQL has no platform.db: without its URL, a new SQLite
        # database would be created here and used silently (entities the server never sees).
        raise CliError(f"error: {chosen} has no SQLite database (platform.db); if this platform uses "
                       f"PostgreSQL, set CEDX_DATABASE_URL={_DATABASE_FORM} as for `cedx platform init`", 2)
    return settings


_DATABASE_SCHEMES = ("postgresql+psycopg://", "sqlite:///")
_DATABASE_FORM = "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE"


def _secret_from(var: str) -> str:
    """A secret named by --secret-env: an unset or empty variable is a mistake, never a cue to
    generate a secret that would then be shown to no one."""
    from . import CliError

    value = os.environ.get(var)
    if not value:
        raise CliError(f"error: environment variable {var} is {'empty' if value == '' else 'not set'}; "
                       "set it to the client's secret, or omit --secret-env to have one generated and shown once", 2)
    return value


def _check_scopes(scopes: list[str] | None, allowed: list[str], whose: str) -> None:
    from . import CliError

    unknown = [s for s in scopes or [] if s not in allowed]
    if unknown:
        raise CliError(f"error: unknown scope {' '.join(unknown)}; {whose}: {' '.join(allowed)}", 2)


def _admin(args: argparse.Namespace, create: bool = False) -> Admin:
    from ..platform.admin import Admin

    return Admin(_settings(args, create))


def _fail(exc: Exception) -> Exception:
    from . import CliError

    return CliError(f"error: {exc}", 2)


def cmd_init(args: argparse.Namespace) -> int:
    settings = _settings(args, create=True)
    roles = ("ca", "platform", "tsa")
    had = {role for role in roles if (settings.pki_dir / f"{role}.pem").exists()}
    if "ca" in had:  # the rotation: a moved-aside pair is issued again (only here, never on another command)
        from ..platform.settings import init_pki

        init_pki(settings.pki_dir, reissue=True)
    admin = _admin(args, create=True)
    print(f"platform data in {admin.settings.data_dir.resolve()} (database {admin.settings.url.split('://')[0]})")
    if had and had != set(roles):  # a rotation: say what was issued, and from which CA
        print(f"issued from the existing CA: {', '.join(f'pki/{r}.pem' for r in roles if r not in had)}")
    return 0


def cmd_add_entity(args: argparse.Namespace) -> int:
    from ..platform.admin import AdminError

    try:
        _admin(args).add_entity(args.credit_code)
    except AdminError as exc:
        raise _fail(exc) from exc
    print(f"entity {args.credit_code} registered")
    return 0


def cmd_add_client(args: argparse.Namespace) -> int:
    from ..platform.admin import DEFAULT_SCOPES, AdminError

    _check_scopes(args.scope, DEFAULT_SCOPES.split(), "the platform's scopes are")
    args.scope = args.scope or DEFAULT_SCOPES.split()
    secret = _secret_from(args.secret_env) if args.secret_env else None
    try:
        secret = _admin(args).add_client(args.credit_code, args.client_id, " ".join(args.scope), secret)
    except AdminError as exc:
        raise _fail(exc) from exc
    print(f"client {args.client_id} for {args.credit_code}; scopes {' '.join(args.scope)}")
    if not args.secret_env:
        print(f"client secret (shown once, stored hashed): {secret}")
    return 0


def cmd_add_certificate(args: argparse.Namespace) -> int:
    from ..platform.admin import AdminError

    try:
        key_id = _admin(args).add_certificate(args.credit_code, Path(args.certificate).read_bytes())
    except AdminError as exc:
        raise _fail(exc) from exc
    print(f"certificate registered for {args.credit_code}; key ID {key_id}")
    return 0


def _check_csr_subject(csr: bytes, credit_code: str) -> None:
    """The certificate will speak for ``credit_code``: its subject must name that entity (its
    common name; a serial number or organization identifier, where present, agreeing), so a CSR
    made for another entity, or with a typo, is refused instead of being signed."""
    from ..trust import x509 as tx
    from ..trust.errors import CertificateError
    from . import CliError

    try:
        name, _key = tx.load_csr(csr)
    except (CertificateError, ValueError) as exc:
        raise CliError(f"error: not a valid certificate signing request: {exc}", 2) from exc
    from ..platform.admin import names_entity

    if not names_entity(name.native, credit_code):
        subject = name.human_friendly or "(empty)"
        raise CliError(f"error: the CSR's subject ({subject}) does not name entity {credit_code}; "
                       f'make the CSR with --subject "CN={credit_code}"', 2)


def cmd_issue_certificate(args: argparse.Namespace) -> int:
    from ..platform.admin import AdminError
    from ..trust import x509 as tx
    from . import CliError

    out = Path(args.out)
    if out.is_file() and b"PRIVATE KEY" in out.read_bytes():
        # -o entity.key.pem by mistake would destroy the entity's key (keygen never overwrites one either)
        raise CliError(f"error: {args.out} holds a private key; refusing to overwrite it with the certificate", 2)
    csr = Path(args.csr).read_bytes()
    _check_csr_subject(csr, args.credit_code)
    try:
        cert = _admin(args).issue_certificate(args.credit_code, csr, days=args.days)
    except AdminError as exc:
        raise _fail(exc) from exc
    Path(args.out).write_bytes(tx.to_pem(cert))
    print(f"certificate issued and registered for {args.credit_code}: {args.out}")
    return 0


def cmd_disable_client(args: argparse.Namespace) -> int:
    from ..platform.admin import AdminError

    try:
        _admin(args).set_client_active(args.client_id, args.enable)
    except AdminError as exc:
        raise _fail(exc) from exc
    print(f"client {args.client_id} {'enabled' if args.enable else 'disabled; its tokens are revoked'}")
    return 0


def cmd_issue_token(args: argparse.Namespace) -> int:
    from ..platform.admin import AdminError
    from . import CliError

    if args.lifetime <= 0:
        raise CliError(f"error: --lifetime must be a positive number of seconds, not {args.lifetime}", 2)
    admin = _admin(args)
    client = admin.store.client(args.client_id)
    if client is not None:
        _check_scopes(args.scope, client.scopes.split(), f"client {args.client_id} has")
    try:
        token = admin.issue_token(args.client_id, args.lifetime, " ".join(args.scope) if args.scope else None)
    except AdminError as exc:
        raise _fail(exc) from exc
    print(token)
    return 0


def cmd_revoke_certificate(args: argparse.Namespace) -> int:
    import re

    from ..platform.admin import AdminError
    from . import CliError

    target = args.certificate
    if not Path(target).is_file() and not re.fullmatch(r"[0-9a-fA-F]{64}", target):
        # Neither a certificate file nor a key ID: most likely a mistyped file name.
        raise CliError(f"error: {target}: No such file (nor a key ID: 64 hexadecimal digits)", 2)
    value = Path(target).read_bytes() if Path(target).is_file() else target.lower()
    try:
        key_id = _admin(args).revoke_certificate(value)
    except AdminError as exc:
        raise _fail(exc) from exc
    print(f"certificate {key_id} revoked; refused from the next request on, listed in the CRL")
    return 0


def cmd_list_certificates(args: argparse.Namespace) -> int:
    """The registered certificates, one a line: what an operator needs to pick the key ID to
    revoke (revoke-certificate) when the entity no longer has the file."""
    import datetime as dt

    from ..platform.admin import certificate_state

    admin = _admin(args)
    _check_entity(admin, args.credit_code)
    now = dt.datetime.now(dt.timezone.utc)
    print("key ID\tentity\tserial\tnot after\tstate")
    for record in sorted(admin.store.certificates(args.credit_code or None), key=lambda r: (r.credit_code, r.key_id)):
        not_after, state = certificate_state(record, now)
        print(f"{record.key_id}\t{record.credit_code}\t{record.serial:X}\t{_instant(not_after)}\t{state}")
    return 0


def cmd_list_clients(args: argparse.Namespace) -> int:
    """The API clients, one a line, as list-certificates: the client ID to disable, the entity
    it acts for, its state, when it was created, its tokens not yet expired. Never a secret
    (the listing does not read their hashes)."""
    admin = _admin(args)
    _check_entity(admin, args.credit_code)
    print("client ID\tentity\tstate\tcreated\tlive tokens\tscopes")
    for c in admin.clients(args.credit_code or None):
        created = _instant(c.created_at) if c.created_at else "-"  # created before the platform recorded it
        print(f"{c.client_id}\t{c.credit_code}\t{'enabled' if c.active else 'disabled'}\t{created}\t"
              f"{c.live_tokens}\t{c.scopes}")
    return 0


def cmd_list_entities(args: argparse.Namespace) -> int:
    """The registered entities, one a line, as list-certificates: credit code, name (once the
    entity registered its details), registration time, certificates by state, API clients."""
    admin = _admin(args)
    print("entity\tname\tregistered\tvalid certificates\texpired\trevoked\tclients")
    for e in admin.entities():
        # the entity's own text: kept to one field, and what a terminal would act on (C1 controls,
        # bidirectional overrides) shown as escapes
        name = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in " ".join(e.name.split())) if e.name else "-"
        print(f"{e.credit_code}\t{name}\t{_instant(e.registered_at)}\t{e.valid_certificates}\t"
              f"{e.expired_certificates}\t{e.revoked_certificates}\t{e.clients}")
    return 0


def _instant(value: dt.datetime) -> str:
    import datetime

    return f"{value.astimezone(datetime.timezone.utc):%Y-%m-%dT%H:%M:%SZ}"


def _check_entity(admin: Admin, credit_code: str | None) -> None:
    from . import CliError

    if credit_code and not admin.store.entity_known(credit_code):
        raise CliError(f"error: entity {credit_code} is not registered", 2)


def _now_cst() -> dt.datetime:
    """Now in China Standard Time, the acquisition source's time zone (docs: times are UTC+8)."""
    import datetime

    from ..instants import CST

    return datetime.datetime.now(CST)


def _month(text: str) -> str:
    """An argparse type: a month as YYYY-MM (a ValueError traceback from fromisoformat otherwise)."""
    import re

    if not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a month YYYY-MM")
    return text


def _days(text: str) -> int:
    """An argparse type: a validity in whole days, 0 or more (how far is the CA's to say)."""
    from . import whole_number

    value = whole_number(text, "days")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is not 0 or more days")
    return value


def _positive(text: str) -> int:
    from . import positive

    return positive(text)


_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _proxy_headers(args: argparse.Namespace) -> tuple[bool, str | None]:
    """X-Forwarded-For is believed only from the proxies named with --forwarded-allow-ips: by
    default uvicorn believes it from 127.0.0.1, so any local client could pick its address and
    pass the per-address limits (docs/security.md: the header is not trusted unless asked)."""
    return bool(args.forwarded_allow_ips), args.forwarded_allow_ips or None


def _check_port(host: str, port: int) -> None:
    """One line and exit status 2 for an address that cannot be served (in use, not ours), as
    for any I/O error, instead of uvicorn's log lines and its exit status 3."""
    import socket

    from . import CliError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise CliError(f"error: cannot serve on {host}: {exc.strerror or exc}", 2) from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(address)
        except OSError as exc:
            raise CliError(f"error: cannot serve on {host}:{port}: {exc.strerror or exc}", 2) from exc


def _is_base_url(url: str) -> bool:
    """An absolute http(s) address with a host, no query or fragment: what endpoints are built on."""
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query and not parts.fragment


def _announce_successor(args: argparse.Namespace, public: str) -> None:
    """An address change (the specification's configuration-address change): the successor's
    base URL and, optionally, the instant it takes effect (default: at once), checked here and
    handed to every worker canonical, so that the signed configuration document stays valid."""
    from ..instants import INSTANT_PATTERN, iso_z, parse_instant
    from . import CliError

    url = args.successor_url or os.environ.get("CEDX_SUCCESSOR_URL") or None
    when = args.successor_from or os.environ.get("CEDX_SUCCESSOR_FROM") or None
    if when and not url:
        raise CliError("error: --successor-from (CEDX_SUCCESSOR_FROM) needs --successor-url (CEDX_SUCCESSOR_URL)", 2)
    if url and not _is_base_url(url):
        raise CliError(f"error: the successor address {url!r} is not an http(s)://HOST[:PORT][/PATH] address", 2)
    if url and url.rstrip("/") == public.rstrip("/"):
        # e.g. the successor instance started from the shell that exported CEDX_SUCCESSOR_URL
        raise CliError(f"error: the successor address {url} is this platform's own address; serve the successor "
                       "without --successor-url (unset CEDX_SUCCESSOR_URL)", 2)
    if when:
        if not INSTANT_PATTERN.match(when):
            raise CliError(f"error: the successor's effective instant {when!r} is not an RFC 3339 instant with an offset, "
                           "e.g. 2027-01-01T00:00:00+08:00", 2)
        when = iso_z(parse_instant(when), "microseconds")
    for name, value in (("CEDX_SUCCESSOR_URL", url), ("CEDX_SUCCESSOR_FROM", when)):
        if value:
            os.environ[name] = value
        else:
            os.environ.pop(name, None)


def cmd_serve_platform(args: argparse.Namespace) -> int:
    import uvicorn

    from ..runtime.serve import NODELAY_HTTP
    from . import CliError

    settings = _settings(args)
    # Open the PKI and the database once here: a refused database or PKI is then one line, not
    # a traceback from inside the server's worker start-up.
    from ..platform.admin import Admin

    Admin(settings).store.dispose()
    os.environ["CEDX_PLATFORM_DIR"] = str(settings.data_dir)
    public = args.public_url or os.environ.get("CEDX_PUBLIC_URL")
    if public and not _is_base_url(public):
        # The signed configuration would announce endpoints no client can call.
        raise CliError(f"error: the public URL {public!r} is not an http(s)://HOST[:PORT][/PATH] address", 2)
    if not public:
        # The signed configuration announces this address: never a guess. On loopback it is
        # the address served; anywhere else only the operator knows it (proxy, TLS, name).
        if args.host not in _LOOPBACK:
            raise CliError(f"error: serving on {args.host} needs --public-url (the https:// address clients use)", 2)
        host = f"[{args.host}]" if ":" in args.host else args.host
        public = f"http://{host}:{args.port}"
    os.environ["CEDX_PUBLIC_URL"] = public
    _announce_successor(args, public)
    _check_port(args.host, args.port)
    uvicorn.run("cedx.platform.app:create_served_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level=args.log_level, http=NODELAY_HTTP,
                proxy_headers=_proxy_headers(args)[0], forwarded_allow_ips=_proxy_headers(args)[1])
    return 0


def cmd_serve_acquisition(args: argparse.Namespace) -> int:
    import datetime as dt

    import uvicorn

    from ..acquisition.app import create_source_app
    from ..runtime.serve import tune_gc_for_serving
    from . import CliError

    clients = {}
    for spec_ in args.client or []:
        client_id, _, var = spec_.partition(":")
        secret = os.environ.get(var or "CEDX_SOURCE_CLIENT_SECRET")
        if not client_id or not secret:
            raise CliError(f"error: --client {spec_}: the secret is read from ${var or 'CEDX_SOURCE_CLIENT_SECRET'}, "
                           "which is empty", 2)
        clients[client_id] = secret
    if not clients and not args.token:
        raise CliError("error: give --client ID[:ENVVAR] (OAuth2 client credentials) or --token", 2)
    url = args.database_url
    for alias in ("postgresql://", "postgres://"):
        if url and url.startswith(alias):
            url = "postgresql+psycopg://" + url[len(alias):]
    if url and not url.startswith(_DATABASE_SCHEMES):
        raise CliError(f"error: --database-url is not a database cedx can use; give {_DATABASE_FORM}", 2)
    if args.commissioned:
        # The source's months are China Standard Time's (its default is this month there); a hash
        # chain from a month to come would have the source serve batches for hours not yet lived.
        this_month = f"{_now_cst():%Y-%m}"
        if args.commissioned > this_month:
            raise CliError(f"error: --commissioned {args.commissioned} is in the future; this month is {this_month} "
                           "(China Standard Time, UTC+8)", 2)
    _check_port(args.host, args.port)  # before the source is built (and the process's heap tuned for serving)
    commissioned = (dt.datetime.fromisoformat(f"{args.commissioned}-01T00:00:00+08:00") if args.commissioned else None)
    data_dir = Path(args.dir or f"cedx-source-{args.site}")
    created = not data_dir.exists()
    app = create_source_app(args.site, data_dir, args.token or [], commissioned,
                            clients=clients, database_url=url, public_url=args.public_url,
                            rate_limit=args.rate_limit, seal_interval=args.seal_interval)
    if not args.dir:  # a directory chosen for the operator is named, never made (or reused) silently
        print(f"cedx: source data in {data_dir.resolve()} ({'created' if created else 'existing'}: keys"
              f"{'' if url else ', SQLite store'}); choose the directory with --dir", file=sys.stderr)
    tune_gc_for_serving()
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                                           timeout_graceful_shutdown=5, proxy_headers=_proxy_headers(args)[0],
                                           forwarded_allow_ips=_proxy_headers(args)[1]))
    default_exit = server.handle_exit

    def handle_exit(sig: int, frame: FrameType | None) -> None:  # SIGTERM/SIGINT: abandon long work at once, then drain and stop
        app.state.source.stopping.set()
        default_exit(sig, frame)
    server.handle_exit = handle_exit  # type: ignore[method-assign]
    server.run()
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    plat = sub.add_parser("platform", help="administer the reference platform").add_subparsers(
        dest="platform_command", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--dir", help="platform data directory (default $CEDX_HOME, else $CEDX_PLATFORM_DIR; "
                       "required: never a silent default)")
        return p

    common(plat.add_parser("init", help="create the data directory, PKI and database")).set_defaults(func=cmd_init)
    p = common(plat.add_parser("add-entity", help="register a reporting entity by its credit code"))
    p.add_argument("credit_code")
    p.set_defaults(func=cmd_add_entity)
    p = common(plat.add_parser("add-client", help="create an API client (OAuth2 client credentials)"))
    p.add_argument("credit_code")
    p.add_argument("--client-id", required=True)
    p.add_argument("--scope", action="append", default=None, help="repeatable; default: all reporting scopes")
    p.add_argument("--secret-env", metavar="VAR", help="take the secret from this variable instead of generating one")
    p.set_defaults(func=cmd_add_client)
    p = common(plat.add_parser("add-certificate", help="register an entity's signing certificate"))
    p.add_argument("credit_code")
    p.add_argument("certificate")
    p.set_defaults(func=cmd_add_certificate)
    p = common(plat.add_parser("issue-certificate", help="issue (from the platform CA) and register a certificate"))
    p.add_argument("credit_code")
    p.add_argument("--csr", required=True)
    p.add_argument("-o", "--out", required=True)
    p.add_argument("--days", type=_days, default=365,
                   help="validity in days (default %(default)s; 0: valid only in the second it is issued, e.g. an "
                        "expired certificate for inspection case 9.6; at most until the platform CA expires)")
    p.set_defaults(func=cmd_issue_certificate)

    p = common(plat.add_parser("disable-client", help="disable an API client and revoke its tokens (at once)"))
    p.add_argument("client_id")
    p.set_defaults(func=cmd_disable_client, enable=False)
    p = common(plat.add_parser("enable-client", help="enable a disabled API client again"))
    p.add_argument("client_id")
    p.set_defaults(func=cmd_disable_client, enable=True)
    p = common(plat.add_parser("issue-token", help="print a bearer token for a client (e.g. short-lived, for tests)"))
    p.add_argument("client_id")
    p.add_argument("--lifetime", type=int, default=3600, metavar="SECONDS", help="token lifetime in seconds (default 3600)")
    p.add_argument("--scope", action="append", default=None, help="repeatable; default: the client's scopes")
    p.set_defaults(func=cmd_issue_token)
    p = common(plat.add_parser("list-certificates", help="list registered certificates: key ID, entity, serial, "
                               "expiry, state (valid, expired, revoked)"))
    p.add_argument("credit_code", nargs="?", help="only this entity's (default: every entity's)")
    p.set_defaults(func=cmd_list_certificates)
    p = common(plat.add_parser("list-clients", help="list API clients: client ID, entity, state (enabled, disabled), "
                               "created, live tokens, scopes; never a secret"))
    p.add_argument("credit_code", nargs="?", help="only this entity's (default: every entity's)")
    p.set_defaults(func=cmd_list_clients)
    p = common(plat.add_parser("list-entities", help="list registered entities: credit code, name, registered, "
                               "certificates (valid, expired, revoked), clients"))
    p.set_defaults(func=cmd_list_entities)
    p = common(plat.add_parser("revoke-certificate",
                               help="revoke an entity certificate (key ID or certificate file); effective at once"))
    p.add_argument("certificate", metavar="KEY_ID|CERT.pem", help="the key ID (hex SM3 of 04‖X‖Y) or the certificate file")
    p.set_defaults(func=cmd_revoke_certificate)

    serve = sub.add_parser("serve", help="run a reference service").add_subparsers(
        dest="serve_command", metavar="SERVICE", required=True)
    p = common(serve.add_parser("platform", help="the reference reporting platform"))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--public-url", help="base URL announced in the signed configuration document "
                   "(required unless serving on loopback; default there: http://HOST:PORT)")
    p.add_argument("--forwarded-allow-ips", metavar="IPS",
                   help="reverse proxies (comma-separated addresses) whose X-Forwarded-For gives the client's address "
                        "for per-address limits (default: none, the header is ignored)")
    p.add_argument("--successor-url", metavar="URL",
                   help="announce an address change: the base URL clients move to (default $CEDX_SUCCESSOR_URL)")
    p.add_argument("--successor-from", metavar="INSTANT",
                   help="when the change takes effect, RFC 3339 with an offset, e.g. 2027-01-01T00:00:00+08:00 "
                        "(default $CEDX_SUCCESSOR_FROM, else at once)")
    p.add_argument("--log-level", default="info")
    p.set_defaults(func=cmd_serve_platform)
    p = serve.add_parser("acquisition", help="a reference acquisition source (simulated plant, or fed by other writers)")
    p.add_argument("--site", choices=["power", "cement", "none"], default="power",
                   help="simulation writing into the store; none: only other writers (e.g. the HJ 212 bridge)")
    p.add_argument("--dir", help="source data directory (keys, SQLite store)")
    p.add_argument("--database-url", help="store in this database instead (e.g. postgresql+psycopg://...)")
    p.add_argument("--client", action="append", metavar="ID[:ENVVAR]",
                   help="OAuth2 client (scope acquisition:read); secret from $ENVVAR (default $CEDX_SOURCE_CLIENT_SECRET)")
    p.add_argument("--token", action="append", help="also accept this static bearer token (simple set-ups; repeatable)")
    p.add_argument("--commissioned", metavar="YYYY-MM", type=_month, help="first month of the hash chain (default: this month)")
    p.add_argument("--public-url", help="base URL announced in the configuration document (default: as requested)")
    p.add_argument("--rate-limit", type=_positive, help="requests per minute per client (default 1200)")
    p.add_argument("--forwarded-allow-ips", metavar="IPS",
                   help="reverse proxies (comma-separated addresses) whose X-Forwarded-For gives the client's address "
                        "(default: none, the header is ignored)")
    p.add_argument("--seal-interval", type=float, default=60.0,
                   help="seconds between sealing rounds for points other writers feed (0: never)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8100)
    p.add_argument("--log-level", default="info")
    p.set_defaults(func=cmd_serve_acquisition)
