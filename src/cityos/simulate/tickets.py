"""A simulated month of the hotline: when tickets come (a non-homogeneous Poisson process with
daily and weekly cycles), what and where (categories by share, places weighted by residents,
facilities or streets), and each one's workflow (dispatch, sign-off, returns, extensions,
handling, the call back and its outcome, delays drawn per urgency class), written through the
hotline's own intake and transition table at the simulated times, in time order: a likely
duplicate is flagged as the service would flag it, and what had not happened by the end stays
open."""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from cityos.bundle import Bundle
from cityos.errors import ConfigError
from cityos.lifelines import desk
from cityos.lifelines.monitor import Monitor
from cityos.lifelines.workorder import open_work_order
from cityos.ops.hotline import Hotline, Intake
from cityos.ops.keys import KeyInfo
from cityos.ops.models import Ticket
from cityos.ops.workflow import OPEN_STATES
from cityos.simulate.plan import Delay, Plan
from cityos.simulate.sensors import OPERATOR, AlertTask

__all__ = [
    "ACTOR",
    "Life",
    "Next",
    "Places",
    "TicketRun",
    "arrival_times",
    "drawn_categories",
    "drawn_delay",
    "places",
    "run_tickets",
]

#: the simulated actors' names start so (``--force`` replaces only a store they wrote)
ACTOR = "simulate"
INTAKE = KeyInfo(f"{ACTOR}:intake", "intake")
DISPATCHER = KeyInfo(f"{ACTOR}:dispatcher", "dispatcher")


def arrival_times(rng: np.random.Generator, start: dt.datetime, end: dt.datetime, per_day: float,
                  hourly: tuple[float, ...], weekly: tuple[float, ...], tz: ZoneInfo) -> list[dt.datetime]:  # fmt: skip
    """Arrival times in [start, end) (naive UTC) of a Poisson process whose rate in each hour is
    ``per_day / 24 × h[hour] / mean(h) × w[weekday] / mean(w)`` (local hour and weekday).

    Each hour's count is Poisson with that mean, its arrivals uniform within the hour.
    """
    h = np.asarray(hourly) / np.mean(hourly)
    w = np.asarray(weekly) / np.mean(weekly)
    first = start.replace(minute=0, second=0, microsecond=0)
    slots = pd.date_range(first, end, freq="h", inclusive="left")
    local = slots.tz_localize("UTC").tz_convert(tz)
    mean = per_day / 24.0 * h[local.hour.to_numpy()] * w[local.day_of_week.to_numpy()]
    counts = rng.poisson(mean)
    base = np.repeat(slots.to_numpy(), counts)
    offsets = rng.uniform(0, 3600, size=len(base))
    times = np.sort(base + (offsets * 1e6).astype("timedelta64[us]"))
    return [t for t in pd.to_datetime(times).to_pydatetime() if start <= t < end]


def drawn_delay(rng: np.random.Generator, d: Delay, limit: dt.timedelta) -> dt.timedelta:
    """A delay of ``limit × median × exp(sigma × Z)``, at least a minute."""
    frac = d.median * math.exp(d.sigma * float(rng.standard_normal()))
    return max(dt.timedelta(minutes=1), limit * frac)


def drawn_categories(rng: np.random.Generator, plan: Plan, n: int) -> list[str]:
    """``n`` ticket categories drawn independently by their shares in ``plan.categories``
    (code → (share in %, place kind)); the shares are normalised to sum to 1."""
    codes = list(plan.categories)
    p = np.array([plan.categories[c][0] for c in codes]) / 100.0
    return [codes[i] for i in rng.choice(len(codes), size=n, p=p / p.sum())]


@dataclass(frozen=True)
class Places:
    """Candidate points (WGS84) per place kind, with the probability of each."""

    lon: Mapping[str, NDArray[np.float64]]
    lat: Mapping[str, NDArray[np.float64]]
    p: Mapping[str, NDArray[np.float64]]

    def draw(self, rng: np.random.Generator, kind: str) -> tuple[float, float]:
        """A point of ``kind``, a few metres off the candidate (a citizen's phone)."""
        i = int(rng.choice(len(self.p[kind]), p=self.p[kind]))
        jitter = rng.normal(0, 1e-4, size=2)  # about 10 m
        return float(self.lon[kind][i] + jitter[0]), float(self.lat[kind][i] + jitter[1])


def places(bundle: Bundle, residents: pd.Series) -> Places:
    """Residents: buildings' representative points weighted by their estimated residents (all
    buildings by floor area when none is residential); facilities: each equally; streets: the
    walk network's edge midpoints weighted by length."""
    to_wgs = pyproj.Transformer.from_crs(bundle.crs, 4326, always_xy=True)

    def points(frame: gpd.GeoDataFrame, weight: NDArray[np.float64]) -> tuple[Any, Any, Any]:
        geom = frame.to_crs(bundle.crs).geometry
        pts = geom.interpolate(0.5, normalized=True) if len(geom) and (geom.geom_type == "LineString").all() else geom.representative_point()  # fmt: skip
        lon, lat = to_wgs.transform(pts.x.to_numpy(), pts.y.to_numpy())
        w = np.asarray(weight, dtype=float)
        return np.asarray(lon), np.asarray(lat), w / w.sum() if w.sum() > 0 else w

    out: dict[str, tuple[Any, Any, Any]] = {}
    b = bundle.buildings
    pop = residents.to_numpy(dtype=float)
    if len(b):
        out["residents"] = points(b, pop if pop.sum() > 0 else b["floor_area_m2"].to_numpy())
    if len(bundle.facilities):
        out["facilities"] = points(bundle.facilities, np.ones(len(bundle.facilities)))
    if len(bundle.walk_edges):
        out["streets"] = points(bundle.walk_edges, bundle.walk_edges["length_m"].to_numpy())
    for kind in ("residents", "facilities", "streets"):  # a bundle without one: another kind
        if kind not in out:
            if not out:
                raise ConfigError(f"{bundle.path}: the bundle has no buildings, facilities or streets to place tickets on")  # fmt: skip
            out[kind] = next(iter(out.values()))
    return Places(
        {k: v[0] for k, v in out.items()}, {k: v[1] for k, v in out.items()},
        {k: v[2] for k, v in out.items()},
    )  # fmt: skip


@dataclass(order=True)
class Next:
    """A ticket's next step, ordered by its time."""

    at: dt.datetime
    seq: int
    life: Life | AlertTask = field(compare=False)


@dataclass
class Life:
    """One ticket's remaining history: its id once taken in, and the step it waits for."""

    service: str
    lon: float
    lat: float
    corroborates: bool = False
    tid: int | None = None
    returned: bool = False
    reissued: bool = False
    extended: bool = False
    action: str = "intake"
    params: dict[str, Any] = field(default_factory=dict)


def _closed(s: Session, tid: int) -> bool:
    t = s.get(Ticket, tid)
    return t is None or t.state not in OPEN_STATES


def _department(role_of: str) -> KeyInfo:
    return KeyInfo(f"{ACTOR}:{role_of}", f"department:{role_of}")


@dataclass
class TicketRun:
    """The hotline workflow of many simulated tickets, stepped in time order."""

    hotline: Hotline
    plan: Plan
    rng: np.random.Generator
    tz: ZoneInfo
    departments: tuple[str, ...]
    #: the monitor an incident's calls corroborate alerts with (as the service's intake does)
    monitor: Monitor | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def _share(self, key: str) -> bool:
        return bool(self.rng.uniform(0, 100) < float(self.plan.workflow[key]))

    def _limits(self, t: Ticket) -> tuple[dt.timedelta, dt.timedelta, dt.timedelta]:
        start = t.dispatched_at or t.requested_at
        return t.due_sign - start, t.due_contact - start, t.due_resolve - start

    def _callback_time(self, handled: dt.datetime) -> dt.datetime:
        """The day after handling, at a daytime hour (local)."""
        first, last = self.plan.workflow["callback_hours"]
        day = (handled.replace(tzinfo=dt.UTC).astimezone(self.tz) + dt.timedelta(days=1)).date()
        hour = float(self.rng.uniform(first, last))
        local = dt.datetime.combine(day, dt.time(), self.tz) + dt.timedelta(hours=hour)
        return local.astimezone(dt.UTC).replace(tzinfo=None)

    def _attributes(self, service: str, at: dt.datetime) -> dict[str, Any]:
        out: dict[str, Any] = {}
        local_hour = at.replace(tzinfo=dt.UTC).astimezone(self.tz).hour
        for a in self.hotline.services.services[service].attributes:
            keys = [k for k, _ in a.values]
            if not keys:
                continue
            if a.code == "time_of_day" and {"day", "night"} <= set(keys):
                out[a.code] = "night" if local_hour >= 22 or local_hour < 6 else "day"
            elif a.required or self.rng.uniform() < 0.5:
                out[a.code] = keys[int(self.rng.integers(len(keys)))]
        return out

    def step(self, s: Session, life: Life, at: dt.datetime) -> dt.datetime | None:
        """Take the ticket's waiting step at ``at``; returns when its next one comes (None:
        its history is over)."""
        self.counts[life.action] = self.counts.get(life.action, 0) + 1
        if life.action == "intake":
            svc = self.hotline.services.services[life.service]
            req = Intake(service_code=life.service, lat=life.lat, lon=life.lon,
                         description=f"{svc.name_zh} / {svc.name_en} (simulated)",
                         attributes=self._attributes(life.service, at), channel="phone")  # fmt: skip
            ticket, _ = self.hotline.store(s, self.hotline.prepare(req, INTAKE, at=at))
            life.tid = ticket.id
            if life.corroborates and self.monitor is not None:
                self.monitor.corroborate_ticket(s.connection(), ticket.id, life.service,
                                                life.lon, life.lat, at)  # fmt: skip
            return self._after_intake(life, ticket, at)
        assert life.tid is not None
        found = s.get(Ticket, life.tid)
        assert found is not None
        ticket = found
        dept = _department(ticket.department)
        who = {"sign": dept, "start": dept, "handle": dept, "request_return": dept,
               "request_extension": dept}.get(life.action, DISPATCHER)  # fmt: skip
        if life.action == "answer":
            who = INTAKE
        if life.action == "merge" and _closed(s, int(life.params["into"])):
            life.action, life.params = "sign", {}  # its twin closed first: handled on its own
            return at + drawn_delay(self.rng, self.plan.delays["sign"], self._limits(ticket)[0])
        self.hotline.act(s, life.tid, life.action, who, life.params, at=at)
        return self._after(life, ticket, at)

    def work(self, s: Session, task: AlertTask, at: dt.datetime) -> tuple[dt.datetime, Life] | None:
        """Take the operations centre's step on an alert at ``at``. A dispatch opens the alert's
        work order as the service does (:func:`~cityos.lifelines.workorder.open_work_order`);
        returns it with when its owner unit's first step comes, or None."""
        desk.act(s.connection(), task.alert_id, task.action, OPERATOR, task.reason, at=at)
        if task.action != "dispatch" or self.monitor is None:
            return None
        tid = open_work_order(s, task.alert_id, self.monitor, self.hotline, OPERATOR, at=at)
        if tid is None:
            return None
        ticket = s.get(Ticket, tid)
        assert ticket is not None
        life = Life(ticket.service_code, math.nan, math.nan, tid=tid)  # taken in: no place to draw
        self.counts["work_order"] = self.counts.get("work_order", 0) + 1
        return self._to_sign(life, ticket, at), life

    def _after_intake(self, life: Life, t: Ticket, at: dt.datetime) -> dt.datetime | None:
        if t.state == "received":  # not dispatched at intake: an inquiry, answered there
            life.action, life.params = "answer", {"reason": "answered from the knowledge base"}
            return at + dt.timedelta(minutes=float(self.rng.uniform(2, 12)))
        if t.likely_duplicate_of is not None and self._share("merge_flagged_share"):
            life.action, life.params = "merge", {"into": t.likely_duplicate_of,
                                                 "reason": "same problem, same place"}  # fmt: skip
            return at + dt.timedelta(minutes=float(self.rng.uniform(10, 90)))
        if self._share("cancel_share"):
            life.action, life.params = "cancel", {"reason": "withdrawn by the citizen"}
            return at + dt.timedelta(hours=float(self.rng.uniform(0.5, 12)))
        return self._to_sign(life, t, at)

    def _to_sign(self, life: Life, t: Ticket, at: dt.datetime) -> dt.datetime:
        sign_limit = self._limits(t)[0]
        if not life.returned and self._share("return_share"):
            life.returned = True
            life.action, life.params = "request_return", {"reason": "属地不符 (wrong area)"}
        else:
            life.action, life.params = "sign", {}
        return at + drawn_delay(self.rng, self.plan.delays["sign"], sign_limit)

    def _after(self, life: Life, t: Ticket, at: dt.datetime) -> dt.datetime | None:
        a = life.action
        _, contact_limit, resolve_limit = self._limits(t)
        if a in ("dispatch", "approve_return"):
            return self._to_sign(life, t, at)
        if a == "request_return":
            if self._share("return_upheld_share"):
                others = [d for d in self.departments if d != t.department] or [t.department]
                life.action = "approve_return"
                life.params = {"department": others[int(self.rng.integers(len(others)))],
                               "reason": "return upheld: another unit is responsible"}  # fmt: skip
            else:
                life.action, life.params = "reject_return", {"reason": "the unit is responsible"}
            return at + dt.timedelta(hours=float(self.rng.uniform(0.5, 4)))
        if a in ("sign", "reject_return"):  # the contact, timed from the dispatch as its limit is
            life.action, life.params = "start", {"reason": "citizen contacted"}
            since = t.dispatched_at or at
            return max(at + dt.timedelta(minutes=1),
                       since + drawn_delay(self.rng, self.plan.delays["contact"], contact_limit))  # fmt: skip
        if a in ("start", "approve_extension", "reject_extension"):
            handle_in = drawn_delay(self.rng, self.plan.delays["handle"], resolve_limit)
            if a == "start" and not life.extended and self._share("extension_share"):
                life.extended = True
                life.action, life.params = "request_extension", {"reason": "parts on order"}
                return at + handle_in * 0.5
            life.action, life.params = "handle", {"reason": "done on site"}
            return at + handle_in
        if a == "request_extension":
            if self._share("extension_granted_share"):
                until = t.due_resolve + resolve_limit
                life.action = "approve_extension"
                life.params = {"until": until.isoformat(), "reason": "granted"}
            else:
                life.action, life.params = "reject_extension", {"reason": "the deadline stays"}
            return at + dt.timedelta(hours=float(self.rng.uniform(1, 6)))
        if a == "handle":
            reached = self._share("callback_reached_share")
            params: dict[str, Any] = {"reached": reached}
            if reached:
                params["resolved"] = self._share("resolved_share")
                answers = list(self.plan.satisfaction)
                p = np.array([self.plan.satisfaction[k] for k in answers])
                params["satisfaction"] = answers[int(self.rng.choice(len(answers), p=p / p.sum()))]
            life.action, life.params = "call_back", params
            return self._callback_time(at)
        if a == "call_back":
            if not life.params.get("reached"):
                life.action = "close_resolved"
                life.params = {"reason": "the citizen was not reached; closed as handled"}
            elif life.params.get("resolved"):
                life.action, life.params = "close_resolved", {"reason": "resolved"}
            elif not life.reissued and self._share("reissue_share"):
                life.reissued = True
                life.action, life.params = "reissue", {"reason": "not resolved: handled again"}
            else:
                life.action, life.params = "close_unresolved", {"reason": "objective reasons"}
            return at + dt.timedelta(minutes=float(self.rng.uniform(1, 30)))
        if a == "reissue":
            life.action, life.params = "dispatch", {"reason": "handled again (重新办理)"}
            return at + dt.timedelta(minutes=float(self.rng.uniform(10, 60)))
        return None  # closed: answered, merged, cancelled, closed


def run_tickets(session_factory: Callable[[], Any], run: TicketRun,
                arrivals: Iterator[tuple[dt.datetime, str, float, float, bool]], end: dt.datetime,
                progress: Callable[[float], None] = lambda n: None, batch: int = 500,
                work: Iterable[tuple[dt.datetime, AlertTask]] = ()) -> int:  # fmt: skip
    """Take in every arrival and step every ticket's history in time order up to ``end``, with
    the operations centre's steps on alerts (``work``) among them, committing every ``batch``
    steps; returns the citizens' tickets written (``progress`` hears each)."""
    seq = itertools.count()
    queue: list[Next] = []
    for at, service, lon, lat, corroborates in arrivals:
        heapq.heappush(queue, Next(at, next(seq), Life(service, lon, lat, corroborates)))
    for at, task in work:
        heapq.heappush(queue, Next(at, next(seq), task))
    n_tickets = 0
    done = 0
    with session_factory() as s:
        while queue and queue[0].at < end:
            item = heapq.heappop(queue)
            if isinstance(item.life, AlertTask):
                order = run.work(s, item.life, item.at)
                if order is not None:
                    heapq.heappush(queue, Next(order[0], next(seq), order[1]))
            else:
                new = item.life.action == "intake"
                nxt = run.step(s, item.life, item.at)
                n_tickets += new
                if new:
                    progress(1)
                if nxt is not None:
                    heapq.heappush(queue, Next(nxt, next(seq), item.life))
            done += 1
            if done % batch == 0:
                s.commit()
        s.commit()
    return n_tickets
