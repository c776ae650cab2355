"""Spec-driven fuzzing (issue 12, item 10): schemathesis generates requests from the bundled
OpenAPI document — valid ones and, in negative mode, ones that break the schema — and sends them
over loopback to the reference platform and to the reference acquisition source, with real
authentication (an OAuth2 client-credentials token; the source's bearer token) and a real SM2
request signature over the exact bytes sent. Valid generated documents are re-signed with the
entity's registered key, so they pass signature checks and reach the rules and the store.

Every response must: not be a 5xx; use a documented status code and content type; carry the
documented headers; and conform to the response schema. Bounded: a fixed number of examples per
operation and mode (CEDX_FUZZ_EXAMPLES, default 8), derandomized so CI sees the same requests each
run (set CEDX_FUZZ_SEED to explore other ones), a timeout per request, no example database.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.transport.serialization import serialize_xml

from cedx import spec, trust
from cedx.inspect.local import ENTITY, ReferencePlatform
from cedx.runtime.serve import free_port

EXAMPLES = int(os.environ.get("CEDX_FUZZ_EXAMPLES", "8"))
SEED = os.environ.get("CEDX_FUZZ_SEED")
REQUEST_TIMEOUT = 5  # seconds; a request that takes longer is a finding (work without bound)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
SOURCE_TOKEN = "fuzz-token-0123456789"
CST = dt.timezone(dt.timedelta(hours=8))

BUNDLED = spec.bundled_spec()
SCHEMA = schemathesis.openapi.from_dict(BUNDLED)
OPERATIONS = {op.label: op for op in (r.ok() for r in SCHEMA.get_all_operations())}


def _labels(interface: str) -> list[str]:
    def of(label: str) -> str:
        path = label.split(" ", 1)[1]
        return "acquisition" if path.startswith("/v1/acquisition/") else "reporting"
    return sorted(label for label in OPERATIONS if of(label) == interface)


#: Findings not yet fixed: operation label → (modes affected, reason). The check runs and may pass
#: (strict=False); remove an entry once the owning branch has merged and the check passes.
KNOWN: dict[str, tuple[set[str], str]] = {}  # the acquisition findings (issue 12.11) are fixed


@schemathesis.serializer("application/xml")
def _cedx_xml(ctx, value):
    """XML bodies as the wire format defines them (cedx's codec: root element in namespace
    urn:cedx:1.0, specVersion as an attribute, wrapped arrays with named items). Schemathesis's
    own serializer follows the OpenAPI `xml` keywords alone, which do not give the namespace, so
    every generated XML body would stop at 400 MALFORMED_BODY (a finding for the spec). A value
    the codec cannot write (negative mode) goes out through schemathesis's serializer."""
    ref = BUNDLED["paths"][ctx.case.operation.path][ctx.case.method.lower()]["requestBody"]["content"]
    name = ref.get("application/xml", {}).get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
    try:
        return spec.xml_codec().dumps(name, value)
    except Exception:
        return serialize_xml(ctx.case, value)["data"]


#: Figures for the run's log: requests sent per target and how they were answered.
TALLY: dict[str, dict[str, int]] = {}


def _counting(session: requests.Session, target: str) -> requests.Session:
    tally = TALLY.setdefault(target, {"sent": 0, "2xx": 0, "4xx": 0, "5xx": 0, "other": 0})

    def count(response, *args, **kwargs):
        tally["sent"] += 1
        kind = f"{response.status_code // 100}xx"
        tally[kind if kind in tally else "other"] += 1
    session.hooks["response"].append(count)
    return session


@schemathesis.serializer("application/timestamp-query")
def _timestamp_query(ctx, value):
    """RFC 3161 request bodies (/tsa) are binary DER; a generated value goes out as its bytes,
    so the TSA sees garbage and must answer a 200 rejection, never a 5xx."""
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


class SignedBearer(requests.auth.AuthBase):
    """OAuth2 bearer token plus the request signature (SM2 over method, path, query, body)."""

    def __init__(self, token: str, key=None, prefix: str = "/v1/"):
        self.token, self.key, self.prefix = token, key, prefix

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        url = urlsplit(r.url)
        if not url.path.startswith(self.prefix):
            return r  # the token endpoint and the configuration document take no bearer token
        r.headers["Authorization"] = f"Bearer {self.token}"
        if self.key is not None:
            body = r.body or b""
            body = body.encode() if isinstance(body, str) else body
            r.headers.update(trust.sign_request(self.key, r.method, url.path, url.query, body))
        return r


XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_safe(node):
    """XML 1.0 cannot carry C0 controls or lone surrogates (see test_control_characters_...)."""
    if isinstance(node, str):
        return XML_INVALID.sub("\ufffd", node)
    if isinstance(node, dict):
        return {k: _xml_safe(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_xml_safe(v) for v in node]
    return node


def _resolve(schema: dict) -> dict:
    while isinstance(schema, dict) and "$ref" in schema:
        schema = BUNDLED["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _plausible(node, schema: dict) -> None:
    """Bring a generated valid document closer to one a real client sends: the entity's own
    credit code, and unit codes the field allows (`x-cedx-units` is not JSON Schema, so the
    generator picks any unit of the table). Numbers, strings and shapes stay as generated."""
    units = schema.get("x-cedx-units") if isinstance(schema, dict) else None
    schema = _resolve(schema)
    if isinstance(node, dict):
        if units and isinstance(node.get("unit"), str) and node["unit"] not in units:
            node["unit"] = units[0]
        props = schema.get("properties", {}) if isinstance(schema, dict) else {}
        for k, v in node.items():
            if k == "creditCode" and isinstance(v, str):
                node[k] = ENTITY
            elif k in props:
                _plausible(v, props[k])
    elif isinstance(node, list) and isinstance(schema, dict) and isinstance(schema.get("items"), dict):
        for v in node:
            _plausible(v, schema["items"])


def _resign(case, key, certificate) -> None:
    """A generated signed document gets a real signature by the entity's registered key (and the
    entity's credit code), so that it is judged on its content, not refused for its signature."""
    body = case.body
    if "xml" in (case.media_type or "") and isinstance(body, dict):
        case.body = body = _xml_safe(body)
    content = BUNDLED["paths"][case.operation.path][case.method.lower()].get("requestBody", {}).get("content", {})
    schema = next(iter(content.values()), {}).get("schema") if content else None
    if schema and isinstance(body, dict):
        _plausible(body, schema)
    if not (isinstance(body, dict) and isinstance(body.get("payload"), dict) and isinstance(body.get("signature"), dict)):
        return
    payload = dict(body["payload"])
    if "creditCode" in payload:
        payload["creditCode"] = ENTITY
    try:
        case.body = trust.sign_document(payload, key, certificate_chain=[certificate],
                                        envelope_fields={"specVersion": body.get("specVersion", "1.0")})
    except Exception:  # not signable as generated (e.g. not canonicalisable): send it as it is
        pass


def _fuzz(label: str, mode: str, base_url: str, session: requests.Session, prepare=None) -> int:
    op = OPERATIONS[label]
    sent = [0]

    @given(case=op.as_strategy(generation_mode=GenerationMode.NEGATIVE if mode == "negative" else GenerationMode.POSITIVE))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=SEED is None, print_blob=False,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case):
        if prepare:
            prepare(case, mode)
        sent[0] += 1
        response = case.call(base_url=base_url, session=session, timeout=REQUEST_TIMEOUT)
        case.validate_response(response, checks=CHECKS)

    if SEED is not None:
        run = seed(int(SEED))(run)
    run()
    return sent[0]


def _params(interface: str):
    out = []
    for label in _labels(interface):
        op = OPERATIONS[label]
        negatable = bool(list(op.iter_parameters())) or bool(op.body)
        for mode in ("positive", "negative") if negatable else ("positive",):
            marks = []
            if label in KNOWN and mode in KNOWN[label][0]:
                marks.append(pytest.mark.xfail(strict=False, reason=KNOWN[label][1]))
            out.append(pytest.param(label, mode, id=f"{label}-{mode}", marks=marks))
    return out


# --- the reference platform ------------------------------------------------------------------
@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with pytest.MonkeyPatch.context() as env:
        # The fuzzer fails authentication at the token endpoint on purpose, many times a minute;
        # a platform that then refuses the whole address (CEDX_AUTH_FAILURE_LIMIT) would answer
        # every later operation 429 and the fuzzing would go no deeper.
        env.setenv("CEDX_AUTH_FAILURE_LIMIT", "1000000")
        reference = ReferencePlatform(tmp_path_factory.mktemp("fuzz-platform"), successor=False, provision=False)
    with reference as target:
        token = target.request_token(target.client_id, target.client_secret)
        session = _counting(requests.Session(), "platform")
        session.auth = SignedBearer(token, target.key)
        yield target, session
        session.close()  # no keep-alive connection holds the server's shutdown
        target.session.close()


@pytest.mark.parametrize("label,mode", _params("reporting"))
def test_platform(platform, label, mode):
    target, session = platform

    def prepare(case, mode):
        if mode == "positive":
            if "creditCode" in (case.path_parameters or {}):
                case.path_parameters["creditCode"] = ENTITY  # reach the handlers, not only the refusal
            _resign(case, target.key, target.certificate)

    _fuzz(label, mode, target.url, session, prepare)


# --- the reference acquisition source (its own process: abandoned work dies with it) -----------
@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz-source")
    port = free_port()
    month = (dt.datetime.now(CST).replace(day=1) - dt.timedelta(days=40)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    code = ("import sys, datetime as dt, uvicorn\n"
            "from cedx.acquisition.app import create_source_app\n"
            "app = create_source_app('power', sys.argv[1], [sys.argv[2]], commissioned=dt.datetime.fromisoformat(sys.argv[3]))\n"
            "uvicorn.run(app, host='127.0.0.1', port=int(sys.argv[4]), log_level='warning')\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(root), SOURCE_TOKEN, month.isoformat(), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"the source did not start: {proc.stderr.read().decode()[-2000:]}") from None
            time.sleep(0.1)
    session = requests.Session()
    session.auth = SignedBearer(SOURCE_TOKEN)
    url = f"http://127.0.0.1:{port}"
    point = session.get(f"{url}/v1/acquisition/points?limit=1", timeout=30).json()["items"][0]["pointId"]
    # Warm up: a source may simulate (or seal) everything since commissioning on first demand;
    # that one-off cost is not what the per-request timeout is there to catch.
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    session.get(f"{url}/v1/acquisition/points/{point}/batches", timeout=300, params={
        "granularity": "minute", "from": (now - dt.timedelta(hours=2)).isoformat(), "to": now.isoformat()})
    _counting(session, "source")
    try:
        yield url, session, point
    finally:
        session.close()
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()  # a source that ignores SIGTERM (issue 12.11) still goes
            proc.wait()


@pytest.mark.parametrize("label,mode", _params("acquisition"))
def test_source(source, label, mode):
    url, session, point = source

    def prepare(case, mode):
        if mode == "positive" and "pointId" in (case.path_parameters or {}):
            case.path_parameters["pointId"] = point  # a real point: the series code runs on generated windows

    _fuzz(label, mode, url, session, prepare)


def test_every_operation_is_fuzzed():
    """A new operation in the spec is fuzzed without anyone remembering to add it."""
    assert len(_labels("reporting")) >= 10 and len(_labels("acquisition")) >= 5
    assert set(_labels("reporting")) | set(_labels("acquisition")) == set(OPERATIONS)


def test_control_characters_do_not_break_xml_answers(platform):
    """What the per-operation fuzzing cannot see: accepted in one format, unanswerable in the other
    (found by this fuzzing: a C0 control character was accepted in JSON and the XML answer was a 500)."""
    target, _session = platform
    report = target.report()
    report.entity_name = "控制字符\x0f测试"
    body = json.dumps(target.signed(report), ensure_ascii=False).encode()
    path = "/v1/reporting/monthly-reports"
    created = target.session.post(target.url + path, data=body, headers=target.headers(path, body))
    assert created.status_code in (201, 400, 422), created.text[:300]
    if created.status_code == 201:
        sid = created.json()["payload"]["submissionId"]
        as_xml = target.session.get(f"{target.url}{path}/{sid}", headers={"Authorization": f"Bearer {target.token()}",
                                                                          "Accept": "application/xml"})
        assert as_xml.status_code < 500, as_xml.text[:300]


def test_the_token_endpoints_429_is_as_documented(tmp_path):
    responses = BUNDLED["paths"]["/oauth/token"]["post"]["responses"]
    documented = _resolve_response(responses.get("429") or responses.get("4XX") or {})
    with ReferencePlatform(tmp_path, successor=False, provision=False) as target:
        for _ in range(50):  # wrong secrets until the platform limits failed authentication
            r = requests.post(f"{target.url}/oauth/token", timeout=30, data={
                "grant_type": "client_credentials", "client_id": target.client_id, "client_secret": "wrong"})
            if r.status_code == 429:
                break
    assert r.status_code == 429, "no limit on failed client authentication"
    media = r.headers.get("content-type", "").split(";")[0]
    assert media in documented.get("content", {}), f"429 answered as {media}; documented: {list(documented.get('content', {}))}"


def _resolve_response(response: dict) -> dict:
    while "$ref" in response:
        response = BUNDLED["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    return response
