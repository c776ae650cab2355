"""Seeded faults: for every inspection item, a deliberately faulty variant of the reference
platform that the item must catch (a check that cannot fail is a defect)."""

import json

import pytest

from cedx import trust
from cedx.inspect.local import ENTITY, ReferencePlatform
from cedx.inspect.runner import run
from cedx.inspect.target import Credential
from cedx.platform.security import PlatformHooks, Principal
from cedx.platform.service import Platform
from cedx.spec.validate import Validator
from cedx.trust import x509 as tx

from ..loopback import serve
from .conftest import source_app


class Rewrite:
    """ASGI middleware: rewrite responses whose path matches, to seed a wire-level fault."""

    def __init__(self, app, match, fn):
        self.app, self.match, self.fn = app, match, fn

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.match(scope):
            return await self.app(scope, receive, send)
        start, chunks = {}, []

        async def capture(message):
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
                    status, headers, body = self.fn(scope, start["status"], headers, b"".join(chunks))
                    headers["content-length"] = str(len(body))
                    await send({"type": "http.response.start", "status": status,
                                "headers": [(k.encode(), v.encode()) for k, v in headers.items()]})
                    await send({"type": "http.response.body", "body": body})
        await self.app(scope, receive, capture)


class RequestRewrite:
    """ASGI middleware: rewrite request headers, to seed a fault in whom the platform believes."""

    def __init__(self, app, fn):
        self.app, self.fn = app, fn

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            headers = self.fn(scope, headers)
            scope = dict(scope, headers=[(k.encode(), v.encode()) for k, v in headers.items()])
        await self.app(scope, receive, send)


def _inspect(tmp_path, item, wrap=None, **kw):
    with ReferencePlatform(tmp_path, wrap=wrap, successor=False, provision=False, **kw) as target:
        report = run(target, [item])
    return report["items"][0]


def _case(item, case_id):
    return next(c for c in item["cases"] if c["case_id"] == case_id)


def _json_path(prefix):
    return lambda scope: scope["path"].startswith(prefix)


def test_item1_catches_undeclared_members(tmp_path):
    def add_member(scope, status, headers, body):
        doc = json.loads(body)
        doc["payload"]["extraField"] = "not in the spec"
        return status, headers, json.dumps(doc).encode()
    assert _inspect(tmp_path, 1, lambda app: Rewrite(app, _json_path("/.well-known/"), add_member))["result"] == "fail"


def test_item2_catches_unenforced_rules(tmp_path, monkeypatch):
    monkeypatch.setattr(Validator, "rule_issues", lambda self, *a, **k: [])
    assert _inspect(tmp_path, 2)["result"] == "fail"


def test_item2_catches_a_receipt_digest_of_another_document(tmp_path, monkeypatch):
    sign = Platform._sign

    def another_digest(self, payload, timestamp=False):
        if "documentDigest" in payload:
            payload = {**payload, "documentDigest": trust.sm3(b"another document").hex()}
        return sign(self, payload, timestamp)
    monkeypatch.setattr(Platform, "_sign", another_digest)
    item = _inspect(tmp_path, 2)
    case = _case(item, "2.3")  # its own failure: the cases that only need a submission are not blocked by it
    assert item["result"] == "fail" and case["verdict"] == "fail" and "documentDigest" in case["reason"]
    assert _case(item, "2.2")["verdict"] == "pass"


def test_item3_catches_floats_for_decimals_and_wrong_content_types(tmp_path):
    def floats(scope, status, headers, body):
        if not headers.get("content-type", "").startswith("application/json"):
            return status, headers, body

        def walk(node):
            if isinstance(node, dict):
                if "value" in node and "unit" in node and isinstance(node["value"], str):
                    node["value"] = float(node["value"])
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)
        doc = json.loads(body)
        walk(doc)
        return status, {**headers, "content-type": "text/plain"}, json.dumps(doc).encode()
    item = _inspect(tmp_path, 3, lambda app: Rewrite(app, _json_path("/v1/reporting/monthly-reports/"), floats))
    assert item["result"] == "fail" and any(c["case_id"] == "3.2" and c["verdict"] == "fail" for c in item["cases"])


def test_item4_catches_a_correction_that_supersedes_nothing(tmp_path, monkeypatch):
    original = Platform._status

    def never_superseded(row):
        out = original(row)
        out["state"] = "accepted"
        return out
    monkeypatch.setattr(Platform, "_status", staticmethod(never_superseded))
    assert _inspect(tmp_path, 4)["result"] == "fail"


def test_item5_catches_an_ignored_idempotency_key(tmp_path, monkeypatch):
    monkeypatch.setattr(Platform, "_replay", lambda self, *a: None)
    item = _inspect(tmp_path, 5)
    assert item["result"] == "fail" and any(c["case_id"] == "5.3" and c["verdict"] == "fail" for c in item["cases"])


def test_item6_catches_ignored_content_negotiation(tmp_path):
    def csv_ok(scope, status, headers, body):
        accept = dict((k.decode().lower(), v.decode()) for k, v in scope["headers"]).get("accept", "")
        if status == 406 and "text/csv" in accept:
            return 200, {"content-type": "application/json"}, b'{"items": []}'
        return status, headers, body
    assert _inspect(tmp_path, 6, lambda app: Rewrite(app, _json_path("/v1/reporting/submissions"), csv_ok))["result"] == "fail"


def test_item7_catches_accepting_unknown_or_expired_tokens(tmp_path, monkeypatch):
    original = PlatformHooks.authenticate

    def lenient(self, ctx):
        try:
            original(self, ctx)
        except Exception:
            ctx.principal = Principal("91320500MA1X2P3Q4R", {"reporting:read", "reporting:submit"}, "anyone")
    monkeypatch.setattr(PlatformHooks, "authenticate", lenient)
    assert _inspect(tmp_path, 7)["result"] == "fail"


def test_item8_catches_an_unsigned_configuration_document(tmp_path):
    def unsigned(scope, status, headers, body):
        doc = json.loads(body)
        doc["signature"]["value"] = doc["signature"]["value"][:-8] + "AAAAAAA="
        return status, headers, json.dumps(doc).encode()
    assert _inspect(tmp_path, 8, lambda app: Rewrite(app, _json_path("/.well-known/"), unsigned))["result"] == "fail"


def test_item9_catches_skipped_signature_verification(tmp_path, monkeypatch):
    monkeypatch.setattr(PlatformHooks, "verify_document", lambda self, ctx, record: None)
    item = _inspect(tmp_path, 9)
    assert item["result"] == "fail" and any(c["case_id"] == "9.1" and c["verdict"] == "fail" for c in item["cases"])


class SkipOnCursor:
    """A source that silently skips one batch whenever a page is asked for by cursor: every
    batch still verifies on its own, only the chain across pages shows the omission."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].endswith("/batches"):
            from urllib.parse import parse_qsl, urlencode

            query = dict(parse_qsl(scope["query_string"].decode()))
            if query.get("cursor", "").isdigit():
                query["cursor"] = str(int(query["cursor"]) + 1)
                scope = {**scope, "query_string": urlencode(query).encode()}
        await self.app(scope, receive, send)


@pytest.mark.parametrize("item", [9])
def test_source_fault_batch_omitted_across_pages_is_caught(tmp_path, item):
    import datetime as dt

    from cedx.acquisition.app import create_source_app
    from cedx.inspect.target import Target
    from cedx.trust import x509 as tx

    cst = dt.timezone(dt.timedelta(hours=8))
    month = (dt.datetime.now(cst) - dt.timedelta(days=40)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    app = create_source_app("cement", tmp_path, ["inspect-token-0123"], commissioned=month)
    ca = tx.load_certificate((tmp_path / "pki" / "ca.pem").read_bytes()).dump()
    with serve(SkipOnCursor(app)) as url:
        target = Target(url=url, interface="acquisition", trust_anchors=[ca], token_value="inspect-token-0123")
        item_result = run(target, [item])["items"][0]
    verdicts = {c["case_id"]: c["verdict"] for c in item_result["cases"]}
    assert item_result["result"] == "fail" and verdicts["A9.2"] == "fail"
    assert verdicts["A9.1"] == "pass"  # each batch on its own is fine

def test_source_fault_flags_disagreeing_with_values_is_caught(tmp_path, monkeypatch):
    """Issue 13: a source that marks an in-range hour T (over range) fails A2.4 (R-ACQ-006). The
    fault is sealed (signed) by the source itself, so only the flag check can see it."""
    import datetime as dt

    from cedx.acquisition.app import create_source_app
    from cedx.acquisition.batches import Signer
    from cedx.inspect.target import Target
    from cedx.trust import x509 as tx

    original = Signer.seal

    def mislabelled(self, payload, signing_time=None):
        if payload["granularity"] == "hour" and "N" in payload["flags"]:
            i = payload["flags"].index("N")   # the value stays inside the instrument's range
            payload = {**payload, "flags": payload["flags"][:i] + "T" + payload["flags"][i + 1:]}
        return original(self, payload, signing_time)
    monkeypatch.setattr(Signer, "seal", mislabelled)
    cst = dt.timezone(dt.timedelta(hours=8))
    month = (dt.datetime.now(cst) - dt.timedelta(days=40)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    app = create_source_app("cement", tmp_path, ["inspect-token-0123"], commissioned=month)
    ca = tx.load_certificate((tmp_path / "pki" / "ca.pem").read_bytes()).dump()
    with serve(app) as url:
        target = Target(url=url, interface="acquisition", trust_anchors=[ca], token_value="inspect-token-0123")
        item_result = run(target, [2])["items"][0]
    assert any(c["case_id"] == "A2.4" and c["verdict"] == "fail" and "R-ACQ-006" in c["reason"] for c in item_result["cases"])


def test_item2_catches_accepted_negative_activity_data(tmp_path, monkeypatch):
    """Issue 11 §4 / 13: a platform whose schema lets negative quantities through fails case 2.4."""
    original = Validator.schema_issues

    def lenient(self, name, doc, *a, **k):
        return [i for i in original(self, name, doc, *a, **k) if i.code != "R-QTY-001"]
    monkeypatch.setattr(Validator, "schema_issues", lenient)
    item = _inspect(tmp_path, 2)
    assert any(c["case_id"] == "2.4" and c["verdict"] == "fail" for c in item["cases"]), item["cases"]


# --- blind spots of the first inspector (issue 12, item 14): each new case catches its fault ---
def test_item7_catches_an_honoured_expired_token(tmp_path):
    swap = {}

    def honour(scope, headers):  # the platform treats the expired token as the live one
        token = headers.get("authorization", "")[7:]
        if token in swap:
            headers["authorization"] = f"Bearer {swap[token]}"
        return headers
    with ReferencePlatform(tmp_path, wrap=lambda app: RequestRewrite(app, honour), successor=False) as target:
        swap[target.expired_token] = target.request_token(target.client_id, target.client_secret)
        item = run(target, [7])["items"][0]
    assert _case(item, "7.5")["verdict"] == "fail" and item["result"] == "fail"
    assert [c["case_id"] for c in item["cases"] if c["verdict"] == "fail"] == ["7.5"]


def test_item7_catches_reads_of_another_entitys_data(tmp_path, monkeypatch):
    original = PlatformHooks.authenticate

    def confused(self, ctx):  # broken object-level authorization on reads
        original(self, ctx)
        if ctx.principal is not None and ctx.principal.credit_code != ENTITY and ctx.request.method == "GET":
            ctx.principal.credit_code = ENTITY
    monkeypatch.setattr(PlatformHooks, "authenticate", confused)
    item = _inspect(tmp_path, 7)
    case = _case(item, "7.6")
    assert case["verdict"] == "fail" and "another entity's token read" in case["reason"]


def test_item7_catches_a_listing_with_other_entities_submissions(tmp_path, monkeypatch):
    original = Platform.list_submissions

    def everyone(self, ctx, **kw):  # the listing forgets to filter by entity
        credit_code = ctx.principal.credit_code
        ctx.principal.credit_code = ENTITY
        try:
            return original(self, ctx, **kw)
        finally:
            ctx.principal.credit_code = credit_code
    monkeypatch.setattr(Platform, "list_submissions", everyone)
    case = _case(_inspect(tmp_path, 7), "7.6")
    assert case["verdict"] == "fail" and "listing" in case["reason"]


def test_item7_catches_an_echoed_token(tmp_path):
    def echo(scope, status, headers, body):
        if status != 401:
            return status, headers, body
        auth = dict((k.decode().lower(), v.decode()) for k, v in scope["headers"]).get("authorization", "")
        doc = json.loads(body)
        doc["detail"] = f"token {auth[7:]} is not known"
        return status, headers, json.dumps(doc).encode()
    item = _inspect(tmp_path, 7, lambda app: Rewrite(app, _json_path("/v1/reporting/"), echo))
    case = _case(item, "7.7")
    assert case["verdict"] == "fail" and "echoes" in case["reason"]


def test_item5_catches_an_unenforced_rate_limit(tmp_path, monkeypatch):
    from cedx.runtime.errors import Problem

    original = PlatformHooks.rate_limit

    def counts_but_never_refuses(self, ctx):
        try:
            original(self, ctx)
        except Problem:
            pass
    monkeypatch.setattr(PlatformHooks, "rate_limit", counts_but_never_refuses)
    with ReferencePlatform(tmp_path, rate_limit=10, successor=False, provision=False) as target:
        target.rate_limit_budget = 30
        item = run(target, [5])["items"][0]
    case = _case(item, "5.5")
    assert case["verdict"] == "fail" and ("not enforced" in case["reason"] or "RateLimit-Remaining" in case["reason"])
    assert len(case["exchanges"]) <= 30


def test_item9_catches_accepted_revoked_and_expired_certificates(tmp_path):
    """The platform keeps honouring certificates that should be refused: here the inspector is
    handed certificates that the platform still considers good (revocation that did not take
    effect; a validity check that is skipped)."""
    platform = ReferencePlatform(tmp_path, successor=False, provision=False)
    with platform as target:
        key = trust.generate_private_key()
        cert = platform.admin.issue_certificate(ENTITY, tx.create_csr(key, {"common_name": ENTITY}))
        target.revoked = target.expired = Credential(key, cert)
        item = run(target, [9])["items"][0]
    assert _case(item, "9.5")["verdict"] == "fail" and "accepted" in _case(item, "9.5")["reason"]
    assert _case(item, "9.6")["verdict"] == "fail"
    assert _case(item, "9.1")["verdict"] == "pass"


def test_item8_catches_a_successor_that_is_not_served_or_another_platform(tmp_path):
    with ReferencePlatform(tmp_path / "a", provision=False, serve_successor=False) as target:
        item = run(target, [8])["items"][0]
    assert "unreachable" in _case(item, "8.4")["reason"]
    with ReferencePlatform(tmp_path / "b", provision=False, successor_overrides={"platform_id": "someone-else"}) as target:
        item = run(target, [8])["items"][0]
        assert _case(item, "8.4")["verdict"] == "fail" and "someone-else" in _case(item, "8.4")["reason"]
        target.expect_successor = "http://127.0.0.1:9"
        item = run(target, [8])["items"][0]
    assert _case(item, "8.4")["verdict"] == "fail" and "expected successor" in _case(item, "8.4")["reason"]


def _one_point(scope, status, headers, body):
    """Rewrite the source into one with a single metering point."""
    doc = json.loads(body)
    doc["items"] = doc["items"][:1]
    doc.pop("nextCursor", None)
    return status, headers, json.dumps(doc).encode()


def _source_points(scope):
    return scope["path"] == "/v1/acquisition/points"


def test_source_pagination_is_checked_with_one_point(tmp_path):
    lose_cursor = []

    def fault(scope, status, headers, body):
        if scope["path"].endswith("/batches"):
            if not lose_cursor:
                return status, headers, body
            doc = json.loads(body)
            doc.pop("nextCursor", None)
            return status, headers, json.dumps(doc).encode()
        return _one_point(scope, status, headers, body)
    app, ca = source_app(tmp_path)
    with serve(Rewrite(app, lambda s: _source_points(s) or s["path"].endswith("/batches"), fault)) as url:
        good = run(_source_target(url, ca), [5])
        lose_cursor.append(True)  # now the source drops nextCursor from batch pages
        bad = run(_source_target(url, ca), [5])
    assert _case(good["items"][0], "A5.1")["verdict"] == "pass"
    case = _case(bad["items"][0], "A5.1")
    assert case["verdict"] == "fail" and "differ" in case["reason"]


def _source_target(url, ca):
    from cedx.inspect.target import Target
    return Target(url=url, interface="acquisition", trust_anchors=[ca], token_value="inspect-token-0123")


# --- one fault, one failing case: the cascade points at the item really at fault ---------------
def test_a_broken_submission_blocks_dependent_cases_instead_of_failing_them(tmp_path):
    def refuse_valid_reports(scope, status, headers, body):
        if scope["method"] == "POST" and status == 201:
            return 500, {"content-type": "application/problem+json"}, json.dumps(
                {"type": "about:blank", "title": "x", "status": 500, "code": "INTERNAL_ERROR"}).encode()
        return status, headers, body
    with ReferencePlatform(tmp_path, wrap=lambda app: Rewrite(app, _json_path("/v1/reporting/monthly-reports"),
                                                              refuse_valid_reports), successor=False, provision=False) as target:
        report = run(target)
    cases = {c["case_id"]: c for i in report["items"] for c in i["cases"]}
    assert cases["4.1"]["verdict"] == "fail" and "prerequisite 'submit'" in cases["4.1"]["reason"]
    blocked = sorted(k for k, c in cases.items() if c["verdict"] == "blocked")
    assert {"1.2", "1.3", "2.2", "2.3", "3.1", "3.2", "5.2", "9.3"} <= set(blocked)
    assert all(cases[k]["blocked_by"] == "4.1" for k in blocked)
    results = {i["item"]: i["result"] for i in report["items"]}
    assert results[4] == "fail" and results[3] == "blocked" and report["result"] == "fail"
    assert report["summary"]["blocked"] == len(blocked)
    from cedx.inspect.runner import write
    write(report, tmp_path / "report")
    html = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "受阻 / blocked" in html and "blocked by 4.1" in html


def test_the_inspector_waits_out_a_429_instead_of_failing(tmp_path):
    """A platform limiting the inspector (e.g. after its deliberately failed authentications)
    answers 429 with Retry-After; the inspector waits and asks again rather than failing cases."""
    seen = []

    def once(scope, status, headers, body):
        if not seen:
            seen.append(status)
            return 429, {"content-type": "application/problem+json", "retry-after": "1"}, json.dumps(
                {"type": "about:blank", "title": "x", "status": 429, "code": "RATE_LIMITED"}).encode()
        return status, headers, body
    item = _inspect(tmp_path, 3, lambda app: Rewrite(app, _json_path("/v1/reporting/submissions"), once))
    assert item["result"] == "pass" and seen
    statuses = [x["status"] for c in item["cases"] for x in c["exchanges"]]
    assert 429 in statuses


def test_item9_catches_a_crl_without_the_revoked_certificate(tmp_path):
    crl = []

    def stale_crl(scope, status, headers, body):  # a CRL the revocation never reached
        return status, headers, crl[0]
    platform = ReferencePlatform(tmp_path, successor=False,
                                 wrap=lambda app: Rewrite(app, lambda s: s["path"].endswith("/crl"), stale_crl))
    crl.append(tx.create_crl(platform.admin.pki.ca, platform.admin.pki.ca_key, []))
    with platform as target:
        item = run(target, [9])["items"][0]
    case = _case(item, "9.5")
    assert case["verdict"] == "fail" and "not in the CRL" in case["reason"], case["reason"]


def test_a_missing_configuration_document_fails_once(tmp_path):
    def gone(scope, status, headers, body):
        return 404, {"content-type": "application/problem+json"}, json.dumps(
            {"type": "about:blank", "title": "x", "status": 404, "code": "NOT_FOUND"}).encode()
    item = _inspect(tmp_path, 8, lambda app: Rewrite(app, _json_path("/.well-known/"), gone))
    verdicts = {c["case_id"]: (c["verdict"], c["blocked_by"]) for c in item["cases"]}
    assert verdicts["8.1"][0] == "fail" and item["result"] == "fail"
    assert all(v == ("blocked", "8.1") for k, v in verdicts.items() if k != "8.1"), verdicts
