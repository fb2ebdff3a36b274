"""Each datastream's latest reading and run of equal values, kept as readings are stored: a
flat line longer than the readings one check looks at is still raised, at the right time, by
the live monitor; late readings and deletions recompute it — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.engine import Connection

from cityos.lifelines.entities import ENTITY_SETS
from cityos.lifelines.ingest import create_observations
from cityos.lifelines.lifecycle import load_limits
from cityos.lifelines.models import Alert, StaDatastream
from cityos.lifelines.monitor import RECENT_READINGS, Monitor
from cityos.lifelines.rules import load_rules
from cityos.lifelines.sta import create, delete_entity, resolve
from cityos.ops.store import connect, upgrade
from tests.lifelines.wells import well

T0 = dt.datetime(2026, 11, 29, 0, 0)
THING = well()


def z(t: dt.datetime) -> str:
    return t.isoformat() + "Z"


def batch(conn: Connection, rows: list[tuple[dt.datetime, float]]) -> dict[int, list[float | None]]:
    body = [{"Datastream": {"@iot.id": 1}, "components": ["phenomenonTime", "result"],
             "dataArray": [[z(t), v] for t, v in rows]}]  # fmt: skip
    return create_observations(conn, body, lambda x, y: {})[1]


def state(conn: Connection) -> tuple[dt.datetime | None, float | None, dt.datetime | None]:
    r = conn.execute(
        select(StaDatastream.last_phenomenon_time, StaDatastream.last_result_number,
               StaDatastream.flat_since)
    ).one()  # fmt: skip
    return r[0], r[1], r[2]


def test_a_day_long_flat_line_is_raised_live(blank_store: str) -> None:
    engine = connect(blank_store)
    upgrade(engine)
    monitor = Monitor(load_rules(), load_limits())
    minutes = 25 * 60  # 1,500 readings, three times what one check reads
    assert minutes > 2 * RECENT_READINGS
    with engine.begin() as conn:
        create(conn, ENTITY_SETS["Things"], THING, lambda x, y: {})
        for start in range(0, minutes, 100):
            rows = [(T0 + dt.timedelta(minutes=m), 2.0) for m in range(start, start + 100)]
            fresh = batch(conn, rows)
            monitor.check(conn, [1], rows[-1][0] + dt.timedelta(seconds=5), fresh=fresh)
        alerts = conn.execute(select(Alert.rule_id, Alert.raised_at, Alert.hazard)).all()
        # the day is complete at the reading 1,440 minutes after the first
        assert alerts == [("flatline", T0 + dt.timedelta(days=1), False)]
        assert state(conn) == (T0 + dt.timedelta(minutes=minutes - 1), 2.0, T0)
    engine.dispose()


def test_runs_follow_new_late_and_deleted_readings(blank_store: str) -> None:
    engine = connect(blank_store)
    upgrade(engine)
    m = [T0 + dt.timedelta(minutes=i) for i in range(10)]
    with engine.begin() as conn:
        create(conn, ENTITY_SETS["Things"], THING, lambda x, y: {})
        assert state(conn) == (None, None, None)
        batch(conn, [(m[0], 5.0), (m[1], 5.0), (m[3], 7.0)])
        assert state(conn) == (m[3], 7.0, m[3])
        batch(conn, [(m[5], 7.0), (m[4], 7.0)])  # out of order within a batch: sorted
        assert state(conn) == (m[5], 7.0, m[3])
        batch(conn, [(m[2], 7.0)])  # late: the run of 7 now starts at minute 2
        assert state(conn) == (m[5], 7.0, m[2])
        batch(conn, [(m[6], 9.0)])
        assert state(conn) == (m[6], 9.0, m[6])
        (last,) = conn.execute(
            select(ENTITY_SETS["Observations"].table.c.id).order_by(
                ENTITY_SETS["Observations"].table.c.phenomenon_time.desc()).limit(1)
        ).scalars()  # fmt: skip
        delete_entity(conn, resolve(f"Observations({last})"))  # the 9 is gone
        assert state(conn) == (m[5], 7.0, m[2])
    engine.dispose()
