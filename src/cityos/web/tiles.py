"""The dashboard's base map from the bundle itself: Mapbox Vector Tiles (MVT 2.1) made on request
by DuckDB's spatial extension (``ST_AsMVT``), one tile carrying every layer of
``map_layers.toml`` whose ``minzoom`` it reaches, cached once made.

The layers are projected to Web Mercator (EPSG:3857) once, when the service starts, into DuckDB
tables ordered along a Hilbert curve with each feature's bounding box, so that a tile reads only
the features whose box meets the tile's (plus its buffer). A tile of several layers is their
encoded layers one after the other: an MVT tile is a sequence of layer messages
(vector-tile-spec 2.1 §4.1), so the bytes of one-layer tiles concatenate into a valid tile.
"""

from __future__ import annotations

import math
import threading
import tomllib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely

from cityos import spatialdb
from cityos.errors import InputError
from cityos.measure import bbox

__all__ = ["EXTENT", "MAX_ZOOM", "MapLayer", "TileStore", "load_map_layers", "tile_bounds"]

#: tile coordinates per side (vector-tile-spec's customary 4096) and the buffer around a tile
EXTENT, BUFFER = 4096, 64
#: the deepest zoom tiles are made for; the map zooms on beyond it by overzooming the last tiles
MAX_ZOOM = 16
#: half the side of the Web Mercator square, metres (EPSG:3857, the WGS84 equator's half length)
HALF = 20037508.342789244
#: tiles kept in memory once made
CACHE_TILES = 4096


@dataclass(frozen=True)
class MapLayer:
    """One tile layer: its name, the bundle layer it is made of, the lowest zoom it is in, the
    properties kept, the simplification in tile pixels, and the name of its label layer."""

    id: str
    source: str
    minzoom: int
    columns: tuple[str, ...]
    simplify: float
    label: str | None = None


def load_map_layers() -> tuple[MapLayer, ...]:
    """The built-in layer catalogue (``cityos/web/map_layers.toml``)."""
    text = resources.files("cityos.web").joinpath("map_layers.toml").read_text("utf-8")
    return tuple(
        MapLayer(
            id=t["id"],
            source=t["from"],
            minzoom=int(t["minzoom"]),
            columns=tuple(t["columns"]),
            simplify=float(t["simplify"]),
            label=t.get("label"),
        )
        for t in tomllib.loads(text)["layer"]
    )


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """The Web Mercator box (xmin, ymin, xmax, ymax; metres) of tile ``z/x/y`` (XYZ scheme: y
    counted from the north)."""
    size = 2 * HALF / 2**z
    return (-HALF + x * size, HALF - (y + 1) * size, -HALF + (x + 1) * size, HALF - y * size)


def check_tile(z: int, x: int, y: int) -> None:
    """Raises :class:`InputError` for a tile that does not exist."""
    if not 0 <= z <= 30:
        raise InputError(f"tile {z}/{x}/{y}: zoom must be 0 to 30")
    if not (0 <= x < 2**z and 0 <= y < 2**z):
        raise InputError(f"tile {z}/{x}/{y}: x and y must be 0 to {2**z - 1} at zoom {z}")


def _mercator(geoms: gpd.GeoSeries) -> np.ndarray:
    """WGS84 geometries in Web Mercator (the spherical formulas of EPSG:3857, latitudes clamped
    to ±85.0511°, the square's edge)."""

    def project(xy: np.ndarray) -> np.ndarray:
        lon = xy[:, 0]
        lat = np.clip(xy[:, 1], -85.05112878, 85.05112878)
        r = HALF / math.pi
        return np.column_stack(
            [r * np.radians(lon), r * np.log(np.tan(np.pi / 4 + np.radians(lat) / 2))]
        )

    out: np.ndarray = shapely.transform(np.asarray(geoms.array, dtype=object), project)
    return out


def _strings(values: pd.Series) -> pa.Array:
    """A column as Arrow strings, missing values (None, NaN) as nulls: in one Arrow pass when
    every value is a string, else value by value with ``str``."""
    try:
        arr = pa.array(values.to_numpy(dtype=object), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arr = None
    if arr is not None and (pa.types.is_string(arr.type) or pa.types.is_null(arr.type)):
        return arr.cast(pa.string())
    return pa.array([None if v is None or v != v else str(v) for v in values], pa.string())


class TileStore:
    """Vector tiles of ``layers`` (bundle layer name → WGS84 GeoDataFrame), as ``catalogue``
    says; thread-safe (one DuckDB cursor per call)."""

    def __init__(
        self, layers: Mapping[str, gpd.GeoDataFrame], catalogue: Sequence[MapLayer]
    ) -> None:
        self._con = spatialdb.connect()
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[int, int, int], bytes] = OrderedDict()
        self.layers: list[MapLayer] = []
        for layer in catalogue:
            frame = layers.get(layer.source)
            if frame is None or frame.empty:
                continue
            self._load(layer.id, frame, layer.columns, points=False)
            self.layers.append(layer)
            if layer.label:
                points = frame.assign(geometry=shapely.point_on_surface(frame.geometry.to_numpy()))
                self._load(layer.label, points, layer.columns, points=True)
        #: the data's WGS84 box (west, south, east, north), for the map's first view
        used = [layers[layer.source] for layer in self.layers]
        self.bounds = bbox(used) or (-180.0, -85.0, 180.0, 85.0)

    def _load(
        self, name: str, frame: gpd.GeoDataFrame, columns: Sequence[str], points: bool
    ) -> None:
        merc = _mercator(frame.geometry)
        box = shapely.bounds(merc)
        data: dict[str, Any] = {}
        for col in columns:
            values = frame.get(col)
            if values is None:
                data[col] = pa.nulls(len(frame), pa.string())
            elif values.dtype.kind in "fiub":
                data[col] = pa.array(values.to_numpy(dtype=float), mask=values.isna().to_numpy())
            else:
                data[col] = _strings(values)
        data.update(
            wkb=shapely.to_wkb(merc), x0=box[:, 0], y0=box[:, 1], x1=box[:, 2], y1=box[:, 3]
        )
        cols = ", ".join(f'"{c}"' for c in columns)
        self._con.register("staging", pa.table(data))
        try:
            self._con.execute(
                f'create table "{name}" as select {cols}, ST_GeomFromWKB(wkb) as geom, '
                "x0, y0, x1, y1 from staging order by ST_Hilbert(ST_GeomFromWKB(wkb))"
            )
        finally:
            self._con.unregister("staging")

    def has_feature(self, layer: str, column: str, value: str) -> bool:
        """Whether tile layer ``layer`` holds a feature whose ``column`` is ``value``."""
        if layer not in {lyr.id for lyr in self.layers}:
            return False
        cursor = self._con.cursor()
        try:
            row = cursor.execute(f'select 1 from "{layer}" where "{column}" = ? limit 1', [value])
            return row.fetchone() is not None
        finally:
            cursor.close()

    def points(self, layer: str, column: str, ids: Sequence[str]) -> dict[str, tuple[float, float]]:
        """A point on the surface (WGS84 lon, lat) of each feature of ``layer`` whose
        ``column`` is one of ``ids`` (those the layer lacks are left out)."""
        if not ids:
            return {}
        cursor = self._con.cursor()
        try:
            cursor.register(
                "wanted", pa.table({"id": pa.array([str(i) for i in ids], pa.string())})
            )
            rows = cursor.execute(
                f'select t."{column}", ST_X(p), ST_Y(p) from (select "{column}", '
                f'ST_PointOnSurface(geom) as p from "{layer}") t join wanted w on t."{column}" = w.id'
            ).fetchall()
        finally:
            cursor.close()
        r = 6378137.0
        return {str(k): (float(np.degrees(x / r)), float(np.degrees(2 * np.arctan(np.exp(y / r)) - np.pi / 2)))
                for k, x, y in rows}  # fmt: skip

    def tile(self, z: int, x: int, y: int) -> bytes:
        """Tile ``z/x/y``: every layer whose minzoom it reaches (and label layers), empty bytes
        where nothing is on it. Raises :class:`InputError` for a tile that does not exist."""
        check_tile(z, x, y)
        key = (z, x, y)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        data = b"".join(self._layer(layer, name, z, x, y)
                        for layer in self.layers if z >= layer.minzoom
                        for name in (layer.id, layer.label) if name)  # fmt: skip
        with self._lock:
            self._cache[key] = data
            while len(self._cache) > CACHE_TILES:
                self._cache.popitem(last=False)
        return data

    def _layer(self, layer: MapLayer, name: str, z: int, x: int, y: int) -> bytes:
        xmin, ymin, xmax, ymax = tile_bounds(z, x, y)
        pad = (xmax - xmin) * BUFFER / EXTENT
        geom = "geom"
        if layer.simplify > 0 and name == layer.id:
            tolerance = (xmax - xmin) * layer.simplify / EXTENT
            geom = f"ST_SimplifyPreserveTopology(geom, {tolerance!r})"
        props = ", ".join(f"'{c}': \"{c}\"" for c in layer.columns)
        cursor = self._con.cursor()
        try:
            row = cursor.execute(
                f"select ST_AsMVT({{{props}, 'geom': ST_AsMVTGeom({geom}, "
                f"ST_Extent(ST_MakeEnvelope(?, ?, ?, ?)), {EXTENT}, {BUFFER}, true)}}, "
                f"'{name}', {EXTENT}, 'geom') "
                f'from "{name}" where x1 >= ? and x0 <= ? and y1 >= ? and y0 <= ? '
                "having count(*) > 0",
                [xmin, ymin, xmax, ymax, xmin - pad, xmax + pad, ymin - pad, ymax + pad],
            ).fetchone()
        finally:
            cursor.close()
        return bytes(row[0]) if row and row[0] else b""
