"""The columnar building reader against pyosmium's: the same rows in the same order, the same
geometries exactly, on real extracts (Helsinki, Kouvola, and the Chinese ones in the shared data
where present), the seeded synthetic city, and a toy file of the rings libosmium must judge."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import osmium
import pandas as pd
import pytest
import shapely

import cityos
from benchmarks.synthetic_osm import CitySpec, write_city
from cityos.classify import FacilityRules, load_osm_tables
from cityos.sources import osm_columnar
from cityos.sources.osm import read_osm
from tests.conftest import SHARED_DATA, ToyOsm

CHINA = sorted((SHARED_DATA / "china-osm").glob("*.osm.pbf"))
LAYERS = ("buildings", "facilities", "green_spaces", "residential_land", "admin", "walk_edges")


def _pbf(xml: Path) -> Path:
    """The toy XML as PBF (the columnar reader reads PBF only)."""
    pbf = xml.with_suffix(".pbf")
    with osmium.SimpleWriter(str(pbf)) as writer:
        for obj in osmium.FileProcessor(str(xml)):
            writer.add(obj)
    return pbf


def _assert_same(path: Path) -> pd.DataFrame:
    rules, tables = FacilityRules.load(), load_osm_tables()
    want = read_osm(path, rules=rules, tables=tables, parallel=True, building_reader="pyosmium")
    got = read_osm(path, rules=rules, tables=tables, parallel=True, building_reader="columnar")
    for layer in LAYERS:
        a, b = getattr(want, layer), getattr(got, layer)
        cols = [c for c in a.columns if c != "geometry"]
        pd.testing.assert_frame_equal(a[cols], b[cols], obj=layer)
        assert shapely.equals_exact(a.geometry.to_numpy(), b.geometry.to_numpy(), 0).all(), layer
    assert want.stats == got.stats
    return got.buildings


@pytest.mark.parametrize(
    "path", [cityos.demo_osm_path("helsinki"), cityos.demo_osm_path("kouvola"), *CHINA],
    ids=lambda p: p.name.split(".")[0],
)  # fmt: skip
def test_real_extracts_read_alike(path: Path) -> None:
    buildings = _assert_same(path)
    assert len(buildings) > 100


def test_relation_area_comes_when_its_last_member_way_is_read() -> None:
    # Helsinki's Citycenter (r9630): outer way 675858716, its last member in the file and a
    # building of its own, is read after the rest; the relation's area comes just before it
    ids = _assert_same(cityos.demo_osm_path("helsinki"))["building_id"].tolist()
    assert ids[ids.index("osm:r9630") + 1] == "osm:w675858716"


def test_synthetic_city_reads_alike(tmp_path: Path) -> None:
    pbf = tmp_path / "city.osm.pbf"
    write_city(CitySpec("columnar", grid=30, buildings=3_000, pois=300, seed=7), pbf)
    buildings = _assert_same(pbf)
    # the synthetic city has building relations, with holes
    relations = np.flatnonzero(buildings["building_id"].str.startswith("osm:r").to_numpy())
    assert len(relations) > 10
    assert (shapely.get_num_interior_rings(buildings.geometry.iloc[relations].to_numpy()) > 0).any()


def test_rings_libosmium_must_judge_read_alike(tmp_path: Path) -> None:
    toy = ToyOsm()
    toy.ring(0, 0, 10, 10, building="yes", name="square")
    a, b, c, d = (toy.node(x, y) for x, y in [(20, 0), (30, 10), (30, 0), (20, 10)])
    toy.way([a, b, c, d, a], building="yes", name="bow tie")  # crossing edges: no area
    a, b, c, d = (toy.node(x, y) for x, y in [(40, 0), (50, 0), (50, 10), (40, 10)])
    toy.way([a, b, b, c, d, a], building="yes", name="repeated node")
    e, f, g, h = (toy.node(x, y) for x, y in [(60, 0), (70, 0), (65, 5), (70, 10)])
    i, j = toy.node(60, 10), toy.node(65, 5)
    toy.way([e, f, g, h, i, j, e], building="yes", name="touching at a point")
    a, b, c = (toy.node(x, y) for x, y in [(80, 0), (90, 0), (85, 0)])
    toy.way([a, b, c, toy.node(80, 10), a], building="yes", name="collinear corner")
    a, b, c = toy.node(100, 0), toy.node(110, 0), toy.node(110, 10)
    toy.way([a, b, c, a], building="yes", name="triangle")
    toy.way([c, b, a, toy.node(100, 10), c], building="yes", name="clockwise from the top right")
    buildings = _assert_same(_pbf(toy.write(tmp_path / "toy.osm")))
    names = set(buildings["name"])
    assert {"square", "repeated node", "triangle", "clockwise from the top right"} <= names
    assert "bow tie" not in names


def test_extract_without_buildings_reads_alike(tmp_path: Path) -> None:
    toy = ToyOsm()
    toy.way([toy.node(0, 0), toy.node(100, 0)], highway="residential")
    toy.way([toy.node(0, 50), toy.node(10, 50), toy.node(10, 60), toy.node(0, 50)], building="no")
    assert _assert_same(_pbf(toy.write(tmp_path / "toy.osm"))).empty


def test_rings_turn_counter_clockwise_from_the_smallest_vertex() -> None:
    # one clockwise square starting at (1, 1): libosmium writes (0, 0) (1, 0) (1, 1) (0, 1)
    lon = np.array([1.0, 1.0, 0.0, 0.0, 1.0])
    lat = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    xy, offsets, repeat = osm_columnar._rings(lon, lat, np.array([0, 5]))
    assert xy.tolist() == [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]
    assert offsets.tolist() == [0, 5]
    assert repeat.tolist() == [False]


@pytest.mark.parametrize(
    ("ring", "simple"),
    [
        ([(0, 0), (1, 0), (1, 1), (0, 1)], True),
        ([(0, 0), (1, 1), (1, 0), (0, 1)], False),  # bow tie
        ([(0, 0), (2, 0), (1, 0), (0, 1)], False),  # spike back along an edge
        ([(0, 0), (1, 0), (2, 0), (0, 1)], True),  # collinear corner, still simple
        ([(0, 0), (1, 0), (0, 1)], True),
        ([(0, 0), (2, 0), (1, 1), (2, 2), (0, 2), (1, 1)], False),  # touches itself
        ([(0, 0), (3, 0), (3, 3), (2, 1), (1, 3), (0, 3)], True),
    ],
)
def test_simple_rings_as_geos_says(ring: list[tuple[int, int]], simple: bool) -> None:
    xy = np.array([*ring, ring[0]], dtype=float) * 1e-5 + [24.9, 60.1]
    got = osm_columnar._simple(xy, np.array([0, len(xy)]))
    assert got.tolist() == [simple]


def test_available_only_for_pbf_with_the_index_in_memory(tmp_path: Path) -> None:
    pbf = cityos.demo_osm_path("helsinki")
    assert osm_columnar.available(pbf, "flex_mem")
    assert not osm_columnar.available(pbf, f"sparse_file_array,{tmp_path / 'idx'}")
    assert not osm_columnar.available(tmp_path / "city.osm", "flex_mem")


def test_rings_in_chunks_equal_rings_at_once() -> None:
    rng = np.random.default_rng(1)
    offsets = np.concatenate([[0], np.cumsum(rng.integers(4, 9, size=1000))])
    lon, lat = rng.random(offsets[-1]), rng.random(offsets[-1])
    lon[offsets[1:] - 1], lat[offsets[1:] - 1] = lon[offsets[:-1]], lat[offsets[:-1]]
    whole = osm_columnar._rings(lon, lat, offsets, chunk=10**9)
    for got, want in zip(osm_columnar._rings(lon, lat, offsets, chunk=77), whole, strict=True):
        np.testing.assert_array_equal(got, want)
    assert len(whole[1]) == 1001 and whole[1][-1] == len(whole[0])


def test_unknown_reader_is_refused() -> None:
    rules, tables = FacilityRules.load(), load_osm_tables()
    with pytest.raises(ValueError, match="building_reader 'duck'"):
        read_osm(cityos.demo_osm_path("helsinki"), rules=rules, tables=tables,
                 building_reader="duck")  # type: ignore[arg-type]  # fmt: skip


def test_reader_in_this_process_gives_pyosmium_rows(tmp_path: Path) -> None:
    # in this process, so that a warning of DuckDB's (a deprecation) fails the test
    import pyarrow.feather as feather

    from cityos.sources.osm_buildings import _read_buildings

    pbf, tables = cityos.demo_osm_path("helsinki"), load_osm_tables()
    _read_buildings(str(pbf), tables, "flex_mem", str(tmp_path / "b.arrow"))
    want = feather.read_table(tmp_path / "b.arrow")
    got = osm_columnar.read_buildings(pbf, tables)
    assert got.table.column("id").to_pylist() == want.column("id").to_pylist()
    rings = got.table.column("wkb").is_null().to_numpy(zero_copy_only=False)
    assert len(got.ring_offsets) == rings.sum() + 1 and got.ring_offsets[-1] == len(got.xy)
