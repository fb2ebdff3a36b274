"""The dashboard's vector tiles, decoded by an independent reader (``mapbox-vector-tile``):
which layers a zoom carries, which features a tile holds, where their vertices land, and the
tile arithmetic, against values worked out with pyproj's EPSG:3857 and the slippy-map formulas."""

from __future__ import annotations

import math
from pathlib import Path

import mapbox_vector_tile
import pandas as pd
import pyarrow as pa
import pyproj
import pytest

from cityos.bundle import read_bundle
from cityos.errors import InputError
from cityos.web.dashboard import load_map
from cityos.web.tiles import TileStore, _strings, load_map_layers, tile_bounds
from tests.web.conftest import toy_point

HALF = 20037508.342789244  # half the EPSG:3857 square, metres
_MERC = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)


def slippy(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The XYZ tile holding (lon, lat) at zoom z (OpenStreetMap wiki's formulas)."""
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


@pytest.fixture(scope="module")
def store(toy_bundle: Path) -> TileStore:
    return load_map(read_bundle(toy_bundle), None).tiles


def decode(data: bytes) -> dict[str, list[dict[str, object]]]:
    layers = mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})
    return {name: layer["features"] for name, layer in layers.items()}


@pytest.mark.parametrize(
    ("z", "x", "y", "box"),
    [
        (0, 0, 0, (-HALF, -HALF, HALF, HALF)),
        (1, 1, 0, (0.0, 0.0, HALF, HALF)),
        (1, 0, 1, (-HALF, -HALF, 0.0, 0.0)),
        (2, 3, 3, (HALF / 2, -HALF, HALF, -HALF / 2)),
    ],
)  # fmt: skip
def test_tile_bounds(z: int, x: int, y: int, box: tuple[float, ...]) -> None:
    assert tile_bounds(z, x, y) == pytest.approx(box, abs=1e-6)


def test_a_building_tile(store: TileStore, toy_bundle: Path) -> None:
    # the zoom-16 tile of block B1 (x 45..55 m): about 470 m of the 1,000 m street at 39.9° N
    buildings = read_bundle(toy_bundle).buildings
    merc = buildings.to_crs("EPSG:3857")
    z = 16
    x, y = slippy(*toy_point(50, 25), z)
    xmin, ymin, xmax, ymax = tile_bounds(z, x, y)
    size = xmax - xmin
    pad = size * 64 / 4096  # the tile's buffer
    box = merc.bounds
    meets = ((box.maxx >= xmin - pad) & (box.minx <= xmax + pad)
             & (box.maxy >= ymin - pad) & (box.miny <= ymax + pad))  # fmt: skip
    expected = set(buildings["building_id"][meets])
    features = decode(store.tile(z, x, y))
    assert {"units", "unit_labels", "streets", "buildings"} <= set(features)
    got = {str(f["properties"]["building_id"]): f for f in features["buildings"]}
    assert set(got) == expected and 0 < len(expected) < len(buildings)
    # every vertex of each block in tile coordinates: 4096 per side, y down from the north edge
    for i in merc.index[meets]:
        want = {(round((px - xmin) / size * 4096), round((ymax - py) / size * 4096))
                for px, py in merc.geometry[i].exterior.coords}  # fmt: skip
        ring = got[buildings["building_id"][i]]["geometry"]["coordinates"][0]  # type: ignore[index]
        assert {tuple(p) for p in ring} == want
    assert got[buildings["building_id"][merc.index[meets][0]]]["properties"]["levels"] == 4.0
    names = {f["properties"]["name"] for f in features["unit_labels"]}
    assert names and names <= {"东社区", "西社区"}


@pytest.mark.parametrize(("z", "present", "absent"), [
    (10, {"units", "unit_labels"}, {"green_spaces", "streets", "buildings", "facilities"}),
    (13, {"units", "streets"}, {"buildings"}),
    (15, {"units", "streets", "buildings"}, set()),
])  # fmt: skip
def test_layers_by_zoom(store: TileStore, z: int, present: set[str], absent: set[str]) -> None:
    layers = set(decode(store.tile(z, *slippy(*toy_point(500, 25), z))))
    assert present <= layers and not (absent & layers)


def test_an_empty_tile_is_empty_and_a_wrong_one_refused(store: TileStore) -> None:
    assert store.tile(5, 0, 0) == b""  # the Arctic Pacific: nothing of the toy city
    with pytest.raises(InputError, match=r"x and y must be 0 to 3 at zoom 2"):
        store.tile(2, 4, 0)
    with pytest.raises(InputError, match="zoom must be 0 to 30"):
        store.tile(31, 0, 0)


def test_catalogue_minzooms() -> None:
    layers = {layer.id: layer for layer in load_map_layers()}
    assert [
        layers[i].minzoom for i in ("units", "green_spaces", "streets", "facilities", "buildings")
    ] == [0, 11, 13, 13, 15]
    assert layers["units"].label == "unit_labels"


@pytest.mark.parametrize(
    ("values", "want"),
    [
        (pd.Series(["主干道", None, float("nan"), "b"], dtype=object), ["主干道", None, None, "b"]),
        (pd.Series(["a", pd.NA], dtype="string"), ["a", None]),
        (pd.Series(["x", "y", "x"], dtype="category"), ["x", "y", "x"]),
        (pd.Series([None, None], dtype=object), [None, None]),
        # not all strings: each value as str, as the tiles always wrote them
        (pd.Series(["a", 3, None], dtype=object), ["a", "3", None]),
        (pd.Series([True, None], dtype=object), ["True", None]),
    ],
)
def test_string_properties_keep_missing_values_missing(values: pd.Series, want: list[object]) -> None:  # fmt: skip
    got = _strings(values)
    assert got.type == pa.string() and got.to_pylist() == want
