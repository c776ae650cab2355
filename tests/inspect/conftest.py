import datetime as dt

import pytest

from cedx.acquisition.app import create_source_app
from cedx.inspect.target import Target
from cedx.instants import CST
from cedx.platform.admin import Admin
from cedx.platform.settings import PlatformSettings
from cedx.trust import x509 as tx

from ..loopback import serve
from ..platform.conftest import Entity


class Reference:
    """A reference platform (and what an inspector is given to inspect it)."""

    def __init__(self, tmp):
        self.settings = PlatformSettings(data_dir=tmp, database_url=None, rate_limit_per_minute=10**6)
        self.admin = Admin(self.settings)
        self.entity = Entity(self.admin, "91320500MA1X2P3Q4R", "monthly-report-power.json")

    def target(self, url: str) -> Target:
        e = self.entity
        return Target(url=url, interface="reporting", trust_anchors=[self.admin.pki.ca], client_id=f"{e.credit_code}-erp",
                      client_secret=e.secret, key=e.key, certificate=e.cert, credit_code=e.credit_code)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    from cedx.platform.app import create_app

    ref = Reference(tmp_path_factory.mktemp("platform"))
    with serve(create_app(ref.settings)) as url:
        yield ref.target(url)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("source")
    month = dt.datetime.now(CST).replace(day=1, hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=40)
    month = month.replace(day=1)
    app = create_source_app("power", root, ["inspect-token-0123"], commissioned=month)
    ca = tx.load_certificate((root / "pki" / "ca.pem").read_bytes()).dump()
    with serve(app) as url:
        yield Target(url=url, interface="acquisition", trust_anchors=[ca], token_value="inspect-token-0123")
