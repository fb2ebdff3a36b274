"""OSM reading: a hand-drawn toy city in metres (every count, length and area worked out by hand)
and the real Helsinki and Kouvola extracts checked against independent counts."""

from __future__ import annotations

import itertools
from pathlib import Path

import geopandas as gpd
import numpy as np
import osmium
import pandas as pd
import pytest
import shapely

import cityos
from cityos.classify import FacilityRules, load_osm_tables
from cityos.sources.osm import read_osm
from tests.conftest import TOY_CRS, TOY_ORIGIN, ToyOsm, import_expecting


@pytest.fixture(scope="module")
def toy_bundle(tmp_path_factory: pytest.TempPathFactory) -> cityos.Bundle:
    t = ToyOsm()
    # streets: a 200 m east-west residential street crossed at x=100 by a 100 m footway
    w, m, e = t.node(0, 0), t.node(100, 0), t.node(200, 0)
    s = t.node(100, -100)
    t.way([w, m, e], highway="residential", name="长安街")
    t.way([m, s], highway="footway")
    # excluded: private service road, motorway, cycleway without foot access
    p1, p2 = t.node(200, 0 + 0.0), t.node(200, 50)
    t.way([e, p2], highway="service", access="private")
    t.way([t.node(0, 300), t.node(300, 300)], highway="motorway")
    t.way([s, t.node(200, -100)], highway="cycleway")
    # included through foot=yes: a cycleway and a private road open to pedestrians
    c_end = t.node(0, -100)
    t.way([s, c_end], highway="cycleway", foot="yes")
    t.way([c_end, w], highway="residential", access="private", foot="yes")
    del p1
    # buildings: a 100x100 m multipolygon with a 20x20 m hole, 5 levels from "3;5"
    outer = t.ring(300, 0, 400, 100)
    inner = t.ring(340, 40, 360, 60)
    t.relation([("way", outer, "outer"), ("way", inner, "inner")], type="multipolygon",
               building="apartments", building__levels="3;5")  # fmt: skip
    t.ring(500, 0, 520, 10, building="yes", height="12 m")  # 200 m², 4 levels from height
    t.ring(600, 0, 610, 10, building="commercial")  # 100 m², default levels
    t.ring(700, 0, 710, 10, building="yes", building__levels="abc")  # unparsable -> default
    t.ring(800, 0, 810, 10, building="no")  # dropped
    # out of use (urban-renewal stock): a lifecycle prefix, a flag, and vacant=no (in use)
    t.ring(900, 0, 910, 10, building="retail", **{"disused__shop": "convenience"})
    t.ring(920, 0, 930, 10, building="industrial", abandoned="yes")
    t.ring(940, 0, 950, 10, building="office", vacant="no")
    # a park of two separate 50x50 m parts (one multipolygon), and a private garden (not public)
    a1, a2 = t.ring(0, 400, 50, 450), t.ring(100, 400, 150, 450)
    t.relation(
        [("way", a1, "outer"), ("way", a2, "outer")],
        type="multipolygon",
        leisure="park",
        name="双园公园",
    )
    t.ring(200, 400, 230, 430, leisure="garden", access="private")
    # facilities
    t.node(10, 10, amenity="kindergarten", name="阳光幼儿园")
    t.node(20, 10, amenity="school", name="北京市第一九年一贯制学校")
    t.ring(
        0, 600, 100, 700, amenity="school", **{"isced__level": "1"}, name="实验小学"
    )  # 1 ha polygon
    t.node(30, 10, highway="bus_stop", name="长安街站")
    t.node(40, 10, railway="station", station="subway", name="地铁站")
    t.node(50, 10, name="红星菜市场")  # no tag, Chinese name only
    t.way(
        [t.node(0, 800), t.node(100, 800)], highway="residential", name="幼儿园路"
    )  # a road, not a kindergarten
    t.node(60, 10, amenity="toilets", access="customers")  # not public
    # an administrative boundary relation (subdistrict) of 1 km x 1 km
    b = t.ring(-100, -200, 900, 800)
    t.relation(
        [("way", b, "outer")],
        type="boundary",
        boundary="administrative",
        admin_level="8",
        name="某街道",
    )
    # residential land
    t.ring(300, -200, 500, -100, landuse="residential")
    path = t.write(tmp_path_factory.mktemp("toy") / "toy.osm")
    return import_expecting(
        tmp_path_factory.mktemp("out") / "bundle", osm=path, measure_crs=TOY_CRS
    )


def _in_toy_metres(frame: gpd.GeoDataFrame) -> gpd.GeoSeries:
    return frame.geometry.to_crs(TOY_CRS).translate(-TOY_ORIGIN[0], -TOY_ORIGIN[1])


def test_toy_walk_network_splits_at_intersections(toy_bundle: cityos.Bundle) -> None:
    edges = toy_bundle.walk_edges
    # residential street split at the footway: 2 edges; footway 1; cycleway(foot=yes) 1;
    # private+foot 1; 幼儿园路 (an isolated street) 1
    assert len(edges) == 6
    assert edges["length_m"].to_numpy() == pytest.approx([100.0] * 6, abs=0.02)  # OSM stores 1e-7°
    assert set(edges["highway"]) == {"residential", "footway", "cycleway"}
    assert len(toy_bundle.walk_nodes) == 7  # w, m, e, s, c_end and the two ends of 幼儿园路
    degree = np.bincount(np.concatenate([edges["u"], edges["v"]]))
    assert degree.max() == 3  # the crossing
    assert set(edges.loc[edges["name"].notna(), "name"]) == {"长安街", "幼儿园路"}


def test_toy_buildings_multipolygon_hole_levels(toy_bundle: cityos.Bundle) -> None:
    b = toy_bundle.buildings.set_index("building_id")
    assert len(b) == 7  # building=no dropped
    mp = b.loc["osm:r5000"]
    assert mp["footprint_m2"] == pytest.approx(100 * 100 - 20 * 20, rel=5e-4)  # 1e-7° OSM precision
    assert (mp["levels"], mp["levels_source"], mp["use"]) == (5.0, "tag", "residential")
    assert mp["floor_area_m2"] == pytest.approx(9600 * 5, rel=5e-4)  # 1e-7° OSM precision
    tall = b[b["height_m"].notna()].iloc[0]
    assert (tall["levels"], tall["levels_source"], tall["height_m"]) == (4.0, "height", 12.0)
    defaults = b[b["levels_source"] == "default"]
    assert len(defaults) == 5 and set(defaults["levels"]) == {cityos.importer.DEFAULT_LEVELS}
    assert set(b["use"]) == {"residential", "unknown", "non_residential"}


def test_toy_buildings_out_of_use(toy_bundle: cityos.Bundle) -> None:
    b = toy_bundle.buildings
    got = dict(zip(b["building"], b["vacancy"], strict=True))
    assert (got["retail"], got["industrial"]) == ("disused", "abandoned")
    assert pd.isna(got["office"])
    assert b["vacancy"].notna().sum() == 2


def test_toy_green_spaces_two_outers_and_private_garden(toy_bundle: cityos.Bundle) -> None:
    g = toy_bundle.green_spaces
    assert list(g["name"]) == ["双园公园"]
    assert g.geometry.iloc[0].geom_type == "MultiPolygon"
    assert g["area_m2"].iloc[0] == pytest.approx(2 * 50 * 50, rel=5e-4)  # 1e-7° OSM precision


def test_toy_facilities_categories_points_and_area(toy_bundle: cityos.Bundle) -> None:
    f = toy_bundle.facilities
    by_name = f.groupby("name")["category"].apply(set).to_dict()
    assert by_name["阳光幼儿园"] == {"kindergarten"}
    assert by_name["北京市第一九年一贯制学校"] == {"primary_school", "middle_school"}
    assert by_name["实验小学"] == {"primary_school"}
    assert by_name["红星菜市场"] == {"market"}
    assert "幼儿园路" not in by_name
    assert "toilets" not in set(f["category"])
    transit = f.set_index("category")["transit"].to_dict()
    assert (transit["bus_stop"], transit["rail_station"]) == ("low", "high")
    school = f[f["name"] == "实验小学"].iloc[0]
    assert school["area_m2"] == pytest.approx(100 * 100, rel=5e-4)  # 1e-7° OSM precision
    pt = _in_toy_metres(f[f["name"] == "实验小学"]).iloc[0]
    assert shapely.box(0, 600, 100, 700).contains(pt)
    assert f["facility_id"].is_unique
    assert (f["rule"] == "primary_school.tag").sum() == 1


def test_toy_admin_units_and_residential_land(toy_bundle: cityos.Bundle) -> None:
    u = toy_bundle.units
    assert list(u["name"]) == ["某街道"] and list(u["admin_level"]) == [8.0]
    assert _in_toy_metres(u).area.iloc[0] == pytest.approx(
        1000 * 1000, rel=5e-4
    )  # 1e-7° OSM precision
    assert toy_bundle.residential_land["area_m2"].iloc[0] == pytest.approx(
        200 * 100, rel=5e-4
    )  # 1e-7° OSM precision


def test_toy_manifest_dates_and_crs(toy_bundle: cityos.Bundle) -> None:
    m = toy_bundle.manifest
    assert m["crs"] == TOY_CRS and m["crs_source"] == "given"
    assert (m["as_of"], m["as_of_source"]) == ("2025-06-30", "newest OSM object")
    assert m["facility_categories"]["primary_school"] == 2


# --- real extracts, checked against counts made independently with a plain osmium handler ----


class _Counter(osmium.SimpleHandler):  # type: ignore[misc]
    """Independent tallies over the raw file: no cityos code involved."""

    def __init__(self) -> None:
        super().__init__()
        self.complete_building_ways: set[str] = set()
        self.bus_stop_nodes = 0
        self.walk_length_m = 0.0
        self.geod = __import__("pyproj").Geod(ellps="WGS84")

    def node(self, n: osmium.osm.Node) -> None:
        if n.tags.get("highway") == "bus_stop":
            self.bus_stop_nodes += 1

    def way(self, w: osmium.osm.Way) -> None:
        tags = w.tags
        locs = [nd.location for nd in w.nodes]
        building = tags.get("building") not in (None, "no", "entrance") and w.is_closed()
        if building and all(loc.valid() for loc in locs) and len(locs) >= 4:
            self.complete_building_ways.add(f"osm:w{w.id}")
        hw = tags.get("highway")
        walkable = hw in {"footway", "path", "pedestrian", "steps", "residential", "living_street", "service",
                          "unclassified", "tertiary", "secondary", "primary", "track", "corridor", "trunk",
                          "tertiary_link", "secondary_link", "primary_link", "trunk_link", "bridleway", "road"}  # fmt: skip
        if hw in {"cycleway", "motorway", "motorway_link", "busway"}:
            walkable = tags.get("foot") in {"yes", "designated", "permissive", "official"}
        elif tags.get("foot") in {"yes", "designated", "permissive", "official"}:
            pass
        elif tags.get("access") in {"no", "private"} or tags.get("service") == "private":
            walkable = False
        if (
            tags.get("foot") in {"no", "private", "use_sidepath"}
            or tags.get("area") == "yes"
            or tags.get("indoor") == "yes"
        ):
            walkable = False
        if walkable:
            for a, b in itertools.pairwise(locs):
                if a.valid() and b.valid():
                    self.walk_length_m += self.geod.inv(a.lon, a.lat, b.lon, b.lat)[2]


@pytest.fixture(scope="module", params=["helsinki", "kouvola"])
def real(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[cityos.Bundle, _Counter]:
    path = cityos.demo_osm_path(request.param)
    counter = _Counter()
    counter.apply_file(str(path), locations=True)
    bundle = import_expecting(tmp_path_factory.mktemp(request.param) / "b", osm=path)
    return bundle, counter


def test_real_building_ways_match_independent_count(real: tuple[cityos.Bundle, _Counter]) -> None:
    bundle, counter = real
    ours = {b for b in bundle.buildings["building_id"] if b.startswith("osm:w")}
    assert ours == counter.complete_building_ways
    assert len(ours) > 300


def test_real_walk_length_matches_geodesic_sum(real: tuple[cityos.Bundle, _Counter]) -> None:
    bundle, counter = real
    # UTM lengths differ from geodesic ones by the zone's scale factor (< 0.1 % here)
    assert bundle.walk_edges["length_m"].sum() == pytest.approx(counter.walk_length_m, rel=1e-3)


def test_real_bus_stops_match(real: tuple[cityos.Bundle, _Counter]) -> None:
    bundle, counter = real
    assert (bundle.facilities["category"] == "bus_stop").sum() == counter.bus_stop_nodes > 0


def test_real_walk_graph_is_consistent(real: tuple[cityos.Bundle, _Counter]) -> None:
    bundle, _ = real
    nodes, edges = bundle.walk_nodes, bundle.walk_edges
    assert set(edges["u"]) | set(edges["v"]) == set(nodes["node_id"])
    # every edge starts and ends exactly at its nodes
    pos = nodes.set_index("node_id").geometry
    start = shapely.get_point(edges.geometry.to_numpy(), 0)
    assert shapely.equals_exact(start, pos.loc[edges["u"]].to_numpy(), tolerance=1e-9).all()
    # no node of degree 2 where the way continues unsplit: interior nodes are shared by >1 edge end
    assert (edges["length_m"] > 0).all()


def test_read_osm_reports_progress(helsinki_pbf: Path) -> None:
    seen: list[int] = []
    ext = read_osm(
        helsinki_pbf, rules=FacilityRules.load(), tables=load_osm_tables(), progress=seen.append
    )
    # every object handed to Python is counted: at least each building, facility and walk way
    node_facilities = ext.facilities.loc[
        ext.facilities["feature_id"].str.startswith("osm:n"), "feature_id"
    ]
    handled = len(ext.buildings) + node_facilities.nunique() + ext.stats["walk_ways"]
    assert sum(seen) >= handled > 2500


@pytest.mark.parametrize("name", ["helsinki", "kouvola"])
def test_two_process_read_equals_one_process(name: str) -> None:
    path = cityos.demo_osm_path(name)
    rules, tables = FacilityRules.load(), load_osm_tables()
    one = read_osm(path, rules=rules, tables=tables, parallel=False, reader="pyosmium")
    two = read_osm(path, rules=rules, tables=tables, parallel=True, reader="pyosmium")
    cols = ["building_id", "building", "use", "levels_tag", "height_tag", "name", "vacancy"]
    a = one.buildings.sort_values("building_id").reset_index(drop=True)
    b = two.buildings.sort_values("building_id").reset_index(drop=True)
    assert len(a) > 400
    assert a[cols].equals(b[cols])
    assert shapely.equals_exact(a.geometry.to_numpy(), b.geometry.to_numpy(), tolerance=0).all()
    for layer in ("facilities", "green_spaces", "residential_land", "walk_edges"):
        assert len(getattr(one, layer)) == len(getattr(two, layer)), layer
    assert sorted(one.facilities["feature_id"]) == sorted(two.facilities["feature_id"])


def test_failed_building_process_falls_back_to_this_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import subprocess
    import sys

    from cityos.sources import osm

    def broken(*_a: object, **_kw: object) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"]
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    monkeypatch.setattr(osm, "_start_buildings_process", broken)
    path = cityos.demo_osm_path("kouvola")
    rules, tables = FacilityRules.load(), load_osm_tables()
    with pytest.warns(RuntimeWarning, match="boom"):
        got = read_osm(path, rules=rules, tables=tables, parallel=True, reader="pyosmium")
    want = read_osm(path, rules=rules, tables=tables, parallel=False, reader="pyosmium")
    assert sorted(got.buildings["building_id"]) == sorted(want.buildings["building_id"])
