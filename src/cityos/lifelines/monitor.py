"""The monitor: after readings arrive, the rules are evaluated on each datastream's recent
readings (:func:`cityos.lifelines.detect.evaluate_stream`) and the alerts reconciled — one open
alert per rule × datastream, repeat readings updating it, a cleared condition recorded — and
an alert's lifecycle steps taken by the operations centre."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from cityos.lifelines.desk import record_step
from cityos.lifelines.detect import Episode, evaluate_stream
from cityos.lifelines.entities import M2M
from cityos.lifelines.geometry import from_geojson, metres_between
from cityos.lifelines.lifecycle import Limits
from cityos.lifelines.models import (
    Alert,
    StaDatastream,
    StaLocation,
    StaObservation,
    StaObservedProperty,
    StaThing,
)
from cityos.lifelines.rules import LEVEL_RANK, LEVELS, Rule, RuleSet, bind
from cityos.ops.keys import KeyInfo
from cityos.ops.models import Ticket

__all__ = ["RECENT_READINGS", "Monitor"]

#: readings of a datastream the rules look at after new ones arrive
RECENT_READINGS = 500
#: the PostgreSQL advisory lock one sweep holds (the others of the worker processes skip)
SWEEP_LOCK = 0x63697479  # "city"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _up(level: str) -> str:
    """One level higher (red stays red)."""
    return LEVELS[max(0, LEVELS.index(level) - 1)]


def _streams_near(conn: Connection, prop: str, unit: str | None, lon: float, lat: float,
                  radius_m: float) -> list[int]:  # fmt: skip
    """The datastreams of ``prop`` (in ``unit``, if given) whose Thing lies within ``radius_m``
    of (lon, lat): a bounding box of the radius in SQL, then the exact distance."""
    dlat = radius_m / 111_320.0
    dlon = dlat / max(0.01, math.cos(math.radians(lat)))
    rows = conn.execute(
        select(StaDatastream.id, StaDatastream.unit_of_measurement, StaLocation.location)
        .join(StaObservedProperty, StaObservedProperty.id == StaDatastream.observed_property_id)
        .join(M2M, M2M.c.thing_id == StaDatastream.thing_id)
        .join(StaLocation, StaLocation.id == M2M.c.location_id)
        .where(StaObservedProperty.name == prop, StaLocation.maxx >= lon - dlon, StaLocation.minx <= lon + dlon,
               StaLocation.maxy >= lat - dlat, StaLocation.miny <= lat + dlat)
    ).all()  # fmt: skip
    near = []
    for ds, uom, loc in rows:
        p = from_geojson(json.loads(loc)).representative_point()
        if (unit is None or json.loads(uom or "{}").get("symbol") == unit) and metres_between(
            lon, lat, p.x, p.y
        ) <= radius_m:
            near.append(int(ds))
    return near


def _readings(e: Episode) -> str:
    return json.dumps([[t.isoformat(), v] for t, v in e.readings])


@dataclass
class Monitor:
    """The rules, their version and the lifecycle's limits."""

    rules: RuleSet
    limits: Limits

    def check(
        self, conn: Connection, datastream_ids: Iterable[int], now: dt.datetime | None = None,
        fresh: Mapping[int, Sequence[float | None]] | None = None,
    ) -> list[int]:  # fmt: skip
        """Evaluate the rules on the datastreams' recent readings and reconcile their alerts;
        returns the ids of the alerts raised or changed.

        ``fresh``: the values just stored per datastream. A datastream with no open alert whose
        fresh values all lie below the lowest level of its rules (all thresholds raised at
        once), inside the sensor's range, and whose run of equal values (``flat_since``) is
        shorter than the flat-line rule's duration cannot raise, change or clear anything on
        them, and is not evaluated again.

        The readings looked at are the latest :data:`RECENT_READINGS`; a run of equal values
        that began before them is seen from its first reading (``flat_since``).
        """
        now = now or _now()
        ids = sorted(set(datastream_ids))
        if not ids:
            return []
        if fresh:
            ids = self._needing_evaluation(conn, ids, fresh)
            if not ids:
                return []
        streams = conn.execute(
            select(StaDatastream.id, StaDatastream.thing_id, StaDatastream.reporting_interval_s,
                   StaDatastream.unit_of_measurement, StaObservedProperty.name,
                   StaDatastream.flat_since, StaDatastream.last_result_number)
            .join(StaObservedProperty, StaObservedProperty.id == StaDatastream.observed_property_id)
            .where(StaDatastream.id.in_(ids))
        ).all()  # fmt: skip
        units = {
            s.id: str(json.loads(s.unit_of_measurement or "{}").get("symbol", "")) for s in streams
        }
        bindings = {
            b.datastream_id: b
            for b in bind(self.rules, [(s.id, s.name, units[s.id]) for s in streams])
        }
        quality = [r for r in self.rules.rules if not r.hazard]
        touched: list[int] = []
        for s in streams:
            rows: list[Any] = list(conn.execute(
                select(StaObservation.phenomenon_time, StaObservation.result_number)
                .where(StaObservation.datastream_id == s.id)
                .order_by(StaObservation.phenomenon_time.desc(), StaObservation.id.desc())
                .limit(RECENT_READINGS)
            ).all())[::-1]  # fmt: skip
            if rows and s.flat_since is not None and s.flat_since < rows[0][0]:
                rows.insert(0, (s.flat_since, s.last_result_number))  # the run began before them
            times = [r[0] for r in rows]
            values = np.array([np.nan if r[1] is None else r[1] for r in rows], dtype=float)
            episodes = evaluate_stream(s.id, s.name, units[s.id], times, values, bindings[s.id].rules,
                                       quality, interval_s=s.reporting_interval_s, now=now)  # fmt: skip
            if any(r.context and r.context[0] == s.name for r in self.rules.rules):
                touched.extend(self._recheck_context(conn, s.name, now))
            latest: dict[str, Episode] = {}
            for e in episodes:
                latest[e.rule] = e  # episodes of a rule come in time order
            touched.extend(
                self._clear_silence(
                    conn, s.id, "stale" in {e.rule for e in episodes if e.end is None}, now
                )
            )
            for e in latest.values():
                aid = self._reconcile(conn, e, s.thing_id, now)
                if aid is not None:
                    touched.append(aid)
        return touched

    def silent(self, conn: Connection, now: dt.datetime | None = None) -> list[int]:
        """The datastreams with a reporting interval whose last reading is older than the stale
        rule's intervals × their interval, leaving out those whose silence already has an open
        device alert (another look changes nothing on it)."""
        now = now or _now()
        stale = [r for r in self.rules.rules if r.kind == "stale"]
        if not stale:
            return []
        known = select(Alert.datastream_id).where(
            Alert.rule_id.in_([r.id for r in stale]), Alert.closed_at.is_(None),
            Alert.cleared_at.is_(None),
        )  # fmt: skip
        last = conn.execute(
            select(StaDatastream.id, StaDatastream.reporting_interval_s, StaDatastream.last_phenomenon_time)
            .where(StaDatastream.reporting_interval_s.is_not(None),
                   StaDatastream.last_phenomenon_time.is_not(None), StaDatastream.id.not_in(known))
            .order_by(StaDatastream.id)
        ).all()  # fmt: skip
        intervals = min(r.intervals for r in stale)
        return [int(r[0]) for r in last
                if r[2] is not None and (now - r[2]).total_seconds() > intervals * float(r[1] or 0)]  # fmt: skip

    def sweep(
        self, conn: Connection, now: dt.datetime | None = None, ids: Sequence[int] | None = None
    ) -> list[int]:
        """Raise the device alerts of silent sensors: the datastreams ``ids`` (default: all
        :meth:`silent` ones) are evaluated; returns the alerts raised or changed. On PostgreSQL
        one worker process sweeps at a time (on SQLite their writes take turns anyway)."""
        now = now or _now()
        if conn.dialect.name == "postgresql" and not conn.scalar(
            text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SWEEP_LOCK}
        ):
            return []  # another worker process is sweeping now
        return self.check(conn, self.silent(conn, now) if ids is None else ids, now)

    def _clear_silence(
        self, conn: Connection, stream: int, still_silent: bool, now: dt.datetime
    ) -> list[int]:
        """A silent sensor that reports again: its open stale alert's condition clears."""
        if still_silent:
            return []
        rows = conn.execute(
            select(Alert.id, Alert.state, Alert.raised_at).where(
                Alert.datastream_id == stream, Alert.rule_id.in_([r.id for r in self.rules.rules if r.kind == "stale"]),
                Alert.closed_at.is_(None), Alert.cleared_at.is_(None))
        ).all()  # fmt: skip
        for r in rows:
            conn.execute(
                update(Alert).where(Alert.id == r.id).values(cleared_at=now, updated_at=now)
            )
            record_step(conn, r.id, "condition_cleared", r.state, r.state, KeyInfo("monitor", "system"),
                       "the sensor reports again", r.raised_at, now)  # fmt: skip
        return [int(r.id) for r in rows]

    def correlated(self, conn: Connection, rule: Rule, lon: float | None, lat: float | None,
                   at: dt.datetime) -> tuple[str | None, str | None]:  # fmt: skip
        """The level (and event) a rule's correlation sets for an alert at (lon, lat) raised
        ``at``: its ``level`` with an open alert of the other rule on a datastream of the other
        property within the radius and window; ``alone_level`` and ``alone_event`` when the city
        monitors that property but not within the radius; (None, None) otherwise (no such
        datastream anywhere says nothing about the place)."""
        c = rule.correlate
        if c is None or lon is None or lat is None:
            return None, None
        near = _streams_near(conn, c.property, None, lon, lat, c.radius_m)
        if not near:  # evidence of absence only where the city monitors that property at all
            monitored = conn.scalar(
                select(StaDatastream.id)
                .join(StaObservedProperty, StaObservedProperty.id == StaDatastream.observed_property_id)
                .where(StaObservedProperty.name == c.property).limit(1)
            )  # fmt: skip
            return (c.alone_level, c.alone_event) if monitored is not None else (None, None)
        window = dt.timedelta(seconds=c.window_s)
        other = conn.execute(
            select(Alert.id).where(Alert.rule_id == c.rule, Alert.datastream_id.in_(near), Alert.closed_at.is_(None),
                                   Alert.raised_at.between(at - window, at + window)).order_by(Alert.id)
        ).scalars().all()  # fmt: skip
        if other:
            return (
                c.level,
                f"{rule.event}, with {c.rule} alert {', '.join(map(str, other))} within {c.radius_m:g} m",
            )
        return None, None

    def in_context(self, conn: Connection, rule: Rule, lon: float | None, lat: float | None,
                   at: dt.datetime) -> str | None:  # fmt: skip
        """The context reading that raises an alert of ``rule`` at (lon, lat) raised ``at`` one
        level (e.g. rain of at least 50 mm/h within 5 km in the 3 hours around it), or None."""
        if rule.context is None or lon is None or lat is None:
            return None
        prop, unit, at_least, radius, window = rule.context
        near = _streams_near(conn, prop, unit, lon, lat, radius)
        if not near:
            return None
        span = dt.timedelta(seconds=window)
        hit = conn.execute(
            select(StaObservation.datastream_id, StaObservation.phenomenon_time, StaObservation.result_number)
            .where(StaObservation.datastream_id.in_(near), StaObservation.result_number >= at_least,
                   StaObservation.phenomenon_time.between(at - span, at + span))
            .order_by(StaObservation.result_number.desc()).limit(1)
        ).first()  # fmt: skip
        if hit is None:
            return None
        return f"{prop} {hit[2]:g} {unit} on datastream {hit[0]} at {hit[1].isoformat(timespec='seconds')}Z"

    def _recheck_context(self, conn: Connection, prop: str, now: dt.datetime) -> list[int]:
        """Open alerts of rules whose context is ``prop`` (new readings of it): raised one level
        once the context holds."""
        touched = []
        for rule in (r for r in self.rules.rules if r.context and r.context[0] == prop):
            for a in conn.execute(select(Alert).where(Alert.rule_id == rule.id, Alert.closed_at.is_(None),
                                                      Alert.context.is_(None))).all():  # fmt: skip
                why = self.in_context(conn, rule, a.lon, a.lat, a.raised_at)
                if why is None:
                    continue
                level = _up(a.level)
                values: dict[str, Any] = {"level": level, "context": why, "updated_at": now}
                if LEVEL_RANK[level] > LEVEL_RANK[a.max_level]:
                    values["max_level"] = level
                conn.execute(update(Alert).where(Alert.id == a.id).values(values))
                record_step(conn, a.id, "context", a.state, a.state, KeyInfo("monitor", "system"), why,
                           a.raised_at, now)  # fmt: skip
                touched.append(int(a.id))
        return touched

    def _recheck_correlated(self, conn: Connection, rule: Rule, now: dt.datetime) -> list[int]:
        """Alerts whose correlation names ``rule`` (just raised): their level is set again."""
        touched = []
        for other in (r for r in self.rules.rules if r.correlate and r.correlate.rule == rule.id):
            for a in conn.execute(
                select(Alert).where(Alert.rule_id == other.id, Alert.closed_at.is_(None))
            ).all():
                level, event = self.correlated(conn, other, a.lon, a.lat, a.raised_at)
                if level is None:
                    continue
                if a.tickets:
                    level = _up(level)
                values: dict[str, Any] = {"level": level, "updated_at": now}
                if event:
                    values["event"] = event
                if LEVEL_RANK[level] > LEVEL_RANK[a.max_level]:
                    values["max_level"] = level
                conn.execute(update(Alert).where(Alert.id == a.id).values(values))
                record_step(conn, a.id, "correlate", a.state, a.state, KeyInfo("monitor", "system"),
                           event or f"correlated: {level}", a.raised_at, now)  # fmt: skip
                touched.append(int(a.id))
        return touched

    def corroborating(self, conn: Connection, rule: Rule, lon: float | None, lat: float | None,
                      at: dt.datetime) -> list[int]:  # fmt: skip
        """The hotline tickets of the rule's corroborating services within its radius and
        window (either side) of ``at``."""
        if rule.corroborate is None or lon is None or lat is None:
            return []
        services, radius, hours = rule.corroborate
        dlat = radius / 111_320.0
        dlon = dlat / max(0.01, math.cos(math.radians(lat)))
        rows = conn.execute(
            select(Ticket.id, Ticket.lon, Ticket.lat).where(
                Ticket.service_code.in_(services), Ticket.lat.between(lat - dlat, lat + dlat),
                Ticket.lon.between(lon - dlon, lon + dlon),
                Ticket.requested_at.between(at - dt.timedelta(hours=hours), at + dt.timedelta(hours=hours)),
            ).order_by(Ticket.id)
        ).all()  # fmt: skip
        return [int(r[0]) for r in rows if r[1] is not None and r[2] is not None
                and metres_between(lon, lat, r[1], r[2]) <= radius]  # fmt: skip

    def corroborate_ticket(self, conn: Connection, ticket_id: int, service: str, lon: float | None,
                           lat: float | None, at: dt.datetime) -> list[int]:  # fmt: skip
        """A new hotline ticket (come ``at``) near an open alert whose rule it corroborates: the
        alert goes up one level (once) and the ticket is linked; returns the alerts changed."""
        if lon is None or lat is None:
            return []
        rules = [r for r in self.rules.rules if r.corroborate and service in r.corroborate[0]]
        changed = []
        for rule in rules:
            _, radius, hours = rule.corroborate  # type: ignore[misc]
            open_ = conn.execute(
                select(Alert).where(Alert.rule_id == rule.id, Alert.closed_at.is_(None),
                                    Alert.raised_at >= at - dt.timedelta(hours=hours))
            ).all()  # fmt: skip
            for a in open_:
                if (
                    a.lon is None
                    or a.lat is None
                    or metres_between(a.lon, a.lat, lon, lat) > radius
                ):
                    continue
                linked = json.loads(a.tickets) if a.tickets else []
                values: dict[str, Any] = {
                    "tickets": json.dumps([*linked, ticket_id]),
                    "updated_at": at,
                }
                if not linked:
                    values["level"] = _up(a.level)
                    if LEVEL_RANK[values["level"]] > LEVEL_RANK[a.max_level]:
                        values["max_level"] = values["level"]
                conn.execute(update(Alert).where(Alert.id == a.id).values(values))
                record_step(conn, a.id, "corroborate", a.state, a.state, KeyInfo("monitor", "system"),
                           f"12345 ticket {ticket_id} ({service}) within {radius:g} m", a.raised_at, at)  # fmt: skip
                changed.append(int(a.id))
        return changed

    def _needing_evaluation(
        self, conn: Connection, ids: list[int], fresh: Mapping[int, Sequence[float | None]]
    ) -> list[int]:
        streams = conn.execute(
            select(StaDatastream.id, StaDatastream.unit_of_measurement, StaObservedProperty.name,
                   StaDatastream.last_phenomenon_time, StaDatastream.flat_since)
            .join(StaObservedProperty, StaObservedProperty.id == StaDatastream.observed_property_id)
            .where(StaDatastream.id.in_(ids))
        ).all()  # fmt: skip
        flat = min((r.duration_s for r in self.rules.rules if r.kind == "flatline"), default=np.inf)
        alerted = set(conn.scalars(
            select(Alert.datastream_id).where(Alert.datastream_id.in_(ids), Alert.closed_at.is_(None))
        ))  # fmt: skip
        ranges = {
            k: v for r in self.rules.rules if r.kind == "out_of_range" for k, v in r.ranges.items()
        }
        out = []
        for s in streams:
            unit = str(json.loads(s.unit_of_measurement or "{}").get("symbol", ""))
            (b,) = bind(self.rules, [(s.id, s.name, unit)])
            given = list(fresh.get(s.id, ()))
            values = [float(v) for v in given if v is not None]
            low, high = ranges.get(f"{s.name} {unit}", (-np.inf, np.inf))
            context = any(r.context and r.context[0] == s.name for r in self.rules.rules)
            quiet = (
                not context and s.id not in alerted and bool(values) and len(values) == len(given)
                and all(r.kind == "threshold" and r.direction == "above" and r.min_duration_s == 0
                        for r in b.rules)
                and all(v < min(r.levels.values()) - r.hysteresis for r in b.rules for v in values)
                and all(low <= v <= high for v in values)
                and (s.flat_since is None or s.last_phenomenon_time is None
                     or (s.last_phenomenon_time - s.flat_since).total_seconds() < flat)
            )  # fmt: skip
            if not quiet:
                out.append(int(s.id))
        return out

    def _reconcile(
        self, conn: Connection, e: Episode, thing_id: int, now: dt.datetime
    ) -> int | None:
        same = conn.execute(
            select(Alert).where(Alert.rule_id == e.rule, Alert.datastream_id == e.datastream_id,
                                Alert.raised_at == e.start)
        ).first()  # fmt: skip
        open_one = select(Alert).where(
            Alert.rule_id == e.rule,
            Alert.datastream_id == e.datastream_id,
            Alert.closed_at.is_(None),
        )
        if (
            same is None and e.end is None
        ):  # the condition holds: update the open alert or raise one
            same = conn.execute(open_one).first()
        last_at, last_value = e.readings[-1] if e.readings else (None, None)
        if same is None:
            if e.end is not None:
                return None  # a past episode nobody was told about: replay reports those
            try:
                with conn.begin_nested():
                    return self._raise(conn, e, thing_id, now)
            except IntegrityError:  # another writer (a worker process) raised it meanwhile
                same = conn.execute(open_one).first()
                if same is None:
                    raise
        if same.closed_at is not None:
            return None  # the operations centre closed it (a false alarm, a device fault)
        bumped = bool(same.tickets)  # corroborated by citizens: one level above the readings
        rule = self.rules.get(e.rule)
        base, event = self.correlated(conn, rule, same.lon, same.lat, same.raised_at)
        last, high = (base, base) if base else (e.last_level, e.level)
        why = same.context or self.in_context(conn, rule, same.lon, same.lat, same.raised_at)
        if why:  # the context (e.g. heavy rain) raises it one level
            last, high = _up(last), _up(high)
        level = _up(last) if bumped else last
        values: dict[str, Any] = {"level": level, "updated_at": now,
                                  "last_value": last_value, "last_reading_at": last_at}  # fmt: skip
        top = _up(high) if bumped else high
        if LEVEL_RANK[top] > LEVEL_RANK[same.max_level]:
            values["max_level"] = top
        values["readings"] = _readings(e)
        values["context"] = why
        if event:
            values["event"] = event
        values["cleared_at"] = e.end
        conn.execute(update(Alert).where(Alert.id == same.id).values(values))
        if e.end is not None and same.cleared_at is None:
            record_step(conn, same.id, "condition_cleared", same.state, same.state,
                       KeyInfo("monitor", "system"), f"rule {e.rule}: below its levels", same.raised_at, now)  # fmt: skip
        return int(same.id)

    def _raise(self, conn: Connection, e: Episode, thing_id: int, now: dt.datetime) -> int:
        rule = self.rules.get(e.rule)
        thing = conn.execute(select(StaThing.units).where(StaThing.id == thing_id)).scalar()
        loc = conn.execute(
            select(StaLocation.location).join(M2M, M2M.c.location_id == StaLocation.id)
            .where(M2M.c.thing_id == thing_id).order_by(StaLocation.id).limit(1)
        ).scalar()  # fmt: skip
        point = from_geojson(json.loads(loc)).representative_point() if loc else None
        last_at, last_value = e.readings[-1] if e.readings else (None, None)
        tickets = self.corroborating(
            conn, rule, point.x if point else None, point.y if point else None, e.start
        )
        base, event = self.correlated(
            conn, rule, point.x if point else None, point.y if point else None, e.start
        )
        last, high = (base, base) if base else (e.last_level, e.level)
        why = self.in_context(
            conn, rule, point.x if point else None, point.y if point else None, e.start
        )
        if why:  # the context (e.g. heavy rain) raises it one level
            last, high = _up(last), _up(high)
        level, top = (_up(last), _up(high)) if tickets else (last, high)
        aid = int(conn.execute(insert(Alert).values(
            rule_id=rule.id, rules_version=self.rules.version, domain=rule.domain, hazard=rule.hazard,
            event=event or rule.event, datastream_id=e.datastream_id, thing_id=thing_id, units=thing,
            lon=point.x if point else None, lat=point.y if point else None, level=level,
            max_level=top, state="detected", raised_at=e.start, cleared_at=e.end, updated_at=now,
            closed_at=None, readings=_readings(e), last_value=last_value, last_reading_at=last_at,
            tickets=json.dumps(tickets) if tickets else None, context=why,
        ).returning(Alert.id)).scalar_one())  # fmt: skip
        record_step(conn, aid, "detect", None, "detected", KeyInfo("monitor", "system"),
                   f"rule {rule.id} ({self.rules.version}): {rule.event}", e.start, now)  # fmt: skip
        if why:
            record_step(
                conn,
                aid,
                "context",
                "detected",
                "detected",
                KeyInfo("monitor", "system"),
                why,
                e.start,
                now,
            )
        if base:
            record_step(conn, aid, "correlate", "detected", "detected", KeyInfo("monitor", "system"),
                       event or f"correlated: {base}", e.start, now)  # fmt: skip
        self._recheck_correlated(conn, rule, now)
        if tickets:
            record_step(conn, aid, "corroborate", "detected", "detected", KeyInfo("monitor", "system"),
                       f"12345 tickets {', '.join(map(str, tickets))} within {rule.corroborate[1]:g} m",  # type: ignore[index]
                       e.start, now)  # fmt: skip
        return aid
