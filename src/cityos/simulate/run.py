"""``cityos simulate``: a seeded month of operations written into a store — sensors and their
readings (alerts raised by the real rules), tickets through the real hotline workflow, house
inspections — so a dashboard has a living city to show. The same seed gives the same month."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import sessionmaker

from cityos.bundle import Bundle, read_bundle
from cityos.errors import ConfigError, InputError
from cityos.lifelines.lifecycle import load_limits
from cityos.lifelines.models import StaThing
from cityos.lifelines.monitor import Monitor
from cityos.lifelines.rules import load_rules
from cityos.ops.hotline import Hotline, load_hotline
from cityos.ops.models import Base, Inspection, Ticket, Transition
from cityos.ops.store import check_current, connect
from cityos.population import estimate_population
from cityos.progress import Reporter
from cityos.simulate import housing, sensors, tickets
from cityos.simulate.plan import Plan, load_plan

__all__ = ["Simulation", "Summary", "prepare", "simulate", "timezone"]


def timezone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``, or an :class:`InputError` saying how to name one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InputError(
            f"--timezone {name!r}: not a time zone; give an IANA name such as Asia/Shanghai"
        ) from exc


@dataclass
class Simulation:
    """What a run needs: the bundle, its hotline and monitor, the plan, the store and the clock."""

    bundle: Bundle
    hotline: Hotline
    monitor: Monitor
    plan: Plan
    engine: Engine
    url: str
    tz: ZoneInfo
    rng: np.random.Generator
    residents: Any
    devices: list[sensors.Device] = field(default_factory=list)


@dataclass
class Summary:
    """What was written, for the terminal and ``--json``."""

    start: str
    end: str
    seed: int
    residents: float
    tickets: dict[str, int]
    steps: int
    devices: int
    readings: int
    alerts: dict[str, Any]
    inspections: int
    grades: dict[str, int]
    plan: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _simulated_only(engine: Engine) -> list[str]:
    """What in the store cityos simulate did not write (empty: all of it is simulated)."""
    with engine.connect() as conn:
        people = conn.scalar(
            select(func.count()).select_from(Transition).where(
                Transition.action == "receive", ~Transition.actor.like(f"{tickets.ACTOR}:%"))
        )  # fmt: skip
        things = [json.loads(p or "{}") for p in conn.scalars(select(StaThing.properties))]
        inspected = conn.scalar(
            select(func.count()).select_from(Inspection).where(~Inspection.actor.like(f"{tickets.ACTOR}:%"))
        )  # fmt: skip
    out = []
    if people:
        out.append(f"{people} tickets")
    if n := sum(not (isinstance(p, dict) and p.get("simulated")) for p in things):
        out.append(f"{n} sensors")
    if inspected:
        out.append(f"{inspected} inspections")
    return out


def _empty_store(engine: Engine, url: str, force: bool) -> None:
    """A store to write into: empty, or (``force``) holding only an earlier simulation, which is
    removed (API keys stay)."""
    with engine.connect() as conn:
        n = conn.scalar(select(func.count()).select_from(Ticket)) or 0
        n += conn.scalar(select(func.count()).select_from(StaThing)) or 0
        n += conn.scalar(select(func.count()).select_from(Inspection)) or 0
    if not n:
        return
    theirs = _simulated_only(engine)
    if theirs:
        raise InputError(
            f"--db {url}: the store holds real operations data ({', '.join(theirs)}); "
            "simulate fills an empty store: give a new --db"
        )
    if not force:
        raise InputError(
            f"--db {url}: the store holds an earlier simulation; pass --force to replace it"
        )
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name != "api_keys":
                conn.execute(table.delete())


def prepare(bundle_path: Path, url: str, *, seed: int = 0, timezone_name: str = "UTC",
            plan_path: Path | None = None, force: bool = False, fill: bool = True) -> Simulation:  # fmt: skip
    """Read and check everything before anything is written: the bundle, the plan (its
    categories must be services of the catalogue), the time zone, the store (current schema;
    to be filled (``fill``): empty, or only an earlier simulation with ``force``)."""
    bundle = read_bundle(bundle_path)
    plan = load_plan(plan_path)
    tz = timezone(timezone_name)
    hotline = load_hotline(bundle)
    unknown = sorted(set(plan.categories) - set(hotline.services.services))
    if unknown:
        raise ConfigError(
            f"{plan.source}: categories {', '.join(unknown)} are not services of the catalogue "
            f"({hotline.services.source}); use {', '.join(hotline.services.services)}"
        )
    engine = connect(url)
    check_current(engine, url)
    if fill:
        _empty_store(engine, url, force)
    residents = estimate_population(bundle.buildings, residential_land=bundle.residential_land).population  # fmt: skip
    monitor = Monitor(load_rules(None), load_limits(None))
    return Simulation(bundle, hotline, monitor, plan, engine, url, tz,
                      np.random.default_rng(seed), residents)  # fmt: skip


def _street_points(bundle: Bundle) -> tuple[Any, Any]:
    edges = bundle.walk_edges.to_crs(bundle.crs)
    if edges.empty:
        raise InputError(f"{bundle.path}: the bundle has no streets to put sensors on")
    mid = edges.geometry.interpolate(0.5, normalized=True)
    return mid.x.to_numpy(), mid.y.to_numpy()


def simulate(sim: Simulation, *, days: float = 30.0, end: dt.datetime | None = None, seed: int = 0,
             reporter: Reporter | None = None) -> Summary:  # fmt: skip
    """Write ``days`` of operations ending at ``end`` (default now, UTC) into the store."""
    reporter = reporter or Reporter(quiet=True)
    end = (end or dt.datetime.now(dt.UTC).replace(tzinfo=None)).replace(microsecond=0)
    start = end - dt.timedelta(days=days)
    rng, plan, city = sim.rng, sim.plan, sim.hotline.city
    total = float(sim.residents.sum())
    sim.devices = sensors.place_devices(
        rng, plan, total, sim.bundle.crs, _street_points(sim.bundle)
    )
    with sim.engine.begin() as conn:
        sensors.register(conn, sim.devices, city.locate)
    found = sensors.incidents(rng, plan, sim.devices, start, end)
    readings = {d.datastream: sensors.series(rng, d, start, end, found) for d in sim.devices}
    with reporter.stage("sensor readings", total=(end - start) / dt.timedelta(hours=1)) as advance:
        fine = [(min(ts[0] for ts, _ in i.readings.values()), max(ts[-1] for ts, _ in i.readings.values()))
                for i in found]  # fmt: skip
        n_readings = sensors.feed(sim.engine, sim.monitor, readings, city.locate, start,
                                  sensors.edges(start, end, fine), progress=advance)  # fmt: skip
    run = tickets.TicketRun(sim.hotline, plan, rng, sim.tz,
                            tuple(sorted({s.department for s in sim.hotline.services.services.values()})),
                            monitor=sim.monitor)  # fmt: skip
    arrivals = list(_arrivals(sim, start, end, found))
    with sim.engine.connect() as conn:
        work = sensors.alert_work(conn, rng, end, plan.open_after_h)
    factory = sessionmaker(sim.engine)
    with reporter.stage("hotline tickets", total=len(arrivals)) as advance:
        tickets.run_tickets(factory, run, iter(arrivals), end, progress=advance, work=work)
    with sim.engine.begin() as conn:
        events = housing.inspection_events(
            rng, plan, sim.bundle.buildings, sim.residents, end.date()
        )
        ids = frozenset(str(b) for b in sim.bundle.buildings["building_id"])
        n_insp = housing.write_inspections(conn, events, ids)
        alerts = sensors.alert_summary(conn)
        states = dict(conn.execute(select(Ticket.state, func.count()).group_by(Ticket.state)).all())
    grades: dict[str, int] = {}
    for e in events:
        if "appraisal_grade" in e:
            grades[e["appraisal_grade"]] = grades.get(e["appraisal_grade"], 0) + 1
    return Summary(start.isoformat() + "Z", end.isoformat() + "Z", seed, round(total, 1),
                   {str(k): int(v) for k, v in sorted(states.items())}, sum(run.counts.values()),
                   len(sim.devices), n_readings, alerts, n_insp, dict(sorted(grades.items())),
                   plan.source)  # fmt: skip


def _arrivals(sim: Simulation, start: dt.datetime, end: dt.datetime,
              found: list[sensors.Incident]) -> Iterator[tuple[dt.datetime, str, float, float, bool]]:  # fmt: skip
    """Every ticket's arrival: the Poisson month with categories drawn by share and places by
    kind, and the calls the incidents bring (near their device; they corroborate its alert)."""
    plan, rng = sim.plan, sim.rng
    where = tickets.places(sim.bundle, sim.residents)
    times = tickets.arrival_times(rng, start, end, plan.per_1000_per_day * float(sim.residents.sum()) / 1000.0,
                                  plan.hourly, plan.weekly, sim.tz)  # fmt: skip
    out = []
    for t, code in zip(times, tickets.drawn_categories(rng, plan, len(times)), strict=True):
        lon, lat = where.draw(rng, plan.categories[code][1])
        out.append((t, code, lon, lat, False))
    by_name = {d.name: d for d in sim.devices}
    for inc in found:
        for minutes, service, name in inc.calls:
            d = by_name[name]
            t = inc.at + dt.timedelta(minutes=minutes)
            if t < end and service in sim.hotline.services.services:
                out.append((t, service, d.lon + 2e-4, d.lat + 1e-4, True))
    yield from sorted(out)
