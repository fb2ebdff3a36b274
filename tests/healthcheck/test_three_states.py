"""Missing data is never a failure: the Haidian situation rebuilt in central Beijing (a toy OSM
extract written here plus the 331 Beijing subdistricts of ../shared/data), categories absent from
the bundle, facilities without an area, blank register cells, and the property that removing
data never turns "no data" into "fail".

The toy city (metres, UTM 50N, in 东华门街道): a street x 0..1000 m at y 0 with a footway north
at x 500; ten 10 × 10 m four-storey apartment blocks at x = 50 … 950, y 20..30 (400 m² floor,
10 residents each at 40 m² per person, 100 in all); a supermarket at (100, 10); a playground
mapped as a point (no area) at (150, 10); north of the built cells (in no community) a 20 × 20 m
pitch and a fitness station. OSM has no kindergarten, childcare or elderly care.
"""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cityos
from cityos.cli import main
from cityos.errors import CityosWarning, ConfigError
from cityos.healthcheck.catalogue import BUILTIN_SYSTEMS, load_system
from cityos.healthcheck.context import CheckupContext
from cityos.healthcheck.engine import checkup
from cityos.healthcheck.methods import METHODS, levels_for
from cityos.healthcheck.policy import load_policy
from cityos.healthcheck.results import write_results
from tests.conftest import MISSING_CATEGORIES, TOY_CRS, ToyOsm, import_expecting

DONGHUAMEN_POPULATION = 166_646  # WorldPop estimate of 东华门街道 in the shared layer


def toy_city(root: Path, *, facilities: bool = True) -> Path:
    t = ToyOsm()
    t.street_with_blocks(name="东华门大街")
    if facilities:
        t.node(100, 10, shop="supermarket", name="超市")
        t.node(150, 10, leisure="playground", name="儿童游乐场")
        t.ring(600, 600, 620, 620, leisure="pitch", name="球场")
        t.node(700, 650, leisure="fitness_station")
    return t.write(root / "toy.osm")


@pytest.fixture(scope="module")
def beijing(shared_data: Path) -> Path:
    return shared_data / "beijing-subdistricts" / "beijing_subdistricts.gpkg"


@pytest.fixture(scope="module")
def haidian(tmp_path_factory: pytest.TempPathFactory, beijing: Path) -> cityos.Bundle:
    root = tmp_path_factory.mktemp("haidian")
    outside = r"units: 330 of 331 units lie outside the data \(OSM extract bounds\)"
    return import_expecting(root / "b", osm=toy_city(root), measure_crs=TOY_CRS,
                            units=[f"subdistrict={beijing}"],
                            expect=[MISSING_CATEGORIES, outside])  # fmt: skip


@pytest.fixture(scope="module")
def result(haidian: cityos.Bundle) -> cityos.CheckupResult:
    with pytest.warns(
        CityosWarning, match=r"OSM buildings explain 1/1666 of 东华门街道's population"
    ):
        return checkup(haidian, systems=["mohurd-2024", "complete-community"])


def rows(result: cityos.CheckupResult, **where: str) -> pd.DataFrame:
    ind = result.indicators
    mask = np.ones(len(ind), dtype=bool)
    for k, v in where.items():
        mask &= (ind[k] == v).to_numpy()
    return ind[mask]


def test_units_outside_the_data_are_no_data_never_fail(result: cityos.CheckupResult) -> None:
    sub = rows(result, level="subdistrict")
    inside = sub["unit_name"] == "东华门街道"
    assert sub.loc[~inside, "unit_id"].nunique() == 330
    assert (sub.loc[~inside, "status"] == "no_data").all()
    assert (
        sub.loc[~inside, "note"]
        .str.startswith("no data in this unit: it lies outside the data extent")
        .all()
    )
    assert sub.loc[~inside, "value"].isna().all()
    # the failure of the issue: "missing/substandard multi-sport grounds" in 325 empty subdistricts
    sports = rows(result, indicator_id="subdistrict_sports_ground_substandard", level="subdistrict")
    # 东华门 has only the 400 m² pitch, but only part of it lies in the data: no large sports
    # ground *in the data* is not "none in the subdistrict": unknown as well
    assert set(sports["status"]) == {"no_data"}
    own = sports[sports["unit_name"] == "东华门街道"].iloc[0]
    assert "of this unit lies within the data extent" in own["note"]
    assert result.summary["units"]["subdistrict"]["without_data"] == 330
    layer = result.units["subdistrict"]
    assert layer["population"].isna().sum() == 330  # unknown, not 0 residents
    assert layer.loc[layer["name"] == "东华门街道", "population"].iloc[0] == pytest.approx(
        DONGHUAMEN_POPULATION
    )


def test_absent_categories_leave_life_circle_sets_unmeasured(result: cityos.CheckupResult) -> None:
    cc = rows(result, indicator_id="cc_5_10_minute_set", level="community")
    assert set(cc["status"]) == {"no_data"} and cc["value"].isna().all()
    note = cc.loc[cc["unknown"] > 0, "note"].iloc[0]
    assert (
        "unmeasured items (no facility of the category in the bundle): 幼儿园 kindergarten 300 m, 托儿所 childcare 300 m, 老年服务站 elderly care 300 m"
        in note
    )
    # the share over the measured items: supermarket (B1–B5 within 500 m walk) met in the
    # western cell, activity space (the playground) within 300 m for B1–B4 …
    assert "measured items met" in note
    kg = rows(result, indicator_id="community_kindergarten_substandard")
    assert set(kg["status"]) == {"no_data"}
    assert kg["note"].str.contains("unmeasured: no kindergarten in the bundle").any()
    assert not (result.indicators["status"] == "fail").any() or set(
        rows(result, status="fail")["indicator_id"]
    ) <= {"community_activity_space_substandard", "road_network_density"}


def test_a_facility_without_area_is_unknown_not_below(result: cityos.CheckupResult) -> None:
    # 150 m² of play space asked per community: the point playground (no area) leaves its
    # community unknown; the eastern communities have no facility at all: lacking (fail)
    act = rows(result, indicator_id="community_activity_space_substandard", level="community")
    by_status = act.groupby("status").size().to_dict()
    assert by_status.get("no_data", 0) >= 1 and by_status.get("fail", 0) >= 1
    assert "pass" not in by_status
    city = rows(result, indicator_id="community_activity_space_substandard", level="city").iloc[0]
    # at least the lacking communities, some unknown: the count fails (a lower bound that already
    # exceeds 0), and the note says it is a lower bound
    assert city["status"] == "fail" and city["unknown"] >= 1
    assert "at least" in city["note"] and "lower bound" in city["note"]


def test_calibration_warning_per_unit(result: cityos.CheckupResult) -> None:
    odd = result.summary["population"]["implausible"]
    assert [o["name"] for o in odd] == ["东华门街道"]
    assert odd[0]["factor"] == pytest.approx(DONGHUAMEN_POPULATION / 100, rel=1e-3)
    assert (
        "the building data are incomplete here; population coverage indicators are unreliable"
        in odd[0]["message"]
    )
    assert "建筑数据仅能解释该单元人口的1/1666" in odd[0]["message_zh"]
    # the supermarket coverage rests on the inflated residents: the warning stands beside it
    own = rows(result, unit_name="东华门街道")
    warned = own[own["warning"] != ""]
    assert "pop_supermarket_500m" in set(own["indicator_id"])
    assert len(warned) and warned["warning"].str.startswith("OSM buildings explain 1/1666").all()
    assert (warned["denominator_kind"] == "residents").any()
    # a register indicator does not rest on the population: no warning
    assert (
        rows(result, indicator_id="housing_structural_hazard", unit_name="东华门街道")[
            "warning"
        ].iloc[0]
        == ""
    )


def test_clip_units_keeps_the_units_with_data(haidian: cityos.Bundle) -> None:
    with pytest.warns(CityosWarning, match="OSM buildings explain"):
        res = checkup(haidian, systems=["sdg-11"], clip_units=True)
    assert (
        res.summary["units"]["subdistrict"] | {"count": 1, "clipped": 330, "without_data": 0}
        == res.summary["units"]["subdistrict"]
    )
    assert set(res.units["subdistrict"]["name"]) == {"东华门街道"}


def test_cli_checkup_prints_the_calibration_warning(haidian: cityos.Bundle, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    assert (
        main(
            [
                "checkup",
                str(haidian.path),
                "--out",
                str(tmp_path / "r"),
                "-q",
                "--system",
                "sdg-11",
                "--clip-units",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert (
        "cityos: warning: population calibration: 1 units beyond 3× their buildings' estimate"
        in err
    )


def test_policy_numbers_are_recorded_and_overridable(
    haidian: cityos.Bundle, tmp_path: Path
) -> None:
    own = tmp_path / "policy.toml"
    own.write_text("[calibration]\nmax_factor = 5000\n", "utf-8")
    res = checkup(haidian, systems=["sdg-11"], policy=load_policy(own), clip_units=True)
    assert res.summary["population"]["implausible"] == []  # 1666× is within 5000×
    assert res.summary["policy"]["calibration"]["max_factor"] == 5000
    assert res.summary["policy"]["source"] == str(own)
    assert res.summary["policy"]["proxy"]["majority_share"] == 50.0
    bad = tmp_path / "bad.toml"
    bad.write_text("[proxy]\nmajority_share = 150\n", "utf-8")
    with pytest.raises(
        ConfigError, match=r"proxy.majority_share = 150 is not a share in \[0, 100\]"
    ):
        load_policy(bad)


# --- the toy city with its own registers: blank cells, every method exercised -----------------


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> cityos.Bundle:
    root = tmp_path_factory.mktemp("toy3")
    t = ToyOsm()
    t.street_with_blocks(highway="primary", footway_to=300.0, name="大街")
    t.node(100, 10, amenity="kindergarten")
    t.node(900, 10, amenity="school", isced__level="2")
    t.node(300, 10, highway="bus_stop")
    t.ring(600, 40, 700, 100, leisure="park", name="小公园")
    t.ring(200, 40, 260, 100, leisure="pitch", name="球场")
    t.node(800, 40, leisure="fitness_station")
    t.ring(420, 40, 440, 60, leisure="playground")
    t.node(350, 10, railway="tram_stop")
    t.node(950, 5, railway="station", name="站")
    t.node(50, -50, amenity="ferry_terminal")
    osm = t.write(root / "toy.osm")
    probe = import_expecting(root / "probe", osm=osm, measure_crs=TOY_CRS)
    ids = list(probe.buildings.sort_values("name")["building_id"])
    housing = root / "housing.csv"
    # B1 hazard, B2 none, B3 blank: the count is at least 1, never "1 and done"
    pd.DataFrame({"building_id": ids[:3], "structural_hazard": ["1", "0", ""]}).to_csv(
        housing, index=False
    )
    city = root / "city.csv"
    pd.DataFrame({"unit_id": ["city"], "sports_ground_area_per_capita": ["1.5"]}).to_csv(
        city, index=False
    )
    return import_expecting(root / "bundle", osm=osm, measure_crs=TOY_CRS,
                              registers={"housing": housing, "city": city})  # fmt: skip


def test_blank_register_cell_is_unknown(toy: cityos.Bundle) -> None:
    res = checkup(toy, systems=["mohurd-2024"])
    city = rows(res, indicator_id="housing_structural_hazard", level="city").iloc[0]
    # one flagged, one "no", one blank: at least 1 hazard, so the count fails on what is known
    assert (city["value"], city["unknown"], city["status"]) == (1.0, 1.0, "fail")
    assert "at least 1 栋: 1 register rows blank or unreadable" in city["note"]


def test_every_method_is_in_the_table_and_computes(toy: cityos.Bundle) -> None:
    used = set()
    for sid in BUILTIN_SYSTEMS:
        for ind in load_system(sid).indicators:
            used.add(ind.method)
            if ind.proxy:
                used.add(str(ind.proxy["method"]))
    assert used <= set(METHODS)  # every method a built-in system names is implemented
    ctx = CheckupContext(toy, cutoff_m=1000.0, area_per_person=40.0, admin_levels=None)
    exercised = {}
    for sid in BUILTIN_SYSTEMS:
        for ind in load_system(sid).indicators:
            for name, params in (
                (ind.method, ind.params),
                *(
                    (
                        (
                            str(ind.proxy["method"]),
                            {k: v for k, v in ind.proxy.items() if k != "method"},
                        ),
                    )
                    if ind.proxy
                    else ()
                ),
            ):
                if name in exercised:
                    continue
                ev = METHODS[name].fn(ctx, ind, params, levels_for(ind))
                if ev.no_data is None and any(f["value"].notna().any() for f in ev.frames.values()):
                    exercised[name] = ind.id
    # the toy has no childcare or elderly care, so the built-in sets are unmeasured there; a set
    # of the toy's own categories exercises the method
    ind = load_system("complete-community").indicators[0]
    ev = METHODS["complete_set"].fn(
        ctx,
        ind,
        {"items": [{"label": "kg", "categories": ["kindergarten"], "radius_m": 300}]},
        ["community", "city"],
    )
    # 500 m grid communities: B1–B5 west (B1–B4 within 300 m walk of the kindergarten: 80 %,
    # met), B6–B10 east (none: not met) → half of the city's communities complete
    assert ev.frames["city"]["value"].iloc[0] == 50.0
    exercised.setdefault("complete_set", ind.id)
    # register_ratio is named by the optional hotline system only: 5 requests in each of the two
    # 50-resident communities → 100 per 1,000 residents, and 100 for the city (10 ÷ 100)
    hotline = load_system("hotline").indicators[0]
    ids = list(ctx.units("community")["unit_id"])
    toy.registers["hotline"] = pd.DataFrame({"unit_id": ids, "requests": ["5"] * len(ids)})
    try:
        ev = METHODS["register_ratio"].fn(ctx, hotline, hotline.params, ["community", "city"])
    finally:
        del toy.registers["hotline"]
    assert len(ids) == 2
    assert ev.frames["community"]["value"].to_numpy() == pytest.approx([100.0, 100.0], rel=1e-4)
    assert ev.frames["city"]["value"].iloc[0] == pytest.approx(100.0, rel=1e-4)
    exercised.setdefault("register_ratio", hotline.id)
    # register_sum: shortfalls add up, 30 + 12 parking spaces → 42 for the city (not the mean 21)
    parking = next(i for i in load_system("mohurd-2024").indicators if i.method == "register_sum"
                   and i.params["column"] == "parking_space_shortfall")  # fmt: skip
    toy.registers["community"] = pd.DataFrame(
        {"unit_id": ids, "parking_space_shortfall": ["30", "12"]}
    )
    try:
        ev = METHODS["register_sum"].fn(ctx, parking, parking.params, ["community", "city"])
    finally:
        del toy.registers["community"]
    assert ev.frames["community"]["value"].tolist() == [30.0, 12.0]
    assert ev.frames["city"]["value"].iloc[0] == 42.0
    exercised.setdefault("register_sum", parking.id)
    # survey_score is named by the optional satisfaction system only: 30 answers of 满意 (75)
    # in the first community
    item = load_system("satisfaction").indicators[0]
    toy.registers["satisfaction"] = pd.DataFrame({"unit_id": [ids[0]] * 30, item.id: ["满意"] * 30})
    try:
        ev = METHODS["survey_score"].fn(ctx, item, item.params, ["community", "city"])
    finally:
        del toy.registers["satisfaction"]
    assert ev.frames["community"]["value"].iloc[0] == 75.0
    assert ev.frames["city"]["value"].iloc[0] == 75.0
    exercised.setdefault("survey_score", item.id)
    assert set(exercised) == set(METHODS), set(METHODS) - set(exercised)


@pytest.fixture(scope="module")
def kouvola(tmp_path_factory: pytest.TempPathFactory, kouvola_pbf: Path) -> cityos.Bundle:
    return import_expecting(tmp_path_factory.mktemp("kv") / "b", osm=kouvola_pbf)


@pytest.fixture(scope="module")
def helsinki(tmp_path_factory: pytest.TempPathFactory, helsinki_pbf: Path) -> cityos.Bundle:
    return import_expecting(tmp_path_factory.mktemp("hel") / "b", osm=helsinki_pbf)


@pytest.mark.parametrize("city", ["toy", "helsinki", "kouvola"])
def test_values_within_their_domain(city: str, request: pytest.FixtureRequest) -> None:
    bundle = request.getfixturevalue(city)
    ind = checkup(bundle).indicators
    v = ind["value"]
    share = ind["unit"] == "%"
    assert v[share].dropna().between(0.0, 100.0).all()
    counts = ind["unit"].isin(["个", "栋", "套", "条", "处", "起"])
    assert (v[counts].dropna() >= 0).all()
    per_capita = ind["unit"].str.contains("/人")
    assert np.isfinite(v[per_capita].dropna()).all()
    assert v.notna().sum() > 0
    # a value shown as no_data is NaN: unmeasured never reads as a number
    assert ind.loc[ind["status"] == "no_data", "value"].isna().all()


# --- property: removing data never turns "no data" into a failure --------------------------


CATEGORIES = [
    "kindergarten",
    "middle_school",
    "bus_stop",
    "sports_ground",
    "fitness",
    "playground",
    "tram_stop",
    "rail_station",
]


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(keep=st.lists(st.booleans(), min_size=10, max_size=10),
       drop=st.sets(st.sampled_from(CATEGORIES), min_size=1, max_size=3))  # fmt: skip
def test_removing_data_never_turns_no_data_into_fail(
    toy: cityos.Bundle, keep: list[bool], drop: set[str]
) -> None:
    # a random toy city: a random subset of the toy's facilities, then whole categories deleted
    fac = toy.facilities.iloc[[k for k, on in enumerate(keep[: len(toy.facilities)]) if on]]
    city = cityos.Bundle(toy.path, toy.manifest, {**toy.layers, "facilities": fac}, toy.registers)
    less = cityos.Bundle(
        toy.path,
        toy.manifest,
        {**toy.layers, "facilities": fac[~fac["category"].isin(drop)]},
        toy.registers,
    )
    key = ["system", "indicator_id", "level", "unit_id"]
    before = checkup(city).indicators.set_index(key)["status"]
    after = checkup(less).indicators.set_index(key)["status"].reindex(before.index)
    assert not ((before == "no_data") & (after != "no_data")).any()
    assert not ((after == "fail") & (before == "no_data")).any()


def test_results_folder_travels_and_renew_is_all_or_nothing(toy: cityos.Bundle, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from cityos.report import write_html

    prio = importlib.import_module("cityos.renewal.priorities")  # the module, not the function

    res = write_results(checkup(toy), tmp_path / "r")
    moved = Path(shutil.move(str(res), tmp_path / "elsewhere"))
    # the bundle the folder was made from is gone (as on another machine): the map stays
    summary = json.loads((moved / "summary.json").read_text("utf-8"))
    (moved / "summary.json").write_text(
        json.dumps({**summary, "bundle": str(tmp_path / "gone")}), "utf-8"
    )
    doc = write_html(moved, tmp_path / "x.html").read_text("utf-8")
    assert '"streets": [[' in doc  # the basemap came along with the folder
    target, _ = prio.write_priorities(moved)
    first = (target / "priorities.csv").read_bytes()

    def boom(*_a: object, **_k: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(prio, "write_table", boom)
    with pytest.raises(OSError, match="disk full"):
        prio.write_priorities(moved, force=True)
    assert (target / "priorities.csv").read_bytes() == first  # the old set, whole
    assert sorted(p.name for p in target.iterdir()) == sorted(prio.PRIORITY_FILES)
    assert not [p for p in moved.iterdir() if p.name.startswith(".")]
