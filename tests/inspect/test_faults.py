"""Seeded faults: for every inspection item, a deliberately faulty variant of the reference
platform that the item must catch (a check that cannot fail is a defect)."""

import json

import pytest

from cedx.inspect.runner import run
from cedx.platform.app import create_app
from cedx.platform.security import PlatformHooks, Principal
from cedx.platform.service import Platform
from cedx.spec.validate import Validator

from ..loopback import serve
from .conftest import Reference


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


def _inspect(tmp_path, item, wrap=None):
    ref = Reference(tmp_path)
    app = create_app(ref.settings)
    with serve(wrap(app) if wrap else app) as url:
        report = run(ref.target(url), [item])
    return report["items"][0]


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
