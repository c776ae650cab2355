"""Maintainer tool: create the example PKI under spec/examples/pki/ (once; never overwrites).

The keys are published test material for the examples of the specification — EXAMPLE ONLY,
never to be trusted outside tests. Run: python -m generator.example_pki
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from cedx.trust import x509 as tx
from cedx.trust.keys import SM2PrivateKey

PKI_DIR = Path(__file__).resolve().parent.parent / "spec" / "examples" / "pki"
NOT_BEFORE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
DAYS = 3652

SUBJECTS = {
    "platform": ("signing", {"country_name": "CN", "organization_name": "碳排放数据报送平台（示例）", "common_name": "cedx example platform"}),
    "tsa": ("tsa", {"country_name": "CN", "organization_name": "碳排放数据报送平台（示例）", "common_name": "cedx example TSA"}),
    "source": ("signing", {"country_name": "CN", "organization_name": "华东示范电厂有限公司", "common_name": "cedx example metering gateway"}),
    "entity-power": ("signing", {"country_name": "CN", "organization_name": "华东示范电厂有限公司", "common_name": "91320500MA1X2P3Q4R"}),
    "entity-cement": ("signing", {"country_name": "CN", "organization_name": "西南示范水泥有限公司", "common_name": "91530100MA6K7L8M9M"}),
    "entity-steel": ("signing", {"country_name": "CN", "organization_name": "北方示范钢铁有限公司", "common_name": "91130200MA0B1C2D31"}),
    "entity-coal": ("signing", {"country_name": "CN", "organization_name": "晋北示范煤业有限公司", "common_name": "91140600MA0E4F5G6U"}),
    "entity-chemical": ("signing", {"country_name": "CN", "organization_name": "东部示范化工有限公司", "common_name": "91370800MA3H4J5K63"}),
}


def main() -> int:
    PKI_DIR.mkdir(parents=True, exist_ok=True)
    if (PKI_DIR / "ca.pem").exists():
        print(f"{PKI_DIR} already holds a PKI; remove it first to make a new one", file=sys.stderr)
        return 1
    ca_key = SM2PrivateKey.generate()
    ca = tx.create_ca(ca_key, {"country_name": "CN", "organization_name": "cedx 示例 / EXAMPLE ONLY", "common_name": "cedx Example Root CA"}, not_before=NOT_BEFORE, days=DAYS)
    (PKI_DIR / "ca.key.pem").write_bytes(ca_key.to_pem())
    (PKI_DIR / "ca.pem").write_bytes(tx.to_pem(ca))
    for name, (profile, subject) in SUBJECTS.items():
        key = SM2PrivateKey.generate()
        cert = tx.issue_certificate(tx.create_csr(key, subject), ca, ca_key, profile=profile, not_before=NOT_BEFORE, days=DAYS)
        (PKI_DIR / f"{name}.key.pem").write_bytes(key.to_pem())
        (PKI_DIR / f"{name}.pem").write_bytes(tx.to_pem(cert))
    (PKI_DIR / "README.md").write_text(
        "# 示例 PKI / Example PKI\n\n仅用于规范示例与测试，切勿在生产中信任。\n"
        "Test material for the examples of the specification only: never trust it in production.\n",
        encoding="utf-8",
    )
    print(f"example PKI written to {PKI_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
