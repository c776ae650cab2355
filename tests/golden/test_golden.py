"""Golden record: the test spec under tests/golden/spec exercises every generator feature
(enums, oneOf with discriminator, decimals, dates, arrays, XML attributes and a namespace, a
signed operation, pagination, error responses); its generated tree must equal the committed
one, and the generated SDK must work (client against server, JSON and XML)."""

import difflib
import importlib
import shutil
import sys
import uuid

import pytest
from pydantic import ValidationError

from cedx import trust
from cedx.runtime.client import Format
from cedx.runtime.errors import UnprocessableError
from cedx.runtime.errors import ValidationError as LocalValidationError

from ..loopback import serve
from .update import EXPECTED, golden_files


def test_generated_tree_matches_the_golden_record():
    files = golden_files()
    committed = {str(p.relative_to(EXPECTED)): p.read_bytes() for p in EXPECTED.rglob("*") if p.is_file()}
    assert sorted(files) == sorted(committed), "files added or removed: run python -m tests.golden.update"
    for rel, data in files.items():
        if data != committed[rel]:
            diff = "\n".join(list(difflib.unified_diff(
                committed[rel].decode(errors="replace").splitlines(), data.decode(errors="replace").splitlines(),
                "golden", "generated", lineterm=""))[:40])
            pytest.fail(f"{rel} differs from the golden record:\n{diff}")


@pytest.fixture(scope="module")
def golden_sdk(tmp_path_factory):
    """The golden generated package, importable as `golden_sdk`."""
    root = tmp_path_factory.mktemp("golden")
    shutil.copytree(EXPECTED / "sdk" / "cedx" / "generated", root / "golden_sdk")
    sys.path.insert(0, str(root))
    try:
        yield {name: importlib.import_module(f"golden_sdk.{name}") for name in ("models", "client", "server", "xml")}
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m.startswith("golden_sdk")]:
            del sys.modules[name]


def test_union_and_xml(golden_sdk):
    models, xml = golden_sdk["models"], golden_sdk["xml"]
    data = (EXPECTED / "sdk" / "cedx" / "generated" / "examples" / "drawing.xml").read_bytes()
    drawing = xml.from_xml(data)
    kinds = [type(s.root if hasattr(s, "root") else s).__name__ for s in drawing.shapes]
    assert kinds == ["Circle", "Square"]
    assert xml.to_xml(drawing) == data
    with pytest.raises(ValidationError):
        models.Drawing.model_validate({**drawing.model_dump(mode="json", by_alias=True), "colour": "purple"})


def test_client_against_server_in_both_formats(golden_sdk):
    models, client_mod, server_mod = golden_sdk["models"], golden_sdk["client"], golden_sdk["server"]
    store: list = []

    class Drawings(server_mod.ReportingService):
        def submit_drawing(self, ctx, *, idempotency_key, body):
            trust.verify_document(body, key.public_key())
            store.append(body.payload)
            return server_mod.Reply(body.payload, status=201)

        def list_drawings(self, ctx, *, limit, cursor, colour):
            start = int(cursor or 0)
            page = store[start:start + (limit or 100)]
            out = {"specVersion": "0.1", "items": [d.model_dump(mode="json", by_alias=True, exclude_none=True) for d in page]}
            if start + len(page) < len(store):
                out["nextCursor"] = str(start + len(page))
            return out

        def get_drawing(self, ctx, *, drawing_id):
            from cedx.runtime.errors import Problem

            raise Problem("NOT_FOUND", f"no drawing {drawing_id}")

    from fastapi import FastAPI

    key = trust.generate_private_key()
    app = FastAPI()
    app.include_router(server_mod.build_reporting_router(Drawings()))
    payload = models.Drawing.model_validate_json((EXPECTED.parent / "spec" / "examples" / "drawing.json").read_bytes())
    with serve(app) as url:
        for fmt in (Format.JSON, Format.XML):
            c = client_mod.ReportingClient(url, signing_key=key, format=fmt)
            for _ in range(2):
                echoed = c.submit_drawing(payload.model_copy(update={"drawing_id": uuid.uuid4()}))
                assert echoed.shapes == payload.shapes
        listed = list(client_mod.ReportingClient(url).iter_drawings(limit=3))
        assert len(listed) == 4
        bad = payload.model_copy(update={"total_area": payload.total_area + 1})
        with pytest.raises(LocalValidationError) as local:  # checked before signing: nothing sent
            client_mod.ReportingClient(url, signing_key=key).submit_drawing(bad)
        assert local.value.rules == ["R-GLD-001"]
        with pytest.raises(UnprocessableError) as exc:  # the server's own check
            client_mod.ReportingClient(url, signing_key=key, validate=False).submit_drawing(bad)
        assert exc.value.rules == ["R-GLD-001"]
