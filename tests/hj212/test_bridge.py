"""The HJ 212 bridge over loopback TCP: store before acknowledging, duplicates, out-of-order and
split packets, a connection dropped mid-packet, idle timeout, broken and malformed packets, wrong
passwords, conflicting re-sends, late data, bounded buffers; and the simulated logger's data
coming out as signed, hash-chained batches over the acquisition interface."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3

import pytest
import requests

from cedx import trust
from cedx.hj212 import codec
from cedx.hj212.bridge import Bridge, BridgeConfig, create_bridge_app, payload_values
from cedx.hj212.logger import CST, LoggerPlan, minute_values, run_logger, site_mapping
from cedx.hj212.mapping import Mapping
from cedx.runtime.serve import serve_in_thread
from cedx.trust import chain as tchain

START = dt.datetime(2026, 11, 2, 8, 0, tzinfo=CST)
PLAN = LoggerPlan(start=START, minutes=65, broken_packet=None, drop_at=None)
MN, POINT = PLAN.mn, "PWR-U1-CEMS-a05001"


def minute_packet(minute: int, co2: str = "231000.5", flag: str = "N", qn_ms: int = 0, reply: bool = True) -> codec.Packet:
    t = START + dt.timedelta(minutes=minute)
    return codec.Packet(cn="2051", qn=codec.make_qn(t + dt.timedelta(minutes=1, milliseconds=qn_ms)), st="31", pw=PLAN.pw,
                        mn=MN, flag=5 if reply else 4, fields={"DataTime": codec.format_time(t)},
                        items={"a05001": {"Avg": co2, "Flag": flag}, "a19001": {"Avg": "6.1", "Flag": flag}})


class Harness:
    """A bridge on a free loopback port, run inside one asyncio loop per test."""

    def __init__(self, tmp_path, plan: LoggerPlan = PLAN, now: dt.datetime | None = None, mapping: Mapping | None = None,
                 **config):
        self.now = now or plan.start + dt.timedelta(hours=3)
        config.setdefault("seal_interval", 3600)
        self.bridge = Bridge(BridgeConfig(tmp_path, mapping or Mapping.load(site_mapping(plan)), clock=lambda: self.now,
                                          **config))
        self.db = tmp_path / "receive.db"

    async def __aenter__(self):
        self.port = await self.bridge.start("127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc):
        await self.bridge.stop()
        self.bridge.close()

    async def connect(self):
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def exchange(self, conn, wire: bytes, timeout: float = 2.0) -> codec.Packet | None:
        reader, writer = conn
        writer.write(wire)
        await writer.drain()
        try:
            return codec.decode(await asyncio.wait_for(reader.readuntil(b"\r\n"), timeout))
        except (asyncio.TimeoutError, asyncio.IncompleteReadError):
            return None

    def rows(self, sql: str, *args):
        with sqlite3.connect(self.db) as c:   # an independent connection: what is on disk
            return c.execute(sql, args).fetchall()

    def batch_values(self, point: str = POINT) -> list[tuple[str, str, str]]:
        """(UTC time, value, flag) of the sealed instants that have a value (either batch layout)."""
        out = []
        for b in self.bridge.sink.batches(point, "minute", 0, 2**40):
            out += [(utc(t), v, f) for t, v, f in payload_values(json.loads(b.envelope)["payload"]) if v]
        return out


def utc(t: int) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run(coro):
    return asyncio.run(coro)


def test_store_before_ack_and_reply_per_flag(tmp_path):
    async def go():
        async with Harness(tmp_path) as h:
            conn = await h.connect()
            p = minute_packet(0)
            reply = await h.exchange(conn, codec.encode(p))
            assert reply.cn == "9014" and reply.qn == p.qn and reply.st == "91" and reply.flag == 4
            # When the reply arrived the packet and its readings were already on disk.
            assert h.rows("SELECT qn, status FROM packets") == [(p.qn, "stored")]
            assert len(h.rows("SELECT * FROM readings WHERE mn=?", MN)) == 2
            # Flag=4 (no reply wanted): stored, not answered.
            assert await h.exchange(conn, codec.encode(minute_packet(1, reply=False)), timeout=0.3) is None
            await h.bridge.flush()
            assert len(h.rows("SELECT * FROM packets")) == 2
            conn[1].close()
    run(go())


def test_no_ack_when_storing_fails(tmp_path):
    async def go():
        async with Harness(tmp_path) as h:
            def broken(group):
                raise OSError("disk full")
            h.bridge.receive.store_group = broken
            conn = await h.connect()
            assert await h.exchange(conn, codec.encode(minute_packet(0)), timeout=2) is None
            assert await conn[0].read() == b""          # and the connection is closed for a clean re-send
            assert h.bridge.stats["storage failures"] == 1
            conn[1].close()
    run(go())


def test_duplicates_out_of_order_and_conflicts(tmp_path):
    async def go():
        async with Harness(tmp_path) as h:
            conn = await h.connect()
            for m in (5, 3, 4, 0, 2, 1):                       # out of order
                assert (await h.exchange(conn, codec.encode(minute_packet(m)))).cn == "9014"
            again = await h.exchange(conn, codec.encode(minute_packet(3)))   # re-sent: same QN
            assert again.cn == "9014"                          # answered again (the logger missed the reply)
            # Same minute, new QN, same value (a supplementary upload): no double counting.
            assert (await h.exchange(conn, codec.encode(minute_packet(4, qn_ms=7)))).cn == "9014"
            # Same minute, different value: first kept, conflict recorded.
            assert (await h.exchange(conn, codec.encode(minute_packet(2, co2="1.0", qn_ms=9)))).cn == "9014"
            await h.bridge.flush()
            assert len(h.rows("SELECT * FROM packets")) == 8
            assert len(h.rows("SELECT * FROM readings WHERE code='a05001'")) == 6
            assert len(h.rows("SELECT * FROM conflicts")) == 1    # a05001 differs, a19001 is the same
            h.bridge.seal_now()
            values = h.batch_values()
            assert [t[11:16] for t, _, _ in values] == ["00:00", "00:01", "00:02", "00:03", "00:04", "00:05"]
            assert {v for _, v, _ in values} == {"231000.5"}
            conn[1].close()
    run(go())


def test_split_message_in_any_order(tmp_path):
    async def go():
        async with Harness(tmp_path) as h:
            items = {c: {"Avg": "1.5", "Flag": "N"} for c in ("a05001", "a00000", "a19001", "a01012", "a01013", "a01014", "a01011")}
            msg = codec.Packet(cn="2061", qn="20261102100030000", st="31", pw=PLAN.pw, mn=MN, flag=5,
                               fields={"DataTime": "20261102090000"}, items=items)
            parts = codec.split(msg, 200)
            assert len(parts) >= 3
            conn = await h.connect()
            for part in reversed(parts):
                assert (await h.exchange(conn, codec.encode(part))).cn == "9014"
            await h.bridge.flush()
            assert {r[0] for r in h.rows("SELECT status FROM packets")} == {"assembled"}
            assert len(h.rows("SELECT * FROM readings WHERE cn='2061'")) == 7
            conn[1].close()
    run(go())


def test_disconnect_mid_packet_and_idle_timeout(tmp_path):
    async def go():
        async with Harness(tmp_path, idle_timeout=0.3) as h:
            reader, writer = await h.connect()
            frame = codec.encode(minute_packet(0))
            writer.write(frame[:40])
            await writer.drain()
            writer.close()
            await asyncio.sleep(0.1)
            await h.bridge.flush()
            assert h.rows("SELECT * FROM packets") == []      # half a packet: nothing stored, nothing acknowledged
            reader, writer = await h.connect()
            assert (await h.exchange((reader, writer), frame)).cn == "9014"
            assert await asyncio.wait_for(reader.read(100), 2) == b""   # idle: the bridge closes
            assert h.bridge.stats["idle timeouts"] == 1 and h.bridge.stats["partial packets dropped"] == 1
    run(go())


def test_malformed_packets_get_no_reply_and_do_not_break_the_stream(tmp_path):
    async def go():
        async with Harness(tmp_path) as h:
            conn = await h.connect()
            good = codec.encode(minute_packet(0))
            bad_crc = good[:-6] + b"0000\r\n"
            modbus = good[:-6] + b"%04X\r\n" % codec.crc16_modbus(good[6:-6])
            bad_len = b"##0009" + good[6:]
            bad_field = codec.frame(codec.build_segment(minute_packet(1)).replace("DataTime=20261102080100", "DataTime=2026110208"))
            for wire in (bad_crc, modbus, b"garbage\r\n", bad_len, bad_field):
                assert await h.exchange(conn, wire, timeout=0.3) is None
            assert (await h.exchange(conn, good)).cn == "9014"          # the stream is still in sync
            assert h.bridge.stats["malformed"] == 5
            await h.bridge.flush()
            assert len(h.rows("SELECT * FROM packets")) == 1
            conn[1].close()
    run(go())


def test_wrong_password_is_refused(tmp_path):
    async def go():
        async with Harness(tmp_path) as h:
            conn = await h.connect()
            p = minute_packet(0)
            p.pw = "999999"
            assert await h.exchange(conn, codec.encode(p), timeout=0.3) is None
            req = codec.Packet(cn="1013", qn="20261102080000000", st="31", pw="999999", mn=MN, flag=5)
            reply = await h.exchange(conn, codec.encode(req))
            assert reply.cn == "9011" and reply.fields == {"QnRtn": "3"}
            await h.bridge.flush()
            assert h.rows("SELECT * FROM packets") == []
            conn[1].close()
    run(go())


def test_known_only_refuses_unlisted_loggers(tmp_path):
    async def go():
        async with Harness(tmp_path, known_only=True) as h:
            conn = await h.connect()
            stranger = minute_packet(0)
            stranger.mn = "UNKNOWN0001"
            assert await h.exchange(conn, codec.encode(stranger), timeout=0.3) is None
            req = codec.Packet(cn="1013", qn="20261102080000000", st="31", pw="1", mn="UNKNOWN0001", flag=5)
            assert (await h.exchange(conn, codec.encode(req))).fields == {"QnRtn": "4"}
            assert (await h.exchange(conn, codec.encode(minute_packet(0)))).cn == "9014"   # a listed logger
            await h.bridge.flush()
            assert len(h.rows("SELECT * FROM packets")) == 1
            conn[1].close()
    run(go())


def test_bounded_buffer_and_oversized_frames(tmp_path):
    async def go():
        async with Harness(tmp_path, max_segment=512) as h:
            reader, writer = await h.connect()
            writer.write(b"x" * 200_000)                    # no '##' anywhere
            writer.write(b"##9000" + b"y" * 2000)           # declared larger than the limit
            await writer.drain()
            assert (await h.exchange((reader, writer), codec.encode(minute_packet(0)))).cn == "9014"
            assert h.bridge.stats["malformed: size"] == 1
            writer.close()
    run(go())


def test_late_data_and_unknown_logger(tmp_path):
    async def go():
        async with Harness(tmp_path) as h:
            conn = await h.connect()
            await h.exchange(conn, codec.encode(minute_packet(0)))
            await h.bridge.flush()
            h.bridge.seal_now()
            sealed = h.bridge.sink.batches(POINT, "minute", 0, 2**40)
            await h.exchange(conn, codec.encode(minute_packet(1)))        # its minute is already sealed
            stranger = minute_packet(2)
            stranger.mn = "UNKNOWN0001"
            assert (await h.exchange(conn, codec.encode(stranger))).cn == "9014"   # stored and acknowledged
            await h.bridge.flush()
            assert h.bridge.sink.batches(POINT, "minute", 0, 2**40) == sealed      # a sealed batch never changes
            summary = h.bridge.summary()["readings"]
            assert summary["late (period already sealed)"] == 2
            assert summary["not mapped (MN or code not in the table, or no instrument record for the code)"] == 2
            conn[1].close()
    run(go())


def test_simulated_logger_to_signed_batches_over_http(tmp_path):
    plan = LoggerPlan(start=START, minutes=65, broken_packet=3, drop_at=6, calibration=(20, 23), maintenance=(30, 32))

    async def go():
        async with Harness(tmp_path) as h:
            report = await run_logger("127.0.0.1", h.port, plan, reply_timeout=0.3)
            assert report.broken_sent == 1 and report.reconnects == 1
            await h.bridge.flush()
            h.bridge.seal_now()
            return h.bridge, report

    bridge, report = run(go())
    # Every message acknowledged once stored; the broken one and the cut one were re-sent.
    assert report.acknowledged == 65 + 2    # 65 minutes + one hourly message in two packets
    bridge = Bridge(BridgeConfig(tmp_path, Mapping.load(site_mapping(plan)), clock=lambda: START + dt.timedelta(hours=3)))
    try:
        with serve_in_thread(create_bridge_app(bridge, ["tok"])) as base:
            auth = {"Authorization": "Bearer tok"}
            points = requests.get(f"{base}/v1/acquisition/points", headers=auth, timeout=10).json()["items"]
            assert {p["pointId"] for p in points} >= {POINT, "PWR-U1-CEMS-a00000", "PWR-U1-CEMS-a01013"}
            flow = next(p for p in points if p["pointId"] == "PWR-U1-CEMS-a00000")
            assert flow["unit"] == "Nm3/h" and flow["hj212Code"] == "a00000" and flow["measurand"] == "flue_gas_flow"
            page = requests.get(f"{base}/v1/acquisition/points/{POINT}/batches", headers=auth, timeout=10,
                                params={"granularity": "minute", "from": "2026-11-01T00:00:00Z", "to": "2026-11-03T00:00:00Z"}).json()
            assert page["items"]
            payloads = []
            for env in page["items"]:
                trust.verify_document(env, bridge.key.public_key())
                payloads.append(env["payload"])
            tchain.verify_chain(payloads)
            values = {utc(t): (v, f) for p in payloads for t, v, f in payload_values(p)}
            assert values["2026-11-02T00:00:00Z"][1] == "N" and values["2026-11-02T00:00:00Z"][0]   # 08:00 local
            assert values["2026-11-02T00:20:00Z"][1] == "C" and values["2026-11-02T00:30:00Z"][1] == "M"
            assert values["2026-11-01T23:59:00Z"] == ("", "B")   # before the logger started: no data
            flow_page = requests.get(f"{base}/v1/acquisition/points/PWR-U1-CEMS-a00000/batches", headers=auth, timeout=10,
                                     params={"granularity": "minute", "from": "2026-11-02T00:00:00Z", "to": "2026-11-02T01:00:00Z"}).json()
            flow_values = {utc(t): v for e in flow_page["items"] for t, v, _ in payload_values(e["payload"])}
            assert float(flow_values["2026-11-02T00:00:00Z"]) == pytest.approx(
                float(minute_values(plan, 0)["a00000"][0]) * 3600)   # m3/s on the wire, Nm3/h in the batch
    finally:
        bridge.close()


def test_incomplete_split_messages_are_bounded(tmp_path):
    async def go():
        async with Harness(tmp_path, max_incomplete=1) as h:
            items = {c: {"Avg": "1.5", "Flag": "N"} for c in ("a05001", "a00000", "a19001", "a01012")}
            conn = await h.connect()
            first = [codec.split(codec.Packet(cn="2061", qn=f"2026110210003000{i}", st="31", pw=PLAN.pw, mn=MN, flag=5,
                                              fields={"DataTime": f"2026110209{i}000"}, items=items), 150) for i in (1, 2)]
            assert (await h.exchange(conn, codec.encode(first[0][0]))).cn == "9014"        # message 1 waits for part 2
            assert await h.exchange(conn, codec.encode(first[1][0]), timeout=0.3) is None   # message 2: over the bound
            assert len(first[0]) >= 2
            for part in first[0][1:]:
                assert (await h.exchange(conn, codec.encode(part))).cn == "9014"           # message 1 completes
            assert (await h.exchange(conn, codec.encode(first[1][0]))).cn == "9014"        # now message 2 is taken
            conn[1].close()
    run(go())


def test_hourly_values_are_derived_and_the_inspector_passes(tmp_path):
    """The acquisition interface in front of the bridge passes every acquisition case of
    `cedx inspect`; hourly values are the mean of the valid minutes."""
    from decimal import Decimal

    from cedx.inspect.runner import run as inspect
    from cedx.inspect.target import Target
    from cedx.trust import x509 as tx

    # Across a local midnight within the last three days (what the inspector reads): two hourly batches.
    start = (dt.datetime.now(CST) - dt.timedelta(days=2)).replace(hour=22, minute=0, second=0, microsecond=0)
    plan = LoggerPlan(start=start, minutes=180, broken_packet=None, drop_at=None, calibration=(20, 23), maintenance=(30, 32))
    clock = lambda: start + dt.timedelta(hours=3, minutes=5)  # noqa: E731
    # Commissioned three days earlier: the inspector pages through several daily hour batches.
    site = site_mapping(plan)
    site["loggers"][plan.mn]["since"] = (start - dt.timedelta(days=3)).date().isoformat()
    mapping = Mapping.load(site)

    async def go():
        async with Harness(tmp_path, plan, now=clock(), mapping=mapping) as h:
            await run_logger("127.0.0.1", h.port, plan, reply_timeout=0.3)
            await h.bridge.flush()
            h.bridge.seal_now()
    run(go())
    bridge = Bridge(BridgeConfig(tmp_path, mapping, clock=clock))
    try:
        hours = [c for b in bridge.sink.batches(POINT, "hour", 0, 2**40)
                 for c in payload_values(json.loads(b.envelope)["payload"])]
        by_time = {t: (v, f) for t, v, f in hours}
        # 22:00 local: 55 of 60 minutes valid — only N counts: the calibration minutes (C, with values)
        # and the maintenance minutes (M) are excluded from the mean (spec QualityFlag)
        valid = [Decimal(minute_values(plan, i)["a05001"][0]) for i in range(60) if not (20 <= i < 23 or 30 <= i < 32)]
        value, flag = by_time[int(start.timestamp())]
        assert len(valid) == 55
        assert flag == "N" and Decimal(value) == pytest.approx(sum(valid) / len(valid), abs=Decimal("0.1"))
        assert by_time[int(start.timestamp()) - 3600] == ("", "B")   # 21:00 local: no data
        with serve_in_thread(create_bridge_app(bridge, ["tok"])) as base:
            anchor = tx.load_certificate((tmp_path / "pki" / "ca.pem").read_bytes()).dump()
            report = inspect(Target(base, "acquisition", [anchor], token_value="tok"))
        failed = [(c["case_id"], c["reason"]) for it in report["items"] for c in it["cases"]
                  if c["verdict"] not in ("pass", "not-applicable")]  # n/a: the opt-in rate-limit probe (A5.5)
        assert report["result"] == "pass" and not failed, failed
    finally:
        bridge.close()
