"""Step: the typed clients from the IR and templates/client.py.j2, rendered twice: blocking
(sdk/cedx/generated/client.py, requests) and asyncio (sdk/cedx/generated/aio.py, httpx)."""

from __future__ import annotations

from typing import Any

from .ir import Operation, Param
from .pyformat import format_python
from .render import CODE_HEADER, environment

INTERFACES = {
    "common": ("CommonClient", "共性接口：配置与令牌 / Common: configuration and tokens"),
    "reporting": ("ReportingClient", "报送数据接口 / Reporting interface"),
    "acquisition": ("AcquisitionClient", "数据自动获取接口 / Data auto-acquisition interface"),
}
_QUERY_TYPES = {"int": "int | None", "bool": "bool | None", "str": "str | None"}


def _param_type(p: Param) -> str:
    """The annotation of a query parameter; ``| None`` only when the spec does not require it."""
    if p.schema_ref in ("DateTime",):
        kind = "str | datetime"  # an aware datetime, or the spec's instant text
    elif p.schema_ref and p.python_type == "str" and p.schema_ref not in ("Identifier", "Uuid", "CreditCode"):
        kind = f"models.{p.schema_ref} | str"
    else:
        kind = _QUERY_TYPES[p.python_type].removesuffix(" | None")
    return kind if p.required else f"{kind} | None"


def signature(op: Operation, paged: bool = False) -> str:
    parts = ["self"]
    parts += [f"{p.python_name}: str" for p in op.path_params]
    if op.body_ref:
        body = f"models.{op.body_ref}"
        if op.signed_request:
            body += f" | models.{op.signed_request['payload']}"
        # a logical record as a dict is accepted too (validated the same way; an envelope that
        # is already signed is sent as is)
        parts.append(f"body: {body} | dict[str, Any]")
    parts.append("*")
    for p in op.query_params:
        if paged and p.name == "cursor":
            continue
        default = "" if p.required else " = None"
        parts.append(f"{p.python_name}: {_param_type(p)}{default}")
    for p in op.header_params:
        parts.append(f"{p.python_name}: str | None = None")
    parts.append("format: Format | None = None")
    return ", ".join(parts)


def iter_name(python_name: str) -> str:
    return python_name[len("list_"):] if python_name.startswith("list_") else python_name


def item_type(op: Operation, schemas: dict[str, Any]) -> str:
    """``models.X`` for the items of a paginated list (its ``items`` array), else ``Any``."""
    listing = schemas.get(op.success.schema_ref or "", {}) if op.success else {}
    ref = listing.get("properties", {}).get("items", {}).get("items", {}).get("$ref", "")
    return f"models.{ref.rsplit('/', 1)[-1]}" if ref else "Any"


def generate_client(ops: list[Operation], schemas: dict[str, Any] | None = None, aio: bool = False) -> bytes:
    """``schemas``: the bundled spec's component schemas (item types of paginated lists)."""
    env = environment()
    env.filters["signature"] = signature
    env.filters["iter_name"] = iter_name
    env.filters["item_type"] = lambda op: item_type(op, schemas or {})
    interfaces = [
        {"class_name": cls, "title": title, "ops": [o for o in ops if o.interface == key]}
        for key, (cls, title) in INTERFACES.items()
    ]
    interfaces = [i for i in interfaces if i["ops"]]
    uses_datetime = any(p.schema_ref == "DateTime" for o in ops for p in o.query_params)
    code = env.get_template("client.py.j2").render(header=CODE_HEADER, ops=ops, interfaces=interfaces, aio=aio,
                                                   prefix="Async" if aio else "", uses_datetime=uses_datetime)
    target = "sdk/cedx/generated/aio.py" if aio else "sdk/cedx/generated/client.py"
    return format_python(code, target).encode("utf-8")
