"""A simulated month on the real Helsinki bundle: every ticket's history follows the workflow
table, call backs come the day after handling in daytime, the incidents raise the alerts the
rules say (by correlation, context and citizens' calls), the same seed writes the same month,
and a store with real data is never touched."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy

import cityos
from cityos.cli import main
from cityos.errors import InputError
from cityos.ops.workflow import ACTIONS, CLOSED_STATES
from cityos.simulate import prepare, simulate
from tests.conftest import import_expecting

END = dt.datetime(2026, 11, 30, 6, 0)
HELSINKI = ZoneInfo("Europe/Helsinki")


def _store(path: Path) -> str:
    url = f"sqlite:///{path}"
    assert main(["db", "upgrade", "--db", url, "-q"]) == 0
    return url


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sim") / "helsinki"
    import_expecting(root, osm=cityos.demo_osm_path())
    return root


@pytest.fixture(scope="module")
def month(bundle: Path) -> tuple[sqlite3.Connection, dict[str, object]]:
    url = _store(bundle.parent / "month.sqlite")
    sim = prepare(bundle, url, seed=5, timezone_name="Europe/Helsinki")
    summary = simulate(sim, days=10, end=END, seed=5).as_dict()
    sim.engine.dispose()
    conn = sqlite3.connect(bundle.parent / "month.sqlite")
    conn.row_factory = sqlite3.Row
    return conn, summary


def _t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_every_ticket_history_follows_the_workflow_table(month: tuple[sqlite3.Connection, dict]) -> None:  # fmt: skip
    conn, summary = month
    tickets = conn.execute("SELECT id, state, requested_at FROM tickets").fetchall()
    assert 80 < len(tickets) < 200  # ~7,950 residents × 1.38 ‰ × 10 days ≈ 110, plus calls
    for t in tickets:
        steps = conn.execute(
            "SELECT action, from_state, to_state, at FROM transitions WHERE ticket_id = ? ORDER BY id",
            (t["id"],),
        ).fetchall()  # fmt: skip
        assert steps[0]["action"] == "receive" and steps[0]["from_state"] is None
        assert _t(steps[0]["at"]) == _t(t["requested_at"])
        for before, after in itertools.pairwise(steps):
            action = ACTIONS[after["action"]]
            assert (
                after["from_state"] == before["to_state"] and before["to_state"] in action.sources
            )
            assert after["to_state"] == action.target
            assert _t(before["at"]) <= _t(after["at"]) < END
        assert steps[-1]["to_state"] == t["state"]
    states = {r[0] for r in conn.execute("SELECT state FROM tickets")}
    assert "answered_directly" in states and "closed_resolved" in states
    assert states - CLOSED_STATES, "some tickets are still open at the end"
    assert summary["tickets"] == dict(
        conn.execute("SELECT state, count(*) FROM tickets GROUP BY state").fetchall()
    )
    assert conn.execute("SELECT count(*) FROM reporters").fetchone()[0] == 0  # no personal data


def test_call_backs_come_the_day_after_handling_in_daytime(month: tuple[sqlite3.Connection, dict]) -> None:  # fmt: skip
    conn, _ = month
    rows = conn.execute(
        "SELECT h.at AS handled, c.at AS called FROM transitions h JOIN transitions c "
        "ON c.ticket_id = h.ticket_id AND c.action = 'call_back' AND c.id > h.id "
        "AND NOT EXISTS (SELECT 1 FROM transitions x WHERE x.ticket_id = h.ticket_id "
        "AND x.action = 'handle' AND x.id > h.id AND x.id < c.id) WHERE h.action = 'handle'"
    ).fetchall()  # fmt: skip
    assert len(rows) > 10
    for r in rows:
        handled = _t(r["handled"]).replace(tzinfo=dt.UTC).astimezone(HELSINKI)
        called = _t(r["called"]).replace(tzinfo=dt.UTC).astimezone(HELSINKI)
        assert called.date() == handled.date() + dt.timedelta(days=1)
        assert 9 <= called.hour < 18
    n = conn.execute("SELECT count(*), sum(reached) FROM callbacks").fetchone()
    assert n[0] == len(rows) and 0 < n[1] <= n[0]


def test_the_incidents_raise_the_alerts_the_rules_say(month: tuple[sqlite3.Connection, dict]) -> None:  # fmt: skip
    conn, _ = month
    alerts = {(r["rule_id"], r["max_level"]): r for r in conn.execute("SELECT * FROM alerts")}
    # the gas leak: the main's pressure drop (orange), then methane beside it — red by correlation
    assert ("gas-pressure-drop", "orange") in alerts
    red = alerts[("gas-methane", "red")]
    assert "gas-pressure-drop alert" in red["event"]
    # a resident's call about it was linked to the alert
    (linked,) = json.loads(red["tickets"])
    assert (
        conn.execute("SELECT service_code FROM tickets WHERE id = ?", (linked,)).fetchone()[0]
        == "gas_leak"
    )
    # sewer gas far from any main: yellow, suspected biogas
    assert "suspected biogas" in alerts[("gas-methane", "yellow")]["event"]
    assert ("water-pressure-drop", "orange") in alerts and (
        "bridge-displacement",
        "yellow",
    ) in alerts
    # the storm: rain ≥ 50 mm/h raises the drainage points a level
    storm = conn.execute(
        "SELECT max_level, context FROM alerts WHERE rule_id = 'waterlogging-depth'"
    ).fetchall()
    assert len(storm) >= 3 and all("rain_intensity" in (r["context"] or "") for r in storm)
    # 31, 24, 18 cm: red, yellow and yellow by depth, each a level up in the rain (and the calls
    # near the deepest raise those within 300 m one more)
    assert {r["max_level"] for r in storm} <= {"red", "orange"} and "red" in {
        r["max_level"] for r in storm
    }
    # the two device faults last to the end: open
    devices = conn.execute("SELECT rule_id, closed_at FROM alerts WHERE NOT hazard").fetchall()
    assert sorted(r["rule_id"] for r in devices if r["closed_at"] is None) == ["flatline", "stale"]


def test_older_hazard_alerts_are_worked_through_their_lifecycle(month: tuple[sqlite3.Connection, dict]) -> None:  # fmt: skip
    conn, _ = month
    for a in conn.execute("SELECT id, raised_at, state FROM alerts WHERE hazard").fetchall():
        steps = conn.execute("SELECT action, at FROM alert_steps WHERE alert_id = ? ORDER BY id",
                             (a["id"],)).fetchall()  # fmt: skip
        worked = [s["action"] for s in steps if s["action"] in
                  ("confirm", "notify", "dispatch", "arrive", "handle", "feedback", "close")]  # fmt: skip
        if _t(a["raised_at"]) < END - dt.timedelta(hours=24):
            assert worked == [
                "confirm",
                "notify",
                "dispatch",
                "arrive",
                "handle",
                "feedback",
                "close",
            ]
            assert a["state"] == "closed"
        else:
            assert worked == [] and a["state"] == "detected"
        times = [_t(s["at"]) for s in steps if s["action"] in worked]
        assert times == sorted(times) and all(t < END for t in times)


def test_a_dispatched_alert_opens_its_work_order_as_the_service_does(month: tuple[sqlite3.Connection, dict]) -> None:  # fmt: skip
    conn, summary = month
    service = {
        "gas": "gas_leak",
        "water": "water_outage",
        "drainage": "waterlogging",
        "bridge": "road_damage",
    }  # rules.toml [work_orders]
    rows = conn.execute(
        "SELECT a.id, a.domain, a.max_level, a.ticket_id, s.at FROM alerts a "
        "JOIN alert_steps s ON s.alert_id = a.id AND s.action = 'dispatch'"
    ).fetchall()  # fmt: skip
    assert len(rows) >= 4 and {r["domain"] for r in rows} >= {"gas", "water", "drainage"}
    assert summary["alerts"]["work_orders"] == len(rows)
    for r in rows:
        t = conn.execute("SELECT * FROM tickets WHERE id = ?", (r["ticket_id"],)).fetchone()
        assert t["service_code"] == service[r["domain"]] and t["channel"] == "lifeline"
        assert _t(t["requested_at"]) == _t(r["at"])
        # the level at the dispatch: the alert may rise later (a reading, a citizen's call)
        at_dispatch = t["description"].removeprefix(f"lifeline alert {r['id']} (").split(")")[0]
        order = ["blue", "yellow", "orange", "red"]
        assert order.index(at_dispatch) <= order.index(r["max_level"])
        assert "; readings 2026-11-" in t["description"]
        # the owner unit works it: signed (or returned) after the dispatch
        steps = [a for (a,) in conn.execute(
            "SELECT action FROM transitions WHERE ticket_id = ? ORDER BY id", (t["id"],))]  # fmt: skip
        assert steps[0] == "receive" and len(steps) > 2
        assert steps[2] in ("sign", "request_return")
    # no alert has a work order without a dispatch
    linked = conn.execute("SELECT count(*) FROM alerts WHERE ticket_id IS NOT NULL").fetchone()[0]
    assert linked == len(rows)


def test_inspections_are_register_rows_of_the_homes(month: tuple[sqlite3.Connection, dict]) -> None:  # fmt: skip
    conn, summary = month
    events = [json.loads(r[0]) for r in conn.execute("SELECT event FROM inspections")]
    assert len(events) == summary["inspections"] > 5
    for e in events:
        assert (e["inspection_kind"] == "安全鉴定") == ("appraisal_grade" in e)
        assert _t(e["inspection_date"]) < END


def test_the_same_seed_writes_the_same_month(bundle: Path, month: tuple[sqlite3.Connection, dict]) -> None:  # fmt: skip
    conn, summary = month
    url = _store(bundle.parent / "again.sqlite")
    sim = prepare(bundle, url, seed=5, timezone_name="Europe/Helsinki")
    again = simulate(sim, days=10, end=END, seed=5).as_dict()
    sim.engine.dispose()
    assert again == summary
    other = sqlite3.connect(bundle.parent / "again.sqlite")
    query = "SELECT ticket_id, action, at FROM transitions ORDER BY id"
    assert other.execute(query).fetchall() == [tuple(r) for r in conn.execute(query)]


def test_a_store_with_real_data_is_refused_and_force_replaces_only_a_simulation(
    bundle: Path,
) -> None:
    path = bundle.parent / "guard.sqlite"
    url = _store(path)
    assert main(["keys", "create", "--db", url, "--name", "desk", "--role", "dispatcher"]) == 0
    sim = prepare(bundle, url, seed=1)
    simulate(sim, days=3, end=END, seed=1)
    sim.engine.dispose()
    with pytest.raises(InputError, match="earlier simulation; pass --force"):
        prepare(bundle, url, seed=1)
    prepare(bundle, url, seed=2, force=True).engine.dispose()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM tickets").fetchone()[0] == 0
    assert conn.execute("SELECT name FROM api_keys").fetchall() == [("desk",)]  # keys stay
    # a ticket taken in by a person: the store holds real data, --force or not
    conn.execute(
        "INSERT INTO tickets (service_code, state, department, routing_rule, urgency, channel, "
        "attributes, outside_city, requested_at, updated_at, due_sign, due_contact, due_resolve) "
        "VALUES ('noise', 'received', 'env', 'r', 'general', 'phone', '{}', 0, '2026-11-01', "
        "'2026-11-01', '2026-11-02', '2026-11-02', '2026-11-08')"
    )  # fmt: skip
    conn.execute("INSERT INTO transitions (ticket_id, action, from_state, to_state, actor, role, at) "
                 "VALUES (1, 'receive', NULL, 'received', 'desk', 'intake', '2026-11-01')")  # fmt: skip
    conn.commit()
    with pytest.raises(InputError, match=r"real operations data \(1 tickets\)"):
        prepare(bundle, url, seed=1, force=True)


def test_bad_input_is_one_line_and_exit_2(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = _store(bundle.parent / "bad.sqlite")
    assert main(["simulate", str(bundle), "--db", url, "--timezone", "Mars/Base"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("cityos: error: --timezone 'Mars/Base': not a time zone; give an IANA name "
                   "such as Asia/Shanghai")  # fmt: skip
    plan = bundle.parent / "plan.toml"
    plan.write_text('[categories.pothole_party]\nshare = 5\nplace = "streets"\n')
    assert main(["simulate", str(bundle), "--db", url, "--plan", str(plan)]) == 2
    err = capsys.readouterr().err
    assert "pothole_party are not services of the catalogue" in err and "Traceback" not in err


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_live_feeds_tickets_readings_and_a_red_alert(
    bundle: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = _store(bundle.parent / "live.sqlite")
    else:
        from tests.pg import fresh_database

        url = fresh_database(request.getfixturevalue("pg_cluster"), "simulate_live")
        assert main(["db", "upgrade", "--db", url, "-q"]) == 0
    sim = prepare(bundle, url, seed=3)
    simulate(sim, days=3, seed=3)
    sim.engine.dispose()
    engine = sqlalchemy.create_engine(url)

    def one(sql: str, **params: object) -> Any:
        with engine.connect() as conn:
            return conn.execute(sqlalchemy.text(sql), params).scalar_one()

    def red_since(t: dt.datetime) -> list[tuple[str, str]]:
        with engine.connect() as conn:
            rows = conn.execute(sqlalchemy.text(
                "SELECT rule_id, max_level FROM alerts WHERE raised_at >= :t"), {"t": t}).all()  # fmt: skip
        return [tuple(r) for r in rows]

    before = one("SELECT count(*) FROM tickets")
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "cityos", "simulate", str(bundle), "--db", url, "--days", "0",
         "--live", "--for", "13", "--speed", "20000", "--seed", "3"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - t0 < 60
    after = one("SELECT count(*) FROM tickets")
    # 7,950 residents × 1.38 ‰ a day × 20,000 / 86,400 s ≈ 2.5 a second: about 30 in 13 s
    assert after - before > 10
    assert one("SELECT count(*) FROM sta_observations WHERE phenomenon_time >= :t", t=started) > 0
    assert ("gas-methane", "red") in red_since(started)
    assert "spike on gas-1 (methane)" in out.stderr
    engine.dispose()


def test_a_month_in_postgresql_is_the_same_month(bundle: Path, pg_cluster: str) -> None:
    """The same seed on PostgreSQL writes what it writes on SQLite; --force replaces it there too."""
    from tests.pg import fresh_database

    url = fresh_database(pg_cluster, "simulate_pg")
    assert main(["db", "upgrade", "--db", url, "-q"]) == 0
    lite = _store(bundle.parent / "pg-twin.sqlite")
    got = []
    for db in (url, lite):
        sim = prepare(bundle, db, seed=9)
        got.append(simulate(sim, days=2, end=END, seed=9).as_dict())
        sim.engine.dispose()
    assert got[0] == got[1] and sum(got[0]["tickets"].values()) > 10
    sim = prepare(bundle, url, seed=9, force=True)
    again = simulate(sim, days=2, end=END, seed=9).as_dict()
    sim.engine.dispose()
    assert again == got[0]
