"""The acquisition source over HTTP: OAuth2 client credentials, signed configuration, Link and
RateLimit headers, input handling (invalid dates, maximum ranges, commissioning), streaming
verified pulls across pages, stopping work for a departed client, and SIGTERM."""

import datetime as dt
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from cedx import spec, trust
from cedx.acquisition.app import create_source_app
from cedx.acquisition.pull import pull_batches, pull_points
from cedx.generated.client import AcquisitionClient
from cedx.runtime.client import TokenProvider
from cedx.runtime.errors import AuthenticationError
from cedx.runtime.serve import free_port
from cedx.trust import x509 as tx

from ..loopback import serve
from .acq_data import POINT_DOC

CST = dt.timezone(dt.timedelta(hours=8))
MONTH = dt.datetime(2026, 10, 1, tzinfo=CST)
SECRET = "acct-secret-0123456789abcdef"

@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("source")
    app = create_source_app("cement", root, [], commissioned=MONTH, clients={"acct": SECRET})
    ca = tx.load_certificate((root / "pki" / "ca.pem").read_bytes()).dump()
    with serve(app) as url:
        yield url, ca, app


def _token(url, secret=SECRET, **extra):
    return requests.post(f"{url}/oauth/token", data={"grant_type": "client_credentials", "client_id": "acct",
                                                     "client_secret": secret, **extra})


def _auth(url):
    return {"Authorization": f"Bearer {_token(url).json()['access_token']}"}


def test_client_credentials(source):
    url, ca, app = source
    r = _token(url)
    assert r.status_code == 200 and r.json()["scope"] == "acquisition:read" and r.headers["cache-control"] == "no-store"
    client = AcquisitionClient(url, token_provider=TokenProvider(f"{url}/oauth/token", "acct", SECRET, "acquisition:read"))
    assert client.get_source_info().source_id == "SRC-CEMENT-01"
    bad = _token(url, secret="wrong-secret-that-must-not-echo")
    assert bad.status_code == 401 and "must-not-echo" not in bad.text and bad.json()["error"] == "invalid_client"
    assert _token(url, scope="reporting:submit").json()["error"] == "invalid_scope"
    token = r.json()["access_token"]
    with pytest.raises(AuthenticationError):
        AcquisitionClient(url, token="made-up-token").get_source_info()
    issuer = app.state.issuer
    for key, (cid, _) in list(issuer.tokens.items()):
        issuer.tokens[key] = (cid, time.time() - 1)                   # every issued token expires
    expired = requests.get(f"{url}/v1/acquisition/source", headers={"Authorization": f"Bearer {token}"})
    assert expired.status_code == 401 and expired.json()["code"] == "TOKEN_EXPIRED"


def test_signed_configuration_advertises_the_real_address(source):
    url, ca, _ = source
    r = requests.get(f"{url}/.well-known/cedx-configuration")
    doc = r.json()
    assert spec.validator().validate("SignedPlatformConfiguration", doc) == []
    trust.verify_document(doc, tx.ChainResolver([ca]))
    assert doc["payload"]["endpoints"] == {"acquisition": f"{url}/v1/acquisition", "token": f"{url}/oauth/token"}
    assert "ratelimit-limit" in r.headers


def test_link_ratelimit_and_streaming_pull_across_pages(source):
    url, ca, _ = source
    auth = _auth(url)
    r = requests.get(f"{url}/v1/acquisition/points", params={"limit": 1}, headers=auth)
    assert r.headers["link"].endswith('rel="next"') and "cursor=" in r.headers["link"]
    remaining = [int(requests.get(f"{url}/v1/acquisition/source", headers=auth).headers["ratelimit-remaining"])
                 for _ in range(2)]
    quota = int(r.headers["ratelimit-limit"])
    assert quota > remaining[0] and remaining[1] in (remaining[0] - 1, quota - 1)   # (or a new window began)
    params = {"granularity": "minute", "from": "2026-10-01T00:00:00+08:00", "to": "2026-10-04T00:00:00+08:00", "limit": 1}
    first = requests.get(f"{url}/v1/acquisition/points/CEM-CLINKER/batches", params=params, headers=auth)
    nxt = first.headers["link"]
    second = requests.get(nxt[1:nxt.index(">")], headers=auth).json()
    assert second["items"][0]["payload"]["sequenceNumber"] == first.json()["items"][0]["payload"]["sequenceNumber"] + 1
    client = AcquisitionClient(url, token_provider=TokenProvider(f"{url}/oauth/token", "acct", SECRET))
    batches = list(pull_batches(client, "CEM-CLINKER", granularity="minute", from_=params["from"], to=params["to"],
                                trust_anchors=[ca], limit=1))
    assert [b.payload["count"] for b in batches] == [1440, 1440, 1440]      # one day each, chained across pages
    assert [b.payload["sequenceNumber"] for b in batches] == [1, 2, 3]
    many = list(pull_points(client, ["CEM-CLINKER", "CEM-RAWMEAL"], granularity="minute", from_=params["from"],
                            to=params["to"], trust_anchors=[ca], limit=2))
    assert [(p, b.payload["pointId"], b.payload["sequenceNumber"]) for p, b in many] == [
        ("CEM-CLINKER", "CEM-CLINKER", 1), ("CEM-CLINKER", "CEM-CLINKER", 2), ("CEM-CLINKER", "CEM-CLINKER", 3),
        ("CEM-RAWMEAL", "CEM-RAWMEAL", 1), ("CEM-RAWMEAL", "CEM-RAWMEAL", 2), ("CEM-RAWMEAL", "CEM-RAWMEAL", 3)]


@pytest.mark.parametrize("op,params", [
    ("batches", {"granularity": "hour", "from": "2026-10-01T00:00:00Z", "to": "0000-01-01T00:00:00Z"}),
    ("batches", {"granularity": "hour", "from": "2026-13-01T00:00:00Z", "to": "2026-10-05T00:00:00Z"}),
    ("batches", {"granularity": "hour", "from": "2026-10-32T00:00:00Z", "to": "2026-11-05T00:00:00Z"}),
    ("batches", {"granularity": "hour", "from": "2026-10-05T00:00:00Z", "to": "2026-10-01T00:00:00Z"}),
    ("batches", {"granularity": "minute", "from": "2026-10-01T00:00:00Z", "to": "2027-01-02T00:00:00Z"}),
    ("batches", {"granularity": "hour", "from": "2026-01-01T00:00:00Z", "to": "2027-01-03T00:00:00Z"}),
    ("batches", {"granularity": "raw", "from": "2026-10-01T00:00:00Z", "to": "2026-10-02T00:00:00Z"}),
    ("batches", {"granularity": "hour", "from": "2026-10-01T00:00:00Z", "to": "2026-10-02T00:00:00Z", "cursor": "x"}),
    ("batches", {"granularity": "hour", "from": "0731-08-01T00:00:00Z", "to": "0731-08-02T00:00:00Z"}),
    ("statistics", {"periodType": "month", "from": "0731-08-01T00:00:00Z", "to": "0731-09-01T00:00:00Z"}),
    ("statistics", {"periodType": "day", "from": "2026-10-01T00:00:00Z", "to": "2027-10-03T00:00:00Z"}),
    ("statistics", {"periodType": "day", "from": "2026-02-30T00:00:00Z", "to": "2026-10-03T00:00:00Z"}),
])
def test_invalid_input_is_a_400_problem(source, op, params):
    url, _, _ = source
    r = requests.get(f"{url}/v1/acquisition/points/CEM-CLINKER/{op}", params=params, headers=_auth(url))
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json") and r.json()["code"] == "INVALID_PARAMETER"


def test_nothing_before_commissioning_and_periods_match_the_pattern(source):
    url, _, _ = source
    auth = _auth(url)
    before = {"from": "2026-09-01T00:00:00+08:00", "to": "2026-10-01T00:00:00+08:00"}
    r = requests.get(f"{url}/v1/acquisition/points/CEM-CLINKER/batches", params={"granularity": "hour", **before}, headers=auth)
    assert r.status_code == 200 and r.json()["items"] == []
    r = requests.get(f"{url}/v1/acquisition/points/CEM-CLINKER/statistics", params={"periodType": "day", **before}, headers=auth)
    assert r.status_code == 200 and r.json()["payload"]["items"] == []
    straddle = {"periodType": "month", "from": "2026-08-01T00:00:00+08:00", "to": "2026-11-01T00:00:00+08:00"}
    r = requests.get(f"{url}/v1/acquisition/points/CEM-CLINKER/statistics", params=straddle, headers=auth)
    assert [i["period"] for i in r.json()["payload"]["items"]] == ["2026-10"]
    assert spec.validator().validate("SignedPeriodStatistics", r.json()) == []


def test_unknown_routes_and_methods_answer_problem_json(source):
    url, _, _ = source
    r = requests.get(f"{url}/v1/acquisition/nothing-here")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    r = requests.post(f"{url}/v1/acquisition/points", headers=_auth(url))
    assert r.status_code == 405 and r.headers["content-type"].startswith("application/problem+json")


def test_rate_limit_holds_per_client_and_for_failed_authentication(tmp_path):
    app = create_source_app("cement", tmp_path, ["static-token-0123456789"], commissioned=MONTH, rate_limit=3)
    with serve(app) as url:
        if time.time() % 60 > 50:   # the counters are per minute: start well inside one
            time.sleep(61 - time.time() % 60)
        codes = [requests.get(f"{url}/v1/acquisition/source", headers={"Authorization": "Bearer static-token-0123456789"})
                 for _ in range(4)]
        assert [c.status_code for c in codes] == [200, 200, 200, 429]
        assert codes[-1].headers["ratelimit-remaining"] == "0" and int(codes[-1].headers["retry-after"]) > 0
        guesses = [requests.get(f"{url}/v1/acquisition/source", headers={"Authorization": f"Bearer guess-{i}"}).status_code
                   for i in range(5)]
        assert guesses[:3] == [401] * 3 and guesses[3:] == [429, 429]   # varying the header does not help


def test_statistics_stop_when_the_client_goes_away(tmp_path):
    november = dt.datetime(2026, 11, 1, tzinfo=CST)
    app = create_source_app("cement", tmp_path, ["static-token-0123456789"], commissioned=november)
    source = app.state.source
    source.catch_up()
    real = source.store.iter_values

    def slow(*args, **kwargs):
        time.sleep(0.2)
        return real(*args, **kwargs)
    source.store.iter_values = slow
    with serve(app) as url:
        with pytest.raises(requests.Timeout):
            requests.get(f"{url}/v1/acquisition/points/CEM-CLINKER/statistics", timeout=0.5,
                         params={"periodType": "day", "from": "2026-11-01T00:00:00+08:00", "to": "2026-11-30T00:00:00+08:00"},
                         headers={"Authorization": "Bearer static-token-0123456789"})
        deadline = time.monotonic() + 20
        while source.abandoned == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert source.abandoned == 1   # stopped after a few of the 29 days, not computed for nobody


def test_sigterm_stops_the_source(tmp_path):
    port = free_port()
    env = {**os.environ, "CEDX_SOURCE_CLIENT_SECRET": SECRET}
    proc = subprocess.Popen([sys.executable, "-m", "cedx", "serve", "acquisition", "--site", "cement", "--dir", str(tmp_path),
                             "--client", "acct", "--port", str(port), "--commissioned", "2026-11", "--log-level", "warning"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/.well-known/cedx-configuration", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()[-2000:]
            time.sleep(0.2)
        token = _token(f"http://127.0.0.1:{port}").json()["access_token"]
        assert requests.get(f"http://127.0.0.1:{port}/v1/acquisition/points", headers={"Authorization": f"Bearer {token}"}).ok
        proc.send_signal(signal.SIGTERM)
        # uvicorn drains, runs the shutdown, then re-raises the signal: exit status -15 (or 0)
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
        assert b"Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_inspector_reads_the_source_with_client_credentials(source):
    from cedx.inspect.runner import run
    from cedx.inspect.target import Target

    url, ca, _ = source
    target = Target(url=url, interface="acquisition", trust_anchors=[ca], client_id="acct", client_secret=SECRET)
    report = run(target, [4, 5, 7, 9])
    failed = [c for item in report["items"] for c in item["cases"] if c["verdict"] == "fail"]
    assert report["result"] == "pass", failed


def test_pull_memory_is_bounded_by_the_page_not_the_period(source):
    import tracemalloc

    url, ca, _ = source
    client = AcquisitionClient(url, token_provider=TokenProvider(f"{url}/oauth/token", "acct", SECRET))

    def peak(days):
        tracemalloc.start()
        n = sum(b.payload["count"] for b in pull_batches(
            client, "CEM-RAWMEAL", granularity="minute", from_=MONTH.isoformat(),
            to=(MONTH + dt.timedelta(days=days)).isoformat(), trust_anchors=[ca], limit=7))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert n == days * 1440
        return top

    list(pull_batches(client, "CEM-RAWMEAL", granularity="minute", from_=MONTH.isoformat(),
                      to=(MONTH + dt.timedelta(days=31)).isoformat(), trust_anchors=[ca], limit=31))  # warm
    three_pages, five_pages = peak(21), peak(31)
    assert five_pages < 1.25 * three_pages   # 10 more days, no more memory


def test_a_source_fed_by_another_writer(tmp_path):
    """--site none: the source serves what another writer (e.g. the HJ 212 bridge, holding no
    key) appended to the same store, once sealed by the source."""
    from decimal import Decimal

    from cedx.acquisition.pull import pull_batches
    from cedx.acquisition.store import Reading, SealedStore

    app = create_source_app("none", tmp_path, ["static-token-0123456789"], commissioned=MONTH)
    ca = tx.load_certificate((tmp_path / "pki" / "ca.pem").read_bytes()).dump()
    writer = SealedStore(tmp_path / "source.db")                       # no signer: append only
    with pytest.raises(ValueError, match="instrument"):
        writer.register_point({"specVersion": "1.0", "pointId": "CEMS-CO2", "name": "CO2 (CEMS)",
                               "measurand": "co2_concentration", "unit": "mg/m3"}, since=MONTH)
    writer.register_point(POINT_DOC, since=MONTH)
    writer.append("CEMS-CO2", [Reading(MONTH + dt.timedelta(minutes=i), Decimal(230000 + i), "N") for i in range(90)])
    app.state.source.store.seal(until=MONTH + dt.timedelta(minutes=90))
    with serve(app) as url:
        client = AcquisitionClient(url, token="static-token-0123456789")
        assert [p.point_id for p in client.list_metering_points().items] == ["CEMS-CO2"]
        minutes = list(pull_batches(client, "CEMS-CO2", granularity="minute", from_=MONTH.isoformat(),
                                    to=(MONTH + dt.timedelta(hours=2)).isoformat(), trust_anchors=[ca]))
        hours = list(pull_batches(client, "CEMS-CO2", granularity="hour", from_=MONTH.isoformat(),
                                  to=(MONTH + dt.timedelta(hours=2)).isoformat(), trust_anchors=[ca]))
    assert [b.payload["count"] for b in minutes] == [90] and minutes[0].payload["values"][89] == "230089"
    assert hours[0].payload["values"] == ["230030"] and hours[0].payload["flags"] == "N"   # mean 230029.5, at the
    # inputs' precision (half up); 00:00-01:00 is sealed, 01:00-01:30 not yet
    writer.close()


def test_only_n_counts_in_derived_means_statistics_and_totals(tmp_path):
    """Spec QualityFlag: S, C and T carry a number but are not valid data. Derived hourly values,
    the period statistics (validCount, average, coverage) and the accounting total use N only;
    an hour with too few N minutes becomes a gap that the accounting step substitutes and reports.
    With the former rule (N, S, C, T counted) hour 0 would be 32750, hour 1 84000 flagged N and
    validCount 120."""
    from decimal import Decimal

    from cedx import spec
    from cedx.accounting import flags
    from cedx.accounting.series import month_total
    from cedx.acquisition.pull import pull_batches
    from cedx.acquisition.store import Reading, SealedStore

    app = create_source_app("none", tmp_path, ["static-token-0123456789"], commissioned=MONTH)
    ca = tx.load_certificate((tmp_path / "pki" / "ca.pem").read_bytes()).dump()
    writer = SealedStore(tmp_path / "source.db")
    writer.register_point(POINT_DOC, since=MONTH)                       # CO2, range 0..300000 mg/m3
    minute = lambda i: MONTH + dt.timedelta(minutes=i)  # noqa: E731
    # hour 0: 50 N of 1000, 4 C (span gas 250000), 3 S (5000), 3 T (300000, at the upper limit): 50/60 valid
    hour0 = ([Reading(minute(i), Decimal(1000), "N") for i in range(50)]
             + [Reading(minute(50 + i), Decimal(250000), "C") for i in range(4)]
             + [Reading(minute(54 + i), Decimal(5000), "S") for i in range(3)]
             + [Reading(minute(57 + i), Decimal(300000), "T") for i in range(3)])
    # hour 1: 40 N of 1000 and 20 C of 250000: 40/60 valid, under 75 %: flag C, with the C mean (R-ACQ-001)
    hour1 = ([Reading(minute(60 + i), Decimal(1000), "N") for i in range(40)]
             + [Reading(minute(100 + i), Decimal(250000), "C") for i in range(20)])
    writer.append("CEMS-CO2", hour0 + hour1)
    app.state.source.store.seal(until=MONTH + dt.timedelta(days=1))   # the rest of the day: B, no value
    with serve(app) as url:
        client = AcquisitionClient(url, token="static-token-0123456789", trust_anchors=[ca])
        hours = [b.payload for b in pull_batches(client, "CEMS-CO2", granularity="hour", from_=MONTH.isoformat(),
                                                  to=(MONTH + dt.timedelta(days=1)).isoformat(), trust_anchors=[ca])]
        stats = client.get_period_statistics("CEMS-CO2", period_type="day", from_=MONTH.isoformat(),
                                             to=(MONTH + dt.timedelta(days=1)).isoformat()).payload.items[0]
    assert hours[0]["values"][:2] == ["1000", "250000"] and hours[0]["flags"][:2] == "NC"
    assert spec.validator().validate("MeasurementBatch", hours[0]) == []     # C carries its number (R-ACQ-001)
    assert flags.check_batch(hours[0], POINT_DOC["instrument"]["range"]) == []
    assert (stats.valid_count, stats.expected_count, stats.average, stats.maximum) == (90, 1440, 1000, 1000)
    assert stats.coverage == Decimal("0.0625")
    total = month_total(hours)                          # the C hour and the B hours are gaps, substituted
    assert (total.valid_hours, total.substituted_hours, total.total) == (1, 23, Decimal(24000))
    assert [(g.method, dict(g.flags)) for g in total.gaps] == [("max_valid_same_day", {"C": 1, "B": 22})]
    writer.close()


def test_the_client_refuses_signed_batches_whose_flags_disagree(tmp_path, monkeypatch):
    """R-ACQ-006 on pull: a source that seals (and signs) an in-range hour as T (over range) passes
    signature and chain checks; pull_month with the point's measuring range refuses it, naming
    the batch, the instant and the rule. (The source's own check refuses such readings from
    writers, tests/accounting; here the fault is in the source's sealing itself.)"""
    from decimal import Decimal

    from cedx.accounting.series import pull_month
    from cedx.acquisition.batches import Signer
    from cedx.acquisition.store import Reading, SealedStore

    original = Signer.seal

    def mislabelled(self, payload, signing_time=None):
        if payload["granularity"] == "hour":
            payload = {**payload, "flags": "T" + payload["flags"][1:]}
        return original(self, payload, signing_time)
    monkeypatch.setattr(Signer, "seal", mislabelled)
    app = create_source_app("none", tmp_path, ["static-token-0123456789"], commissioned=MONTH)
    ca = tx.load_certificate((tmp_path / "pki" / "ca.pem").read_bytes()).dump()
    writer = SealedStore(tmp_path / "source.db")
    writer.register_point(POINT_DOC, since=MONTH)
    writer.append("CEMS-CO2", [Reading(MONTH + dt.timedelta(minutes=i), Decimal(230000), "N") for i in range(120)])
    app.state.source.store.seal(until=MONTH + dt.timedelta(days=1))
    with serve(app) as url:
        client = AcquisitionClient(url, token="static-token-0123456789", trust_anchors=[ca])
        assert pull_month(client, "CEMS-CO2", MONTH, [ca])[0]["flags"][:2] == "TN"   # signed: verifies
        with pytest.raises(ValueError, match=r"CEMS-CO2 batch 1 value 0 \(2026-09-30T16:00:00Z\): R-ACQ-006 flag T"):
            pull_month(client, "CEMS-CO2", MONTH, [ca], POINT_DOC["instrument"]["range"])
    writer.close()
