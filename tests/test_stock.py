"""Stock-taking on a toy city of two communities (C1 x 0..500 m, C2 x 500..1000 m, y −100..300
m): buildings by use and age, floor area, facilities, green space and residential land per
unit, and the under-used stock — every figure worked out by hand from the drawing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import cityos
from cityos.cli import main
from tests.conftest import TOY_CRS, ToyOsm, import_expecting, toy_communities


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stock")
    t = ToyOsm()
    t.street_with_blocks(name="大街")  # B1..B10: 10 × 10 m, 4 storeys (400 m²), x = 50 … 950
    t.ring(700, 50, 720, 70, building="industrial", building__levels="2")  # 800 m², in C2
    t.node(120, 10, amenity="kindergarten", name="幼儿园")
    t.ring(100, 100, 200, 200, leisure="park", name="公园")  # 10,000 m² in C1
    t.ring(600, 150, 800, 250, landuse="residential")  # 20,000 m² in C2
    osm = t.write(root / "toy.osm")
    import_expecting(root / "b", osm=osm, measure_crs=TOY_CRS,
                     units=[("community", toy_communities(root / "c.geojson"))])  # fmt: skip
    return root / "b"


def test_stock_per_community(toy: Path, tmp_path: Path) -> None:
    b = cityos.read_bundle(toy)
    ids = b.buildings.set_index("name")["building_id"]
    events = tmp_path / "safety.csv"
    events.write_text("building_id,inspection_kind,inspection_date,year_built\n"
                      f"{ids['B1']},定期体检,2026-01-05,1975\n{ids['B2']},定期体检,2026-01-05,1990\n"
                      f"{ids['B2']},日常巡查,2026-03-05,\n", encoding="utf-8")  # fmt: skip
    assert main(["register", "add", str(toy), f"housing_safety={events}", "-q"]) == 0
    out = tmp_path / "stock"
    assert main(["stock", str(toy), "--out", str(out), "-q"]) == 0
    c = pd.read_excel(out / "stock.xlsx", sheet_name="社区 community").set_index("unit_id")
    assert c.loc[
        "C1", ["buildings", "floor_area_m2", "residential_buildings"]
    ].tolist() == pytest.approx([5, 2000, 5], rel=1e-3)
    assert c.loc[
        "C2", ["buildings", "floor_area_m2", "under_used_buildings", "under_used_floor_area_m2"]
    ].tolist() == pytest.approx([6, 2800, 1, 800], rel=1e-3)
    assert c.loc["C1", ["built_before_1980", "built_1980_1999", "built_unknown"]].tolist() == [
        1,
        1,
        3,
    ]
    assert (
        c.loc["C1", "facilities_kindergarten"] == 1 and c.loc["C2", "facilities_kindergarten"] == 0
    )
    # unit area 500 × 400 m = 200,000 m²
    assert c.loc["C1", ["green_space_m2", "green_space_share"]].tolist() == pytest.approx(
        [10_000, 5.0], rel=1e-3
    )
    assert c.loc["C2", ["residential_land_m2", "residential_land_share"]].tolist() == pytest.approx(
        [20_000, 10.0], rel=1e-3
    )
    idle = pd.read_excel(out / "stock.xlsx", sheet_name="存量资源 under_used")
    assert idle[["building", "reason", "community"]].values.tolist() == [
        ["industrial", "building=industrial", "C2"]
    ]
    import pyogrio

    assert {name for name, _ in pyogrio.list_layers(out / "stock.gpkg")} == {
        "units_city", "units_subdistrict", "units_community", "under_used"}  # fmt: skip
    # the folder is ours: replaced with --force only
    assert main(["stock", str(toy), "--out", str(out), "-q"]) == 2
    assert main(["stock", str(toy), "--out", str(out), "--force", "-q"]) == 0
