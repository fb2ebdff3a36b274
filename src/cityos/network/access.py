"""Walking accessibility: nearest facility, facilities within a radius, service areas.

Every query works on points snapped to edges (:mod:`cityos.network.snap`). Network distances
are exact shortest paths on the walking graph plus both access legs:

    d(o, f) = access(o) + min( D_f[u] + offset(o),  D_f[v] + length(e) − offset(o),
                               |offset(o) − offset(f)| + access(f)  if o and f share edge e )

where ``D_f[x]`` is the shortest path from facility ``f`` (its access leg and its along-edge
offset included) to node ``x``. The nearest facility of a category comes from *one* multi-source
Dijkstra pass per category (scipy's ``dijkstra(min_only=True, limit=cutoff)``) over the graph
plus one virtual node per facility; counts within a radius come from bounded searches from each
facility (the smaller side), in chunks. ``method="euclidean"`` answers the same questions by
straight-line distance with a KD-tree, because official definitions of 服务半径 often mean a
radius.

A facility exactly at the cutoff (within :data:`TOLERANCE_M`) is within it. Points not snapped
(farther than the maximum snap distance from every walkable edge) reach nothing by network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from cityos.errors import InputError
from cityos.network.graph import WalkGraph
from cityos.network.snap import Snapped

__all__ = [
    "DEFAULT_BUFFER_M",
    "DEFAULT_CUTOFF_M",
    "TOLERANCE_M",
    "Method",
    "Nearest",
    "Pairs",
    "ServiceArea",
    "Within",
    "count_within",
    "nearest",
    "pairs_within",
    "service_area",
]

Method = Literal["network", "euclidean"]

#: default search cutoff for the nearest facility (metres): the 15-minute life circle, GB 50180-2018
DEFAULT_CUTOFF_M = 1000.0
#: buffer around reached street segments that makes a service-area polygon (metres); the [OP]
#: rule of ../shared/STANDARDS.md §11.1 ("polygon = 25 m buffer of reached edges")
DEFAULT_BUFFER_M = 25.0
#: distances within this many metres of a cutoff or radius count as inside (float rounding)
TOLERANCE_M = 1e-6


@dataclass(frozen=True)
class Nearest:
    """Nearest facility per origin: ``distance`` in metres (inf where none within the cutoff or
    unreachable) and ``facility``, the index into the facilities given (-1 where none)."""

    distance: NDArray[np.float64]
    facility: NDArray[np.int64]


@dataclass(frozen=True)
class Within:
    """Facilities within a radius per origin: ``count`` and ``total`` (sum of their weights)."""

    count: NDArray[np.int64]
    total: NDArray[np.float64]


@dataclass(frozen=True)
class ServiceArea:
    """The network within a distance of a facility set.

    ``segments`` has one row per reached stretch of street (``edge``, ``start_m``, ``end_m``
    along the edge from ``u``, geometry); ``polygon`` is their union buffered by ``buffer_m``.
    """

    segments: gpd.GeoDataFrame
    polygon: shapely.Geometry
    distance: float
    buffer_m: float


def _check_distance(value: float, what: str) -> None:
    if not np.isfinite(value) or value < 0:
        raise InputError(f"{what} must be a finite number of metres >= 0, got {value}")


def _augmented(graph: WalkGraph, fac: Snapped) -> tuple[csr_matrix, NDArray[np.int64]]:
    """The graph plus one virtual node per snapped facility, with edges facility → u and → v
    weighted by the access leg plus the along-edge offset. Returns the matrix and the indices
    (into ``fac``) of the facilities that got a virtual node, in virtual-node order."""
    ok = np.flatnonzero(fac.reachable)
    e = fac.edge[ok]
    a, s, length = fac.offset[ok], fac.access[ok], graph.edge_length[e]
    u, v = graph.edge_u[e], graph.edge_v[e]
    loop = u == v
    counts = np.where(loop, 1, 2)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    cols = np.empty(int(counts.sum()), dtype=np.int32)
    wts = np.empty(len(cols))
    cols[starts] = u
    wts[starts] = s + np.where(loop, np.minimum(a, length - a), a)
    second = starts[~loop] + 1
    cols[second] = v[~loop]
    wts[second] = (s + length - a)[~loop]
    n = graph.n_nodes + len(ok)
    indptr = np.concatenate([graph.indptr, graph.indptr[-1] + np.cumsum(counts)])
    matrix = csr_matrix(
        (np.concatenate([graph.weights, wts]), np.concatenate([graph.indices, cols]), indptr),
        shape=(n, n),
    )
    return matrix, ok


def _same_edge(
    o_edge: NDArray[np.int64],
    o_off: NDArray[np.float64],
    f_edge: NDArray[np.int64],
    f_off: NDArray[np.float64],
    f_access: NDArray[np.float64],
    best: NDArray[np.float64],
    best_f: NDArray[np.int64],
) -> None:
    """Improve ``best``/``best_f`` in place with facilities on the origin's own edge."""
    if not len(f_edge) or not len(o_edge):
        return
    order = np.argsort(f_edge, kind="stable")
    fe = f_edge[order]
    marked = np.zeros(int(max(f_edge.max(), o_edge.max())) + 1, dtype=bool)
    marked[f_edge] = True
    sel = np.flatnonzero(marked[o_edge])  # origins sharing an edge with some facility
    lo = np.zeros(len(o_edge), dtype=np.int64)
    cnt = np.zeros(len(o_edge), dtype=np.int64)
    lo[sel] = np.searchsorted(fe, o_edge[sel], "left")
    cnt[sel] = np.searchsorted(fe, o_edge[sel], "right") - lo[sel]
    k = 0
    while len(sel):
        j = order[lo[sel] + k]
        cand = np.abs(o_off[sel] - f_off[j]) + f_access[j]
        better = cand < best[sel]
        best[sel[better]] = cand[better]
        best_f[sel[better]] = j[better]
        k += 1
        sel = sel[cnt[sel] > k]


def _euclid_nearest(origins: Snapped, facilities: Snapped, cutoff: float) -> Nearest:
    n = len(origins)
    dist = np.full(n, np.inf)
    fac = np.full(n, -1, dtype=np.int64)
    valid_f = np.flatnonzero(np.isfinite(facilities.xy).all(axis=1))
    valid_o = np.flatnonzero(np.isfinite(origins.xy).all(axis=1))
    if not len(valid_f) or not len(valid_o):
        return Nearest(dist, fac)
    tree = cKDTree(facilities.xy[valid_f])
    # the KD-tree bound is strict: ask a little beyond and keep what is within the tolerance
    d, i = tree.query(origins.xy[valid_o], k=1, distance_upper_bound=cutoff + 2 * TOLERANCE_M)
    hit = d <= cutoff + TOLERANCE_M
    dist[valid_o[hit]] = d[hit]
    fac[valid_o[hit]] = valid_f[i[hit]]
    return Nearest(dist, fac)


def nearest(
    graph: WalkGraph | None,
    origins: Snapped,
    facilities: Snapped,
    *,
    cutoff: float = DEFAULT_CUTOFF_M,
    method: Method = "network",
) -> Nearest:
    """Distance to, and index of, the nearest facility for every origin.

    Parameters
    ----------
    graph
        The walking graph (unused, may be None, for ``method="euclidean"``).
    origins, facilities
        Snapped points (:func:`cityos.network.snap_points`).
    cutoff
        Search limit in metres (default :data:`DEFAULT_CUTOFF_M`); farther facilities are not
        reported.
    method
        ``"network"`` (walking distance along the graph, access legs included) or
        ``"euclidean"`` (straight line between the original points).

    Returns
    -------
    Nearest
        ``distance`` (metres; inf where none within ``cutoff``) and ``facility`` (index into
        ``facilities``; -1 where none), aligned with ``origins``.
    """
    _check_distance(cutoff, "cutoff")
    if method == "euclidean":
        return _euclid_nearest(origins, facilities, cutoff)
    if method != "network" or graph is None:
        raise InputError(f"method must be 'network' (with a graph) or 'euclidean', got {method!r}")
    n_o = len(origins)
    dist = np.full(n_o, np.inf)
    fac = np.full(n_o, -1, dtype=np.int64)
    if not origins.reachable.any() or not facilities.reachable.any():
        return Nearest(dist, fac)
    matrix, ok = _augmented(graph, facilities)
    n = graph.n_nodes
    d, _, src = dijkstra(
        matrix,
        directed=True,
        indices=n + np.arange(len(ok)),
        min_only=True,
        return_predecessors=True,
        limit=cutoff + TOLERANCE_M,
    )
    ends = origins.ends(graph)
    o, e, a = ends.index, ends.edge, ends.head
    du = d[ends.u] + a
    dv = d[ends.v] + ends.tail
    via_v = dv < du
    best = np.where(via_v, dv, du)
    source = src[np.where(via_v, ends.v, ends.u)]
    best_f = np.where(source >= 0, source - n, -1).astype(np.int64)  # position in ``ok``
    _same_edge(
        e, a, facilities.edge[ok], facilities.offset[ok], facilities.access[ok], best, best_f
    )
    total = best + origins.access[o]
    within = (total <= cutoff + TOLERANCE_M) & (best_f >= 0)
    dist[o[within]] = total[within]
    fac[o[within]] = ok[best_f[within]]
    return Nearest(dist, fac)


def _incidence(graph: WalkGraph) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Node → incident edges, as CSR (pointer, edge indices)."""
    ends = np.concatenate([graph.edge_u, graph.edge_v])
    edges = np.concatenate([np.arange(graph.n_edges), np.arange(graph.n_edges)])
    order = np.argsort(ends, kind="stable")
    ptr = np.zeros(graph.n_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(ends, minlength=graph.n_nodes), out=ptr[1:])
    return ptr, edges[order]


def _gather(
    ptr: NDArray[np.int64], values: NDArray[np.int64], keys: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Concatenate ``values[ptr[k]:ptr[k+1]]`` over ``keys`` (vectorised)."""
    lo, hi = ptr[keys], ptr[keys + 1]
    sizes = hi - lo
    if not sizes.sum():
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(lo - np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes)
    out: NDArray[np.int64] = values[np.arange(int(sizes.sum())) + offsets]
    return out


@dataclass(frozen=True)
class Pairs:
    """Origin–facility pairs within a radius: ``origin`` and ``facility`` (indices into the
    points given) and ``distance`` in metres, one entry per pair."""

    origin: NDArray[np.int64]
    facility: NDArray[np.int64]
    distance: NDArray[np.float64]


def pairs_within(
    graph: WalkGraph | None,
    origins: Snapped,
    facilities: Snapped,
    *,
    radius: float,
    method: Method = "network",
    chunk_cells: int = 20_000_000,
) -> Pairs:
    """Every (origin, facility) pair whose distance is at most ``radius`` metres.

    Network mode runs a Dijkstra search bounded by ``radius`` from each facility (the smaller
    side: there are fewer facilities than buildings), ``chunk_cells`` distance cells at a time,
    and reads the origins on the edges each search reached, with the same distance formula as
    :func:`nearest` (access legs, along-edge offsets, shared edges). Euclidean mode uses a
    KD-tree. This is the coverage relation of facility siting and of :func:`count_within`.
    """
    _check_distance(radius, "radius")
    if method == "euclidean":
        return _euclid_pairs(origins, facilities, radius)
    if method != "network" or graph is None:
        raise InputError(f"method must be 'network' (with a graph) or 'euclidean', got {method!r}")
    o = np.flatnonzero(origins.reachable)
    if not len(o) or not facilities.reachable.any():
        return Pairs(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    matrix, ok = _augmented(graph, facilities)
    n = graph.n_nodes
    inc_ptr, inc_edge = _incidence(graph)
    # origins grouped by edge
    order = o[np.argsort(origins.edge[o], kind="stable")]
    o_ptr = np.zeros(graph.n_edges + 1, dtype=np.int64)
    np.cumsum(np.bincount(origins.edge[order], minlength=graph.n_edges), out=o_ptr[1:])
    limit = radius + TOLERANCE_M
    step = max(1, chunk_cells // matrix.shape[0])
    hits_o: list[NDArray[np.int64]] = []
    hits_f: list[NDArray[np.int64]] = []
    hits_d: list[NDArray[np.float64]] = []
    for start in range(0, len(ok), step):
        rows = np.arange(start, min(start + step, len(ok)))
        block = dijkstra(matrix, directed=True, indices=n + rows, limit=limit)
        for r, j in zip(rows, block, strict=True):
            f = ok[r]
            reached = np.flatnonzero(j[:n] <= limit)
            edges = np.unique(np.append(_gather(inc_ptr, inc_edge, reached), facilities.edge[f]))
            cand = order[_gather(o_ptr, np.arange(len(order), dtype=np.int64), edges)]
            if not len(cand):
                continue
            e = origins.edge[cand]
            a = origins.offset[cand]
            length = graph.edge_length[e]
            best = np.minimum(j[graph.edge_u[e]] + a, j[graph.edge_v[e]] + (length - a))
            same = e == facilities.edge[f]
            best[same] = np.minimum(
                best[same], np.abs(a[same] - facilities.offset[f]) + facilities.access[f]
            )
            total = best + origins.access[cand]
            inside = total <= limit
            hits_o.append(cand[inside])
            hits_f.append(np.full(int(inside.sum()), f, dtype=np.int64))
            hits_d.append(total[inside])
    if not hits_o:
        return Pairs(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    return Pairs(np.concatenate(hits_o), np.concatenate(hits_f), np.concatenate(hits_d))


def count_within(
    graph: WalkGraph | None,
    origins: Snapped,
    facilities: Snapped,
    *,
    radius: float,
    weights: Sequence[float] | NDArray[np.float64] | None = None,
    method: Method = "network",
    chunk_cells: int = 20_000_000,
) -> Within:
    """How many facilities (and the sum of their ``weights``) lie within ``radius`` of each origin.

    Counts the pairs of :func:`pairs_within` (network: bounded searches from each facility;
    euclidean: a KD-tree).

    Parameters
    ----------
    radius
        Metres.
    weights
        One number per facility (area, capacity, beds); default 1, so ``total == count``.
    """
    w = np.ones(len(facilities)) if weights is None else np.asarray(weights, dtype=float)
    if len(w) != len(facilities):
        raise InputError(f"weights: {len(w)} values for {len(facilities)} facilities")
    pairs = pairs_within(
        graph, origins, facilities, radius=radius, method=method, chunk_cells=chunk_cells
    )
    n_o = len(origins)
    return Within(
        np.bincount(pairs.origin, minlength=n_o).astype(np.int64),
        np.bincount(pairs.origin, weights=w[pairs.facility], minlength=n_o).astype(np.float64),
    )


def _euclid_pairs(origins: Snapped, facilities: Snapped, radius: float) -> Pairs:
    valid_f = np.flatnonzero(np.isfinite(facilities.xy).all(axis=1))
    valid_o = np.flatnonzero(np.isfinite(origins.xy).all(axis=1))
    if not len(valid_f) or not len(valid_o):
        return Pairs(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    ft = cKDTree(facilities.xy[valid_f])
    ot = cKDTree(origins.xy[valid_o])
    # the KD-tree bound is strict: ask a little beyond and keep what is within the tolerance
    pairs = ot.sparse_distance_matrix(ft, radius + 2 * TOLERANCE_M, output_type="ndarray")
    pairs = pairs[pairs["v"] <= radius + TOLERANCE_M]
    return Pairs(
        valid_o[pairs["i"].astype(np.int64)],
        valid_f[pairs["j"].astype(np.int64)],
        pairs["v"].astype(np.float64),
    )


def service_area(
    graph: WalkGraph,
    facilities: Snapped,
    *,
    distance: float,
    buffer_m: float = DEFAULT_BUFFER_M,
) -> ServiceArea:
    """The streets within ``distance`` metres' walk of any facility, and a polygon around them.

    Parameters
    ----------
    distance
        Walking distance in metres (access legs included).
    buffer_m
        Half-width of the polygon around the reached streets (default :data:`DEFAULT_BUFFER_M`).
    """
    _check_distance(distance, "distance")
    _check_distance(buffer_m, "buffer")
    intervals: list[tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]] = []
    if facilities.reachable.any() and graph.n_edges:
        matrix, ok = _augmented(graph, facilities)
        d = dijkstra(matrix, directed=True, indices=graph.n_nodes + np.arange(len(ok)), min_only=True,
                     limit=distance + TOLERANCE_M)[: graph.n_nodes]  # fmt: skip
        length = graph.edge_length
        from_u = np.clip(distance - d[graph.edge_u], 0.0, length)
        from_v = np.clip(distance - d[graph.edge_v], 0.0, length)
        edges = np.arange(graph.n_edges)
        hu = np.isfinite(d[graph.edge_u])
        hv = np.isfinite(d[graph.edge_v])
        intervals.append((edges[hu], np.zeros(int(hu.sum())), from_u[hu]))
        intervals.append((edges[hv], (length - from_v)[hv], length[hv]))
        left = distance - facilities.access[ok]
        on = left >= 0
        fe = facilities.edge[ok][on]
        fo = facilities.offset[ok][on]
        intervals.append(
            (fe, np.clip(fo - left[on], 0, length[fe]), np.clip(fo + left[on], 0, length[fe]))
        )
    if intervals:
        e = np.concatenate([i[0] for i in intervals])
        lo = np.concatenate([i[1] for i in intervals])
        hi = np.concatenate([i[2] for i in intervals])
    else:
        e, lo, hi = np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    merged = _merge_intervals(e, lo, hi)
    segs = _substrings(graph, *merged)
    frame = gpd.GeoDataFrame(
        {
            "edge": merged[0],
            "edge_id": graph.edge_ids[merged[0]],
            "start_m": merged[1],
            "end_m": merged[2],
        },
        geometry=gpd.GeoSeries(segs, crs=graph.crs),
        crs=graph.crs,
    )
    if len(segs):
        polygon = (
            shapely.union_all(shapely.buffer(segs, buffer_m))
            if buffer_m > 0
            else shapely.union_all(segs)
        )
    else:
        polygon = shapely.Polygon()
    return ServiceArea(frame, polygon, float(distance), float(buffer_m))


def _merge_intervals(
    e: NDArray[np.int64], lo: NDArray[np.float64], hi: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """Union of [lo, hi] intervals per edge (empty ones dropped), sorted by edge and start."""
    keep = hi > lo
    e, lo, hi = e[keep], lo[keep], hi[keep]
    order = np.lexsort((lo, e))
    e, lo, hi = e[order], lo[order], hi[order]
    out_e: list[int] = []
    out_lo: list[float] = []
    out_hi: list[float] = []
    for edge, a, b in zip(e.tolist(), lo.tolist(), hi.tolist(), strict=True):
        if out_e and out_e[-1] == edge and a <= out_hi[-1]:
            out_hi[-1] = max(out_hi[-1], b)
        else:
            out_e.append(edge)
            out_lo.append(a)
            out_hi.append(b)
    return np.asarray(out_e, dtype=np.int64), np.asarray(out_lo), np.asarray(out_hi)


def _substrings(
    graph: WalkGraph, e: NDArray[np.int64], lo: NDArray[np.float64], hi: NDArray[np.float64]
) -> NDArray[np.object_]:
    lines = graph.edge_geometry[e]
    full = (lo <= 0) & (hi >= graph.edge_length[e])
    out = lines.copy()
    partial = np.flatnonzero(~full)
    if len(partial):
        from shapely.ops import substring

        scale = shapely.length(lines[partial]) / np.where(
            graph.edge_length[e[partial]] > 0, graph.edge_length[e[partial]], 1.0
        )
        for k, i in enumerate(partial):
            out[i] = substring(lines[i], lo[i] * scale[k], hi[i] * scale[k])
    return out
