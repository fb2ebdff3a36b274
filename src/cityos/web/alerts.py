"""Lifeline alerts under ``/api/v1/alerts``: the list (newest first, by state, level and
domain), one alert with its rule, readings and timed steps, and the operations centre's
lifecycle steps (keys of role dispatcher or admin)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityos.lifelines import desk
from cityos.lifelines.cap import cap_feed, cap_message
from cityos.lifelines.lifecycle import ALERT_ACTIONS, ALERT_STATES
from cityos.lifelines.models import Alert
from cityos.lifelines.rules import LEVELS
from cityos.lifelines.workorder import open_work_order
from cityos.web.deps import KeyDep, OpsDep

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/alerts", tags=["lifeline alerts"])
AlertId = Annotated[int, Path(ge=1, lt=2**31, description="The alert's id")]


class StepBody(BaseModel):
    reason: str | None = Field(
        default=None, max_length=4000, description="Why (kept with the step)"
    )


@router.get("", summary="Alerts, newest first")
async def alerts(
    ops: OpsDep,
    state: Annotated[
        str | None,
        Query(
            description=f"one of {', '.join(ALERT_STATES)}, or open",
            pattern="^(" + "|".join(("open", *ALERT_STATES)) + ")$",
        ),
    ] = None,
    level: Annotated[
        str | None,
        Query(description=f"one of {', '.join(LEVELS)}", pattern="^(" + "|".join(LEVELS) + ")$"),
    ] = None,
    domain: Annotated[str | None, Query(max_length=50, pattern="^[A-Za-z0-9_-]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    stmt = select(Alert.id).order_by(Alert.id.desc()).limit(limit)
    if state == "open":
        stmt = stmt.where(Alert.closed_at.is_(None))
    elif state:
        stmt = stmt.where(Alert.state == state)
    if level:
        stmt = stmt.where(Alert.level == level)
    if domain:
        stmt = stmt.where(Alert.domain == domain)
    with ops.reading() as conn:
        return desk.views(
            conn, [int(i) for i in conn.scalars(stmt)], ops.monitor.rules, ops.monitor.limits
        )


@router.get("/steps", summary="The alert lifecycle's table of steps")
async def steps() -> list[dict[str, Any]]:
    return [{"action": s.name, "from": sorted(s.sources), "to": s.target, "description": s.description}
            for s in ALERT_ACTIONS.values()]  # fmt: skip


@router.get("/feed.atom", summary="An Atom feed of the open alerts, each linking to its CAP")
async def feed(request: Request, ops: OpsDep) -> Response:
    base = str(request.base_url).rstrip("/")
    stmt = select(Alert.id).where(Alert.closed_at.is_(None)).order_by(Alert.id.desc()).limit(500)
    with ops.reading() as conn:
        found = desk.views(
            conn, [int(i) for i in conn.scalars(stmt)], ops.monitor.rules, ops.monitor.limits
        )
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return Response(cap_feed(found, ops.cap, base, now), media_type="application/atom+xml")


@router.get("/{alert_id}.cap", summary="An alert as a CAP 1.2 message")
async def cap(alert_id: AlertId, ops: OpsDep) -> Response:
    with ops.reading() as conn:
        view = desk.view(conn, alert_id, ops.monitor.rules, ops.monitor.limits)
    return Response(
        cap_message(view, ops.cap, dt.datetime.now(dt.UTC)), media_type="application/cap+xml"
    )


@router.get("/{alert_id}", summary="An alert: its rule, readings and timed steps")
async def alert(alert_id: AlertId, ops: OpsDep) -> dict[str, Any]:
    with ops.reading() as conn:
        return desk.view(conn, alert_id, ops.monitor.rules, ops.monitor.limits)


@router.post("/{alert_id}/actions/{action}", summary="Take a lifecycle step (dispatcher, admin)",
             responses={403: {"description": "wrong role"}, 404: {"description": "no such alert or step"},
                        409: {"description": "not allowed from the current state"}})  # fmt: skip
async def act(
    alert_id: int, action: str, body: StepBody, ops: OpsDep, key: KeyDep
) -> dict[str, Any]:
    def write(s: Session) -> None:
        conn = s.connection()
        desk.act(conn, alert_id, action, key, body.reason)
        if action == "dispatch":  # the crew's work order: a hotline ticket for the owner unit
            open_work_order(s, alert_id, ops.monitor, ops.hotline, key)

    await ops.write(write)
    with ops.reading() as conn:
        return desk.view(conn, alert_id, ops.monitor.rules, ops.monitor.limits)
