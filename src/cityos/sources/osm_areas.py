"""The areas of the flat reader (:mod:`cityos.sources.osm_flat`): which closed ways and
relations are areas as libosmium makes them, their rings, and the ones left to libosmium."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import shapely

from cityos.sources.osm_arrays import _offsets, _ranges, _Tags, _Ways
from cityos.sources.osm_rings import SIMPLE
from cityos.sources.osm_rings import rings as closed_rings
from cityos.sources.pbf import PbfData

#: an area the main pass sees: ("w" or "r", timestamp, order key, tags, its geometry on demand)
_Item = tuple[str, int, tuple[int, int, int], dict[str, str], Callable[[], Any]]


@dataclass
class _Areas:
    """The areas NumPy makes: way areas (rings in ``xy``), relation areas (``rel_geom``)."""

    way: np.ndarray  # way positions, ascending
    way_ring: np.ndarray  # their rings
    rel: np.ndarray  # relation positions, ascending
    rel_geom: np.ndarray  # their (multi)polygons
    rel_last: dict[int, int]
    xy: np.ndarray
    ring_off: np.ndarray
    hard: list[int]
    keyed_way: np.ndarray  # per way: has an area key (the main pass's area filter)
    keyed_rel: np.ndarray
    d: PbfData

    def polygon(self, ring: int) -> Any:
        return shapely.polygons(self.xy[self.ring_off[ring] : self.ring_off[ring + 1]])

    def general(self, wt: _Tags, rt: _Tags) -> list[_Item]:
        """The areas the main pass sees (an area key besides ``building``)."""
        out: list[_Item] = []
        sel = np.flatnonzero(self.keyed_way[self.way])
        objs = self.way[sel]
        for j, i, tags in zip(sel.tolist(), objs.tolist(), wt.dicts(objs), strict=True):
            wid = int(self.d.way_id[i])
            ring = int(self.way_ring[j])
            ts = int(self.d.way_ts[i])
            out.append(("w", ts, (wid, 1, wid), tags, _Lazy(partial(self.polygon, ring))))
        sel = np.flatnonzero(self.keyed_rel[self.rel])
        objs = self.rel[sel]
        for j, i, tags in zip(sel.tolist(), objs.tolist(), rt.dicts(objs), strict=True):
            rid = int(self.d.rel_id[i])
            g = self.rel_geom[j]
            out.append(
                ("r", int(self.d.rel_ts[i]), (self.rel_last[rid], 0, rid), tags, _Lazy(value=g))
            )
        return out


class _Lazy:
    """A value made once, when first asked for (or given)."""

    def __init__(self, make: Callable[[], Any] | None = None, value: Any = None) -> None:
        self.make, self.value = make, value

    def __call__(self) -> Any:
        if self.value is None and self.make is not None:
            self.value = self.make()
        return self.value


def _areas(d: PbfData, w: _Ways, wt: _Tags, rt: _Tags, area_keys: list[str]) -> _Areas:
    """Which closed ways and relations are areas, their rings, and those left to libosmium."""
    n_ways = len(d.way_id)
    no = d.string_id("no")
    area_no = wt.value("area") == no if no >= 0 else np.zeros(n_ways, dtype=bool)
    keyed_way = wt.any_of(area_keys)
    building = wt.value("building") >= 0
    way_area = w.area_ok & ~area_no & (building | keyed_way)

    # relations: multipolygons and boundaries with an area key or building
    raw = _Tags(len(d.rel_id), d.rtag, d, rt.strings)
    kind = raw.value("type")
    mp = np.isin(kind, [d.string_id("multipolygon"), d.string_id("boundary")]) & (kind >= 0)
    keyed_rel = rt.any_of(area_keys)
    cand = mp & (keyed_rel | (rt.value("building") >= 0))
    rel_of = np.repeat(np.arange(len(d.rel_id)), np.diff(d.rel_off))
    is_way = (d.mem_type == 1) & cand[rel_of]
    member = np.full(len(d.mem_id), -1, dtype=np.int64)
    if n_ways and is_way.any():
        at = np.minimum(np.searchsorted(d.way_id, d.mem_id[is_way]), n_ways - 1)
        member[is_way] = np.where(d.way_id[at] == d.mem_id[is_way], at, -1)
    # complete: every member way is in the file (else libosmium makes no area)
    missing = np.bincount(rel_of[is_way & (member < 0)], minlength=len(d.rel_id)) > 0
    n_way_members = np.bincount(rel_of[is_way], minlength=len(d.rel_id))
    cand &= ~missing
    is_way &= cand[rel_of]

    # the rings: way areas and the member ways of candidate relations
    ring_way = way_area.copy()
    ring_way[member[is_way & (member >= 0)]] = True
    ring_ways = np.flatnonzero(ring_way & w.area_ok)
    # the buildings' rings first, in way order: the buildings layer can then take the first
    # part of xy as it is (osm_flat._buildings)
    first = (building & way_area)[ring_ways]
    ring_ways = np.concatenate([ring_ways[first], ring_ways[~first]])
    lo, hi = w.off[ring_ways], w.off[ring_ways + 1]
    xy, ring_off, state = closed_rings(w.x, w.y, _offsets(hi - lo), start=lo)
    hard_ring = state != SIMPLE
    ring_of = np.full(n_ways, -1, dtype=np.int64)
    ring_of[ring_ways] = np.arange(len(ring_ways))
    easy_ring = np.zeros(n_ways, dtype=bool)
    easy_ring[ring_ways] = ~hard_ring

    easy_way = way_area & easy_ring
    hard = [2 * int(i) for i in d.way_id[way_area & ~easy_ring]]

    # relations NumPy can assemble: every member way a ring of its own, roles outer or inner
    role = d.mem_role
    outer, inner = d.string_id("outer"), d.string_id("inner")
    m_ring = np.where(member >= 0, ring_of[np.maximum(member, 0)], -1)
    ok_member = ~is_way | ((m_ring >= 0) & easy_ring[np.maximum(member, 0)]
                           & ((role == outer) | (role == inner)))  # fmt: skip
    bad = np.bincount(rel_of[~ok_member], minlength=len(d.rel_id)) > 0
    n_outer = np.bincount(rel_of[is_way & (role == outer)], minlength=len(d.rel_id))
    easy_rel = cand & ~bad & (n_outer >= 1) & (n_way_members >= 1)
    rel_last: dict[int, int] = {}
    if cand.any():
        last = np.full(len(d.rel_id), -1, dtype=np.int64)
        np.maximum.at(last, rel_of[is_way], d.mem_id[is_way])
        rel_last = dict(zip(d.rel_id[cand].tolist(), last[cand].tolist(), strict=True))
    rels = np.flatnonzero(easy_rel)
    geoms = _assemble(rels, rel_of, is_way, role == inner, m_ring, xy, ring_off)
    valid = geoms != None  # noqa: E711 (elementwise)
    if len(rels):
        holed = valid & (shapely.get_num_interior_rings(geoms) > 0)
        holed |= shapely.get_type_id(geoms) == 6
        valid[holed] = shapely.is_valid(geoms[holed]) & shapely.is_simple(
            shapely.boundary(geoms[holed])
        )
        # a repeated member way makes a ring twice: libosmium's to judge
        dup = _repeated_members(rels, rel_of, is_way, member)
        valid &= ~dup
    hard += [2 * int(r) + 1 for r in d.rel_id[cand & ~easy_rel]]
    hard += [2 * int(r) + 1 for r in d.rel_id[rels[~valid]]]
    return _Areas(
        way=np.flatnonzero(easy_way),
        way_ring=ring_of[easy_way],
        rel=rels[valid],
        rel_geom=geoms[valid],
        rel_last=rel_last,
        xy=xy,
        ring_off=ring_off,
        hard=sorted(hard),
        keyed_way=keyed_way,
        keyed_rel=keyed_rel,
        d=d,
    )


def _repeated_members(
    rels: np.ndarray, rel_of: np.ndarray, is_way: np.ndarray, member: np.ndarray
) -> np.ndarray:
    sel = np.flatnonzero(is_way)
    sel = sel[np.isin(rel_of[sel], rels)]
    if not len(sel):
        return np.zeros(len(rels), dtype=bool)
    # members are listed relation by relation: a way twice in one relation is a repeated
    # (relation, way) pair once the pairs are sorted
    pair = np.sort(rel_of[sel].astype(np.int64) * (int(member.max()) + 1) + member[sel])
    twice = pair[1:][pair[1:] == pair[:-1]] // (int(member.max()) + 1)
    return np.isin(rels, twice)


def _assemble(
    rels: np.ndarray,
    rel_of: np.ndarray,
    is_way: np.ndarray,
    is_inner: np.ndarray,
    m_ring: np.ndarray,
    xy: np.ndarray,
    ring_off: np.ndarray,
) -> np.ndarray:
    """The (multi)polygon of each relation in ``rels`` from its member rings: outer rings
    counter-clockwise, inner ones clockwise, each from its smallest vertex, inner rings and
    polygons ordered by that vertex; an inner ring goes to the outer ring that contains it."""
    out = np.empty(len(rels), dtype=object)
    if not len(rels):
        return out
    sel = np.flatnonzero(is_way & np.isin(rel_of, rels))
    r_of = np.searchsorted(rels, rel_of[sel])
    ring = m_ring[sel]
    inner = is_inner[sel]
    start = xy[ring_off[ring]]
    # per relation: outer rings first, each group by first vertex
    order = np.lexsort((start[:, 1], start[:, 0], inner, r_of))
    r_of, ring, inner = r_of[order], ring[order], inner[order]
    n_outer = np.bincount(r_of[~inner], minlength=len(rels))
    # rings as coordinate arrays: inner ones reversed (clockwise from the same first vertex)
    lengths = ring_off[ring + 1] - ring_off[ring]
    at = _ranges(ring_off[ring], ring_off[ring + 1])
    flip = np.repeat(inner, lengths)
    local = at - np.repeat(ring_off[ring], lengths)
    rev = np.repeat(ring_off[ring + 1] - 1, lengths) - local
    coords = xy[np.where(flip, rev, at)]
    linear = shapely.linearrings(coords, indices=np.repeat(np.arange(len(ring)), lengths))
    one = n_outer[r_of] == 1
    if one.any():
        idx = np.flatnonzero(one)
        shapely.polygons(linear[idx], indices=r_of[idx], out=out)
    for r in np.flatnonzero(n_outer > 1).tolist():
        mine = np.flatnonzero(r_of == r)
        shells = [linear[j] for j in mine if not inner[j]]
        holes: list[list[Any]] = [[] for _ in shells]
        shell_polys = [shapely.polygons(s) for s in shells]
        for j in mine:
            if not inner[j]:
                continue
            home = [k for k, p in enumerate(shell_polys) if p.contains(linear[j])]
            if len(home) != 1:  # an inner ring in no outer, or in several: libosmium's
                out[r] = None
                break
            holes[home[0]].append(linear[j])
        else:
            out[r] = shapely.multipolygons(
                [shapely.polygons(s, holes=h or None) for s, h in zip(shells, holes, strict=True)]
            )
    return out
