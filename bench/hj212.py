"""HJ 212 bridge benchmark (printed figures, not a timed test).

1. Packets/s through the bridge to stored data over loopback TCP: minute-data packets (7 items
   each, Flag=5) acknowledged only after the durable commit (SQLite WAL, synchronous=FULL),
   (a) one logger waiting for each 9014 reply as real loggers do, (b) N loggers at once (group
   commit), (c) one connection sending without waiting (pipelined). Readings fed to the sealed
   store are counted at the end.
2. End-to-end latency from a packet leaving the logger to a signed batch holding its value in the
   sealed store (store, reply, feed, seal and sign; sealing runs every --seal-interval seconds).

    .venv/bin/python bench/hj212.py [--packets 300] [--loggers 8] [--samples 20]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sdk"))

from cedx.hj212 import codec  # noqa: E402
from cedx.hj212.bridge import Bridge, BridgeConfig  # noqa: E402
from cedx.hj212.logger import CST, LoggerPlan, packets, site_mapping  # noqa: E402
from cedx.hj212.mapping import Mapping  # noqa: E402

START = dt.datetime(2026, 11, 2, 0, 0, tzinfo=CST)


def plans(n: int, minutes: int) -> list[LoggerPlan]:
    return [LoggerPlan(mn=f"CEMS{i:04d}BENCH", start=START, minutes=minutes, broken_packet=None, drop_at=None,
                       calibration=None, maintenance=None, split_hourly=False) for i in range(n)]


def mapping_for(ps: list[LoggerPlan]) -> Mapping:
    loggers = {}
    for i, p in enumerate(ps):
        loggers.update(site_mapping(p, prefix=f"B{i:03d}")["loggers"])
    return Mapping.load({"loggers": loggers})


def frames(p: LoggerPlan) -> list[bytes]:
    return [codec.encode(m) for m in packets(p) if m.cn == "2051"]


async def paced(port: int, wires: list[bytes]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for w in wires:
        writer.write(w)
        await writer.drain()
        await reader.readuntil(b"\r\n")
    writer.close()


async def pipelined(port: int, wires: list[bytes]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"".join(wires))
    await writer.drain()
    for _ in wires:
        await reader.readuntil(b"\r\n")
    writer.close()


async def throughput(mode: str, n_loggers: int, n_packets: int) -> tuple[float, dict]:
    ps = plans(n_loggers, n_packets)
    wires = [frames(p) for p in ps]
    with tempfile.TemporaryDirectory() as d:
        bridge = Bridge(BridgeConfig(Path(d), mapping_for(ps), seal_interval=3600))
        port = await bridge.start()
        t0 = time.perf_counter()
        await asyncio.gather(*((paced if mode != "pipelined" else pipelined)(port, w) for w in wires))
        elapsed = time.perf_counter() - t0
        await bridge.flush()
        await bridge.stop()
        summary = bridge.summary()
        bridge.close()
    return sum(len(w) for w in wires) / elapsed, summary


async def latency(samples: int, seal_interval: float) -> list[float]:
    (p,) = plans(1, samples)
    wires = frames(p)
    clock = {"now": START}
    with tempfile.TemporaryDirectory() as d:
        bridge = Bridge(BridgeConfig(Path(d), mapping_for([p]), seal_interval=seal_interval,
                                     seal_delay={"minute": 0.0, "hour": 0.0}, clock=lambda: clock["now"]))
        port = await bridge.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        out = []
        for i, w in enumerate(wires):
            clock["now"] = START + dt.timedelta(minutes=i + 1)     # minute i has just ended
            t0 = time.perf_counter()
            writer.write(w)
            await writer.drain()
            await reader.readuntil(b"\r\n")
            point = "B000-a05001"
            while True:
                sealed = bridge.sink.sealed_until(point, "minute")
                if sealed is not None and sealed > int((START + dt.timedelta(minutes=i)).timestamp()):
                    break
                await asyncio.sleep(0.001)
            out.append(time.perf_counter() - t0)
        writer.close()
        await bridge.stop()
        bridge.close()
    return out


def cpu_costs(n: int = 2000) -> tuple[float, float]:
    """CPU seconds per packet (process time, so other load on the machine does not count):
    decoding, and storing in groups of 100 (fsync waits are not CPU)."""
    (p,) = plans(1, n)
    wires = frames(p)
    t0 = time.process_time()
    decoded = [codec.decode(w) for w in wires]
    decode_cpu = (time.process_time() - t0) / len(wires)
    from cedx.hj212.receive import ReceiveStore

    with tempfile.TemporaryDirectory() as d:
        store = ReceiveStore(Path(d) / "r.db", mapping_for([p]))
        t0 = time.process_time()
        for i in range(0, len(wires), 100):
            store.store_group([(q, w, "bench") for q, w in zip(decoded[i:i + 100], wires[i:i + 100])])
        store_cpu = (time.process_time() - t0) / len(wires)
        store.close()
    return decode_cpu, store_cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=300, help="minute packets per logger")
    ap.add_argument("--loggers", type=int, default=8)
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--seal-interval", type=float, default=0.05)
    args = ap.parse_args()
    print("HJ 212 bridge (loopback TCP, SQLite receive store with fsync before each reply)")
    for mode, n, k in (("one logger, reply-paced", 1, args.packets), (f"{args.loggers} loggers, reply-paced", args.loggers, args.packets),
                       ("one connection, pipelined", 1, args.packets * 2)):
        rate, summary = asyncio.run(throughput("pipelined" if "pipelined" in mode else "paced", n, k))
        fed = summary["readings"].get("fed", 0)
        print(f"  {mode:30} {rate:8.0f} packets/s  ({n * k} packets, {fed} readings fed to metering points)")
    decode_cpu, store_cpu = cpu_costs()
    print(f"  CPU per packet: decode {decode_cpu * 1e6:.0f} µs, store (groups of 100) {store_cpu * 1e6:.0f} µs"
          f" → at most ~{1 / (decode_cpu + store_cpu):.0f} packets/s per core before fsync and TCP")
    lat = asyncio.run(latency(args.samples, args.seal_interval))
    lat_ms = sorted(x * 1000 for x in lat)
    print(f"  packet → signed batch (seal every {args.seal_interval * 1000:.0f} ms): median {statistics.median(lat_ms):.0f} ms,"
          f" p90 {lat_ms[int(0.9 * (len(lat_ms) - 1))]:.0f} ms, max {lat_ms[-1]:.0f} ms over {len(lat_ms)} packets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
