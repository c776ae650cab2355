"""`cedx serve hj212-bridge`: an asyncio TCP server for HJ 212 data loggers in front of a sealed store.

Per packet: cut from the stream (bounded buffer, resync after garbage) → framing, length, CRC
and fields checked → PW checked when the table sets one → stored durably in the receive store
(group commit, fsync) → only then the reply the packet's Flag asks for (9014 for data, 9013 for
notices, 9011 for requests). Malformed packets get no reply (the logger re-sends after its
timeout, HJ 212-2017 §6.5). After each commit the new readings are fed to metering points of
the sealed store; a periodic task seals the periods that ended ``seal_delay`` ago into signed,
hash-chained batches, which the acquisition interface serves (``--http-port``).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import json
import logging
import queue
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from ..acquisition.batches import STEP_SECONDS as STEP
from . import codec
from .errors import HJ212Error
from .mapping import Mapping
from .receive import Outcome, ReceiveStore

log = logging.getLogger("cedx.hj212.bridge")
UTC = dt.timezone.utc


@dataclass
class BridgeConfig:
    data_dir: Path
    mapping: Mapping
    idle_timeout: float = 300.0          # seconds without a byte before the connection is closed
    max_segment: int = codec.MAX_SEGMENT  # largest data segment accepted (bounds the per-connection buffer)
    max_incomplete: int = 64             # split messages per MN waiting for parts
    known_only: bool = False             # refuse MNs that the table does not list
    seal_interval: float = 30.0          # how often ended periods are sealed
    seal_delay: dict[str, Any] = field(default_factory=lambda: {"minute": 120.0, "hour": 900.0})  # wait for late packets
    source_id: str = "SRC-HJ212-BRIDGE"
    operator: str = "91320500MA1X2P3Q4R"
    group_size: int = 256                # packets per group commit at most
    feed_interval: float = 1.0           # readings reach the sealed store at least this often
    clock: Callable[[], dt.datetime] | None = None   # now, as an aware datetime (tests)


class Bridge:
    def __init__(self, config: BridgeConfig):
        from ..acquisition.app import create_source_app

        self.config = config
        self.mapping = config.mapping
        data_dir = Path(config.data_dir)
        self.clock = config.clock or (lambda: dt.datetime.now(UTC))
        self.receive = ReceiveStore(data_dir / "receive.db", self.mapping, max_incomplete=config.max_incomplete)
        # The acquisition source's own store-backed app: the bridge writes into its SealedStore
        # (same database, same signing key), so `cedx serve acquisition --site none --dir DIR`
        # serves the same batches.
        source = create_source_app("none", data_dir, [], clock=self.clock).state.source
        self.sink, self.key, self.chain = source.store, source.signer.key, source.signer.certificate_chain
        self.source_id = source.signer.source_id
        self.stats: Counter[str] = Counter()
        self.registered: set[str] = set()
        self._queue: queue.Queue[Any] = queue.Queue()
        self._writer = threading.Thread(target=self._write_loop, name="hj212-writer", daemon=True)
        self._writer.start()
        self._sealer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="hj212-sealer")
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.fed: Counter[str] = Counter()
        self._feed_lock = threading.Lock()
        self._feed_wanted = threading.Event()
        self._stopping = threading.Event()
        replayed = self.receive.replay()  # the table may now list loggers it did not list before
        if replayed:
            log.info("%d stored readings of loggers or codes not in the table are looked at again", replayed)
        self._feeder = threading.Thread(target=self._feed_loop, name="hj212-feeder", daemon=True)
        self._feeder.start()
        self._feed_wanted.set()  # feed what an earlier run stored but did not feed

    # --- the writer thread: group commit ---------------------------------------------
    def _submit(self, item: Any) -> concurrent.futures.Future[Any]:
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._queue.put((item, fut))
        return fut

    def _write_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is StopIteration:
                return
            group = [first]
            while len(group) < self.config.group_size:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is StopIteration:
                    self._queue.put(StopIteration)
                    break
                group.append(nxt)
            work = [(i, f) for i, f in group if i is not None]
            try:
                outcomes = self.receive.store_group([i for i, _ in work]) if work else []
            except Exception as exc:  # storage failed: nobody is acknowledged
                log.exception("receive store failed")
                for _, f in group:
                    f.set_exception(exc)
                continue
            for (_, f), o in zip(work, outcomes):
                f.set_result(o)
            for i, f in group:
                if i is None:
                    f.set_result(None)
            if work:
                self._feed_wanted.set()

    # --- the feeder thread: readings → sealed store, off the reply path ----------------------------
    def feed_now(self) -> None:
        with self._feed_lock:
            try:
                while True:
                    counts = self.receive.feed(self.sink, self.registered, limit=20_000)
                    self.fed.update(counts)
                    if sum(counts.values()) < 20_000:
                        break
            except Exception:
                log.exception("feeding the sealed store failed; the readings stay pending")

    def _feed_loop(self) -> None:
        while not self._stopping.is_set():
            self._feed_wanted.wait(self.config.feed_interval)
            if self._stopping.is_set():
                return
            self._feed_wanted.clear()
            self.feed_now()
            time.sleep(min(self.config.feed_interval, 0.2))   # batch the appends of busy periods

    async def store(self, p: codec.Packet, raw: bytes, peer: str) -> Outcome:
        return await asyncio.wrap_future(self._submit((p, raw, peer)))

    async def flush(self) -> None:
        """Wait until everything submitted so far is stored and fed."""
        await asyncio.wrap_future(self._submit(None))
        await asyncio.get_running_loop().run_in_executor(None, self.feed_now)

    # --- sealing -------------------------------------------------------------------------------
    def seal_now(self, now: dt.datetime | None = None) -> int:
        """Seal, for every point, the periods that ended at least ``seal_delay`` before ``now``."""
        now = now or self.clock()
        total = 0
        for doc in self.sink.points():
            pid = doc["pointId"]
            base = self.sink.granularities(pid)[0]
            # Instants before floor(until) are sealed: their periods ended at least seal_delay ago.
            until = now - dt.timedelta(seconds=self.config.seal_delay.get(base, 0))
            total += self.sink.seal(pid, until=until)
        self.stats["batches sealed"] += total
        return total

    async def _seal_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.config.seal_interval)
            try:
                await self.flush()          # every reading stored so far is fed before sealing
                await loop.run_in_executor(self._sealer, self.seal_now)
            except Exception:
                log.exception("sealing failed; retried at the next interval")

    # --- TCP -----------------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._handle, host, port)
        task = asyncio.create_task(self._seal_loop())
        self._tasks.add(task)
        return cast(int, self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.flush()

    def close(self) -> None:
        self._queue.put(StopIteration)
        self._writer.join(10)
        self._stopping.set()
        self._feed_wanted.set()
        self._feeder.join(30)
        self._sealer.shutdown(wait=True)
        self.receive.close()
        self.sink.close()

    def _refusal(self, p: codec.Packet) -> int | None:
        """None when the packet may be stored, else the QnRtn code of the refusal (3 PW, 4 MN)."""
        logger = self.mapping.loggers.get(p.mn or "")
        if logger is None:
            return 4 if self.config.known_only else None
        return None if logger.password is None or p.pw == logger.password else 3

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = writer.get_extra_info("peername")[:2]
        peer = f"{host}:{port}"
        frames = codec.FrameReader(self.config.max_segment)
        self.stats["connections"] += 1
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while True:
                try:
                    data = await asyncio.wait_for(reader.read(8192), self.config.idle_timeout)
                except asyncio.TimeoutError:
                    self.stats["idle timeouts"] += 1
                    log.info("%s: idle for %.0f s, closing", peer, self.config.idle_timeout)
                    break
                if not data:
                    if frames.pending:
                        self.stats["partial packets dropped"] += 1
                        log.info("%s: closed mid-packet (%d bytes dropped, not acknowledged)", peer, frames.pending)
                    break
                # Everything that arrived together is stored in one group; replies go out in order.
                started = [self._begin(raw, error, peer) for raw, error in frames.feed(data)]
                for item in started:
                    if item is not None:
                        await self._finish(item[0], item[1], writer, peer)
        except (ConnectionError, OSError) as exc:
            log.info("%s: connection lost (%s)", peer, exc)
        except asyncio.CancelledError:  # the bridge is stopping
            pass
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _begin(self, raw: bytes, error: HJ212Error | None, peer: str) -> tuple[codec.Packet, int | asyncio.Future[Any]] | None:
        """Check a packet and hand it to the writer; returns what _finish needs, or None."""
        p = None
        if error is None:
            try:
                p = codec.decode(raw, lenient_tail=False)
            except HJ212Error as exc:
                error = exc
        if error is not None or p is None:
            self.stats["malformed"] += 1
            self.stats[f"malformed: {error.kind}"] += 1  # type: ignore[union-attr]
            log.warning("%s: packet refused, no reply: %s", peer, error)
            return None
        refusal = self._refusal(p)
        if refusal is not None:
            what = "password" if refusal == 3 else "unknown MN"
            self.stats[f"refused: {what}"] += 1
            log.warning("%s: MN %s: %s; packet refused", peer, p.mn, what)
            if p.reply_required and p.cn not in codec.DATA_COMMANDS and not p.cn.startswith("90"):
                return p, refusal
            return None
        return p, asyncio.wrap_future(self._submit((p, raw, peer)))

    async def _finish(self, p: codec.Packet, stored: int | asyncio.Future[Any], writer: asyncio.StreamWriter, peer: str) -> None:
        if isinstance(stored, int):             # refused before storing: the request gets QnRtn 3 or 4
            await self._send(writer, codec.request_reply(p, stored))
            return
        try:
            outcome = await stored
        except Exception as exc:
            # Not stored, so not acknowledged: drop the connection; the logger reconnects and re-sends.
            self.stats["storage failures"] += 1
            raise ConnectionAbortedError(f"receive store failed: {exc}") from exc
        self.stats[outcome.status] += 1
        self.stats["conflicts"] += outcome.conflicts
        if outcome.status == "refused":
            log.warning("%s: %s", peer, outcome.note)
            return
        reply = codec.reply_for(p)
        if reply is not None:
            await self._send(writer, reply)

    async def _send(self, writer: asyncio.StreamWriter, reply: codec.Packet) -> None:
        writer.write(codec.encode(reply))
        await writer.drain()

    def summary(self) -> dict[str, Any]:
        return {"bridge": dict(self.stats), "fed": dict(self.fed), **self.receive.summary()}


# --- the acquisition interface over the sealed store ---------------------------------------------
def payload_values(payload: dict[str, Any]) -> Iterator[tuple[int, str, str]]:
    """(epoch, value text, flag) of a columnar batch payload."""
    step = STEP[payload["granularity"]]
    t0 = int(dt.datetime.fromisoformat(payload["start"].replace("Z", "+00:00")).timestamp())
    for i, (v, f) in enumerate(zip(payload["values"], payload["flags"])):
        yield t0 + i * step, v, f


def create_bridge_app(bridge: Bridge, tokens: list[str]) -> Any:
    """The acquisition interface over the bridge's sealed batches: the reference source's app
    serving the store the bridge writes (site "none": no simulation of its own)."""
    from ..acquisition.app import create_source_app

    return create_source_app("none", Path(bridge.config.data_dir), tokens, clock=bridge.clock)


# --- command line ----------------------------------------------------------------------------
def run_bridge_cli(args: argparse.Namespace) -> int:
    from ..cli import CliError
    from .mapping import MappingError

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        mapping = Mapping.load(args.mapping)
    except (MappingError, OSError) as exc:
        raise CliError(f"serve hj212-bridge: {exc}") from None
    for entry in args.password:
        mn, eq, pw = entry.partition("=")
        if not eq or mn not in mapping.loggers:
            raise CliError(f"serve hj212-bridge: --password {entry!r}: expected MN=PW for a logger of the table")
        lg = mapping.loggers[mn]
        mapping.loggers[mn] = type(lg)(lg.mn, lg.prefix, lg.facility_id, pw, lg.base, lg.since, lg.instruments)
    if args.http_port and not args.token:
        raise CliError("serve hj212-bridge: --http-port needs at least one --token")
    bridge = Bridge(BridgeConfig(Path(args.dir), mapping, idle_timeout=args.idle_timeout, seal_interval=args.seal_interval,
                                 known_only=args.known_only,
                                 seal_delay={"minute": args.seal_delay, "hour": max(900.0, args.seal_delay)}))

    async def main() -> None:
        port = await bridge.start(args.host, args.port)
        log.info("HJ 212 bridge listening on %s:%d (data in %s)", args.host, port, args.dir)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        http = None
        if args.http_port:
            import uvicorn

            http = uvicorn.Server(uvicorn.Config(create_bridge_app(bridge, args.token), host=args.http_host,
                                                 port=args.http_port, log_level=args.log_level.lower()))
            # Signals belong to this process loop (stop below), not to uvicorn.
            http.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
            http.install_signal_handlers = lambda: None  # type: ignore[attr-defined]  # older uvicorn
            serve_task = asyncio.create_task(http.serve())
        await stop.wait()
        if http is not None:
            http.should_exit = True
            await serve_task
        await bridge.stop()

    try:
        asyncio.run(main())
    finally:
        summary = bridge.summary()
        bridge.close()
        print(json.dumps(summary, ensure_ascii=False))
    return 0
