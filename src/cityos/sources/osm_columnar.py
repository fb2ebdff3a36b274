"""The columnar building reader: the closed-way buildings of a ``.osm.pbf`` read column-wise
(DuckDB's ``ST_ReadOSM`` scan, node locations joined in NumPy, rings as flat coordinate arrays),
the rest (multipolygon relations, and the rare ways libosmium must judge) by pyosmium.

It gives what :class:`cityos.sources.osm_buildings._BuildingCollector` gives, row for row and
coordinate for coordinate, by following libosmium's conventions (measured on Helsinki, Kouvola,
Shenzhen and the synthetic cities; ``tests/sources/test_osm_columnar.py`` compares the two):

* a closed way makes an area when it has more than three nodes, its ends have the same location,
  every node has a location and it is not tagged ``area=no`` (a member of a multipolygon makes
  its own area as well);
* coordinates are the fixed-point integer ÷ 1e7; the ring is counter-clockwise and starts at its
  lexicographically smallest (x, y) vertex;
* areas come in the order libosmium emits them: a way's area at the way, a relation's when its
  last member way is read, before that way's own (ways in id order: unsorted files are sorted
  first).

A ring with a location twice in a row, or that is not simple (it crosses or touches itself), is
handed to libosmium, whose assembler decides what such a ring becomes; so are all relations,
through an ``IdFilter`` that lets only those areas reach Python.

The reader needs the ``duckdb`` and ``duckdb-extension-spatial`` packages and keeps every node
location in memory, so it is used for PBF files read with the in-memory node index only
(:func:`available`); otherwise the pyosmium reader is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cityos import spatialdb
from cityos.classify import OsmTables
from cityos.sources.osm_buildings import (
    _BUILDING_COLUMNS,
    _address,
    _BuildingRows,
    _only_for,
    vacancy_of_pairs,
)
from cityos.spatialdb import spatial_extension

__all__ = ["ColumnarBuildings", "available", "read_buildings"]


def available(path: Path, location_storage: str) -> bool:
    """Whether the columnar reader can read ``path``: a ``.pbf`` file, the node index in memory,
    DuckDB with its spatial extension installed."""
    return (
        path.name.lower().endswith(".pbf")
        and location_storage == "flex_mem"
        and spatial_extension() is not None
    )


@dataclass
class ColumnarBuildings:
    """The buildings of one extract, in libosmium's order.

    ``table`` has the columns of :data:`osm_buildings._BUILDING_COLUMNS`; rows whose ``wkb`` is
    null have their polygon in the flat arrays instead, in row order (``xy`` coordinates,
    ``ring_offsets`` into them, one exterior ring each).
    """

    table: pa.Table
    xy: np.ndarray
    ring_offsets: np.ndarray
    area_errors: int


def _scan(pbf: Path) -> tuple[dict[str, np.ndarray], pa.Table, pa.Table]:
    """Node locations, the ways tagged ``building``, and the building relations."""
    con = spatialdb.connect()
    try:
        src = "ST_ReadOSM(?)"
        nodes = con.execute(
            f"select id, lon, lat from {src} where kind = 'node'", [str(pbf)]
        ).fetchnumpy()
        plain = (
            "cardinality(tags) = 1 + (tags['building:levels'] is not null)::int"
            " + (tags['height'] is not null)::int + (tags['name'] is not null)::int"
        )
        ways = con.execute(
            "select id, refs, tags['building'] as building, tags['building:levels'] as lv, "
            f"tags['height'] as h, tags['name'] as name, {plain} as plain, "
            "coalesce(tags['area'] = 'no', false) as area_no, "
            f"case when not ({plain}) then tags end as tags "
            f"from {src} where kind = 'way' and map_contains(tags, 'building') order by id",
            [str(pbf)],
        ).to_arrow_table()
        rels = con.execute(
            "select id, refs, ref_types from "
            f"{src} where kind = 'relation' and map_contains(tags, 'building') "
            "and tags['type'] in ('multipolygon', 'boundary') order by id",
            [str(pbf)],
        ).to_arrow_table()
    finally:
        con.close()
    return {k: np.asarray(v) for k, v in nodes.items()}, ways, rels


def _rings(
    lon: np.ndarray, lat: np.ndarray, off: np.ndarray, chunk: int = 200_000
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_ring_chunk` over ``chunk`` rings at a time (its temporaries, a dozen arrays the
    size of the coordinates, would add about 500 MB at a million buildings)."""
    parts = []
    for a in range(0, max(len(off) - 1, 1), chunk):
        b = min(a + chunk, len(off) - 1)
        lo, hi = off[a], off[b]
        parts.append(_ring_chunk(lon[lo:hi], lat[lo:hi], off[a : b + 1] - lo))
    if len(parts) == 1:
        return parts[0]
    shift = np.cumsum([0] + [len(xy) for xy, _, _ in parts[:-1]])
    return (
        np.concatenate([xy for xy, _, _ in parts]),
        np.concatenate([[0]] + [o[1:] + s for (_, o, _), s in zip(parts, shift, strict=True)]),
        np.concatenate([r for _, _, r in parts]),
    )


def _ring_chunk(
    lon: np.ndarray, lat: np.ndarray, off: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """libosmium's form of closed rings given as vertex arrays (closing vertex included) with
    offsets: (xy with each ring closed, ring offsets, whether the ring needs libosmium).

    Each ring is turned counter-clockwise (shoelace sign) and rotated to start at its
    lexicographically smallest vertex. A ring "needs libosmium" when a location repeats
    consecutively; rings that are not simple are found afterwards with GEOS.
    """
    n = np.diff(off)
    if not len(n):
        return np.empty((0, 2)), np.zeros(1, dtype=np.int64), np.zeros(0, dtype=bool)
    keep = np.ones(len(lon), dtype=bool)
    keep[off[1:] - 1] = False  # each ring without its closing vertex
    x, y = lon[keep], lat[keep]
    m = n - 1
    ring = np.repeat(np.arange(len(m)), m)
    start = np.concatenate([[0], np.cumsum(m)[:-1]]).astype(np.int64)
    nxt = np.arange(len(x)) + 1
    nxt[start + m - 1] = start
    repeat = np.bincount(ring, weights=(x == x[nxt]) & (y == y[nxt]), minlength=len(m)) > 0
    clockwise = np.bincount(ring, weights=x * y[nxt] - x[nxt] * y, minlength=len(m)) < 0
    at_x = x == np.minimum.reduceat(x, start)[ring]
    min_y = np.minimum.reduceat(np.where(at_x, y, np.inf), start)
    hit = np.flatnonzero(at_x & (y == min_y[ring]))
    hit_ring = ring[hit]  # ascending: the first hit of each ring is where its ring number changes
    first = hit[np.concatenate([[True], hit_ring[1:] != hit_ring[:-1]])]
    j = np.arange(len(x)) - start[ring]
    src = start[ring] + (first[ring] - start[ring] + np.where(clockwise[ring], -j, j)) % m[ring]
    xy = np.empty((len(x) + len(m), 2))
    xy[np.arange(len(x)) + ring] = np.column_stack([x[src], y[src]])
    head = start + np.arange(len(m))
    xy[head + m] = xy[head]
    return xy, np.concatenate([[0], np.cumsum(m + 1)]).astype(np.int64), repeat


def read_buildings(pbf: Path, tables: OsmTables) -> ColumnarBuildings:
    """Every building area of ``pbf`` as :class:`ColumnarBuildings` (see the module notes)."""
    nodes, ways, rels = _scan(pbf)
    order = np.argsort(nodes["id"], kind="stable")
    node_ids = nodes["id"][order]
    lon = np.rint(nodes["lon"][order] * 1e7) / 1e7  # libosmium: the fixed-point integer ÷ 1e7
    lat = np.rint(nodes["lat"][order] * 1e7) / 1e7

    way_id = ways.column("id").to_numpy()
    refs = ways.column("refs").combine_chunks()
    flat = refs.flatten().to_numpy()
    off = refs.offsets.to_numpy().astype(np.int64)
    n = np.diff(off)
    k = np.minimum(np.searchsorted(node_ids, flat), max(len(node_ids) - 1, 0))
    found = node_ids[k] == flat if len(node_ids) else np.zeros(len(flat), dtype=bool)
    located = np.add.reduceat(found.astype(np.int64), off[:-1]) == n if len(n) else found[:0]
    big = n > 3
    safe_first, safe_last = off[:-1][big], off[1:][big] - 1
    closed = np.zeros(len(n), dtype=bool)
    closed[big] = (lon[k[safe_first]] == lon[k[safe_last]]) & (
        lat[k[safe_first]] == lat[k[safe_last]]
    )
    candidate = big & located & closed

    rel_id = rels.column("id").to_numpy()
    rel_refs = rels.column("refs").combine_chunks()
    rel_types = rels.column("ref_types").combine_chunks()
    members = rel_refs.flatten().to_numpy()
    member_is_way = np.asarray(rel_types.flatten().to_numpy(zero_copy_only=False)) == "way"
    member_rel = np.repeat(np.arange(len(rel_id)), np.diff(rel_refs.offsets.to_numpy()))

    chosen = np.flatnonzero(candidate & ~ways.column("area_no").to_numpy(zero_copy_only=False))

    # the rings of the chosen ways, in libosmium's form
    sel = np.zeros(len(n), dtype=bool)
    sel[chosen] = True
    sel = np.repeat(sel, n)
    pos = k[sel]
    sub_off = np.concatenate([[0], np.cumsum(n[chosen])]).astype(np.int64)
    xy, ring_off, repeat = _rings(lon[pos], lat[pos], sub_off)
    hard = repeat | ~_simple(xy, ring_off)
    del nodes, order, node_ids, lon, lat, refs, flat, k, found, sel, pos  # before libosmium's index

    # libosmium for the relations and the hard ways, only their areas reaching Python
    areas, errors = _libosmium_areas(pbf, tables, rel_id, way_id[chosen[hard]])

    # the attributes of the easy ways: a plain building's use from its value alone
    easy = chosen[~hard]
    table = ways.select(["building", "lv", "h", "name"]).take(easy)
    plain = ways.column("plain").to_numpy(zero_copy_only=False)[easy]
    rules = tables.buildings
    values = table.column("building").combine_chunks().dictionary_encode()
    uses = pa.array([rules.use_of_value(v) for v in values.dictionary.to_pylist()], pa.string())
    use = np.asarray(uses.take(values.indices).to_numpy(zero_copy_only=False), dtype=object)
    addr = np.full(len(easy), None, dtype=object)
    vac = np.full(len(easy), None, dtype=object)
    tags_col = ways.column("tags")  # the whole map only where the building tag is not plain
    for j in np.flatnonzero(~plain):
        t = dict(tags_col[int(easy[j])].as_py())
        use[j], addr[j], vac[j] = rules.use(t), _address(t), vacancy_of_pairs(t.items())
    kept = np.flatnonzero(use != None)  # noqa: E711 (elementwise)
    ids = pc.binary_join_element_wise(
        "osm:w", pc.cast(pa.array(way_id[easy][kept]), pa.string()), ""
    )
    lib = [row for _, _, (row, _) in areas]
    both = pa.concat_tables([
        pa.table({
            "id": ids, **{c: table.column(c).take(kept) for c in ("building", "lv", "h", "name")},
            "use": pa.array(use[kept], pa.string()), "addr": pa.array(addr[kept], pa.string()),
            "vacancy": pa.array(vac[kept], pa.string()),
            "wkb": pa.nulls(len(kept), pa.binary()),
        }).select(list(_BUILDING_COLUMNS)),
        pa.table(
            {**{c: pa.array([r[i] for r in lib], pa.string()) for i, c in enumerate(_ATTRIBUTES)},
             "wkb": pa.array([w for _, _, (_, w) in areas], pa.binary())}
        ),
    ])  # fmt: skip

    # every row, in emission order: a way's area at the way, a relation's at its last member way
    # (before that way's own area)
    rel_last = np.full(len(rel_id), -1, dtype=np.int64)
    np.maximum.at(rel_last, member_rel[member_is_way], members[member_is_way])
    rel_pos = dict(zip(rel_id.tolist(), rel_last.tolist(), strict=True))
    n_easy = len(kept)
    pos_all = np.concatenate([way_id[easy][kept], [i if w else rel_pos[i] for i, w, _ in areas]])
    way_all = np.concatenate([np.ones(n_easy), [1 if w else 0 for _, w, _ in areas]])
    id_all = np.concatenate([np.zeros(n_easy), [i for i, _, _ in areas]])
    rank = np.lexsort((id_all, way_all, pos_all.astype(np.int64)))

    ring_rows = rank[rank < n_easy]
    easy_ring = np.flatnonzero(~hard)[kept][ring_rows]
    lengths = np.diff(ring_off)[easy_ring]
    starts = np.cumsum(lengths) - lengths
    take = np.repeat(ring_off[easy_ring] - starts, lengths) + np.arange(int(lengths.sum()))
    return ColumnarBuildings(
        table=both.take(rank),
        xy=xy[take],
        ring_offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        area_errors=errors,
    )


_ATTRIBUTES = _BUILDING_COLUMNS[:-1]  # without "wkb"


def _simple(xy: np.ndarray, ring_off: np.ndarray) -> np.ndarray:
    """Whether each closed ring is simple (GEOS's ``is_simple``), with a vectorised test for
    quadrilaterals, the common footprint: one is simple when neither pair of opposite edges
    crosses and no two adjacent edges are collinear (a spike); a collinear corner is sent to GEOS
    like every other ring, so the result is GEOS's own."""
    import shapely

    m = np.diff(ring_off) - 1
    simple = np.zeros(len(m), dtype=bool)
    quad = np.flatnonzero(m == 4)
    p = [xy[ring_off[quad] + i] for i in range(4)]

    def cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out: np.ndarray = (a[:, 0] - o[:, 0]) * (b[:, 1] - o[:, 1]) - (a[:, 1] - o[:, 1]) * (
            b[:, 0] - o[:, 0]
        )
        return out

    corners = [cross(p[i], p[(i + 1) % 4], p[(i - 1) % 4]) for i in range(4)]
    # coordinates are multiples of 1e-7 degree, so a cross product of two edges is a multiple of
    # 1e-14 unless it is zero: below half of that it is zero, and every sign used here is exact
    straight = np.zeros(len(quad), dtype=bool)
    for c in corners:
        straight |= np.abs(c) < 5e-15

    def crosses(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
        d1, d2, d3, d4 = cross(c, d, a), cross(c, d, b), cross(a, b, c), cross(a, b, d)
        out: np.ndarray = (np.sign(d1) != np.sign(d2)) & (np.sign(d3) != np.sign(d4))
        return out

    # with no collinear corner, opposite edges meet only by a proper crossing
    bow = crosses(p[0], p[1], p[2], p[3]) | crosses(p[1], p[2], p[3], p[0])
    simple[quad] = ~straight & ~bow
    rest = np.flatnonzero(~np.isin(np.arange(len(m)), quad[~straight]))
    if len(rest):
        starts = ring_off[rest]
        lengths = m[rest] + 1
        take = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(
            lengths.sum()
        )
        rings = shapely.from_ragged_array(
            shapely.GeometryType.LINESTRING, xy[take], (np.concatenate([[0], np.cumsum(lengths)]),)
        )
        simple[rest] = shapely.is_simple(rings)
    return simple


def _libosmium_areas(
    pbf: Path, tables: OsmTables, relations: np.ndarray, ways: np.ndarray
) -> tuple[list[tuple[int, bool, Any]], int]:
    """The building areas libosmium makes of ``relations`` and ``ways`` (ids), as
    ``(id, from_way, (row, wkb))`` in its order, buildings dropped by their use left out; and
    the number of areas it could not make."""
    import osmium
    from osmium.filter import EntityFilter, IdFilter, KeyFilter

    ids = [2 * int(r) + 1 for r in relations] + [2 * int(w) for w in ways]
    if not ids:
        return [], 0
    rows = _BuildingRows(tables)
    fp = (
        osmium.FileProcessor(str(pbf))
        .with_locations()
        .with_areas(KeyFilter("building"))
        .with_filter(EntityFilter(osmium.osm.AREA))
        .with_filter(_only_for(IdFilter(ids), osmium.osm.AREA))
    )
    out: list[tuple[int, bool, Any]] = []
    got = rows.rows
    area: Any
    for area in fp:
        before = len(got["id"])
        rows.add(area, area.tags, area.tags["building"])
        if len(got["id"]) > before:
            row = tuple(got[c][-1] for c in _ATTRIBUTES)
            out.append((area.orig_id(), area.from_way(), (row, got["wkb"][-1])))
    return out, rows.area_errors
