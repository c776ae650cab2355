"""Step: server stubs (sdk/cedx/generated/server.py) and the shared operation metadata."""

from __future__ import annotations

from .client import INTERFACES
from .ir import Operation
from .pyformat import format_python
from .render import CODE_HEADER, environment


def service_signature(op: Operation) -> str:
    parts = ["self", "ctx: RequestContext", "*"]
    for p in op.params:
        if p.name.startswith("X-Cedx-"):
            continue
        typ = {"integer": "int", "boolean": "bool"}.get(p.kind, "str")
        parts.append(f"{p.python_name}: {typ}" + ("" if p.required else " | None"))
    if op.body_ref:
        parts.append(f"body: models.{op.body_ref}")
    return ", ".join(parts) if len(parts) > 3 else "self, ctx: RequestContext"


def generate_server(ops: list[Operation]) -> dict[str, bytes]:
    env = environment()
    env.filters["service_signature"] = service_signature
    env.filters["querymap"] = lambda params: repr({p.python_name: p.name for p in params})
    interfaces = [
        {"key": key, "service": cls.replace("Client", "Service"), "title": title,
         "builder": f"build_{key}_router", "ops": [o for o in ops if o.interface == key]}
        for key, (cls, title) in INTERFACES.items()
    ]
    interfaces = [i for i in interfaces if i["ops"]]
    example = next((i for i in interfaces if i["key"] == "reporting"), interfaces[0])
    server = env.get_template("server.py.j2").render(header=CODE_HEADER, interfaces=interfaces, example=example)
    operations = env.get_template("operations.py.j2").render(header=CODE_HEADER, ops=ops)
    return {
        "sdk/cedx/generated/server.py": format_python(server, "sdk/cedx/generated/server.py").encode(),
        "sdk/cedx/generated/operations.py": format_python(operations, "sdk/cedx/generated/operations.py").encode(),
    }
