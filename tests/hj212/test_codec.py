"""HJ 212 codec: the Appendix A CRC, framing, fields, every CP suffix, replies, split messages,
every kind of malformed packet, and a corpus of packets published by other implementations."""

from __future__ import annotations

from pathlib import Path

import pytest

from cedx import hj212
from cedx.hj212 import codec
from cedx.hj212.errors import CRCError, FieldError, FramingError, LengthError, SizeError

CHECK_SEGMENT = b"QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&"
CORPUS = Path(__file__).with_name("corpus.tsv")


def corpus():
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            expect, source, packet = line.split("\t")
            yield pytest.param(expect, packet, id=f"{expect}:{packet[2:6]}:{source[:30]}")


def test_crc_check_value_of_the_standard():
    assert codec.crc16(CHECK_SEGMENT) == 0x1C80
    assert codec.crc_hex(CHECK_SEGMENT) == "1C80"
    # The wrong algorithm some implementations use gives another value for the same bytes.
    assert codec.crc16_modbus(CHECK_SEGMENT) != 0x1C80
    assert codec.crc16_modbus(b"123456789") == 0x4B37  # CRC-16/MODBUS catalogue check value


def test_frame_of_the_check_segment():
    assert codec.frame(CHECK_SEGMENT) == b"##0101" + CHECK_SEGMENT + b"1C80\r\n"


@pytest.mark.parametrize("expect,packet", list(corpus()))
def test_public_corpus(expect, packet):
    if expect == "ok":
        p = hj212.decode(packet + "\r\n")
        assert hj212.decode(hj212.encode(p)).to_json()["CP"] == p.to_json()["CP"]
    else:
        with pytest.raises(hj212.HJ212Error) as err:
            hj212.decode(packet + "\r\n")
        assert err.value.kind == expect
        if "MODBUS" in packet or "(wrong algorithm)" in packet:
            assert err.value.modbus


def test_modbus_crc_is_refused_with_a_hint():
    bad = b"##0101" + CHECK_SEGMENT + b"%04X\r\n" % codec.crc16_modbus(CHECK_SEGMENT)
    with pytest.raises(CRCError) as err:
        hj212.decode(bad)
    assert err.value.modbus and "CRC-16/MODBUS" in str(err.value) and err.value.expected == "1C80"


def test_lower_case_crc_and_missing_trailer_are_accepted_with_notes():
    p = hj212.decode(b"##0101" + CHECK_SEGMENT + b"1c80")
    assert p.cn == "1062" and p.fields == {"RtdInterval": "30"}
    assert any("lower-case" in n for n in p.notes) and any("CR LF" in n for n in p.notes)


def test_header_fields_and_flag_bits():
    p = hj212.decode(b"##0101" + CHECK_SEGMENT + b"1C80\r\n")
    assert (p.qn, p.st, p.cn, p.pw, p.mn, p.flag) == ("20160801085857223", "32", "1062", "100000", "010000A8900016F000169DC0", 5)
    assert p.reply_required and not p.split and p.version == "2017"
    doc = p.to_json()
    assert doc["flagBits"] == {"replyRequired": True, "split": False, "protocolVersion": 1}
    assert doc["length"] == 101 and doc["crc"] == "1C80"


ALL_SUFFIXES = ("QN=20261201101500000;ST=31;CN=2061;PW=123456;MN=CEMS0001;Flag=5;CP=&&DataTime=20261201100000;"
                "a05001-Min=221000.5,a05001-Avg=231000.25,a05001-Max=240100,a05001-Cou=1.25e3,a05001-ZsAvg=231500,"
                "a05001-ZsMin=220000,a05001-ZsMax=241000,a05001-Flag=N,a05001-EFlag=A01;"
                "a19001-Rtd=6.1,a19001-ZsRtd=6.0,a19001-SampleTime=20261201095900,a19001-Flag=M;"
                "a00000-Avg=-0.5,a00000-Cou=.5,a00000-Flag=C;x99999-Custom=free text&&")


def test_every_cp_suffix():
    p = hj212.decode(codec.frame(ALL_SUFFIXES))
    assert p.items["a05001"] == {"Min": "221000.5", "Avg": "231000.25", "Max": "240100", "Cou": "1.25e3", "ZsAvg": "231500",
                                 "ZsMin": "220000", "ZsMax": "241000", "Flag": "N", "EFlag": "A01"}
    assert p.items["a19001"] == {"Rtd": "6.1", "ZsRtd": "6.0", "SampleTime": "20261201095900", "Flag": "M"}
    assert p.items["x99999"] == {"Custom": "free text"}   # unknown suffix kept as text
    assert p.to_json()["dataTime"] == "2026-12-01T10:00:00"
    # a05001 Avg far above the standard's N3.3 width: accepted (stack CO2 is ~10^5 mg/m3)
    assert float(p.items["a05001"]["Avg"]) > 999.999


def test_2005_layout_is_accepted_and_labelled():
    seg = "ST=32;CN=2051;PW=123456;MN=12091200160055;CP=&&DataTime=20150430135700;B01-Avg=909.87,B01-Cou=54.59;011-Avg=9.1&&"
    p = hj212.decode(codec.frame(seg))
    assert p.version == "2005" and p.qn is None and p.items["B01"]["Cou"] == "54.59"
    flagged = hj212.decode(codec.frame(seg.replace("CP=", "Flag=1;CP=")))
    assert flagged.version == "2005" and flagged.reply_required
    # a reply to a 2005 packet is in the 2005 layout (Flag without version bits)
    assert codec.reply_for(flagged).flag == 0


def test_separators_and_empty_cp():
    p = hj212.decode(codec.frame("QN=20230723080035006;ST=32;CN=2031;PW=1;MN=M;Flag=3;CP=&&BeginTime=20240101000000,EndTime=20240102000000&&"))
    assert p.fields == {"BeginTime": "20240101000000", "EndTime": "20240102000000"}
    assert hj212.decode(codec.frame("QN=20230723080035006;ST=91;CN=9014;PW=1;MN=M;Flag=4;CP=&&&&")).items == {}


MALFORMED = [
    (b"#0101" + CHECK_SEGMENT + b"1C80\r\n", FramingError, "starts with '##'"),
    (b"##01a1" + CHECK_SEGMENT + b"1C80\r\n", FramingError, "4-digit"),
    (b"##0100" + CHECK_SEGMENT + b"1C80\r\n", LengthError, "says 100"),
    (b"##0102" + CHECK_SEGMENT + b"1C80\r\n", LengthError, "says 102"),
    (b"##0101" + CHECK_SEGMENT + b"1C81\r\n", CRCError, "does not match"),
    (b"##0101" + CHECK_SEGMENT + b"1CZ0\r\n", FramingError, "4 hex digits"),
    (b"##0101" + CHECK_SEGMENT + b"\r\n", LengthError, "says 101"),
    (b"##01", FramingError, "4-digit"),
    (b"", FramingError, "starts with"),
    (b"##0101" + CHECK_SEGMENT[:50] + b"\r\n" + CHECK_SEGMENT[50:] + b"1C80", FramingError, "CR/LF inside"),
]


@pytest.mark.parametrize("raw,kind,text", MALFORMED)
def test_malformed_framing(raw, kind, text):
    with pytest.raises(kind) as err:
        hj212.decode(raw)
    assert text in str(err.value) and "\n" not in str(err.value)


BAD_FIELDS = [
    ("QN=1;ST=32;PW=1;MN=M;Flag=4;CP=&&&&", "CN"),
    ("QN=1;ST=32;CN=2011;PW=1;MN=M;Flag=4", "CP"),
    ("QN=1;ST=32;CN=2011;PW=1;MN=M;Flag=4;CP=&&DataTime=20240101000000", "CP"),
    ("QN=1;ST=32;CN=20x1;PW=1;MN=M;Flag=4;CP=&&&&", "CN"),
    ("QN=2024-01;ST=32;CN=2011;PW=1;MN=M;Flag=4;CP=&&&&", "QN"),
    ("QN=1;ST=ab;CN=2011;PW=1;MN=M;Flag=4;CP=&&&&", "ST"),
    ("QN=1;ST=32;CN=2011;PW=1;MN=M;Flag=x;CP=&&&&", "Flag"),
    ("QN=1;ST=32;CN=2011;PW=1;MN=M;Flag=999;CP=&&&&", "Flag"),
    ("QN=1;ST=32;CN=2011;PW=1;MN=M;Flag=6;PNUM=2;PNO=3;CP=&&&&", "PNO"),
    ("QN=1;ST=32;CN=2011;PW=1;MN=M;Flag=6;PNUM=2;CP=&&&&", "PNO"),
    ("QN=1;ST=32;CN=2011;CN=2051;PW=1;MN=M;Flag=4;CP=&&&&", "CN"),
    ("QN=1;ST=32;CN=2011;PW;MN=M;Flag=4;CP=&&&&", "PW"),
    ("QN=1;ST=32;CN=2011;PW=1;MN=M;Flag=4;CP=&&DataTime=20241301000000&&", "CP/DataTime"),
    ("QN=1;ST=32;CN=2011;PW=1;MN=M;Flag=4;CP=&&DataTime=2024&&", "CP/DataTime"),
    ("QN=1;ST=32;CN=2011;PW=1;MN=M;Flag=4;CP=&&a05001-Rtd=12.5x&&", "CP/a05001-Rtd"),
    ("QN=1;ST=32;CN=2011;PW=1;MN=M;Flag=4;CP=&&a05001-Rtd=1,a05001-Rtd=2&&", "CP/a05001-Rtd"),
    ("QN=1;ST=32;CN=2011;PW=1;MN=M;Flag=4;CP=&&a05001-Flag=&&", "CP/a05001-Flag"),
    ("QN=1;ST=32;CN=2011;PW=1;MN=M;Flag=4;CP=&&a05001-SampleTime=yesterday&&", "CP/a05001-SampleTime"),
    ("QN=1;ST=32;CN=2011;PW=1;MN=M;Flag=4;CP=&&a05001Rtd&&", "CP/a05001Rtd"),
    ("QN=1;ST=32;CN=2011;PW=1;MN=M;Flag=4;CP=&&-Rtd=1&&", "CP/-Rtd"),
    ("QN=1;ST=32;CN=9011;PW=1;MN=M;Flag=4;CP=&&QnRtn=ok&&", "CP/QnRtn"),
]


@pytest.mark.parametrize("segment,field", BAD_FIELDS)
def test_bad_fields(segment, field):
    with pytest.raises(FieldError) as err:
        hj212.decode(codec.frame(segment))
    assert err.value.field == field, str(err.value)


def test_liberal_acceptance():
    # no QN/ST/PW, extra header field, 12-digit QN, empty value, trailing separator, LF only
    seg = "CN=2011;MN=X1;Vendor=acme;Flag=4;CP=&&DataTime=20240101000000;a01012-Rtd=,a01012-Flag=N;&&"
    p = hj212.decode(codec.frame(seg).replace(b"\r\n", b"\n"))
    assert p.qn is None and p.extra == {"Vendor": "acme"} and p.items["a01012"] == {"Rtd": "", "Flag": "N"}
    assert any("LF" in n for n in p.notes) and any("empty" in n for n in p.notes)


def test_json_round_trip_and_encode():
    p = hj212.decode(codec.frame(ALL_SUFFIXES))
    again = hj212.Packet.from_json(p.to_json())
    assert hj212.encode(again) == codec.frame(ALL_SUFFIXES)
    with pytest.raises(FieldError):
        hj212.Packet.from_json({"QN": "1"})
    with pytest.raises(FieldError):
        hj212.Packet.from_json({"CN": "2011", "CP": {"items": {"a05001": {"Rtd": "x"}}}})
    with pytest.raises(SizeError):
        codec.frame("x" * 10000)


def test_replies_follow_the_flag():
    base = "QN=20261201101500000;ST=31;CN={cn};PW=123456;MN=CEMS0001;Flag={flag};CP=&&DataTime=20261201100000&&"
    data = hj212.decode(codec.frame(base.format(cn="2061", flag=5)))
    reply = codec.reply_for(data)
    assert hj212.encode(reply) == codec.frame("QN=20261201101500000;ST=91;CN=9014;PW=123456;MN=CEMS0001;Flag=4;CP=&&&&")
    assert codec.reply_for(hj212.decode(codec.frame(base.format(cn="2061", flag=4)))) is None
    assert codec.reply_for(hj212.decode(codec.frame(base.format(cn="1013", flag=5)))).cn == "9013"
    req = hj212.decode(codec.frame(base.format(cn="1062", flag=5)))
    assert codec.reply_for(req).fields == {"QnRtn": "1"}
    assert codec.execution_result(req, 2).fields == {"ExeRtn": "2"}
    assert codec.request_reply(req, 9).cn == "9011"
    assert codec.reply_for(hj212.decode(codec.frame(base.format(cn="9014", flag=5)))) is None


def test_split_and_reassemble_in_any_order():
    items = {f"a{i:05d}": {"Avg": f"{i}.5", "Flag": "N"} for i in range(60)}
    msg = hj212.Packet(cn="2061", qn="20261201101500000", st="31", pw="123456", mn="CEMS0001", flag=5,
                       fields={"DataTime": "20261201100000"}, items=items)
    parts = codec.split(msg, 400)
    assert len(parts) > 2 and all(len(codec.build_segment(p)) <= 400 for p in parts)
    decoded = [hj212.decode(hj212.encode(p)) for p in parts]
    assert all(p.split and p.flag == 7 and p.pnum == len(parts) for p in decoded)
    whole = codec.reassemble(list(reversed(decoded)))
    assert whole.items == items and whole.fields == msg.fields and whole.flag == 5
    with pytest.raises(FieldError, match="PNO 2 of"):
        codec.reassemble([d for d in decoded if d.pno != 2])
    other = hj212.decode(hj212.encode(parts[0]))
    other.qn = "20261201101500001"
    with pytest.raises(FieldError, match="share"):
        codec.reassemble([*decoded[1:], other])


def test_frame_reader_resynchronises():
    good = codec.frame(CHECK_SEGMENT)
    lying = b"##0099" + CHECK_SEGMENT + b"1C80\r\n"
    modbus = b"##0101" + CHECK_SEGMENT + b"%04X\r\n" % codec.crc16_modbus(CHECK_SEGMENT)
    stream = b"noise" + good + lying + good[:30]
    reader = codec.FrameReader()
    out = []
    for i in range(0, len(stream), 7):          # arbitrary TCP segmentation
        out += reader.feed(stream[i:i + 7])
    out += reader.feed(good[30:] + modbus + good)
    kinds = [(err.kind if err else "ok") for _, err in out]
    assert kinds == ["framing", "ok", "length", "ok", "crc", "ok"]
    assert reader.pending == 0
    # a length field larger than the packet: the next packet is not swallowed
    out = reader.feed(b"##0150" + CHECK_SEGMENT + b"1C80\r\n" + good)
    assert [(err.kind if err else "ok") for _, err in out] == ["length", "ok"]


def test_frame_reader_bounds_memory():
    reader = codec.FrameReader(max_segment=200)
    out = reader.feed(b"##5000" + b"x" * 300)
    assert out and out[0][1].kind == "size"
    reader.feed(b"y" * 100_000)
    assert reader.pending < 10


def test_more_field_practice():
    # Chinese text in CP with a length field counting characters (the CRC still covers the bytes)
    seg = "QN=20261201101500000;ST=31;CN=3020;PW=1;MN=M1;Flag=4;CP=&&DataTime=20261201100000;i13001-Info=脱硫塔&&".encode()
    chars = len(seg.decode())
    p = hj212.decode(b"##%04d" % chars + seg + codec.crc_hex(seg).encode() + b"\r\n")
    assert p.items["i13001"]["Info"] == "脱硫塔" and any("characters" in n for n in p.notes)
    reader = codec.FrameReader()
    assert [e for _, e in reader.feed(b"##%04d" % chars + seg + codec.crc_hex(seg).encode() + b"\r\n" + codec.frame(CHECK_SEGMENT))] == [None, None]
    # empty optional header value, spaces around a number
    p = hj212.decode(codec.frame("QN=20261201101500000;ST=31;CN=2011;PW=;MN=M1;Flag=;CP=&&a01012-Rtd= 48.5 &&"))
    assert p.pw is None and p.flag is None and p.items["a01012"]["Rtd"] == "48.5"


def test_log_text_between_slashes_is_opaque():
    seg = ("QN=20190424002722330;ST=32;CN=3020;PW=123456;MN=23040281003022;Flag=5;CP=&&DataTime=20190424002000;"
           "PolId=w01018;i11001-Info=//R:4e 26, 45; pump=on, 0d 0a//;i12001-Info=1&&")
    p = hj212.decode(codec.frame(seg))
    assert p.items["i11001"]["Info"] == "//R:4e 26, 45; pump=on, 0d 0a//"
    assert p.items["i12001"] == {"Info": "1"} and p.fields["PolId"] == "w01018"
    assert hj212.encode(hj212.Packet.from_json(p.to_json())) == codec.frame(seg)


def test_frame_reader_keeps_the_packet_after_a_cut_one():
    good = codec.frame(CHECK_SEGMENT)
    cut = codec.frame(ALL_SUFFIXES)[:150]
    for junk in (b"", b"b\r&c;x=\rybx", b"\r\n"):
        reader = codec.FrameReader()
        out = []
        stream = cut + junk + good + cut[:40] + good
        for i in range(0, len(stream), 13):
            out += reader.feed(stream[i:i + 13])
        assert [raw for raw, err in out if err is None] == [good, good], junk


def test_lower_case_cp_and_spaces_around_keys():
    p = hj212.decode(codec.frame("qn=20261201101500000;st=31;cn=2011;pw=1;mn=M1;flag=4;cp=&& DataTime=20261201100000; a01012-Rtd=48.5&&"))
    assert p.cn == "2011" and p.fields == {"DataTime": "20261201100000"} and p.items == {"a01012": {"Rtd": "48.5"}}
    assert any("lower case" in n for n in p.notes)


def test_table_crc_equals_the_bitwise_algorithm_of_appendix_a():
    import random

    def appendix_a(data: bytes) -> int:       # the standard's loop, bit by bit
        crc = 0xFFFF
        for b in data:
            crc = (crc >> 8) ^ b
            for _ in range(8):
                lsb = crc & 1
                crc >>= 1
                if lsb:
                    crc ^= 0xA001
        return crc

    rnd = random.Random(212)
    for _ in range(300):
        data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(200)))
        assert codec.crc16(data) == appendix_a(data)
