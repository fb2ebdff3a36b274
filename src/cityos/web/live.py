"""The dashboard's live operations layers: hotline tickets and lifeline alerts as GeoJSON, and a
server-sent event stream (``/api/v1/map/events``) that tells the page when either changed.

The stream watches the store itself (each table's row count and newest ``updated_at``, read every
:data:`POLL_SECONDS`), not this process's writes: with ``--workers N`` a ticket may come in
through another worker. A page refetches a layer when its version changes, so a change is on
screen within about a second. Each stream ends after :data:`STREAM_SECONDS` (the browser
reconnects at once), so that a stopping server is never held open by a page.

Public, as Open311's own ``GET requests.json`` is: a ticket's id, category, state, whether it is
overdue, and where and when it came; never its reporter, its description or its timeline.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select

from cityos.lifelines.models import Alert
from cityos.lifelines.rules import LEVEL_RANK
from cityos.ops.hotline import now
from cityos.ops.models import Ticket
from cityos.ops.workflow import CLOSED_STATES
from cityos.web.deps import OpsDep
from cityos.web.formats import stamp

__all__ = ["POLL_SECONDS", "STREAM_SECONDS", "hotspots", "router", "sensors", "unit_counts"]

router = APIRouter(tags=["dashboard"])

#: how often the event stream reads the store's versions
POLL_SECONDS = 0.5
#: how long one event stream lasts before the browser reconnects
STREAM_SECONDS = 15.0


def _phase(state: str, due_resolve: dt.datetime, t: dt.datetime) -> str:
    """A ticket on the map: closed, overdue (open past its resolve deadline at ``t``) or open."""
    if state in CLOSED_STATES:
        return "closed"
    return "overdue" if due_resolve < t else "open"


def _point(lon: float | None, lat: float | None) -> dict[str, Any] | None:
    return None if lon is None or lat is None else {"type": "Point", "coordinates": [lon, lat]}


@router.get(
    "/api/v1/map/tickets", summary="Hotline tickets on the map: open, overdue, recently closed"
)
def tickets(
    ops: OpsDep,
    days: int = Query(30, ge=1, le=366, description="closed tickets of the last DAYS days"),
) -> dict[str, Any]:
    """Every open ticket and those closed in the last ``days`` days, as a GeoJSON
    FeatureCollection: ``state`` the workflow state, ``phase`` open / overdue / closed (overdue:
    open past its resolve deadline)."""
    t = now()
    since = t - dt.timedelta(days=days)
    cols = (Ticket.id, Ticket.service_code, Ticket.state, Ticket.lon, Ticket.lat,
            Ticket.requested_at, Ticket.due_resolve, Ticket.closed_at, Ticket.department)  # fmt: skip
    query = select(*cols).where(
        Ticket.state.not_in(CLOSED_STATES) | (Ticket.closed_at >= since),
        Ticket.lon.is_not(None),
    )
    with ops.reading() as conn:
        rows = conn.execute(query.order_by(Ticket.id)).all()
    features = []
    for r in rows:
        features.append({
            "type": "Feature", "id": r.id, "geometry": _point(r.lon, r.lat),
            "properties": {"id": r.id, "service_code": r.service_code, "state": r.state,
                           "phase": _phase(r.state, r.due_resolve, t),
                           "department": r.department, "requested_at": stamp(r.requested_at)},
        })  # fmt: skip
    return {"type": "FeatureCollection", "features": features}


@router.get("/api/v1/map/alerts", summary="Lifeline alerts on the map that are not closed")
def alerts(ops: OpsDep) -> dict[str, Any]:
    """Alerts not closed, as a GeoJSON FeatureCollection with their level (red, orange, yellow,
    blue), lifecycle state and the rule that raised them."""
    cols = (Alert.id, Alert.domain, Alert.level, Alert.state, Alert.event, Alert.rule_id,
            Alert.lon, Alert.lat, Alert.raised_at)  # fmt: skip
    with ops.reading() as conn:
        rows = conn.execute(
            select(*cols).where(Alert.state != "closed", Alert.lon.is_not(None)).order_by(Alert.id)
        ).all()
    return {"type": "FeatureCollection", "features": [{
        "type": "Feature", "id": r.id, "geometry": _point(r.lon, r.lat),
        "properties": {"id": r.id, "domain": r.domain, "level": r.level, "state": r.state,
                       "event": r.event, "rule_id": r.rule_id, "raised_at": stamp(r.raised_at)},
    } for r in rows]}  # fmt: skip


@router.get("/api/v1/map/sensors", summary="Lifeline sensors on the map with their last reading")
def sensors(ops: OpsDep) -> dict[str, Any]:
    """Every datastream at its Thing's first Location, as a GeoJSON FeatureCollection: its
    property and unit, the last reading (value and time; none yet: null), ``offline`` (an open
    device alert: silent, flat or out of range) and the highest level of its open hazard alerts
    (null: none). Water depth sensors are the waterlogging points, their last depth on the map."""
    from cityos.lifelines.entities import M2M
    from cityos.lifelines.geometry import from_geojson
    from cityos.lifelines.models import StaDatastream, StaLocation, StaObservedProperty

    first = (select(M2M.c.thing_id, func.min(M2M.c.location_id).label("loc"))
             .group_by(M2M.c.thing_id).subquery())  # fmt: skip
    query = (
        select(StaDatastream.id, StaDatastream.name, StaObservedProperty.name.label("prop"),
               StaDatastream.unit_of_measurement, StaDatastream.last_result_number,
               StaDatastream.last_phenomenon_time, StaLocation.location)
        .join(StaObservedProperty, StaObservedProperty.id == StaDatastream.observed_property_id)
        .join(first, first.c.thing_id == StaDatastream.thing_id)
        .join(StaLocation, StaLocation.id == first.c.loc)
        .order_by(StaDatastream.id)
    )  # fmt: skip
    with ops.reading() as conn:
        rows = conn.execute(query).all()
        open_ = conn.execute(
            select(Alert.datastream_id, Alert.hazard, Alert.level).where(Alert.closed_at.is_(None))
        ).all()  # fmt: skip
    offline = {a.datastream_id for a in open_ if not a.hazard}
    worst: dict[int, str] = {}
    for a in open_:
        held = worst.get(a.datastream_id)
        if a.hazard and (held is None or LEVEL_RANK[a.level] > LEVEL_RANK[held]):
            worst[a.datastream_id] = a.level
    features = []
    for r in rows:
        p = from_geojson(json.loads(r.location)).representative_point()
        unit = str(json.loads(r.unit_of_measurement or "{}").get("symbol", ""))
        features.append({
            "type": "Feature", "id": r.id, "geometry": _point(p.x, p.y),
            "properties": {"id": r.id, "name": r.name, "property": r.prop, "unit": unit,
                           "value": r.last_result_number, "at": stamp(r.last_phenomenon_time),
                           "offline": r.id in offline, "alert": worst.get(r.id)},
        })  # fmt: skip
    return {"type": "FeatureCollection", "features": features}


@router.get("/api/v1/map/hotspots", summary="Hotspots: clusters of hotline tickets of one category")
def hotspots(
    ops: OpsDep, days: int = Query(30, ge=1, le=366, description="tickets of the last DAYS days")
) -> dict[str, Any]:
    """The spatial clusters of the last ``days`` days' tickets within each category
    (:func:`cityos.ops.hotspots.clusters`: linked within 100 m, at least 5), at their mean
    point, as a GeoJSON FeatureCollection; each lists the tickets in it."""
    from cityos.ops.hotspots import HotspotSettings, clusters, read_tickets

    t = now()
    frame = read_tickets(ops.engine, t + dt.timedelta(seconds=1), months=max(1, days // 31 + 1))
    frame = frame[frame["requested_at"] >= t - dt.timedelta(days=days)]
    s = HotspotSettings()
    spots = clusters(frame, ops.hotline.city, s)
    return {"type": "FeatureCollection", "rule": f"within {s.cluster_radius_m:g} m, at least {s.cluster_min_size} [OP]",
            "features": [{
        "type": "Feature", "id": r["cluster_id"], "geometry": _point(r["lon"], r["lat"]),
        "properties": {"cluster_id": r["cluster_id"], "service_code": r["service_code"],
                       "requests": int(r["requests"]), "first": stamp(r["first"].to_pydatetime()),
                       "last": stamp(r["last"].to_pydatetime()),
                       "tickets": [int(i) for i in str(r["tickets"]).split(",") if i]},
    } for r in spots.to_dict("records")]}  # fmt: skip


def unit_counts(ops: Any, level: str, unit_id: str) -> dict[str, dict[str, int]]:
    """A unit's hotline tickets (open, overdue, closed in the last 30 days) and its alerts not
    closed, by level: counts only."""
    column = {"community": Ticket.community_id, "subdistrict": Ticket.subdistrict_id,
              "city": Ticket.city_id}.get(level)  # fmt: skip
    t = now()
    tickets = {"open": 0, "overdue": 0, "closed": 0}
    alerts: dict[str, int] = {}
    with ops.reading() as conn:
        if column is not None:
            rows = conn.execute(select(Ticket.state, Ticket.due_resolve, Ticket.closed_at)
                                .where(column == unit_id)).all()  # fmt: skip
            since = t - dt.timedelta(days=30)
            for r in rows:
                phase = _phase(r.state, r.due_resolve, t)
                if phase != "closed" or (r.closed_at is not None and r.closed_at >= since):
                    tickets[phase] += 1
        for lvl, units in conn.execute(
            select(Alert.level, Alert.units).where(Alert.state != "closed")
        ).all():
            if units and json.loads(units).get(level) == unit_id:
                alerts[lvl] = alerts.get(lvl, 0) + 1
    return {"tickets": tickets, "alerts": alerts}


def _versions(ops: Any) -> dict[str, str]:
    """Each live layer's version: its row count and newest change."""
    out = {}
    with ops.reading() as conn:
        for name, table in (("tickets", Ticket), ("alerts", Alert)):
            count, newest = conn.execute(select(func.count(), func.max(table.updated_at))).one()
            # to the microsecond: two changes within one second must differ
            out[name] = f"{count}:{newest.isoformat() if newest else None}"
    return out


# not in the OpenAPI: a stream that lasts seconds is no request/response pair to describe
@router.get("/api/v1/map/events", include_in_schema=False)
async def events(request: Request, ops: OpsDep) -> StreamingResponse:
    """``event: tickets`` / ``event: alerts`` with the layer's new version as data, first for
    both layers at once, then on every change; the stream ends after :data:`STREAM_SECONDS`
    and asks the browser to reconnect after 0.5 s."""

    async def stream() -> AsyncIterator[str]:
        yield "retry: 500\n\n"
        seen: dict[str, str] = {}
        loop = asyncio.get_running_loop()
        end = loop.time() + STREAM_SECONDS
        while loop.time() < end and not await request.is_disconnected():
            versions = await asyncio.to_thread(_versions, ops)
            for name, version in versions.items():
                if seen.get(name) != version:
                    yield f"event: {name}\ndata: {json.dumps(version)}\n\n"
            seen = versions
            await asyncio.sleep(POLL_SECONDS)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store"})  # fmt: skip
