"""A data logger written from docs/hj212.md alone (stdlib sockets; the frame and CRC as §1 states)
against `cedx serve hj212-bridge` started through its command line with the site file of the docs:
the replies of the §5 table, the refusals (wrong CRC, CRC-16/MODBUS, wrong PW) without a reply, and
the values arriving — converted as the mapping table says — in signed minute batches that the
independent acquisition client verifies (docs/trust-batches.md)."""

import datetime as dt
import re
import socket
import time

import pytest

from .client import REPO, OpenSSL, http
from .source_client import BatchReader, pull
from .test_conformance import _free_port, cedx_serving

pytestmark = pytest.mark.openssl
DOC = (REPO / "docs" / "hj212.md").read_text(encoding="utf-8")
TOKEN = "bridge-token-0123456789"
CST = dt.timezone(dt.timedelta(hours=8))


def crc(segment: bytes) -> int:
    """§1: start 0xFFFF; per byte crc = (crc >> 8) ^ b, then 8 shifts xoring 0xA001 on a 1 bit."""
    value = 0xFFFF
    for byte in segment:
        value = (value >> 8) ^ byte
        for _ in range(8):
            value = (value >> 1) ^ 0xA001 if value & 1 else value >> 1
    return value


def modbus(segment: bytes) -> int:
    value = 0xFFFF
    for byte in segment:
        value ^= byte
        for _ in range(8):
            value = (value >> 1) ^ 0xA001 if value & 1 else value >> 1
    return value


def frame(segment: str, check: int | None = None, lower: bool = False) -> bytes:
    data = segment.encode()
    text = f"{crc(data) if check is None else check:04X}"
    return b"##" + f"{len(data):04d}".encode() + data + (text.lower() if lower else text).encode() + b"\r\n"


def test_the_documented_check_value():
    segment = re.search(r"`(QN=20160801085857223;[^`]+)`", DOC).group(1)
    assert f"{crc(segment.encode()):04X}" == "1C80" and "`1C80`" in DOC


@pytest.fixture(scope="module")
def bridge(tmp_path_factory):
    data = tmp_path_factory.mktemp("bridge")
    site = re.search(r"```yaml\n(loggers:\n.*?)```", DOC, re.S).group(1)
    today = (dt.datetime.now(CST) - dt.timedelta(minutes=10)).date()  # the test's minute is after this midnight
    (data / "site.yaml").write_text(re.sub(r'since: "[0-9-]+"', f'since: "{today.isoformat()}"', site), encoding="utf-8")
    tcp, port = _free_port(), _free_port()
    while port == tcp:
        port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with cedx_serving("hj212-bridge", "--dir", str(data), "--port", str(tcp), "--mapping", str(data / "site.yaml"),
                      "--http-port", str(port), "--token", TOKEN, "--seal-interval", "1", "--seal-delay", "1",
                      "--log-level", "warning", probe=f"{base}/.well-known/cedx-configuration", what="bridge"):
        ssl = OpenSSL(tmp_path_factory.mktemp("bridge-client"))
        (ssl.dir / "anchor.pem").write_bytes((data / "pki" / "ca.pem").read_bytes())  # out of band
        yield {"tcp": tcp, "base": base, "ssl": ssl}


def _exchange(bridge, packet: bytes, expect_reply: bool = True) -> bytes | None:
    with socket.create_connection(("127.0.0.1", bridge["tcp"]), timeout=10) as s:
        s.sendall(packet)
        s.settimeout(10 if expect_reply else 1.5)
        try:
            return s.recv(4096)
        except TimeoutError:
            return None


def test_replies_refusals_and_the_values_in_signed_batches(bridge):
    minute = dt.datetime.now(CST).replace(second=0, microsecond=0) - dt.timedelta(minutes=3)
    stamp = minute.strftime("%Y%m%d%H%M%S")
    qn = stamp + "123"
    segment = (f"QN={qn};ST=22;CN=2051;PW=123456;MN=CEMS0001PWRU1;Flag=5;"
               f"CP=&&DataTime={stamp};a05001-Avg=231004.5,a05001-Flag=N;a00000-Avg=10.5,a00000-Flag=N&&")
    reply = _exchange(bridge, frame(segment, lower=True))  # receivers MUST take either case
    m = re.fullmatch(rb"##(\d{4})(.*)([0-9A-Fa-f]{4})\r\n", reply, re.S)
    assert m and int(m.group(1)) == len(m.group(2)) and int(m.group(3), 16) == crc(m.group(2))
    assert m.group(2).decode() == f"QN={qn};ST=91;CN=9014;PW=123456;MN=CEMS0001PWRU1;Flag=4;CP=&&&&"  # §5 table
    other = segment.replace(qn, stamp + "124")
    assert _exchange(bridge, frame(other, check=modbus(other.encode())), expect_reply=False) is None
    assert _exchange(bridge, frame(other, check=crc(other.encode()) ^ 1), expect_reply=False) is None
    wrong_pw = other.replace("PW=123456", "PW=654321")
    assert _exchange(bridge, frame(wrong_pw), expect_reply=False) is None
    # into the chain: minute values at their UTC instant, converted by the table (a00000 m3/s × 3600 → Nm3/h)
    day = (dt.datetime.now(CST) - dt.timedelta(minutes=10)).replace(hour=0, minute=0, second=0, microsecond=0)
    iso = lambda t: t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    expected = {"PWR-U1-CEMS-a05001": "231004.5", "PWR-U1-CEMS-a00000": "37800.0"}
    for point, value in expected.items():
        for _ in range(100):
            reader = BatchReader(bridge["ssl"], "anchor.pem", point, "minute")
            try:
                batches = pull(bridge["base"], TOKEN, reader, iso(day), iso(day + dt.timedelta(days=1)))
            except AssertionError:  # the point is registered when its first reading is fed
                batches = []
            covered = [b for b in batches if b["start"] <= iso(minute) and reader.head.end > minute]
            if covered:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"{point}: the minute was not sealed")
        b = covered[0]
        i = int((minute - dt.datetime.strptime(b["start"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc))
                .total_seconds() // 60)
        assert (b["values"][i], b["flags"][i]) == (value, "N"), point
    points = http("GET", f"{bridge['base']}/v1/acquisition/points/PWR-U1-CEMS-a05001",
                  {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}).json()
    assert points["instrument"]["instrumentId"] == "INS-PWR-U1-CO2" and points["unit"] == "mg/m3"
