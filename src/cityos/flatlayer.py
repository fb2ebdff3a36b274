"""A bundle layer kept column-wise: Arrow attribute columns and polygons as coordinate arrays.

A million footprints as shapely objects cost seconds to make, to measure and to turn into WKB
for the GeoParquet file; the flat OSM reader (:mod:`cityos.sources.osm_flat`) has them as
coordinate arrays already. :class:`FlatLayer` keeps them so from the reader to the bundle file:
areas by the shoelace formula on projected coordinates (as :func:`cityos.measure.projected_area`
measures them), WKB written by NumPy (byte for byte what GEOS writes), the GeoParquet file as
geopandas writes it (``tests/test_flatlayer.py`` compares the two). Rows with holes or several
parts (relations) stay shapely geometries. :meth:`FlatLayer.to_geodataframe` makes the
GeoDataFrame whenever one is needed.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from cityos.threads import map_threads, sliced

__all__ = ["FlatGeometry", "FlatLayer", "polygon_wkb", "project", "to_crs"]

WGS84 = "EPSG:4326"

#: WKB header of a little-endian 2D polygon with one ring: byte order, type 3, one ring
_HEADER = np.frombuffer(b"\x01\x03\x00\x00\x00\x01\x00\x00\x00", dtype=np.uint8)
#: WKB bytes per one-ring polygon besides its points: header and the ring's point count
_FIXED = len(_HEADER) + 4
#: a little-endian 2D line: byte order, type 2; then its point count
_LINE_HEADER = np.frombuffer(b"\x01\x02\x00\x00\x00", dtype=np.uint8)
_LINE_FIXED = len(_LINE_HEADER) + 4
#: rows per Arrow array of WKB (its 32-bit offsets reach 2 GiB)
_CHUNK = 4_000_000


@dataclass
class FlatGeometry:
    """Polygons or lines (WGS84): the ``flat`` rows as ``xy`` coordinates (polygons one closed
    ring each, lines their vertices; in row order) with offsets ``ring_at``; the other rows
    shapely geometries in ``other``.

    ``flat`` is a boolean mask over the rows; ``other`` has one entry per ``~flat`` row;
    ``kind`` is ``Polygon`` or ``LineString``, the type of the flat rows.
    """

    flat: np.ndarray
    xy: np.ndarray
    ring_at: np.ndarray
    other: np.ndarray
    kind: str = "Polygon"
    _bounds: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _wkb: pa.ChunkedArray | None = field(default=None, init=False, repr=False, compare=False)
    _wkb_lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def __len__(self) -> int:
        return len(self.flat)

    def take(self, rows: np.ndarray) -> FlatGeometry:
        """The polygons of ``rows`` (positions), in that order."""
        flat_pos = np.cumsum(self.flat) - 1  # row -> its ring among the flat rows
        other_pos = np.cumsum(~self.flat) - 1
        keep = self.flat[rows]
        rings = flat_pos[rows[keep]]
        lo, hi = self.ring_at[rings], self.ring_at[rings + 1]
        n = hi - lo
        take = np.repeat(lo - (np.cumsum(n) - n), n) + np.arange(int(n.sum()))
        ring_at = np.zeros(len(rings) + 1, dtype=np.int64)
        np.cumsum(n, out=ring_at[1:])
        return FlatGeometry(
            keep, self.xy[take], ring_at, self.other[other_pos[rows[~keep]]], self.kind
        )

    def total_bounds(self) -> np.ndarray:
        if self._bounds is None:
            self._bounds = self._total_bounds()
        return self._bounds.copy()

    def _total_bounds(self) -> np.ndarray:
        boxes = []
        if len(self.xy):
            x, y = self.xy[:, 0], self.xy[:, 1]  # (a reduction along axis 0 is slow)
            boxes.append(np.array([x.min(), y.min(), x.max(), y.max()]))
        if len(self.other):
            boxes.append(shapely.total_bounds(self.other))
        if not boxes:
            return np.full(4, np.nan)
        b = np.vstack(boxes)
        return np.array([b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()])

    def geom_types(self) -> list[str]:
        """The geometry type names present, sorted (as GeoParquet lists them)."""
        names = {self.kind} if self.flat.any() else set()
        if len(self.other):
            names |= {_TYPE_NAMES[t] for t in np.unique(shapely.get_type_id(self.other)).tolist()}
        return sorted(names)

    def areas(self, crs: str) -> np.ndarray:
        """Area (m²) of each polygon in the projected ``crs``: exactly
        :func:`cityos.measure.projected_area` (the same projection, the same shoelace sums)."""
        from cityos.measure import projected_area

        out = np.zeros(len(self.flat))
        if len(self.xy):
            out[self.flat] = _flat_ring_areas(self.xy, self.ring_at, crs)
        if len(self.other):
            out[~self.flat] = projected_area(gpd.GeoSeries(self.other, crs=WGS84), crs)
        return out

    def lengths(self, crs: str) -> np.ndarray:
        """Length (m) of each line in the projected ``crs``: GEOS's sum, segment by segment in
        order, of √(dx² + dy²) (``to_crs(crs).length`` bit for bit)."""
        x, y = project(self.xy, crs)
        at = np.ascontiguousarray(self.ring_at, dtype=np.int64)
        out = np.zeros(len(at) - 1)
        try:
            from cityos import _pbf
        except ImportError:  # not compiled: NumPy adds the k-th segment of every line at once
            seg = np.sqrt(np.diff(x) ** 2 + np.diff(y) ** 2)
            n = np.diff(at) - 1
            for k in range(int(n.max()) if len(n) else 0):
                has = n > k
                out[has] += seg[at[:-1][has] + k]
            return out
        _pbf.part_sums(x, y, at, out, 0)
        return out

    def to_shapely(self) -> np.ndarray:
        out = np.empty(len(self.flat), dtype=object)
        if self.flat.any() and self.kind == "LineString":
            out[self.flat] = shapely.from_ragged_array(
                shapely.GeometryType.LINESTRING, self.xy, (self.ring_at,)
            )
        elif self.flat.any():
            out[self.flat] = shapely.from_ragged_array(
                shapely.GeometryType.POLYGON,
                self.xy,
                (self.ring_at, np.arange(int(self.flat.sum()) + 1)),
            )
        out[~self.flat] = self.other
        return out

    def wkb(self) -> pa.ChunkedArray:
        """Each polygon's WKB, as shapely's ``to_wkb`` writes it, in Arrow binary arrays; made
        once (a second caller, on another thread, waits for the first)."""
        with self._wkb_lock:
            if self._wkb is None:
                self._wkb = self._make_wkb()
            return self._wkb

    def _make_wkb(self) -> pa.ChunkedArray:
        if len(self.flat) <= _CHUNK:
            return pa.chunked_array([self._wkb_array()], type=pa.binary())
        chunks = []
        for a in range(0, len(self.flat), _CHUNK):
            part = self.take(np.arange(a, min(a + _CHUNK, len(self.flat))))
            chunks.append(part._wkb_array())
        return pa.chunked_array(chunks, type=pa.binary())

    def _wkb_array(self) -> pa.Array:
        points = np.diff(self.ring_at)
        size = np.empty(len(self.flat), dtype=np.int64)
        size[self.flat] = (_FIXED if self.kind == "Polygon" else _LINE_FIXED) + 16 * points
        other = [bytes(b) for b in shapely.to_wkb(self.other)] if len(self.other) else []
        size[~self.flat] = [len(b) for b in other]
        offsets = np.zeros(len(self.flat) + 1, dtype=np.int64)
        np.cumsum(size, out=offsets[1:])
        buf = np.empty(int(offsets[-1]), dtype=np.uint8)
        _write_flat(self.xy, self.ring_at, offsets[:-1][self.flat], buf, self.kind)
        for start, b in zip(offsets[:-1][~self.flat].tolist(), other, strict=True):
            buf[start : start + len(b)] = np.frombuffer(b, dtype=np.uint8)
        return pa.Array.from_buffers(
            pa.binary(), len(self.flat),
            [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(buf)],
        )  # fmt: skip


_TYPE_NAMES = {3: "Polygon", 6: "MultiPolygon"}


def _c_polygon_wkb() -> Any:
    """The C writer of :func:`_write_flat` (None without the compiled decoder, or on a
    big-endian machine, where NumPy writes)."""
    import sys

    try:
        from cityos import _pbf
    except ImportError:
        return None
    return _pbf.polygon_wkb if sys.byteorder == "little" else None


def _write_flat(
    xy: np.ndarray, ring_at: np.ndarray, starts: np.ndarray, buf: np.ndarray, kind: str
) -> None:
    """The WKB of each one-ring polygon or line written into ``buf`` at ``starts`` (C where
    compiled)."""
    xy = np.ascontiguousarray(xy, dtype=np.float64)
    line = kind == "LineString"
    write = _c_polygon_wkb()
    if write is not None:
        write(xy, np.ascontiguousarray(ring_at, dtype=np.int64),
              np.ascontiguousarray(starts, dtype=np.int64), buf, 2 if line else 3)  # fmt: skip
        return
    header = _LINE_HEADER if line else _HEADER
    fixed = len(header) + 4
    points = np.diff(ring_at)
    head = starts[:, None] + np.arange(fixed)
    buf[head[:, : len(header)]] = header
    buf[head[:, len(header) :]] = points.astype("<u4").view(np.uint8).reshape(-1, 4)
    at = np.repeat(starts + fixed - 16 * ring_at[:-1], 16 * points) + np.arange(16 * len(xy))
    buf[at] = xy.astype("<f8").view(np.uint8).ravel()


def _flat_ring_areas(xy: np.ndarray, ring_at: np.ndarray, crs: str) -> np.ndarray:
    """The area (m², in ``crs``) of each closed ring ``xy[ring_at[k]:ring_at[k + 1]]``:
    :func:`cityos.measure._ring_areas` of the projected rings. With the compiled part the
    closing vertices are not projected (each is its ring's first, and PROJ gives one point the
    same result every time) and C adds the same terms in the same order."""
    from cityos.measure import _ring_areas

    try:
        from cityos import _pbf
    except ImportError:
        return _ring_areas(*project(xy, crs), ring_at)
    open_ = np.ones(len(xy), dtype=bool)
    open_[ring_at[1:] - 1] = False
    x, y = project_xy(xy[open_, 0], xy[open_, 1], crs)
    out = np.empty(len(ring_at) - 1)
    open_at = np.ascontiguousarray(ring_at - np.arange(len(ring_at)), dtype=np.int64)
    _pbf.part_sums(x, y, open_at, out, 1)
    return out


def project(xy: np.ndarray, crs: str, threads: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 coordinates ``xy`` in ``crs``: x and y (:func:`project_xy` of copies)."""
    return project_xy(
        np.array(xy[:, 0], dtype=np.float64), np.array(xy[:, 1], dtype=np.float64), crs, threads
    )


def project_xy(
    x: np.ndarray, y: np.ndarray, crs: str, threads: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 coordinates ``x``, ``y`` (contiguous float64, changed in place) in ``crs``. PROJ
    runs without the GIL, so the coordinates are cut into ``threads`` parts projected at once
    (each point is projected on its own: the parts give what one call gives)."""
    import pyproj

    transformer = pyproj.Transformer.from_crs(WGS84, crs, always_xy=True)
    parts = max(1, threads) if len(x) > 100_000 else 1
    cuts = np.linspace(0, len(x), parts + 1).astype(int)

    def part(k: int) -> None:
        a, b = cuts[k], cuts[k + 1]
        transformer.transform(x[a:b], y[a:b], inplace=True)

    map_threads(part, range(parts), parts)
    return x, y


def to_crs(frame: gpd.GeoDataFrame, crs: str) -> gpd.GeoDataFrame:
    """``frame.to_crs(crs)`` (2D geometries), with the geometries projected on slices in
    threads, each with its own transformer: a million footprints in about 4 s instead of 6 s
    on 2 cores, the same coordinates bit for bit (each point is projected on its own). Points
    are left to geopandas, which projects them faster without rebuilding geometries."""
    if len(frame) < 100_000 or frame.crs is None:
        return frame.to_crs(crs)
    if (shapely.get_type_id(frame.geometry.to_numpy()) <= 0).all():  # points (0), missing (-1)
        return frame.to_crs(crs)
    import pyproj

    source = frame.crs

    def part(geoms: np.ndarray) -> np.ndarray:
        transformer = pyproj.Transformer.from_crs(source, crs, always_xy=True)

        def xy(c: np.ndarray) -> np.ndarray:
            return np.column_stack(transformer.transform(c[:, 0], c[:, 1]))

        return np.asarray(shapely.transform(geoms, xy), dtype=object)

    out = frame.copy(deep=False)
    name = frame.geometry.name
    out[name] = gpd.GeoSeries(sliced(part, frame.geometry.to_numpy()), index=frame.index, crs=crs)
    return out


def polygon_wkb(xy: np.ndarray, ring_at: np.ndarray) -> pa.ChunkedArray:
    """The WKB of one-ring polygons given as closed rings ``xy[ring_at[i]:ring_at[i + 1]]``."""
    n = len(ring_at) - 1
    return FlatGeometry(np.ones(n, dtype=bool), xy, ring_at, np.empty(0, dtype=object)).wkb()


@dataclass
class FlatLayer:
    """A layer as Arrow columns (attributes, in the layer's order) and :class:`FlatGeometry`.

    It answers what the import asks of a layer (``len``, ``empty``, ``total_bounds``) without
    making geometries, writes its GeoParquet file (:meth:`write`), and becomes a GeoDataFrame
    when asked (:meth:`to_geodataframe`).
    """

    columns: dict[str, pa.Array]
    geometry: FlatGeometry

    def __len__(self) -> int:
        return len(self.geometry)

    @property
    def empty(self) -> bool:
        return len(self) == 0

    @property
    def total_bounds(self) -> np.ndarray:
        return self.geometry.total_bounds()

    def column(self, name: str) -> np.ndarray:
        """A column as a NumPy array (strings as objects, nulls as None)."""
        return np.asarray(self.columns[name].to_numpy(zero_copy_only=False))

    def to_geodataframe(self) -> gpd.GeoDataFrame:
        """The layer as the GeoDataFrame the shapely path makes (object columns for text)."""
        data = {}
        for name, col in self.columns.items():
            values = col.to_numpy(zero_copy_only=False)
            kind = pa.types.is_floating(col.type) or pa.types.is_integer(col.type)
            data[name] = pd.Series(values, dtype=None if kind else object)
        return gpd.GeoDataFrame(
            data, geometry=gpd.GeoSeries(self.geometry.to_shapely(), crs=WGS84), crs=WGS84
        )

    def write(self, path: Path) -> None:
        """The layer's GeoParquet file, as ``GeoDataFrame.to_parquet(path, index=False)``
        writes it: the same Arrow types (text columns with no value are of type null), the
        same ``pandas`` and ``geo`` metadata, WKB geometries, snappy compression."""
        cols = {k: _as_written(v) for k, v in self.columns.items()}
        wkb = self.geometry.wkb()
        sample = _sample(cols)
        # geopandas makes the pandas metadata with the geometry column as Nones, then swaps in
        # the WKB field
        meta = pa.Table.from_pandas(sample, preserve_index=False)
        geo_table = _geo_template()
        geo = json.loads(geo_table.schema.metadata[b"geo"])
        column = geo["columns"]["geometry"]
        column["geometry_types"] = self.geometry.geom_types()
        column.pop("bbox", None)
        if len(self):  # geopandas leaves it out for an empty layer
            column["bbox"] = [float(v) for v in self.total_bounds]
        schema = pa.schema(
            [*list(meta.schema)[:-1], geo_table.schema.field("geometry")],
            metadata={**meta.schema.metadata, b"geo": json.dumps(geo).encode()},
        )
        table = pa.Table.from_arrays([*cols.values(), wkb], schema=schema)
        # no dictionary or statistics for the WKB column (every value differs): the same values
        # as geopandas' file, written faster
        text = [f for f, c in cols.items() if pa.types.is_string(c.type)]
        pq.write_table(table, path, compression="snappy", use_dictionary=text,
                       write_statistics=[*cols])  # fmt: skip


def _as_written(col: pa.Array) -> pa.Array:
    """A text column with no value at all is written as type null, as pandas writes an object
    column of Nones."""
    if pa.types.is_string(col.type) and col.null_count == len(col):
        return pa.nulls(len(col))
    return col


def _sample(cols: dict[str, pa.Array]) -> pd.DataFrame:
    """A one-row frame with the columns' kinds (a value of each where it has one), for the
    ``pandas`` metadata pyarrow derives from a frame."""
    row: dict[str, Any] = {}
    for name, col in cols.items():
        if pa.types.is_null(col.type):
            row[name] = pd.Series([None], dtype=object)
        elif pa.types.is_string(col.type):
            valid = col.drop_null()
            row[name] = pd.Series([valid[0].as_py() if len(valid) else None], dtype=object)
        else:
            row[name] = pd.Series(np.zeros(1, dtype=col.type.to_pandas_dtype()))
    row["geometry"] = pd.Series([None], dtype=object)
    return pd.DataFrame(row)


def _geo_template() -> pa.Table:
    """geopandas' own Arrow table of one polygon: its geometry field and ``geo`` metadata."""
    from geopandas.io.arrow import _geopandas_to_arrow

    frame = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)], crs=WGS84)
    return _geopandas_to_arrow(frame, index=False)
