"""The dashboard's health-check extras on the toy street (tests/web/test_dashboard.py's city: a
supermarket and a market at x = 0, so C1 passes pop_supermarket_500m and C2 fails it): the
renewal priorities as a layer, the problem list with its units' boxes, and last year's change
(the year before both stood at the street's east end, x = 1000: C1's share went up from 0,
C2's went down)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import httpx
import pandas as pd
import pytest
from playwright.sync_api import Browser

import cityos
from cityos.cli import main
from cityos.healthcheck.results import write_results
from tests.conftest import TOY_CRS, ToyOsm, import_expecting, toy_communities
from tests.web.conftest import free_port, start, toy_point
from tests.web.test_dashboard import ARTIFACTS, _colour_at, _nearest

SHOP = "complete-community/community/pop_supermarket_500m"


def _year(root: Path, shop_x: float) -> Path:
    t = ToyOsm()
    t.street_with_blocks(name="大街")
    t.node(shop_x, 10, shop="supermarket", name="超市")
    t.node(shop_x, 12, amenity="marketplace", name="菜市场")
    import_expecting(root / "city", osm=t.write(root / "toy.osm"), measure_crs=TOY_CRS,
                     units=[("community", toy_communities(root / "c.geojson"))])  # fmt: skip
    folder = write_results(cityos.checkup(cityos.read_bundle(root / "city")), root / "results")
    cityos.write_priorities(folder)
    return root


@pytest.fixture(scope="module")
def years(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    last = _year(tmp_path_factory.mktemp("last"), shop_x=1000)
    this = _year(tmp_path_factory.mktemp("this"), shop_x=0)
    db = f"sqlite:///{this / 'ops.sqlite'}"
    assert main(["db", "upgrade", "--db", db, "-q"]) == 0
    port = free_port()
    proc = start(this / "city", db, port, "--results", str(this / "results"),
                 "--previous", str(last / "results"))  # fmt: skip
    yield f"http://127.0.0.1:{port}", this, last
    proc.terminate()
    proc.wait(timeout=30)


def test_renewal_priorities_are_a_layer(years: tuple[str, Path, Path]) -> None:
    base, this, _ = years
    listing = httpx.get(f"{base}/api/v1/map/indicators").json()["indicators"]
    renewal = {(i["level"], i["indicator_id"]) for i in listing if i["system"] == "renewal"}
    assert ("community", "priority_score") in renewal and (
        "community",
        "priority_per_1000",
    ) in renewal
    with (this / "results" / "priorities" / "priorities.csv").open(encoding="utf-8-sig") as f:
        # a unit not ranked (nothing measured) has no score: null, never 0
        scores = {r["unit_id"]: None if r["score"] == "" else float(r["score"])
                  for r in csv.DictReader(f) if r["level"] == "community"}  # fmt: skip
    body = httpx.get(f"{base}/api/v1/map/indicators/renewal/community/priority_score").json()
    got = {u["unit_id"]: u["value"] for u in body["units"]}
    assert set(got) == set(scores) == {"C1", "C2"}
    for uid, score in scores.items():
        assert got[uid] == (None if score is None else pytest.approx(score))
    assert {u["status"] for u in body["units"]} == {"no_target"}
    assert "Σ failing indicators" in body["common"]["method"]


def test_the_problem_list_is_every_failing_indicator_with_its_box(years: tuple[str, Path, Path]) -> None:  # fmt: skip
    base, this, _ = years
    ind = pd.read_parquet(this / "results" / "indicators.parquet")
    failing = ind[ind["status"] == "fail"]
    body = httpx.get(f"{base}/api/v1/map/problems").json()
    assert body["count"] == len(failing) == len(body["problems"]) > 0
    order = ["city", "subdistrict", "community"]
    assert [p["level"] for p in body["problems"]] == sorted(
        (p["level"] for p in body["problems"]), key=order.index
    )
    first = failing.sort_values("level", key=lambda s: s.map(order.index), kind="stable").iloc[0]
    p = body["problems"][0]
    assert (p["key"], p["indicator_id"], p["value"]) == (
        f"{first['level']}:{first['unit_id']}",
        first["indicator_id"],
        pytest.approx(first["value"]),
    )
    # its box, from the results' own units
    units = (
        gpd.read_file(this / "results" / "units.gpkg", layer=first["level"])
        .to_crs(4326)
        .set_index("unit_id")
    )
    assert p["bbox"] == pytest.approx(list(units.loc[first["unit_id"]].geometry.bounds), abs=1e-9)
    for system in set(ind["system"]):
        only = httpx.get(f"{base}/api/v1/map/problems", params={"system": system}).json()
        assert only["count"] == int((failing["system"] == system).sum())
        assert {q["system"] for q in only["problems"]} <= {system}


def test_last_years_change_and_trend(years: tuple[str, Path, Path]) -> None:
    base, this, last = years
    body = httpx.get(f"{base}/api/v1/map/indicators/{SHOP}").json()
    units = {u["unit_id"]: u for u in body["units"]}
    key = ["level", "unit_id", "indicator_id"]
    old = pd.read_parquet(last / "results" / "indicators.parquet").set_index(key)["value"]
    new = pd.read_parquet(this / "results" / "indicators.parquet").set_index(key)["value"]
    for uid in ("C1", "C2"):
        k = ("community", uid, "pop_supermarket_500m")
        assert units[uid]["previous"] == pytest.approx(old[k])
        assert units[uid]["change"] == pytest.approx(new[k] - old[k])
    assert (
        old[("community", "C1", "pop_supermarket_500m")]
        == 0
        < old[("community", "C2", "pop_supermarket_500m")]
    )
    assert (units["C1"]["trend"], units["C2"]["trend"]) == ("improved", "worsened")


def test_the_page_colours_the_change_and_locates_a_problem(
    years: tuple[str, Path, Path], webgl: Browser
) -> None:
    base, _, _ = years
    page = webgl.new_page(viewport={"width": 1200, "height": 800})
    page.goto(f"{base}/?lang=en")
    page.wait_for_function("document.body.dataset.problems !== undefined", timeout=30_000)
    first = httpx.get(f"{base}/api/v1/map/problems").json()["problems"][0]
    page.locator("#problems-list li").first.locator("button").click()
    page.wait_for_function(f"document.body.dataset.located === {first['key']!r}")
    assert page.evaluate("document.body.dataset.choropleth") == "/".join(
        (first["system"], first["level"], first["indicator_id"])
    )
    page.select_option("#system", "complete-community")
    page.select_option("#level", "community")
    page.select_option("#indicator", "pop_supermarket_500m")
    page.wait_for_function(f"document.body.dataset.choropleth === {SHOP!r}")
    page.check('input[name="by"][value="change"]')
    trends = {"improved": (0x2E, 0x7D, 0x32), "worsened": (0xC6, 0x28, 0x28),
              "unchanged": (0x78, 0x90, 0x9C), "not_comparable": (0xE0, 0xE0, 0xE0)}  # fmt: skip
    page.evaluate("window.cityos.map.fitBounds(window.cityos.map.getMaxBounds() || "
                  "window.cityos.state.config.bounds, {duration: 0})")  # fmt: skip
    assert _nearest(_colour_at(page, *toy_point(150, 250)), trends) == "improved"
    assert _nearest(_colour_at(page, *toy_point(850, 250)), trends) == "worsened"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-change.png"))
    page.close()
