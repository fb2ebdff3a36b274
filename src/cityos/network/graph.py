"""The walking graph: compact CSR arrays over a bundle's walk layers, lengths in metres.

Nodes are the bundle's ``walk_nodes`` (intersections and dead ends), edges its ``walk_edges``
with their full geometry in the bundle's projected CRS. Walking is undirected, so the CSR holds
both directions; parallel edges keep the shortest. Components are labelled once, so an origin on
a small island is known to reach only what is on its island.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from functools import cached_property

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from shapely import STRtree

from cityos.bundle import Bundle
from cityos.errors import InputError

__all__ = ["PIECE_M", "Components", "Pieces", "WalkGraph", "graph_from_bundle", "graph_from_edges"]

#: longest straight piece of street in the snapping index (metres, in the graph's CRS units)
PIECE_M = 60.0


@dataclass(frozen=True)
class Pieces:
    """Straight pieces of the edges: ends ``a``/``b`` (n, 2), ``edge`` index, ``start`` (distance
    along the edge geometry where the piece begins), a KD-tree over the midpoints and the longest
    half-piece ``half`` (any piece within distance d of a point has its midpoint within d + half)."""

    a: NDArray[np.float64]
    b: NDArray[np.float64]
    edge: NDArray[np.int64]
    start: NDArray[np.float64]
    tree: cKDTree
    half: float

    @cached_property
    def columns(self) -> tuple[NDArray[np.float64], ...]:
        """ax, ay, dx, dy, 1/|d|² (0 for zero-length pieces) and |d| as flat arrays."""
        d = self.b - self.a
        dd = (d**2).sum(axis=1)
        inv = np.divide(1.0, dd, out=np.zeros_like(dd), where=dd > 0)
        return (
            self.a[:, 0].copy(),
            self.a[:, 1].copy(),
            d[:, 0].copy(),
            d[:, 1].copy(),
            inv,
            np.sqrt(dd),
        )


def _pieces(geoms: NDArray[np.object_]) -> Pieces:
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    same = owner[:-1] == owner[1:]
    a, b, edge = coords[:-1][same], coords[1:][same], owner[:-1][same].astype(np.int64)
    seg = np.hypot(*(b - a).T)
    # distance along the edge at each segment's start: cumulative sum restarted per edge
    cum = np.cumsum(seg)
    first = np.r_[True, edge[1:] != edge[:-1]]
    base = np.repeat((cum - seg)[first], np.diff(np.r_[np.flatnonzero(first), len(seg)]))
    seg_start = cum - seg - base
    k = np.maximum(1, np.ceil(seg / PIECE_M)).astype(np.int64)
    rep = np.repeat(np.arange(len(seg)), k)
    j = np.arange(len(rep)) - np.repeat(np.cumsum(k) - k, k)
    f0 = (j / k[rep])[:, None]
    f1 = ((j + 1) / k[rep])[:, None]
    d = (b - a)[rep]
    pa = a[rep] + f0 * d
    pb = a[rep] + f1 * d
    start = seg_start[rep] + f0[:, 0] * seg[rep]
    mid = (pa + pb) / 2
    half = float((seg / k).max() / 2) if len(seg) else 0.0
    tree = cKDTree(mid if len(mid) else np.zeros((0, 2)))
    return Pieces(pa, pb, edge[rep], start, tree, half)


@dataclass(frozen=True)
class Components:
    """Connected components of the walking graph: how many and how big (nodes, largest first)."""

    count: int
    sizes: NDArray[np.int64]

    @property
    def largest_share(self) -> float:
        """Share of nodes in the largest component (1.0 for a connected graph)."""
        total = int(self.sizes.sum())
        return float(self.sizes[0] / total) if total else 1.0


@dataclass(frozen=True)
class WalkGraph:
    """An undirected walking graph in CSR form.

    Attributes
    ----------
    node_ids
        OSM node id of each graph node (index = graph node number).
    xy
        Node coordinates in ``crs`` (metres), shape (n, 2).
    edge_u, edge_v
        Graph node numbers of each edge's start and end (the start of its geometry is ``edge_u``).
    edge_length
        Edge lengths in metres.
    edge_geometry
        Edge LineStrings in ``crs``.
    edge_ids
        The bundle's ``edge_id`` of each edge.
    crs
        The projected CRS of every coordinate and length.
    indptr, indices, weights
        CSR adjacency in both directions (parallel edges reduced to the shortest).
    component
        Component label of every node.
    """

    node_ids: NDArray[np.int64]
    xy: NDArray[np.float64]
    edge_u: NDArray[np.int64]
    edge_v: NDArray[np.int64]
    edge_length: NDArray[np.float64]
    edge_geometry: NDArray[np.object_]
    edge_ids: NDArray[np.int64]
    crs: str
    indptr: NDArray[np.int64] = field(repr=False)
    indices: NDArray[np.int32] = field(repr=False)
    weights: NDArray[np.float64] = field(repr=False)
    component: NDArray[np.int32] = field(repr=False)

    @property
    def n_nodes(self) -> int:
        return len(self.node_ids)

    @property
    def n_edges(self) -> int:
        return len(self.edge_u)

    @cached_property
    def edge_tree(self) -> STRtree:
        """Spatial index over the edge geometries (built on first use)."""
        return STRtree(self.edge_geometry)

    @cached_property
    def geometry_length(self) -> NDArray[np.float64]:
        """Length of each edge's geometry in ``crs`` units (``edge_length`` may differ: it is the
        bundle's measured length, to which along-geometry positions are scaled)."""
        return np.asarray(shapely.length(self.edge_geometry), dtype=np.float64)

    @cached_property
    def pieces(self) -> Pieces:
        """The edges cut into straight pieces of at most :data:`PIECE_M` metres, for snapping."""
        return _pieces(self.edge_geometry)

    def matrix(self) -> csr_matrix:
        """The adjacency as a scipy CSR matrix (both directions, weights in metres)."""
        n = self.n_nodes
        return csr_matrix((self.weights, self.indices, self.indptr), shape=(n, n))

    def components(self) -> Components:
        """Number and sizes (largest first) of the connected components."""
        sizes = np.sort(np.bincount(self.component))[::-1].astype(np.int64)
        return Components(len(sizes), sizes)


def _csr(
    n: int, u: NDArray[np.int64], v: NDArray[np.int64], w: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.float64]]:
    """Symmetric CSR arrays, parallel edges reduced to the shortest."""
    rows = np.concatenate([u, v])
    cols = np.concatenate([v, u])
    wts = np.concatenate([w, w])
    order = np.lexsort((wts, cols, rows))
    rows, cols, wts = rows[order], cols[order], wts[order]
    keep = np.ones(len(rows), dtype=bool)
    keep[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    rows, cols, wts = rows[keep], cols[keep], wts[keep]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return indptr, cols.astype(np.int32), wts.astype(np.float64)


def graph_from_edges(
    edges: gpd.GeoDataFrame,
    *,
    u: str = "u",
    v: str = "v",
    length: str = "length_m",
    edge_id: str | None = "edge_id",
) -> WalkGraph:
    """Build a walking graph from an edge table in a projected CRS.

    Parameters
    ----------
    edges
        One row per edge with end node ids ``u`` and ``v``, a ``length`` in metres and a LineString
        geometry running from ``u`` to ``v``, in a projected CRS.
    u, v, length, edge_id
        Column names.

    Raises
    ------
    InputError
        The frame is in a geographic CRS, lacks a column, or has negative or missing lengths.
    """
    if edges.crs is None or not edges.crs.is_projected:
        raise InputError(f"walk edges must be in a projected CRS (metres), got {edges.crs}")
    for col in (u, v, length):
        if col not in edges:
            raise InputError(f"walk edges: missing column '{col}'")
    lengths = edges[length].to_numpy(dtype=float)
    if np.isnan(lengths).any() or (lengths < 0).any():
        raise InputError("walk edges: lengths must be present and non-negative")
    ids, inverse = np.unique(
        np.concatenate([edges[u].to_numpy(), edges[v].to_numpy()]), return_inverse=True
    )
    m = len(edges)
    eu = inverse[:m].astype(np.int64)
    ev = inverse[m:].astype(np.int64)
    geoms = edges.geometry.to_numpy()
    xy = np.zeros((len(ids), 2))
    if m:
        coords, owner = shapely.get_coordinates(geoms, return_index=True)
        first = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        last = np.r_[first[1:], len(owner)] - 1
        xy[eu[owner[first]]] = coords[first]
        xy[ev[owner[last]]] = coords[last]
    indptr, indices, weights = _csr(len(ids), eu, ev, lengths)
    n = len(ids)
    matrix = csr_matrix((weights, indices, indptr), shape=(n, n))
    _, labels = connected_components(matrix, directed=False)
    return WalkGraph(
        node_ids=ids.astype(np.int64),
        xy=xy,
        edge_u=eu,
        edge_v=ev,
        edge_length=lengths,
        edge_geometry=geoms,
        edge_ids=(
            edges[edge_id].to_numpy(np.int64)
            if edge_id and edge_id in edges
            else np.arange(m, dtype=np.int64)
        ),
        crs=edges.crs.to_string(),
        indptr=indptr,
        indices=indices,
        weights=weights,
        component=labels.astype(np.int32),
    )


def graph_from_bundle(bundle: Bundle, highways: Collection[str] | None = None) -> WalkGraph:
    """The walking graph of a city bundle, in the bundle's projected CRS; with ``highways``,
    only its edges of those ``highway`` classes (e.g. the ``[drive]`` classes of
    ``osm.toml`` for vehicles)."""
    if bundle.walk_edges.empty:
        raise InputError(
            f"{bundle.path}: the bundle has no walk network; import an OSM extract with streets"
        )
    edges = bundle.projected("walk_edges")
    if highways is not None:
        edges = edges[edges["highway"].isin(list(highways))].reset_index(drop=True)
        if edges.empty:
            raise InputError(f"{bundle.path}: the bundle has no streets of {sorted(highways)}")
    return graph_from_edges(edges)
