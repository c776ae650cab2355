"""`cedx hj212 decode|encode` as a user runs them: JSON out, exit 0; one line on stderr, exit 1."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from cedx.cli import main
from cedx.hj212 import codec

from ..hj212.test_codec import ALL_SUFFIXES, CHECK_SEGMENT, corpus

GOOD = b"##0101" + CHECK_SEGMENT + b"1C80\r\n"


def cedx(*args, stdin: bytes):
    return subprocess.run([sys.executable, "-m", "cedx.cli", *args], input=stdin, capture_output=True)


def run(monkeypatch, capsys, args, stdin: bytes):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    buf = io.BytesIO()
    out = io.TextIOWrapper(buf, encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", out)
    rc = main(args)
    out.flush()
    return rc, buf.getvalue(), capsys.readouterr().err


def test_decode_and_encode_as_processes():
    r = cedx("hj212", "decode", stdin=GOOD)
    assert r.returncode == 0 and r.stderr == b""
    doc = json.loads(r.stdout)
    assert doc["CN"] == "1062" and doc["CP"]["RtdInterval"] == "30" and doc["crc"] == "1C80"
    back = cedx("hj212", "encode", stdin=r.stdout)
    assert back.returncode == 0 and back.stdout == GOOD
    bad = cedx("hj212", "decode", stdin=GOOD.replace(b"1C80", b"1C81"))
    assert bad.returncode == 1 and bad.stdout == b""
    line = bad.stderr.decode().strip()
    assert len(line.splitlines()) == 1 and line.startswith("cedx: hj212 decode: crc:") and "Traceback" not in line
    assert cedx("hj212", "frobnicate", stdin=b"").returncode == 2


@pytest.mark.parametrize("expect,packet", list(corpus()))
def test_corpus_through_the_cli(monkeypatch, capsys, expect, packet):
    rc, out, err = run(monkeypatch, capsys, ["hj212", "decode"], packet.encode() + b"\n")
    if expect == "ok":
        assert rc == 0 and json.loads(out)["CP"] is not None and err == ""
    else:
        assert rc == 1 and out == b"" and err.startswith(f"cedx: hj212 decode: {expect}:") and err.count("\n") == 1


@pytest.mark.parametrize("stdin", [
    b"", b"hello", b"##", b"##0101", GOOD[:-10], GOOD.replace(b"CN=1062", b"CN=10x2"), GOOD * 2,
    b"##0101" + CHECK_SEGMENT + b"%04X" % codec.crc16_modbus(CHECK_SEGMENT), bytes(range(256)), b"\xff" * 30000,
])
def test_malformed_input_is_one_line_exit_1(monkeypatch, capsys, stdin):
    rc, out, err = run(monkeypatch, capsys, ["hj212", "decode"], stdin)
    assert rc == 1 and out == b"" and err.count("\n") == 1 and "Traceback" not in err


def test_pasted_forms_are_accepted(monkeypatch, capsys):
    for stdin in (b"  " + GOOD.strip() + b"\\r\\n\n", GOOD.hex().encode() + b"\n", GOOD.strip()):
        rc, out, _ = run(monkeypatch, capsys, ["hj212", "decode", "--compact"], stdin)
        assert rc == 0 and json.loads(out)["MN"] == "010000A8900016F000169DC0"


def test_encode_split_and_decode_all(monkeypatch, capsys):
    doc = codec.decode(codec.frame(ALL_SUFFIXES)).to_json()
    rc, packets, _ = run(monkeypatch, capsys, ["hj212", "encode", "--split", "320"], json.dumps(doc).encode())
    assert rc == 0 and packets.count(b"\r\n##") >= 1
    rc, out, _ = run(monkeypatch, capsys, ["hj212", "decode", "--all"], packets)
    lines = [json.loads(x) for x in out.decode().splitlines()]
    assert rc == 0 and lines[-1]["reassembled"] and lines[-1]["CP"]["items"] == doc["CP"]["items"]
    rc, out, err = run(monkeypatch, capsys, ["hj212", "decode", "--all"], packets.split(b"\r\n", 1)[1])
    assert rc == 1 and "incomplete" in out.decode() and err.count("\n") == 1


def test_encode_refuses_bad_json(monkeypatch, capsys):
    for stdin in (b"{", b"[1]", b'{"CN": "2011", "Flag": "five"}', b'{"CP": {}}'):
        rc, out, err = run(monkeypatch, capsys, ["hj212", "encode"], stdin)
        assert rc == 1 and out == b"" and err.startswith("cedx: hj212 encode:") and err.count("\n") == 1


def test_bom_and_spaced_hex(monkeypatch, capsys):
    spaced = b" ".join(b"%02x" % b for b in GOOD)
    for stdin in (b"\xef\xbb\xbf" + GOOD, spaced):
        rc, out, _ = run(monkeypatch, capsys, ["hj212", "decode", "--compact"], stdin)
        assert rc == 0 and json.loads(out)["CN"] == "1062"


def test_simulate_against_a_bridge(tmp_path):
    import asyncio
    import threading

    from cedx.hj212.bridge import Bridge, BridgeConfig
    from cedx.hj212.logger import LoggerPlan, site_mapping
    from cedx.hj212.mapping import Mapping

    bridge = Bridge(BridgeConfig(tmp_path, Mapping.load(site_mapping(LoggerPlan())), seal_interval=3600))
    loop = asyncio.new_event_loop()
    port = loop.run_until_complete(bridge.start("127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        r = cedx("hj212", "simulate", "--port", str(port), "--minutes", "3", "--start", "2026-11-02T08:00",
                 "--broken-packet", "1", "--reply-timeout", "0.3", stdin=b"")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == {"sent": 4, "acknowledged": 3, "resent": 1, "reconnects": 0, "brokenSent": 1}
    finally:
        asyncio.run_coroutine_threadsafe(bridge.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        bridge.close()
    closed = cedx("hj212", "simulate", "--port", str(port), "--minutes", "1", stdin=b"")
    assert closed.returncode == 1 and closed.stderr.decode().count("\n") == 1


def test_serve_bridge_as_a_process(tmp_path):
    import signal
    import time

    import yaml

    from cedx.hj212.logger import LoggerPlan, site_mapping
    from cedx.runtime.serve import free_port

    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site_mapping(LoggerPlan()), allow_unicode=True), encoding="utf-8")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "cedx.cli", "serve", "hj212-bridge", "--dir", str(tmp_path / "d"),
                             "--mapping", str(tmp_path / "site.yaml"), "--host", "127.0.0.1", "--port", str(port),
                             "--log-level", "warning"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            r = cedx("hj212", "simulate", "--port", str(port), "--minutes", "2", "--start", "2026-11-02T08:00",
                     "--reply-timeout", "1", stdin=b"")
            if r.returncode == 0:
                break
            time.sleep(0.2)
        assert json.loads(r.stdout)["acknowledged"] == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["packets"] == {"stored": 2} and summary["readings"]["fed"] == 14
    bad = cedx("serve", "hj212-bridge", "--mapping", str(tmp_path / "missing.yaml"), stdin=b"")
    assert bad.returncode == 2 and bad.stderr.decode().count("\n") == 1
