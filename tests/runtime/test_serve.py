"""Multi-worker uvicorn rebuilds its listening socket from a descriptor (proto 0), so asyncio
skips TCP_NODELAY on accepted connections; cedx's protocol sets it on every connection."""

import gc
import importlib.util
import socket

from cedx.runtime import serve
from cedx.runtime.serve import NODELAY_HTTP, NoDelayH11Protocol, set_nodelay


class Transport:
    def __init__(self, sock):
        self.sock = sock

    def get_extra_info(self, name):
        return self.sock if name == "socket" else None


def test_nodelay_set_on_a_connection_from_a_rebuilt_listening_socket():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    rebuilt = socket.fromfd(listener.fileno(), socket.AF_INET, socket.SOCK_STREAM)  # as in workers
    client = socket.create_connection(listener.getsockname())
    conn, _ = rebuilt.accept()
    try:
        assert conn.proto == 0  # why asyncio's own TCP_NODELAY step does not apply
        assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        set_nodelay(Transport(conn))
        assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        for s in (conn, client, rebuilt, listener):
            s.close()


def test_the_serve_command_uses_the_protocol():
    module, name = NODELAY_HTTP.split(":")
    protocol = getattr(__import__(module, fromlist=[name]), name)
    # httptools (the server extra) when installed, h11 otherwise; TCP_NODELAY either way
    if importlib.util.find_spec("httptools"):
        assert protocol is serve.NoDelayHttpToolsProtocol
    else:
        assert protocol is NoDelayH11Protocol
    assert protocol.connection_made is not protocol.__mro__[1].connection_made
    import inspect

    from cedx.cli import platform_cmds

    source = inspect.getsource(platform_cmds.cmd_serve_platform)
    assert "http=NODELAY_HTTP" in source and "create_served_app" in source


def test_a_served_process_freezes_its_startup_heap():
    before = gc.get_threshold()
    try:
        serve.tune_gc_for_serving()
        assert gc.get_freeze_count() > 0 and gc.get_threshold()[0] > before[0]
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
