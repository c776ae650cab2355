"""Seeded simulations of metering points, written into the source's SealedStore.

Every local day of a point is a pure function of (seed, point, day), so the same seed always
yields the same data and days can be generated in any order. Realistic features: daily load
profiles, measurement noise, planned maintenance (flag M), communication losses (flag B, no
value), instrument faults (D), over-range readings (T) and a stopped unit (F). The simulation
is one writer of the store like any other (cedx.acquisition.store): it appends and seals whole
days as they end, so the source serves stored batches and never recomputes them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from ..generated.constants import SPEC_VERSION
from ..instants import CST

if TYPE_CHECKING:
    from .store import SealedStore

UTC = dt.timezone.utc


def _u(seed: str, *parts: object) -> float:
    """A uniform number in [0, 1) from the seed and parts (stable across runs and platforms)."""
    h = hashlib.blake2b(("|".join(map(str, (seed, *parts)))).encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64


@dataclass(frozen=True)
class Window:
    start: dt.datetime
    end: dt.datetime
    flag: str

    def covers(self, t: dt.datetime) -> bool:
        return self.start <= t < self.end


@dataclass
class PointModel:
    point_id: str
    name: str
    measurand: str
    unit: str                 # unit of the minute values (a rate, e.g. t/h)
    total_unit: str           # unit of period totals (e.g. t)
    per_hour: Decimal         # factor turning one minute of the rate into the total unit
    mean: float
    amplitude: float          # daily swing as a fraction of the mean
    noise: float              # relative noise
    upper: float              # instrument range; above it the flag is T
    decimals: int = 2
    windows: list[Window] = field(default_factory=list)
    instrument: dict[str, Any] = field(default_factory=dict)
    facility_id: str | None = None
    source_id: str | None = None
    hj212: str | None = None

    def sample(self, seed: str, t: dt.datetime) -> tuple[Decimal | None, str]:
        for w in self.windows:
            if w.covers(t):
                if w.flag in ("B",):
                    return None, "B"
                if w.flag == "F":
                    return Decimal(0), "F"
                value = self._value(seed, t)
                return value, w.flag
        minute = int(t.timestamp() // 60)
        if _u(seed, self.point_id, minute, "comm") < 0.002:      # sporadic lost telegrams
            return None, "B"
        value = self._value(seed, t)
        if float(value) > self.upper:
            return Decimal(str(self.upper)), "T"
        return value, "N"

    def day(self, seed: str, day_start: int) -> list[tuple[int, str, str]]:
        """The 1,440 minute readings (epoch, value text, flag) of the local day starting at
        ``day_start`` (epoch seconds): one seeded generator per day, so any day is cheap."""
        rng = random.Random(f"{seed}|{self.point_id}|{day_start}")
        windows = [(int(w.start.timestamp()), int(w.end.timestamp()), w.flag) for w in self.windows
                   if w.end.timestamp() > day_start and w.start.timestamp() < day_start + 86400]
        out, fmt = [], f"{{:.{self.decimals}f}}"
        upper = fmt.format(self.upper)
        for m in range(1440):
            t = day_start + 60 * m
            comm, noise, spike = rng.random(), rng.random(), rng.random()
            flag = "N"
            for a, b, f in windows:
                if a <= t < b:
                    flag = f
                    break
            if flag == "B" or (flag == "N" and comm < 0.002):
                out.append((t, "", "B"))
                continue
            if flag == "F":
                out.append((t, fmt.format(0), "F"))
                continue
            profile = _PROFILE[m] if self.amplitude else 0.0
            v = max(0.0, self.mean * (1 + self.amplitude * profile) * (1 + self.noise * (2 * noise - 1))
                    * (1.35 if spike < 0.0005 else 1.0))
            if flag == "N" and v > self.upper:
                out.append((t, upper, "T"))
            else:
                out.append((t, fmt.format(v), flag))
        return out

    def _value(self, seed: str, t: dt.datetime) -> Decimal:
        local = t.astimezone(CST)
        hour = local.hour + local.minute / 60
        profile = 1 + self.amplitude * math.sin((hour - 9) / 24 * 2 * math.pi)
        minute = int(t.timestamp() // 60)
        noise = 1 + self.noise * (2 * _u(seed, self.point_id, minute) - 1)
        spike = 1.35 if _u(seed, self.point_id, minute, "spike") < 0.0005 else 1.0
        v = max(0.0, self.mean * profile * noise * spike)
        return Decimal(repr(v)).quantize(Decimal(1).scaleb(-self.decimals), ROUND_HALF_UP)


# sin of the local hour, shifted so the load peaks in the afternoon (local minute of day 0..1439)
_PROFILE = [math.sin((m / 60 - 9) / 24 * 2 * math.pi) for m in range(1440)]


def _instrument(pid: str, itype: str, model: str, serial: str, acc: str, lo: str, hi: str, unit: str, cal: str, due: str,
                cert: str, body: str, method: str = "verification") -> dict[str, Any]:
    return {"instrumentId": f"INS-{pid}", "type": itype, "model": model, "serialNumber": serial,
            "manufacturer": "示范仪表有限公司", "accuracyClass": acc, "range": {"lower": lo, "upper": hi, "unit": unit},
            "calibration": {"method": method, "date": cal, "dueDate": due, "certificateNumber": cert, "body": body}}


def power_plant(month_start: dt.datetime) -> list[PointModel]:
    """Unit 1 of a 2 x 660 MW coal-fired plant: coal feed, grid import, flue-gas CO2."""
    d: Callable[[int, int], dt.datetime] = lambda day, hour: month_start.replace(day=day, hour=hour)  # noqa: E731
    body = "江苏省计量科学研究院（示例） / provincial metrology institute (example)"
    return [
        PointModel("PWR-U1-COAL", "1 号机组入炉煤皮带秤 / Unit 1 coal belt scale", "coal_feed", "t/h", "t", Decimal(1) / 60,
                   mean=212.0, amplitude=0.12, noise=0.03, upper=400, facility_id="PWR-U1", source_id="PWR-U1-COAL",
                   windows=[Window(d(9, 2), d(9, 4), "M"), Window(d(17, 10), d(17, 11), "B"), Window(d(22, 0), d(23, 6), "F")],
                   instrument=_instrument("PWR-U1-COAL", "belt_scale", "ICS-20A", "BS2024-0117", "0.5", "0", "400", "t/h",
                                          "2026-06-18", "2027-06-17", "JD-2026-BS-0117", body)),
        PointModel("PWR-U1-GEN", "1 号发电机出口电能表 / Unit 1 generator meter", "electricity_generation", "MW", "MWh", Decimal(1) / 60,
                   mean=495.0, amplitude=0.12, noise=0.02, upper=700, decimals=3, facility_id="PWR-U1",
                   windows=[Window(d(22, 0), d(23, 6), "F")],
                   instrument=_instrument("PWR-U1-GEN", "electricity_meter", "DTZ-341", "EM2023-5511", "0.2S", "0", "700", "MW",
                                          "2026-03-02", "2028-03-01", "JD-2026-EM-5511", "国网计量中心（示例） / grid metering centre (example)")),
        PointModel("PWR-U1-SUPPLY", "1 号机组上网关口表 / Unit 1 export meter", "electricity_supply", "MW", "MWh", Decimal(1) / 60,
                   mean=470.0, amplitude=0.12, noise=0.02, upper=700, decimals=3, facility_id="PWR-U1",
                   windows=[Window(d(22, 0), d(23, 6), "F")],
                   instrument=_instrument("PWR-U1-SUPPLY", "electricity_meter", "DTZ-341", "EM2023-5512", "0.2S", "0", "700", "MW",
                                          "2026-03-02", "2028-03-01", "JD-2026-EM-5512", "国网计量中心（示例） / grid metering centre (example)")),
        PointModel("PWR-GRID-IMPORT", "下网电能表 / grid import meter", "electricity_import", "MW", "MWh", Decimal(1) / 60,
                   mean=1.65, amplitude=0.25, noise=0.05, upper=20, decimals=3, facility_id="PWR-U1", source_id="PWR-GRID",
                   instrument=_instrument("PWR-GRID-IMPORT", "electricity_meter", "DTZ-341", "EM2023-5521", "0.2S", "0", "20", "MW",
                                          "2026-03-02", "2028-03-01", "JD-2026-EM-5521", "国网计量中心（示例） / grid metering centre (example)")),
        PointModel("PWR-U1-CO2", "1 号机组烟气 CO2 / Unit 1 flue-gas CO2 (CEMS)", "co2_concentration", "mg/m3", "mg/m3", Decimal(1) / 60,
                   mean=231000.0, amplitude=0.02, noise=0.01, upper=300000, decimals=0, facility_id="PWR-U1", hj212="a05001",
                   windows=[Window(d(12, 8), d(12, 9), "C")],
                   instrument=_instrument("PWR-U1-CO2", "gas_analyzer", "CEMS-2000", "CE2025-0031", "2", "0", "300000", "mg/m3",
                                          "2026-09-01", "2027-03-01", "JZ-2026-CE-0031", "示范环境监测站 / monitoring station (example)", "calibration")),
    ]


def cement_line(month_start: dt.datetime) -> list[PointModel]:
    """A 5,000 t/d clinker line: clinker output, kiln coal, raw meal."""
    d: Callable[[int, int], dt.datetime] = lambda day, hour: month_start.replace(day=day, hour=hour)  # noqa: E731
    body = "云南省计量测试技术研究院（示例） / provincial metrology institute (example)"
    return [
        PointModel("CEM-CLINKER", "熟料输送皮带秤 / clinker belt scale", "clinker_output", "t/h", "t", Decimal(1) / 60,
                   mean=198.0, amplitude=0.04, noise=0.02, upper=300, facility_id="L1-5000TPD",
                   windows=[Window(d(14, 6), d(14, 14), "M")],
                   instrument=_instrument("CEM-CLINKER", "belt_scale", "ICS-17", "BS2022-3301", "0.5", "0", "300", "t/h",
                                          "2026-04-10", "2027-04-09", "JD-2026-BS-3301", body)),
        PointModel("CEM-KILN-COAL", "窑头窑尾喂煤秤 / kiln coal feeder", "coal_feed", "t/h", "t", Decimal(1) / 60,
                   mean=27.6, amplitude=0.03, noise=0.02, upper=50, facility_id="L1-5000TPD", source_id="CEM-KILN-COAL",
                   windows=[Window(d(14, 6), d(14, 14), "M"), Window(d(20, 13), d(20, 14), "D")],
                   instrument=_instrument("CEM-KILN-COAL", "belt_scale", "SCHENCK-MULTIDOS", "SF2023-0042", "0.5", "0", "50", "t/h",
                                          "2026-05-20", "2027-05-19", "JD-2026-SF-0042", body)),
        PointModel("CEM-RAWMEAL", "生料入窑提升机秤 / raw meal feed", "raw_meal_feed", "t/h", "t", Decimal(1) / 60,
                   mean=309.0, amplitude=0.04, noise=0.02, upper=450, facility_id="L1-5000TPD",
                   instrument=_instrument("CEM-RAWMEAL", "belt_scale", "FLOWMETER-X", "RM2021-0777", "1", "0", "450", "t/h",
                                          "2026-02-11", "2027-02-10", "JD-2026-RM-0777", body)),
    ]


SITES = {"power": power_plant, "cement": cement_line}


def point_document(p: PointModel) -> dict[str, Any]:
    """The MeteringPoint record of a simulated point."""
    doc: dict[str, Any] = {"specVersion": SPEC_VERSION, "pointId": p.point_id, "name": p.name, "measurand": p.measurand, "unit": p.unit}
    if p.facility_id:
        doc["facilityId"] = p.facility_id
    if p.source_id:
        doc["emissionSourceId"] = p.source_id
    if p.hj212:
        doc["hj212Code"] = p.hj212
    doc["instrument"] = p.instrument
    return doc


def synthetic_points(base: PointModel, n: int) -> list[PointModel]:
    """Load tests: n copies of a point with their own IDs (and so their own data)."""
    return [PointModel(f"SYN-{i:03d}", f"{base.name} #{i}", base.measurand, base.unit, base.total_unit, base.per_hour,
                       base.mean, base.amplitude, base.noise, base.upper, base.decimals, [], base.instrument)
            for i in range(n)]


class Simulation:
    """Writes the simulated points of a site into a SealedStore, one local day at a time."""

    def __init__(self, models: list[PointModel], commissioned: dt.datetime, seed: str = "cedx"):
        self.models, self.seed = {m.point_id: m for m in models}, seed
        self.commissioned = commissioned

    def register(self, store: SealedStore) -> None:
        for m in self.models.values():
            store.register_point(point_document(m), since=self.commissioned)

    def write(self, store: SealedStore, until: dt.datetime | int) -> int:
        """Append and seal every simulated minute before ``until`` not yet in the store."""
        end = until if isinstance(until, int) else int(until.timestamp())
        end = end // 60 * 60
        n = 0
        for m in self.models.values():
            t = store.sealed_until(m.point_id, "minute") or int(self.commissioned.timestamp())
            while t < end:
                day = store.floor("day", t)
                stop = min(day + 86400, end)
                n += store.append_and_seal(m.point_id, [r for r in m.day(self.seed, day) if t <= r[0] < stop], until=stop)
                t = stop
        return n
