"""Inspection cases for the reporting interface (the platform side). Three or more per item."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Any, cast

import requests
from asn1crypto import crl as asn1crl
from lxml import etree

from .. import spec, trust
from ..generated import models
from ..generated.constants import SPEC_VERSION
from ..generated.operations import OPERATIONS
from ..instants import INSTANT_PATTERN as INSTANT
from ..runtime.client import Format
from ..runtime.errors import ApiError
from ..trust import tsa as tts
from ..trust import x509 as tx
from .framework import CaseFailed, NotApplicable, case, check, prerequisite, present
from .probes import probe_rate_limit
from .target import Credential, Target

SUBMIT = OPERATIONS["submitMonthlyReport"].path


def _schema_ok(name: str, record: Any) -> None:
    issues = spec.validator().schema_issues(name, record)
    check(not issues, f"{name} does not conform: " + "; ".join(f"{i.path} {i.code} {i.message}" for i in issues[:3]))


def _xsd_ok(data: bytes) -> None:
    schema = spec.context().xml_schema
    check(schema.validate(etree.fromstring(data)), f"XML does not conform to the XSD: {schema.error_log.last_error}")


def _submit(t: Target, report: models.MonthlyReport | dict[str, Any] | None = None, fmt: Format = Format.JSON, *,
            step: bool = True, **kw: Any) -> models.SignedReceipt:
    """Submit a valid report. As a prerequisite step (the default) its failure blocks the
    cases that only need an accepted submission; with step=False it is the case's own check."""
    if not step:
        return t.reporting(fmt).submit_monthly_report(report or t.report(), **kw)
    with prerequisite("submit"):
        return t.reporting(fmt).submit_monthly_report(report or t.report(), **kw)


def _get(t: Target, path: str, token: str | None = None, **headers: str) -> requests.Response:
    return t.session.get(f"{t.url}{path}", headers={"Authorization": f"Bearer {token or t.token()}", **headers})


def _expect_problem(resp: requests.Response, status: int, code: str | None = None) -> dict[str, Any]:
    check(resp.status_code == status, f"expected HTTP {status}, got {resp.status_code}: {resp.text[:200]}")
    check(resp.headers.get("content-type", "").startswith("application/problem+json"),
          f"error answered as {resp.headers.get('content-type')}, not application/problem+json")
    body = resp.json()
    if not isinstance(body, dict):
        raise CaseFailed(f"the problem is not a JSON object: {resp.text[:200]}")
    if code:
        check(body.get("code") == code, f"expected problem code {code}, got {body.get('code')}")
    return body


def _api_error(fn: Callable[[], object], status: int, code: str | None = None) -> ApiError:
    try:
        fn()
    except ApiError as exc:
        check(exc.status == status, f"expected HTTP {status}, got {exc.status} {exc.code}")
        if code:
            check(exc.code == code, f"expected problem code {code}, got {exc.code}")
        return exc
    raise AssertionError(f"the request was accepted; expected HTTP {status}" + (f" {code}" if code else ""))


# --- 1 data model ----------------------------------------------------------------------------
@case(1, "1.1", "配置文档符合数据模型 / the configuration document conforms",
      "GET /.well-known/cedx-configuration (JSON)", "the body validates against SignedPlatformConfiguration")
def c1_1(t: Target) -> None:
    r = t.session.get(f"{t.url}/.well-known/cedx-configuration", headers={"Accept": "application/json"})
    check(r.status_code == 200, f"HTTP {r.status_code}")
    _schema_ok("SignedPlatformConfiguration", r.json())


@case(1, "1.2", "回执符合模式与 XSD / receipts conform to the schema and the XSD",
      "submit a valid monthly report; read its receipt as JSON and as XML", "both validate (JSON Schema, XSD)")
def c1_2(t: Target) -> None:
    receipt = _submit(t)
    sid = str(receipt.payload.submission_id)
    r = t.session.get(t.url_of("getReceipt", submissionId=sid), headers={"Authorization": f"Bearer {t.token()}", "Accept": "application/json"})
    _schema_ok("SignedReceipt", r.json())
    x = t.session.get(t.url_of("getReceipt", submissionId=sid), headers={"Authorization": f"Bearer {t.token()}", "Accept": "application/xml"})
    check(x.status_code == 200, f"XML receipt: HTTP {x.status_code}")
    _xsd_ok(x.content)


@case(1, "1.3", "列表与状态符合数据模型 / listings and statuses conform",
      "GET /v1/reporting/submissions?limit=2 and one status, JSON and XML", "SubmissionList/SubmissionStatus validate; XML per XSD")
def c1_3(t: Target) -> None:
    _submit(t)
    r = t.session.get(t.url_of("listSubmissions", "?limit=2"), headers={"Authorization": f"Bearer {t.token()}"})
    _schema_ok("SubmissionList", r.json())
    x = t.session.get(t.url_of("listSubmissions", "?limit=2"), headers={"Authorization": f"Bearer {t.token()}", "Accept": "application/xml"})
    _xsd_ok(x.content)


@case(1, "1.4", "不符合模式的文档被拒绝 / a non-conforming document is refused",
      "a signed report whose unit code is not in the unit table", "422 SCHEMA_VIOLATION citing R-UNIT-001 at the field")
def c1_4(t: Target) -> None:
    doc = t.signed(t.report())
    doc["payload"]["combustion"][0]["consumption"]["unit"] = "tonnes"
    exc = _api_error(lambda: t.reporting().submit_monthly_report(doc), 422, "SCHEMA_VIOLATION")
    check("R-UNIT-001" in exc.rules, f"rule R-UNIT-001 not cited (got {exc.rules})")
    check("$.payload.combustion[0].consumption.unit" in exc.paths, f"field path not given (got {exc.paths})")


# --- 2 data consistency ------------------------------------------------------------------------
@case(2, "2.1", "违反一致性规则被拒绝 / a rule violation is refused",
      "a report whose unit coal emission does not follow the formula", "422 RULE_VIOLATION citing R-POW-001")
def c2_1(t: Target) -> None:
    report = t.report()
    power = present(report.power, "the power example has no power section")
    present(power.units[0].combustion_emission, "the power example has no unit coal emission").value += 1000
    exc = _api_error(lambda: t.reporting().submit_monthly_report(report), 422, "RULE_VIOLATION")
    check("R-POW-001" in exc.rules, f"R-POW-001 not cited (got {exc.rules})")


@case(2, "2.2", "同一资源的 JSON 与 XML 等价 / JSON and XML forms of a resource are equivalent",
      "read a submitted report as JSON and as XML", "the logical records are equal and the same signature verifies")
def c2_2(t: Target) -> None:
    sid = str(_submit(t).payload.submission_id)
    as_json = t.reporting(Format.JSON).get_monthly_report(sid)
    as_xml = t.reporting(Format.XML).get_monthly_report(sid)
    check(as_json == as_xml, "the JSON and XML forms differ")
    trust.verify_document(as_xml, t.entity_key.public_key())


@case(2, "2.3", "回执摘要与所收文档一致 / the receipt digests what was received",
      "submit; compare receipt.documentDigest with SM3 of the canonical stored document", "they are equal")
def c2_3(t: Target) -> None:
    receipt = _submit(t)
    stored = t.reporting().get_monthly_report(str(receipt.payload.submission_id))
    digest = trust.sm3(trust.canonicalize(stored)).hex()
    check(digest == receipt.payload.document_digest, "documentDigest does not match the stored document")


@case(2, "2.4", "负的活动数据被拒绝 / negative activity data is refused",
      "a signed report whose fuel consumption is negative", "422 citing R-QTY-001 at the field")
def c2_4(t: Target) -> None:
    payload = t.report().model_dump(mode="json", by_alias=True, exclude_none=True)
    payload["power"]["units"][0]["coalConsumption"]["value"] = "-" + payload["power"]["units"][0]["coalConsumption"]["value"]
    chain = [t.certificate] if t.certificate else None
    body = json.dumps(trust.sign_document(payload, t.entity_key, certificate_chain=chain, envelope_fields={"specVersion": SPEC_VERSION}),
                      ensure_ascii=False).encode()
    problem = _expect_problem(t.session.post(t.url + SUBMIT, data=body, headers=t.headers(SUBMIT, body)), 422)
    cited = {(e.get("rule"), e.get("path")) for e in problem.get("errors", [])}
    check(any(rule == "R-QTY-001" and "coalConsumption" in (path or "") for rule, path in cited), f"R-QTY-001 not cited (got {cited})")


AGREEMENT_OPTIONS = ("cedx inspect --agreement-source URL --agreement-ca PEM "
                     "(--agreement-token-env VAR | --agreement-client-id ID --agreement-client-secret-env VAR) "
                     "with --agreement-submission ID or --agreement-report FILE")


@case(2, "2.5", "采集与报告一致 / acquisition and report agree (R-EVID-002)",
      "optional material: the monthly report (a submission read from the platform, or a signed report file) and the "
      "acquisition source its evidence references; every referenced batch is pulled from the source and verified "
      "(signature to the source's CA, hash chain, contiguity) and each evidence total is recomputed with cedx's "
      "conservative substitution (R-GAP-002)",
      "the report verifies; every evidence entry names a reportedField and a total; the batches "
      "firstSequence..lastSequence end in lastBatchDigest; the recomputed total equals the evidence total and the "
      "reported field within half a unit of the reported last place, and validHours/substitutedHours/stoppedHours agree")
def c2_5(t: Target) -> None:
    from ..accounting import agreement
    from ..accounting.period import bounds as period_bounds
    from ..acquisition.batches import BatchError
    from ..acquisition.pull import pull_batches
    from ..generated.client import AcquisitionClient
    from ..runtime.client import NO_RETRY, TokenProvider

    a = t.agreement
    if a is None:
        raise NotApplicable(f"needs an acquisition source and a report whose evidence references it: {AGREEMENT_OPTIONS}")
    if a.report is not None:
        document = a.report
    else:
        check(bool(a.submission_id), f"the agreement material names no report: {AGREEMENT_OPTIONS}")
        document = t.reporting().get_monthly_report(str(a.submission_id)).model_dump(mode="json", by_alias=True,
                                                                                      exclude_none=True)
    try:
        trust.verify_document(document, t.resolver())
    except trust.TrustError as exc:
        raise CaseFailed(f"the report's signature does not verify: {exc}") from exc
    payload = document["payload"]
    evidence = [(i, e) for i, e in enumerate(payload.get("evidence", [])) if "reportedField" in e and "total" in e]
    check(bool(evidence), "R-EVID-002 $.evidence: no evidence entry names a reportedField with a total to recompute")
    provider = (TokenProvider(f"{a.url}/oauth/token", a.client_id, a.client_secret or "", "acquisition:read",
                              session=t.session, retry=NO_RETRY) if a.client_id else None)
    source = AcquisitionClient(a.url, token=a.token, token_provider=provider, trust_anchors=a.trust_anchors,
                               session=t.session, retry=NO_RETRY)
    month = period_bounds(payload["period"])   # evidence without its own time range: the reporting month
    batches: dict[str, dict[tuple[str, int], dict[str, Any]]] = {}  # point -> (granularity, sequence) -> batch
    for i, ev in evidence:
        start, end = ev.get("periodStart") or month[0].isoformat(), ev.get("periodEnd") or month[1].isoformat()
        try:
            for b in pull_batches(source, ev["pointId"], granularity=ev["granularity"], from_=start, to=end,
                                  trust_anchors=a.trust_anchors, prefetch=False):
                batches.setdefault(ev["pointId"], {})[(b.payload["granularity"], b.payload["sequenceNumber"])] = b.payload
        except BatchError as exc:
            raise CaseFailed(f"R-EVID-002 $.evidence[{i}]: the source's batches for {ev['pointId']} do not verify: {exc}") from exc
        except ApiError as exc:
            raise CaseFailed(f"R-EVID-002 $.evidence[{i}]: the source refused the batches of {ev['pointId']}: "
                             f"{exc.status} {exc.code}") from exc
    found = agreement.check(payload, {point: list(by_seq.values()) for point, by_seq in batches.items()})
    check(not found, "; ".join(str(d) for d in found[:5]) + (f" (and {len(found) - 5} more)" if len(found) > 5 else ""))


# --- 3 machine-readability ---------------------------------------------------------------------
@case(3, "3.1", "内容类型与字符集 / declared content types and charsets",
      "GET a status as JSON and as XML", "Content-Type is application/json or application/xml with charset=utf-8")
def c3_1(t: Target) -> None:
    sid = str(_submit(t).payload.submission_id)
    for accept in ("application/json", "application/xml"):
        r = t.session.get(t.url_of("getSubmissionStatus", submissionId=sid), headers={"Authorization": f"Bearer {t.token()}", "Accept": accept})
        ctype = r.headers.get("content-type", "").lower().replace(" ", "")
        check(ctype.startswith(accept), f"asked {accept}, got Content-Type {ctype}")
        check("charset=utf-8" in ctype, f"Content-Type {ctype} declares no UTF-8 charset")


@case(3, "3.2", "时间带偏移、数值为十进制字符串 / instants carry offsets, decimals are strings",
      "read a receipt and a stored report", "every instant has an offset; every quantity value is a JSON string")
def c3_2(t: Target) -> None:
    receipt = _submit(t)
    r = t.session.get(t.url_of("getMonthlyReport", submissionId=str(receipt.payload.submission_id)),
                      headers={"Authorization": f"Bearer {t.token()}"})
    body = r.json()

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if "value" in node and "unit" in node:
                check(isinstance(node["value"], str), f"{path}.value is a {type(node['value']).__name__}, not a decimal string")
                check(node["unit"] in spec.index().units, f"{path}.unit {node['unit']!r} is not in the unit table")
            for k, v in node.items():
                walk(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")
        elif isinstance(node, float):
            raise AssertionError(f"{path} is a binary float")
    walk(body, "$")
    for key in ("receivedAt",):
        check(bool(INSTANT.match(receipt.model_dump(mode="json", by_alias=True)["payload"][key] or "")),
              f"{key} lacks an offset")


@case(3, "3.3", "错误使用代码而非自由文本 / errors carry codes from the table",
      "a request without token and a request for an unknown submission", "problem+json with codes from x-cedx-error-codes")
def c3_3(t: Target) -> None:
    codes = set(spec.index().error_codes)
    r1 = t.session.get(t.url_of("listSubmissions"))
    b1 = _expect_problem(r1, 401)
    r2 = t.session.get(t.url_of("getSubmissionStatus", submissionId=str(uuid.uuid4())), headers={"Authorization": f"Bearer {t.token()}"})
    b2 = _expect_problem(r2, 404)
    for body in (b1, b2):
        check(body.get("code") in codes, f"code {body.get('code')!r} is not in the error-code table")


# --- 4 exchange flow ---------------------------------------------------------------------------
@case(4, "4.1", "令牌→报送→回执→状态 / token → submit → receipt → status",
      "obtain a token, submit, read the receipt and the status", "201 with a receipt, status accepted, version 1")
def c4_1(t: Target) -> None:
    receipt = _submit(t)
    check(receipt.payload.version == 1, f"first version is {receipt.payload.version}")
    status = t.reporting().get_submission_status(str(receipt.payload.submission_id))
    check(status.state.value == "accepted", f"state {status.state.value}")


@case(4, "4.2", "更正形成新版本 / a correction makes a new version",
      "submit, then a correction replacing it", "version 2 accepted; version 1 superseded")
def c4_2(t: Target) -> None:
    first = t.report()
    receipt = _submit(t, first)
    corrected = first.model_copy(deep=True)
    corrected.report_id = uuid.uuid4()
    corrected.submission_kind = models.SubmissionKind.correction
    corrected.replaces_submission_id = receipt.payload.submission_id
    corrected.reason = "inspection correction"
    second = _submit(t, corrected, step=False)
    check(second.payload.version == 2, f"correction has version {second.payload.version}")
    old = t.reporting().get_submission_status(str(receipt.payload.submission_id))
    check(old.state.value == "superseded", f"the replaced version is {old.state.value}")


@case(4, "4.3", "补报与状态冲突 / supplementary submission and state conflicts",
      "a supplementary report for a new period; a second original for a period already reported",
      "the first is accepted; the second answers 409")
def c4_3(t: Target) -> None:
    report = t.report()
    report.submission_kind = models.SubmissionKind.supplementary
    report.reason = "late: inspection"
    check(_submit(t, report, step=False).payload.submission_kind.value == "supplementary", "supplementary kind not kept")
    again = report.model_copy(update={"report_id": uuid.uuid4(), "submission_kind": models.SubmissionKind.original, "reason": None})
    _api_error(lambda: t.reporting().submit_monthly_report(again), 409)


# --- 5 invocation rules --------------------------------------------------------------------------
@case(5, "5.1", "版本化路径与 problem+json / versioned paths, problem+json errors",
      "GET an unknown submission under /v1/", "404 application/problem+json with a code and a title")
def c5_1(t: Target) -> None:
    r = t.session.get(t.url_of("getSubmissionStatus", submissionId=str(uuid.uuid4())), headers={"Authorization": f"Bearer {t.token()}"})
    body = _expect_problem(r, 404, "NOT_FOUND")
    check(bool(body.get("title")) and body.get("status") == 404, "problem lacks title or status")


@case(5, "5.2", "分页 / pagination",
      "submit three reports; list with limit=1 and follow nextCursor", "each page has one item, Link rel=next, no repeats")
def c5_2(t: Target) -> None:
    for _ in range(3):
        _submit(t)
    r = t.session.get(t.url_of("listSubmissions", "?limit=1"), headers={"Authorization": f"Bearer {t.token()}"})
    check(r.status_code == 200 and len(r.json()["items"]) == 1, "limit=1 did not give one item")
    check('rel="next"' in r.headers.get("link", ""), "no RFC 8288 Link rel=next header")
    seen = [s.submission_id for s in t.reporting().iter_submissions(limit=1)]
    check(len(seen) == len(set(seen)) and len(seen) >= 3, "pagination repeated or lost items")


@case(5, "5.3", "幂等 / idempotency",
      "the same signed body twice with one Idempotency-Key, then another body with that key",
      "the same receipt twice; then 409 IDEMPOTENCY_CONFLICT")
def c5_3(t: Target) -> None:
    doc, key = t.signed(t.report()), str(uuid.uuid4())
    a = t.reporting().submit_monthly_report(doc, idempotency_key=key)
    b = t.reporting().submit_monthly_report(doc, idempotency_key=key)
    check(a == b, "the same key and body gave different receipts (stored twice?)")
    other = t.signed(t.report())
    _api_error(lambda: t.reporting().submit_monthly_report(other, idempotency_key=key), 409, "IDEMPOTENCY_CONFLICT")


@case(5, "5.4", "速率限制头 / rate-limit headers",
      "GET /v1/reporting/submissions", "RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset are present")
def c5_4(t: Target) -> None:
    r = t.session.get(t.url_of("listSubmissions", "?limit=1"), headers={"Authorization": f"Bearer {t.token()}"})
    missing = [h for h in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset") if h not in r.headers]
    check(not missing, f"missing {', '.join(missing)}")


@case(5, "5.5", "速率限制确实生效 / the rate limit is enforced",
      "opt-in (--rate-limit-probe N): cheap reads until RateLimit-Remaining reaches 0, one more, then the same with a "
      "fresh token of the same client", "429 RATE_LIMITED with an integer Retry-After exactly when Remaining was 0; "
      "a new token of the same client is still limited", last=True)
def c5_5(t: Target) -> None:
    probe_rate_limit(t, t.path_of("listSubmissions", "?limit=1"))


# --- 6 exchange formats --------------------------------------------------------------------------
@case(6, "6.1", "XML 报送与 XML 应答 / XML in, XML out",
      "submit a report as application/xml with Accept: application/xml", "201, answered in XML valid per the XSD")
def c6_1(t: Target) -> None:
    body = spec.xml_codec().dumps("SignedMonthlyReport", t.signed(t.report()))
    r = t.session.post(t.url + SUBMIT, data=body, headers=t.headers(SUBMIT, body, ctype="application/xml", accept="application/xml"))
    check(r.status_code == 201, f"HTTP {r.status_code}: {r.text[:200]}")
    check(r.headers.get("content-type", "").startswith("application/xml"), f"answered {r.headers.get('content-type')}")
    _xsd_ok(r.content)


@case(6, "6.2", "不可接受的格式 / an unacceptable Accept",
      "GET a listing with Accept: text/csv", "406 NOT_ACCEPTABLE")
def c6_2(t: Target) -> None:
    r = t.session.get(t.url_of("listSubmissions"), headers={"Authorization": f"Bearer {t.token()}", "Accept": "text/csv"})
    _expect_problem(r, 406, "NOT_ACCEPTABLE")


@case(6, "6.3", "不支持的内容类型 / an unsupported Content-Type",
      "POST a report as text/csv", "415 UNSUPPORTED_MEDIA_TYPE")
def c6_3(t: Target) -> None:
    body = b"period,total\n2026-10,1\n"
    r = t.session.post(t.url + SUBMIT, data=body, headers=t.headers(SUBMIT, body, ctype="text/csv"))
    _expect_problem(r, 415, "UNSUPPORTED_MEDIA_TYPE")


# --- 7 authorization ---------------------------------------------------------------------------
@case(7, "7.1", "无令牌被拒绝 / no token", "GET a listing without Authorization", "401 TOKEN_MISSING")
def c7_1(t: Target) -> None:
    _expect_problem(t.session.get(t.url_of("listSubmissions")), 401, "TOKEN_MISSING")


@case(7, "7.2", "无效令牌被拒绝 / an invalid token is refused",
      "GET a listing with a well-formed token the platform never issued", "401 TOKEN_INVALID (or TOKEN_EXPIRED)")
def c7_2(t: Target) -> None:
    r = t.session.get(t.url_of("listSubmissions"), headers={"Authorization": "Bearer " + base64.urlsafe_b64encode(uuid.uuid4().bytes * 2).decode()})
    body = _expect_problem(r, 401)
    check(body.get("code") in ("TOKEN_INVALID", "TOKEN_EXPIRED"), f"code {body.get('code')}")


@case(7, "7.3", "权限范围不足被拒绝 / insufficient scope",
      "a token with scope reporting:read submits a report", "403 SCOPE_INSUFFICIENT")
def c7_3(t: Target) -> None:
    read_only = t.token(scope="reporting:read")
    _api_error(lambda: t.reporting(token=read_only).submit_monthly_report(t.report()), 403, "SCOPE_INSUFFICIENT")


@case(7, "7.4", "不得报送他人数据 / no other entity's data",
      "submit a report whose creditCode is another (valid) entity's", "refused with 403 ENTITY_FORBIDDEN")
def c7_4(t: Target) -> None:
    other = "91350100M000100Y43" if t.credit_code != "91350100M000100Y43" else "91320500MA1X2P3Q4R"
    report = t.report()
    report.credit_code = other
    _api_error(lambda: t.reporting().submit_monthly_report(report), 403, "ENTITY_FORBIDDEN")


@case(7, "7.5", "过期令牌被拒绝 / an expired token is refused",
      "GET a listing with a token the platform issued to this client that has since expired (--expired-token-env)",
      "401 TOKEN_EXPIRED with WWW-Authenticate: Bearer error=\"invalid_token\"")
def c7_5(t: Target) -> None:
    if not t.expired_token:
        raise NotApplicable("no expired token supplied: ask the operator for a short-lived token of this client, "
                            "let it expire, pass it with --expired-token-env (inspector guide §4)")
    r = t.session.get(t.url_of("listSubmissions", "?limit=1"), headers={"Authorization": f"Bearer {t.expired_token}"})
    _expect_problem(r, 401, "TOKEN_EXPIRED")
    check("invalid_token" in r.headers.get("www-authenticate", ""),
          f"WWW-Authenticate is {r.headers.get('www-authenticate')!r}, not Bearer error=\"invalid_token\" (RFC 6750)")


@case(7, "7.6", "不得读取他人数据 / no reads of another entity's data",
      "a second entity's token reads this entity's submission status, receipt, report and entity record; "
      "both entities list their submissions", "403 or 404 problem+json without the data; each listing holds only its own entity's submissions")
def c7_6(t: Target) -> None:
    if not t.other:
        raise NotApplicable("no second entity supplied (--other-client-id, --other-client-secret-env, --other-credit-code)")
    receipt = _submit(t)
    sid, report_id = str(receipt.payload.submission_id), str(receipt.payload.report_id)
    theirs = t.request_token(t.other.client_id, t.other.client_secret)
    for path in (t.path_of("getSubmissionStatus", submissionId=sid), t.path_of("getReceipt", submissionId=sid),
                 t.path_of("getMonthlyReport", submissionId=sid),
                 t.path_of("getEntity", creditCode=cast(str, t.credit_code))):
        r = _get(t, path, token=theirs)
        check(r.status_code in (403, 404), f"another entity's token read {path}: HTTP {r.status_code}")
        body = _expect_problem(r, r.status_code)
        check(body.get("code") in ("NOT_FOUND", "ENTITY_FORBIDDEN"), f"{path}: code {body.get('code')}")
        check(report_id not in r.text, f"{path}: the refusal discloses the report id")
    for token, code, label in ((theirs, t.other.credit_code, "the second entity's"), (t.token(), t.credit_code, "this entity's")):
        r = _get(t, t.path_of("listSubmissions", "?limit=50"), token=token)
        check(r.status_code == 200, f"{label} listing: HTTP {r.status_code}")
        ids = [i.get("submissionId") for i in r.json().get("items", [])]
        if code != t.credit_code:
            check(sid not in ids, f"{label} listing contains this entity's submission {sid}")
        for other_id in ids[:20]:  # bounded: each listed submission's receipt names the listing's entity
            rr = _get(t, t.path_of("getReceipt", submissionId=other_id), token=token)
            check(rr.status_code == 200, f"{label} listing names {other_id}, whose receipt answers {rr.status_code}")
            owner = rr.json().get("payload", {}).get("creditCode")
            check(owner == code, f"{label} listing holds submission {other_id} of entity {owner}")


@case(7, "7.7", "错误中不回显令牌与密码 / errors never echo tokens or secrets",
      "a made-up bearer token on a read and on a submission; a wrong and an overlong client secret at the token endpoint",
      "refused, and neither the body nor a header contains the token or secret; error_description within 500 characters")
def c7_7(t: Target) -> None:
    canary = "cedx-canary-" + uuid.uuid4().hex
    answers = [
        t.session.get(t.url_of("listSubmissions"), headers={"Authorization": f"Bearer {canary}"}),
        t.session.get(t.url_of("getReceipt", submissionId=str(uuid.uuid4())), headers={"Authorization": f"Bearer {canary}"}),
        t.session.post(t.url + SUBMIT, data=b"{}", headers={"Authorization": f"Bearer {canary}", "Content-Type": "application/json",
                                                           "Idempotency-Key": str(uuid.uuid4())}),
    ]
    for secret in (canary, canary * 40):
        answers.append(t.session.post(f"{t.url}/oauth/token", data={"grant_type": "client_credentials", "client_id": t.client_id,
                                                                     "client_secret": secret}))
    answers.append(t.session.post(f"{t.url}/oauth/token", data={"grant_type": "password", "client_id": t.client_id,
                                                                 "client_secret": canary}))
    for r in answers:
        where = f"{r.request.method} {r.request.path_url}"
        check(r.status_code in (400, 401), f"{where}: HTTP {r.status_code}")
        check(canary not in r.text, f"{where} echoes the submitted token or secret in its body")
        check(all(canary not in v for v in r.headers.values()), f"{where} echoes the submitted token or secret in a header")
        if "/oauth/" in where:
            description = r.json().get("error_description") or ""
            check(len(description) <= 500, f"{where}: error_description of {len(description)} characters (limit 500)")


# --- 8 configuration-address change -----------------------------------------------------------
def _config(t: Target) -> dict[str, Any]:
    with prerequisite("configuration"):
        r = t.session.get(f"{t.url}/.well-known/cedx-configuration", headers={"Accept": "application/json"})
        check(r.status_code == 200, f"HTTP {r.status_code}")
        config = r.json()
        if not isinstance(config, dict):
            raise CaseFailed("the configuration is not a JSON object")
        return config




@case(8, "8.1", "配置文档签名有效 / the configuration document is validly signed",
      "GET the configuration document", "signature verifies; the signer's chain ends at the trust anchor")
def c8_1(t: Target) -> None:
    doc = _config(t)
    check("signature" in doc, "the configuration document is not signed")
    try:
        trust.verify_document(doc, t.resolver())
    except trust.CertificateError as exc:
        # Either the platform signs with a certificate outside its announced PKI, or the trust
        # anchor given is not the platform's: say which material to check.
        raise AssertionError(f"the signer's certificate does not verify to the trust anchor given (--ca): {exc}; "
                             "if --ca is not the platform's CA certificate, this verdict says nothing") from exc
    except trust.TrustError as exc:
        raise AssertionError(f"signature or certificate invalid: {exc}") from exc


@case(8, "8.2", "篡改的变更通知可被发现 / a tampered change notice is detectable",
      "change the successor address (or add one) in a copy of the document", "verification of the copy fails")
def c8_2(t: Target) -> None:
    doc = copy.deepcopy(_config(t))
    doc["payload"]["successor"] = {"baseUrl": "https://attacker.example", "effectiveFrom": "2020-01-01T00:00:00Z", "reason": "x"}
    try:
        trust.verify_document(doc, t.resolver())
    except trust.TrustError:
        return
    raise AssertionError("a tampered configuration document still verifies")


@case(8, "8.3", "配置内容完整 / the configuration is complete and consistent",
      "read endpoints, signing certificates and any successor", "endpoints given; certificates parse; successor not before validFrom")
def c8_3(t: Target) -> None:
    doc = _config(t)
    payload = doc["payload"]
    check(payload.get("endpoints", {}).get("token") and payload["endpoints"].get("reporting"), "endpoints missing")
    for c in payload.get("signingCertificates", []):
        tx.load_certificate(base64.b64decode(c))
    issues = spec.validator().rule_issues("SignedPlatformConfiguration", doc)
    check(not issues, f"rule violations: {[i.code for i in issues]}")


@case(8, "8.4", "所公告的地址变更可用 / a served address change works",
      "read the successor the platform announces (or --expect-successor): its configuration, its token endpoint, "
      "and a submission made here read back there once the change is effective",
      "the successor's document verifies to the same trust anchors, names the same platform and its own endpoints; "
      "the same client and data are served there")
def c8_4(t: Target) -> None:
    doc = _config(t)
    payload = doc["payload"]
    successor = payload.get("successor")
    if t.expect_successor:
        check(successor is not None and successor["baseUrl"].rstrip("/") == t.expect_successor.rstrip("/"),
              f"expected successor {t.expect_successor}; the platform announces {successor and successor.get('baseUrl')}")
    if successor is None:
        raise NotApplicable("the platform announces no address change; the operator stages one (cedx serve platform "
                            "--successor-url, docs/security.md §6), then pass --expect-successor")
    try:
        trust.verify_document(doc, t.resolver())
    except trust.TrustError as exc:
        raise CaseFailed(f"the announcing document does not verify: {exc}") from exc
    effective = dt.datetime.fromisoformat(successor["effectiveFrom"].replace("Z", "+00:00"))
    check(effective >= dt.datetime.fromisoformat(payload["validFrom"].replace("Z", "+00:00")),
          "the change takes effect before the announcing document is valid")
    base = successor["baseUrl"].rstrip("/")
    check(base != t.url, "the successor is the platform's own address")
    try:
        r = t.session.get(f"{base}/.well-known/cedx-configuration", headers={"Accept": "application/json"}, timeout=30)
    except requests.RequestException as exc:
        raise CaseFailed(f"the successor {base} is unreachable: {exc}") from exc
    check(r.status_code == 200, f"the successor's configuration: HTTP {r.status_code}")
    new = r.json()
    try:
        trust.verify_document(new, t.resolver())
    except trust.TrustError as exc:
        raise CaseFailed(f"the successor's configuration does not verify to the trust anchors: {exc}") from exc
    check(new["payload"].get("platformId") == payload.get("platformId"),
          f"the successor is platform {new['payload'].get('platformId')!r}, not {payload.get('platformId')!r}")
    endpoints = new["payload"].get("endpoints", {})
    check(all(str(v).startswith(base) for v in endpoints.values()), f"the successor's endpoints are not under {base}: {endpoints}")
    onward = (new["payload"].get("successor") or {}).get("baseUrl", "").rstrip("/")
    check(onward != t.url, "the successor announces the old address as its own successor (a loop)")
    if effective > dt.datetime.now(dt.timezone.utc):
        return  # not effective yet: the successor need not serve this client's data
    sid = str(_submit(t).payload.submission_id)
    try:
        token = t.request_token(t.client_id, t.client_secret, base_url=base)
        status = t.session.get(f"{base}{t.path_of('getSubmissionStatus', submissionId=sid)}", headers={"Authorization": f"Bearer {token}"})
    except requests.RequestException as exc:
        raise CaseFailed(f"the successor {base} is unreachable: {exc}") from exc
    check(status.status_code == 200 and status.json().get("submissionId") == sid,
          f"a submission made at the old address is not served at the successor: HTTP {status.status_code}")


# --- 9 data trust -----------------------------------------------------------------------------
@case(9, "9.1", "篡改的文档被拒绝 / a tampered document is refused",
      "sign a report, then change the entity name", "422 SIGNATURE_INVALID")
def c9_1(t: Target) -> None:
    doc = t.signed(t.report())
    doc["payload"]["entityName"] = doc["payload"]["entityName"] + "（篡改）"
    _api_error(lambda: t.reporting().submit_monthly_report(doc), 422, "SIGNATURE_INVALID")


@case(9, "9.2", "未登记密钥签名被拒绝 / a signature by an unregistered key is refused",
      "a report signed by a freshly generated key", "422 CERTIFICATE_INVALID")
def c9_2(t: Target) -> None:
    doc = t.signed(t.report(), key=trust.generate_private_key())
    _api_error(lambda: t.reporting().submit_monthly_report(doc), 422, "CERTIFICATE_INVALID")


@case(9, "9.3", "回执已签名并加盖时间戳 / receipts are signed and time-stamped",
      "submit; verify the receipt signature, certificate chain and RFC 3161 token",
      "all verify; the TSA certificate has the critical timeStamping EKU")
def c9_3(t: Target) -> None:
    receipt = _submit(t).model_dump(mode="json", by_alias=True, exclude_none=True)
    verified = trust.verify_document(receipt, t.resolver())
    token = present(verified.timestamp_token, "the receipt carries no time-stamp token")
    tts.verify_token(token, imprint=trust.sm3(verified.signature), trust_anchors=t.trust_anchors)


@case(9, "9.4", "重放的请求被拒绝 / a replayed request is refused",
      "send one signed request twice (same timestamp, nonce and signature)", "the second answers 401 REQUEST_REPLAYED")
def c9_4(t: Target) -> None:
    body = json.dumps(t.signed(t.report()), ensure_ascii=False).encode()
    headers = t.headers(SUBMIT, body)
    first = t.session.post(t.url + SUBMIT, data=body, headers=headers)
    check(first.status_code == 201, f"first request: HTTP {first.status_code}")
    second = t.session.post(t.url + SUBMIT, data=body, headers=headers)
    _expect_problem(second, 401, "REQUEST_REPLAYED")




def _refused_credential(t: Target, credential: Credential | None, option: str) -> Credential:
    if credential is None:
        raise NotApplicable(f"no such certificate supplied (--{option}-key, --{option}-cert): ask the operator to "
                            f"register one for this entity that is {option} (inspector guide §4)")
    doc = t.signed(t.report(), key=credential.key, certificate=credential.certificate)
    exc = _api_error(lambda: t.reporting().submit_monthly_report(doc), 422, "CERTIFICATE_INVALID")
    check("$.signature.keyId" in exc.paths or not exc.paths, f"the refusal points at {exc.paths}, not $.signature.keyId")
    body = json.dumps(t.signed(t.report()), ensure_ascii=False).encode()
    r = t.session.post(t.url + SUBMIT, data=body, headers=t.headers(SUBMIT, body, signing_key=credential.key))
    _expect_problem(r, 401, "REQUEST_SIGNATURE_INVALID")
    return credential


def _crl_lists(t: Target, certificate: bytes) -> None:
    """When the configuration names a CRL (endpoints.crl): it is served, issued and signed by a
    trust anchor, current, and lists the revoked certificate."""
    url = _config(t)["payload"].get("endpoints", {}).get("crl")
    if not url:
        return
    r = t.session.get(url)
    check(r.status_code == 200, f"the CRL {url}: HTTP {r.status_code}")
    try:
        crl = asn1crl.CertificateList.load(r.content)
        tbs = crl["tbs_cert_list"]
        issuer, next_update = tbs["issuer"], tbs["next_update"].native
        listed = {e["user_certificate"].native for e in (tbs["revoked_certificates"] or [])}
    except (ValueError, TypeError, KeyError) as exc:
        raise CaseFailed(f"the CRL at {url} is not a DER CertificateList: {exc}") from exc
    anchor = present(next((a for a in t.trust_anchors if tx.load_certificate(a).subject == issuer), None),
                     "the CRL is not issued by a trust anchor")
    try:
        tx.certificate_public_key(anchor).verify(crl["signature"].native, tbs.dump())
    except trust.TrustError as exc:
        raise CaseFailed(f"the CRL's signature does not verify: {exc}") from exc
    check(next_update is None or next_update > dt.datetime.now(dt.timezone.utc), f"the CRL is stale (nextUpdate {next_update})")
    serial = tx.load_certificate(certificate).serial_number
    check(serial in listed, f"the revoked certificate (serial {serial}) is not in the CRL")


@case(9, "9.5", "已吊销证书被拒绝 / a revoked certificate is refused",
      "a report signed with a key whose registered certificate was revoked (--revoked-key/--revoked-cert); "
      "a valid report whose request signature uses that key; the CRL the configuration names, if any",
      "422 CERTIFICATE_INVALID; 401 REQUEST_SIGNATURE_INVALID; the CRL is signed by a trust anchor, current, and lists it")
def c9_5(t: Target) -> None:
    revoked = _refused_credential(t, t.revoked, "revoked")
    _crl_lists(t, revoked.certificate)


@case(9, "9.6", "过期证书被拒绝 / an expired certificate is refused",
      "a report signed with a key whose registered certificate has expired (--expired-key/--expired-cert); "
      "a valid report whose request signature uses that key", "422 CERTIFICATE_INVALID; 401 REQUEST_SIGNATURE_INVALID")
def c9_6(t: Target) -> None:
    _refused_credential(t, t.expired, "expired")


@case(9, "9.7", "两种文档签名算法都被接受 / both document signature algorithms are accepted",
      "submit one valid report signed with SM2-with-SM3 (the other cases sign with SM2-with-SM3-prehash, the default)",
      "201 with a receipt whose documentDigest is that of the document sent")
def c9_7(t: Target) -> None:
    receipt = t.reporting(signature_algorithm=trust.ALGORITHM).submit_monthly_report(t.report())
    stored = t.reporting().get_monthly_report(str(receipt.payload.submission_id)).model_dump(
        mode="json", by_alias=True, exclude_none=True)
    check(stored["signature"]["algorithm"] == trust.ALGORITHM, "the stored document's algorithm changed")
    check(trust.sm3(trust.canonicalize(stored)).hex() == receipt.payload.document_digest,
          "documentDigest does not match the stored document")
