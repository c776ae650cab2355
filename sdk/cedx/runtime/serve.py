"""Run an ASGI app with uvicorn on a loopback port in a background thread (demo, make inspect,
tests): the context manager yields the base URL and shuts the server down cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    """TCP_NODELAY on a connection's socket, whatever its ``proto`` field says."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with TCP_NODELAY set on every connection.

    With ``--workers`` > 1 uvicorn hands its listening socket to the worker processes rebuilt
    from a file descriptor, whose ``proto`` is 0; asyncio then skips TCP_NODELAY on accepted
    connections, and a response written in two pieces waits for the client's delayed ACK:
    ~45 ms per request on a keep-alive connection (22 requests/s per connection instead of
    300 here). Pass ``http=NODELAY_HTTP`` to ``uvicorn.run``.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn
        set_nodelay(transport)
        super().connection_made(transport)


try:  # the server extra installs httptools: its C parser costs a third of h11's per request (issue 14)
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class NoDelayHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol with TCP_NODELAY on every connection (see NoDelayH11Protocol)."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn
            set_nodelay(transport)
            super().connection_made(transport)

    NODELAY_HTTP = "cedx.runtime.serve:NoDelayHttpToolsProtocol"
except ImportError:  # pure-Python h11 otherwise
    NODELAY_HTTP = "cedx.runtime.serve:NoDelayH11Protocol"


def tune_gc_for_serving() -> None:
    """Once a server process has built its app: move everything alive now (modules, the spec,
    compiled validators) out of the collector's sight, and collect the young generation less
    often. A large report allocates ~10^5 short-lived objects; without this each full
    collection walks the whole long-lived heap again (~15 % of a 563 KiB report's CPU,
    issue 14). Cycles are still collected; only objects that live as long as the process are
    exempt (the practice the gc module documents for gc.freeze)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return cast(int, s.getsockname()[1])


@contextlib.contextmanager
def serve_in_thread(app: Any, port: int = 0, host: str = "127.0.0.1", timeout: float = 15) -> Iterator[str]:
    port = port or free_port(host)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"server on {host}:{port} did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=timeout)
