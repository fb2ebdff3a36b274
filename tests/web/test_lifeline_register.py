"""From the sensors to the health check: readings posted to a live server raise alerts, `cityos
alerts register` counts them per community, and `cityos checkup --system lifelines` reports
them beside the other indicators (worked out by hand)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from cityos.cli import main
from tests.conftest import expect_warnings
from tests.web.conftest import Server, toy_point
from tests.web.test_alerts import read_at, stream_at


def test_alerts_become_health_check_indicators(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    gas = stream_at(server, "R-1", "methane", "%LEL", toy_point(100, 0))  # in C1
    read_at(server, gas, now - dt.timedelta(minutes=2), 60.0)  # red at once
    read_at(server, gas, now - dt.timedelta(minutes=1), 120.0)  # beyond the detector: a device flag
    stream_at(server, "R-2", "methane", "%LEL", toy_point(120, 0))  # in C1, quiet
    stream_at(server, "R-3", "water_depth", "cm", toy_point(800, 0))  # in C2, quiet
    reg = tmp_path / "lifeline_units.csv"
    day = now.date()
    points = tmp_path / "points.csv"
    (a, b), (c, d) = toy_point(100, 50), toy_point(300, 50)
    points.write_text("id,name,kind,responsible_unit,responsible_person,lon,lat\n"
                      f"P1,x,underpass,u,p,{a},{b}\nP2,y,road,u,p,{c},{d}\n")  # fmt: skip
    assert main(["alerts", "register", "--db", server.db, "--bundle", str(server.bundle),
                 "--from", str(day - dt.timedelta(days=1)), "--to", str(day + dt.timedelta(days=1)),
                 "--points", str(points), "--out", str(reg), "-q"]) == 0  # fmt: skip
    table = pd.read_csv(reg, encoding="utf-8-sig").set_index("unit_id")
    assert table.loc[
        "C1", ["devices", "devices_offline", "hazard_alerts", "alerts_red_orange", "alerts:gas"]
    ].tolist() == [2, 1, 1, 1, 1]
    assert table.loc["C2", ["devices", "hazard_alerts"]].tolist() == [1, 0]
    assert table["waterlogging_points"].to_dict() == {"C1": 2, "C2": 0}
    out = tmp_path / "check"
    with expect_warnings():
        code = main(["checkup", str(server.bundle), "--system", "lifelines", "--register",
                     f"lifelines={reg}", "--out", str(out), "-q"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    ind = pd.read_parquet(out / "indicators.parquet")
    community = ind[ind["level"] == "community"].set_index(["indicator_id", "unit_id"])
    assert community.loc[("lifeline_hazard_alerts", "C1"), "value"] == 1
    assert community.loc[("lifeline_hazard_alerts", "C2"), "value"] == 0
    assert community.loc[("lifeline_devices_offline_share", "C1"), "value"] == pytest.approx(50.0)
    assert community.loc[("lifeline_devices_offline_share", "C2"), "value"] == pytest.approx(0.0)
    assert community.loc[("lifeline_waterlogging_points", "C1"), "value"] == 2
