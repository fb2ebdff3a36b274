"""Areas measured in the projected CRS: worked out on shapes drawn in metres."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from cityos.measure import projected_area

UTM35 = "EPSG:32635"  # Helsinki's zone; the shapes are drawn in it, then taken to WGS84


def _wgs84(*shapes: shapely.Geometry | None) -> gpd.GeoSeries:
    return gpd.GeoSeries(list(shapes), crs=UTM35).to_crs("EPSG:4326")


def test_areas_of_shells_holes_and_parts() -> None:
    x, y = 385_000.0, 6_672_000.0
    square = shapely.box(x, y, x + 100, y + 100)  # 10,000 m²
    holed = square.difference(shapely.box(x + 40, y + 40, x + 60, y + 60))  # less 400 m²
    two = shapely.MultiPolygon(
        [shapely.box(x, y, x + 10, y + 10), shapely.box(x + 50, y, x + 80, y + 20)]
    )
    tri = shapely.Polygon([(x, y), (x + 30, y), (x, y + 40)])  # ½ · 30 · 40
    area = projected_area(_wgs84(square, holed, two, tri), UTM35)
    np.testing.assert_allclose(area, [10_000.0, 9_600.0, 100.0 + 600.0, 600.0], rtol=1e-9)


def test_other_geometries_and_missing_ones() -> None:
    x, y = 385_000.0, 6_672_000.0
    series = _wgs84(shapely.Point(x, y), shapely.LineString([(x, y), (x + 5, y)]), None,
                    shapely.Polygon(), shapely.box(x, y, x + 2, y + 3))  # fmt: skip
    area = projected_area(series, UTM35)
    assert area[:2].tolist() == [0.0, 0.0]
    assert np.isnan(area[2])
    assert area[3] == 0.0
    assert area[4] == pytest.approx(6.0, rel=1e-9)


def test_the_same_numbers_as_geos_after_projection() -> None:
    """The GEOS form of the shoelace sum: bit for bit what ``to_crs(...).area`` gives."""
    rng = np.random.default_rng(7)
    corners = rng.uniform(0, 50, (200, 3, 2)) + np.array([385_000.0, 6_672_000.0])
    shapes = [shapely.Polygon(c).convex_hull for c in corners]
    shapes.append(shapes[0].buffer(30).difference(shapes[1]))
    series = _wgs84(*shapes)
    assert projected_area(series, UTM35).tolist() == series.to_crs(UTM35).area.tolist()


def test_facilities_carry_transit_capacity_or_none() -> None:
    from cityos.classify import FacilityRules
    from cityos.measure import measure_facilities

    raw = gpd.GeoDataFrame(
        {
            "feature_id": ["osm:n1", "osm:n2", "osm:n3"],
            "category": ["bus_stop", "school", "rail_station"],
            "rule": ["r", "r", "r"],
            "name": [None, "x", None],
            "source": ["osm"] * 3,
        },
        geometry=shapely.points([(24.9, 60.1), (24.91, 60.1), (24.92, 60.1)]),
        crs="EPSG:4326",
    )
    got = measure_facilities(raw, UTM35, FacilityRules.load())
    # missing where a category is no transit (a text column: pandas' missing text)
    assert got["transit"].isna().tolist() == [False, True, False]
    assert got["transit"][[0, 2]].tolist() == ["low", "high"]
    assert got["facility_id"].tolist() == [
        "osm:n1:bus_stop",
        "osm:n2:school",
        "osm:n3:rail_station",
    ]
