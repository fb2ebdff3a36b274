"""A small province for the batch tests: two toy street cities whose supermarket coverage is
worked out by hand, the real Helsinki extract, and a city whose extract is broken."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.conftest import TOY_CRS, ToyOsm, toy_communities

#: residents within 500 m walk of a supermarket, worked out by hand (see toy_city)
TOY_COVERAGE = {"toy_w": {"city": 50.0, "C1": 100.0, "C2": 0.0},
                "toy_c": {"city": 100.0, "C1": 100.0, "C2": 100.0}}  # fmt: skip


def toy_city(path: Path, supermarket_x: float) -> Path:
    """The toy street (blocks B1..B10 at x = 50 … 950, 10 residents each, 25 m off the street)
    with a supermarket and a market 10 m off the street at ``supermarket_x``. At x = 0 the walk to B5 is
    450 m (+ the two legs, 35 m: within 500 m) and to B6 550 m (beyond): C1 100 %, C2 0 %, the
    city 50 %. At x = 500 the farthest block is 450 m (+ 35 m) away: 100 % everywhere."""
    t = ToyOsm()
    t.street_with_blocks(name="大街")
    t.node(supermarket_x, 10, shop="supermarket", name="超市")
    t.node(supermarket_x, 12, amenity="marketplace", name="菜市场")
    return t.write(path)


def write_cities(root: Path, rows: list[dict[str, str]]) -> Path:
    file = root / "cities.csv"
    with file.open("w", newline="", encoding="utf-8-sig") as fh:
        w = csv.DictWriter(fh, fieldnames=["city_id", "name", "adcode", "osm", "units", "options"])
        w.writeheader()
        w.writerows(rows)
    return file


def province_rows(root: Path, *, helsinki: bool = True) -> list[dict[str, str]]:
    toy_communities(root / "communities.geojson")
    toy_city(root / "west.osm", 0.0)
    toy_city(root / "centre.osm", 500.0)
    (root / "broken.osm.pbf").write_bytes(b"this is not an OSM extract")
    opts = f"measure_crs={TOY_CRS}"
    rows = [
        {"city_id": "toy_w", "name": "西城", "adcode": "110102", "osm": "west.osm",
         "units": "community=communities.geojson", "options": opts},
        {"city_id": "toy_c", "name": "中城", "adcode": "110101", "osm": "centre.osm",
         "units": "community=communities.geojson", "options": opts},
        {"city_id": "broken", "name": "坏城", "adcode": "110105", "osm": "broken.osm.pbf",
         "units": "", "options": ""},
    ]  # fmt: skip
    if helsinki:
        rows.insert(2, {"city_id": "hel", "name": "Helsinki", "adcode": "", "osm": "demo:helsinki",
                        "units": "", "options": "lang=en"})  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``cities.csv`` of the four cities (toy_w, toy_c, hel, broken)."""
    root = tmp_path_factory.mktemp("province")
    return write_cities(root, province_rows(root))


def big_toy_city(path: Path, rows: int = 1000, per_row: int = 100) -> Path:
    """``rows`` parallel streets 60 m apart, each with ``per_row`` 8 × 10 m blocks: a city of
    ``rows × per_row`` buildings (100,000 by default, about 0.7 GB for its task)."""
    t = ToyOsm()
    for r in range(rows):
        y = r * 60.0
        t.way([t.node(0, y), t.node(per_row * 20.0, y)], highway="residential")
        for i in range(per_row):
            x = 10 + 20 * i
            t.ring(x - 4, y + 15, x + 4, y + 25, building="apartments", building__levels="4")
    t.node(0, 10, shop="supermarket")
    return t.write(path)
