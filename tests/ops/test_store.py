"""Migrations carry a store's data forward: 0003 back-fills the response times of tickets
handled before it from their audit rows, 0006 each datastream's latest reading and run of
equal values — on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, text

from cityos.ops.store import _config, connect, head_revision, upgrade

D = dt.datetime

# (ticket, action, at) as an older cityos recorded them
STEPS = [
    # 1: dispatched 10:00, signed 11:00, contacted 12:00, contacted again 13:00
    (1, "dispatch", D(2026, 11, 2, 10)), (1, "sign", D(2026, 11, 2, 11)),
    (1, "start", D(2026, 11, 2, 12)), (1, "start", D(2026, 11, 2, 13)),
    # 2: signed 11:00, then returned and re-dispatched 14:00, not signed since
    (2, "dispatch", D(2026, 11, 2, 10)), (2, "sign", D(2026, 11, 2, 11)),
    (2, "approve_return", D(2026, 11, 2, 14)),
    # 3: received only
    (3, "receive", D(2026, 11, 2, 10)),
]  # fmt: skip
SIGNED = {1: D(2026, 11, 2, 11), 2: D(2026, 11, 2, 11), 3: None}


def test_0003_back_fills_response_times(blank_store: str) -> None:
    from alembic import command

    engine = connect(blank_store)
    cfg = _config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        t0 = D(2026, 11, 2, 10)
        for tid in (1, 2, 3):
            conn.execute(
                text(
                    "INSERT INTO tickets (id, service_code, state, outside_city, department, "
                    "routing_rule, urgency, channel, attributes, requested_at, updated_at, "
                    "due_sign, due_contact, due_resolve, signed_at) VALUES (:id, 'streetlight', "
                    "'dispatched', false, 'municipal', 'r', 'general', 'open311', '{}', :t, :t, "
                    ":t, :t, :t, :signed)"
                ),
                {"id": tid, "t": t0, "signed": SIGNED[tid]},
            )
        for tid, action, at in STEPS:
            conn.execute(
                text(
                    "INSERT INTO transitions (ticket_id, action, to_state, actor, role, at) "
                    "VALUES (:tid, :action, 'x', 'old', 'admin', :at)"
                ),
                {"tid": tid, "action": action, "at": at},
            )
    assert upgrade(engine) == ("0002", head_revision())
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, dispatched_at, signed_at, contacted_at FROM tickets ORDER BY id")
        ).all()
    engine.dispose()
    as_dt = [
        tuple(None if v is None else v if isinstance(v, D) else D.fromisoformat(v) for v in r[1:])
        for r in rows
    ]
    assert as_dt == [
        (D(2026, 11, 2, 10), D(2026, 11, 2, 11), D(2026, 11, 2, 12)),  # the first contact
        (D(2026, 11, 2, 14), None, None),  # the sign-off belonged to the dispatch before
        (None, None, None),
    ]


def test_0006_back_fills_each_datastreams_latest_reading(blank_store: str) -> None:
    from alembic import command

    from cityos.lifelines.entities import ENTITY_SETS
    from cityos.lifelines.models import StaDatastream
    from cityos.lifelines.sta import create

    thing = {"name": "W-1", "description": "", "Datastreams": [{
        "name": f"CH4-{n}", "description": "", "observationType": "OM_Measurement",
        "unitOfMeasurement": {"name": "%LEL", "symbol": "%LEL", "definition": ""},
        "Sensor": {"name": "s", "description": "", "encodingType": "text/plain", "metadata": "m"},
        "ObservedProperty": {"name": "methane", "definition": "CH4", "description": ""}}
        for n in (1, 2)]}  # fmt: skip
    m = [D(2026, 11, 2, 10, i) for i in range(6)]
    engine = connect(blank_store)
    cfg = _config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
        create(conn, ENTITY_SETS["Things"], thing, lambda x, y: {})
        # datastream 1: 5, 7, 5, 5 (out of insertion order); datastream 2: nothing
        for at, value in [(m[3], 5.0), (m[0], 5.0), (m[1], 7.0), (m[2], 5.0)]:
            conn.execute(
                text("INSERT INTO sta_observations (datastream_id, phenomenon_time, result, "
                     "result_number) VALUES (1, :t, :r, :v)"),
                {"t": at, "r": str(value), "v": value},
            )  # fmt: skip
    assert upgrade(engine) == ("0005", head_revision())
    with engine.connect() as conn:
        ds = StaDatastream
        rows = conn.execute(
            select(ds.id, ds.last_phenomenon_time, ds.last_result_number, ds.flat_since)
            .order_by(ds.id)
        ).all()  # fmt: skip
    assert [tuple(r) for r in rows] == [(1, m[3], 5.0, m[2]), (2, None, None, None)]
    engine.dispose()
