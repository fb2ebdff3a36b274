"""Building population: floor area ÷ area per person, calibrated to unit or city totals; worked
by hand on a toy city and checked on the real Beijing subdistrict totals."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from cityos.errors import InputError
from cityos.population import DEFAULT_AREA_PER_PERSON_M2, estimate_population

CRS = "EPSG:32650"


@pytest.fixture
def toy() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    #  unit A (0..100) holds b0, b1, b2; unit B (200..300) holds b3 (unknown use, in residential
    #  land); unit C (400..500) holds nothing residential; b4 lies outside every unit
    buildings = gpd.GeoDataFrame(
        {
            "use": ["residential", "residential", "non_residential", "unknown", "unknown"],
            "floor_area_m2": [1000.0, 2000.0, 5000.0, 400.0, 800.0],
        },
        geometry=[
            shapely.box(10, 10, 20, 20),
            shapely.box(30, 30, 40, 40),
            shapely.box(50, 50, 60, 60),
            shapely.box(210, 10, 220, 20),
            shapely.box(700, 0, 710, 10),
        ],
        crs=CRS,
    )
    units = gpd.GeoDataFrame(
        {
            "unit_id": ["A", "B", "C"],
            "name": ["甲街道", "乙街道", "丙街道"],
            "population": [150, 30, 500],
        },
        geometry=[
            shapely.box(0, 0, 100, 100),
            shapely.box(200, 0, 300, 100),
            shapely.box(400, 0, 500, 100),
        ],
        crs=CRS,
    )
    land = gpd.GeoDataFrame(geometry=[shapely.box(200, 0, 260, 60)], crs=CRS)
    return buildings, units, land


def test_floor_area_estimate_by_hand(toy: tuple[gpd.GeoDataFrame, ...]) -> None:
    buildings, _, land = toy
    est = estimate_population(buildings, area_per_person=40)
    assert est.population.tolist() == [25.0, 50.0, 0.0, 0.0, 0.0]
    est = estimate_population(buildings, area_per_person=40, residential_land=land)
    assert est.population.tolist() == [25.0, 50.0, 0.0, 10.0, 0.0]
    assert est.residential.tolist() == [True, True, False, True, False]
    assert est.method["area_per_person_confirmed"] is False
    assert est.method["unknown_use_counted_in_residential_land"] == 1
    assert estimate_population(buildings).method["area_per_person_m2"] == DEFAULT_AREA_PER_PERSON_M2


def test_calibration_to_units_by_hand(toy: tuple[gpd.GeoDataFrame, ...]) -> None:
    buildings, units, land = toy
    est = estimate_population(buildings, area_per_person=40, residential_land=land, units=units)
    # A: 150 over 25 + 50 → ×2; B: 30 over 10 → ×3; C: 500 unallocated; b4 outside: raw 0
    assert est.population.tolist() == pytest.approx([50.0, 100.0, 0.0, 30.0, 0.0])
    assert est.unallocated.to_dict("records") == [
        {"unit_id": "C", "name": "丙街道", "population": 500.0}
    ]
    assert est.method["unallocated_population"] == 500.0
    assert est.method["calibrated_units"] == 2


def test_city_total(toy: tuple[gpd.GeoDataFrame, ...]) -> None:
    buildings, _, _ = toy
    est = estimate_population(buildings, city_total=300)
    assert est.population.sum() == pytest.approx(300)
    assert est.population.iloc[1] == pytest.approx(2 * est.population.iloc[0])
    assert est.method["calibration"] == "city total"


@pytest.mark.parametrize(
    ("kw", "message"),
    [({"area_per_person": 0}, "positive"), ({"city_total": -1}, ">= 0")],
)
def test_bad_options(toy: tuple[gpd.GeoDataFrame, ...], kw: dict[str, float], message: str) -> None:
    with pytest.raises(InputError, match=message):
        estimate_population(toy[0], **kw)


def test_both_calibrations_or_missing_columns(toy: tuple[gpd.GeoDataFrame, ...]) -> None:
    buildings, units, _ = toy
    with pytest.raises(InputError, match="not both"):
        estimate_population(buildings, units=units, city_total=10)
    with pytest.raises(InputError, match="floor_area_m2"):
        estimate_population(buildings.drop(columns=["floor_area_m2"]))
    with pytest.raises(InputError, match="no population column 'pop'"):
        estimate_population(buildings, units=units, unit_population="pop")


def test_beijing_subdistrict_totals(shared_data: Path) -> None:
    units = gpd.read_file(shared_data / "beijing-subdistricts" / "beijing_subdistricts.gpkg")
    units = units.rename(columns={"subdistrict": "name"})
    units["unit_id"] = [f"bj{i}" for i in range(len(units))]
    # three residential buildings of different sizes inside every subdistrict
    proj = units.to_crs(CRS)
    pts = proj.representative_point()
    rng = np.random.default_rng(0)
    geoms, floors = [], []
    for p in pts:
        for dx in (0.0, 1.0, 2.0):
            geoms.append(shapely.box(p.x + dx, p.y, p.x + dx + 0.5, p.y + 0.5))
            floors.append(float(rng.uniform(500, 20000)))
    buildings = gpd.GeoDataFrame(
        {"use": "residential", "floor_area_m2": floors}, geometry=geoms, crs=CRS
    )
    est = estimate_population(buildings, units=units)
    assert est.population.sum() == pytest.approx(units["population"].sum(), rel=1e-9)
    assert round(est.population.sum()) == 20_755_648
    per_unit = est.population.to_numpy().reshape(-1, 3).sum(axis=1)
    assert per_unit == pytest.approx(units["population"].to_numpy(), rel=1e-9)
    assert est.unallocated.empty
