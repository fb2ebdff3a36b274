"""Two worker processes on PostgreSQL: one open alert per rule × datastream holds when both
raise it at once (the second waits on the unique index, then takes the first's alert), and one
sweep runs at a time. (Two writers of readings of one datastream already take turns on its
row, which they both update.)"""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import select, text

from cityos.lifelines.entities import ENTITY_SETS
from cityos.lifelines.lifecycle import load_limits
from cityos.lifelines.models import Alert
from cityos.lifelines.monitor import Monitor
from cityos.lifelines.rules import load_rules
from cityos.lifelines.sta import create
from cityos.ops.store import connect, upgrade
from tests.lifelines.wells import well

T0 = dt.datetime(2026, 12, 1, 8, 0)
THING = well("W-1", "PT1M")


def reading(conn: object, at: dt.datetime, value: float) -> None:
    create(conn, ENTITY_SETS["Observations"],  # type: ignore[arg-type]
           {"result": value, "phenomenonTime": at.isoformat() + "Z", "Datastream": {"@iot.id": 1}},
           lambda x, y: {})  # fmt: skip


@pytest.mark.parametrize("blank_store", ["postgresql"], indirect=True)
def test_two_writers_raise_one_alert(blank_store: str) -> None:
    engine = connect(blank_store)
    upgrade(engine)
    monitor = Monitor(load_rules(), load_limits())
    with engine.begin() as conn:
        create(conn, ENTITY_SETS["Things"], THING, lambda x, y: {})
        reading(conn, T0, 60.0)
    first = engine.connect()
    first.begin()
    (raised,) = monitor.check(first, [1], T0 + dt.timedelta(seconds=5))
    second_got: list[int] = []

    def second() -> None:
        with engine.begin() as conn:
            second_got.extend(monitor.check(conn, [1], T0 + dt.timedelta(seconds=6)))

    worker = threading.Thread(target=second)
    worker.start()
    with engine.connect() as watch:  # the second writer waits on the first's uncommitted alert
        deadline = time.monotonic() + 20
        while not watch.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted")):
            assert time.monotonic() < deadline, "the second writer never waited"
            time.sleep(0.05)
    first.commit()
    first.close()
    worker.join(timeout=20)
    assert second_got == [raised]
    with engine.connect() as conn:
        rows = conn.execute(select(Alert.id, Alert.level, Alert.updated_at)).all()
    assert [tuple(r) for r in rows] == [(raised, "red", T0 + dt.timedelta(seconds=6))]
    engine.dispose()


@pytest.mark.parametrize("blank_store", ["postgresql"], indirect=True)
def test_one_sweep_at_a_time(blank_store: str) -> None:
    engine = connect(blank_store)
    upgrade(engine)
    monitor = Monitor(load_rules(), load_limits())
    with engine.begin() as conn:
        create(conn, ENTITY_SETS["Things"], THING, lambda x, y: {})
        reading(conn, T0, 2.0)
    later = T0 + dt.timedelta(minutes=10)
    with engine.connect() as a, engine.connect() as b:
        a.begin()
        b.begin()
        assert len(monitor.sweep(a, later)) == 1  # the stale alert
        assert monitor.sweep(b, later) == []  # the other worker skips while the first sweeps
        a.commit()
        b.rollback()
        b.begin()
        assert monitor.sweep(b, later) == []  # its next turn: that silence has its alert
        b.commit()
    with engine.connect() as conn:
        assert len(conn.execute(select(Alert.id)).all()) == 1
    engine.dispose()
