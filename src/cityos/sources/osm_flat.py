"""The flat OSM reader: a whole ``.osm.pbf`` decoded into arrays (:mod:`cityos.sources.pbf`),
the layers of :class:`~cityos.sources.osm.OsmExtract` built from them with NumPy.

It gives what pyosmium's passes give (``tests/sources/test_osm_flat.py`` compares the two on
Helsinki, Kouvola, the Chinese extracts and the synthetic cities) by following libosmium's
rules:

* a way node without a location (outside the extract) splits a walk way, and keeps a closed
  way from becoming an area;
* a closed way is an area when it has more than three nodes, its ends have the same location,
  every node has a location and it is not tagged ``area=no``;
* a ``type=multipolygon`` or ``boundary`` relation is an area when all its member ways are in
  the file; the area has the relation's tags less ``type``, and its timestamp;
* rings as :mod:`cityos.sources.osm_rings` says; areas in libosmium's order (a relation's when
  its last member way is read, before that way's own).

What libosmium must judge is left to it (``_Areas.hard`` of :mod:`cityos.sources.osm_areas`,
read by an ``IdFilter`` pass that lets only those areas reach Python): rings with a location
twice in a row or that are not simple, and relations whose member ways are not each a closed ring (boundaries, to be
stitched), whose roles are not ``outer``/``inner``, or whose rings touch or do not nest as their
roles say.

The tags and way node locations as tables are in :mod:`cityos.sources.osm_arrays`, the areas in
:mod:`cityos.sources.osm_areas`; this module makes the layers.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from cityos.classify import FacilityRules, OsmTables
from cityos.sources.osm_areas import _Areas, _areas, _Item, _Lazy
from cityos.sources.osm_arrays import _locate, _offsets, _ranges, _Tags, _take_ranges, _Ways
from cityos.sources.osm_buildings import (
    _BUILDING_COLUMNS,
    _address,
    _building_tags,
    _BuildingRows,
    _only_for,
    _wkb_bytes,
    vacancy_of_pairs,
)
from cityos.sources.pbf import PbfData

__all__ = ["AREA_KEYS", "FlatRead", "Rows", "read_flat"]

#: keys that bring an area to the main pass besides the facility keys (osm.read_osm's filter)
AREA_KEYS = ("landuse", "leisure", "boundary", "place", "highway")

_LON_MAX, _LAT_MAX = 1_800_000_000, 900_000_000


@dataclass
class Rows:
    """Rows of one layer, each with its place in libosmium's order ``(pos, rank, id)``: a node
    ``(-1, 0, id)``, a way ``(id, 1, id)``, a relation ``(its last member way, 0, id)``."""

    cols: dict[str, list[Any]]
    keys: list[tuple[int, int, int]] = field(default_factory=list)

    @classmethod
    def of(cls, *names: str) -> Rows:
        return cls({k: [] for k in names})

    def add(self, key: tuple[int, int, int], **values: Any) -> None:
        for k, v in values.items():
            self.cols[k].append(v)
        self.keys.append(key)

    def extend(self, other: Rows) -> None:
        for k, v in other.cols.items():
            self.cols[k].extend(v)
        self.keys.extend(other.keys)

    def order(self) -> np.ndarray:
        if not self.keys:
            return np.zeros(0, dtype=np.int64)
        k = np.asarray(self.keys, dtype=np.int64)
        return np.lexsort((k[:, 2], k[:, 1], k[:, 0]))


@dataclass
class FlatRead:
    """What :func:`read_flat` made, and what it leaves to libosmium.

    ``buildings`` holds the columns of ``osm_buildings._BUILDING_COLUMNS`` but ``wkb`` as
    object arrays, with ``ring`` (the row's ring in ``xy``/``ring_off``, -1 for a relation's
    row, whose polygon is in ``geom``) and ``key`` (rows of :meth:`Rows.order`'s keys).
    """

    walk: dict[str, np.ndarray]
    buildings: dict[str, np.ndarray]
    facilities: Rows
    green: Rows
    residential: Rows
    admin: Rows
    hard_buildings: Rows
    newest: int | None
    stats: dict[str, int]


class _Facilities:
    """The facility test of the main pass (osm_collect._Collector._facility), on tag dicts."""

    def __init__(self, rules: FacilityRules, rows: Rows) -> None:
        self.rules = rules
        self.rule_keys = tuple(rules.by_key)
        self.rows = rows
        # the categories of features alike for the rules, found once (FacilityRules.memo_key)
        self.found: dict[tuple[Any, ...], list[tuple[str, str]]] = {}

    def present(self, tags: dict[str, str]) -> list[str]:
        return [k for k in self.rule_keys if k in tags]

    def add(self, tags: dict[str, str], fid: str, geom: Callable[[], Any], poly: bool,
            present: list[str], key: tuple[int, int, int]) -> bool:  # fmt: skip
        name = tags.get("name") or tags.get("name:zh")
        if not present and not name:
            return False
        alike = self.rules.memo_key(tags, name)
        found = self.found.get(alike) if alike is not None else None
        if found is None:
            found = self.rules.classify(tags=tags, name=name, keys=present)
            if alike is not None:
                self.found[alike] = found
        if not found:
            return False
        g = geom()
        if g is None:
            return False
        for cat, rule in found:
            self.rows.add(key, fid=fid, cat=cat, rule=rule, name=name, geom=g, poly=poly)
        return True


def _walk(walk: np.ndarray, d: PbfData, wt: _Tags, w: _Ways) -> tuple[dict[str, np.ndarray], int]:
    """The walk ways cut into pieces at nodes without a location (pieces of 2+ nodes kept):
    the arrays of ``osm._split_walk``, and how many way nodes had no location."""
    lo, hi = w.off[walk], w.off[walk + 1]
    at = _ranges(lo, hi)
    way_of = np.repeat(np.arange(len(walk)), hi - lo)
    ok = w.located[at]
    p = np.flatnonzero(ok)
    new = np.ones(len(p), dtype=bool)
    new[1:] = (p[1:] != p[:-1] + 1) | (way_of[p[1:]] != way_of[p[:-1]])
    run = np.cumsum(new) - 1
    keep_run = np.bincount(run, minlength=int(run[-1]) + 1 if len(run) else 0) >= 2
    keep = keep_run[run] if len(run) else np.zeros(0, dtype=bool)
    pk = at[p[keep]]
    starts = np.flatnonzero(new[keep])
    piece_way = walk[way_of[p[keep][starts]]] if len(starts) else np.zeros(0, dtype=np.int64)
    strings = wt.strings
    return {
        "refs": d.way_refs[pk],
        "lon": w.x[pk] / 1e7,
        "lat": w.y[pk] / 1e7,
        "starts": starts.astype(np.int64),
        "way": d.way_id[piece_way],
        "highway": strings[wt.value("highway")[piece_way]],
        "name": _or_none(strings, wt.value("name")[piece_way]),
    }, int((~ok).sum())


#: the most bytes an Arrow string array (int32 offsets) holds
_STRING_BYTES = 2**31


def _prefixed(prefix: str, ids: np.ndarray) -> pa.Array:
    """``prefix`` + each id (decimal), as Arrow strings: written in C straight into Arrow's
    layout (Arrow's cast and join would make three arrays on the way)."""
    from cityos import _pbf

    head = prefix.encode()
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    room = len(ids) * (len(head) + 20)
    if room >= _STRING_BYTES:  # more than int32 offsets can address: Arrow's way
        return pc.binary_join_element_wise(prefix, pc.cast(pa.array(ids), pa.string()), "")
    offsets = np.empty(len(ids) + 1, dtype=np.int32)
    data = np.empty(room, dtype=np.uint8)
    used = _pbf.prefixed_ids(head, ids, offsets, data)
    return pa.StringArray.from_buffers(
        len(ids),
        pa.py_buffer(offsets),
        pa.py_buffer(data[:used]),  # the rest never touched
    )


def _or_none(strings: np.ndarray, ids: np.ndarray) -> np.ndarray:
    out: np.ndarray = strings[ids].astype(object)
    out[ids < 0] = None
    return out


def read_flat(path: Path, d: PbfData, rules: FacilityRules, tables: OsmTables) -> FlatRead:
    """Every layer of the extract ``d`` that NumPy can make as libosmium would (module notes)."""
    strings = np.asarray([*d.strings, ""], dtype=object)  # string id -1 reads as ""
    ntags = _Tags(len(d.node_id), d.ntag, d, strings)
    wtags = _Tags(len(d.way_id), d.wtag, d, strings)
    rtags = _Tags(len(d.rel_id), d.rtag, d, strings, drop="type")
    fac_keys = sorted(rules.trigger_keys | {"name", "name:zh"})
    area_keys = sorted(set(fac_keys) | set(AREA_KEYS))
    fac = _Facilities(rules, Rows.of("fid", "cat", "rule", "name", "geom", "poly"))
    stamps: list[int] = []
    # on a second thread, in turn: the way-node locations, the areas and the buildings'
    # columns (C, NumPy and Arrow work that lets go of the GIL), while this one runs the
    # facility tests (Python's own work)
    with ThreadPoolExecutor(1) as pool:
        located = pool.submit(_locate, d)
        made = pool.submit(lambda: _areas(d, located.result(), wtags, rtags, area_keys))
        buildings = pool.submit(lambda: _buildings(d, wtags, rtags, tables, made.result()))
        _facility_nodes(d, ntags, fac, stamps, fac_keys)
        return _with_other_layers(
            buildings, path, d, located.result(), wtags, rtags, tables, fac, stamps,
            made.result(), fac_keys, area_keys,
        )  # fmt: skip


def _facility_nodes(
    d: PbfData, ntags: _Tags, fac: _Facilities, stamps: list[int], fac_keys: list[str]
) -> None:
    """The facilities mapped as nodes, added to ``fac`` (their timestamps to ``stamps``)."""
    nodes = np.flatnonzero(ntags.any_of(fac_keys))
    nodes = nodes[(np.abs(d.node_x[nodes]) <= _LON_MAX) & (np.abs(d.node_y[nodes]) <= _LAT_MAX)]
    node_ts = d.node_ts[np.searchsorted(d.tagged_nodes(), nodes)]
    columns = (
        d.node_id[nodes].tolist(), (d.node_x[nodes] / 1e7).tolist(),
        (d.node_y[nodes] / 1e7).tolist(), node_ts.tolist(), ntags.dicts(nodes),
    )  # fmt: skip
    for nid, lon, lat, ts, tags in zip(*columns, strict=True):
        point = _Lazy(value=(lon, lat))
        if fac.add(tags, f"osm:n{nid}", point, False, fac.present(tags), (-1, 0, nid)):
            stamps.append(ts)


def _with_other_layers(buildings: Future[dict[str, Any]], path: Path, d: PbfData, w: _Ways,
                       wtags: _Tags, rtags: _Tags, tables: OsmTables,
                       fac: _Facilities, stamps: list[int], areas: _Areas, fac_keys: list[str],
                       area_keys: list[str]) -> FlatRead:  # fmt: skip
    """:func:`read_flat`'s layers made here after the facility nodes, with ``buildings``
    (being made on another thread) waited for at the end."""
    # ways: the walk network, and facilities mapped as open lines (their middle node)
    walk: list[int] = []
    ways = np.flatnonzero(wtags.any_of(["highway", *fac_keys]))
    for i, tags in zip(ways.tolist(), wtags.dicts(ways), strict=True):
        walkable = tables.is_walkable(tags)
        if walkable:
            stamps.append(int(d.way_ts[i]))
            walk.append(i)
        if w.closed_id[i]:
            continue
        present = fac.present(tags)
        if not present and (walkable or "name" not in tags):
            continue
        wid = int(d.way_id[i])

        def middle(i: int = i) -> tuple[float, float] | None:
            ok = np.flatnonzero(w.located[w.off[i] : w.off[i + 1]])
            if not len(ok):
                return None
            j = w.off[i] + ok[len(ok) // 2]
            return (w.x[j] / 1e7, w.y[j] / 1e7)

        fac.add(tags, f"osm:w{wid}", middle, False, present, (wid, 1, wid))
    walk_arrays, missing = _walk(np.asarray(walk, dtype=np.int64), d, wtags, w)
    items = areas.general(wtags, rtags)
    hard_buildings = Rows.of(*_BUILDING_COLUMNS)
    errors = 0
    if areas.hard:
        more, hard_buildings, errors = _libosmium(
            path, areas.hard, tables, area_keys, areas.rel_last
        )
        items += more
    green, res, adm = (
        Rows.of("id", "kind", "name", "geom"),
        Rows.of("id", "geom"),
        Rows.of("id", "name", "admin_level", "geom"),
    )
    for kind, ts, key, tags, geom in items:
        fid = f"{'osm:w' if kind == 'w' else 'osm:r'}{key[2]}"
        building = tags.get("building")
        if building is not None:
            _, _, name, plain = _building_tags(tags)
            if plain:  # only its name can make it a facility
                if name is not None and fac.add(tags, fid, geom, True, [], key):
                    stamps.append(ts)
                continue
        used = False
        present = fac.present(tags)
        if present or "name" in tags or "name:zh" in tags:
            used = fac.add(tags, fid, geom, True, present, key) or used
        green_kind = tables.green_kind(tags)
        if green_kind is not None and (g := geom()) is not None:
            green.add(key, id=fid, kind=green_kind, name=tags.get("name"), geom=g)
            used = True
        if tables.is_residential_land(tags) and (g := geom()) is not None:
            res.add(key, id=fid, geom=g)
            used = True
        if tables.is_admin(tags) and (g := geom()) is not None:
            level = tags.get("admin_level")
            try:
                value = float(level) if level else np.nan
            except ValueError:
                value = np.nan
            adm.add(key, id=fid, name=tags.get("name"), admin_level=value, geom=g)
            used = True
        if used:
            stamps.append(ts)
    errors += sum(1 for _, _, _, _, geom in items if getattr(geom, "failed", False))
    return FlatRead(
        walk=walk_arrays,
        buildings=buildings.result(),
        hard_buildings=hard_buildings,
        facilities=fac.rows,
        green=green,
        residential=res,
        admin=adm,
        newest=max(stamps) if stamps else None,
        stats={
            "area_errors": errors,
            "missing_locations": missing,
            "walk_ways": len(np.unique(walk_arrays["way"])),
        },
    )


class _Wkb:
    """A libosmium area's geometry, made once when asked for (None when libosmium could not:
    then ``failed``, counted as an area error, as the main pass counts it)."""

    def __init__(self, wkb: bytes | None) -> None:
        self.wkb, self.geom, self.failed = wkb, None, False

    def __call__(self) -> Any:
        if self.wkb is None:
            self.failed = True
            return None
        if self.geom is None:
            self.geom = shapely.from_wkb(self.wkb)
        return self.geom


def _libosmium(
    path: Path, ids: list[int], tables: OsmTables, area_keys: list[str], rel_last: dict[int, int]
) -> tuple[list[_Item], Rows, int]:
    """The areas ``ids`` (pyosmium area ids) as libosmium makes them: the items the main pass
    sees (an area key besides ``building``), the building rows, and building area errors."""
    import osmium
    from osmium.filter import EntityFilter, IdFilter

    buildings = _BuildingRows(tables)
    rows = Rows.of(*_BUILDING_COLUMNS)
    factory = osmium.geom.WKBFactory()
    keys = set(area_keys)
    items: list[_Item] = []
    fp = (
        osmium.FileProcessor(str(path))
        .with_locations()
        .with_areas()
        .with_filter(EntityFilter(osmium.osm.AREA))
        .with_filter(_only_for(IdFilter(ids), osmium.osm.AREA))
    )
    got = buildings.rows
    area: Any
    for area in fp:
        oid = int(area.orig_id())
        key = (oid, 1, oid) if area.from_way() else (rel_last[oid], 0, oid)
        tags = {t.k: t.v for t in area.tags}
        if "building" in tags:
            before = len(got["id"])
            buildings.add(area, area.tags, tags["building"])
            if len(got["id"]) > before:
                rows.add(key, **{c: got[c][-1] for c in _BUILDING_COLUMNS})
        if keys.isdisjoint(tags):
            continue
        try:
            wkb: bytes | None = _wkb_bytes(factory.create_multipolygon(area))
        except RuntimeError:
            wkb = None
        kind = "w" if area.from_way() else "r"
        items.append((kind, int(area.timestamp.timestamp()), key, tags, _Wkb(wkb)))
    return items, rows, buildings.area_errors


#: building uses (cityos.classify.BuildingRules.use) as codes; None (dropped) is -1
_USES = pa.array(["residential", "non_residential", "unknown"])
_USE_CODE: dict[str | None, int] = {None: -1, "residential": 0, "non_residential": 1, "unknown": 2}


def _texts(text: pa.Array, ids: np.ndarray) -> pa.Array:
    """The strings of ``ids`` (string ids, -1 for none: null)."""
    return text.take(pa.array(ids, mask=ids < 0))


def _objects(values: np.ndarray | None, kept: np.ndarray) -> pa.Array:
    """The ``kept`` rows of an object column (None: a column of nulls)."""
    if values is None:
        return pa.nulls(len(kept), pa.string())
    return pa.array(values[kept], pa.string())


def _buildings(d: PbfData, wt: _Tags, rt: _Tags, tables: OsmTables, a: _Areas) -> dict[str, Any]:  # fmt: skip
    """The building rows of the way and relation areas NumPy made (before libosmium's): text
    columns as Arrow arrays, ``ring`` (-1 for a relation's row), ``geom`` (a relation's
    polygon, else None) and ``key`` (its place in libosmium's order)."""
    rules = tables.buildings
    text = pa.array(wt.strings.tolist(), pa.string())  # string id -1 is the last, ""
    parts = []
    for kind, objs, tags, ids in (
        ("w", a.way, wt, d.way_id),
        ("r", a.rel, rt, d.rel_id),
    ):
        value = tags.value("building")[objs]
        has = value >= 0
        objs, value = objs[has], value[has]
        ring = np.flatnonzero(has) if kind == "w" else None
        lv, h, name = (tags.value(k)[objs] for k in ("building:levels", "height", "name"))
        plain = tags.count()[objs] == 1 + (lv >= 0) + (h >= 0) + (name >= 0)
        # the use of a plain building from its value alone, looked up once per value, as a
        # code into USES (-1: dropped)
        uniq = np.flatnonzero(np.bincount(value, minlength=len(tags.strings)))
        by_value = np.full(len(tags.strings), -1, dtype=np.int8)
        by_value[uniq] = [_USE_CODE[rules.use_of_value(s)] for s in tags.strings[uniq].tolist()]
        use = by_value[value]
        rich = np.flatnonzero(~plain)
        addr = np.full(len(objs), None, dtype=object) if len(rich) else None
        vac = np.full(len(objs), None, dtype=object) if len(rich) else None
        for j, t in zip(rich.tolist(), tags.dicts(objs[rich]), strict=True):
            use[j] = _USE_CODE[rules.use(t)]
            addr[j], vac[j] = _address(t), vacancy_of_pairs(t.items())  # type: ignore[index]
        kept = np.flatnonzero(use >= 0)
        oid = ids[objs[kept]]
        prefix = "osm:w" if kind == "w" else "osm:r"
        key = np.empty((len(oid), 3), dtype=np.int64)  # (last way, 1 way / 0 relation, id)
        key[:, 2] = oid
        if kind == "w":
            key[:, 0], key[:, 1] = oid, 1
            ring_col = a.way_ring[ring[kept]]  # type: ignore[index]
            geom = np.full(len(kept), None, dtype=object)
        else:
            key[:, 0] = [a.rel_last[int(i)] for i in oid.tolist()]
            key[:, 1] = 0
            ring_col = np.full(len(kept), -1, dtype=np.int64)
            geom = a.rel_geom[has][kept]

        parts.append({
            "id": _prefixed(prefix, oid),
            "building": _texts(text, value[kept]),
            "use": pa.DictionaryArray.from_arrays(use[kept], _USES).cast(pa.string()),
            "lv": _texts(text, lv[kept]),
            "h": _texts(text, h[kept]),
            "name": _texts(text, name[kept]),
            "addr": _objects(addr, kept),
            "vacancy": _objects(vac, kept),
            "ring": ring_col,
            "geom": geom,
            "key": key,
        })  # fmt: skip
    parts = [p for p in parts if len(p["key"])] or parts[:1]  # (one part: nothing to join)
    out = {
        k: parts[0][k]
        if len(parts) == 1
        else pa.concat_arrays([p[k] for p in parts])
        if isinstance(parts[0][k], pa.Array)
        else np.concatenate([p[k] for p in parts])
        for k in parts[0]
    }
    # the flat rows' rings, ring after ring: ``xy`` and ``ring_at``. The buildings' rings come
    # first in the areas' xy (osm_areas._areas): when every one is a row, that part as it is;
    # else gathered here, on this thread
    r = out["ring"][out["ring"] >= 0]
    if bool((r == np.arange(len(r))).all()):
        out["ring_at"] = a.ring_off[: len(r) + 1]
        out["xy"] = a.xy[: out["ring_at"][-1]]
    else:
        lo, hi = a.ring_off[r], a.ring_off[r + 1]
        out["xy"], out["ring_at"] = _take_ranges(a.xy, lo, hi), _offsets(hi - lo)
    return out
