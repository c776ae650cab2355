"""Against the reference implementations every applicable item passes."""

from cedx.inspect.runner import run, write


def test_reference_platform_passes_every_item(reference, tmp_path):
    report = run(reference)
    failures = [(c["case_id"], c["reason"]) for i in report["items"] for c in i["cases"] if c["verdict"] == "fail"]
    assert failures == [], failures
    assert [i["result"] for i in report["items"]] == ["pass"] * 9
    assert all(len(i["cases"]) >= 3 for i in report["items"])
    write(report, tmp_path)
    text = (tmp_path / "report.json").read_text(encoding="utf-8") + (tmp_path / "report.html").read_text(encoding="utf-8")
    assert reference.client_secret not in text and reference._token and reference._token not in text
    assert "数据接口检验报告" in text and "Data interface inspection report" in text


def test_reference_source_passes(source):
    report = run(source)
    failures = [(c["case_id"], c["reason"]) for i in report["items"] for c in i["cases"] if c["verdict"] == "fail"]
    assert failures == [], failures
    results = {i["item"]: i["result"] for i in report["items"]}
    assert results[8] == "not-applicable" and all(results[n] == "pass" for n in (1, 2, 3, 4, 5, 6, 7, 9))
