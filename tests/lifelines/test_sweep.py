"""A silent sensor: the sweep raises its device alert once it has been silent for 3 reporting
intervals; its next reading clears the condition — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from cityos.lifelines.entities import ENTITY_SETS
from cityos.lifelines.lifecycle import load_limits
from cityos.lifelines.models import Alert
from cityos.lifelines.monitor import Monitor
from cityos.lifelines.rules import load_rules
from cityos.lifelines.sta import create
from cityos.ops.store import connect, upgrade
from tests.lifelines.wells import well

T0 = dt.datetime(2026, 12, 1, 8, 0)


def test_silence_raises_and_a_reading_clears(blank_store: str) -> None:
    engine = connect(blank_store)
    upgrade(engine)
    monitor = Monitor(load_rules(), load_limits())
    thing = well("W-9", "PT1M")

    def reading(at: dt.datetime) -> None:
        create(conn, ENTITY_SETS["Observations"], {"result": 2.0, "phenomenonTime": at.isoformat() + "Z",
               "Datastream": {"@iot.id": 1}}, lambda x, y: {})  # fmt: skip

    with engine.begin() as conn:
        create(conn, ENTITY_SETS["Things"], thing, lambda x, y: {})
        reading(T0)
        assert monitor.sweep(conn, T0 + dt.timedelta(seconds=179)) == []  # not yet 3 minutes
        (aid,) = monitor.sweep(conn, T0 + dt.timedelta(seconds=181))
        a = conn.execute(select(Alert).where(Alert.id == aid)).one()
        assert (a.rule_id, a.level, a.hazard, a.raised_at) == (
            "stale",
            "blue",
            False,
            T0 + dt.timedelta(minutes=3),
        )
        assert (
            monitor.silent(conn, T0 + dt.timedelta(minutes=5)) == []
        )  # known: not looked at again
        assert monitor.sweep(conn, T0 + dt.timedelta(minutes=5), [1]) == [aid]  # the same alert
        assert conn.execute(select(Alert.id)).scalars().all() == [aid]
        reading(T0 + dt.timedelta(minutes=6))
        monitor.check(conn, [1], T0 + dt.timedelta(minutes=6, seconds=5))
        a = conn.execute(select(Alert).where(Alert.id == aid)).one()
        assert a.cleared_at == T0 + dt.timedelta(minutes=6, seconds=5) and a.closed_at is None
    engine.dispose()
