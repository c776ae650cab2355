import copy
import os
import uuid

import pytest
from sqlalchemy import create_engine, text

from cedx import trust
from cedx.generated import models
from cedx.generated.client import CommonClient, ReportingClient
from cedx.platform.admin import Admin
from cedx.platform.app import create_app
from cedx.platform.settings import PlatformSettings
from cedx.runtime.client import Format, TokenProvider
from cedx.trust import x509 as tx

from ..loopback import serve
from ..spec.conftest import load_example

POWER, CEMENT = "91320500MA1X2P3Q4R", "91530100MA6K7L8M9M"


def database_urls():
    urls = [("sqlite", None)]
    pg = os.environ.get("CEDX_TEST_POSTGRES_URL")
    if pg:
        urls.append(("postgresql", pg))
    elif os.environ.get("CI"):
        raise RuntimeError("CI must provide CEDX_TEST_POSTGRES_URL (.ci/run starts PostgreSQL)")
    return urls


def _fresh_postgres(url: str) -> str:
    """A new database per test module on the server .ci/run started."""
    name = f"cedx_{uuid.uuid4().hex[:12]}"
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return url.rsplit("/", 1)[0] + "/" + name


class Entity:
    def __init__(self, admin: Admin, credit_code: str, example: str):
        self.credit_code = credit_code
        self.key = trust.generate_private_key()
        admin.add_entity(credit_code)
        self.secret = admin.add_client(credit_code, f"{credit_code}-erp")
        self.cert = admin.issue_certificate(credit_code, tx.create_csr(self.key, {"common_name": credit_code}))
        self.example = example

    def report(self) -> models.MonthlyReport:
        return models.MonthlyReport.model_validate(copy.deepcopy(load_example(self.example)["payload"]))


class Env:
    def __init__(self, url: str, admin: Admin, app):
        self.url, self.admin, self.app = url, admin, app
        self.ca = admin.pki.ca
        self.power = Entity(admin, POWER, "monthly-report-power.json")
        self.cement = Entity(admin, CEMENT, "monthly-report-cement.json")

    def tokens(self, entity: Entity, scope: str | None = None) -> TokenProvider:
        return TokenProvider(f"{self.url}/oauth/token", f"{entity.credit_code}-erp", entity.secret, scope)

    def client(self, entity: Entity, fmt: Format = Format.JSON, **kw) -> ReportingClient:
        options = dict(token_provider=self.tokens(entity), signing_key=entity.key, signing_certificate=entity.cert,
                       trust_anchors=[self.ca], format=fmt)
        options.update(kw)
        return ReportingClient(self.url, **options)

    def common(self) -> CommonClient:
        return CommonClient(self.url, trust_anchors=[self.ca])


@pytest.fixture(scope="module", params=database_urls(), ids=lambda p: p[0])
def env(request, tmp_path_factory):
    _kind, base = request.param
    data_dir = tmp_path_factory.mktemp("platform")
    settings = PlatformSettings(data_dir=data_dir, database_url=_fresh_postgres(base) if base else None,
                                rate_limit_per_minute=100000, auth_failures_per_minute=100000)
    admin = Admin(settings)
    app = create_app(settings)
    with serve(app) as url:
        settings.base_url = url
        yield Env(url, admin, app)


@pytest.fixture
def openssl(tmp_path):
    from ..trust.conftest import OpenSSL

    return OpenSSL(tmp_path)
