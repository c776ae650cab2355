"""The spec part of the generator: deterministic, and the committed output is fresh."""

from generator.pipeline import REPO, build


def test_build_is_deterministic_and_committed_output_is_fresh():
    first, second = build(), build()
    assert first == second
    stale = [rel for rel, data in first.items() if (REPO / rel).read_bytes() != data]
    assert stale == [], f"run `make generate`: {stale}"


def test_generated_files_say_so():
    files = build()
    assert b"do not edit" in files["sdk/cedx/generated/cedx.xsd"]
    assert b"do not edit" in files["sdk/cedx/generated/__init__.py"]
    assert b'"x-cedx-generated"' in files["sdk/cedx/generated/openapi.json"]
