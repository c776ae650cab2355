"""The independent acquisition-side client (tests/interop/source_client.py: standard library +
openssl, no cedx) against the reference source started only through its command line: token by
HTTP Basic (trust-profile §10), the signed configuration and period statistics, and every sealed
batch of a point pulled page by page and verified from docs/trust-batches.md alone — signature,
certificate chain to the out-of-band anchor, hash chain, contiguity across pages and days — and a
tampered, dropped or reordered batch refused. If the batch docs stop being sufficient, this fails."""

import base64
import copy
import datetime as dt
import json
import urllib.parse

import pytest

from .client import REPO, OpenSSL, http, instant_paths_from_profile, signing_input
from .source_client import BatchReader, BatchRefused, ChainHead, canonical_payload, pull
from .test_conformance import _free_port, cedx_serving

pytestmark = pytest.mark.openssl
POINT = "PWR-U1-CO2"
SECRET = "acq-secret-0123456789"


def _month_before(today: dt.date) -> str:
    first = today.replace(day=1) - dt.timedelta(days=1)
    return f"{first.year:04d}-{first.month:02d}"


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    data = tmp_path_factory.mktemp("source")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    commissioned = _month_before(dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date())
    with cedx_serving("acquisition", "--site", "power", "--dir", str(data), "--port", str(port),
                      "--client", "erp-acq:CEDX_ACQ_SECRET", "--commissioned", commissioned, "--public-url", base,
                      "--log-level", "warning", probe=f"{base}/.well-known/cedx-configuration", what="source",
                      env={"CEDX_ACQ_SECRET": SECRET}):
        ssl = OpenSSL(tmp_path_factory.mktemp("acq-client"))
        (ssl.dir / "anchor.pem").write_bytes((data / "pki" / "ca.pem").read_bytes())  # out of band
        yield {"base": base, "ssl": ssl, "commissioned": commissioned}


@pytest.fixture(scope="module")
def token(source):
    """Profile §10: HTTP Basic, form-encoded id and secret; scope acquisition:read."""
    basic = base64.b64encode(f"{urllib.parse.quote_plus('erp-acq')}:{urllib.parse.quote_plus(SECRET)}".encode()).decode()
    answer = http("POST", f"{source['base']}/oauth/token",
                  {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
                  b"grant_type=client_credentials&scope=acquisition%3Aread")
    assert answer.status == 200, answer.body
    return answer.json()["access_token"]


def _get(source, token, path, **query):
    url = f"{source['base']}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    answer = http("GET", url, {"Authorization": f"Bearer {token}", "Accept": "application/json"})
    assert answer.status == 200, (answer.status, answer.body[:300])
    return answer.json()


def _verify_document(source, envelope):
    """Profile §2 for the source's other signed documents (configuration, statistics)."""
    reader = BatchReader(source["ssl"], "anchor.pem", POINT, "minute")
    public = reader._signer_key(envelope["signature"])
    message = signing_input(envelope, instant_paths_from_profile())
    if envelope["signature"]["algorithm"] == "SM2-with-SM3-prehash":
        message = source["ssl"].run("dgst", "-sm3", "-binary", input=message).stdout
    assert source["ssl"].verify(public, base64.b64decode(envelope["signature"]["value"]), message)


def _range(source):
    """From the commissioning (local midnight, UTC+8) to tomorrow."""
    year, month = map(int, source["commissioned"].split("-"))
    start = dt.datetime(year, month, 1, tzinfo=dt.timezone(dt.timedelta(hours=8))).astimezone(dt.timezone.utc)
    end = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    return start, start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_configuration_verifies_against_the_out_of_band_anchor(source):
    answer = http("GET", f"{source['base']}/.well-known/cedx-configuration", {"Accept": "application/json"})
    assert answer.status == 200
    doc = answer.json()
    _verify_document(source, doc)
    assert doc["payload"]["endpoints"]["acquisition"] == source["base"] + "/v1/acquisition"
    assert doc["payload"]["endpoints"]["token"] == source["base"] + "/oauth/token"


@pytest.mark.parametrize("granularity", ["minute", "hour", "day"])
def test_every_batch_verifies_and_the_chain_is_unbroken_across_pages(source, token, granularity):
    first, start, end = _range(source)
    reader = BatchReader(source["ssl"], "anchor.pem", POINT, granularity)
    batches = pull(source["base"], token, reader, start, end, limit=3 if granularity == "minute" else 4)
    assert batches and batches[0]["sequenceNumber"] == 1 and batches[0]["start"] == start  # the chain's start
    assert [b["sequenceNumber"] for b in batches] == list(range(1, len(batches) + 1))
    if granularity != "minute":
        assert len(batches) > 4  # more than one page was followed
    # continuing from the kept chain head (trust-batches §3) verifies the rest of the chain
    middle = batches[len(batches) // 2]
    head = ChainHead(middle["sequenceNumber"], source["ssl"].sm3(canonical_payload(middle)),
                     dt.datetime.strptime(batches[len(batches) // 2 + 1]["start"], "%Y-%m-%dT%H:%M:%SZ")
                     .replace(tzinfo=dt.timezone.utc)) if len(batches) > 2 else None
    if head:
        again = pull(source["base"], token, BatchReader(source["ssl"], "anchor.pem", POINT, granularity, head),
                     head.end.strftime("%Y-%m-%dT%H:%M:%SZ"), end)
        assert [b["sequenceNumber"] for b in again] == [b["sequenceNumber"] for b in batches[len(batches) // 2 + 1:]]


def test_tampered_dropped_or_reordered_batches_are_refused(source, token):
    _, start, end = _range(source)
    url = (f"{source['base']}/v1/acquisition/points/{POINT}/batches?"
           + urllib.parse.urlencode({"granularity": "hour", "from": start, "to": end, "limit": 4}))
    items = json.loads(http("GET", url, {"Authorization": f"Bearer {token}"}).body)["items"]
    assert len(items) == 4

    def run(batches):
        reader = BatchReader(source["ssl"], "anchor.pem", POINT, "hour")
        for b in batches:
            reader.verify(b)

    run(items)
    changed = copy.deepcopy(items)
    changed[1]["payload"]["values"][0] = str(int(changed[1]["payload"]["values"][0] or "0") + 1)
    with pytest.raises(BatchRefused, match="signature"):
        run(changed)
    with pytest.raises(BatchRefused, match="sequence"):
        run([items[0], items[2]])
    with pytest.raises(BatchRefused, match="sequence"):
        run([items[0], items[2], items[1]])
    other = BatchReader(source["ssl"], "anchor.pem", "PWR-U1-COAL", "hour")
    with pytest.raises(BatchRefused, match="another point"):
        other.verify(items[0])
    (source["ssl"].dir / "other-anchor.pem").write_bytes((REPO / "spec" / "examples" / "pki" / "ca.pem").read_bytes())
    with pytest.raises(BatchRefused, match="anchor"):
        BatchReader(source["ssl"], "other-anchor.pem", POINT, "hour").verify(items[0])


def test_period_statistics_are_signed_and_count_only_valid_minutes(source, token):
    """trust-batches §1.6: validCount counts the minute values flagged N of the day (UTC+8)."""
    first, _, _ = _range(source)
    day_start, day_end = first + dt.timedelta(days=1), first + dt.timedelta(days=2)
    iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    doc = _get(source, token, f"/v1/acquisition/points/{POINT}/statistics", periodType="day",
               **{"from": iso(day_start), "to": iso(day_end)})
    _verify_document(source, doc)
    (item,) = doc["payload"]["items"]
    reader = BatchReader(source["ssl"], "anchor.pem", POINT, "minute")
    minutes = pull(source["base"], token, reader, iso(first), iso(day_end))
    flags = "".join(b["flags"] for b in minutes if day_start <= dt.datetime.strptime(b["start"], "%Y-%m-%dT%H:%M:%SZ")
                    .replace(tzinfo=dt.timezone.utc) < day_end)
    assert item["expectedCount"] == len(flags) == 1440
    assert item["validCount"] == flags.count("N")


def test_an_xml_page_carries_the_same_signed_batches(source, token):
    """Profile §12: the XML page maps to the same logical record, so the batches verify from XML."""
    from .client import Schemas, from_xml

    _, start, end = _range(source)
    url = (f"{source['base']}/v1/acquisition/points/{POINT}/batches?"
           + urllib.parse.urlencode({"granularity": "minute", "from": start, "to": end, "limit": 2}))
    as_json = json.loads(http("GET", url, {"Authorization": f"Bearer {token}", "Accept": "application/json"}).body)
    answer = http("GET", url, {"Authorization": f"Bearer {token}", "Accept": "application/xml"})
    assert answer.status == 200 and answer.media == "application/xml"
    schemas = Schemas(json.loads((REPO / "sdk" / "cedx" / "generated" / "openapi.json").read_text(encoding="utf-8")))
    name, page = from_xml(schemas, answer.body)
    assert name == "MeasurementBatchPage" and page == as_json
    reader = BatchReader(source["ssl"], "anchor.pem", POINT, "minute")
    for batch in page["items"]:
        reader.verify(batch)


def test_ranges_as_trust_batches_section_4_states(source, token):
    """§4.2: over the per-granularity maximum, `to` not after `from`, impossible dates and years
    before 1000 are 400 INVALID_PARAMETER; before commissioning there is simply no data."""
    first, start, _ = _range(source)
    iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731

    def ask(granularity, frm, to):
        url = (f"{source['base']}/v1/acquisition/points/{POINT}/batches?"
               + urllib.parse.urlencode({"granularity": granularity, "from": frm, "to": to}))
        return http("GET", url, {"Authorization": f"Bearer {token}", "Accept": "application/json"})

    for granularity, days in (("minute", 92), ("hour", 366), ("day", 3660)):
        assert ask(granularity, iso(first), iso(first + dt.timedelta(days=days))).status == 200
        too_long = ask(granularity, iso(first), iso(first + dt.timedelta(days=days, seconds=1)))
        assert too_long.status == 400 and too_long.json()["code"] == "INVALID_PARAMETER", granularity
    for frm, to in ((start, start), ("2026-02-30T00:00:00Z", start), ("0999-12-31T00:00:00Z", "0999-12-31T01:00:00Z")):
        answer = ask("hour", frm, to)
        assert answer.status == 400 and answer.json()["code"] == "INVALID_PARAMETER", (frm, to)
    before = ask("hour", iso(first - dt.timedelta(days=30)), iso(first))
    assert before.status == 200 and before.json()["items"] == []


def test_request_signature_headers_on_source_reads_are_ignored(source, token):
    """Profile §5: a source has no client-key registry, so it ignores X-Cedx-* on its reads."""
    import secrets

    _, start, end = _range(source)
    url = (f"{source['base']}/v1/acquisition/points/{POINT}/batches?"
           + urllib.parse.urlencode({"granularity": "hour", "from": start, "to": end}))
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    answer = http("GET", url, {"Authorization": f"Bearer {token}", "X-Cedx-Timestamp": stamp,
                               "X-Cedx-Nonce": secrets.token_hex(16), "X-Cedx-Key-Id": "ab" * 32,
                               "X-Cedx-Signature": base64.b64encode(bytes(70)).decode()})
    assert answer.status == 200
