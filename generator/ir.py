"""Step: the typed intermediate representation of operations (what client, server and docs need).

Everything the templates use is decided here, once, from the bundled spec: names, parameters,
body and response schemas, media types, security, and the cedx extensions (signed documents,
request signatures, idempotency, pagination).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cedx.spec.facts import snake
from cedx.spec.schema import SchemaIndex

METHODS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True)
class Param:
    name: str            # wire name
    python_name: str
    location: str        # path | query | header
    required: bool
    schema_ref: str | None
    python_type: str
    description: str
    inline_schema: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        return {"int": "integer", "bool": "boolean"}.get(self.python_type, "string")


@dataclass(frozen=True)
class Response:
    status: str
    schema_ref: str | None
    media_types: tuple[str, ...]
    description: str


@dataclass
class Operation:
    operation_id: str
    python_name: str
    method: str
    path: str
    interface: str                       # common | reporting | acquisition
    summary: str
    description: str
    params: list[Param] = field(default_factory=list)
    body_ref: str | None = None
    body_media: tuple[str, ...] = ()
    body_required: bool = False
    success: Response | None = None
    errors: list[Response] = field(default_factory=list)
    scopes: tuple[str, ...] = ()
    request_signature: str | None = None  # required | optional | None
    idempotent: bool = False
    paginated: bool = False
    signed_request: dict[str, Any] | None = None    # x-cedx-signed of the body schema
    signed_response: dict[str, Any] | None = None   # x-cedx-signed of the success schema
    examples: dict[tuple[str, str], Any] = field(default_factory=dict)  # (direction, media) -> {name: value}

    @property
    def path_params(self) -> list[Param]:
        return [p for p in self.params if p.location == "path"]

    @property
    def query_params(self) -> list[Param]:
        return [p for p in self.params if p.location == "query"]

    @property
    def header_params(self) -> list[Param]:
        return [p for p in self.params if p.location == "header" and not p.name.startswith("X-Cedx-")]


def _python_type(index: SchemaIndex, schema: dict[str, Any]) -> str:
    kind = index.kind(schema)
    return {"integer": "int", "boolean": "bool"}.get(kind, "str")


def _param(index: SchemaIndex, raw: dict[str, Any]) -> Param:
    if "$ref" in raw:
        raw = index.spec["components"]["parameters"][raw["$ref"].rsplit("/", 1)[1]]
    schema = raw.get("schema", {})
    return Param(
        name=raw["name"],
        python_name=snake(raw["name"]),
        location=raw["in"],
        required=bool(raw.get("required")),
        schema_ref=index.ref_name(schema),
        python_type=_python_type(index, schema),
        description=raw.get("description", ""),
        inline_schema=None if "$ref" in schema else schema,
    )


def _response(index: SchemaIndex, status: str, raw: dict[str, Any]) -> Response:
    if "$ref" in raw:
        raw = index.spec["components"]["responses"][raw["$ref"].rsplit("/", 1)[1]]
    content = raw.get("content", {})
    ref = None
    for media in content.values():
        ref = index.ref_name(media.get("schema", {})) or ref
    return Response(status, ref, tuple(content), raw.get("description", ""))


def build_ir(index: SchemaIndex) -> list[Operation]:
    ops = []
    for path, item in index.spec["paths"].items():
        shared = item.get("parameters", [])
        for method in METHODS:
            raw = item.get(method)
            if raw is None or raw.get("x-cedx-protocol"):
                continue  # wire format of another standard (RFC 3161 /tsa): served by hand, not generated
            op = Operation(
                operation_id=raw["operationId"],
                python_name=snake(raw["operationId"]),
                method=method.upper(),
                path=path,
                interface=raw["tags"][0],
                summary=raw.get("summary", ""),
                description=raw.get("description", "").strip(),
                params=[_param(index, p) for p in shared + raw.get("parameters", [])],
                scopes=tuple(s for req in raw.get("security", index.spec.get("security", [])) for s in req.get("oauth2", [])),
                request_signature=raw.get("x-cedx-request-signature"),
                idempotent=bool(raw.get("x-cedx-idempotent")),
                paginated=bool(raw.get("x-cedx-paginated")),
            )
            body = raw.get("requestBody")
            if body:
                op.body_media = tuple(body["content"])
                op.body_required = bool(body.get("required"))
                for media, content in body["content"].items():
                    op.body_ref = index.ref_name(content["schema"]) or op.body_ref
                    op.examples[("request", media)] = {k: v.get("x-cedx-serialized", v.get("value"))
                                                      for k, v in content.get("examples", {}).items()}
                if op.body_ref:
                    op.signed_request = index.schemas[op.body_ref].get("x-cedx-signed")
            for status, resp in raw["responses"].items():
                r = _response(index, status, resp)
                if status.startswith("2") and op.success is None:
                    op.success = r
                    content = (resp.get("content") or {})
                    for media, c in content.items():
                        op.examples[("response", media)] = {k: v.get("x-cedx-serialized", v.get("value"))
                                                           for k, v in c.get("examples", {}).items()}
                    if r.schema_ref:
                        op.signed_response = index.schemas[r.schema_ref].get("x-cedx-signed")
                elif not status.startswith("2"):
                    op.errors.append(r)
            ops.append(op)
    return ops
