"""Step: the typed client (sdk/cedx/generated/client.py) from the IR and templates/client.py.j2."""

from __future__ import annotations

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
    if p.schema_ref in ("DateTime",):
        return "str | Any | None"
    if p.schema_ref and p.python_type == "str" and p.schema_ref not in ("Identifier", "Uuid", "CreditCode"):
        return f"models.{p.schema_ref} | str | None"
    return _QUERY_TYPES[p.python_type]


def signature(op: Operation, paged: bool = False) -> str:
    parts = ["self"]
    parts += [f"{p.python_name}: str" for p in op.path_params]
    if op.body_ref:
        body = f"models.{op.body_ref}"
        if op.signed_request:
            body += f" | models.{op.signed_request['payload']}"
        parts.append(f"body: {body}")
    parts.append("*")
    for p in op.query_params:
        if paged and p.name == "cursor":
            continue
        parts.append(f"{p.python_name}: {_param_type(p)} = None")
    for p in op.header_params:
        parts.append(f"{p.python_name}: str | None = None")
    parts.append("format: Format | None = None")
    return ", ".join(parts)


def iter_name(python_name: str) -> str:
    return python_name[len("list_"):] if python_name.startswith("list_") else python_name


def generate_client(ops: list[Operation]) -> bytes:
    env = environment()
    env.filters["signature"] = signature
    env.filters["iter_name"] = iter_name
    interfaces = [
        {"class_name": cls, "title": title, "ops": [o for o in ops if o.interface == key]}
        for key, (cls, title) in INTERFACES.items()
    ]
    interfaces = [i for i in interfaces if i["ops"]]
    code = env.get_template("client.py.j2").render(header=CODE_HEADER, ops=ops, interfaces=interfaces)
    return format_python(code, "sdk/cedx/generated/client.py").encode("utf-8")
