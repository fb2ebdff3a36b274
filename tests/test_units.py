"""Units at the health check's levels: given, from OSM admin levels, or generated grids."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

import cityos
from cityos.errors import ConfigError
from cityos.units import admin_level_table, assign_to_units, square_grid, units_by_level
from tests.conftest import import_expecting

CRS = "EPSG:32650"


def buildings_at(points: list[tuple[float, float]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        geometry=[shapely.box(x, y, x + 10, y + 10) for x, y in points], crs=CRS
    )


def test_admin_level_tables() -> None:
    assert admin_level_table("cn") == {6: "city", 8: "subdistrict", 10: "community"}
    with pytest.raises(ConfigError, match="known: cn, fi"):
        admin_level_table("xx")


def test_square_grid_covers_extent() -> None:
    grid = square_grid((120.0, 30.0, 1200.0, 400.0), 500.0, CRS)
    assert len(grid) == 3  # cells aligned to multiples of 500 m: x 0–1500, y 0–500
    assert grid.area.tolist() == [250_000.0] * 3
    assert grid.total_bounds.tolist() == [0.0, 0.0, 1500.0, 500.0]
    assert grid["unit_id"].tolist() == ["grid500:0_0", "grid500:1_0", "grid500:2_0"]


def test_levels_given_admin_and_generated() -> None:
    units = gpd.GeoDataFrame(
        {
            "unit_id": ["S1", "osm:r1"],
            "name": ["一街道", "某社区"],
            "level": ["subdistrict", None],
            "admin_level": [np.nan, 10.0],
            "population": [1000, None],
        },
        geometry=[shapely.box(0, 0, 1000, 1000), shapely.box(0, 0, 400, 400)],
        crs=CRS,
    )
    b = buildings_at([(100, 100), (600, 600), (1700, 200)])
    got = units_by_level(units, b, crs=CRS, admin_levels={10: "community"})
    assert got.sources["subdistrict"] == "city files"
    assert got.sources["community"] == "OSM admin_level"
    assert got.generated("city") and not got.generated("subdistrict")
    assert "population" in got.levels["subdistrict"]
    # without the admin table the community level is a generated 500 m grid of occupied cells
    grid = units_by_level(units, b, crs=CRS)
    assert grid.sources["community"] == "generated: 500 m square grid"
    assert len(grid.levels["community"]) == 3 and grid.levels["community"]["generated"].all()
    ids = assign_to_units(gpd.GeoSeries(b.representative_point(), crs=CRS), got)
    assert ids["subdistrict"].tolist() == ["S1", "S1", None]
    assert ids["community"].tolist() == ["osm:r1", None, None]
    assert ids["city"].tolist() == ["city"] * 3


def test_helsinki_all_generated_and_every_building_placed(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    bundle = import_expecting(tmp_path_factory.mktemp("h") / "b", osm=cityos.demo_osm_path())
    units = units_by_level(bundle.units, bundle.buildings, crs=bundle.crs)
    assert all(units.generated(lv) for lv in ("city", "subdistrict", "community"))
    pts = gpd.GeoSeries(
        shapely.point_on_surface(bundle.projected("buildings").geometry.to_numpy()), crs=bundle.crs
    )
    ids = assign_to_units(pts, units)
    assert ids.notna().all().all()
    # a 500 m cell holds fewer buildings than the city
    assert ids["community"].nunique() > 1 and ids["city"].nunique() == 1
