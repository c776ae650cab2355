"""The request-body JSON parser: orjson's fast path (``_fast_parse``) must give exactly what the
standard library's I-JSON path (``_parse_json_exact``) gives, or decline so that the exact path
decides. A wrong fast path would accept a duplicate key, a large integer read as a float, a
lone surrogate, or a body nested too deep."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from cedx.runtime import server
from cedx.runtime.errors import Problem

pytest.importorskip("orjson")

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "spec" / "examples").glob("*.json"))


def _typed(value):
    """A structure that tells 1 from 1.0 from True (== does not)."""
    if isinstance(value, dict):
        return ("d", [(k, _typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("l", [_typed(v) for v in value])
    return (type(value).__name__, value)


def _exact(raw: bytes):
    try:
        return "ok", _typed(server._parse_json_exact(raw))
    except Problem as problem:
        return "problem", problem.detail


def _check(raw: bytes) -> bool:
    """Fast and exact agree; True when the fast path decided."""
    fast = server._fast_parse(raw)
    if fast is server._UNDECIDED:
        return False
    assert _exact(raw) == ("ok", _typed(fast)), raw[:200]
    return True


def test_fast_path_decides_the_spec_examples_and_agrees():
    assert EXAMPLES
    for path in EXAMPLES:
        raw = path.read_bytes()
        assert _check(raw), path.name  # ordinary documents take the fast path
        assert server.parse_json(raw) == json.loads(raw)


@pytest.mark.parametrize("raw", [
    b'{"a":1,"a":2}', b'{"p":{"x":[{"k":1,"k":1}]}}', b'{"a\\"":1,"a\\"":2}', b'{"a\\\\":1,"a\\\\":2}',
    b'{"a":"\\ud800"}', b'{"a":"\\udc00"}', b'{"a":9007199254740993}', b'{"a":-9007199254740993}',
    b'{"a":123456789012345678901234567890}', b'{"a":1e400}', b'{"a":1.5}', b'{"a":-0}', b'{"a":NaN}',
    b'\xef\xbb\xbf{"a":1}', b'{"a":"\xff"}', b'{"a":["ok","\\u000f"]}', b'{"a":"\\uFFFE"}',
    b'{"a":' + b"[" * 65 + b"]" * 65 + b"}", b'{"a":' + b"[" * 63 + b"]" * 63 + b"}",
    b'{"s":"' + b"[" * 500 + b'"}', b'{"s":"\\"[[[[","t":"\\\\"}', b'{"a:b":1,"c":"d:e"}', b"[]", b"{}",
    b'"x"', b"1", b"null", b"[1,]", b'{"a":1}x', b"\x0c{}", b'{"a":"\x01"}', b'{"a":"\\ud83d\\ude00"}',
    b'{"a" :1,"a":2,"b":3}', b'{ "a" : 1 , "a" : 2 }', b'{"a":true,"b":false,"c":1E2}', b'{"a":true,"b":false}',
    b'{"a":1234567890123456}', b'{"a":123456789012345}', b'{"a":1.5}', b'{"a":-0.0}', b'{"a":0.1}',
    b'{"a":9007199254740991}', b'{"a":-9007199254740992}', b'{"a":18446744073709551616}', b'{"a":1e22}',
    b'{"a":' + b"[" * 64 + b"]" * 64 + b"}", b"[" * 64 + b"1" + b"]" * 64, b"[" * 65 + b"]" * 65,
    b'{"a":' + b'{"b":' * 70 + b"1" + b"}" * 70 + b"}", b'{"k":"x\\":1","k":2}', b'{"k\\u0041":1,"kA":2}',
])
def test_fast_path_agrees_or_declines(raw):
    _check(raw)
    status, exact = _exact(raw)
    if status == "ok":
        assert _typed(server.parse_json(raw)) == exact
    else:
        with pytest.raises(Problem) as info:
            server.parse_json(raw)
        assert info.value.detail == exact  # refusals keep the exact path's message


def test_compact_bodies_take_the_short_road():
    """orjson's own compact encoding (what cedx's client sends) is decided without the scan of
    the bytes outside strings; a nesting of 65 is still refused, 64 accepted."""
    assert _check(b'{"a":[1,{"b":"c:d"}],"e":true,"f":1.25}')
    assert _check(b'{"a":' + b"[" * 63 + b"]" * 63 + b"}")
    assert not _check(b'{"a":' + b"[" * 64 + b"]" * 64 + b"}")  # 65 levels: the exact path refuses
    with pytest.raises(Problem, match="deeper than 64"):
        server.parse_json(b'{"a":' + b"[" * 64 + b"]" * 64 + b"}")


def test_duplicate_keys_are_never_taken_from_the_fast_path():
    assert not _check(b'{"a":1,"b":{"c":[1,2],"c":[1,2]}}')
    with pytest.raises(Problem, match="duplicate object key"):
        server.parse_json(b'{"a":1,"b":{"c":[1,2],"c":[1,2]}}')


@pytest.mark.parametrize("raw", [b'{"a":1, "a":":x"}', b'{"a":1,"a":":x"}', b'{"b":":", "b":":"}',
                                 b'{"k":{":x":1}, "k":2}'])
def test_a_duplicate_key_is_found_when_a_string_begins_with_a_colon(raw):
    # the re-encoding's members were counted as '":', which a string beginning with ':' also shows
    assert server._fast_parse(raw) is server._UNDECIDED
    assert server._fast_parse(raw, True) is server._UNDECIDED
    with pytest.raises(Problem, match="duplicate object key"):
        server.parse_json(raw)
    with pytest.raises(Problem, match="duplicate object key"):
        server.parse_json_encoded(raw)


@pytest.mark.parametrize("escape", [b"\\b", b"\\f", b"\\u0008", b"\\\\\\f"])
def test_short_escapes_of_characters_xml_cannot_carry_are_refused(escape):
    raw = b'{"entityName":"x' + escape + b'y"}'
    with pytest.raises(Problem) as exc:
        server.parse_json(raw)
    assert [(e.path, e.code) for e in exc.value.errors] == [("$.entityName", "CHARACTER-NOT-ALLOWED")]
    # an escaped backslash before "b" is two characters XML carries
    assert server.parse_json(b'{"path":"C:\\\\bin\\\\f"}') == {"path": "C:\\bin\\f"}


def test_random_mutations_of_a_document_agree():
    rng = random.Random(14)
    base = (Path(__file__).resolve().parents[2] / "spec" / "examples" / "monthly-report-power.json").read_bytes()
    alphabet = b'{}[]":,\\0123456789.eE-+ tfnu\xff\x00'
    decided = 0
    for _ in range(400):
        raw = bytearray(base)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(raw))
            op = rng.randrange(3)
            if op == 0:
                raw[i] = rng.choice(alphabet)
            elif op == 1:
                raw.insert(i, rng.choice(alphabet))
            else:
                del raw[i]
        decided += _check(bytes(raw))
    assert decided  # some mutations stay valid (inside strings) and take the fast path


def _random_value(rng: random.Random, depth: int):
    """Nested arrays/objects with strings full of brackets and quotes (escaped by orjson)."""
    if depth == 0 or rng.random() < 0.2:
        return rng.choice(["x", "[", "]{", "a[0].b", "}}", '"[', "", 1, None, True])
    if rng.random() < 0.5:
        return [_random_value(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(["k", "[k]", "{", "k]"]) + str(i): _random_value(rng, depth - 1) for i in range(rng.randint(0, 3))}


def test_compact_depth_check_counts_only_brackets_outside_strings():
    """The depth of an orjson-compact body without backslashes is read from its brackets and
    quotes alone (no re-encoding): it must agree with the exact nesting for every shape,
    strings holding brackets included, and a body one level too deep is refused as before."""
    orjson = pytest.importorskip("orjson")
    rng = random.Random(1414)
    plain = 0
    for _ in range(300):
        limit = rng.randint(1, 12)
        raw = orjson.dumps(_random_value(rng, rng.randint(1, 14)))
        expected = server._nests_deeper(server._outside_strings(raw), limit)
        if b"\\" not in raw:
            plain += 1
            assert server._plain_nests_deeper(raw, limit) is expected, (raw, limit)
        _check(raw)
    assert plain > 100
    for depth in (63, 64, 65, 80):
        for inner in (b"1", b'"[[[[]"', b'{"a[":"]]"}'):
            raw = b'{"p[0]":' * depth + inner + b"}" * depth
            assert server._plain_nests_deeper(raw, 64) is (depth + (inner[:1] == b"{") > 64)
            status, exact = _exact(raw)
            if status == "ok":
                assert _check(raw)
            else:
                assert exact == "the JSON body nests deeper than 64 levels"
                with pytest.raises(Problem) as info:
                    server.parse_json(raw)
                assert info.value.detail == exact


@pytest.mark.parametrize("char", ["\ufffe", "\uffff"])
def test_raw_noncharacters_xml_cannot_carry_are_refused_on_both_paths(char):
    # Raw U+FFFE/U+FFFF are valid JSON (unlike raw control characters) but cannot be written in
    # XML: accepted, the document could later not be answered as XML (a 500). Refused with the
    # member's path, whichever path reads the body.
    for raw in (json.dumps({"entityName": f"x{char}y"}, ensure_ascii=False, separators=(",", ":")).encode(),
                json.dumps({"entityName": f"x{char}y"}, ensure_ascii=False).encode()):
        assert server._fast_parse(raw) is server._UNDECIDED
        with pytest.raises(Problem) as exc:
            server.parse_json(raw)
        assert exc.value.code == "MALFORMED_BODY"
        assert [(e.path, e.code) for e in exc.value.errors] == [("$.entityName", "CHARACTER-NOT-ALLOWED")]
    assert server.parse_json("{\"entityName\":\"x\ufffdy\"}".encode()) == {"entityName": "x\ufffdy"}  # U+FFFD is fine


# --------------------------------------------------------------------------- the encoded parse
# parse_json_encoded (signed documents) re-encodes with sorted keys and hands that encoding to
# the document's verification as its RFC 8785 form: the answer must stay parse_json's, and the
# encoding, when given, must be exactly RFC 8785 of a record with no floats and no member name
# above U+FFFF. A body whose members are not sorted is decided by the encoding's length.
rfc8785 = pytest.importorskip("rfc8785")


def _has_floats(value) -> bool:
    if isinstance(value, dict):
        return any(_has_floats(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_floats(v) for v in value)
    return type(value) is float


def _above_bmp_names(value) -> bool:
    if isinstance(value, dict):
        return any(max(k, default="\0") > "\uffff" or _above_bmp_names(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_above_bmp_names(v) for v in value)
    return False


def _check_encoded(raw: bytes):
    """parse_json_encoded answers as parse_json does; its encoding, if any, is RFC 8785.
    Returns the encoding (or None)."""
    status, exact = _exact(raw)
    if status != "ok":
        with pytest.raises(Problem) as info:
            server.parse_json_encoded(raw)
        assert info.value.detail == exact, raw[:200]
        return None
    value, encoded = server.parse_json_encoded(raw)
    assert _typed(value) == exact, raw[:200]
    if encoded is not None:
        assert encoded.value is value
        assert not _has_floats(value) and not _above_bmp_names(value), raw[:200]
        assert encoded.encoding == rfc8785.dumps(value), raw[:200]
        return encoded.encoding
    return None


def _bodies(doc) -> list[bytes]:
    """One document as clients send it: compact in its own order, compact sorted, indented."""
    return [json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode(),
            json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode(),
            json.dumps(doc, ensure_ascii=False, indent=2).encode(),
            json.dumps(doc, separators=(",", ":")).encode()]  # \u escapes: longer than orjson's text


def test_encoded_parse_gives_rfc8785_for_every_example_as_clients_send_it():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from common import widen_power_report  # the bench's 200-unit report

    docs = [json.loads(p.read_bytes()) for p in EXAMPLES]
    docs.append(widen_power_report(json.loads((EXAMPLES[0].parent / "monthly-report-power.json").read_bytes())
                                   ["payload"], 200))
    encoded = 0
    for doc in docs:
        for raw in _bodies(doc):
            encoded += _check_encoded(raw) is not None
    assert encoded >= 3 * len(docs)  # the examples hold no floats and no names above U+FFFF


@pytest.mark.parametrize("raw, has_encoding", [
    # a duplicate key whose dropped member ("b":0, 6 bytes) a float's longer text makes up for
    # (1e6 is written 1000000.0): as long as the body, yet refused by the exact path
    (b'{"a":1e6,"b":0,"b":0}', False), (b'{"b":0,"b":0,"a":1e6}', False), (b'{"a":[1e6],"b":0,"b":0}', False),
    (b'{"b":1,"a":2,"b":1}', False), (b'{"b":{"c":1,"c":1},"a":[]}', False),
    (b'{"b":0,"a":1.5}', False), (b'{"a":[1,2.5]}', False), (b'{"a":[-0.5]}', False), (b'{"a":1E2}', False),
    (b'{"b":-1e-7,"a":1}', False), (b"1.5", False), (b"[1.0]", False), (b'{"a":1.25}', False),
    (b'{"b":0e0,"a":1}', False), (b'{"a":[-0.0e-0]}', False), (b'{"b":1E+2,"a":[1,2]}', False),
    (b'{"a":123456789012345678901234567890}', False), (b'{"a":18446744073709551616}', False),
    (b'{"a":9007199254740993}', False), (b'{"a":-9007199254740992}', False), (b'{"a":9007199254740991}', True),
    ('{"😀":1,"a":2}'.encode(), False), ('{"a":"😀"}'.encode(), False), ('{"b":{"\U00020000":1}}'.encode(), False),
    (b'{"b":"\\u00e9","a":1}', True), (b'{"a":"\\/x","b":"\\n"}', True), (b'{"a":"\\u000a"}', True),
    (b'{"a":"\\ud83d\\ude00"}', False), (b'{"a":-0}', True), (b'{ "b" : 1 , "a" : [ 2 , 3 ] }', True),
    (b'{"b":"10:30:00.5","a":"2026-11-05T10:30:00.123+08:00"}', True),  # an instant's seconds: no float
    (b'{"k":"x\\":1.5","j":2}', None), (b'{"a":"1,000.5"}', None), (b'{"a":"[2e3"}', None),  # look-alikes
    (b'{"a":' + b"[" * 63 + b"]" * 63 + b"}", True), (b'{"a":' + b"[" * 64 + b"]" * 64 + b"}", False),
    (b'{"b":' + b"[" * 64 + b"]" * 64 + b',"a":1}', False), (b'{"a\\u0041":1,"aA":1}', False),
    (b'{"a":true,"b":false,"c":null}', True), (b'{"c":null,"b":false,"a":true}', True),
    (b'{"a":1}x', False), (b"\xef\xbb\xbf{}", False), (b"{}", True), (b"[]", True),
])
def test_encoded_parse_falls_back_or_refuses_where_it_must(raw, has_encoding):
    encoding = _check_encoded(raw)
    if has_encoding is not None:
        assert (encoding is not None) is has_encoding, raw


def _random_text(rng: random.Random, depth: int) -> bytes:
    """Raw JSON text with what the length proof must survive: members in any order, duplicate
    names, floats in every spelling, large and negative-zero integers, escapes, whitespace,
    characters above U+FFFF, and strings that look like numbers."""
    def ws() -> bytes:
        return rng.choice([b"", b"", b"", b" ", b"\n  "])

    if depth == 0 or rng.random() < 0.3:
        return rng.choice([
            b"0", b"-0", b"7", b"-12", b"9007199254740991", b"9007199254740992", b"18446744073709551616",
            b"1.5", b"1e6", b"1E2", b"-0.0", b"2.50", b"1e-7", b"100000.0", b"true", b"false", b"null",
            b'"x"', b'"\\u00e9"', b'"\\"q\\""', b'"a\\\\"', b'"\\/"', b'"\\n"', b'"\\u000a"', '"😀"'.encode(),
            b'"10:30:00.5"', b'"1,5.0"', b'":1.5"', b'"[2e3"', "\"测\"".encode(), b'""',
        ])
    if rng.random() < 0.4:
        items = [_random_text(rng, depth - 1) for _ in range(rng.randint(0, 3))]
        return b"[" + ws() + (b"," + ws()).join(items) + ws() + b"]"
    names = [rng.choice([b'"a"', b'"b"', b'"c"', b'"\\u0061"', '"😀"'.encode(), b'"\xc3\xa9"', b'"a\\""'])
             for _ in range(rng.randint(0, 4))]
    members = [n + ws() + b":" + ws() + _random_text(rng, depth - 1) for n in names]
    return b"{" + ws() + (b"," + ws()).join(members) + ws() + b"}"


def test_encoded_parse_agrees_on_random_texts():
    rng = random.Random(8785)
    encoded = 0
    for _ in range(3000):
        raw = _random_text(rng, rng.randint(1, 4))
        encoded += _check_encoded(raw) is not None
        _check_encoded(raw.replace(b" ", b"").replace(b"\n", b""))
    assert encoded > 300


@pytest.mark.parametrize("by_encoder", [True, False])
def test_nesting_limit_by_the_encoder_and_by_the_bytes_agree(by_encoder, monkeypatch):
    """The fast path lets orjson check the nesting (the record wrapped so that orjson's own
    limit falls at 64), or, without a measurable limit, reads it from the bytes: a body 64
    deep is taken, 65 deep refused, whichever way, brackets in strings and escapes included."""
    wrap = server._depth_wrap()
    assert wrap == 254 - server.MAX_JSON_DEPTH  # orjson 3 writes at most 254 nested containers
    monkeypatch.setattr(server, "_wrap", wrap if by_encoder else 0)
    for depth in (1, 63, 64, 65, 66, 200, 300):
        for inner in (b"1", b'"[[[["', b'"\\"]]"', b"[]", b"{}", b'{"k":"]"}'):
            for open_, close in ((b"[", b"]"), (b'{"a":', b"}"), (b'{"b":[', b"]}")):
                raw = open_ * depth + inner + close * depth
                for fn in (server.parse_json, lambda r: server.parse_json_encoded(r)[0]):
                    status, exact = _exact(raw)
                    if status == "ok":
                        assert _typed(fn(raw)) == exact
                    else:
                        with pytest.raises(Problem) as info:
                            fn(raw)
                        assert info.value.detail == exact == "the JSON body nests deeper than 64 levels"


# --------------------------------------------------------------------------- escapes and floats
# The fast path walks a body's escapes itself (exactly, as a parser pairs backslashes) instead
# of two regex passes, and, for orjson's own encoding, reads it with '.', '+' and '-' written as
# \u escapes so that a float no longer parses. A wrong walk accepts a refused escape or refuses
# an escaped backslash; a wrong float test hands out an encoding that is not RFC 8785.
@pytest.mark.parametrize("raw, decided", [
    (b'{"a":"\\\\u0001"}', True),       # an escaped backslash, then the text u0001: no escape
    (b'{"a":"\\\\b","c":"\\\\f"}', True),  # likewise "\b" and "\f" as two characters each
    (b'{"a":"x\\\\\\\\"}', True), (b'{"a":"\\"\\\\\\n\\t\\r\\/"}', None),
    (b'{"a":"\\u0001"}', False), (b'{"a":"\\b"}', False), (b'{"a":"\\\\\\b"}', False),
    (b'{"a":"\\u001F"}', False), (b'{"a":"\\uFFFF"}', False), (b'{"a":"\\ufffe"}', False),
    (b'{"a":"\\u0009\\u000A\\u000d\\u007f\\uFFFD"}', True),  # TAB, LF, CR, DEL, U+FFFD: XML carries them
    (b'{"a":"\\ud83d\\ude00"}', False), (b'{"a":"\\udc00"}', False),  # surrogates: the exact path
    (b'{"a":"\\."}', False), (b'{"a":"\\-1"}', False), (b'{"a":"\\+"}', False), (b'{"a":"\\x"}', False),
    (b'{"a":"\\u00-1"}', False), (b'{"a":"\\u12"}', False), (b'{"a":"x\\', False), (b'{"a":1}\\', False),
])
def test_escapes_are_walked_as_a_parser_pairs_them(raw, decided):
    """``decided``: the fast path takes the body (True), must leave it to the exact path
    (False), or either (None). The answers and refusals are the exact path's either way."""
    for encoded in (False, True):
        fast = server._fast_parse(raw, encoded)
        if decided is not None:
            assert (fast is not server._UNDECIDED) is decided, (raw, encoded)
    _check(raw)
    _check_encoded(raw)


@pytest.mark.parametrize("tail, refused", [
    (b"\\u0001", True), (b"\\\\u0001", False), (b"\\b", True), (b"\\\\b", False), (b"\\ud800", True),
    (b"\\ud83d\\ude00", False), (b"\\.", True),
])
@pytest.mark.parametrize("count, spacing", [(1, 3), (15, 3), (16, 3), (17, 3), (18, 3), (3000, 3),
                                            (200, 300), (40, 100)])
def test_many_escapes_are_left_to_the_prefilters_from_where_the_walk_stopped(tail, refused, count, spacing):
    """The walk stops where escapes come more often than one per 256 bytes; the prefilters
    judge the rest exactly as before, whatever stands at the point of hand-over."""
    raw = b'{"a":"' + (b"x" * (spacing - 2) + b"\\n") * count + tail + b'","b":"\\\\"}'
    walked = server._escapes(raw)
    if spacing > 256 and not refused and b"\\ud" not in tail:
        assert walked == len(raw)  # sparse: every escape walked
    if count > 17 and spacing < 16:
        assert walked is not None and walked < len(raw)  # dense: the rest is the prefilters'
    _check(raw)
    _check_encoded(raw)
    status, _ = _exact(raw)
    assert (status == "problem") is refused


def _orjson_body(value) -> bytes:
    orjson = pytest.importorskip("orjson")
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


@pytest.mark.parametrize("signed", [True, False])  # the escaped reading, or _has_float
@pytest.mark.parametrize("number", [1.5, -0.5, 0.1, 100.0, -0.0, 1e16, -1e16, 1e22, 1e300, 1e-7, -1e-7,
                                    5e-324, 1.5e-7, 2.5e16, 1.7976931348623157e308])
def test_a_float_in_orjsons_own_encoding_gets_no_encoding(number, signed, monkeypatch):
    if not signed:
        monkeypatch.setattr(server, "_signed", False)
    for doc in ({"a": number}, {"a": [1, number], "b": "x"}, {"b": {"c": [number]}, "a": "10:30:00.5"},
                [number], {"a": ["x", -1, number, True]}):
        raw = _orjson_body(doc)
        value, encoded = server.parse_json_encoded(raw)
        assert encoded is None, raw
        assert _typed(value) == _exact(raw)[1]


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("doc", [
    {"a": -3}, {"a": [-1, 0, -9007199254740991]}, {"a": "1.5", "b": "-2", "c": "+3", "d": "1e-7", "e": "x:1.5,"},
    {"a.b": 1, "c-d": {"e+f": [1, 2]}, "-": "."}, {"a": "\\.", "b": "\\-", "c": "\\\\+", "d": "\n-\t.", "e": '"-"'},
    {"k": 'x":1.5', "j": 2}, {"a": ":1.5", "b": ",2e3]", "c": "[1e-7}"},  # floats' look-alikes in strings
    {"t": True, "f": False, "n": None, "e": "e", "x": 12},
])
def test_orjsons_own_encoding_without_floats_keeps_its_encoding(doc, signed, monkeypatch):
    """Strings full of '.', '+', '-', backslashes and float look-alikes, negative integers:
    read exactly as they are, and the body is its own RFC 8785 encoding (without the escaped
    reading, _has_float may take a look-alike for a float: no encoding, never a wrong one)."""
    if not signed:
        monkeypatch.setattr(server, "_signed", False)
    raw = _orjson_body(doc)
    value, encoded = server.parse_json_encoded(raw)
    assert value == doc and _typed(value) == _exact(raw)[1]
    if signed or encoded is not None:
        assert encoded is not None and encoded.encoding == raw == rfc8785.dumps(doc)


def _random_canonical(rng: random.Random, depth: int):
    if depth == 0 or rng.random() < 0.3:
        return rng.choice([
            0, 7, -12, 9007199254740991, -9007199254740991, 1.5, -0.25, 1e16, 1e-7, 3e-300, 100.0, -0.0,
            True, False, None, "", "x", "1.5", "-", "+", ".", "1e-7", "a\\b", '"', "\\u0001", "\n", "\b", "\x01",
            "10:30:00.5", ":1.5,", "测.试-", "\ufffe", "😀",
        ])
    if rng.random() < 0.4:
        return [_random_canonical(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    names = ["a", "b.c", "d-e", "f+g", "\\", '"', "h\n"]
    return {rng.choice(names) + str(i): _random_canonical(rng, depth - 1) for i in range(rng.randint(0, 3))}


@pytest.mark.parametrize("signed", [True, False])
def test_random_orjson_bodies_agree_with_the_exact_path(signed, monkeypatch):
    if not signed:
        monkeypatch.setattr(server, "_signed", False)
    orjson = pytest.importorskip("orjson")
    rng = random.Random(1414 + signed)
    encoded = 0
    for _ in range(1500):
        value = _random_canonical(rng, rng.randint(1, 4))
        raw = _orjson_body(value)
        encoded += _check_encoded(raw) is not None
        _check(raw)
        _check_encoded(orjson.dumps(value, option=orjson.OPT_INDENT_2))  # indented, its own order
    assert encoded > 200


def test_raw_noncharacters_are_found_wherever_they_stand():
    """U+FFFE/U+FFFF are found by their middle byte 0xBF (memchr), the regex taking over past
    a bound: it must agree with the regex on texts full of look-alikes (U+4FFE is E4 BF BE,
    U+FFFD is EF BF BD, U+FFBF is EF BE BF, U+0FFF is E0 BF BF), the noncharacter first, last,
    or beyond the bound."""
    rng = random.Random(0xFFFE)
    alike = ["\u4ffe", "\ufffd", "\uffbf", "\u0fff", "\uff0c", "a", "\u00bf", "\u4e2d"]
    found = 0
    for _ in range(400):
        chars = [rng.choice(alike) for _ in range(rng.choice([0, 3, 40, 3000]))]
        if rng.random() < 0.5:
            chars.insert(rng.randint(0, len(chars)), rng.choice(["\ufffe", "\uffff"]))
        raw = "".join(chars).encode()
        expected = server._RAW_NONCHARACTER.search(raw) is not None
        assert server._raw_noncharacter(raw) is expected, raw[:60]
        found += expected
    assert found > 100


@pytest.mark.parametrize("guess", [True, False])
def test_the_member_order_guess_changes_no_answer(guess, monkeypatch):
    """_looks_sorted only chooses whether the escaped reading is tried: a wrong guess either
    way gives the same answers, refusals and encodings."""
    assert server._looks_sorted(b'{"a":1,"b":"x","c":2,"d":3}')
    assert not server._looks_sorted(b'{"b":1,"a":2}')
    monkeypatch.setattr(server, "_looks_sorted", lambda raw: guess)
    rng = random.Random(77)
    for path in EXAMPLES[:3]:
        for raw in _bodies(json.loads(path.read_bytes())):
            _check_encoded(raw)
    for _ in range(300):
        _check_encoded(_orjson_body(_random_canonical(rng, 3)))
        _check_encoded(_random_text(rng, 3).replace(b" ", b"").replace(b"\n", b""))


@pytest.mark.parametrize("by_encoder", [True, False])
def test_a_body_indented_as_orjson_indents_is_decided_by_its_reencoding(by_encoder, monkeypatch):
    """A body indented by two spaces as orjson writes it (JSON.stringify(v, null, 2), Python's
    json.dumps(indent=2, ensure_ascii=False)), in any member order, is compared with that
    re-encoding instead of being scanned outside its strings. A duplicate key, a float, an
    integer beyond 2^53 - 1, a nesting of 65 or another indentation must still be found."""
    monkeypatch.setattr(server, "_wrap", server._depth_wrap() if by_encoder else 0)
    doc = json.loads(EXAMPLES[0].read_bytes())
    for raw in (json.dumps(doc, ensure_ascii=False, indent=2).encode(),
                json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True).encode()):
        assert server._fast_parse(raw) is not server._UNDECIDED  # decided, not left to the exact path
        assert _check_encoded(raw) is not None
    for raw, has_encoding in [
        (b'{\n  "a": 1,\n  "a": 1\n}', False), (b'{\n  "b": {\n    "c": 1,\n    "c": 1\n  },\n  "a": []\n}', False),
        (b'{\n  "a": 1.5\n}', False), (b'{\n  "a": [\n    1,\n    1e+16\n  ]\n}', False), (b'{\n  "a": -3\n}', True),
        (b'{\n  "a": 9007199254740993\n}', False), (b'{\n  "a": 18446744073709551616\n}', False),
        (b'{\n  "b": "x.y-z",\n  "a": "\\n"\n}', True), (b'{\n    "a": 1\n}', True), (b'[\n  1,\n  2\n]', True),
        (json.dumps({"a": [[[]]] * 2}, indent=2).encode(), True),
        (json.dumps([json.loads("[" * 63 + "]" * 63)], indent=2).encode(), True),
        (json.dumps([json.loads("[" * 64 + "]" * 64)], indent=2).encode(), False),  # 65 deep: refused
    ]:
        assert (_check_encoded(raw) is not None) is has_encoding, raw[:80]
        _check(raw)


@pytest.mark.parametrize("pluses", [0, 1, 63, 64, 65, 200])
@pytest.mark.parametrize("number, is_float", [(1e16, True), (2.5e300, True), (7, False), (-7, False)])
def test_an_exponents_plus_is_found_among_instant_offsets(pluses, number, is_float):
    """'+' is escaped for the escaped reading only when one follows 'e' or 'E': an exponent's
    sign must be found however many offsets ("+08:00") and base64 '+' stand before it."""
    doc = {"a": ["2026-11-05T10:30:00+08:00", "q+Z/e+", "ab+"][:1 + pluses % 3] * pluses, "b": number}
    if pluses == 200:
        doc["a"] = ["x+" * 200]
    raw = _orjson_body(doc)
    value, encoded = server.parse_json_encoded(raw)
    assert _typed(value) == _exact(raw)[1]
    assert (encoded is None) is is_float, raw[-60:]
    if encoded is not None:
        assert encoded.encoding == rfc8785.dumps(doc)


@pytest.mark.parametrize("raw", [
    b'{"a":1.5,}', b'{"a":-}', b'{"a":1e+}', b'{"a":1e-}', b'{"a":"x"', b'{"a":.5}', b'{"a":-.5}', b'{"a":+1}',
    b'{"a":1e+5}', b'{"a":1E-5}', b'{"a":-0}', b'{"a":--1}', b'{"a":"-"}-', b'{"a":1.}', b'{"a":"\\u002e"}',
    b'{"a":"\\u002E","b":"\\u002d"}', b'{"a":"x","b":1e+16,"c":1e+16}', b'{"a":"e+","b":"E-","c":"e+1"}',
])
def test_the_escaped_reading_never_turns_a_malformed_body_into_an_accepted_one(raw):
    """Bodies that look sorted and compact, so the escaped reading is tried: malformed numbers
    stay malformed (the exact path's message), floats get no encoding."""
    _check_encoded(raw)
    _check(raw)


def test_the_one_pass_escape_prefilter_is_the_two_it_replaces():
    """_LEFT_ESCAPE (used past the walk) matches an escape exactly when the surrogate or the
    XML prefilter does, for every \\uXXXX in both cases of hex and every short escape."""
    def old(text: bytes) -> bool:
        return bool(server._SURROGATE_ESCAPE.search(text) or server._NON_XML_ESCAPE.search(text))

    for code in range(0x10000):
        for text in (b"\\u%04x" % code, b"\\u%04X" % code):
            assert bool(server._LEFT_ESCAPE.search(text)) is old(text), text
    for char in b'"\\/bfnrtux.':
        text = b"\\" + bytes([char])
        assert bool(server._LEFT_ESCAPE.search(text)) is old(text), text
