import datetime as dt

import pytest

from cedx.acquisition.app import create_source_app
from cedx.inspect.local import ReferencePlatform
from cedx.inspect.target import Target
from cedx.instants import CST
from cedx.trust import x509 as tx

from ..loopback import serve


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The reference platform with an address change being served and every optional piece of
    inspection material provisioned (second entity, revoked and expired certificates, expired token)."""
    with ReferencePlatform(tmp_path_factory.mktemp("platform")) as target:
        yield target


def source_app(root, **kw):
    month = dt.datetime.now(CST).replace(day=1, hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=40)
    app = create_source_app("power", root, ["inspect-token-0123"], commissioned=month.replace(day=1), **kw)
    ca = tx.load_certificate((root / "pki" / "ca.pem").read_bytes()).dump()
    return app, ca


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    app, ca = source_app(tmp_path_factory.mktemp("source"))
    with serve(app) as url:
        yield Target(url=url, interface="acquisition", trust_anchors=[ca], token_value="inspect-token-0123")
