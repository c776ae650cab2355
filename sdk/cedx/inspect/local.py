"""`make inspect`: start the reference platform and an acquisition source on loopback (SQLite),
provision credentials, inspect both, and write the reports under build/inspection/."""

from __future__ import annotations

import datetime as dt
import secrets
import sys
import tempfile
from pathlib import Path

from ..acquisition.app import create_source_app
from ..instants import CST
from ..platform.admin import Admin
from ..platform.app import create_app
from ..platform.settings import PlatformSettings
from ..runtime.serve import free_port
from ..runtime.serve import serve_in_thread as serving
from ..trust import generate_private_key
from ..trust import x509 as tx
from .runner import main_progress, run, write
from .target import Target


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "build/inspection")
    code = "91320500MA1X2P3Q4R"
    with tempfile.TemporaryDirectory(prefix="cedx-inspect-") as tmp:
        root = Path(tmp)
        settings = PlatformSettings(data_dir=root / "platform", database_url=None)
        admin = Admin(settings)
        admin.add_entity(code)
        secret = admin.add_client(code, "inspector")
        key = generate_private_key()
        cert = admin.issue_certificate(code, tx.create_csr(key, {"common_name": code}))
        token = secrets.token_urlsafe(16)
        month = (dt.datetime.now(CST).replace(day=1) - dt.timedelta(days=40)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        results = {}
        with serving(create_app(settings), free_port()) as platform_url, \
                serving(create_source_app("power", root / "source", [token], commissioned=month), free_port()) as source_url:
            targets = {
                "reporting": Target(platform_url, "reporting", [admin.pki.ca], client_id="inspector", client_secret=secret,
                                    key=key, certificate=cert, credit_code=code),
                "acquisition": Target(source_url, "acquisition",
                                      [tx.load_certificate((root / "source" / "pki" / "ca.pem").read_bytes()).dump()],
                                      token_value=token),
            }
            for name, target in targets.items():
                print(f"== {name}: {target.url}", file=sys.stderr)
                report = run(target, progress=main_progress)
                write(report, out / name)
                results[name] = report
    for name, report in results.items():
        s = report["summary"]
        print(f"{name:12} {report['result'].upper():5} {s['pass']} passed, {s['fail']} failed, {s['not-applicable']} n/a"
              f" → {out / name / 'report.html'}")
    return 0 if all(r["result"] == "pass" for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
