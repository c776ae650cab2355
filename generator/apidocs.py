"""Step: the Python API reference (docs/python-api.md, and a section of the HTML reference) from
the same IR the client template renders, plus the hand-written face (``cedx.__all__``) and the
error tree (``cedx.errors``) read from the code, so the reference cannot drift from the SDK."""

from __future__ import annotations

import inspect
import re
from typing import Any

from .client import INTERFACES, item_type, iter_name, signature
from .ir import Operation

#: HTTP status -> the exception the client raises for it (cedx.runtime.errors.ERROR_CLASSES).
STATUS_ERRORS = {400: "BadRequestError", 401: "AuthenticationError", 403: "ForbiddenError", 404: "NotFoundError",
                 406: "NotAcceptableError", 409: "ConflictError", 413: "PayloadTooLargeError",
                 415: "UnsupportedMediaTypeError", 422: "UnprocessableError", 429: "RateLimitedError"}


def _first_line(obj: object, inherit: bool = True) -> str:
    doc = (inspect.getdoc(obj) if inherit else inspect.cleandoc(getattr(obj, "__doc__", None) or "")) or ""
    return " ".join(doc.split("\n\n", 1)[0].split()).removesuffix("::").rstrip(":")


def error_tree() -> list[dict[str, Any]]:
    """Every exception of ``cedx.errors``: name, base, depth in the tree, summary."""
    from cedx import errors

    classes = {n: getattr(errors, n) for n in errors.__all__ if isinstance(getattr(errors, n), type)}
    out: list[dict[str, Any]] = []

    def visit(cls: type, depth: int) -> None:
        status = getattr(cls, "status", 0)
        doc = _first_line(cls, inherit=False) or (f"HTTP {status}" if status else "")
        out.append({"name": cls.__name__, "depth": depth, "doc": doc,
                    "bases": [b.__name__ for b in cls.__bases__ if b.__name__ not in ("object",)]})
        for sub in sorted((c for c in classes.values() if cls in c.__bases__), key=lambda c: c.__name__):
            visit(sub, depth + 1)

    visit(classes["CedxError"], 0)
    return out


def _example(op: Operation) -> str:
    args = [p.python_name for p in op.path_params]
    if op.body_ref:
        name = op.signed_request["payload"] if op.signed_request else op.body_ref
        args.append(re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower())
    args += [f"{p.python_name}=..." for p in op.query_params if p.required]
    return f"result = client.{op.python_name}({', '.join(args)})"


def api_context(ops: list[Operation], schemas: dict[str, Any]) -> dict[str, Any]:

    classes = []
    for key, (cls, title) in INTERFACES.items():
        mine = [o for o in ops if o.interface == key]
        if not mine:
            continue
        methods = []
        for op in mine:
            assert op.success is not None  # build_ir: every operation has a success response
            statuses = sorted({int(e.status) for e in op.errors if e.status.isdigit()})
            errors = sorted({STATUS_ERRORS.get(s, "ServerError" if s >= 500 else "ApiError") for s in statuses})
            if op.body_ref and op.body_media != ("application/x-www-form-urlencoded",):
                errors.append("ValidationError")
            if op.signed_response:
                errors.append("SignatureVerificationError")
                if op.signed_request and op.signed_response.get("payload") == "Receipt":
                    errors.append("ReceiptMismatch")  # a receipt for another document than the one sent
            if op.signed_response or (op.body_ref and op.body_media != ("application/x-www-form-urlencoded",)):
                errors.append("ConfigurationError")  # no trust anchors; a body given as a file or its text
            errors.append("TransportError")
            # what the method takes (the runtime sets request-signature headers itself and adds
            # an Idempotency-Key when none is given)
            params = [{"name": p.python_name, "wire": p.name, "location": p.location,
                       "required": p.required and p.location != "header",
                       "description": p.description} for p in [*op.path_params, *op.query_params, *op.header_params]]
            methods.append({
                "name": op.python_name, "signature": signature(op).removeprefix("self, ").removeprefix("self"),
                "returns": f"models.{op.success.schema_ref}", "summary": op.summary, "op": op,
                "params": params, "body": op.body_ref, "errors": errors, "example": _example(op),
            })
            if op.paginated:
                methods.append({
                    "name": f"iter_{iter_name(op.python_name)}",
                    "signature": signature(op, paged=True).removeprefix("self, "),
                    "returns": f"Iterator[{item_type(op, schemas)}]",
                    "summary": f"{op.summary} — every item, following nextCursor", "op": op,
                    "params": [p for p in params if p["wire"] != "cursor"], "body": None, "errors": errors,
                    "example": f"for item in client.iter_{iter_name(op.python_name)}("
                               + ", ".join([p.python_name for p in op.path_params]
                                           + [f"{p.python_name}=..." for p in op.query_params if p.required])
                               + "):\n    print(item)",
                })
        classes.append({"name": cls, "title": title, "methods": methods})
    return {"classes": classes, "error_tree": error_tree(), "face": face_names()}


def face_names() -> list[dict[str, Any]]:
    """``cedx.__all__`` with one line each. Names served by generated modules are described from
    the IR's side (the generator never imports generated code); the rest from their docstrings."""
    import importlib

    import cedx

    titles = {cls: title for cls, title in INTERFACES.values()}
    titles.update({f"Async{cls}": f"{title} (asyncio)" for cls, title in INTERFACES.values()})
    errors = {e["name"] for e in error_tree()}
    out = []
    for name in cedx.__all__:
        if name.startswith("_") or name in errors:
            continue  # the exceptions have their own section
        module, attr = cedx._LAZY[name]
        if module.startswith("cedx.generated"):
            doc = titles.get(name) or "生成的 pydantic 模型 / the generated pydantic models (one class per schema)"
        else:
            obj = importlib.import_module(module)
            obj = getattr(obj, attr) if attr else obj
            doc = _first_line(obj if isinstance(obj, type) or callable(obj) or inspect.ismodule(obj) else type(obj))
            if not (isinstance(obj, type) or callable(obj) or inspect.ismodule(obj)):
                doc = f"`{obj!r}`, a `{type(obj).__name__}` instance"  # its values, not its class's summary
        out.append({"name": name, "doc": doc})
    return out
