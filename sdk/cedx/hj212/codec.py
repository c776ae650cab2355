"""HJ 212-2017 packets: CRC, framing, data segment, CP data items, replies, multi-package messages.

Wire form (HJ 212-2017 §6.3): ``##`` + 4-digit decimal length of the data segment + data segment
+ 4 hex digits of CRC + CR LF. Data segment: ``QN=..;ST=..;CN=..;PW=..;MN=..;Flag=..;[PNUM=..;PNO=..;]
CP=&&...&&``. The CRC is the standard's Appendix A algorithm over the data segment only.

Acceptance policy (documented in docs/hj212.md): liberal where the standard leaves room or where
field practice differs harmlessly (hex in either case, missing CR LF at the end of a lone packet,
optional header fields absent, unknown header fields and CP suffixes kept, ``,`` and ``;`` both
accepted between CP items, widths such as N3.3 not enforced), strict on integrity (length and CRC
always checked, malformed numbers, dates and flags refused). Every leniency applied is reported
in ``Packet.notes``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import CRCError, FieldError, FramingError, HJ212Error, LengthError, SizeError

MAX_SEGMENT = 9999          # the length field has four decimal digits
STANDARD_SEGMENT = 1024     # HJ 212-2017 §6.3.1: data segment 0..1024 characters

HEADER_ORDER = ("QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO")
NUMERIC_SUFFIXES = frozenset({"Rtd", "Avg", "Min", "Max", "Cou", "ZsRtd", "ZsAvg", "ZsMin", "ZsMax"})
TIME_SUFFIXES = frozenset({"SampleTime"})
TIME_FIELDS = frozenset({"DataTime", "BeginTime", "EndTime", "SystemTime", "OverTime"})

FLAG_REPLY = 0x01    # bit 0 (A): the receiver must reply
FLAG_SPLIT = 0x02    # bit 1 (D): PNUM/PNO present
VERSION_2017 = 1     # bits 2..7: protocol version; 000001 = HJ 212-2017, 000000 = HJ/T 212-2005

COMMANDS = {
    "1011": "extract site time", "1012": "set site time", "1013": "site time calibration request",
    "1061": "extract real-time data interval", "1062": "set real-time data interval",
    "1063": "extract minute data interval", "1064": "set minute data interval", "1072": "set site password",
    "2011": "real-time data", "2012": "stop real-time data", "2021": "equipment running status",
    "2022": "stop equipment running status", "2031": "daily data", "2041": "equipment running time (daily)",
    "2051": "minute data", "2061": "hourly data", "2081": "site restart time",
    "3011": "zero calibration", "3012": "instant sampling", "3020": "site information upload",
    "9011": "request reply", "9012": "execution result", "9013": "notice reply", "9014": "data reply",
}
DATA_COMMANDS = frozenset({"2011", "2021", "2031", "2041", "2051", "2061", "2081", "3020", "1011", "1061", "1063"})
NOTICE_COMMANDS = frozenset({"1013"})

QN_RTN = {1: "ready to execute", 2: "request refused", 3: "wrong password", 4: "wrong MN", 5: "wrong ST",
          6: "wrong Flag", 7: "wrong QN", 8: "wrong CN", 9: "wrong CRC", 100: "unknown error"}
EXE_RTN = {1: "succeeded", 2: "failed, unknown reason", 3: "failed, command condition wrong", 4: "failed, timeout",
           5: "failed, system busy", 6: "failed, system fault", 100: "failed, no data"}

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_DIGITS = re.compile(r"^\d+$")
_CODE_2017 = re.compile(r"^[a-z]\d{5}$")
_CODE_2005 = re.compile(r"^([A-Z]\d{2}|\d{2,3})$")
_SEPARATORS = re.compile(r"[;,]")


def _rounds(v: int) -> int:
    for _ in range(8):
        v = (v >> 1) ^ 0xA001 if v & 1 else v >> 1
    return v


# (crc >> 8) ^ b is always below 256, so the 8 rounds are a lookup in a 256-entry table.
_TABLE = [_rounds(v) for v in range(256)]


def crc16(data: bytes) -> int:
    """HJ 212-2017 Appendix A: for each byte ``crc = (crc >> 8) ^ b``, then 8 rounds of shift /
    xor 0xA001; start 0xFFFF. (CRC-16/MODBUS instead xors the byte into the low byte.)"""
    crc, table = 0xFFFF, _TABLE
    for b in data:
        crc = table[(crc >> 8) ^ b]
    return crc


def crc16_modbus(data: bytes) -> int:
    """Plain CRC-16/MODBUS, used only to tell a sender that its CRC is the wrong algorithm."""
    crc, table = 0xFFFF, _TABLE
    for b in data:
        crc = (crc >> 8) ^ table[(crc ^ b) & 0xFF]
    return crc


def crc_hex(data: bytes) -> str:
    return f"{crc16(data):04X}"


@dataclass
class Packet:
    """A decoded packet. Header values are kept as received (strings) except Flag/PNUM/PNO (ints).

    ``fields``: CP entries without a pollutant code (DataTime, QnRtn, RtdInterval ...), in order.
    ``items``: pollutant/parameter code -> {suffix: value} (Rtd, Avg, Flag, SampleTime ...), in order.
    """

    cn: str
    qn: str | None = None
    st: str | None = None
    pw: str | None = None
    mn: str | None = None
    flag: int | None = None
    pnum: int | None = None
    pno: int | None = None
    fields: dict[str, str] = field(default_factory=dict)
    items: dict[str, dict[str, str]] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    version: str = "2017"
    crc: str | None = None
    segment: str | None = None
    notes: list[str] = field(default_factory=list)

    # --- flag bits --------------------------------------------------------------------------
    @property
    def reply_required(self) -> bool:
        return bool(self.flag is not None and self.flag & FLAG_REPLY)

    @property
    def split(self) -> bool:
        return self.pnum is not None and self.pno is not None

    def data_time(self) -> dt.datetime | None:
        text = self.fields.get("DataTime")
        return parse_time(text, "CP/DataTime") if text else None

    # --- JSON ---------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": self.version}
        for key in HEADER_ORDER:
            value = getattr(self, key.lower())
            if value is not None:
                out[key] = value
        if self.extra:
            out["extra"] = dict(self.extra)
        if self.flag is not None:
            out["flagBits"] = {"replyRequired": self.reply_required, "split": bool(self.flag & FLAG_SPLIT),
                               "protocolVersion": self.flag >> 2}
        if self.cn in COMMANDS:
            out["command"] = COMMANDS[self.cn]
        out["CP"] = {**self.fields, "items": {code: dict(sub) for code, sub in self.items.items()}}
        if "DataTime" in self.fields:
            out["dataTime"] = self.data_time().isoformat()  # type: ignore[union-attr]
        if self.crc is not None:
            out["crc"] = self.crc
        if self.segment is not None:
            out["length"] = len(self.segment.encode("utf-8"))
        if self.notes:
            out["notes"] = list(self.notes)
        return out

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Packet:
        """The reverse of :meth:`to_json` (derived members such as crc, length, notes are ignored).

        Header fields may be given upper-case as on the wire (``QN``) or lower-case (``qn``)."""
        if not isinstance(doc, dict):
            raise FieldError("the JSON document must be an object")
        get: Callable[[str], Any] = lambda k: doc.get(k, doc.get(k.lower()))  # noqa: E731
        cp = doc.get("CP", doc.get("cp", {}))
        if not isinstance(cp, dict):
            raise FieldError("CP must be an object", field="CP")
        items = cp.get("items", {})
        if not isinstance(items, dict) or not all(isinstance(v, dict) for v in items.values()):
            raise FieldError("CP.items must map codes to objects of suffix: value", field="CP.items")
        cn = get("CN")
        if cn is None:
            raise FieldError("CN is required", field="CN")
        p = cls(cn=str(cn), qn=_opt(get("QN")), st=_opt(get("ST")), pw=_opt(get("PW")), mn=_opt(get("MN")),
                flag=_opt_int(get("Flag"), "Flag"), pnum=_opt_int(get("PNUM"), "PNUM"), pno=_opt_int(get("PNO"), "PNO"),
                fields={k: _str(v) for k, v in cp.items() if k != "items"},
                items={str(c): {s: _str(v) for s, v in sub.items()} for c, sub in items.items()},
                extra={k: _str(v) for k, v in (doc.get("extra") or {}).items()},
                version=str(doc.get("version", "2017")))
        validate(p)
        return p


def _opt(v: object) -> str | None:
    return None if v is None else _str(v)


def _str(v: object) -> str:
    if isinstance(v, bool) or v is None or isinstance(v, (dict, list)):
        raise FieldError(f"value {v!r} must be a string or a number")
    return str(v)


def _opt_int(v: object, name: str) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not (isinstance(v, int) or (isinstance(v, str) and _DIGITS.match(v))):
        raise FieldError(f"{name} must be a non-negative integer, got {v!r}", field=name)
    return int(v)


# --- time ---------------------------------------------------------------------------------------
def parse_time(text: str, where: str) -> dt.datetime:
    """YYYYMMDDhhmmss (or YYYYMMDDhhmmsszzz for QN) as a naive local time of the data logger."""
    if not _DIGITS.match(text) or len(text) not in (12, 14, 17):
        raise FieldError(f"{where}={text!r} is not a time of the form YYYYMMDDhhmmss", field=where)
    try:
        return dt.datetime(int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[8:10]), int(text[10:12]),
                           int(text[12:14] or 0), int(text[14:17] or 0) * 1000)
    except ValueError as exc:
        raise FieldError(f"{where}={text!r} is not a valid time ({exc})", field=where) from None


def format_time(t: dt.datetime) -> str:
    return t.strftime("%Y%m%d%H%M%S")


def make_qn(t: dt.datetime) -> str:
    return t.strftime("%Y%m%d%H%M%S") + f"{t.microsecond // 1000:03d}"


# --- decoding -----------------------------------------------------------------------------------
def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("gb18030", errors="replace")  # field practice: GBK text in CP


def _char_count(segment: bytes) -> int | None:
    try:
        return len(segment.decode("utf-8"))
    except UnicodeDecodeError:
        return None


def unframe(frame: bytes, *, lenient_tail: bool = True) -> tuple[bytes, str, list[str]]:
    """Check framing, length and CRC; return (data segment, CRC hex as received, notes)."""
    notes: list[str] = []
    if not frame.startswith(b"##"):
        head = frame[:12].rstrip(b"\r\n").decode("ascii", "replace")
        raise FramingError(f"a packet starts with '##' (got {head!r})")
    digits = frame[2:6]
    if len(digits) < 4 or not digits.isdigit():
        raise FramingError(f"'##' must be followed by the 4-digit decimal data-segment length (got {digits.decode('ascii', 'replace')!r})")
    declared = int(digits)
    body = frame[6:]
    if body.endswith(b"\r\n"):
        body = body[:-2]
    elif body.endswith(b"\n"):
        body = body[:-1]
        notes.append("trailer LF without CR accepted")
    elif lenient_tail:
        notes.append("CR LF trailer missing (accepted at the end of input)")
    else:
        raise FramingError("a packet ends with CR LF")
    if b"\r" in body or b"\n" in body:
        cut = min(i for i in (body.find(b"\r"), body.find(b"\n")) if i >= 0)
        if declared != cut - 4:
            raise FramingError(f"CR/LF inside the packet at byte {6 + cut}: more than one packet, or a broken one")
    if len(body) < 4:
        raise FramingError("packet too short: no room for the 4-digit CRC")
    segment, crc_text = body[:-4], body[-4:].decode("ascii", "replace")
    if len(segment) != declared and _char_count(segment) == declared:
        notes.append("length field counts characters, not bytes (non-ASCII text in the segment)")
    elif len(segment) != declared:
        tail = " (the CRC field is not 4 hex digits either)" if not re.fullmatch(r"[0-9A-Fa-f]{4}", crc_text) else ""
        raise LengthError(f"length field says {declared} bytes but the data segment has {len(segment)}{tail}",
                          declared=declared, actual=len(segment))
    if not re.fullmatch(r"[0-9A-Fa-f]{4}", crc_text):
        raise FramingError(f"the CRC must be 4 hex digits (got {crc_text!r})")
    expected = crc16(segment)
    if int(crc_text, 16) != expected:
        modbus = int(crc_text, 16) == crc16_modbus(segment)
        hint = (" — it matches plain CRC-16/MODBUS: the sender uses the wrong CRC algorithm"
                " (HJ 212-2017 Appendix A shifts the register before xoring each byte)") if modbus else ""
        raise CRCError(f"CRC {crc_text} does not match the data segment (HJ 212 CRC is {expected:04X}){hint}",
                       received=crc_text, expected=f"{expected:04X}", modbus=modbus)
    if crc_text != crc_text.upper():
        notes.append("CRC in lower-case hex accepted")
    if declared > STANDARD_SEGMENT:
        notes.append(f"data segment of {declared} bytes exceeds the standard's 1024")
    return segment, crc_text, notes


def decode(frame: bytes | str, *, lenient_tail: bool = True) -> Packet:
    """Decode one framed packet. Raises a subclass of :class:`HJ212Error` for anything malformed."""
    if isinstance(frame, str):
        frame = frame.encode("utf-8")
    segment, crc_text, notes = unframe(frame, lenient_tail=lenient_tail)
    p = parse_segment(_text(segment))
    p.crc, p.notes = crc_text, notes + p.notes
    return p


def parse_segment(segment: str) -> Packet:
    """Parse the data segment (without framing) into a :class:`Packet` and validate it."""
    notes: list[str] = []
    cp_at = segment.find("CP=&&")
    if cp_at < 0 and segment.upper().find("CP=&&") >= 0:
        cp_at = segment.upper().find("CP=&&")
        notes.append("field CP written in lower case")
    if cp_at < 0:
        raise FieldError("the data segment has no 'CP=&&...&&' command-parameter field", field="CP")
    if cp_at and segment[cp_at - 1] != ";":
        raise FieldError("'CP=' must follow a ';'", field="CP")
    if not segment.endswith("&&") or len(segment) < cp_at + 7:
        raise FieldError("CP must end the data segment with '&&'", field="CP")
    header, cp = segment[:cp_at], segment[cp_at + 5:-2]
    values: dict[str, str] = {}
    extra: dict[str, str] = {}
    canon = {k.lower(): k for k in HEADER_ORDER}
    for token in header.split(";"):
        if not token:
            continue
        key, eq, value = token.partition("=")
        if not eq:
            raise FieldError(f"header field {token!r} has no '='", field=token)
        name = canon.get(key.strip().lower())
        if name is None:
            extra[key] = value
            notes.append(f"unknown header field {key} kept")
            continue
        if name != key:
            notes.append(f"header field {key} read as {name}")
        if name in values:
            raise FieldError(f"header field {name} appears twice", field=name)
        if value == "" and name != "CN":
            notes.append(f"empty {name} read as absent")
            continue
        values[name] = value
    fields, items = parse_cp(cp, notes)
    if "CN" not in values:
        raise FieldError("the data segment has no CN (command code)", field="CN")
    p = Packet(cn=values["CN"], qn=values.get("QN"), st=values.get("ST"), pw=values.get("PW"), mn=values.get("MN"),
               flag=_int_field(values, "Flag"), pnum=_int_field(values, "PNUM"), pno=_int_field(values, "PNO"),
               fields=fields, items=items, extra=extra, segment=segment, notes=notes)
    validate(p)
    return p


def _int_field(values: dict[str, str], name: str) -> int | None:
    v = values.get(name)
    if v is None:
        return None
    if not _DIGITS.match(v):
        raise FieldError(f"{name}={v!r} must be a decimal integer", field=name)
    return int(v)


def _cp_entries(cp: str) -> Iterator[tuple[str, str, str, str]]:
    """(token, key, '=', value) per entry. A value written ``//…//`` (HJ 212-2017 log text, e.g.
    ``i11001-Info``) is opaque: separators inside it do not split it."""
    if "//" not in cp:  # the common case, at C speed
        for token in _SEPARATORS.split(cp):
            key, eq, value = token.partition("=")
            yield token, key, eq, value
        return
    i, n = 0, len(cp)
    while i < n:
        j = i
        while j < n and cp[j] not in ";,=":
            j += 1
        if j >= n or cp[j] != "=":
            yield cp[i:j], cp[i:j], "", ""
            i = j + 1
            continue
        k = j + 1
        if cp.startswith("//", k) and cp.find("//", k + 2) >= 0:
            k = cp.find("//", k + 2) + 2
        while k < n and cp[k] not in ";,":
            k += 1
        yield cp[i:k], cp[i:j], "=", cp[j + 1:k]
        i = k + 1


def parse_cp(cp: str, notes: list[str]) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """CP content: ``key=value`` entries separated by ';' (between groups) or ',' (within one)."""
    fields: dict[str, str] = {}
    items: dict[str, dict[str, str]] = {}
    for token, key, eq, value in _cp_entries(cp):
        if not token.strip():
            continue
        if key != key.strip():
            notes.append(f"spaces around CP key {key.strip()!r} ignored")
            key = key.strip()
        if not eq or not key:
            raise FieldError(f"CP entry {token!r} is not key=value", field=f"CP/{token.strip()}")
        if "-" in key:
            code, _, suffix = key.rpartition("-")
            if not code or not suffix:
                raise FieldError(f"CP entry {key!r} is not code-suffix=value", field=f"CP/{key}")
            sub = items.setdefault(code, {})
            if suffix in sub and sub[suffix] != value:
                raise FieldError(f"CP item {key} appears twice with different values", field=f"CP/{key}")
            sub[suffix] = value
        else:
            if key in fields and fields[key] != value:
                raise FieldError(f"CP field {key} appears twice with different values", field=f"CP/{key}")
            fields[key] = value
    return fields, items


def validate(p: Packet) -> None:
    """Field formats (HJ 212-2017 §6.3.2, §6.4). Sets ``p.version`` and adds notes for leniencies."""
    if not _DIGITS.match(p.cn) or len(p.cn) > 7:
        raise FieldError(f"CN={p.cn!r} must be a numeric command code", field="CN")
    if p.qn is not None:
        if not _DIGITS.match(p.qn) or len(p.qn) > 20:
            raise FieldError(f"QN={p.qn!r} must be digits (YYYYMMDDhhmmsszzz)", field="QN")
        if len(p.qn) != 17:
            p.notes.append(f"QN has {len(p.qn)} digits, not 17")
    if p.st is not None and (not _DIGITS.match(p.st) or len(p.st) > 5):
        raise FieldError(f"ST={p.st!r} must be a numeric system code", field="ST")
    for name in ("PW", "MN"):
        value = getattr(p, name.lower())
        if value is not None and any(c in value for c in ";&="):
            raise FieldError(f"{name}={value!r} contains a separator", field=name)
    if p.flag is not None and p.flag > 255:
        raise FieldError(f"Flag={p.flag} exceeds 8 bits", field="Flag")
    if (p.pnum is None) != (p.pno is None):
        raise FieldError("PNUM and PNO must appear together", field="PNUM" if p.pnum is None else "PNO")
    if p.pnum is not None and p.pno is not None:
        if p.pnum < 1 or not 1 <= p.pno <= p.pnum:
            raise FieldError(f"PNO={p.pno} must be within 1..PNUM={p.pnum}", field="PNO")
        if p.flag is not None and not p.flag & FLAG_SPLIT:
            p.notes.append("PNUM/PNO present although Flag bit 1 (split) is not set")
    elif p.flag is not None and p.flag & FLAG_SPLIT:
        # Field practice (e.g. Flag=3 on requests): bit 1 without PNUM/PNO is read as a single packet.
        p.notes.append("Flag bit 1 (split) set without PNUM/PNO: read as a single packet")
    for key, value in p.fields.items():
        if key in TIME_FIELDS:
            parse_time(value, f"CP/{key}")
        elif key in ("QnRtn", "ExeRtn") and not _DIGITS.match(value):
            raise FieldError(f"CP/{key}={value!r} must be a number", field=f"CP/{key}")
    for code, sub in p.items.items():
        for suffix, value in sub.items():
            where = f"CP/{code}-{suffix}"
            if suffix in NUMERIC_SUFFIXES:
                if value != value.strip():
                    p.notes.append(f"{code}-{suffix}: spaces around the number ignored")
                    value = sub[suffix] = value.strip()
                if value == "":
                    p.notes.append(f"{code}-{suffix} is empty (no value)")
                elif not _NUMBER.match(value):
                    raise FieldError(f"{where}={value!r} is not a number", field=where)
            elif suffix in TIME_SUFFIXES:
                if value:
                    parse_time(value, where)
                else:
                    p.notes.append(f"{code}-{suffix} is empty")
            elif suffix == "Flag" and (not value or not value.isalnum() or len(value) > 4):
                raise FieldError(f"{where}={value!r} is not a data flag (N, F, M, S, D, C, T, B ...)", field=where)
    # Version: Flag bits 2..7 when present, else the style of the pollutant codes.
    if p.flag is not None:
        v = p.flag >> 2
        p.version = "2017" if v == VERSION_2017 else "2005" if v == 0 else "2017"
        if v > VERSION_2017:
            p.notes.append(f"protocol version bits {v} unknown; read as HJ 212-2017")
    else:
        codes = list(p.items)
        if codes and all(_CODE_2005.match(c) or not _CODE_2017.match(c) for c in codes) and any(_CODE_2005.match(c) for c in codes):
            p.version = "2005"
        elif p.version not in ("2017", "2005"):
            p.version = "2017"
        p.notes.append(f"Flag absent; layout read as {'HJ/T 212-2005' if p.version == '2005' else 'HJ 212-2017'}")


# --- encoding -----------------------------------------------------------------------------------
def build_cp(fields: dict[str, str], items: dict[str, dict[str, str]]) -> str:
    groups = [f"{k}={v}" for k, v in fields.items()]
    groups += [",".join(f"{code}-{s}={v}" for s, v in sub.items()) for code, sub in items.items() if sub]
    return ";".join(groups)


def build_segment(p: Packet) -> str:
    parts = []
    for key in HEADER_ORDER:
        value = getattr(p, key.lower())
        if value is not None:
            parts.append(f"{key}={value}")
    parts += [f"{k}={v}" for k, v in p.extra.items()]
    parts.append(f"CP=&&{build_cp(p.fields, p.items)}&&")
    return ";".join(parts)


def frame(segment: str | bytes) -> bytes:
    """Wrap a data segment: ``##`` + length + segment + CRC + CR LF."""
    data = segment.encode("utf-8") if isinstance(segment, str) else segment
    if len(data) > MAX_SEGMENT:
        raise SizeError(f"data segment of {len(data)} bytes does not fit the 4-digit length field")
    return b"##%04d" % len(data) + data + crc_hex(data).encode("ascii") + b"\r\n"


def encode(p: Packet) -> bytes:
    validate(p)
    return frame(build_segment(p))


def split(p: Packet, max_segment: int = STANDARD_SEGMENT) -> list[Packet]:
    """Split a message into packets of at most ``max_segment`` bytes (Flag bit 1, PNUM/PNO).

    Each part repeats the header and the CP fields (DataTime ...) and carries whole codes."""
    if len(build_segment(p).encode("utf-8")) <= max_segment:
        return [p]
    flag = (p.flag if p.flag is not None else VERSION_2017 << 2) | FLAG_SPLIT
    groups: list[dict[str, dict[str, str]]] = [{}]
    probe: Callable[[dict[str, dict[str, str]]], Packet] = lambda g: Packet(cn=p.cn, qn=p.qn, st=p.st, pw=p.pw, mn=p.mn, flag=flag, pnum=9999, pno=9999,  # noqa: E731
                             fields=p.fields, items=g, extra=p.extra)
    for code, sub in p.items.items():
        trial = {**groups[-1], code: sub}
        if len(build_segment(probe(trial)).encode("utf-8")) <= max_segment:
            groups[-1] = trial
        elif groups[-1]:
            groups.append({code: sub})
            if len(build_segment(probe(groups[-1])).encode("utf-8")) > max_segment:
                raise SizeError(f"the items of {code} alone exceed {max_segment} bytes")
        else:
            raise SizeError(f"the items of {code} alone exceed {max_segment} bytes")
    return [Packet(cn=p.cn, qn=p.qn, st=p.st, pw=p.pw, mn=p.mn, flag=flag, pnum=len(groups), pno=i + 1,
                   fields=dict(p.fields), items=g, extra=dict(p.extra), version=p.version)
            for i, g in enumerate(groups)]


def reassemble(parts: list[Packet]) -> Packet:
    """Join the packets of one multi-package message (any arrival order) into one packet."""
    if not parts:
        raise FieldError("no packets to reassemble")
    first = parts[0]
    pnum = first.pnum
    if pnum is None:
        raise FieldError("not a split packet (no PNUM/PNO)", field="PNUM")
    by_no: dict[int, Packet] = {}
    for part in parts:
        if (part.mn, part.qn, part.cn, part.pnum) != (first.mn, first.qn, first.cn, pnum):
            raise FieldError("packets of one message must share MN, QN, CN and PNUM", field="PNUM")
        by_no.setdefault(part.pno, part)  # type: ignore[arg-type]
    missing = [i for i in range(1, pnum + 1) if i not in by_no]
    if missing:
        raise FieldError(f"message incomplete: PNO {', '.join(map(str, missing))} of {pnum} missing", field="PNO")
    fields: dict[str, str] = {}
    items: dict[str, dict[str, str]] = {}
    for i in range(1, pnum + 1):
        part = by_no[i]
        for k, v in part.fields.items():
            if fields.setdefault(k, v) != v:
                raise FieldError(f"packets of one message disagree on CP/{k}", field=f"CP/{k}")
        for code, sub in part.items.items():
            merged = items.setdefault(code, {})
            for s, v in sub.items():
                if merged.setdefault(s, v) != v:
                    raise FieldError(f"packets of one message disagree on {code}-{s}", field=f"CP/{code}-{s}")
    flag = first.flag & ~FLAG_SPLIT if first.flag is not None else None
    return Packet(cn=first.cn, qn=first.qn, st=first.st, pw=first.pw, mn=first.mn, flag=flag, fields=fields,
                  items=items, extra=dict(first.extra), version=first.version,
                  notes=[f"reassembled from {pnum} packets"])


# --- replies ------------------------------------------------------------------------------------
def _reply(p: Packet, cn: str, fields: dict[str, str]) -> Packet:
    flag = VERSION_2017 << 2 if p.version == "2017" else 0  # replies ask for no reply themselves
    return Packet(cn=cn, qn=p.qn, st="91", pw=p.pw, mn=p.mn, flag=flag, fields=fields, version=p.version)


def request_reply(p: Packet, qn_rtn: int = 1) -> Packet:
    """CN 9011 (QnRtn): the answer to a request command."""
    return _reply(p, "9011", {"QnRtn": str(qn_rtn)})


def execution_result(p: Packet, exe_rtn: int = 1) -> Packet:
    """CN 9012 (ExeRtn): the result of executing a request."""
    return _reply(p, "9012", {"ExeRtn": str(exe_rtn)})


def notice_reply(p: Packet) -> Packet:
    """CN 9013: the answer to a notice."""
    return _reply(p, "9013", {})


def data_reply(p: Packet) -> Packet:
    """CN 9014: the answer to uploaded data."""
    return _reply(p, "9014", {})


def reply_for(p: Packet) -> Packet | None:
    """The upper system's reply to a packet from a data logger, or None when its Flag asks for none:
    data uploads → 9014, notices → 9013, requests → 9011 QnRtn=1. Replies are never replied to."""
    if not p.reply_required or p.cn.startswith("90"):
        return None
    if p.cn in DATA_COMMANDS or p.cn[:1] == "2":
        return data_reply(p)
    if p.cn in NOTICE_COMMANDS:
        return notice_reply(p)
    return request_reply(p)


# --- streams ------------------------------------------------------------------------------------
class FrameReader:
    """Cuts packets out of a byte stream with bounded memory.

    ``feed(data)`` returns a list of (frame bytes, error) pairs: error is None for a packet whose
    framing, length and CRC hold, otherwise the HJ212Error (and the bytes that were skipped).
    Garbage before ``##`` is skipped; a packet whose length field lies is dropped and reading
    resumes at the next ``##``. The buffer never holds more than one maximal frame."""

    def __init__(self, max_segment: int = MAX_SEGMENT):
        self.max_segment = max_segment
        self.buf = bytearray()

    @property
    def pending(self) -> int:
        return len(self.buf)

    def feed(self, data: bytes) -> list[tuple[bytes, HJ212Error | None]]:
        self.buf += data
        out: list[tuple[bytes, HJ212Error | None]] = []
        while True:
            start = self.buf.find(b"##")
            if start < 0:
                if self.buf:
                    junk = bytes(self.buf[:-1] if self.buf.endswith(b"#") else self.buf)
                    del self.buf[:len(junk)]
                    if junk.strip():
                        out.append((junk, FramingError(f"{len(junk)} bytes outside any packet skipped")))
                return out
            if start:
                junk = bytes(self.buf[:start])
                del self.buf[:start]
                if junk.strip():
                    out.append((junk, FramingError(f"{len(junk)} bytes before '##' skipped")))
            if len(self.buf) < 6:
                return out
            digits = bytes(self.buf[2:6])
            if not digits.isdigit():
                del self.buf[:2]
                out.append((b"##" + digits, FramingError(f"'##' not followed by a 4-digit length ({digits!r})")))
                continue
            n = int(digits)
            if n > self.max_segment:
                del self.buf[:2]
                out.append((b"##" + digits, SizeError(f"declared data segment of {n} bytes exceeds the limit {self.max_segment}")))
                continue
            need = 6 + n + 4 + 2
            inner = self.buf.find(b"##", 2, need)
            if inner >= 0:
                # Another packet starts inside this one's claimed extent: this one is broken
                # (cut short, or its length lies). Report it and resume at the inner '##'.
                bad = bytes(self.buf[:inner])
                del self.buf[:inner]
                try:
                    unframe(bad, lenient_tail=True)
                    out.append((bad, FramingError("packet not followed by CR LF")))
                except HJ212Error as exc:
                    out.append((bad, exc))
                continue
            if len(self.buf) < need:
                # A lying length: a complete-looking packet (next '##' after CR LF) ends earlier.
                nxt = self.buf.find(b"\r\n##", 6)
                if nxt < 0:
                    return out
                need = nxt + 2
            candidate = bytes(self.buf[:need])
            if candidate.endswith(b"\r\n"):
                del self.buf[:need]
                try:
                    unframe(candidate, lenient_tail=False)
                    out.append((candidate, None))
                except HJ212Error as exc:
                    out.append((candidate, exc))
                continue
            # The length field disagrees with where the packet ends: report it, resync after it.
            end = self.buf.find(b"\r\n", 6)
            nxt = self.buf.find(b"##", 2)
            if end >= 0 and (nxt < 0 or end + 2 <= nxt):
                cut = end + 2
            elif nxt >= 0:
                cut = nxt           # the next packet starts before any CR LF: keep it whole
            elif len(self.buf) <= need + self.max_segment:
                return out          # wait for the end of this packet
            else:
                cut = len(self.buf)
            bad = bytes(self.buf[:cut])
            del self.buf[:cut]
            try:
                unframe(bad, lenient_tail=False)
                out.append((bad, None))          # e.g. a length that counts characters, not bytes
            except HJ212Error as exc:
                try:
                    unframe(bad, lenient_tail=True)
                    out.append((bad, FramingError("packet not followed by CR LF")))
                except HJ212Error:
                    out.append((bad, exc))
