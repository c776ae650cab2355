"""Run the inspection items against a target and write report.json and report.html."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from ..generated.constants import SPEC_VERSION
from ..progress import Progress
from . import acquisition_cases, reporting_cases  # noqa: F401  (registers the cases)
from .framework import ITEMS, REGISTRY, CaseResult, as_dict, execution_order, item_verdict, run_case
from .target import Target

VERDICTS = ("pass", "fail", "blocked", "not-applicable")
#: OAuth errors that mean "these credentials are refused" rather than "the endpoint is broken".
REFUSED = {"invalid_client", "unauthorized_client", "invalid_grant", "access_denied"}


def _no_answer(exc: requests.RequestException) -> str:
    """Why a request got no answer, in the system's words ("Connection refused", "Name or
    service not known") rather than urllib3's retry-pool text around them."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        why = re.search(r"certificate verify failed: ([^'\"(]+)", text)
        return (f"TLS: certificate verify failed: {why.group(1).strip()} (a certificate from a private CA: set "
                "REQUESTS_CA_BUNDLE to that CA's PEM file)" if why else f"TLS: {text}")
    errno = re.search(r"\[Errno -?\d+\] ([^'\")(]+)", text)
    if errno:
        return errno.group(1).strip()
    if isinstance(exc, requests.Timeout):
        return "no answer within 30 s"
    return f"{type(exc).__name__}: {text}"


def _nothing_here(target: Target, asked: list[str]) -> dict[str, Any]:
    """Every entry point answers 404: the interface is not at this address (a wrong base URL,
    or no implementation there), so nothing about an implementation can be judged."""
    return {"cause": "unreachable",
            "detail": f"no {target.interface} interface at {target.url}: {' and '.join(asked)} answered 404 "
                      "(is --target the implementation's base URL?)"}


def preflight(target: Target) -> dict[str, Any] | None:
    """Can the inspection say anything at all? None if so; otherwise why not: the target is
    unreachable, or it refuses the credentials the inspection body was given. Either makes
    the inspection inconclusive (not a failure of the implementation)."""
    def reach(method: str, url: str, **kw: Any) -> tuple[Any, dict[str, Any] | None]:
        try:
            return requests.request(method, url, timeout=30, **kw), None
        except requests.RequestException as exc:
            return None, {"cause": "unreachable", "detail": f"{method} {url}: {_no_answer(exc)}"[:500]}

    if target.interface == "acquisition" and (target.token_value or not target.client_id):
        resp, why = reach("GET", target.url_of("getSourceInfo"),
                          headers={"Authorization": f"Bearer {target.token_value or ''}", "Accept": "application/json"})
        if why:
            return why
        if resp.status_code in (401, 403):
            return {"cause": "credentials-refused",
                    "detail": f"the source answered {resp.status_code} to the bearer token given (--token-env)"}
        if resp.status_code == 404:
            return _nothing_here(target, [f"GET {target.url_of('getSourceInfo')}"])
        return None
    first = (target.url_of("getSourceInfo") if target.interface == "acquisition"
             else f"{target.url}/.well-known/cedx-configuration")
    found, why = reach("GET", first, headers={"Accept": "application/json"})
    if why:
        return why
    token: str | None = None
    clients = [("the inspector's client", target.client_id, target.client_secret)]
    if target.other:
        clients.append(("the second entity's client", target.other.client_id, target.other.client_secret))
    for who, client_id, secret in clients:
        form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        if target.default_scope:
            form["scope"] = target.default_scope
        resp, why = reach("POST", f"{target.url}/oauth/token", data=form)
        if why:
            return why
        if resp.status_code == 404 and found.status_code == 404:
            return _nothing_here(target, [f"GET {first}", f"POST {target.url}/oauth/token"])
        try:
            error = resp.json().get("error") if resp.status_code in (400, 401) else None
        except ValueError:
            error = None
        if resp.status_code == 401 or error in REFUSED:
            return {"cause": "credentials-refused",
                    "detail": f"the token endpoint refused {who} {client_id!r}: HTTP {resp.status_code} {error or ''}".rstrip()}
        if client_id == target.client_id and resp.status_code == 200:
            token = _access_token(resp)
    if target.interface == "reporting" and target.key is not None and token:
        return _signing_key_refused(target, token, reach)
    return None


def _access_token(resp: Any) -> str | None:
    try:
        token = resp.json().get("access_token")
    except (ValueError, AttributeError):
        return None
    return token if isinstance(token, str) else None


def _signing_key_refused(target: Target, token: str, reach: Callable[..., tuple[Any, dict[str, Any] | None]]
                         ) -> dict[str, Any] | None:
    """Is the entity's signing key (--key, --cert) one the platform accepts? A request signature
    is checked before the body is parsed (trust profile, order of checks: step 6 before 7), so
    an empty object, signed, answers 401 REQUEST_SIGNATURE_INVALID for a key the platform does
    not accept and 422 otherwise; nothing is stored either way."""
    path, body = target.path_of("submitMonthlyReport"), b"{}"
    resp, why = reach("POST", f"{target.url}{path}", data=body, headers=target.headers(path, body, token=token))
    if why:
        return why
    try:
        problem = resp.json() if resp.status_code == 401 else {}
    except ValueError:
        problem = {}
    if problem.get("code") == "REQUEST_SIGNATURE_INVALID":
        key_id = target.key.public_key().fingerprint() if target.key else "?"
        # Not a verdict on the platform either way: a key it does not hold (unregistered, revoked,
        # expired) and a faulty signature check look alike from here, so the reason names both.
        said = f"{problem.get('detail') or 'REQUEST_SIGNATURE_INVALID'}"[:400]
        return {"cause": "credentials-refused",
                "detail": f"the platform refused the entity's signing key {key_id} (--key, --cert): {said}; "
                          "if that key is registered, valid and not revoked, the platform's request-signature "
                          "check is at fault (item 9)"}
    return None


def run(target: Target, items: list[int] | None = None,
        progress: Callable[[str], object] | None = None) -> dict[str, Any]:
    cases = [c for c in REGISTRY if target.interface in c.interfaces and (not items or c.item in items)]
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    why = preflight(target)
    if why:
        if progress:
            progress(f"INCONCLUSIVE — {why['cause']}: {why['detail']}")
        return {
            "inspector": "cedx inspect", "specVersion": SPEC_VERSION,
            "target": {"url": target.url, "interface": target.interface}, "startedAt": started,
            "result": "inconclusive", "inconclusive": why,
            "summary": dict.fromkeys(VERDICTS, 0),
            "items": [{"item": n, "zh": zh, "en": en, "result": "inconclusive", "reason": why["detail"], "cases": []}
                      for n, (zh, en) in ITEMS.items() if not items or n in items],
        }
    by_case: dict[str, CaseResult] = {}
    failed_steps: dict[str, str] = {}
    for i, c in enumerate(execution_order(cases), 1):
        r = run_case(c, target, failed_steps)
        by_case[c.case_id] = r
        if progress:
            progress(f"[{i}/{len(cases)}] {c.case_id} {r.verdict.upper():15} {c.title}" + (f" — {r.reason}" if r.reason else ""))
    results = [by_case[c.case_id] for c in cases]  # reported in catalogue order
    report_items = []
    for number, (zh, en) in ITEMS.items():
        if items and number not in items:
            continue
        mine = [r for r in results if r.item == number]
        if not mine:
            report_items.append({"item": number, "zh": zh, "en": en, "result": "not-applicable",
                                 "reason": f"no case of this item applies to the {target.interface} interface", "cases": []})
            continue
        report_items.append({"item": number, "zh": zh, "en": en, "result": item_verdict(mine),
                             "cases": [as_dict(r) for r in mine]})
    passed = all(i["result"] not in ("fail", "blocked") for i in report_items)
    return {
        "inspector": "cedx inspect", "specVersion": SPEC_VERSION,
        "target": {"url": target.url, "interface": target.interface},
        "startedAt": started,
        "result": "pass" if passed else "fail",
        "summary": {v: sum(1 for r in results if r.verdict == v) for v in VERDICTS},
        "items": report_items,
    }


def write(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    (out / "report.html").write_text(render_html(report), encoding="utf-8")


VERDICT_ZH = {"pass": "合格 / pass", "fail": "不合格 / fail", "not-applicable": "不适用 / not applicable",
              "blocked": "受阻 / blocked", "inconclusive": "无法判定 / inconclusive"}
CAUSE = {"unreachable": "被检对象不可达 / the target is unreachable",
         "credentials-refused": "凭据被拒绝 / the credentials were refused"}


def render_html(report: dict[str, Any]) -> str:
    e = html.escape
    rows, sections = [], []
    for item in report["items"]:
        rows.append(f"<tr class='{item['result']}'><td>{item['item']}</td><td>{e(item['zh'])}<br><span class=en>{e(item['en'])}</span></td>"
                    f"<td>{VERDICT_ZH[item['result']]}</td><td>{len(item['cases'])}</td></tr>")
        cases = []
        for c in item["cases"]:
            ex = "".join(
                f"<details><summary>{e(x['method'])} {e(x['url'])} → {x['status']}</summary>"
                f"<pre>{e(json.dumps(x['request_headers'], ensure_ascii=False))}\n\n{e(x['request_body'])}</pre>"
                f"<pre>{e(json.dumps(x['response_headers'], ensure_ascii=False))}\n\n{e(x['response_body'])}</pre></details>"
                for x in c["exchanges"])
            cases.append(f"<div class='case {c['verdict']}'><h4>{e(c['case_id'])} {e(c['title'])} — {VERDICT_ZH[c['verdict']]}</h4>"
                         f"<p>发送 / sends: {e(c['sends'])}<br>合格条件 / passes when: {e(c['passes_when'])}"
                         + (f"<br><b>理由 / reason:</b> {e(c['reason'])}" if c["reason"] else "") + f"</p>{ex}</div>")
        sections.append(f"<h3 id='item{item['item']}'>{item['item']}. {e(item['zh'])} / {e(item['en'])} — {VERDICT_ZH[item['result']]}</h3>"
                        + (f"<p>{e(item.get('reason', ''))}</p>" if item.get("reason") else "") + "".join(cases))
    s = report["summary"]
    why = ""
    if report.get("inconclusive"):
        cause = report["inconclusive"]
        why = f"<p><b>{e(CAUSE.get(cause['cause'], cause['cause']))}</b>: {e(cause['detail'])}</p>"
    if s.get("blocked"):
        why += ("<p>“受阻”用例因先决步骤在另一用例中失败而无法执行；请先处理该用例。 / A blocked case could not run because a "
                "prerequisite failed in the case it names; fix that case first.</p>")
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>数据接口检验报告 / Data interface inspection report</title>
<style>body{{font-family:"Noto Sans CJK SC","Microsoft YaHei",system-ui,sans-serif;margin:24px 40px;color:#1d2330}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ccd;padding:4px 10px}} .en{{color:#5a6272}}
tr.pass td:nth-child(3),.case.pass h4{{color:#0b6e4f}} tr.fail td:nth-child(3),.case.fail h4{{color:#b00020}}
tr.blocked td:nth-child(3),.case.blocked h4,tr.inconclusive td:nth-child(3){{color:#8a5a00}}
pre{{background:#f7f7f9;border:1px solid #e1e4ea;padding:8px;white-space:pre-wrap;font-size:11px;max-height:300px;overflow:auto}}
.case{{border-left:3px solid #ccd;padding-left:10px;margin:10px 0}} @media print{{pre{{max-height:none}}}}</style></head>
<body><h1>数据接口检验报告<br><span class=en>Data interface inspection report</span></h1>
<p>被检对象 / target: <code>{e(report['target']['url'])}</code> · 接口 / interface: {e(report['target']['interface'])} ·
时间 / time: {e(report['startedAt'])} · 工具 / tool: cedx inspect (spec {e(report['specVersion'])})</p>
<p><b>结论 / result: {VERDICT_ZH[report['result']]}</b> — 用例 / cases: {s['pass']} 合格 / pass, {s['fail']} 不合格 / fail,
{s['blocked']} 受阻 / blocked, {s['not-applicable']} 不适用 / n/a</p>{why}
<table><tr><th>项 / item</th><th>检验项目 / inspection item</th><th>结论 / result</th><th>用例数 / cases</th></tr>{''.join(rows)}</table>
{''.join(sections)}
<p class=en>机密信息（令牌、密钥、客户端密码、签名头）已隐去 / secrets (tokens, keys, client secrets, signature headers) are redacted.</p>
</body></html>"""


_BAR: Progress | None = None
_STEP = re.compile(r"^\[(\d+)/(\d+)\] (\S+)")


def main_progress(line: str) -> None:
    """One line per case on standard error; on a terminal also a bar of cases done (cedx.progress)."""
    global _BAR
    step = _STEP.match(line)
    if step and (_BAR is None or _BAR.total != int(step.group(2)) or int(step.group(1)) == 1):
        _BAR = Progress(int(step.group(2)), "inspection")
    if _BAR is None:
        print(line, file=sys.stderr, flush=True)
        return
    _BAR.write(line)
    if step:
        _BAR.advance(note=step.group(3))
        if _BAR.done >= (_BAR.total or 0):
            _BAR.close()
            _BAR = None
