"""Inspection cases for the data auto-acquisition interface (the source side)."""

from __future__ import annotations

import datetime as dt

from lxml import etree

from .. import spec, trust
from ..acquisition.batches import BatchError, BatchVerifier
from ..generated import models
from ..generated.constants import QUALITY_FLAGS
from ..runtime.client import Format
from ..runtime.errors import ApiError
from .framework import NotApplicable, case, check, prerequisite
from .probes import probe_rate_limit
from .target import Target

ACQ = ("acquisition",)


def _point(t: Target) -> str:
    if t.point_id:
        return t.point_id
    with prerequisite("point"):
        page = t.acquisition().list_metering_points(limit=1)
        check(bool(page.items), "the source lists no metering point")
        return page.items[0].point_id


def _window(t: Target) -> tuple[str, str]:
    now = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    return (now - dt.timedelta(days=3)).isoformat(), now.isoformat()


def _batches(t: Target, fmt: Format = Format.JSON, limit: int = 2) -> models.MeasurementBatchPage:
    start, end = _window(t)
    point = _point(t)
    with prerequisite("batches"):
        page = t.acquisition(fmt).list_measurement_batches(point, granularity="hour", from_=start, to=end, limit=limit)
        check(len(page.items) >= 1, "no batch in the last three days")
    return page


#: Why a case needing two batches does not apply to a source holding one (commissioned today):
#: nothing about paging or chaining can be judged yet.
_TOO_YOUNG = ("the source holds a single hourly batch in the last three days (commissioned today?): paging and "
              "chaining need two; inspect again from its second day")


def _young(t: Target, start: str, end: str) -> bool:
    """Whether the source shows itself commissioned within the window: it lists exactly one
    hourly batch in [start, end), and that is its first ever (sequence number 1, trust-batches
    §4). A source listing nothing, or one later batch alone, is not young but wrong."""
    items = t.acquisition().list_measurement_batches(_point(t), granularity="hour", from_=start, to=end,
                                                     limit=100).items
    return len(items) == 1 and items[0].payload.sequence_number == 1


def _hourly(start: str, end: str, limit: int) -> dict[str, str | int]:
    """Query of a raw batch read: hourly batches in [start, end)."""
    return {"granularity": "hour", "from": start, "to": end, "limit": limit}


def _statistics(t: Target) -> models.SignedPeriodStatistics:
    start, end = _window(t)
    point = _point(t)
    with prerequisite("statistics"):
        return t.acquisition().get_period_statistics(point, period_type="day", from_=start, to=end)




@case(1, "A1.1", "计量点与计量器具符合模式 / points and instruments conform", "GET /v1/acquisition/points",
      "MeteringPointList validates; each instrument has calibration data", ACQ)
def a1_1(t: Target) -> None:
    r = t.session.get(t.url_of("listMeteringPoints"), headers={"Authorization": f"Bearer {t.token()}"})
    issues = spec.validator().schema_issues("MeteringPointList", r.json())
    check(not issues, f"does not conform: {[i.message for i in issues[:3]]}")


@case(1, "A1.2", "批次符合 XSD / batches conform to the XSD", "GET batches as XML", "valid per the XSD", ACQ)
def a1_2(t: Target) -> None:
    start, end = _window(t)
    r = t.session.get(t.url_of("listMeasurementBatches", pointId=_point(t)),
                      params=_hourly(start, end, 1),
                      headers={"Authorization": f"Bearer {t.token()}", "Accept": "application/xml"})
    schema = spec.context().xml_schema
    check(schema.validate(etree.fromstring(r.content)), f"XSD: {schema.error_log.last_error}")


@case(1, "A1.3", "统计符合模式 / statistics conform", "GET daily statistics", "SignedPeriodStatistics validates", ACQ)
def a1_3(t: Target) -> None:
    stats = _statistics(t)
    issues = spec.validator().validate("SignedPeriodStatistics", stats.model_dump(mode="json", by_alias=True, exclude_none=True))
    check(not issues, f"{[i.code for i in issues[:3]]}")


@case(2, "A2.1", "JSON 与 XML 等价 / JSON and XML equivalent", "one point as JSON and as XML", "equal records", ACQ)
def a2_1(t: Target) -> None:
    check(t.acquisition(Format.JSON).get_metering_point(_point(t)) == t.acquisition(Format.XML).get_metering_point(_point(t)),
          "JSON and XML differ")


@case(2, "A2.2", "批次满足一致性规则 / batches satisfy the rules", "read batches", "R-ACQ-001/002 hold", ACQ)
def a2_2(t: Target) -> None:
    for b in _batches(t).items:
        issues = spec.validator().rule_issues("SignedMeasurementBatch", b.model_dump(mode="json", by_alias=True, exclude_none=True))
        check(not issues, f"{[(i.code, i.path) for i in issues[:3]]}")


@case(2, "A2.3", "统计与完整率一致 / statistics coverage is consistent", "daily statistics", "R-ACQ-003 holds", ACQ)
def a2_3(t: Target) -> None:
    stats = _statistics(t)
    issues = spec.validator().rule_issues("SignedPeriodStatistics", stats.model_dump(mode="json", by_alias=True, exclude_none=True))
    check(not issues, f"{[(i.code, i.path) for i in issues[:3]]}")


@case(2, "A2.4", "数据标记与数值及量程一致 / flags agree with values and the instrument range",
      "read a point's instrument range and its batches", "R-ACQ-001/005/006: N in range, T at or above the upper limit, B without a value",
      ACQ)
def a2_4(t: Target) -> None:
    from ..accounting import flags

    point = t.acquisition().get_metering_point(_point(t)).model_dump(mode="json", by_alias=True, exclude_none=True)
    for b in _batches(t).items:
        bad = flags.check_batch(b.model_dump(mode="json", by_alias=True, exclude_none=True)["payload"], point["instrument"]["range"])
        check(not bad, f"{[(v.rule, v.time, v.flag, v.value) for v in bad[:3]]}")


@case(3, "A3.1", "内容类型 / content types", "GET a point as JSON and XML", "declared with charset=utf-8", ACQ)
def a3_1(t: Target) -> None:
    for accept in ("application/json", "application/xml"):
        r = t.session.get(t.url_of("getMeteringPoint", pointId=_point(t)), headers={"Authorization": f"Bearer {t.token()}", "Accept": accept})
        ctype = r.headers.get("content-type", "").lower().replace(" ", "")
        check(ctype.startswith(accept) and "charset=utf-8" in ctype, f"Content-Type {ctype}")


@case(3, "A3.2", "单位代码与十进制字符串 / unit codes and decimal strings", "read batches (raw JSON)",
      "units from the table; values are decimal strings (or empty); instants are canonical UTC", ACQ)
def a3_2(t: Target) -> None:
    start, end = _window(t)
    r = t.session.get(t.url_of("listMeasurementBatches", pointId=_point(t)), params=_hourly(start, end, 1),
                      headers={"Authorization": f"Bearer {t.token()}"})
    for item in r.json()["items"]:
        p = item["payload"]
        check(p["unit"] in spec.index().units, f"unit {p['unit']} not in the table")
        for v in p["values"]:
            check(isinstance(v, str), f"value {v!r} is not a decimal string")
        for name in ("start", "sealedAt"):
            check(isinstance(p[name], str) and p[name].endswith("Z"), f"{name} {p[name]!r} is not a canonical UTC instant")


@case(3, "A3.3", "质量标记为代码 / quality flags are codes", "read batches", "every flag is one of N F M S D C T B", ACQ)
def a3_3(t: Target) -> None:
    for b in _batches(t).items:
        check(all(f in QUALITY_FLAGS for f in b.payload.flags), "a flag outside the HJ 212 code list")


@case(4, "A4.1", "获取流程 / acquisition flow", "source info → points → batches → statistics", "each step answers 200", ACQ)
def a4_1(t: Target) -> None:
    t.acquisition().get_source_info()
    _batches(t)
    _statistics(t)


@case(4, "A4.2", "批次序号连续 / sequence numbers advance", "two consecutive pages", "sequence numbers strictly consecutive", ACQ)
def a4_2(t: Target) -> None:
    seqs = [b.payload.sequence_number for b in _batches(t, limit=3).items]
    check(seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"sequence numbers {seqs}")


@case(4, "A4.3", "未知计量点 / an unknown point", "GET /v1/acquisition/points/NO-SUCH-POINT", "404 problem+json", ACQ)
def a4_3(t: Target) -> None:
    try:
        t.acquisition().get_metering_point("NO-SUCH-POINT")
    except ApiError as exc:
        check(exc.status == 404, f"HTTP {exc.status}")
        return
    raise AssertionError("an unknown point was answered")


@case(5, "A5.1", "分页 / pagination",
      "list points with limit=1 and follow nextCursor; eight days of hourly batches (one a day) in pages of three and in one page",
      "points: no repeats or losses (one point: no nextCursor and the full listing agrees); batches: pages of at most "
      "three (fewer when the source holds under four batches, so there are two pages at least), nextCursor on every page "
      "but the last, together the same batches as the single page", ACQ)
def a5_1(t: Target) -> None:
    page = t.acquisition().list_metering_points(limit=1)
    check(len(page.items) == 1, "limit=1 not honoured")
    full = t.acquisition().list_metering_points(limit=100)
    if page.next_cursor is None:
        check(len(full.items) == 1, f"limit=1 gave no nextCursor, yet the source lists {len(full.items)} points")
    else:
        everything = list(t.acquisition().iter_metering_points(limit=1))
        check(len({p.point_id for p in everything}) == len(everything) >= 2, "pagination repeats or loses points")
    # Batches paginate whatever the number of points, so pagination is checked there too.
    _, end = _window(t)
    start = (dt.datetime.fromisoformat(end) - dt.timedelta(days=8)).isoformat()
    point = _point(t)
    client = t.acquisition()
    whole = client.list_measurement_batches(point, granularity="hour", from_=start, to=end, limit=100)
    expected = [b.payload.sequence_number for b in whole.items]
    if expected == [1]:  # its first batch alone: commissioned within the window
        raise NotApplicable(f"the source holds {len(expected)} hourly batch in the last eight days (commissioned "
                            "today?): paging needs two; inspect again from its second day")
    check(len(expected) >= 2, f"the source lists {len(expected)} hourly batch(es) in the last eight days, not its "
                              "first: a source older than that holds one an hour")
    # Pages of three; smaller for a source commissioned days ago, so that there are always two pages.
    size = min(3, len(expected) - 1)
    got, cursor = [], None
    for _ in range(len(expected) + 2):  # bounded: a cursor that never ends is a failure, not a hang
        part = client.list_measurement_batches(point, granularity="hour", from_=start, to=end, limit=size, cursor=cursor)
        check(len(part.items) <= size, f"limit={size} answered {len(part.items)} batches")
        got += [b.payload.sequence_number for b in part.items]
        cursor = part.next_cursor
        if cursor is None:
            break
        check(len(part.items) == size, "a page before the last is not full")
    check(got == expected, f"paged batches {got} differ from the single page {expected}")


@case(5, "A5.2", "参数错误 / invalid parameters", "batches with granularity=fortnight", "400 problem+json", ACQ)
def a5_2(t: Target) -> None:
    start, end = _window(t)
    r = t.session.get(t.url_of("listMeasurementBatches", pointId=_point(t)), params={"granularity": "fortnight", "from": start, "to": end},
                      headers={"Authorization": f"Bearer {t.token()}"})
    check(r.status_code == 400 and r.headers.get("content-type", "").startswith("application/problem+json"), f"HTTP {r.status_code}")


@case(5, "A5.3", "版本化路径 / versioned paths", "GET /v1/acquisition/source", "200 under /v1/", ACQ)
def a5_3(t: Target) -> None:
    check(bool(t.acquisition().get_source_info().source_id), "no source id")


@case(5, "A5.4", "批次分页 / batch pagination", "batches with limit=1, following nextCursor",
      "nextCursor and Link rel=next given; the pages join into consecutive batches (checked even with one point)", ACQ)
def a5_4(t: Target) -> None:
    start, end = _window(t)
    url = t.url_of("listMeasurementBatches", pointId=_point(t))
    params = _hourly(start, end, 1)
    r = t.session.get(url, params=params, headers={"Authorization": f"Bearer {t.token()}"})
    page = r.json()
    check(r.status_code == 200 and len(page.get("items", [])) == 1, f"limit=1 not honoured (HTTP {r.status_code})")
    if not page.get("nextCursor") and _young(t, start, end):
        raise NotApplicable(_TOO_YOUNG)
    check(bool(page.get("nextCursor")), "three days of hourly data in one page of limit=1: nextCursor expected")
    link = r.headers.get("link", "")
    check('rel="next"' in link and "cursor=" in link, f"no RFC 8288 Link rel=next: {link!r}")
    nxt = t.session.get(link[link.index("<") + 1:link.index(">")], headers={"Authorization": f"Bearer {t.token()}"})
    check(nxt.status_code == 200, f"following Link: HTTP {nxt.status_code}")
    seqs = [page["items"][0]["payload"]["sequenceNumber"], nxt.json()["items"][0]["payload"]["sequenceNumber"]]
    check(seqs[1] == seqs[0] + 1, f"pages do not join: sequence numbers {seqs}")


@case(5, "A5.5", "速率限制确实生效 / the rate limit is enforced",
      "opt-in (--rate-limit-probe N): cheap reads of the point list until RateLimit-Remaining reaches 0, one more; "
      "with client credentials, the same with a fresh token", "429 RATE_LIMITED with an integer Retry-After exactly "
      "when Remaining was 0; a fresh token of the same client is still limited", ACQ, last=True)
def a5_5(t: Target) -> None:
    probe_rate_limit(t, t.path_of("listMeteringPoints", "?limit=1"))


@case(6, "A6.1", "XML 应答 / XML answers", "GET batches with Accept: application/xml", "XML answered", ACQ)
def a6_1(t: Target) -> None:
    check(bool(_batches(t, Format.XML).items), "no XML batches")


@case(6, "A6.2", "不可接受的格式 / an unacceptable Accept", "GET points with Accept: text/csv", "406", ACQ)
def a6_2(t: Target) -> None:
    r = t.session.get(t.url_of("listMeteringPoints"), headers={"Authorization": f"Bearer {t.token()}", "Accept": "text/csv"})
    check(r.status_code == 406, f"HTTP {r.status_code}")


@case(6, "A6.3", "JSON 应答 / JSON answers", "GET points with Accept: application/json", "JSON answered", ACQ)
def a6_3(t: Target) -> None:
    r = t.session.get(t.url_of("listMeteringPoints"), headers={"Authorization": f"Bearer {t.token()}", "Accept": "application/json"})
    check(r.status_code == 200 and r.headers.get("content-type", "").startswith("application/json"), f"HTTP {r.status_code}")


@case(7, "A7.1", "无令牌 / no token", "GET points without Authorization", "401", ACQ)
def a7_1(t: Target) -> None:
    check(t.session.get(t.url_of("listMeteringPoints")).status_code == 401, "answered without a token")


@case(7, "A7.2", "无效令牌 / invalid token", "GET points with a made-up token", "401", ACQ)
def a7_2(t: Target) -> None:
    r = t.session.get(t.url_of("listMeteringPoints"), headers={"Authorization": "Bearer not-a-token-of-this-source"})
    check(r.status_code == 401, f"HTTP {r.status_code}")


@case(7, "A7.3", "令牌不出现在错误中 / no secret in errors", "a refused request", "the problem does not echo the token", ACQ)
def a7_3(t: Target) -> None:
    r = t.session.get(t.url_of("listMeteringPoints"), headers={"Authorization": "Bearer sekrit-canary-0123456789"})
    check("sekrit-canary" not in r.text, "the token is echoed")


@case(9, "A9.1", "批次已签名 / batches are signed", "read batches", "each signature verifies to the trust anchor", ACQ)
def a9_1(t: Target) -> None:
    for b in _batches(t).items:
        trust.verify_document(b, t.resolver())


@case(9, "A9.2", "批次链式连接（跨页） / batches are hash-chained across pages", "three pages of one batch each",
      "each batch verifies, links to its predecessor on the previous page and starts where it ended", ACQ)
def a9_2(t: Target) -> None:
    start, end = _window(t)
    verifier = BatchVerifier(t.resolver(), point_id=_point(t), granularity="hour")
    cursor, seen = None, 0
    for _ in range(3):
        page = t.acquisition().list_measurement_batches(_point(t), granularity="hour", from_=start, to=end, limit=1,
                                                         cursor=cursor)
        for b in page.items:
            try:
                verifier.verify(b.model_dump(mode="json", by_alias=True, exclude_none=True))
            except BatchError as exc:
                raise AssertionError(f"chain broken after {seen} batch(es): {exc}") from exc
            seen += 1
        cursor = page.next_cursor
        if not cursor:
            break
    if seen < 2 and _young(t, start, end):
        raise NotApplicable(_TOO_YOUNG)
    check(seen >= 2, "fewer than two batches to chain")


@case(9, "A9.3", "统计已签名 / statistics are signed", "daily statistics", "signature verifies", ACQ)
def a9_3(t: Target) -> None:
    stats = _statistics(t)
    trust.verify_document(stats, t.resolver())


@case(9, "A9.4", "机密模式（SM2 密钥交换 + SM4-GCM） / confidentiality mode (SM2 key exchange + SM4-GCM)",
      "handshake with the client certificate, one encrypted page, then a session confirmed with a wrong S_A",
      "S_B checks, the page decrypts and its batches verify, a wrong S_A gives 403 KEY_CONFIRMATION_FAILED", ACQ)
def a9_4(t: Target) -> None:
    import base64

    from ..acquisition import confidential as conf
    from ..trust import key_exchange as kx

    creds = t.confidential
    if creds is None:
        raise NotApplicable("needs a client certificate the source trusts for its confidentiality mode: "
                            "--confidential-key and --confidential-cert")
    start, end = _window(t)
    point, client = _point(t), t.acquisition()
    try:
        session = conf.open_session(client, creds, t.trust_anchors)
    except ApiError as exc:
        if exc.code == "CONFIDENTIALITY_UNAVAILABLE":
            raise NotApplicable("the source does not offer the confidentiality mode") from exc
        raise AssertionError(f"handshake refused: {exc.code} {exc.detail}") from exc
    except conf.ConfidentialityError as exc:
        raise AssertionError(f"handshake: {exc}") from exc
    verifier = BatchVerifier(t.resolver(), point_id=point, granularity="hour")
    query = _hourly(start, end, 2)
    try:
        page = next(conf.encrypted_pages(client, session, point, query))
        for b in page.get("items", []):
            verifier.verify(b)
    except conf.ConfidentialityError as exc:
        raise AssertionError(f"encrypted page: {exc}") from exc
    except BatchError as exc:
        raise AssertionError(f"decrypted batch does not verify: {exc}") from exc
    check(bool(page.get("items")), "the encrypted page holds no batch")
    _, ephemeral = kx.generate_ephemeral()
    offer = conf._post(client, "openConfidentialSession",
                       {"certificateChain": [base64.b64encode(c).decode() for c in creds.chain],
                        "userId": creds.user_id, "ephemeralKey": base64.b64encode(ephemeral).decode()}, creds.key)
    try:
        conf._post(client, "confirmConfidentialSession", {"confirmation": base64.b64encode(bytes(32)).decode()},
                   creds.key, sessionId=offer["sessionId"])
    except ApiError as exc:
        check(exc.code == "KEY_CONFIRMATION_FAILED", f"a wrong S_A gave {exc.code}, not KEY_CONFIRMATION_FAILED")
    else:
        raise AssertionError("a wrong S_A was accepted")
