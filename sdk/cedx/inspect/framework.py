"""Cases, verdicts, evidence: what every inspection case records.

Each case sends real requests through a recording session; every exchange (request and
response, bodies truncated, secrets redacted) is evidence attached to the case's verdict.
"""

from __future__ import annotations

import json
import re
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import requests

ITEMS = {
    1: ("数据模型", "Data model"),
    2: ("数据一致性", "Data consistency"),
    3: ("机器可读", "Machine-readability"),
    4: ("交换流程", "Exchange flow"),
    5: ("接口调用规范", "Invocation rules"),
    6: ("数据交换格式", "Exchange formats"),
    7: ("接口授权", "Authorization"),
    8: ("配置地址变更", "Configuration-address change"),
    9: ("数据可信", "Data trust"),
}
#: cedx's reading of what each item covers (the specification's chapter on inspection).
ITEM_SCOPE = {
    1: "每个返回或接受的文档符合 JSON Schema 与 XSD / every document returned or accepted conforms to the schema and the XSD",
    2: "跨字段规则成立；同一资源的 JSON 与 XML 等价；报告与所引用的签名采集批次一致 / cross-field rules hold; JSON and XML forms of a resource are equivalent; a report agrees with the signed acquisition batches it references",
    3: "声明内容类型与字符集；用代码而非自由文本；单位代码取自单位表；时间带偏移 / declared content types and charsets, codes, unit codes, offsets",
    4: "令牌→报送→回执→状态→更正/补报，按规定的顺序与状态 / token → submit → receipt → status → correction / supplementary, in order and state",
    5: "版本化路径、problem+json 错误码、分页、幂等、速率限制 / versioned paths, problem+json codes, pagination, idempotency, rate limits",
    6: "JSON 与 XML 均可收发，内容协商，406/415 / JSON and XML in and out, content negotiation, 406/415",
    7: "缺失、无效或过期令牌、权限范围不足、他人数据均被拒绝 / missing, invalid or expired tokens, wrong scope, other entities' data refused",
    8: "签名配置文档有效，变更通知可验证，篡改可发现 / the signed configuration document is valid, change notices verify, tampering shows",
    9: "篡改文档与错误签名被拒绝，回执签名并加盖时间戳，证书链有效，批次链式连接 / tampering and bad signatures refused, receipts signed and time-stamped, chains valid, batches chained",
}
SECRET_HEADERS = {"authorization", "x-cedx-signature", "cookie", "set-cookie"}
SECRET_FIELDS = re.compile(r'("?(client_secret|access_token|password)"?\s*[:=]\s*"?)([^"&\s,}]+)', re.I)
MAX_BODY = 2000
_T = TypeVar("_T")


class CaseFailed(AssertionError):
    """The implementation did not behave as the specification requires."""


class NotApplicable(Exception):
    """The case does not apply to this implementation (with the reason)."""


class PrerequisiteFailed(Exception):
    """A step that many cases need (a token, an accepted submission, a metering point) failed.

    The first case in which it fails is reported as failing; every later case that needs the
    same step is reported as "blocked by" that case, so one fault points at one place."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name}: {reason}")
        self.name, self.reason = name, reason


#: Prerequisite steps and the case that exercises each first (it runs before the others, so a
#: broken step is reported against the item it belongs to).
PREREQUISITES = {
    "reachable": None,     # any transport failure (connection refused, timeout)
    "token": "4.1",        # a token for the inspector's client
    "submit": "4.1",       # a valid report is accepted with a receipt
    "configuration": "8.1",  # the platform serves its configuration document
    "point": "A4.1",       # the source lists a metering point
    "batches": "A4.1",     # the source answers batches for the last three days
    "statistics": "A4.1",  # the source answers daily statistics
}


@contextmanager
def prerequisite(name: str) -> Iterator[None]:
    """Run a step many cases rely on; its failure becomes a PrerequisiteFailed."""
    try:
        yield
    except (NotApplicable, PrerequisiteFailed):
        raise
    except requests.ConnectionError:
        raise
    except Exception as exc:  # whatever went wrong in the step, it is the step's failure
        raise PrerequisiteFailed(name, str(exc)[:500] or type(exc).__name__) from exc


def check(condition: bool, reason: str) -> None:
    if not condition:
        raise CaseFailed(reason)


def present(value: _T | None, reason: str) -> _T:
    """``value``, or the case fails with ``reason`` when it is missing (None)."""
    if value is None:
        raise CaseFailed(reason)
    return value


def redact(text: str) -> str:
    return SECRET_FIELDS.sub(lambda m: m.group(1) + "***", text)


@dataclass
class Exchange:
    method: str
    url: str
    request_headers: dict[str, Any]
    request_body: str
    status: int | None
    response_headers: dict[str, Any]
    response_body: str
    elapsed_ms: float


@dataclass
class CaseResult:
    item: int
    case_id: str
    title: str
    sends: str
    passes_when: str
    verdict: str = "pass"          # pass | fail | blocked | not-applicable
    blocked_by: str | None = None  # the case whose failure made this case impossible
    reason: str = ""
    exchanges: list[Exchange] = field(default_factory=list)


@dataclass(frozen=True)
class Case:
    item: int
    case_id: str
    title: str         # "zh / en"
    sends: str         # what the case sends
    passes_when: str   # what passes
    run: Callable[[Any], None]
    interfaces: tuple[str, ...]
    last: bool = False  # runs after every other case (it exhausts a rate limit)


REGISTRY: list[Case] = []


def case(item: int, case_id: str, title: str, sends: str, passes_when: str, interfaces: Iterable[str] = ("reporting",),
         last: bool = False) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    def wrap(fn: Callable[[Any], None]) -> Callable[[Any], None]:
        REGISTRY.append(Case(item, case_id, title, sends, passes_when, fn, tuple(interfaces), last))
        return fn
    return wrap


def execution_order(cases: list[Case]) -> list[Case]:
    """Cases that own a prerequisite first, cases marked last at the end, otherwise as registered."""
    owners = {v for v in PREREQUISITES.values() if v}
    return sorted(cases, key=lambda c: 0 if c.case_id in owners else 2 if c.last else 1)


class RecordingSession(requests.Session):
    """A requests session that keeps the exchanges of the case being run.

    It is polite: a 429 with a Retry-After of at most a minute is waited out and the request
    sent again (recorded both times), within a budget for the whole run, so that a platform's
    rate limits (or its limit on failed authentications) do not turn into failures of unrelated
    cases. The rate-limit probe switches this off (``polite = False``)."""

    MAX_RETRY_AFTER = 60

    def __init__(self, wait_budget: float = 180):
        super().__init__()
        self.exchanges: list[Exchange] = []
        self.polite = True
        self.wait_budget = wait_budget

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        resp = self._recorded(method, url, **kwargs)
        retry = resp.headers.get("Retry-After", "") if resp.status_code == 429 else ""
        if self.polite and retry.isdigit() and int(retry) <= min(self.MAX_RETRY_AFTER, self.wait_budget):
            self.wait_budget -= int(retry) + 0.5
            time.sleep(int(retry) + 0.5)
            resp = self._recorded(method, url, **kwargs)
        return resp

    def _recorded(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        started = time.perf_counter()
        resp = None
        try:
            resp = super().request(method, url, **kwargs)
            return resp
        finally:
            req_headers = {k: ("***" if k.lower() in SECRET_HEADERS else v) for k, v in (kwargs.get("headers") or {}).items()}
            body = kwargs.get("data") or kwargs.get("json") or b""
            if isinstance(body, dict):
                body = json.dumps(body)
            if isinstance(body, bytes):
                body = body[:MAX_BODY].decode("utf-8", "replace")
            self.exchanges.append(Exchange(
                method, url, req_headers, redact(str(body)[:MAX_BODY]),
                resp.status_code if resp is not None else None,
                {k: ("***" if k.lower() in SECRET_HEADERS else v) for k, v in (resp.headers.items() if resp is not None else [])},
                redact(resp.text[:MAX_BODY]) if resp is not None else "(no response)",
                round((time.perf_counter() - started) * 1000, 1)))


def run_case(c: Case, target: Any, failed_steps: dict[str, str] | None = None) -> CaseResult:
    """Run one case. ``failed_steps`` maps a prerequisite to the case where it first failed;
    a later failure of the same step marks this case blocked by that one."""
    failed_steps = {} if failed_steps is None else failed_steps
    result = CaseResult(c.item, c.case_id, c.title, c.sends, c.passes_when)
    target.session.exchanges = []

    def step_failed(name: str, reason: str) -> None:
        if name in failed_steps:
            result.verdict, result.blocked_by = "blocked", failed_steps[name]
            result.reason = f"blocked by {failed_steps[name]} (prerequisite {name!r} failed there): {reason}"[:600]
        else:
            failed_steps[name] = c.case_id
            result.verdict, result.reason = "fail", f"prerequisite {name!r} failed: {reason}"

    try:
        c.run(target)
    except NotApplicable as exc:
        result.verdict, result.reason = "not-applicable", str(exc)
    except PrerequisiteFailed as exc:
        step_failed(exc.name, exc.reason)
    except CaseFailed as exc:
        result.verdict, result.reason = "fail", str(exc)
    except (requests.ConnectionError, requests.Timeout) as exc:
        step_failed("reachable", f"transport error: {exc}")
    except requests.RequestException as exc:
        result.verdict, result.reason = "fail", f"transport error: {exc}"
    except Exception as exc:  # a malformed answer the case could not even read is a failure
        result.verdict = "fail"
        result.reason = f"{type(exc).__name__}: {exc}"[:500]
        result.exchanges.append(Exchange("-", "-", {}, "", None, {}, traceback.format_exc()[-1500:], 0))
    result.exchanges = list(target.session.exchanges) + result.exchanges
    return result


def item_verdict(results: list[CaseResult]) -> str:
    if any(r.verdict == "fail" for r in results):
        return "fail"
    if any(r.verdict == "blocked" for r in results):
        return "blocked"
    if results and all(r.verdict == "not-applicable" for r in results):
        return "not-applicable"
    return "pass"


def as_dict(result: CaseResult) -> dict[str, Any]:
    return asdict(result)
