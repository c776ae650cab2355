"""The HJ 212 step of `make demo`: a simulated CEMS data logger → the bridge → signed batches."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from ..generated.constants import FLAGS_COUNTING_AS_VALID
from ..instants import CST
from .bridge import Bridge, BridgeConfig, create_bridge_app, payload_values
from .logger import LoggerPlan, LoggerReport, run_logger, site_mapping
from .mapping import Mapping


def run_bridge_step(root: Path, say: Callable[[str], object]) -> bool:
    from .. import trust
    from ..generated.client import AcquisitionClient
    from ..runtime.serve import serve_in_thread
    from ..trust import x509 as tx

    start = (dt.datetime.now(CST) - dt.timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)
    plan = LoggerPlan(start=start, minutes=120, broken_packet=17, drop_at=64)
    clock = lambda: start + dt.timedelta(hours=2, minutes=5)  # noqa: E731  (seal what the logger sent)
    bridge = Bridge(BridgeConfig(root, Mapping.load(site_mapping(plan)), clock=clock, seal_interval=3600,
                                 seal_delay={"minute": 60.0, "hour": 600.0}))

    async def receive() -> LoggerReport:
        port = await bridge.start("127.0.0.1", 0)
        say(f"   网关 / bridge tcp://127.0.0.1:{port}; 数采仪 / logger MN {plan.mn}: {plan.minutes} 分钟 + 2 小时数据（小时数据拆分为 2 包）"
            f" / {plan.minutes} minutes + 2 hours of data (hourly data split into 2 packets)")
        report = await run_logger("127.0.0.1", port, plan, reply_timeout=1.0)
        await bridge.flush()
        bridge.seal_now()
        await bridge.stop()
        return report

    logging.getLogger("cedx.hj212.bridge").setLevel(logging.ERROR)  # the refusal is reported below
    try:
        report = asyncio.run(receive())
        s = bridge.stats
        say(f"   数采仪 / logger: 发送 {report.sent} 包，{report.acknowledged} 包收到 9014 应答，重发 {report.resent}，重连 {report.reconnects}"
            f" / sent {report.sent}, acknowledged {report.acknowledged}, re-sent {report.resent}, reconnected {report.reconnects}")
        say(f"   网关 / bridge: 先存储后应答 {s['stored'] + s['part'] + s['assembled']} 包；拒收 CRC 错误 {s['malformed: crc']} 包（无应答）；"
            f"断线时丢弃半包 {s['partial packets dropped']}；拆分包合并 {s['assembled']}"
            f" / stored before acknowledging {s['stored'] + s['part'] + s['assembled']}, refused with bad CRC {s['malformed: crc']} (no reply),"
            f" half packet dropped on disconnect {s['partial packets dropped']}, split messages joined {s['assembled']}")
        token = secrets.token_urlsafe(12)
        anchor = tx.load_certificate((root / "pki" / "ca.pem").read_bytes()).dump()
        with serve_in_thread(create_bridge_app(bridge, [token])) as url:
            client = AcquisitionClient(url, token=token, trust_anchors=[anchor])
            resolve = tx.ChainResolver([anchor])
            frm, to = start.astimezone(dt.timezone.utc), (start + dt.timedelta(hours=2)).astimezone(dt.timezone.utc)
            for point, label in (("PWR-U1-CEMS-a05001", "CO2"), ("PWR-U1-CEMS-a00000", "flow")):
                payloads = []
                for signed in client.iter_measurement_batches(point, granularity="minute", from_=frm.isoformat(), to=to.isoformat()):
                    record = signed.model_dump(mode="json", by_alias=True, exclude_none=True)
                    trust.verify_document(record, resolve)
                    payloads.append(record["payload"])
                trust.verify_chain(payloads)
                cells = [(v, f) for p in payloads for t, v, f in payload_values(p) if frm.timestamp() <= t < to.timestamp()]
                flags = Counter(f for _, f in cells)
                valid = [Decimal(v) for v, f in cells if v and f in FLAGS_COUNTING_AS_VALID]
                mean = sum(valid) / len(valid) if valid else Decimal(0)
                say(f"   {point:20} {len(payloads)} 个签名批次，验签通过，链完整 / signed batches, signatures valid, chain unbroken;"
                    f" 08:00–10:00 {len(cells)} values ({', '.join(f'{k} {n}' for k, n in sorted(flags.items()))}),"
                    f" mean {label} {mean:,.1f} {payloads[0]['unit']}")
        return report.acknowledged == plan.minutes + 4 and s["malformed: crc"] == 1
    finally:
        bridge.close()
