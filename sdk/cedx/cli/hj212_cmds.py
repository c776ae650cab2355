"""`cedx hj212 decode|encode` (the HJ 212 codec on standard input/output) and `cedx serve hj212-bridge`.

Exit status: 0 decoded / encoded, 1 the packet or JSON is malformed (one line on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any


def _invalid(message: str) -> Exception:
    from . import EXIT_INVALID, CliError

    return CliError(message, EXIT_INVALID)


def _read_packet(data: bytes) -> tuple[bytes, list[str]]:
    """What a user pastes: surrounding whitespace and line ends are dropped; a packet copied from
    source code with a literal ``\\r\\n``, or a hex dump of the bytes (``2323...``), is accepted."""
    notes = []
    text = data.strip()
    if text.startswith(b"\xef\xbb\xbf"):
        text = text[3:].strip()
        notes.append("UTF-8 byte-order mark removed")
    if text.endswith(b"\\r\\n"):
        text = text[:-4]
        notes.append("literal \\r\\n at the end removed")
    compact = re.sub(rb"\s+", b"", text)
    if re.fullmatch(rb"2323(?:[0-9A-Fa-f]{2})+", compact or b"-"):
        text = bytes.fromhex(compact.decode()).strip()
        notes.append("input read as a hex dump")
    return text, notes


def cmd_decode(args: argparse.Namespace) -> int:
    from ..hj212 import codec
    from ..hj212.errors import HJ212Error

    data = sys.stdin.buffer.read()
    if args.all:
        return _decode_all(data)
    if len(data) > 20_000:
        raise _invalid("hj212 decode: input larger than any packet (a packet is at most 10,012 bytes)")
    packet, notes = _read_packet(data)
    if not packet:
        raise _invalid("hj212 decode: framing: no packet on standard input")
    if b"\n##" in packet or b"\r##" in packet:
        raise _invalid("hj212 decode: more than one packet on standard input (use --all)")
    try:
        p = codec.decode(packet + b"\r\n")
    except HJ212Error as exc:
        raise _invalid(f"hj212 decode: {exc.kind}: {exc}") from None
    p.notes[:0] = notes
    print(json.dumps(p.to_json(), ensure_ascii=False, indent=None if args.compact else 2))
    return 0


def _decode_all(data: bytes) -> int:
    """JSON Lines: one object per packet; split messages are also printed reassembled."""
    from ..hj212 import codec
    from ..hj212.errors import HJ212Error

    reader, bad = codec.FrameReader(), 0
    parts: dict[tuple[Any, ...], dict[int | None, codec.Packet]] = {}
    frames = reader.feed(data)
    if reader.pending:
        frames += reader.feed(b"\r\n")  # the last packet may lack CR LF
    for raw, error in frames:
        if error is None:
            try:
                p = codec.decode(raw)
            except HJ212Error as exc:
                error = exc
        if error is not None:
            bad += 1
            print(json.dumps({"error": error.kind, "message": str(error)}, ensure_ascii=False))
            continue
        print(json.dumps(p.to_json(), ensure_ascii=False))
        if p.split:
            key = (p.mn, p.qn, p.cn, p.pnum)
            parts.setdefault(key, {})[p.pno] = p
            if len(parts[key]) == p.pnum:
                whole = codec.reassemble(list(parts.pop(key).values()))
                print(json.dumps({"reassembled": True, **whole.to_json()}, ensure_ascii=False))
    for (mn, qn, cn, pnum), got in parts.items():
        bad += 1
        print(json.dumps({"error": "field", "message": f"message MN={mn} QN={qn} CN={cn} incomplete: "
                          f"{len(got)} of {pnum} packets"}, ensure_ascii=False))
    if bad:
        print(f"cedx: hj212 decode: {bad} malformed or incomplete packet(s)", file=sys.stderr)
        return 1
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    from ..hj212 import codec
    from ..hj212.errors import HJ212Error

    try:
        doc = json.loads(sys.stdin.buffer.read())
    except ValueError as exc:
        raise _invalid(f"hj212 encode: standard input is not JSON ({exc})") from None
    try:
        packets = [codec.Packet.from_json(d) for d in (doc if isinstance(doc, list) else [doc])]
        out = b"".join(codec.encode(q) for p in packets for q in (codec.split(p, args.split) if args.split else [p]))
    except HJ212Error as exc:
        raise _invalid(f"hj212 encode: {exc.kind}: {exc}") from None
    sys.stdout.buffer.write(out)
    sys.stdout.flush()
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """Play the simulated CEMS data logger against any HJ 212 receiver (ours or another)."""
    import asyncio
    import datetime as dt

    from ..hj212.logger import LoggerPlan, run_logger
    from ..instants import CST

    start = dt.datetime.fromisoformat(args.start).replace(tzinfo=CST) if args.start else \
        (dt.datetime.now(CST) - dt.timedelta(minutes=args.minutes)).replace(second=0, microsecond=0)
    plan = LoggerPlan(mn=args.mn, pw=args.pw, start=start, minutes=args.minutes,
                      broken_packet=args.broken_packet, drop_at=args.drop_at)
    try:
        report = asyncio.run(run_logger(args.host, args.port, plan, reply_timeout=args.reply_timeout))
    except (OSError, RuntimeError) as exc:
        raise _invalid(f"hj212 simulate: {exc}") from None
    print(json.dumps({"sent": report.sent, "acknowledged": report.acknowledged, "resent": report.resent,
                      "reconnects": report.reconnects, "brokenSent": report.broken_sent}))
    return 0


def cmd_serve_bridge(args: argparse.Namespace) -> int:
    from ..hj212.bridge import run_bridge_cli

    return run_bridge_cli(args)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hj = sub.add_parser("hj212", help="decode and encode HJ 212-2017 packets").add_subparsers(
        dest="hj212_command", metavar="ACTION", required=True)
    p = hj.add_parser("decode", help="one packet on standard input → JSON on standard output")
    p.add_argument("--all", action="store_true", help="a stream of packets → JSON Lines (split messages reassembled)")
    p.add_argument("--compact", action="store_true", help="one-line JSON")
    p.set_defaults(func=cmd_decode)
    p = hj.add_parser("encode", help="JSON (as printed by decode; or a list) on standard input → packet(s)")
    p.add_argument("--split", type=int, metavar="BYTES", help="split into packets of at most BYTES (PNUM/PNO)")
    p.set_defaults(func=cmd_encode)

    p = hj.add_parser("simulate", help="a simulated CEMS data logger sending minute and hourly data to HOST:PORT")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9212)
    p.add_argument("--mn", default="CEMS0001PWRU1")
    p.add_argument("--pw", default="123456")
    p.add_argument("--minutes", type=int, default=60)
    p.add_argument("--start", help="local start time YYYY-MM-DDThh:mm (default: MINUTES ago)")
    p.add_argument("--broken-packet", type=int, metavar="INDEX", help="send packet INDEX once with a bad CRC")
    p.add_argument("--drop-at", type=int, metavar="INDEX", help="cut the connection in the middle of packet INDEX")
    p.add_argument("--reply-timeout", type=float, default=2.0)
    p.set_defaults(func=cmd_simulate)

    serve = sub.choices.get("serve")  # created by platform_cmds; add our service to it
    if serve is None:
        return
    services = next(a for a in serve._actions if isinstance(a, argparse._SubParsersAction))
    p = services.add_parser("hj212-bridge", help="TCP bridge: HJ 212 data loggers → signed acquisition batches")
    p.add_argument("--dir", default="cedx-hj212-bridge", help="data directory (receive store, sealed batches, PKI)")
    p.add_argument("--host", default="0.0.0.0", help="TCP address for data loggers")
    p.add_argument("--port", type=int, default=9212, help="TCP port for data loggers")
    p.add_argument("--mapping", help="code → metering-point table (YAML; default: the built-in table)")
    p.add_argument("--password", action="append", default=[], metavar="MN=PW",
                   help="accept this MN only with this PW (repeatable; default: any MN, any PW)")
    p.add_argument("--known-only", action="store_true", help="refuse packets of MNs the table does not list")
    p.add_argument("--idle-timeout", type=float, default=300.0, help="seconds without a byte before closing")
    p.add_argument("--seal-interval", type=float, default=30.0, help="seconds between sealing rounds")
    p.add_argument("--seal-delay", type=float, default=120.0,
                   help="seconds after a minute ends before it is sealed (late packets still fit); hours wait 900 s")
    p.add_argument("--http-port", type=int, help="also serve the acquisition interface over HTTP on this port")
    p.add_argument("--http-host", default="127.0.0.1")
    p.add_argument("--token", action="append", default=[], help="bearer token accepted by the HTTP interface")
    p.add_argument("--log-level", default="info")
    p.set_defaults(func=cmd_serve_bridge)
