"""Against the reference implementations every applicable item passes."""


from cedx.inspect.local import ReferencePlatform
from cedx.inspect.runner import run, write


def _failures(report):
    return [(c["case_id"], c["reason"]) for i in report["items"] for c in i["cases"] if c["verdict"] in ("fail", "blocked")]


def test_reference_platform_passes_every_item(reference, tmp_path):
    report = run(reference)
    assert _failures(report) == []
    assert [i["result"] for i in report["items"]] == ["pass"] * 9
    assert all(len(i["cases"]) >= 3 for i in report["items"])
    verdicts = {c["case_id"]: c["verdict"] for i in report["items"] for c in i["cases"]}
    # The provisioned material makes the blind-spot cases run (not "not applicable").
    assert {k: verdicts[k] for k in ("7.5", "7.6", "7.7", "8.4", "9.5", "9.6")} == dict.fromkeys(
        ("7.5", "7.6", "7.7", "8.4", "9.5", "9.6"), "pass")
    assert verdicts["5.5"] == "not-applicable"  # opt-in; see test_rate_limit_probe
    write(report, tmp_path)
    text = (tmp_path / "report.json").read_text(encoding="utf-8") + (tmp_path / "report.html").read_text(encoding="utf-8")
    for secret in (reference.client_secret, reference._token, reference.expired_token, reference.other.client_secret):
        assert secret and secret not in text
    assert "数据接口检验报告" in text and "Data interface inspection report" in text


def test_rate_limit_probe(tmp_path):
    """Opt-in and bounded: with a limit of 30 a minute and a budget of 50, the probe sees a 429."""
    with ReferencePlatform(tmp_path, rate_limit=30, successor=False, provision=False) as target:
        target.rate_limit_budget = 50
        report = run(target, [5])
    cases = {c["case_id"]: c for c in report["items"][0]["cases"]}
    assert cases["5.5"]["verdict"] == "pass", cases["5.5"]["reason"]
    assert sum(1 for x in cases["5.5"]["exchanges"] if x["status"] == 429) >= 1
    assert len(cases["5.5"]["exchanges"]) <= 50 + 2


def test_rate_limit_probe_stays_within_its_budget(tmp_path):
    """A limit above the budget: the probe declines rather than flooding the platform."""
    with ReferencePlatform(tmp_path, rate_limit=1000, successor=False, provision=False) as target:
        target.rate_limit_budget = 50
        report = run(target, [5])
    case = next(c for c in report["items"][0]["cases"] if c["case_id"] == "5.5")
    assert case["verdict"] == "not-applicable" and "budget is 50" in case["reason"]
    assert len(case["exchanges"]) == 1


def test_reference_source_passes(source):
    report = run(source)
    assert _failures(report) == []
    results = {i["item"]: i["result"] for i in report["items"]}
    assert results[8] == "not-applicable" and all(results[n] == "pass" for n in (1, 2, 3, 4, 5, 6, 7, 9))
    a51 = next(c for i in report["items"] for c in i["cases"] if c["case_id"] == "A5.1")
    assert a51["verdict"] == "pass"


def test_source_rate_limit_probe(tmp_path):
    from cedx.inspect.target import Target
    from tests.loopback import serve

    from .conftest import source_app

    app, ca = source_app(tmp_path, rate_limit=30)
    with serve(app) as url:
        report = run(Target(url=url, interface="acquisition", trust_anchors=[ca], token_value="inspect-token-0123",
                            rate_limit_budget=50), [5])
    case = next(c for c in report["items"][0]["cases"] if c["case_id"] == "A5.5")
    assert case["verdict"] == "pass", case["reason"]
    assert any(x["status"] == 429 for x in case["exchanges"])
