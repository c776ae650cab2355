"""Profile §8's two worked examples of the order of checks, as written, against the reference
platform administered through its command line: an expired token and a body that is not JSON is
401 TOKEN_EXPIRED (step 3 before 7); a unit running more hours than the month has, signed with a
revoked certificate's key and sent under a request signature of the entity's other, valid key, is 422
RULE_VIOLATION R-POW-004 (step 8 before 10), once the rules hold 422 CERTIFICATE_INVALID, and a
request signed with the revoked key itself 401 at step 6 (the example once read as if that reached
the rules)."""

import time
import uuid

import pytest

from .client import http
from .test_conformance import POWER, cedx_cli, problem, report

pytestmark = pytest.mark.openssl


def test_expired_token_before_parsing(platform, power):
    token = cedx_cli("platform", "issue-token", power.client_id, "--lifetime", "1", data_dir=platform["dir"]).strip()
    time.sleep(2.1)
    answer = http("POST", power.base_url + "/v1/reporting/monthly-reports",
                  {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                   "Idempotency-Key": str(uuid.uuid4())}, b"not JSON at all")
    problem(answer, 401, "TOKEN_EXPIRED")


def test_rules_before_the_revoked_certificate(platform, power):
    """The document signed with the revoked key, the request with the entity's other, valid key."""
    from .client import Client

    ssl, code = power.ssl, POWER["creditCode"]
    ssl.run("genpkey", "-algorithm", "SM2", "-out", "second.key.pem")
    ssl.run("req", "-new", "-key", "second.key.pem", "-sm3", "-sigopt", "distid:1234567812345678",
            "-subj", f"/CN={code}", "-out", "second.csr")
    cedx_cli("platform", "issue-certificate", code, "--csr", str(ssl.dir / "second.csr"), "-o",
             str(ssl.dir / "second.pem"), data_dir=platform["dir"])
    second = Client(power.base_url, power.client_id, power.client_secret, "second.key.pem", "second.pem",
                    power.anchor_pem, ssl)
    second.token = power.token
    bad = power.sign_document(report(POWER, period="2026-09"))  # 30 days = 720 h; a unit reports 744 h
    good = power.sign_document(report(POWER, period="2026-10"))
    cedx_cli("platform", "revoke-certificate", str(ssl.dir / power.cert_pem), data_dir=platform["dir"])
    body = problem(second.submit(bad), 422, "RULE_VIOLATION")  # step 8 before step 10
    assert any(e.get("rule") == "R-POW-004" for e in body["errors"])
    problem(second.submit(good), 422, "CERTIFICATE_INVALID")  # step 10
    problem(power.submit(good), 401, "REQUEST_SIGNATURE_INVALID")  # the request itself signed with the revoked key
