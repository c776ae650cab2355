"""`cedx inspect`: run the nine inspection items against an implementation.

Exit status: 0 every item passes, 1 some item fails, 2 inconclusive (the target is unreachable
or refuses the credentials given) or a usage error."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import cast


def cmd_inspect(args: argparse.Namespace) -> int:
    from ..inspect.runner import main_progress, run, write
    from ..inspect.target import AgreementMaterial, Credential, OtherEntity, Target
    from ..trust import load_private_key
    from ..trust import x509 as tx
    from . import CliError

    def env(name: str | None) -> str | None:
        if not name:
            return None
        if name not in os.environ:
            raise CliError(f"error: environment variable {name} is not set", 2)
        return os.environ[name]

    def read(path: str) -> bytes:
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise CliError(f"error: cannot read {path}: {exc.strerror}", 2) from exc

    def credential(key: str | None, cert: str | None, option: str) -> Credential | None:
        if not (key or cert):
            return None
        if not (key and cert):
            raise CliError(f"error: --{option}-key and --{option}-cert go together", 2)
        return Credential(load_private_key(read(key)), tx.load_certificate(read(cert)).dump())

    other = None
    if args.other_client_id or args.other_client_secret_env or args.other_credit_code:
        if not (args.other_client_id and args.other_client_secret_env and args.other_credit_code):
            raise CliError("error: --other-client-id, --other-client-secret-env and --other-credit-code go together", 2)
        other = OtherEntity(args.other_client_id, cast(str, env(args.other_client_secret_env)), args.other_credit_code)
    anchors = [tx.load_certificate(read(p)).dump() for p in args.ca]
    agreement = None
    given = [args.agreement_source, args.agreement_ca, args.agreement_token_env, args.agreement_client_id,
             args.agreement_submission, args.agreement_report]
    if any(given):
        if not (args.agreement_source and args.agreement_ca and (args.agreement_token_env or args.agreement_client_id)
                and bool(args.agreement_submission) != bool(args.agreement_report)):
            raise CliError("error: --agreement-source, --agreement-ca, --agreement-token-env (or --agreement-client-id "
                           "with --agreement-client-secret-env) and one of --agreement-submission or --agreement-report "
                           "go together", 2)
        document = None
        if args.agreement_report:
            try:
                document = json.loads(read(args.agreement_report))
            except ValueError as exc:
                raise CliError(f"error: {args.agreement_report} is not a JSON signed report: {exc}", 2) from exc
        agreement = AgreementMaterial(
            args.agreement_source.rstrip("/"), [tx.load_certificate(read(p)).dump() for p in args.agreement_ca],
            token=env(args.agreement_token_env), client_id=args.agreement_client_id,
            client_secret=env(args.agreement_client_secret_env), submission_id=args.agreement_submission, report=document)
    confidential = None
    if args.confidential_key or args.confidential_cert:
        if not (args.confidential_key and args.confidential_cert):
            raise CliError("error: --confidential-key and --confidential-cert go together", 2)
        from ..acquisition.confidential import ClientCredentials

        chain = [tx.load_certificate(read(p)).dump() for p in args.confidential_cert]
        user_id = args.confidential_user_id or str(tx.load_certificate(chain[0]).subject.native.get("common_name") or "")
        if not user_id:
            raise CliError("error: the confidential certificate's subject has no CN; give --confidential-user-id", 2)
        confidential = ClientCredentials(load_private_key(read(args.confidential_key)), chain, user_id)
    target = Target(
        url=args.target.rstrip("/"), interface=args.interface, trust_anchors=anchors,
        client_id=args.client_id, client_secret=env(args.client_secret_env), token_value=env(args.token_env),
        key=load_private_key(read(args.key)) if args.key else None,
        certificate=tx.load_certificate(read(args.cert)).dump() if args.cert else None,
        credit_code=args.credit_code, point_id=args.point,
        expired_token=env(args.expired_token_env), other=other,
        revoked=credential(args.revoked_key, args.revoked_cert, "revoked"),
        expired=credential(args.expired_key, args.expired_cert, "expired"),
        rate_limit_budget=args.rate_limit_probe, expect_successor=args.expect_successor, agreement=agreement,
        confidential=confidential,
    )
    # What the interface needs, checked before anything is sent: a missing option is a usage
    # error, not "credentials refused" from the target.
    if args.interface == "reporting" and not (args.client_id and args.client_secret_env and args.key and args.cert
                                              and args.credit_code):
        raise CliError("error: the reporting interface needs --client-id, --client-secret-env, --key, --cert and "
                       "--credit-code", 2)
    if args.interface == "acquisition" and not (args.token_env or (args.client_id and args.client_secret_env)):
        raise CliError("error: the acquisition interface needs --token-env (a bearer token) or --client-id with "
                       "--client-secret-env", 2)

    from ..spec.uscc import is_valid

    for option, code in (("--credit-code", args.credit_code), ("--other-credit-code", args.other_credit_code)):
        if code and not is_valid(code):  # the inspector's typo, not the implementation's fault
            raise CliError(f"error: {option} {code} is not a valid unified social credit code (GB 32100)", 2)
    out = Path(args.out)
    try:  # before the inspection, not after it: an unusable --out loses no work
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"error: --out {args.out}: {exc.strerror}", 2) from exc

    def progress(line: str) -> None:
        if not line.startswith("INCONCLUSIVE"):  # said once, in the summary below
            main_progress(line)

    report = run(target, args.item or None, progress=progress)
    write(report, out)
    s = report["summary"]
    files = f"{out / 'report.json'} and {out / 'report.html'}"
    if report["result"] == "inconclusive":
        why = report["inconclusive"]
        print(f"INCONCLUSIVE ({why['cause']}): {why['detail']}; nothing was judged. Reports in {files}")
        return 2
    print(f"{report['result'].upper()}: {s['pass']} passed, {s['fail']} failed, {s['blocked']} blocked, "
          f"{s['not-applicable']} not applicable; reports in {files}")
    return 0 if report["result"] == "pass" else 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("inspect", help="run the specification's nine inspection items against an implementation",
                       description="Exit status: 0 pass, 1 fail, 2 inconclusive (target unreachable or credentials "
                                   "refused) or usage error.")
    p.add_argument("--target", required=True, help="base URL of the implementation")
    p.add_argument("--interface", choices=["reporting", "acquisition"], required=True, help="which interface to inspect")
    p.add_argument("--ca", action="append", required=True, help="trust anchor certificate (repeatable)")
    p.add_argument("--client-id", help="the inspector's OAuth2 client (reporting)")
    p.add_argument("--client-secret-env", metavar="VAR", help="environment variable holding the client secret")
    p.add_argument("--token-env", metavar="VAR", help="environment variable holding a bearer token (acquisition)")
    p.add_argument("--key", help="the entity's signing key (PEM)")
    p.add_argument("--cert", help="the entity's registered certificate (PEM)")
    p.add_argument("--credit-code", help="the entity's unified social credit code")
    p.add_argument("--point", help="the metering point to read (acquisition; default: the first listed)")
    g = p.add_argument_group("material provisioned with the operator (cases needing what is not given are not applicable)")
    g.add_argument("--expired-token-env", metavar="VAR",
                   help="environment variable holding a token issued to --client-id that has expired")
    g.add_argument("--other-client-id", help="a client of a second entity (cross-entity reads)")
    g.add_argument("--other-client-secret-env", metavar="VAR", help="environment variable holding its secret")
    g.add_argument("--other-credit-code", help="the second entity's credit code")
    g.add_argument("--revoked-key", help="key of a certificate registered for the entity and then revoked (PEM)")
    g.add_argument("--revoked-cert", help="that revoked certificate (PEM)")
    g.add_argument("--expired-key", help="key of a certificate registered for the entity that has expired (PEM)")
    g.add_argument("--expired-cert", help="that expired certificate (PEM)")
    g.add_argument("--rate-limit-probe", type=int, default=0, metavar="N",
                   help="opt-in: send up to N requests to drive the rate limit to 0 and expect 429 (default 0: skipped)")
    g.add_argument("--expect-successor", metavar="URL", help="the successor address the platform should announce")
    g.add_argument("--agreement-source", metavar="URL",
                   help="case 2.5 (R-EVID-002): the acquisition source that the report's evidence references")
    g.add_argument("--agreement-ca", action="append", metavar="PEM", help="the source's trust anchor (repeatable)")
    g.add_argument("--agreement-token-env", metavar="VAR", help="environment variable holding a bearer token at the source")
    g.add_argument("--agreement-client-id", help="or a client of the source (scope acquisition:read)")
    g.add_argument("--agreement-client-secret-env", metavar="VAR", help="environment variable holding its secret")
    g.add_argument("--agreement-submission", metavar="ID", help="the monthly report to check: a submission on the platform")
    g.add_argument("--agreement-report", metavar="FILE", help="or the signed monthly report itself (JSON)")
    g.add_argument("--confidential-key", metavar="PEM",
                   help="acquisition, case A9.4: key of a client certificate the source trusts for its confidentiality mode")
    g.add_argument("--confidential-cert", metavar="PEM", action="append",
                   help="that client certificate, then any intermediate (repeatable)")
    g.add_argument("--confidential-user-id", metavar="ID",
                   help="the client's SM2 user ID in the key exchange (default: the certificate's subject CN)")
    p.add_argument("--item", type=int, action="append", choices=range(1, 10), help="run only this item (repeatable)")
    p.add_argument("--out", default="inspection", help="output directory")
    p.set_defaults(func=cmd_inspect)
