"""The register of waterlogging points: read with Chinese headers, checked (every problem at
once), placed in the city's units, linked to depth sensors within 100 m, and given the nearest
pump-truck staging point along the toy street, not its footway (worked out by hand)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cityos.cli import main
from tests.web.conftest import Server, toy_point
from tests.web.test_alerts import stream_at


def test_points_register(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p1, p2 = toy_point(100, 10), toy_point(900, 10)
    points = tmp_path / "points.csv"
    points.write_text(
        "编号,名称,类型,责任单位,责任人,黄色预警水深,红色预警水深,经度,纬度\n"
        f"P1,东街下穿,下穿通道,区排水所,王工,15,27,{p1[0]},{p1[1]}\n"
        f"P2,西街路口,road,区排水所,李工,,,{p2[0]},{p2[1]}\n", encoding="utf-8")  # fmt: skip
    s1, s2 = toy_point(300, -20), toy_point(520, 150)
    staging = tmp_path / "staging.csv"
    staging.write_text(f"id,lon,lat\nS1,{s1[0]},{s1[1]}\nS2,{s2[0]},{s2[1]}\n")
    gauge = stream_at(server, "P1 gauge", "water_depth", "cm", toy_point(130, 10))  # 30 m from P1
    out = tmp_path / "register.csv"
    assert main(["alerts", "points", "--points", str(points), "--bundle", str(server.bundle),
                 "--staging", str(staging), "--db", server.db, "--out", str(out), "-q"]) == 0  # fmt: skip
    reg = pd.read_csv(out, encoding="utf-8-sig", dtype={"sensors": str}).set_index("id")
    assert reg.loc["P1", "kind"] == "underpass" and reg.loc["P1", "community"] == "C1"
    assert reg.loc["P2", "community"] == "C2" and pd.isna(reg.loc["P2", "red_cm"])
    # pump trucks keep to the street (y 0), not the footway north from x 500 to y 200:
    # P1 (100, 10) to S1 (300, −20): 10 m to the street, 200 m along it, 20 m to S1 = 230 m
    # (to S2 (520, 150): 10 + 420 + 150 = 580 m); P2 (900, 10) to S2: 10 + 380 + 150 = 540 m
    # (on foot it would be 10 + 400 along the street + 150 up the footway + 20 = 580 m), to S1:
    # 10 + 600 + 20 = 630 m
    assert reg.loc["P1", "nearest_staging"] == "S1"
    assert reg.loc["P1", "staging_distance_m"] == pytest.approx(230.0, abs=0.5)
    assert reg.loc["P2", "nearest_staging"] == "S2"
    assert reg.loc["P2", "staging_distance_m"] == pytest.approx(540.0, abs=0.5)
    assert reg.loc["P1", "sensors"] == str(gauge) and pd.isna(reg.loc["P2", "sensors"])


def test_a_bad_points_file_names_every_problem(server: Server, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name,kind,responsible_unit,responsible_person,yellow_cm,red_cm,lon,lat\n"
                   "A,a,pond,u,p,20,10,116.4,39.9\nA,b,road,u,p,deep,,116.4,\n")  # fmt: skip
    assert main(["alerts", "points", "--points", str(bad), "--bundle", str(server.bundle),
                 "--out", str(tmp_path / "o.csv")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    for part in ("line 2: kind 'pond'", "line 3: yellow_cm 'deep' is not a depth", "line 2: red_cm must be above yellow_cm",
                 "line 3: no usable lon/lat", "repeated ids ['A']"):  # fmt: skip
        assert part in err
