"""Trust profile §7: the platform issues a signing certificate only for a CSR whose subject CN
is the entity's credit code."""

import pytest

from cedx import trust
from cedx.platform.admin import Admin, AdminError
from cedx.platform.settings import PlatformSettings
from cedx.trust import x509 as tx

CODE = "91320500MA1X2P3Q4R"


def test_issue_certificate_requires_cn_equal_to_the_credit_code(tmp_path):
    admin = Admin(PlatformSettings(data_dir=tmp_path, database_url=None))
    admin.add_entity(CODE)
    key = trust.generate_private_key()
    with pytest.raises(AdminError, match="must be the credit code"):
        admin.issue_certificate(CODE, tx.create_csr(key, {"common_name": "91530100MA6K7L8M9M"}))
    cert = admin.issue_certificate(CODE, tx.create_csr(key, {"country_name": "CN", "common_name": CODE}))
    assert tx.load_certificate(cert).subject.native["common_name"] == CODE
    assert tx.validate_chain(cert, trust_anchors=[admin.pki.ca]) == key.public_key()
