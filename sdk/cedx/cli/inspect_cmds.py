"""`cedx inspect`: run the nine inspection items against an implementation."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def cmd_inspect(args) -> int:
    from ..inspect.runner import main_progress, run, write
    from ..inspect.target import Target
    from ..trust import load_private_key
    from ..trust import x509 as tx
    from . import CliError

    def env(name):
        if not name:
            return None
        if name not in os.environ:
            raise CliError(f"error: environment variable {name} is not set", 2)
        return os.environ[name]

    anchors = [tx.load_certificate(Path(p).read_bytes()).dump() for p in args.ca]
    target = Target(
        url=args.target.rstrip("/"), interface=args.interface, trust_anchors=anchors,
        client_id=args.client_id, client_secret=env(args.client_secret_env), token_value=env(args.token_env),
        key=load_private_key(Path(args.key).read_bytes()) if args.key else None,
        certificate=tx.load_certificate(Path(args.cert).read_bytes()).dump() if args.cert else None,
        credit_code=args.credit_code, point_id=args.point,
    )
    if args.interface == "reporting" and not (args.client_id and args.key and args.cert and args.credit_code):
        raise CliError("error: the reporting interface needs --client-id, --client-secret-env, --key, --cert and --credit-code", 2)
    report = run(target, args.item or None, progress=main_progress)
    write(report, Path(args.out))
    s = report["summary"]
    print(f"{report['result'].upper()}: {s['pass']} passed, {s['fail']} failed, {s['not-applicable']} not applicable; "
          f"reports in {args.out}/report.json and report.html")
    return 0 if report["result"] == "pass" else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="run the specification's nine inspection items against an implementation")
    p.add_argument("--target", required=True, help="base URL of the implementation")
    p.add_argument("--interface", choices=["reporting", "acquisition"], required=True)
    p.add_argument("--ca", action="append", required=True, help="trust anchor certificate (repeatable)")
    p.add_argument("--client-id")
    p.add_argument("--client-secret-env", metavar="VAR", help="environment variable holding the client secret")
    p.add_argument("--token-env", metavar="VAR", help="environment variable holding a bearer token (acquisition)")
    p.add_argument("--key", help="the entity's signing key (PEM)")
    p.add_argument("--cert", help="the entity's registered certificate (PEM)")
    p.add_argument("--credit-code", help="the entity's unified social credit code")
    p.add_argument("--point", help="the metering point to read (acquisition; default: the first listed)")
    p.add_argument("--item", type=int, action="append", choices=range(1, 10), help="run only this item (repeatable)")
    p.add_argument("--out", default="inspection", help="output directory")
    p.set_defaults(func=cmd_inspect)
