"""The health check on a hand-built toy city: every number below is worked out by hand.

y=200                 |footway
                      |
y=0   ==================================== residential street, x 0..1000 m
      K(100,10)                      M(900,10)      K kindergarten, M middle school
buildings B1..B10: 10×10 m, 4 storeys (400 m² → 10 residents at 40 m²/person), centred at
x = 50, 150, …, 950, y = 25; communities C1 = x 0..500, C2 = x 500..1000
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import pandas as pd
import pytest

import cityos
from cityos.cli import main
from cityos.healthcheck.engine import INDICATOR_COLUMNS, checkup
from cityos.healthcheck.results import RESULT_FILES, write_results
from tests.conftest import TOY_CRS, ToyOsm, expect_warnings, import_expecting, toy_communities


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> cityos.Bundle:
    root = tmp_path_factory.mktemp("toycity")
    t = ToyOsm()
    t.street_with_blocks(name="幸福路")
    t.node(100, 10, amenity="kindergarten", name="阳光幼儿园")
    t.node(900, 10, amenity="school", **{"isced__level": "2"}, name="第一初级中学")
    osm = t.write(root / "toy.osm")
    units_path = toy_communities(root / "communities.geojson")
    # housing-safety register keyed by building id: B2 and B7 have structural hazards
    bundle = import_expecting(root / "probe", osm=osm, measure_crs=TOY_CRS)
    ids = dict(zip(bundle.buildings["name"], bundle.buildings["building_id"], strict=True))
    register = root / "housing.csv"
    pd.DataFrame(
        {"building_id": [ids["B2"], ids["B7"], ids["B8"]], "structural_hazard": [1, 1, 0]}
    ).to_csv(register, index=False)
    return import_expecting(
        root / "bundle", osm=osm, measure_crs=TOY_CRS, units=[("community", units_path)],
        registers={"housing": register},
    )  # fmt: skip


@pytest.fixture(scope="module")
def result(toy: cityos.Bundle) -> cityos.healthcheck.engine.CheckupResult:  # type: ignore[name-defined]
    return checkup(toy, systems=["mohurd-2024"])


def row(result: object, indicator: str, unit: str) -> pd.Series:
    frame = result.indicators  # type: ignore[attr-defined]
    hit = frame[(frame["indicator_id"] == indicator) & (frame["unit_id"] == unit)]
    assert len(hit) == 1, (indicator, unit)
    return hit.iloc[0]


def test_population_ten_per_building(result: object) -> None:
    layers = result.units  # type: ignore[attr-defined]
    # footprints are 100 m² up to the 1e-7° precision of OSM coordinates
    population = layers["community"].set_index("unit_id")["population"].to_dict()
    assert population == pytest.approx({"C1": 50.0, "C2": 50.0}, rel=1e-4)


def test_register_counts_per_community_and_city(result: object) -> None:
    assert row(result, "housing_structural_hazard", "C1")["value"] == 1
    assert row(result, "housing_structural_hazard", "C2")["value"] == 1
    city = row(result, "housing_structural_hazard", "city")
    assert city["value"] == 2 and city["status"] == "fail"
    assert "implicit" in city["target_source"]


@pytest.fixture(scope="module")
def shortfalls(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The toy city with a community register of shortfalls, which add up from community to
    city; C2's parking shortfall is blank."""
    root = tmp_path_factory.mktemp("shortfalls")
    t = ToyOsm()
    t.street_with_blocks(name="幸福路")
    community = root / "community.csv"
    pd.DataFrame(
        {"unit_id": ["C1", "C2"], "primary_school_place_shortfall": [12, 8],
         "parking_space_shortfall": [30, None], "ev_charger_shortfall": [5, 0],
         "footway_substandard_km": [0.4, 1.1]}
    ).to_csv(community, index=False)  # fmt: skip
    bundle = import_expecting(
        root / "bundle", osm=t.write(root / "toy.osm"), measure_crs=TOY_CRS,
        units=[("community", toy_communities(root / "communities.geojson"))],
        registers={"community": community},
    )  # fmt: skip
    indicators: pd.DataFrame = checkup(bundle, systems=["mohurd-2024"]).indicators
    return indicators


@pytest.mark.parametrize(
    ("indicator", "c1", "c2", "city"),
    [
        ("primary_school_place_shortfall", 12, 8, 20),  # a sum, not the mean 10
        ("ev_charger_shortfall", 5, 0, 5),
        ("footway_substandard_km", 0.4, 1.1, 1.5),
    ],
)
def test_register_shortfalls_add_up_to_the_city(
    shortfalls: pd.DataFrame, indicator: str, c1: float, c2: float, city: float
) -> None:
    result = SimpleNamespace(indicators=shortfalls)
    assert row(result, indicator, "C1")["value"] == pytest.approx(c1)
    assert row(result, indicator, "C2")["value"] == pytest.approx(c2)
    assert row(result, indicator, "city")["value"] == pytest.approx(city)


def test_register_shortfall_with_a_blank_is_a_lower_bound(shortfalls: pd.DataFrame) -> None:
    result = SimpleNamespace(indicators=shortfalls)
    assert row(result, "parking_space_shortfall", "C1")["value"] == 30
    c2 = row(result, "parking_space_shortfall", "C2")
    assert c2["status"] == "no_data" and math.isnan(c2["value"])
    city = row(result, "parking_space_shortfall", "city")
    assert city["value"] == 30 and city["unknown"] == 1
    assert city["note"].startswith("at least 30 个: 1 register rows blank or unreadable")


def test_kindergarten_proxy_by_walking_distance(result: object) -> None:
    # B1–B4 are within 300 m walk of the kindergarten (25 + |x − 100| + 10), B5 (385 m) is not:
    # C1 80 % covered (not lacking), C2 0 % (lacking); the city counts one lacking community
    c1 = row(result, "community_kindergarten_substandard", "C1")
    c2 = row(result, "community_kindergarten_substandard", "C2")
    assert (c1["value"], c2["value"]) == (0.0, 1.0)
    assert (
        c2["method"].startswith("[proxy]")
        and "register 'community' not in the bundle" in c2["method"]
    )
    assert row(result, "community_kindergarten_substandard", "city")["value"] == 1


def test_middle_school_area_coverage(result: object) -> None:
    r = row(result, "middle_school_coverage", "city")
    assert r["value"] == pytest.approx(100.0) and r["radius_m"] == 1000
    # residential land = footprints grown 15 m on every side (mitred): ten 40 × 40 m squares
    assert r["denominator"] == pytest.approx(10 * 40 * 40, rel=1e-3)


def test_road_density(result: object) -> None:
    # 1 km of residential street in a city unit = the buildings' hull (a 900 m line) buffered 250 m
    r = row(result, "road_network_density", "city")
    area_km2 = (900 * 500 + math.pi * 250**2) / 1e6
    assert r["numerator"] == pytest.approx(1.0, rel=1e-4)
    assert r["value"] == pytest.approx(1.0 / area_km2, rel=1e-3)
    assert r["status"] == "fail" and r["target"] == 8


def test_missing_register_is_no_data_with_reason(result: object) -> None:
    r = row(result, "community_waste_sorting_missing", "C1")
    assert r["status"] == "no_data" and math.isnan(r["value"])
    assert "register 'community' not in the bundle" in r["note"]


def test_shape_of_results(result: object, tmp_path: Path) -> None:
    ind = result.indicators  # type: ignore[attr-defined]
    assert tuple(ind.columns) == INDICATOR_COLUMNS
    assert set(ind["status"]) <= {"pass", "fail", "no_data", "no_target"}
    assert ind["indicator_id"].nunique() == 61
    out = write_results(result, tmp_path / "res")  # type: ignore[arg-type]
    assert sorted(p.name for p in out.iterdir()) == sorted(RESULT_FILES)
    back = pd.read_parquet(out / "indicators.parquet")
    assert len(back) == len(ind)
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert summary["population"]["area_per_person_confirmed"] is False
    assert summary["units"]["community"]["source"] == "city files"
    layers = gpd.list_layers(out / "units.gpkg")["name"].tolist()
    assert sorted(layers) == ["city", "community", "subdistrict"]


def test_cli_checkup(
    toy: cityos.Bundle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r"
    assert main(["checkup", str(toy.path), "--out", str(out), "-q"]) == 0
    assert (out / "problems.csv").read_text("utf-8-sig").count("housing_structural_hazard") >= 1
    assert main(["checkup", str(toy.path), "--out", str(out), "-q"]) == 2
    assert "--force" in capsys.readouterr().err
    assert (
        main(["checkup", str(toy.path), "--out", str(tmp_path / "x"), "-q", "--system", "nope"])
        == 2
    )
    assert "no such indicator system" in capsys.readouterr().err


SETS = """
[system]
id = "toy-sets"

[[indicator]]
id = "set"
name_zh = "设施齐全度"
name_en = "set"
level = "community"
dimension = "设施完善"
unit = "%"
direction = "higher"
confirmed = false
target = 100
target_source = "toy"
method = "complete_set"
params = { share = 50, items = [ { label = "kg300", categories = ["kindergarten"], radius_m = 300 },
                                 { label = "ms1000", categories = ["middle_school"], radius_m = 1000 } ] }

[[indicator]]
id = "any"
name_zh = "任一"
name_en = "any"
level = "community"
dimension = "设施完善"
unit = "%"
direction = "higher"
confirmed = false
method = "coverage_any"
params = { rules = [ { categories = ["kindergarten"], radius_m = 300 }, { categories = ["middle_school"], radius_m = 100 } ] }
"""


def test_complete_set_and_any_rule_by_hand(toy: cityos.Bundle, tmp_path: Path) -> None:
    path = tmp_path / "sets.toml"
    path.write_text(SETS, "utf-8")
    res = checkup(toy, systems=[str(path)])
    # C1: kindergarten for 4 of 5 buildings (80 %) and the middle school for all → both items;
    # C2: no kindergarten within 300 m → one of two items; city: 1 of 2 communities complete
    assert row(res, "set", "C1")["value"] == 100.0
    c2 = row(res, "set", "C2")
    assert (
        c2["value"] == 50.0 and c2["note"].startswith("missing: kg300; ") and c2["status"] == "fail"
    )
    # the toy OSM data span y 0..200 m, the communities −100..300 m: the note says so
    assert "only 51 % of this unit lies within the data extent" in c2["note"]
    assert row(res, "set", "city")["value"] == 50.0
    assert "missing: kg300" in res.problems.loc[res.problems["unit_id"] == "C2", "cause"].iloc[0]
    # any rule: kindergarten ≤ 300 m (B1–B4) or middle school ≤ 100 m (B9: 85 m, B10: 85 m)
    assert row(res, "any", "C1")["value"] == pytest.approx(
        80.0, rel=1e-4
    )  # equal footprints up to 1e-7°
    assert row(res, "any", "C2")["value"] == pytest.approx(40.0, rel=1e-3)
    assert row(res, "any", "C2")["status"] == "no_target"


def test_register_rows_matching_no_building_warn(toy: cityos.Bundle, tmp_path: Path) -> None:
    import shutil

    from cityos.errors import CityosWarning

    copy = Path(shutil.copytree(toy.path, tmp_path / "b"))
    reg = pd.read_parquet(copy / "registers" / "housing.parquet")
    pd.concat(
        [reg, pd.DataFrame({"building_id": ["nowhere"], "structural_hazard": ["1"]})]
    ).to_parquet(copy / "registers" / "housing.parquet")
    with pytest.warns(
        CityosWarning,
        match=r"register 'housing': 1 of 4 register rows match no building_id .*3 matched",
    ):
        res = checkup(cityos.read_bundle(copy), systems=["mohurd-2024"])
    assert row(res, "housing_structural_hazard", "city")["value"] == 2


def test_problem_list_names_uncovered_buildings(toy: cityos.Bundle, tmp_path: Path) -> None:
    system = SETS.replace('method = "complete_set"', 'method = "coverage"').replace(
        'params = { share = 50, items = [ { label = "kg300", categories = ["kindergarten"], radius_m = 300 },\n'
        '                                 { label = "ms1000", categories = ["middle_school"], radius_m = 1000 } ] }',
        'params = { categories = ["kindergarten"], radius_m = 300, measure = "population" }',
    )
    path = tmp_path / "cov.toml"
    path.write_text(system, "utf-8")
    res = checkup(toy, systems=[str(path)])
    p = res.problems.set_index(["indicator_id", "unit_id"])
    # C1: B5 alone is beyond 300 m (10 residents); C2: all five buildings, 50 residents
    assert p.loc[("set", "C1"), "buildings"] == 1
    names = dict(zip(toy.buildings["building_id"], toy.buildings["name"], strict=True))
    assert [names[b] for b in p.loc[("set", "C1"), "building_ids"].split(", ")] == ["B5"]
    assert p.loc[("set", "C2"), "buildings"] == 5
    assert "50 of 50 residents in 5 residential buildings" in p.loc[("set", "C2"), "cause"]


def test_city_population_and_distance_override(toy: cityos.Bundle) -> None:
    # 100 residents from floor area, 1,000 in the city: a factor of 10 is implausible (> 3×)
    with expect_warnings(r"population calibration: 1 units beyond 3× .* explain 1/10 of"):
        res = checkup(
            toy, systems=["complete-community"], city_population=1000, distance="euclidean"
        )
    assert res.summary["population"]["calibration"] == "city total"
    assert res.units["city"]["population"].iloc[0] == pytest.approx(1000)
    r = row(res, "pop_kindergarten_300m", "C1")
    # straight line from (x, 25) to (100, 10): B1–B4 within 300 m, B5 at ≈ 350 m
    assert r["value"] == pytest.approx(80.0, rel=1e-3) and "(euclidean)" in r["method"]


def test_context_for_a_scenario_keeps_units_and_redoes_facilities(toy: cityos.Bundle) -> None:
    from cityos.healthcheck.engine import CheckupContext, checkup_with

    ctx = CheckupContext(toy, cutoff_m=1000.0, area_per_person=40.0, admin_levels=None)
    # a scenario without the kindergarten: the coverage of the 300 m kindergarten proxy drops
    layers = dict(toy.layers)
    layers["facilities"] = toy.facilities[toy.facilities["category"] != "kindergarten"]
    scenario = cityos.Bundle(toy.path, toy.manifest, layers, toy.registers)
    other = ctx.with_facilities(scenario)
    assert other.unit_set is ctx.unit_set and other.population is ctx.population
    before = checkup_with(ctx, ["mohurd-2024"]).indicators
    after = checkup_with(other, ["mohurd-2024"]).indicators
    fresh = checkup(scenario, systems=["mohurd-2024"]).indicators
    assert after["value"].equals(fresh["value"]) and not after["value"].equals(before["value"])
    layers["buildings"] = toy.buildings.iloc[1:]
    with pytest.raises(cityos.errors.InputError, match="more than their facilities"):
        ctx.with_facilities(cityos.Bundle(toy.path, toy.manifest, layers, toy.registers))
