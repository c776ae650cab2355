"""A simulated CEMS data logger (数采仪) speaking HJ 212-2017 over TCP, for tests, the demo and bench.

It sends minute data (CN 2051) and hourly data (CN 2061, split into two packets) of a flue-gas
CEMS — CO2, flow, O2, temperature, pressure, humidity, velocity — with Flag=5 (reply required),
waits for the 9014 reply to each packet and re-sends after a timeout like a real logger
(HJ 212-2017 §6.5: timeout, retry count). Values are a pure function of (seed, minute). Faults
on request: a calibration hour (flag C), a maintenance window (flag M), one broken packet (its
CRC corrupted: the bridge must refuse it and the logger re-sends it intact), and a dropped
connection in the middle of a packet followed by a reconnect.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import math
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ..generated.constants import FLAGS_COUNTING_AS_VALID
from ..instants import CST
from . import codec

CODES = {  # code: (mean, relative swing, decimals)
    "a05001": (231000.0, 0.03, 1),   # CO2 mg/m3 (about 11.8 % by volume)
    "a00000": (555.0, 0.08, 2),      # flow m3/s
    "a19001": (6.2, 0.05, 2),        # O2 %
    "a01012": (48.5, 0.02, 1),       # temperature degC
    "a01013": (0.35, 0.10, 3),       # pressure kPa (gauge)
    "a01014": (10.4, 0.04, 2),       # humidity %
    "a01011": (15.2, 0.05, 2),       # velocity m/s
}


def _u(seed: str, *parts: object) -> float:
    h = hashlib.blake2b("|".join(map(str, (seed, *parts))).encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64


def _q(v: float, places: int) -> str:
    return format(Decimal(repr(v)).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP), "f")


@dataclass
class LoggerPlan:
    mn: str = "CEMS0001PWRU1"
    pw: str = "123456"
    st: str = "31"
    start: dt.datetime = field(default_factory=lambda: dt.datetime(2026, 11, 2, 8, 0, tzinfo=CST))
    minutes: int = 120
    seed: str = "cedx"
    calibration: tuple[int, int] | None = (20, 25)     # minute offsets with flag C
    maintenance: tuple[int, int] | None = (70, 74)     # minute offsets with flag M
    broken_packet: int | None = 10                      # index of the packet sent once with a bad CRC
    drop_at: int | None = 40                            # index of the packet cut in half, then reconnect
    split_hourly: bool = True


def minute_values(plan: LoggerPlan, i: int) -> dict[str, tuple[str, str]]:
    t = plan.start + dt.timedelta(minutes=i)
    hour = t.hour + t.minute / 60
    flag = "N"
    if plan.calibration and plan.calibration[0] <= i < plan.calibration[1]:
        flag = "C"
    if plan.maintenance and plan.maintenance[0] <= i < plan.maintenance[1]:
        flag = "M"
    out = {}
    for code, (mean, swing, places) in CODES.items():
        v = mean * (1 + swing * math.sin((hour - 9) / 24 * 2 * math.pi)) * (1 + 0.01 * (2 * _u(plan.seed, code, i) - 1))
        out[code] = (_q(v, places), flag)
    return out


def packets(plan: LoggerPlan) -> list[codec.Packet]:
    """The messages of the plan in sending order: each minute, and each completed hour."""
    out: list[codec.Packet] = []
    hour_cells: dict[str, list[Any]] = {c: [] for c in CODES}
    for i in range(plan.minutes):
        t = plan.start + dt.timedelta(minutes=i)
        vals = minute_values(plan, i)
        items = {c: {"Avg": v, "Min": v, "Max": v, "Flag": f} for c, (v, f) in vals.items()}
        flow = float(vals["a00000"][0])
        items["a05001"]["Cou"] = _q(float(vals["a05001"][0]) * flow * 60 / 1e6, 3)   # kg in the minute
        items["a00000"]["Cou"] = _q(flow * 60, 1)                                     # m3 in the minute
        sent = t + dt.timedelta(minutes=1, seconds=5)
        out.append(codec.Packet(cn="2051", qn=codec.make_qn(sent), st=plan.st, pw=plan.pw, mn=plan.mn, flag=5,
                                fields={"DataTime": codec.format_time(t)}, items=items))
        for c, (v, f) in vals.items():
            hour_cells[c].append((Decimal(v), f))
        if t.minute == 59:
            h0 = t.replace(minute=0)
            hitems = {}
            for c, cells in hour_cells.items():
                valid = [v for v, f in cells if f in FLAGS_COUNTING_AS_VALID]   # N only (spec QualityFlag)
                flag = "N" if len(valid) >= 45 else max({f for _, f in cells if f not in FLAGS_COUNTING_AS_VALID} or {"B"})
                avg = (sum(valid) / len(valid)) if valid else Decimal(0)
                places = CODES[c][2]
                hitems[c] = {"Avg": format(avg.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP), "f"),
                             "Min": str(min(v for v, _ in cells)), "Max": str(max(v for v, _ in cells)), "Flag": flag}
            msg = codec.Packet(cn="2061", qn=codec.make_qn(h0 + dt.timedelta(hours=1, seconds=30)), st=plan.st, pw=plan.pw,
                               mn=plan.mn, flag=5, fields={"DataTime": codec.format_time(h0)}, items=hitems)
            out += codec.split(msg, 400) if plan.split_hourly else [msg]
            hour_cells = {c: [] for c in CODES}
    return out


@dataclass
class LoggerReport:
    sent: int = 0
    acknowledged: int = 0
    resent: int = 0
    reconnects: int = 0
    broken_sent: int = 0
    replies: list[str] = field(default_factory=list)


async def run_logger(host: str, port: int, plan: LoggerPlan, *, reply_timeout: float = 0.5, retries: int = 3) -> LoggerReport:
    """Send the plan to a bridge and wait for each reply; returns what happened."""
    report = LoggerReport()
    queue = packets(plan)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for index, p in enumerate(queue):
            frame = codec.encode(p)
            for attempt in range(retries + 1):
                if index == plan.broken_packet and attempt == 0:
                    wire = frame[:-6] + (b"0000" if frame[-6:-2] != b"0000" else b"FFFF") + b"\r\n"
                    report.broken_sent += 1
                elif index == plan.drop_at and attempt == 0:
                    writer.write(frame[: len(frame) // 2])
                    await writer.drain()
                    writer.close()
                    await writer.wait_closed()
                    reader, writer = await asyncio.open_connection(host, port)
                    report.reconnects += 1
                    continue
                else:
                    wire = frame
                if attempt:
                    report.resent += 1
                writer.write(wire)
                await writer.drain()
                report.sent += 1
                try:
                    line = await asyncio.wait_for(reader.readuntil(b"\r\n"), reply_timeout)
                except asyncio.TimeoutError:
                    continue
                reply = codec.decode(line)
                report.replies.append(reply.cn)
                if reply.qn == p.qn:
                    report.acknowledged += 1
                    break
            else:
                raise RuntimeError(f"packet {index} (QN {p.qn}) not acknowledged after {retries} retries")
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass
    return report


def site_mapping(plan: LoggerPlan, prefix: str = "PWR-U1-CEMS", facility: str = "PWR-U1") -> dict[str, Any]:
    """A site table (`loggers:` entry) for the simulated logger, with its instruments."""
    body = "示范环境监测站 / monitoring station (example)"

    def instrument(code: str, itype: str, model: str, lo: str, hi: str, unit: str) -> dict[str, Any]:
        return {"instrumentId": f"INS-{prefix}-{code}", "type": itype, "model": model, "serialNumber": f"SN-{code}-0001",
                "manufacturer": "示范分析仪器有限公司", "accuracyClass": "2",
                "range": {"lower": lo, "upper": hi, "unit": unit},
                "calibration": {"method": "calibration", "date": "2026-09-01", "dueDate": "2027-03-01",
                                "certificateNumber": f"JZ-2026-{code}", "body": body}}

    return {"loggers": {plan.mn: {
        "prefix": prefix, "facilityId": facility, "password": plan.pw, "base": "minute",
        "since": plan.start.astimezone(CST).date().isoformat(),
        "instruments": {
            "a05001": instrument("a05001", "gas_analyzer", "CEMS-2000 CO2", "0", "500000", "mg/m3"),
            "a00000": instrument("a00000", "flow_monitor", "FM-300", "0", "7200000", "Nm3/h"),
            "a19001": instrument("a19001", "gas_analyzer", "CEMS-2000 O2", "0", "25", "%"),
            "a01012": instrument("a01012", "other", "PT100", "0", "300", "degC"),
            "a01013": instrument("a01013", "other", "PX-10", "-10", "10", "kPa"),
            "a01014": instrument("a01014", "other", "HM-40", "0", "40", "%"),
            "a01011": instrument("a01011", "flow_monitor", "PT-40", "0", "40", "m/s"),
        }}}}
