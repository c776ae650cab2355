"""The code → metering-point table (mapping.yaml) and the conversions it describes."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from ..generated.constants import QUALITY_FLAGS, SPEC_VERSION

BUILTIN = Path(__file__).with_name("mapping.yaml")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class MappingError(ValueError):
    """The table (or a site file) is not usable; the message names the entry."""


@dataclass(frozen=True)
class CodeMap:
    code: str
    measurand: str
    name: str
    unit_hj212: str
    unit: str
    factor: Decimal
    offset: Decimal
    instrument: str


@dataclass(frozen=True)
class Logger:
    mn: str
    prefix: str
    facility_id: str | None
    password: str | None
    base: str
    since: dt.datetime
    instruments: dict[str, Any]


class Mapping:
    def __init__(self, doc: dict[str, Any]):
        try:
            self.tz = _tz(doc.get("timezone", "+08:00"))
            self.commands: dict[str, str] = {str(k): str(v) for k, v in doc["commands"].items()}
            self.value_suffix: dict[str, list[str]] = {k: list(v) for k, v in doc["value_suffix"].items()}
            self.flags: dict[str, str] = {str(k): str(v) for k, v in doc["flags"].items()}
            self.default_flag = str(doc.get("default_flag", "D"))
            self.missing_flag = str(doc.get("missing_flag", "N"))
            self.codes = {str(c): CodeMap(str(c), e["measurand"], e["name"], str(e["unit_hj212"]), str(e["unit"]),
                                          Decimal(str(e.get("factor", "1"))), Decimal(str(e.get("offset", "0"))),
                                          e.get("instrument", "other"))
                          for c, e in (doc.get("codes") or {}).items()}
            self.loggers = {str(mn): self._logger(str(mn), e) for mn, e in (doc.get("loggers") or {}).items()}
        except (KeyError, TypeError, InvalidOperation, AttributeError) as exc:
            raise MappingError(f"mapping table: missing or malformed entry ({exc!r})") from None
        bad = sorted({f for f in (*self.flags.values(), self.default_flag, self.missing_flag) if f not in QUALITY_FLAGS or len(f) != 1})
        if bad:
            raise MappingError(f"mapping table: {bad} are not quality flags of the spec (N F M S D C T B)")

    def _logger(self, mn: str, e: dict[str, Any]) -> Logger:
        prefix = str(e.get("prefix", mn))
        if not _ID.match(prefix + "-a00000"):
            raise MappingError(f"logger {mn}: prefix {prefix!r} does not make valid point IDs")
        base = str(e.get("base", "minute"))
        if base not in ("minute", "hour"):
            raise MappingError(f"logger {mn}: base must be minute or hour")
        since = dt.datetime.fromisoformat(str(e["since"])).replace(tzinfo=self.tz)
        if since.time() != dt.time(0):
            raise MappingError(f"logger {mn}: since must be a date (a local midnight)")
        return Logger(mn, prefix, e.get("facilityId"), None if e.get("password") is None else str(e["password"]),
                      base, since, dict(e.get("instruments") or {}))

    @classmethod
    def load(cls, site: str | Path | dict[str, Any] | None = None) -> Mapping:
        doc = yaml.safe_load(BUILTIN.read_text(encoding="utf-8"))
        if site is not None:
            extra = site if isinstance(site, dict) else yaml.safe_load(Path(site).read_text(encoding="utf-8")) or {}
            if not isinstance(extra, dict):
                raise MappingError("a site mapping file must be a YAML mapping")
            for key, value in extra.items():
                if isinstance(value, dict) and isinstance(doc.get(key), dict):
                    doc[key] = {**doc[key], **value}
                else:
                    doc[key] = value
        return cls(doc)

    # --- conversions ------------------------------------------------------------------------
    def point_id(self, logger: Logger, code: str) -> str:
        return f"{logger.prefix}-{code}"

    def flag(self, raw: str | None) -> str:
        if raw is None or raw == "":
            return self.missing_flag
        return self.flags.get(raw, self.flags.get(raw.upper(), self.default_flag))

    def convert(self, cm: CodeMap, text: str) -> str:
        """The value in the spec's unit, as a plain decimal string (at most 12 decimals)."""
        v = Decimal(text) * cm.factor + cm.offset
        exponent = v.as_tuple().exponent
        places = max(0, min(12, -exponent if isinstance(exponent, int) else 0))
        out = format(v.quantize(Decimal(1).scaleb(-places)), "f")
        return "0" if out in ("-0", "") else out

    def local_time(self, text: str) -> dt.datetime:
        from .codec import parse_time

        return parse_time(text, "CP/DataTime").replace(tzinfo=self.tz)

    def point_document(self, logger: Logger, code: str, spec_version: str = SPEC_VERSION) -> dict[str, Any]:
        cm = self.codes[code]
        doc = {"specVersion": spec_version, "pointId": self.point_id(logger, code), "name": cm.name,
               "measurand": cm.measurand, "unit": cm.unit}
        if logger.facility_id:
            doc["facilityId"] = logger.facility_id
        if re.fullmatch(r"[a-z][0-9]{5}", code):
            doc["hj212Code"] = code
        instrument = logger.instruments.get(code)
        if instrument is None:
            raise MappingError(f"logger {logger.mn}: no instrument record for {code} (the spec requires one)")
        doc["instrument"] = instrument
        return doc


def _tz(text: str) -> dt.timezone:
    m = re.fullmatch(r"([+-])(\d{2}):(\d{2})", str(text))
    if not m:
        raise MappingError(f"timezone {text!r} must look like +08:00")
    minutes = int(m.group(2)) * 60 + int(m.group(3))
    return dt.timezone(dt.timedelta(minutes=minutes if m.group(1) == "+" else -minutes))
