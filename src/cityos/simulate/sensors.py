"""Simulated lifeline sensors: devices placed on the bundle's streets (SensorThings Things with a
Location and one Datastream each), a month of readings around each device's usual value, the
plan's incidents written into them (a gas leak beside a gas main, sewer gas, a burst main, a
storm, a bridge moving, a silent and a flat device), fed through the real ingest and the real
rules in time order — every alert is one the monitor raised — and the operations centre's work
on the older alerts through their lifecycle (:func:`alert_work`, taken among the tickets)."""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyproj
from numpy.typing import NDArray
from sqlalchemy import Connection, Engine, select

from cityos.lifelines.entities import ENTITY_SETS
from cityos.lifelines.ingest import create_observations
from cityos.lifelines.models import Alert, StaDatastream
from cityos.lifelines.monitor import Monitor
from cityos.lifelines.sta import Locate, create
from cityos.ops.keys import KeyInfo
from cityos.simulate.plan import Plan, SensorKind

__all__ = [
    "OPERATOR",
    "AlertTask",
    "Device",
    "Incident",
    "alert_summary",
    "alert_work",
    "devices_in_store",
    "edges",
    "feed",
    "incidents",
    "place_devices",
    "register",
    "series",
]

OPERATOR = KeyInfo("simulate:operations-centre", "dispatcher")
_MINUTE = dt.timedelta(minutes=1)


@dataclass
class Device:
    """A simulated device: its kind, where (WGS84 and the bundle's metres), and its ids once
    registered."""

    kind: SensorKind
    name: str
    lon: float
    lat: float
    x: float
    y: float
    datastream: int = 0
    #: the last time it reports (silent after it) and when its values freeze (flat after it)
    silent_from: dt.datetime | None = None
    flat_from: dt.datetime | None = None


@dataclass(frozen=True)
class Incident:
    """What the plan makes happen: its kind, when, the devices and the values it writes."""

    kind: str
    at: dt.datetime
    #: per device name: (times, values) replacing the device's usual readings in that window
    readings: dict[str, tuple[list[dt.datetime], list[float]]] = field(default_factory=dict)
    #: citizens' calls it brings: (minutes after, service code, device name)
    calls: tuple[tuple[float, str, str], ...] = ()


def place_devices(rng: np.random.Generator, plan: Plan, residents: float, crs: str,
                  streets: tuple[NDArray[np.float64], NDArray[np.float64]]) -> list[Device]:  # fmt: skip
    """Devices of each kind (``per_10000`` residents, at least ``min``) at street points
    (``streets``: x and y in ``crs``); the first gas main is put 40 m from the first gas well
    (the gas-leak incident needs them side by side)."""
    to_wgs = pyproj.Transformer.from_crs(crs, 4326, always_xy=True)
    xs, ys = streets
    devices = []
    for kind in plan.sensors.values():
        n = max(kind.min, math.ceil(kind.per_10000 * residents / 10_000))
        pick = rng.choice(len(xs), size=n, replace=len(xs) < n)
        for i, j in enumerate(pick):
            devices.append(
                _device(kind, f"{kind.name}-{i + 1}", float(xs[j]), float(ys[j]), to_wgs)
            )
    wells = [d for d in devices if d.kind.name == "gas"]
    mains = [d for d in devices if d.kind.name == "gas_main"]
    if wells and mains:
        w, m = wells[0], mains[0]
        devices[devices.index(m)] = _device(m.kind, m.name, w.x + 40.0, w.y, to_wgs)
    return devices


def _device(kind: SensorKind, name: str, x: float, y: float, to_wgs: pyproj.Transformer) -> Device:
    lon, lat = to_wgs.transform(x, y)
    return Device(kind, name, float(lon), float(lat), x, y)


def register(conn: Connection, devices: list[Device], locate: Locate) -> None:
    """Create each device as a Thing with its Location, Sensor and Datastream (one
    ObservedProperty per property, shared); sets ``Device.datastream``."""
    props: dict[str, int] = {}
    sensors: dict[str, int] = {}
    for d in devices:
        k = d.kind
        prop: Any = ({"@iot.id": props[k.property]} if k.property in props else
                     {"name": k.property, "definition": f"cityos:{k.property}", "description": k.property})  # fmt: skip
        sensor: Any = ({"@iot.id": sensors[k.name]} if k.name in sensors else
                       {"name": f"{k.thing} ({k.name})", "description": "simulated device",
                        "encodingType": "text/plain", "metadata": "cityos simulate"})  # fmt: skip
        body = {
            "name": f"{k.thing} {d.name}", "description": "simulated (cityos simulate)",
            "properties": {"domain": k.name, "simulated": True},
            "Locations": [{"name": d.name, "description": "", "encodingType": "application/geo+json",
                           "location": {"type": "Point", "coordinates": [d.lon, d.lat]}}],
            "Datastreams": [{"name": f"{d.name} {k.property}", "description": "",
                             "observationType": "OM_Measurement",
                             "unitOfMeasurement": {"name": k.unit, "symbol": k.unit, "definition": ""},
                             "properties": {"reportingInterval": k.interval_s},
                             "Sensor": sensor, "ObservedProperty": prop}],
        }  # fmt: skip
        thing = create(conn, ENTITY_SETS["Things"], body, locate)
        row = conn.execute(
            select(StaDatastream.id, StaDatastream.observed_property_id, StaDatastream.sensor_id)
            .where(StaDatastream.thing_id == thing)
        ).one()  # fmt: skip
        d.datastream = int(row[0])
        props.setdefault(k.property, int(row[1]))
        sensors.setdefault(k.name, int(row[2]))


def _ramp(t0: dt.datetime, step_min: float, shape: list[tuple[float, float]]) -> tuple[list[dt.datetime], list[float]]:  # fmt: skip
    """Readings every ``step_min`` minutes through the (minutes, value) corners of ``shape``,
    linear between them."""
    mins = np.arange(shape[0][0], shape[-1][0] + 1e-9, step_min)
    vals = np.interp(mins, [m for m, _ in shape], [v for _, v in shape])
    return [t0 + _MINUTE * float(m) for m in mins], [round(float(v), 4) for v in vals]


def incidents(rng: np.random.Generator, plan: Plan, devices: list[Device], start: dt.datetime,
              end: dt.datetime) -> list[Incident]:  # fmt: skip
    """The plan's incidents, each on its own day (daytime, UTC), on the devices they need; a
    kind whose devices the city lacks is left out."""
    by = {k: [d for d in devices if d.kind.name == k] for k in plan.sensors}
    days = max(1, (end - start).days - 2)
    order = rng.permutation(days)
    slot = iter(order)
    out: list[Incident] = []

    def when() -> dt.datetime:
        day = int(next(slot, rng.integers(days)))
        return start + dt.timedelta(days=day + 1, hours=float(rng.uniform(7, 17)))

    wells, mains = by.get("gas", []), by.get("gas_main", [])
    for _ in range(plan.incidents.get("gas_leak", 0) if wells and mains else 0):
        t0, w, m = when(), wells[0], mains[0]
        base = m.kind.base
        out.append(Incident("gas_leak", t0, {
            m.name: _ramp(t0, 1, [(-10, base), (0, base), (5, base * 0.78), (60, base * 0.78), (90, base)]),
            w.name: _ramp(t0, 1, [(-10, 1.0), (6, 1.0), (12, 55.0), (45, 55.0), (60, 1.0), (70, 1.0)]),
        }, ((20.0, "gas_leak", w.name),)))  # fmt: skip
    far = [w for w in wells[1:] if all(math.hypot(w.x - m.x, w.y - m.y) > 150 for m in mains)]
    for i in range(min(plan.incidents.get("biogas", 0), len(far))):
        t0, w = when(), far[i]
        out.append(Incident("biogas", t0, {
            w.name: _ramp(t0, 1, [(-5, 1.0), (0, 1.0), (5, 32.0), (40, 32.0), (50, 1.0), (55, 1.0)])}))  # fmt: skip
    water = by.get("water", [])
    for i in range(min(plan.incidents.get("water_burst", 0), len(water))):
        t0, d = when(), water[i]
        b = d.kind.base
        out.append(Incident("water_burst", t0, {
            d.name: _ramp(t0, 1, [(-10, b), (0, b), (4, b * 0.75), (120, b * 0.75), (150, b)])},
            ((30.0, "water_outage", d.name),)))  # fmt: skip
    rain, drains = by.get("rain", []), by.get("drainage", [])
    for _ in range(plan.incidents.get("storm", 0) if rain and drains else 0):
        t0 = when()
        readings = {rain[0].name: _ramp(t0, 5, [(-30, 0.0), (0, 8.0), (20, 65.0), (120, 62.0), (150, 4.0), (180, 0.0)])}  # fmt: skip
        peaks = [31.0, 24.0, 18.0, 12.0]
        calls = []
        for d, peak in zip(drains, peaks * (len(drains) // len(peaks) + 1), strict=False):
            readings[d.name] = _ramp(t0, 1, [(-10, 0.0), (20, 0.0), (80, peak), (110, peak), (200, 0.0), (210, 0.0)])  # fmt: skip
            if peak >= 24:
                calls.append((85.0, "waterlogging", d.name))
        out.append(Incident("storm", t0, readings, tuple(calls)))
    bridges = by.get("bridge", [])
    for i in range(min(plan.incidents.get("bridge", 0), len(bridges))):
        t0, d = when(), bridges[i]
        b = d.kind.base
        out.append(Incident("bridge", t0, {
            d.name: _ramp(t0, 5, [(-10, b), (0, b), (20, 12.5), (90, 12.5), (110, b), (120, b)])}))  # fmt: skip
    healthy = [d for d in devices if d.kind.name in ("gas", "water", "bridge")]
    used = {n for inc in out for n in inc.readings}
    spare = [d for d in healthy if d.name not in used]
    for d in spare[: plan.incidents.get("silent_devices", 0)]:
        d.silent_from = end - dt.timedelta(hours=float(rng.uniform(30, 44)))
    for d in spare[plan.incidents.get("silent_devices", 0):][: plan.incidents.get("flat_devices", 0)]:  # fmt: skip
        d.flat_from = end - dt.timedelta(hours=float(rng.uniform(26, 34)))
    return out


def series(rng: np.random.Generator, d: Device, start: dt.datetime, end: dt.datetime,
           found: list[Incident]) -> tuple[list[dt.datetime], NDArray[np.float64]]:  # fmt: skip
    """A device's readings in [start, end): every interval (a random phase), its usual value
    with normal noise (never below 0 for amounts), the incidents' windows written over them, a
    silent device stopping, a flat one repeating its last value."""
    k = d.kind
    step = dt.timedelta(seconds=k.interval_s)
    n = int((end - start) / step)
    first = start + step * float(rng.uniform(0, 1))
    times = [first + step * i for i in range(n) if first + step * i < end]
    values = k.base + k.noise * rng.standard_normal(len(times))
    if k.property in ("methane", "water_depth", "rain_intensity"):
        values = np.maximum(values, 0.0)
    values = np.round(values, 4)
    for inc in found:
        if d.name not in inc.readings:
            continue
        ts, vs = inc.readings[d.name]
        keep = [i for i, t in enumerate(times) if not ts[0] <= t <= ts[-1]]
        merged = sorted(
            [(times[i], float(values[i])) for i in keep] + list(zip(ts, vs, strict=True))
        )
        times, values = [t for t, _ in merged], np.array([v for _, v in merged])
    if d.flat_from is not None:
        frozen = round(k.base, 4)
        values = np.where([t >= d.flat_from for t in times], frozen, values)
    if d.silent_from is not None:
        cut = [i for i, t in enumerate(times) if t < d.silent_from]
        times, values = [times[i] for i in cut], values[cut]
    return times, np.asarray(values, dtype=float)


def edges(start: dt.datetime, end: dt.datetime, fine: list[tuple[dt.datetime, dt.datetime]],
          chunk: dt.timedelta = dt.timedelta(hours=6), step: dt.timedelta = 2 * _MINUTE) -> list[dt.datetime]:  # fmt: skip
    """The ends of the chunks readings are written in: every ``chunk``, and every ``step``
    within the ``fine`` windows (an incident: the rules must see its readings about as the
    service would, or an episode raised and cleared inside one chunk would never be an alert;
    the shortest, a pressure drop, lasts the rule's 5-minute window)."""
    out = set()
    t = start + chunk
    while t < end:
        out.add(t)
        t += chunk
    for a, b in fine:
        t = max(start, a)
        while t <= min(end, b + step):
            out.add(t)
            t += step
    return sorted(out | {end})


def feed(engine: Engine, monitor: Monitor, readings: dict[int, tuple[list[dt.datetime], NDArray[np.float64]]],
         locate: Locate, start: dt.datetime, ends: list[dt.datetime],
         progress: Callable[[float], None] = lambda n: None) -> int:  # fmt: skip
    """Write the readings in time order, chunk by chunk (``ends``: each chunk's end): the
    dataArray ingest, then the rules at the chunk's end, then the sweep for silent devices,
    each chunk one transaction; returns the readings written."""
    written = 0
    t = start
    for stop in ends:
        body = []
        for ds, (times, values) in readings.items():
            lo, hi = bisect.bisect_left(times, t), bisect.bisect_left(times, stop)
            if hi > lo:
                body.append({"Datastream": {"@iot.id": ds}, "components": ["phenomenonTime", "result"],
                             "dataArray": [[times[i].isoformat() + "Z", float(values[i])] for i in range(lo, hi)]})  # fmt: skip
        with engine.begin() as conn:
            if body:
                _, fresh = create_observations(conn, body, locate)
                monitor.check(conn, list(fresh), now=stop, fresh=fresh)
                written += sum(len(g["dataArray"]) for g in body)
            monitor.sweep(conn, now=stop)
        progress((stop - t) / dt.timedelta(hours=1))
        t = stop
    return written


#: the lifecycle of a worked hazard alert: step, then minutes after the previous (low, high)
_WORK = (("confirm", 3, 8), ("notify", 2, 5), ("dispatch", 5, 10), ("arrive", 15, 40),
         ("handle", 60, 180), ("feedback", 30, 120), ("close", 10, 60))  # fmt: skip


@dataclass(frozen=True)
class AlertTask:
    """One step of the operations centre's work on an alert, taken at its time among the
    tickets (a ``dispatch`` opens the alert's hotline work order)."""

    alert_id: int
    action: str
    reason: str


def alert_work(conn: Connection, rng: np.random.Generator, end: dt.datetime,
               open_after_h: float) -> list[tuple[dt.datetime, AlertTask]]:  # fmt: skip
    """The operations centre's work, as timed steps before ``end``: hazard alerts raised more
    than ``open_after_h`` hours before ``end`` are confirmed, notified, dispatched, reached,
    handled, reported back and closed (a step that would fall after ``end`` waits, and so do
    those after it); a device alert whose condition has cleared is closed as a device fault
    half an hour later."""
    rows = conn.execute(
        select(Alert.id, Alert.hazard, Alert.raised_at, Alert.cleared_at, Alert.state)
        .where(Alert.closed_at.is_(None)).order_by(Alert.raised_at)
    ).all()  # fmt: skip
    out: list[tuple[dt.datetime, AlertTask]] = []
    limit = end - dt.timedelta(hours=open_after_h)
    for aid, hazard, raised, cleared, state in rows:
        if state != "detected":
            continue
        if not hazard:
            if cleared is not None and cleared < end:
                out.append((cleared + _MINUTE * 30, AlertTask(aid, "device_fault", "the device was serviced")))  # fmt: skip
            continue
        if raised >= limit:
            continue
        at = raised
        for action, lo, hi in _WORK:
            at = at + _MINUTE * float(rng.uniform(lo, hi))
            if at >= end:
                break
            out.append((at, AlertTask(aid, action, _REASONS[action])))
    return out


_REASONS = {"confirm": "研判: confirmed on the video and the readings", "notify": "the owner unit told",
            "dispatch": "crew sent", "arrive": "crew on site", "handle": "made safe",
            "feedback": "the owner reports the cause fixed", "close": "closed"}  # fmt: skip


def alert_summary(conn: Connection) -> dict[str, Any]:
    """Alerts by kind and highest level, those still open, and those with a work order."""
    rows = conn.execute(select(Alert.hazard, Alert.max_level, Alert.closed_at, Alert.ticket_id)).all()  # fmt: skip
    out: dict[str, Any] = {"hazard": {}, "device": {}, "open": 0, "work_orders": 0}
    for hazard, level, closed, ticket in rows:
        part = out["hazard" if hazard else "device"]
        part[level] = part.get(level, 0) + 1
        out["open"] += closed is None
        out["work_orders"] += ticket is not None
    return out


def devices_in_store(conn: Connection, plan: Plan) -> list[Device]:
    """The simulated devices of a store filled earlier (``--live`` on its own), read back from
    their datastreams' names (``NAME PROPERTY``); places are not needed to feed them."""
    kinds = {k.property: k for k in plan.sensors.values()}
    out = []
    for ds, name in conn.execute(
        select(StaDatastream.id, StaDatastream.name).order_by(StaDatastream.id)
    ):
        device, _, prop = str(name).partition(" ")
        if prop in kinds:
            out.append(Device(kinds[prop], device, 0.0, 0.0, 0.0, 0.0, int(ds)))
    return out
