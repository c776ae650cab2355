"""The generated reference: every operation with its JSON and XML examples, offline HTML."""

import re

from lxml import html

from generator.pipeline import REPO

from .conftest import example_usage

DOC = (REPO / "sdk" / "cedx" / "generated" / "reference.html").read_text(encoding="utf-8")
MD = (REPO / "docs" / "reference.md").read_text(encoding="utf-8")


def _operations():
    import yaml

    doc = yaml.safe_load((REPO / "spec" / "openapi.yaml").read_text(encoding="utf-8"))
    # x-cedx-protocol operations (RFC 3161 /tsa) are described in the trust profile instead
    return [op for item in doc["paths"].values() for m, op in item.items()
            if m in ("get", "post", "put") and not op.get("x-cedx-protocol")]


def test_html_is_self_contained():
    tree = html.fromstring(DOC)
    # inline script only (offline search, language switch); nothing loaded from anywhere
    assert not tree.xpath("//script[@src]") and not tree.xpath("//link") and not tree.xpath("//img")
    assert not re.search(r'(src|href)="(https?:)?//', DOC), "no remote resources"
    assert tree.xpath("//meta[@charset='utf-8']")


def test_every_operation_appears_with_both_examples():
    tree = html.fromstring(DOC)
    for op in _operations():
        section = tree.xpath(f"//h3[@id='op-{op['operationId']}']")
        assert section, op["operationId"]
        assert f"op-{op['operationId']}" in MD
        summaries = []
        node = section[0].getnext()
        while node is not None and node.tag != "h3" and node.tag != "h2":
            summaries += [s.text_content() for s in node.iter("summary")]
            node = node.getnext()
        if op["operationId"] != "issueToken":
            assert any("application/json" in s for s in summaries), op["operationId"]
            assert any("application/xml" in s for s in summaries), op["operationId"]


def test_xml_examples_are_escaped_and_readable():
    assert "&lt;SignedMonthlyReport xmlns=&#34;urn:cedx:1.0&#34;" in DOC
    text = html.fromstring(DOC).text_content()
    assert '<SignedMonthlyReport xmlns="urn:cedx:1.0" specVersion="1.0">' in text


def test_reference_lists_units_rules_and_error_codes():
    for needle in ("`GJ/1e4Nm3`", "`R-POW-001`", "`SIGNATURE_INVALID`", "收到基元素碳含量"):
        assert needle in MD
    assert len(example_usage()) > 50


def test_inspection_catalogue_lists_every_case():
    from cedx.inspect import runner  # noqa: F401
    from cedx.inspect.framework import REGISTRY

    catalogue = (REPO / "docs" / "inspection.md").read_text(encoding="utf-8")
    for c in REGISTRY:
        assert f"| {c.case_id} | {c.title} |" in catalogue, c.case_id
    assert catalogue.count("\n## ") == 9


def test_inspection_catalogue_is_fresh():
    from cedx.inspect import catalogue

    assert (REPO / "docs" / "inspection.md").read_text(encoding="utf-8") == catalogue.render(), \
        "docs/inspection.md is stale; run `make generate`"
