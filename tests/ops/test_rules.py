"""Deadlines, routing and the workflow table, worked out by hand."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from cityos.errors import ConfigError
from cityos.ops.catalogue import load_services
from cityos.ops.deadlines import add_working_days, load_deadlines
from cityos.ops.routing import load_routing
from cityos.ops.workflow import ACTIONS, CLOSED_STATES, STATES, allowed_actions, may

START = dt.datetime(2026, 9, 30, 10, 0)  # a Wednesday, the day before the National Day holiday


def test_built_in_limits_are_beijings() -> None:
    d = load_deadlines()
    assert d.due("emergency", START).resolve == START + dt.timedelta(hours=2)
    assert d.due("utilities", START).resolve == START + dt.timedelta(hours=24)
    assert d.due("general", START).resolve == dt.datetime(2026, 10, 7, 10, 0)
    assert d.due("complex", START).resolve == dt.datetime(2026, 10, 15, 10, 0)
    assert d.due("general", START).sign == START + dt.timedelta(hours=24)


def test_working_days_skip_weekends_and_holidays(tmp_path: Path) -> None:
    own = tmp_path / "deadlines.toml"
    own.write_text(
        'holidays = ["2026-10-01", "2026-10-02", "2026-10-05", "2026-10-06", "2026-10-07"]\n'
        'workdays = ["2026-10-10"]\n'
        '[urgency.general]\ndays = "working"\nsign_hours = 24\ncontact_hours = 24\nresolve_days = 3\n'
    )
    d = load_deadlines(own)
    # from Wed 30 Sep: Thu 1, Fri 2 holidays; Sat 3, Sun 4 weekend; Mon 5 – Wed 7 holidays;
    # Thu 8 (1), Fri 9 (2), Sat 10 is a make-up working day (3)
    assert d.due("general", START).resolve == dt.datetime(2026, 10, 10, 10, 0)
    assert add_working_days(START, 0.5, d) == START + dt.timedelta(hours=12)


def test_holidays_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "holidays.txt").write_text("# 国庆节\n2026-10-01\n2026-10-02  # Friday\n")
    own = tmp_path / "deadlines.toml"
    own.write_text(
        'holidays_file = "holidays.txt"\n'
        '[urgency.general]\ndays = "working"\nsign_hours = 24\ncontact_hours = 24\nresolve_days = 1\n'
    )
    # from Wed 30 Sep: Thu 1 and Fri 2 are holidays, Sat–Sun the weekend: Mon 5 Oct
    assert load_deadlines(own).due("general", START).resolve == dt.datetime(2026, 10, 5, 10, 0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[urgency.x]\nsign_hours = 1\ncontact_hours = 1\n",
            "give one of resolve_hours or resolve_days",
        ),
        ('[urgency.x]\ndays = "lunar"\nresolve_days = 1\n', "days must be 'calendar' or 'working'"),
        ('holidays = ["1 Oct"]\n', "write dates as YYYY-MM-DD"),
        ("[urgency.general]\nresolve_days = -1\n", "limits must be numbers >= 0"),
    ],
)
def test_bad_deadlines_are_refused(tmp_path: Path, text: str, message: str) -> None:
    own = tmp_path / "d.toml"
    own.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_deadlines(own)


def test_routing_first_match_then_fallback(tmp_path: Path) -> None:
    services = load_services(urgencies=load_deadlines().urgencies).services
    rules = tmp_path / "routing.toml"
    rules.write_text(
        'fallback = "district"\n'
        '[[rule]]\nid = "east-roads"\nservices = ["road_damage"]\nlevel = "community"\nunits = ["C1"]\ndepartment = "east-works"\n'
        '[[rule]]\nid = "local"\nservices = ["road_damage", "garbage"]\ndepartment = "{subdistrict}"\n'
    )
    r = load_routing(rules, services=services)
    road, garbage, noise = services["road_damage"], services["garbage"], services["noise"]
    assert r.route(road, {"community": "C1", "subdistrict": "S1"}).department == "east-works"
    west = r.route(road, {"community": "C2", "subdistrict": "S1"})
    assert (west.department, west.rule, west.fallback) == ("subdistrict:S1", "local", False)
    outside = r.route(garbage, {"community": None, "subdistrict": None})
    assert (outside.department, outside.rule, outside.fallback) == ("district", "fallback", True)
    assert r.route(noise, {"subdistrict": "S1"}).rule == "fallback"
    default = load_routing(services=services)
    assert default.route(noise, {}).department == "environment"
    assert default.route(garbage, {"subdistrict": "S9"}).department == "subdistrict:S9"


def test_routing_by_department_areas(tmp_path: Path) -> None:
    import geopandas as gpd
    import shapely

    services = load_services(urgencies=load_deadlines().urgencies).services
    gpd.GeoDataFrame(
        {"department": ["north-works", "south-works"]},
        geometry=[shapely.box(116.0, 40.0, 117.0, 41.0), shapely.box(116.0, 39.0, 117.0, 40.0)],
        crs="EPSG:4326",
    ).to_file(tmp_path / "areas.geojson")
    (tmp_path / "routing.toml").write_text(
        'fallback = "district"\n'
        '[[rule]]\nid = "works-areas"\nservices = ["road_damage"]\nareas = "areas.geojson"\ndepartment = "{area}"\n'
    )
    r = load_routing(tmp_path / "routing.toml", services=services)
    road = services["road_damage"]
    assert r.route(road, {}, (116.4, 40.5)).department == "north-works"
    assert r.route(road, {}, (116.4, 39.5)).department == "south-works"
    outside = r.route(road, {}, (110.0, 30.0))
    assert (outside.department, outside.fallback) == ("district", True)


def test_routing_refuses_unknown_services(tmp_path: Path) -> None:
    services = load_services(urgencies=load_deadlines().urgencies).services
    rules = tmp_path / "routing.toml"
    rules.write_text(
        'fallback = "d"\n[[rule]]\nid = "x"\nservices = ["pothole"]\ndepartment = "a"\n'
    )
    with pytest.raises(ConfigError, match=r"rule x: unknown services \['pothole'\]"):
        load_routing(rules, services=services)


def test_workflow_table_reaches_every_state_and_closes() -> None:
    reached = {"received"}
    frontier = ["received"]
    while frontier:
        state = frontier.pop()
        for name in allowed_actions(state):
            target = ACTIONS[name].target
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(STATES)
    assert all(not allowed_actions(s) for s in CLOSED_STATES)  # closed is closed
    assert allowed_actions("callback") == [
        "close_resolved",
        "close_unresolved",
        "reissue",
        "merge",
        "cancel",
    ]


@pytest.mark.parametrize(
    ("role", "action", "department", "ok"),
    [
        ("department:municipal", "sign", "municipal", True),
        ("department:water", "sign", "municipal", False),
        ("intake", "sign", "municipal", False),
        ("dispatcher", "dispatch", "municipal", True),
        ("department:municipal", "approve_extension", "municipal", False),
        ("admin", "approve_extension", "municipal", True),
        ("intake", "call_back", "municipal", True),
    ],
)
def test_roles(role: str, action: str, department: str, ok: bool) -> None:
    assert may(role, ACTIONS[action], department) is ok
