"""``cityos simulate --live``: keep the simulated city going in real time while a server shows it —
tickets arriving (the month's rates, ``speed`` times faster) and moving through their workflow
(delays ``speed`` times shorter), every device reporting, now and then a gas well or a drainage
point going over its threshold so an alert is raised by the real rules. Everything is written at
the wall clock's time, each step its own transaction, so a dashboard sees it within a second."""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import time
from collections.abc import Callable

from sqlalchemy.orm import sessionmaker

from cityos.lifelines.ingest import create_observations
from cityos.simulate import sensors, tickets
from cityos.simulate.run import Simulation

__all__ = ["run_live"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def run_live(sim: Simulation, *, speed: float = 120.0, seconds: float | None = None,
             spike_every_s: float = 90.0, on_event: Callable[[str], None] = lambda m: None) -> dict[str, int]:  # fmt: skip
    """Feed the store until ``seconds`` have passed (None: until interrupted); returns what was
    written. ``on_event`` hears one line per ticket taken in and per spike."""
    rng, plan = sim.rng, sim.plan
    where = tickets.places(sim.bundle, sim.residents)
    per_s = plan.per_1000_per_day * float(sim.residents.sum()) / 1000.0 / 86400.0 * speed
    run = tickets.TicketRun(sim.hotline, plan, rng, sim.tz,
                            tuple(sorted({s.department for s in sim.hotline.services.services.values()})),
                            monitor=sim.monitor)  # fmt: skip
    if not sim.devices:  # a store filled earlier: its devices, read back
        with sim.engine.connect() as conn:
            sim.devices = sensors.devices_in_store(conn, plan)
    devices = sim.devices
    due = {d.datastream: 0.0 for d in devices}
    queue: list[tickets.Next] = []
    seq = itertools.count()
    factory = sessionmaker(sim.engine)
    counts = {"tickets": 0, "steps": 0, "readings": 0, "spikes": 0}
    started = time.monotonic()
    next_spike = started + min(10.0, spike_every_s / 3)
    spiking: dict[int, int] = {}
    try:
        while seconds is None or time.monotonic() - started < seconds:
            tick = time.monotonic()
            now = _now()
            for code in tickets.drawn_categories(rng, plan, int(rng.poisson(per_s))):
                lon, lat = where.draw(rng, plan.categories[code][1])
                heapq.heappush(queue, tickets.Next(now, next(seq), tickets.Life(code, lon, lat)))
            with factory() as s:
                while queue and queue[0].at <= now:
                    life = heapq.heappop(queue).life
                    assert isinstance(life, tickets.Life)  # live feeds tickets only
                    new = life.action == "intake"
                    nxt = run.step(s, life, now)
                    counts["tickets" if new else "steps"] += 1
                    if new:
                        on_event(f"ticket {life.tid}: {life.service}")
                    if nxt is not None:
                        heapq.heappush(
                            queue, tickets.Next(now + (nxt - now) / speed, next(seq), life)
                        )
                s.commit()
            if tick >= next_spike:
                # the gas well beside a main (red) or a drainage point (over a minute: its rule
                # waits 60 s)
                hot = [d for d in devices if d.name == "gas-1" or d.kind.property == "water_depth"]
                if hot:  # the first spike on the gas well: a red alert within seconds
                    d = hot[0] if not counts["spikes"] else hot[int(rng.integers(len(hot)))]
                    spiking[d.datastream] = 5 if d.kind.property == "methane" else 90
                    counts["spikes"] += 1
                    on_event(f"spike on {d.name} ({d.kind.property})")
                next_spike = tick + spike_every_s
            body = []
            for d in devices:
                if due[d.datastream] > tick and d.datastream not in spiking:
                    continue
                due[d.datastream] = tick + d.kind.interval_s / speed
                k = d.kind
                value = k.base + k.noise * float(rng.standard_normal())
                if d.datastream in spiking:
                    value = 55.0 if k.property == "methane" else 30.0
                    spiking[d.datastream] -= 1
                    if spiking[d.datastream] <= 0:
                        del spiking[d.datastream]
                if k.property in ("methane", "water_depth", "rain_intensity"):
                    value = max(0.0, value)
                body.append({"Datastream": {"@iot.id": d.datastream}, "components": ["phenomenonTime", "result"],
                             "dataArray": [[now.isoformat() + "Z", round(value, 4)]]})  # fmt: skip
            with sim.engine.begin() as conn:
                if body:
                    _, fresh = create_observations(conn, body, sim.hotline.city.locate)
                    sim.monitor.check(conn, list(fresh), now=now, fresh=fresh)
                    counts["readings"] += len(body)
                sim.monitor.sweep(conn, now=now)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    except KeyboardInterrupt:
        pass
    return counts
