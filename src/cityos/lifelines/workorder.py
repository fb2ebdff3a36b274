"""The hotline work order a dispatched alert opens (派单): a ticket of the service the rules name
for the alert's domain (``[work_orders]`` in ``rules.toml``), at the alert's place, whose
description carries the alert, its level, its event and the readings that raised it; the alert
records it and closes when it closes (:func:`cityos.lifelines.desk.close_with_ticket`).

One function, used by the service's ``POST /api/v1/alerts/{id}/actions/dispatch`` and by
``cityos simulate``, so a simulated month opens the work orders the service would."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from cityos.lifelines import desk
from cityos.lifelines.monitor import Monitor
from cityos.ops.hotline import Hotline, Intake
from cityos.ops.keys import KeyInfo

__all__ = ["open_work_order"]


def open_work_order(s: Session, alert_id: int, monitor: Monitor, hotline: Hotline, key: KeyInfo,
                    *, at: dt.datetime | None = None) -> int | None:  # fmt: skip
    """Open the work order of a just-dispatched alert and link it; returns its ticket id, or
    None when the rules name no service for the alert's domain or the catalogue lacks it.

    ``at`` is when it was opened (default now); ``key`` is the dispatcher's, who takes it in.
    """
    conn = s.connection()
    view = desk.view(conn, alert_id, monitor.rules, monitor.limits)
    service = monitor.rules.work_orders.get(view["domain"])
    if not service or service not in hotline.services.services:
        return None
    readings = "; ".join(f"{t} {v:g}" for t, v in view["readings"])
    intake = Intake(service_code=service, lat=view["lat"], lon=view["lon"],
                    description=f"lifeline alert {alert_id} ({view['max_level']}): "
                                f"{view['event']}; readings {readings}"[:4000],
                    channel="lifeline")  # fmt: skip
    ticket, _ = hotline.store(s, hotline.prepare(intake, key, at=at))
    desk.link_ticket(conn, alert_id, ticket.id)
    return int(ticket.id)
