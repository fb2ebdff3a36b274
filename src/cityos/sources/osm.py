"""Read an OpenStreetMap extract (PBF, XML, O5M) into the raw layers of a city bundle: PBF
with the node index in memory by the flat reader (:mod:`cityos.sources.osm_flat`), the rest by
pyosmium's handler (:mod:`cityos.sources.osm_collect`), both into the same layers.

One streaming pass with pyosmium (libosmium) after a first pass over relations: a node-location
index fills in way geometries, the libosmium area assembler builds polygons from closed ways and
multipolygon/boundary relations (holes and several outer rings included), and C++ tag filters keep
untagged and irrelevant objects out of Python. Output is in WGS84; lengths and areas are measured
later, in the bundle's projected CRS (:mod:`cityos.importer`).

The walk network is split at every node shared by two walkable ways (or visited twice by one),
at way ends and where node locations are missing (extract borders), so ``walk_nodes`` are the
graph's intersections and dead ends and ``walk_edges`` carry the full geometry between them.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import osmium
import pandas as pd
import pyarrow as pa
import shapely
from osmium.filter import EmptyTagFilter, KeyFilter

from cityos.classify import FacilityRules, OsmTables
from cityos.errors import CityosWarning, InputError, InputFileNotFoundError
from cityos.flatlayer import FlatGeometry, FlatLayer
from cityos.sources import pbf
from cityos.sources.osm_arrays import _offsets, _take_ranges
from cityos.sources.osm_buildings import _only_for
from cityos.sources.osm_collect import (
    _Collector,
    _finish_buildings,
    _polygons,
    _start_buildings_process,
    _walk_arrays,
)
from cityos.sources.osm_flat import FlatRead, Rows, read_flat
from cityos.sources.osmsort import sort_osm_file, unsorted_error

__all__ = ["PARALLEL_MIN_BYTES", "OsmExtract", "check_osm_file", "read_osm"]

#: files from this size on are read by two processes (buildings in the second); below it the
#: start-up of a second interpreter costs more than it saves
PARALLEL_MIN_BYTES = 4_000_000

WGS84 = "EPSG:4326"

_OSM_SUFFIXES = (".pbf", ".osm", ".o5m", ".osm.bz2", ".osm.gz", ".xml")


@dataclass
class OsmExtract:
    """What one OSM file holds for a city bundle, in WGS84 and before measurement."""

    walk_nodes: pd.DataFrame
    walk_edge_layer: FlatLayer
    facilities: gpd.GeoDataFrame
    green_spaces: gpd.GeoDataFrame
    residential_land: gpd.GeoDataFrame
    admin: gpd.GeoDataFrame
    replication_timestamp: str | None
    newest_timestamp: str | None
    header_bbox: tuple[float, float, float, float] | None
    stats: dict[str, int] = field(default_factory=dict)
    #: the buildings as the flat reader keeps them (None: as a GeoDataFrame)
    flat_buildings: FlatLayer | None = None
    shapely_buildings: gpd.GeoDataFrame | None = None

    _walk_edges: gpd.GeoDataFrame | None = None

    @property
    def walk_edges(self) -> gpd.GeoDataFrame:
        """The walk edges as a GeoDataFrame (made from the flat layer when first asked for)."""
        if self._walk_edges is None:
            self._walk_edges = self.walk_edge_layer.to_geodataframe()
        return self._walk_edges

    @property
    def buildings(self) -> gpd.GeoDataFrame:
        """The buildings as a GeoDataFrame (made from the flat layer when first asked for)."""
        if self.shapely_buildings is None:
            assert self.flat_buildings is not None
            self.shapely_buildings = self.flat_buildings.to_geodataframe()
        return self.shapely_buildings

    @property
    def building_layer(self) -> gpd.GeoDataFrame | FlatLayer:
        """The buildings as read: the flat layer when there is one (no geometries made)."""
        return self.flat_buildings if self.flat_buildings is not None else self.buildings


def check_osm_file(path: Path) -> None:
    """Raise a one-line :class:`InputError` if ``path`` is missing, empty or not an OSM file name."""
    if not path.exists():
        raise InputFileNotFoundError(f"{path}: OSM file not found; check the path")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected an OSM file (.osm.pbf or .osm)")
    if path.stat().st_size == 0:
        raise InputFileNotFoundError(f"{path}: OSM file is empty; download the extract again")
    name = path.name.lower()
    if not name.endswith(_OSM_SUFFIXES):
        raise InputError(
            f"{path}: unknown OSM file type; use an .osm.pbf, .osm (XML) or .o5m extract"
        )


def check_node_index(location_storage: str) -> None:
    """Raise a one-line :class:`InputError` naming ``--node-index`` if the index type is unknown
    or a file-backed index's folder does not exist."""
    kind, _, where = location_storage.partition(",")
    if kind not in osmium.index.map_types():
        raise InputError(
            f"--node-index {location_storage}: unknown node index {location_storage!r}; use one of "
            f"{', '.join(sorted(osmium.index.map_types()))} (file-backed ones take ',PATH')"
        )
    if where:
        folder = Path(where).expanduser().parent
        if not folder.is_dir():
            raise InputError(
                f"--node-index {location_storage}: folder {folder} for the index file does not "
                "exist; create it or give another PATH"
            )
    elif kind.endswith("file_array"):
        raise InputError(
            f"--node-index {location_storage}: a file-backed index needs a file: {kind},PATH"
        )


def _header(path: Path) -> tuple[str | None, tuple[float, float, float, float] | None]:
    reader = osmium.io.Reader(str(path), osmium.osm.NOTHING)
    try:
        header = reader.header()
        stamp = header.get("osmosis_replication_timestamp") or header.get("timestamp") or None
        box = header.box()
        bbox = None
        if box.valid():
            bbox = (box.bottom_left.lon, box.bottom_left.lat, box.top_right.lon, box.top_right.lat)
        return stamp, bbox
    finally:
        reader.close()


def _split_walk(w: dict[str, np.ndarray]) -> tuple[pd.DataFrame, FlatLayer]:
    """The walk network from the walk ways' pieces: ``refs``, ``lon``, ``lat`` per piece node,
    ``starts`` (each piece's first position), ``way``, ``highway`` and ``name`` per piece. The
    edges come as a flat layer of lines (columns ``u``, ``v``, ``osm_way_id``, ``highway``,
    ``name``)."""
    refs, lon, lat, starts = w["refs"], w["lon"], w["lat"], w["starts"]
    n = len(refs)
    if n == 0:
        nodes = pd.DataFrame({"node_id": np.zeros(0, np.int64), "lon": [], "lat": []})
        return nodes, _edges(*(np.zeros(0, np.int64),) * 3, *(np.zeros(0, object),) * 2,
                             np.zeros((0, 2)), np.zeros(1, np.int64))  # fmt: skip
    ends = np.append(starts[1:], n) - 1  # last position of each piece
    piece_of = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, n)))
    _uniq, inverse, counts = np.unique(refs, return_inverse=True, return_counts=True)
    split = counts[inverse] >= 2
    split[starts] = True
    split[ends] = True
    # a node repeated inside one piece (a loop) is also a split point: counts >= 2 covers it
    split_pos = np.flatnonzero(split)
    # edges run between consecutive split positions of the same piece
    same_piece = piece_of[split_pos[:-1]] == piece_of[split_pos[1:]]
    e_start = split_pos[:-1][same_piece]
    e_end = split_pos[1:][same_piece]
    sizes = e_end - e_start + 1
    offsets = np.repeat(e_start - np.concatenate(([0], np.cumsum(sizes)[:-1])), sizes)
    take = np.arange(sizes.sum()) + offsets
    line_at = np.zeros(len(e_start) + 1, dtype=np.int64)
    np.cumsum(sizes, out=line_at[1:])
    piece = piece_of[e_start]
    edges = _edges(
        refs[e_start], refs[e_end], w["way"][piece], w["highway"][piece], w["name"][piece],
        np.column_stack([lon[take], lat[take]]), line_at,
    )  # fmt: skip
    # the positions that end an edge, ascending (np.unique of e_start and e_end, without a sort)
    ends_edge = np.zeros(n, dtype=bool)
    ends_edge[e_start] = True
    ends_edge[e_end] = True
    node_pos = np.flatnonzero(ends_edge)
    node_ids, first = np.unique(refs[node_pos], return_index=True)
    pos = node_pos[first]
    nodes = pd.DataFrame({"node_id": node_ids, "lon": lon[pos], "lat": lat[pos]})
    return nodes, edges


def _edges(u: np.ndarray, v: np.ndarray, way: np.ndarray, highway: np.ndarray, name: np.ndarray,
           xy: np.ndarray, line_at: np.ndarray) -> FlatLayer:  # fmt: skip
    columns = {
        "u": pa.array(u, pa.int64()),
        "v": pa.array(v, pa.int64()),
        "osm_way_id": pa.array(way, pa.int64()),
        "highway": pa.array(highway, pa.string()),
        "name": pa.array(name, pa.string()),
    }
    flat = np.ones(len(u), dtype=bool)
    return FlatLayer(
        columns, FlatGeometry(flat, xy, line_at, np.empty(0, dtype=object), "LineString")
    )


def _read_sorted(path: Path, tmp: Path, exc: BaseException, **options: Any) -> OsmExtract:
    """Read an unsorted export through a sorted copy in ``tmp``, with a note."""
    note = (
        f"{path.name}: the objects are not sorted by type and id ({exc}); "
        "sorted on the fly (sort it once with `osmium sort` to read it faster)"
    )
    warn = options.get("warn")
    if warn is not None:
        warn(note)
    else:
        warnings.warn(note, CityosWarning, stacklevel=3)
    copy = tmp / "sorted.osm.pbf"
    sort_osm_file(path, copy)
    ext = read_osm(copy, **options)
    ext.stats["sorted_on_the_fly"] = 1
    return ext


def read_osm(
    path: str | os.PathLike[str],
    *,
    rules: FacilityRules,
    tables: OsmTables,
    progress: Callable[[int], None] | None = None,
    location_storage: str = "flex_mem",
    parallel: bool | None = None,
    reader: Literal["auto", "flat", "pyosmium"] = "auto",
    warn: Callable[[str], None] | None = None,
) -> OsmExtract:
    """Read an OSM extract into raw bundle layers (WGS84, unmeasured).

    Parameters
    ----------
    path
        ``.osm.pbf`` (or ``.osm`` XML, ``.o5m``) file.
    rules, tables
        The facility rules and OSM layer tables (:mod:`cityos.classify`).
    progress
        Called with the number of objects handled since the last call (about every 50,000).
    location_storage
        libosmium node-location index: ``flex_mem`` (default; switches to a dense array for large
        extracts) or ``sparse_file_array,FILE`` to keep a country-size index on disk.
    parallel
        Read the buildings in a second process while this one reads everything else (two
        streaming passes over the file, one per core). Default: for files of at least
        :data:`PARALLEL_MIN_BYTES` on a machine with two or more cores.
    reader
        ``flat``: the whole PBF decoded into arrays (:mod:`cityos.sources.pbf`, C) and every
        layer made with NumPy (:mod:`cityos.sources.osm_flat`), libosmium only for the areas
        it must judge; ``pyosmium``: libosmium's streaming passes with Python callbacks;
        ``auto``: ``flat`` for a PBF read with the node index in memory when the decoder is
        compiled, else ``pyosmium`` (XML, o5m, a node index on disk). Both give the same
        layers (``tests/sources/test_osm_flat.py``).

    Raises
    ------
    InputError
        The file is missing, empty, truncated or not an OSM file.
    """
    p = Path(path)
    if reader not in ("auto", "flat", "pyosmium"):
        raise ValueError(f"reader {reader!r}: use auto, flat or pyosmium")
    check_osm_file(p)
    check_node_index(location_storage)
    try:
        stamp, bbox = _header(p)
    except RuntimeError as exc:
        raise InputError(
            f"{p}: not a readable OSM file ({exc}); check that it is an OSM extract"
        ) from exc
    if reader == "auto":
        flat = p.name.lower().endswith(".pbf") and location_storage == "flex_mem"
        reader = "flat" if flat and pbf.available() else "pyosmium"
    if reader == "flat":
        try:
            return _read_flat(p, rules, tables, progress, stamp, bbox)
        except pbf.UnsortedError as exc:
            with tempfile.TemporaryDirectory(prefix="cityos-") as tmp:
                return _read_sorted(
                    p, Path(tmp), exc, rules=rules, tables=tables, progress=progress,
                    location_storage=location_storage, parallel=parallel, reader=reader,
                    warn=warn,
                )  # fmt: skip
        except pbf.UnsupportedError:
            pass  # libosmium reads what the decoder does not know
        except pbf.PbfError as exc:
            raise InputError(
                f"{p}: cannot read the OSM data ({exc}); the file is truncated or damaged, download it again"
            ) from exc
    if parallel is None:
        parallel = p.stat().st_size >= PARALLEL_MIN_BYTES and (os.cpu_count() or 1) >= 2
    c = _Collector(rules, tables, progress, buildings=not parallel)
    # C++ filters per entity type keep what Python never needs out of the callbacks: untagged
    # objects, and closed building ways (their geometry arrives as areas)
    fac = sorted(c.fac_keys)
    area_keys = set(fac) | {"landuse", "leisure", "boundary", "place", "highway"}
    if not parallel:
        area_keys.add("building")
    filters: list[Any] = [
        EmptyTagFilter(),
        _only_for(KeyFilter(*fac), osmium.osm.NODE),
        _only_for(KeyFilter("highway", *fac), osmium.osm.WAY),
        _only_for(KeyFilter(*sorted(area_keys)), osmium.osm.AREA),
    ]
    with tempfile.TemporaryDirectory(prefix="cityos-") as tmp:
        child = (
            _start_buildings_process(p, tables, location_storage, Path(tmp)) if parallel else None
        )
        try:
            c.apply_file(str(p), locations=True, idx=location_storage, filters=filters)
        except BaseException as exc:
            if child is not None:  # no reader left behind, on an error or on Ctrl-C
                child.kill()
                child.wait()
            if not isinstance(exc, RuntimeError):
                raise
            if unsorted_error(exc):
                return _read_sorted(
                    p, Path(tmp), exc, rules=rules, tables=tables, progress=progress,
                    location_storage=location_storage, parallel=parallel,
                    reader=reader, warn=warn,
                )  # fmt: skip
            raise InputError(
                f"{p}: cannot read the OSM data ({exc}); the file is truncated or damaged, download it again"
            ) from exc
        if progress is not None:
            progress(c.seen & 0xFFFF)
        nodes, edges = _split_walk(_walk_arrays(c))
        b, geoms = _finish_buildings(child, c, p, tables, location_storage, Path(tmp))
    f = c.fac
    poly_mask = np.asarray(f["poly"], dtype=bool)
    fac_geoms = np.empty(len(poly_mask), dtype=object)
    if poly_mask.any():
        fac_geoms[poly_mask] = _polygons(
            [g for g, is_p in zip(f["geom"], poly_mask, strict=True) if is_p]
        )
    if (~poly_mask).any():
        pts = np.array(
            [g for g, is_p in zip(f["geom"], poly_mask, strict=True) if not is_p], dtype=float
        )
        fac_geoms[~poly_mask] = shapely.points(pts[:, 0], pts[:, 1])
    newest = c.newest.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if c.newest else None
    stats = dict(c.stats)
    stats["walk_ways"] = len(set(c.w_way))
    return _extract(
        nodes, edges, (b, geoms), (f, fac_geoms),
        *((d, _polygons(d["wkb"])) for d in (c.green, c.res, c.adm)),
        stamp=stamp, newest=newest, bbox=bbox, stats=stats,
    )  # fmt: skip


_Layer = tuple[dict[str, Any], np.ndarray]  # columns, geometries (WGS84)


def _read_flat(
    p: Path,
    rules: FacilityRules,
    tables: OsmTables,
    progress: Callable[[int], None] | None,
    stamp: str | None,
    bbox: tuple[float, float, float, float] | None,
) -> OsmExtract:
    """:func:`read_osm` by the flat reader (:mod:`cityos.sources.osm_flat`)."""
    d = pbf.read_pbf(p)
    if progress is not None:
        progress(len(d.node_id) + len(d.way_id) + len(d.rel_id))
    f = read_flat(p, d, rules, tables)
    del d
    nodes, edges = _split_walk(f.walk)
    newest = (
        dt.datetime.fromtimestamp(f.newest, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if f.newest is not None
        else None
    )
    return _extract(
        nodes, edges, _flat_buildings(f), _rows_layer(f.facilities),
        _rows_layer(f.green), _rows_layer(f.residential), _rows_layer(f.admin),
        stamp=stamp, newest=newest, bbox=bbox, stats=f.stats,
    )  # fmt: skip


def _rows_layer(rows: Rows) -> _Layer:
    """A layer's columns and geometries from :class:`Rows`, in libosmium's order; a ``geom``
    that is a (lon, lat) pair is a point."""
    order = rows.order()
    cols = {k: [v[i] for i in order] for k, v in rows.cols.items() if k != "geom"}
    geoms = np.empty(len(order), dtype=object)
    given = [rows.cols["geom"][i] for i in order.tolist()]
    point = np.fromiter((isinstance(g, tuple) for g in given), dtype=bool, count=len(given))
    geoms[~point] = [g for g, p in zip(given, point, strict=True) if not p]
    if point.any():
        xy = np.array([g for g, p in zip(given, point, strict=True) if p], dtype=float)
        geoms[point] = shapely.points(xy)
    return cols, geoms


def _flat_buildings(f: FlatRead) -> FlatLayer:
    """The buildings NumPy made and libosmium's, in libosmium's order, as a flat layer."""
    b, hard = f.buildings, f.hard_buildings
    keys = np.concatenate([b["key"], np.asarray(hard.keys, dtype=np.int64).reshape(-1, 3)])
    order = np.lexsort((keys[:, 2], keys[:, 1], keys[:, 0]))
    own = b["ring"] >= 0  # NumPy's rows with a ring (their rings gathered in b["xy"])
    if not hard.keys and bool((order == np.arange(len(order))).all()):
        # NumPy's rows already in libosmium's order (so in synthetic cities): nothing to move
        columns = {new: b[old] for old, new in _BUILDING_NAMES.items()}
        return FlatLayer(columns, FlatGeometry(own, b["xy"], b["ring_at"], b["geom"][~own]))
    take = pa.array(order)
    columns = {
        new: pa.concat_arrays([b[old], pa.array(hard.cols[old], pa.string())]).take(take)
        for old, new in _BUILDING_NAMES.items()
    }
    flat = np.concatenate([own, np.zeros(len(hard.keys), dtype=bool)])[order]
    # each flat row's ring among NumPy's gathered ones, in the new order
    j = (np.cumsum(own) - 1)[order[flat]]
    lo, hi = b["ring_at"][j], b["ring_at"][j + 1]
    ring_at = _offsets(hi - lo)
    geoms = np.concatenate([b["geom"], shapely.from_wkb(hard.cols["wkb"]) if hard.keys else []])
    other = np.asarray(geoms, dtype=object)[order[~flat]]
    return FlatLayer(columns, FlatGeometry(flat, _take_ranges(b["xy"], lo, hi), ring_at, other))


#: the readers' building columns → the raw buildings layer's
_BUILDING_NAMES = {"id": "building_id", "building": "building", "use": "use", "lv": "levels_tag",
                   "h": "height_tag", "name": "name", "addr": "address", "vacancy": "vacancy"}  # fmt: skip


def _extract(
    nodes: pd.DataFrame,
    edges: FlatLayer,
    buildings: _Layer | FlatLayer,
    facilities: _Layer,
    green: _Layer,
    residential: _Layer,
    admin: _Layer,
    *,
    stamp: str | None,
    newest: str | None,
    bbox: tuple[float, float, float, float] | None,
    stats: dict[str, int],
) -> OsmExtract:
    """The :class:`OsmExtract` of the layers' columns (the readers' names) and geometries."""

    def frame(layer: _Layer, cols: dict[str, str]) -> gpd.GeoDataFrame:
        d, geoms = layer
        data = {new: pd.Series(d[old], dtype=object) for old, new in cols.items()}
        return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=WGS84), crs=WGS84)

    flat = buildings if isinstance(buildings, FlatLayer) else None
    adm = frame(admin, {"id": "unit_id", "name": "name"})
    adm["admin_level"] = pd.Series(admin[0]["admin_level"], dtype=float)
    return OsmExtract(
        walk_nodes=nodes,
        walk_edge_layer=edges,
        flat_buildings=flat,
        shapely_buildings=None if flat else frame(buildings, _BUILDING_NAMES),  # type: ignore[arg-type]
        facilities=frame(
            facilities, {"fid": "feature_id", "cat": "category", "rule": "rule", "name": "name"}
        ),
        green_spaces=frame(green, {"id": "green_id", "kind": "kind", "name": "name"}),
        residential_land=frame(residential, {"id": "landuse_id"}),
        admin=adm,
        replication_timestamp=stamp,
        newest_timestamp=newest,
        header_bbox=bbox,
        stats=stats,
    )
