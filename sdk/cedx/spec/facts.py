"""Facts of the spec that code needs as plain values — the spec version, the industries and
their report sections, the error-code statuses, the operations — read from the spec, never
typed by hand. The generator writes the same facts as ``cedx.generated.constants`` (for code
above the generated layer); the layers below it (cedx.spec, cedx.runtime) read them from the
loaded spec (``cedx.spec.index().facts``), so a spec revision cannot leave either stale."""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .schema import SchemaIndex

#: the schema whose optional properties are the industry sections (rule R-IND-001)
SECTION_SCHEMA = "MonthlyReport"


def camel(code: str) -> str:
    """coal_mining -> coalMining: an industry code's section name in the documents."""
    head, *rest = code.split("_")
    return head + "".join(part.title() for part in rest)


def snake(name: str) -> str:
    """submitMonthlyReport -> submit_monthly_report: a Python name (operations, parameters)."""
    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).replace("-", "_").lower()
    return s + "_" if keyword.iskeyword(s) else s


def submission_period(payload: dict[str, Any]) -> str:
    """A submitted report's period, as its receipt and status name it (``Receipt.period``): the
    month of a monthly report, the year of an annual one. The platform and the client's check
    of a receipt both use this."""
    return str(payload.get("period") or payload["year"])


@dataclass(frozen=True)
class SpecFacts:
    spec_version: str
    namespace: str
    industries: tuple[str, ...]              # Industry codes, in the spec's order
    industry_sections: dict[str, str]        # section property -> industry code
    error_status: dict[str, int]             # error code -> HTTP status
    document_types: tuple[str, ...]          # DocumentType values (what the platform stores)
    submit_operations: dict[str, str]        # document type -> operationId that submits it
    document_operations: dict[str, str]      # operationId -> document type it submits or reads
    operations: dict[str, str]               # operationId -> Python method name
    quality_flags: str = ""                  # QualityFlag codes, in the spec's order
    flags_carrying_value: str = ""           # x-cedx-flag-rules value: required (R-ACQ-001)
    flags_without_value: str = ""            # value: forbidden (R-ACQ-005)
    flags_counting_as_valid: str = ""        # counts: valid — enter means, totals and coverage
    flags_stopped: str = ""                  # counts: zero — a stopped unit


def _json_ref(node: dict[str, Any]) -> str | None:
    schema = node.get("content", {}).get("application/json", {}).get("schema", {})
    ref = schema.get("$ref", "")
    return ref.rsplit("/", 1)[-1] or None


def _body_ref(op: dict[str, Any]) -> str | None:
    return _json_ref(op.get("requestBody", {}))


def _answer_ref(op: dict[str, Any]) -> str | None:
    """The schema of the operation's 200 answer (JSON), when it is declared in place."""
    return _json_ref(op.get("responses", {}).get("200", {}))


FLAG_VALUE = ("required", "optional", "forbidden")
FLAG_COUNTS = ("valid", "zero", "gap")


def _flag_facts(schema: dict[str, Any]) -> dict[str, str]:
    """The QualityFlag table: each code's ``value`` (required / optional / forbidden) and ``counts``
    (valid / zero / gap), as strings of flag codes in the enum's order."""
    codes = [str(c) for c in schema.get("enum", ())]
    rules = schema.get("x-cedx-flag-rules", {})
    if codes and set(rules) != set(codes):
        raise ValueError(f"QualityFlag x-cedx-flag-rules must describe exactly the codes {codes}, not {sorted(rules)}")
    for code, rule in rules.items():
        if set(rule) != {"value", "counts"} or rule["value"] not in FLAG_VALUE or rule["counts"] not in FLAG_COUNTS:
            raise ValueError(f"QualityFlag x-cedx-flag-rules.{code}: needs value in {FLAG_VALUE} and counts in {FLAG_COUNTS}")

    def where(key: str, value: str) -> str:
        return "".join(c for c in codes if rules[c][key] == value)
    if not codes:
        return {}
    return {"quality_flags": "".join(codes), "flags_carrying_value": where("value", "required"),
            "flags_without_value": where("value", "forbidden"), "flags_counting_as_valid": where("counts", "valid"),
            "flags_stopped": where("counts", "zero")}


def spec_facts(index: SchemaIndex) -> SpecFacts:
    schemas = index.schemas
    # A fact the spec does not state (a test spec without industries, say) is empty.
    versions = schemas.get("SpecVersion", {}).get("enum")
    if versions and index.spec_version not in versions:
        raise ValueError(f"x-cedx-spec-version {index.spec_version} is not in SpecVersion's enum")
    industries = tuple(schemas.get("Industry", {}).get("enum", ()))
    section_props = schemas.get(SECTION_SCHEMA, {}).get("properties", {})
    sections = {}
    for code in industries:
        if camel(code) not in section_props:
            raise ValueError(f"industry {code!r} has no section {camel(code)!r} in {SECTION_SCHEMA}")
        sections[camel(code)] = code
    document_types = tuple(schemas.get("DocumentType", {}).get("enum", ()))
    operations, submits, documents = {}, {}, {}
    payload_of = {name: index.ref_name(s.get("properties", {}).get("payload", {}))
                  for name, s in schemas.items() if "x-cedx-signed" in s}
    for item in index.spec.get("paths", {}).values():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete") or "operationId" not in op:
                continue
            operations[op["operationId"]] = snake(op["operationId"])
            body, answer = _body_ref(op), _answer_ref(op)
            for doc_type in document_types:
                payload = camel(doc_type)[0].upper() + camel(doc_type)[1:]   # monthly_report -> MonthlyReport
                if method == "post" and body and payload_of.get(body) == payload:
                    submits[doc_type] = op["operationId"]
                    documents[op["operationId"]] = doc_type
                elif method == "get" and answer and payload_of.get(answer) == payload:
                    documents[op["operationId"]] = doc_type
    missing = set(document_types) - set(submits)
    if missing:
        raise ValueError(f"no operation submits document type(s) {sorted(missing)}")
    return SpecFacts(
        spec_version=index.spec_version,
        namespace=index.namespace,
        industries=industries,
        industry_sections=sections,
        error_status={code: int(entry["status"]) for code, entry in index.error_codes.items()},
        document_types=document_types,
        submit_operations=submits,
        document_operations=dict(sorted(documents.items())),
        operations=dict(sorted(operations.items())),
        **_flag_facts(schemas.get("QualityFlag", {})),
    )


__all__ = ["SECTION_SCHEMA", "SpecFacts", "camel", "snake", "spec_facts", "submission_period"]
