"""Flat layers against the shapely path: the same WKB bytes, the same areas bit for bit, the
same GeoParquet file content (Arrow types, pandas and geo metadata, values)."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely

from cityos import flatlayer
from cityos.flatlayer import FlatGeometry, FlatLayer, to_crs
from cityos.measure import projected_area


def _polygons(n: int, seed: int = 3) -> tuple[FlatGeometry, np.ndarray]:
    """``n`` quadrilaterals and pentagons around Helsinki, every fifth row a polygon with a
    hole or a multipolygon kept as shapely; the flat polygons and the same as shapely."""
    rng = np.random.default_rng(seed)
    rings, geoms = [], []
    flat = np.ones(n, dtype=bool)
    other = []
    for i in range(n):
        x0, y0 = 24.9 + rng.random() * 0.1, 60.1 + rng.random() * 0.05
        k = 4 + i % 2
        angle = np.sort(rng.random(k)) * 2 * np.pi
        ring = np.column_stack([x0 + 1e-4 * np.cos(angle), y0 + 5e-5 * np.sin(angle)])
        ring = np.round(np.vstack([ring, ring[:1]]), 7)
        g = shapely.Polygon(ring)
        if i % 5 == 4:
            flat[i] = False
            g = (
                shapely.Polygon(ring, holes=[shapely.affinity.scale(g, 0.3, 0.3).exterior])
                if i % 10 == 4
                else shapely.MultiPolygon([g, shapely.affinity.translate(g, 1e-3)])
            )
            other.append(g)
        else:
            rings.append(ring)
        geoms.append(g)
    ring_at = np.concatenate([[0], np.cumsum([len(r) for r in rings])]).astype(np.int64)
    xy = np.vstack(rings) if rings else np.zeros((0, 2))
    return FlatGeometry(flat, xy, ring_at, np.asarray(other, dtype=object)), np.asarray(geoms)


@pytest.mark.parametrize("writer", ["C", "NumPy"])
def test_wkb_is_what_geos_writes(writer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if writer == "NumPy":
        monkeypatch.setattr(flatlayer, "_c_polygon_wkb", lambda: None)
    flat, geoms = _polygons(200)
    got = flat.wkb().to_pylist()
    assert got == [bytes(b) for b in shapely.to_wkb(geoms)]


def test_wkb_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flatlayer, "_CHUNK", 7)
    flat, geoms = _polygons(40)
    wkb = flat.wkb()
    assert wkb.num_chunks == 6
    assert wkb.to_pylist() == [bytes(b) for b in shapely.to_wkb(geoms)]


@pytest.mark.parametrize("summer", ["C", "NumPy"])
def test_areas_equal_projected_area_bit_for_bit(
    summer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if summer == "NumPy":  # not compiled: every vertex projected, NumPy's sums
        import cityos

        monkeypatch.delattr(cityos, "_pbf", raising=False)
        monkeypatch.setitem(sys.modules, "cityos._pbf", None)
    flat, geoms = _polygons(300)
    want = projected_area(gpd.GeoSeries(geoms, crs="EPSG:4326"), "EPSG:32635")
    np.testing.assert_array_equal(flat.areas("EPSG:32635"), want)
    assert (want > 0).all()


def test_take_and_bounds_and_shapely() -> None:
    flat, geoms = _polygons(50)
    rows = np.array([7, 4, 0, 9, 14])
    part = flat.take(rows)
    assert shapely.equals_exact(part.to_shapely(), geoms[rows], 0).all()
    np.testing.assert_array_equal(flat.total_bounds(), shapely.total_bounds(geoms))
    assert flat.geom_types() == ["MultiPolygon", "Polygon"]


@pytest.mark.parametrize("n", [0, 1, 120])
def test_geoparquet_file_as_geopandas_writes_it(tmp_path: Path, n: int) -> None:
    flat, geoms = _polygons(n)
    text = np.array([f"osm:w{i}" for i in range(n)], dtype=object)
    some = np.where(np.arange(n) % 3 == 0, "Koulu", None).astype(object)
    columns = {
        "building_id": pa.array(text, pa.string()),
        "name": pa.array(some, pa.string()),
        "address": pa.nulls(n, pa.string()),
        "floor_area_m2": pa.array(np.arange(n, dtype=float) * 1.5),
    }
    layer = FlatLayer(columns, flat)
    frame = gpd.GeoDataFrame(
        {"building_id": pd.Series(text, dtype=object), "name": pd.Series(some, dtype=object),
         "address": pd.Series([None] * n, dtype=object),
         "floor_area_m2": np.arange(n, dtype=float) * 1.5},
        geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"), crs="EPSG:4326",
    )  # fmt: skip
    frame.to_parquet(tmp_path / "want.parquet", index=False)
    layer.write(tmp_path / "got.parquet")
    want, got = pq.read_table(tmp_path / "want.parquet"), pq.read_table(tmp_path / "got.parquet")
    assert got.schema.equals(want.schema, check_metadata=True)
    assert got.equals(want)
    pd.testing.assert_frame_equal(
        gpd.read_parquet(tmp_path / "got.parquet"), gpd.read_parquet(tmp_path / "want.parquet")
    )
    pd.testing.assert_frame_equal(layer.to_geodataframe(), frame)


def _lines(n: int, seed: int = 5) -> tuple[FlatGeometry, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 30, size=n)  # long lines too: a sum in order, not pairwise
    xy = np.round(np.column_stack([24.9 + rng.random(sizes.sum()) * 0.05,
                                   60.1 + rng.random(sizes.sum()) * 0.05]), 7)  # fmt: skip
    at = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    flat = FlatGeometry(np.ones(n, dtype=bool), xy, at, np.empty(0, dtype=object), "LineString")
    return flat, np.asarray([shapely.LineString(xy[a:b]) for a, b in itertools.pairwise(at)])


@pytest.mark.parametrize("compiled", [True, False])
def test_lines_measure_and_write_as_geos_does(
    compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not compiled:  # the NumPy sums where the decoder is not compiled
        import cityos

        monkeypatch.setitem(sys.modules, "cityos._pbf", None)
        monkeypatch.delattr(cityos, "_pbf", raising=False)
        with pytest.raises(ImportError):
            from cityos import _pbf  # noqa: F401
    flat, geoms = _lines(300)
    want = gpd.GeoSeries(geoms, crs="EPSG:4326").to_crs("EPSG:32635").length.to_numpy()
    np.testing.assert_array_equal(flat.lengths("EPSG:32635"), want)
    assert flat.wkb().to_pylist() == [bytes(b) for b in shapely.to_wkb(geoms)]
    assert shapely.equals_exact(flat.to_shapely(), geoms, 0).all()
    assert flat.geom_types() == ["LineString"]


def test_line_layer_file_as_geopandas_writes_it(tmp_path: Path) -> None:
    flat, geoms = _lines(50)
    ids = np.arange(50, dtype=np.int64)
    FlatLayer({"edge_id": pa.array(ids)}, flat).write(tmp_path / "got.parquet")
    gpd.GeoDataFrame({"edge_id": ids}, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"),
                     crs="EPSG:4326").to_parquet(tmp_path / "want.parquet", index=False)  # fmt: skip
    want, got = pq.read_table(tmp_path / "want.parquet"), pq.read_table(tmp_path / "got.parquet")
    assert got.schema.equals(want.schema, check_metadata=True) and got.equals(want)


@pytest.mark.parametrize("kind", ["polygons", "points"])
def test_to_crs_equals_geopandas_bit_for_bit(kind: str) -> None:
    rng = np.random.default_rng(5)
    lon, lat = 24.9 + rng.random(120_000) * 0.1, 60.1 + rng.random(120_000) * 0.1
    geoms = (
        shapely.box(lon, lat, lon + 1e-4, lat + 2e-4)
        if kind == "polygons"
        else shapely.points(lon, lat)
    )
    frame = gpd.GeoDataFrame({"n": np.arange(len(lon)), "geometry": geoms}, crs="EPSG:4326")
    got, want = to_crs(frame, "EPSG:32635"), frame.to_crs("EPSG:32635")
    assert list(got.columns) == ["n", "geometry"] and got.crs == want.crs
    assert shapely.equals_identical(got.geometry.to_numpy(), want.geometry.to_numpy()).all()
    assert frame.crs == "EPSG:4326" and frame.geometry.iloc[0].bounds[0] < 180  # not changed
