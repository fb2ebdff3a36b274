"""Facility siting on a hand-built toy city, where every number is worked out by hand, and on
Helsinki, where the scenario's before/after must equal a fresh health check.

y=0   ==================================== residential street, x 0..1000 m (nodes at 0, 500, 1000)
      K(100,10)          |                     K: the only kindergarten
y=-200                   | footway (500, 0)–(500, −200)
buildings B1..B10: 10×10 m, 4 storeys (10 residents each), centred at x = 50, 150, …, 950, y = 25;
communities C1 = x 0..500, C2 = x 500..1000. Walking distance from B_x to a point (c, 10):
25 (access leg) + |x − c| + 10. Kindergarten 300 m: B1–B4 covered (B5 is 335 m away) → 40 %.
Non-residential stock south of the street: a warehouse at x=700, a disused shop at x=300 and an
office listed in the idle-property register at x=900; an ordinary office (in use) at x=100.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import cityos
from cityos.cli import main
from cityos.errors import InputError
from cityos.renewal import plan_sites
from cityos.renewal.plan import PLAN_FILES, SITE_COLUMNS
from tests.conftest import (
    TOY_CRS,
    TOY_ORIGIN,
    ToyOsm,
    expect_warnings,
    import_expecting,
    toy_communities,
)

CANDIDATE_X = (250.0, 600.0, 850.0)


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> cityos.Bundle:
    root = tmp_path_factory.mktemp("sitecity")
    t = ToyOsm()
    a, m, b = t.node(0, 0), t.node(500, 0), t.node(1000, 0)
    t.way([a, m, b], highway="residential")
    t.way([m, t.node(500, -200)], highway="footway")
    for i in range(10):
        x = 50 + 100 * i
        t.ring(x - 5, 20, x + 5, 30, building="apartments", building__levels="4", name=f"B{i + 1}")
    t.ring(690, -40, 710, -20, building="warehouse", name="W")
    t.ring(290, -40, 310, -20, building="yes", **{"disused__shop": "clothes"}, name="D")
    t.ring(890, -40, 910, -20, building="yes", name="R")
    t.ring(90, -40, 110, -20, building="yes", name="O")
    t.node(100, 10, amenity="kindergarten", name="阳光幼儿园")
    osm = t.write(root / "toy.osm")
    units_path = toy_communities(root / "communities.geojson")
    probe = import_expecting(root / "probe", osm=osm, measure_crs=TOY_CRS)
    ids = dict(zip(probe.buildings["name"], probe.buildings["building_id"], strict=True))
    register = root / "idle.csv"
    pd.DataFrame({"building_id": [ids["R"]], "note": ["闲置办公楼"]}).to_csv(register, index=False)
    return import_expecting(
        root / "bundle", osm=osm, measure_crs=TOY_CRS, units=[("community", units_path)],
        registers={"idle_property": register},
    )  # fmt: skip


@pytest.fixture(scope="module")
def candidates_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pts = gpd.GeoSeries(
        [shapely.Point(x + TOY_ORIGIN[0], 10 + TOY_ORIGIN[1]) for x in CANDIDATE_X], crs=TOY_CRS
    ).to_crs(4326)
    path = tmp_path_factory.mktemp("cands") / "sites.csv"
    pd.DataFrame(
        {"id": ["P250", "P600", "P850"], "name": ["甲", "乙", "丙"], "lon": pts.x, "lat": pts.y}
    ).to_csv(path, index=False)
    return path


def city(plan: object, indicator: str = "siting_coverage") -> pd.Series:
    t = plan.before_after  # type: ignore[attr-defined]
    return t[(t["indicator_id"] == indicator) & (t["level"] == "city")].iloc[0]


@pytest.mark.parametrize(
    ("k", "method", "per_site", "after"),
    [
        # P600 reaches B5–B9 (|x − 600| ≤ 265): 50 residents; P850 B7–B10; P250 only B5
        (1, "exact", {"P600": 50.0}, 90.0),
        (1, "greedy", {"P600": 50.0}, 90.0),
        # 6 buildings (P250+P850 5, P250+P600 5); B8, B9 are nearer P850, so each site gets 3
        (2, "exact", {"P600": 30.0, "P850": 30.0}, 100.0),
        (2, "greedy", {"P600": 30.0, "P850": 30.0}, 100.0),
    ],
)
def test_cover_by_hand(
    toy: cityos.Bundle,
    candidates_csv: Path,
    k: int,
    method: str,
    per_site: dict[str, float],
    after: float,
) -> None:
    plan = plan_sites(
        toy, category="kindergarten", add=k, radius=300, candidates=candidates_csv,
        solver=method, systems=["mohurd-2024"],  # type: ignore[arg-type]
    )  # fmt: skip
    assert sorted(plan.sites["candidate_id"]) == sorted(per_site)
    s = plan.summary
    assert s["before_pct"] == pytest.approx(40.0, abs=0.01)
    assert s["after_pct"] == pytest.approx(after, abs=0.01)
    assert s["added_population"] == pytest.approx((after - 40.0), rel=1e-3)  # 100 residents
    assert s["added_population"] == pytest.approx(s["covered_new_residents"], rel=1e-9)
    assert s["solver"].startswith(method) and s["gap"] == pytest.approx(0.0, abs=1e-9)
    # each site lists the residents it newly covers; together the city total
    got = dict(zip(plan.sites["candidate_id"], plan.sites["residents_new"], strict=True))
    assert got == pytest.approx(per_site, rel=1e-3)
    assert plan.sites["residents_new"].sum() == pytest.approx(s["added_population"], rel=1e-9)
    # the kindergarten proxy of MOHURD: C2 lacked one (0 % covered), now 80 % (B6–B9) does not
    kg = plan.before_after
    c2 = kg[(kg["indicator_id"] == "community_kindergarten_substandard") & (kg["unit_id"] == "C2")]
    assert (c2["before"].iloc[0], c2["after"].iloc[0]) == (1.0, 0.0)


def test_straight_line_distance(toy: cityos.Bundle, candidates_csv: Path) -> None:
    # √((x − c)² + 15²) ≤ 300: the kindergarten reaches B1–B4, P600 then B5–B9 (B10 is 350 m off)
    plan = plan_sites(
        toy, category="kindergarten", add=1, radius=300, candidates=candidates_csv,
        distance="euclidean", systems=[],
    )  # fmt: skip
    assert plan.sites["candidate_id"].tolist() == ["P600"]
    assert (plan.summary["before_pct"], plan.summary["after_pct"]) == pytest.approx(
        (40.0, 90.0), abs=0.01
    )
    assert plan.summary["distance"] == "euclidean"


def test_candidates_far_outside_the_city_warn(toy: cityos.Bundle, tmp_path: Path) -> None:
    far = gpd.GeoSeries(
        [shapely.Point(TOY_ORIGIN[0] + 600, TOY_ORIGIN[1] + 10),
         shapely.Point(TOY_ORIGIN[0] + 9000, TOY_ORIGIN[1] + 9000)], crs=TOY_CRS,
    ).to_crs(4326)  # fmt: skip
    path = tmp_path / "far.csv"
    pd.DataFrame({"lon": far.x, "lat": far.y}).to_csv(path, index=False)
    with expect_warnings(
        "1 of 2 candidate sites lie more than",
        "1 candidate sites are farther than 200 m from every walkable street",
    ):
        plan = plan_sites(
            toy, category="kindergarten", add=1, radius=300, candidates=path, systems=[]
        )
    assert plan.sites["candidate_id"].tolist() == ["far:1"]  # ids from the file name and row


def test_network_candidates_pick_the_middle_node(toy: cityos.Bundle) -> None:
    # node (500, 0) reaches B5–B8, not yet covered (25 + |x − 500| ≤ 300); node (1000, 0) only
    # B8–B10, the footway's end (500, −200) B5–B6
    steps: list[float] = []
    plan = plan_sites(
        toy, category="kindergarten", add=1, radius=300, systems=[], progress=steps.append
    )
    assert len(steps) == len(plan.summary["timings_s"]) == 5  # the progress bar's stages
    assert plan.sites["candidate_source"].tolist() == ["network"]
    assert plan.summary["candidates"]["count"] == 4
    xy = plan.sites.geometry.to_crs(TOY_CRS).translate(-TOY_ORIGIN[0], -TOY_ORIGIN[1])
    assert (round(xy.x.iloc[0]), round(xy.y.iloc[0])) == (500, 0)
    assert plan.summary["after_pct"] == pytest.approx(80.0, abs=0.01)


def test_stock_candidates(toy: cityos.Bundle) -> None:
    # the warehouse, the disused shop and the registered idle office; not the office in use
    plan = plan_sites(
        toy, category="kindergarten", add=3, radius=300, candidates="stock", systems=[]
    )
    names = dict(zip(toy.buildings["building_id"], toy.buildings["name"], strict=True))
    assert sorted(names[c] for c in plan.sites["candidate_id"]) == ["D", "R", "W"]
    reasons = dict(
        zip((names[c] for c in plan.sites["candidate_id"]), plan.sites["reason"], strict=True)
    )
    assert reasons == {
        "W": "building=warehouse",
        "D": "vacancy=disused",
        "R": "register idle_property",
    }
    with pytest.raises(InputError, match="only 3 candidates"):
        plan_sites(toy, category="kindergarten", add=4, radius=300, candidates="stock", systems=[])


def test_building_polygons_from_a_file_equal_stock(toy: cityos.Bundle, tmp_path: Path) -> None:
    stock = toy.buildings[toy.buildings["name"].isin(["W", "D", "R"])]
    path = tmp_path / "闲置楼宇.gpkg"
    stock[["building_id", "name", "geometry"]].to_file(path)
    kwargs = {"category": "kindergarten", "add": 2, "radius": 300.0, "systems": []}
    from_file = plan_sites(toy, candidates=path, **kwargs)  # type: ignore[arg-type]
    from_stock = plan_sites(toy, candidates="stock", **kwargs)  # type: ignore[arg-type]
    # 25 + |x − c| + 30 ≤ 300: W reaches B6–B9, R B7–B10, D only B5 — any two add 5 buildings
    assert from_file.summary["added_population"] == pytest.approx(50.0, rel=1e-3)
    assert from_file.summary["after_pct"] == pytest.approx(from_stock.summary["after_pct"])
    assert set(from_file.sites["candidate_source"]) == {"闲置楼宇.gpkg"}
    assert set(from_file.sites["candidate_id"]) <= set(stock["building_id"])


def test_distance_objective_equals_brute_force(toy: cityos.Bundle, candidates_csv: Path) -> None:
    xs = 50.0 + 100.0 * np.arange(10)
    now = np.minimum(35 + np.abs(xs - 100), 1000.0)
    totals = {c: float((10 * np.minimum(now, 35 + np.abs(xs - c))).sum()) for c in CANDIDATE_X}
    best = min(totals, key=totals.__getitem__)
    for method in ("exact", "greedy"):
        plan = plan_sites(
            toy, category="kindergarten", add=1, radius=300, objective="distance",
            candidates=candidates_csv, solver=method, systems=[],  # type: ignore[arg-type]
        )  # fmt: skip
        assert plan.sites["candidate_id"].tolist() == [f"P{best:.0f}"]
        assert plan.summary["person_m_after"] == pytest.approx(totals[best], rel=1e-4)
        assert plan.summary["person_m_before"] == pytest.approx(float((10 * now).sum()), rel=1e-4)
        assert plan.summary["mean_distance_after_m"] == pytest.approx(totals[best] / 100, rel=1e-4)
        assert "mean walk to the nearest kindergarten" in plan.summary["headline"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--category", "kindergarten", "--add", "2", "--radius", "1000"], "no demand"),
        (["--category", "opera", "--add", "1", "--radius", "300"], "unknown facility category"),
        (["--category", "kindergarten", "--radius", "300"], "--add K"),
        (
            [
                "--category",
                "kindergarten",
                "--add",
                "1",
                "--radius",
                "300",
                "--candidates",
                "nowhere.csv",
            ],
            "no such file",
        ),
        (["--category", "kindergarten", "--add", "1", "--radius", "-5"], "not in the range x>0"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    toy: cityos.Bundle,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    out = tmp_path / "plan"
    assert main(["site", str(toy.path), *args, "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cityos: error:") and message in err and "\n" not in err
    assert not out.exists() and not list(tmp_path.glob(".plan*"))


def test_no_candidates_is_an_error(tmp_path: Path, candidates_csv: Path) -> None:
    t = ToyOsm()
    t.way([t.node(0, 0), t.node(400, 0)], highway="residential")
    t.ring(45, 20, 55, 30, building="apartments", building__levels="4")
    bundle = import_expecting(tmp_path / "b", osm=t.write(tmp_path / "t.osm"), measure_crs=TOY_CRS)
    with pytest.raises(InputError, match="no candidate sites"):
        plan_sites(bundle, category="kindergarten", add=1, radius=300, candidates="stock")


def test_cli_writes_plan_and_existing_only(
    toy: cityos.Bundle, candidates_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plan"
    args = ["site", str(toy.path), "--category", "kindergarten", "--add", "1", "--radius", "300",
            "--candidates", str(candidates_csv), "--system", "mohurd-2024", "--out", str(out), "-q"]  # fmt: skip
    assert main(args) == 0
    assert "kindergarten 300 m coverage 40.0% → 90.0%, 50 more residents covered" in (
        capsys.readouterr().out
    )
    assert sorted(p.name for p in out.iterdir()) == sorted([*PLAN_FILES, "bundle"])
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    for key in ("before_pct", "after_pct", "added_population", "solver", "gap"):
        assert key in summary
    sites = pd.read_csv(out / "sites.csv", encoding="utf-8-sig")
    assert tuple(sites.columns) == SITE_COLUMNS and sites["candidate_id"].tolist() == ["P600"]
    layer = gpd.read_file(out / "sites.gpkg")
    assert len(layer) == 1 and layer.crs.to_epsg() == 4326
    scenario = cityos.read_bundle(out / "bundle")
    added = scenario.facilities[scenario.facilities["source"] == "scenario"]
    assert added["category"].tolist() == ["kindergarten"] and len(scenario.facilities) == 2
    # existing-only: the current kindergarten serves B1–B4
    out2 = tmp_path / "now"
    assert main(["site", str(toy.path), "--category", "kindergarten", "--radius", "300",
                 "--existing-only", "--system", "mohurd-2024", "--out", str(out2), "-q"]) == 0  # fmt: skip
    now = pd.read_csv(out2 / "sites.csv", encoding="utf-8-sig")
    assert now["residents_nearer"].tolist() == pytest.approx([40.0], rel=1e-3)
    assert json.loads((out2 / "summary.json").read_text("utf-8"))["after_pct"] == pytest.approx(
        40.0, rel=1e-3
    )
    assert not (out2 / "bundle").exists()


def _fresh(results: Path) -> pd.DataFrame:
    frame = pd.read_parquet(results / "indicators.parquet")
    return frame.set_index(["indicator_id", "level", "unit_id"])


def test_helsinki_before_after_equals_a_fresh_checkup(tmp_path: Path) -> None:
    """Real OSM: three supermarkets in under-used stock; every affected indicator of the plan
    equals `cityos checkup` run afresh on the original and on the scenario bundle."""
    bundle = tmp_path / "helsinki"
    assert main(["import", "--demo", "helsinki", "--out", str(bundle), "-q"]) == 0
    plan_dir = tmp_path / "plan"
    assert main(["site", str(bundle), "--category", "supermarket", "--add", "3", "--radius", "300",
                 "--candidates", "stock", "--system", "complete-community",
                 "--out", str(plan_dir), "-q"]) == 0  # fmt: skip
    table = pd.read_csv(plan_dir / "before_after.csv", encoding="utf-8-sig")
    summary = json.loads((plan_dir / "summary.json").read_text("utf-8"))
    assert summary["after_pct"] > summary["before_pct"] + 5  # three shops change the picture
    system = str(plan_dir / "siting-system.toml")
    for which, folder in (("before", bundle), ("after", plan_dir / "bundle")):
        res = tmp_path / f"res-{which}"
        assert main(["checkup", str(folder), "--system", system, "--system",
                     "complete-community", "--out", str(res), "-q"]) == 0  # fmt: skip
        fresh = _fresh(res)
        keyed = table.set_index(["indicator_id", "level", "unit_id"]).sort_index()
        got = keyed[which]
        expect = fresh.loc[got.index, "value"]
        assert np.allclose(got.to_numpy(float), expect.to_numpy(float), equal_nan=True, atol=1e-9)
        assert set(got.index.get_level_values(0)) == {
            "siting_coverage",
            "cc_5_10_minute_set",
            "cc_15_minute_set",
            "pop_supermarket_500m",
        }
    city_after = keyed.loc[("siting_coverage", "city")]["after"].iloc[0]
    assert summary["after_pct"] == pytest.approx(city_after)
