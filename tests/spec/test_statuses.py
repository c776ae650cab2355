"""Each operation lists the error statuses it can return, and no others (issue 11 §4)."""

import yaml

from .conftest import REPO

SIGNATURE_HEADERS = {"X-Cedx-Timestamp", "X-Cedx-Nonce", "X-Cedx-Key-Id", "X-Cedx-Signature"}


def _params(doc: dict, item: dict, op: dict) -> list[dict]:
    out = []
    for p in list(item.get("parameters", [])) + list(op.get("parameters", [])):
        if "$ref" in p:
            p = doc["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]
        out.append(p)
    return out


def expected_errors(doc: dict, item: dict, op: dict) -> set[int]:
    """What the server runtime and the reference implementations can answer, by construction:

    400 a query or header parameter (invalid or missing) or a body (malformed; OAuth errors)
    401 a token (or client authentication on /oauth/token)
    403 a scope; ENTITY_FORBIDDEN where a path or document names another entity's credit code
    404 a path parameter (an unknown resource, an invalid identifier, or another entity's
        submission, whose existence is not disclosed)
    406 always (Accept negotiation)
    409 idempotent writes (IDEMPOTENCY_CONFLICT, SUBMISSION_CONFLICT), registration (ENTITY_EXISTS)
        and operations on a confidential session (SESSION_STATE_CONFLICT: not yet, or already, confirmed)
    413 415 422 a request body (size; media type; schema, rules, signature, certificate) —
        /oauth/token answers 415 and 422 as RFC 6749 invalid_request (400)
    429 always (rate limit)
    """
    params = _params(doc, item, op)
    body = "requestBody" in op
    secured = op.get("security", doc.get("security")) != []
    form = body and "application/x-www-form-urlencoded" in op["requestBody"]["content"]
    out = {406, 429}
    if body or any(p["in"] in ("query", "header") and p["name"] not in SIGNATURE_HEADERS for p in params):
        out.add(400)
    if secured or form:
        out.add(401)
    if secured:
        out.add(403)
    if any(p["in"] == "path" for p in params):
        out.add(404)
    in_session = any(p["in"] == "path" and p["name"] == "sessionId" for p in params)
    if op.get("x-cedx-idempotent") or op.get("operationId") == "registerEntity" or in_session:
        out.add(409)
    if body:
        out.add(413)
        if not form:
            out.update({415, 422})
    return out


def test_every_operation_lists_exactly_the_errors_it_can_return():
    doc = yaml.safe_load((REPO / "spec/openapi.yaml").read_text(encoding="utf-8"))
    wrong = {}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in ("get", "put", "post", "delete", "patch") or op.get("x-cedx-protocol"):
                continue  # /tsa: RFC 3161 answers its errors inside a 200 TimeStampResp
            declared = {int(s) for s in op["responses"] if s.startswith("4")}
            expected = expected_errors(doc, item, op)
            if declared != expected:
                wrong[f"{method.upper()} {path}"] = (sorted(declared - expected), sorted(expected - declared))
    assert not wrong, f"(listed but impossible, missing): {wrong}"
