"""The operations centre's side of an alert: its lifecycle steps (allowed from its state,
recorded with who, when and why, timed against its level's limit), the hotline work order it
opens and closes with, and its view (rule, readings, steps, the steps allowed next)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from cityos.errors import ConflictError, ForbiddenError, NotFoundError
from cityos.lifelines.lifecycle import ALERT_ACTIONS, OPS_ROLES, Limits, allowed
from cityos.lifelines.models import Alert, AlertStep
from cityos.lifelines.rules import RuleSet
from cityos.ops.keys import KeyInfo

__all__ = ["act", "close_with_ticket", "link_ticket", "record_step", "view", "views"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def record_step(conn: Connection, aid: int, action: str, before: str | None, after: str,
                key: KeyInfo, reason: str | None, raised: dt.datetime, at: dt.datetime) -> None:  # fmt: skip
    """The audit row of one step, with the seconds since the alert was raised."""
    conn.execute(insert(AlertStep).values(
        alert_id=aid, action=action, from_state=before, to_state=after, actor=key.name,
        role=key.role, at=at, reason=reason, seconds=max(0.0, (at - raised).total_seconds()),
    ))  # fmt: skip


def act(conn: Connection, alert_id: int, action: str, key: KeyInfo, reason: str | None, *,
        at: dt.datetime | None = None) -> None:  # fmt: skip
    """Take a lifecycle step: by an operations key (403 otherwise), allowed from the alert's
    state (409 with the allowed ones otherwise), recorded and timed (``at``, default now)."""
    if key.role not in OPS_ROLES:
        raise ForbiddenError(
            f"key {key.name!r} ({key.role}) may not {action} alerts; use a dispatcher key"
        )
    step = ALERT_ACTIONS.get(action)
    if step is None:
        raise NotFoundError(f"no alert step {action!r}; use one of {', '.join(ALERT_ACTIONS)}")
    alert = conn.execute(select(Alert).where(Alert.id == alert_id)).first()
    if alert is None:
        raise NotFoundError(f"no alert {alert_id}")
    if alert.state not in step.sources:
        raise ConflictError(f"alert {alert_id} is {alert.state}: {action} is not allowed from there; "
                            f"allowed: {', '.join(allowed(alert.state)) or 'none'}", allowed(alert.state))  # fmt: skip
    now = at or _now()
    values: dict[str, Any] = {"state": step.target, "updated_at": now}
    if step.target == "closed":
        values["closed_at"] = now
    conn.execute(update(Alert).where(Alert.id == alert_id).values(values))
    record_step(conn, alert_id, action, alert.state, step.target, key, reason, alert.raised_at, now)


def link_ticket(conn: Connection, alert_id: int, ticket_id: int) -> None:
    """Record the hotline work order opened for an alert."""
    conn.execute(update(Alert).where(Alert.id == alert_id).values(ticket_id=ticket_id))


def close_with_ticket(conn: Connection, ticket_id: int, state: str, key: KeyInfo) -> list[int]:
    """Close the open alerts whose work order ``ticket_id`` just closed; returns them."""
    rows = conn.execute(
        select(Alert.id, Alert.state, Alert.raised_at).where(Alert.ticket_id == ticket_id,
                                                             Alert.closed_at.is_(None))
    ).all()  # fmt: skip
    now = _now()
    for r in rows:
        conn.execute(
            update(Alert)
            .where(Alert.id == r.id)
            .values(state="closed", closed_at=now, updated_at=now)
        )
        record_step(conn, r.id, "close", r.state, "closed", key,
                    f"its hotline work order {ticket_id} closed ({state})", r.raised_at, now)  # fmt: skip
    return [int(r.id) for r in rows]


def view(conn: Connection, alert_id: int, rules: RuleSet, limits: Limits) -> dict[str, Any]:
    """An alert with its rule, readings, steps (each timed against its level's limit) and the
    steps allowed next.

    Raises
    ------
    NotFoundError
        No such alert.
    """
    found = views(conn, [alert_id], rules, limits)
    if not found:
        raise NotFoundError(f"no alert {alert_id}")
    return found[0]


def views(
    conn: Connection, alert_ids: Sequence[int], rules: RuleSet, limits: Limits
) -> list[dict[str, Any]]:
    """The views of alerts (those that exist, in the order given), in two queries."""
    if not alert_ids:
        return []
    rows = {a.id: a for a in conn.execute(select(Alert).where(Alert.id.in_(alert_ids)))}
    steps: dict[int, list[Any]] = {}
    for s in conn.execute(
        select(AlertStep).where(AlertStep.alert_id.in_(list(rows))).order_by(AlertStep.id)
    ):
        steps.setdefault(s.alert_id, []).append(s)
    by_id = {r.id: r for r in rules.rules}
    return [_view(rows[i], steps.get(i, []), by_id.get(rows[i].rule_id), limits)
            for i in alert_ids if i in rows]  # fmt: skip


def _view(a: Any, steps: list[Any], rule: Any, limits: Limits) -> dict[str, Any]:
    return {
        "id": a.id, "state": a.state, "level": a.level, "max_level": a.max_level,
        "domain": a.domain, "hazard": a.hazard, "event": a.event,
        "rule": {"id": a.rule_id, "version": a.rules_version, "kind": rule.kind if rule else None,
                 "levels": rule.levels if rule else None, "source": rule.source if rule else None},
        "datastream": a.datastream_id, "thing": a.thing_id,
        "units": json.loads(a.units) if a.units else None, "lon": a.lon, "lat": a.lat,
        "raised_at": _iso(a.raised_at), "cleared_at": _iso(a.cleared_at), "closed_at": _iso(a.closed_at),
        "readings": json.loads(a.readings), "last_value": a.last_value,
        "last_reading_at": _iso(a.last_reading_at), "ticket": a.ticket_id,
        "tickets": json.loads(a.tickets) if a.tickets else [], "context": a.context,
        "allowed_actions": allowed(a.state),
        "steps": [{"action": s.action, "from": s.from_state, "to": s.to_state, "actor": s.actor,
                   "role": s.role, "at": _iso(s.at), "reason": s.reason, "seconds": s.seconds,
                   "limit_seconds": limits.due(a.max_level, s.to_state),
                   "late": (lim := limits.due(a.max_level, s.to_state)) is not None and s.seconds > lim}
                  for s in steps],
    }  # fmt: skip


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds") + "Z"
