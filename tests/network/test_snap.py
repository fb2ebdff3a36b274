"""Snapping to edges: the KD-tree-with-bound search equals brute force over every edge."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from cityos.errors import InputError
from cityos.network import graph_from_edges, snap_points

CRS = "EPSG:32650"


def random_network(seed: int, n_edges: int) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n_edges):
        k = rng.integers(2, 6)  # straight and bent edges, some very long (500 m)
        pts = np.cumsum(
            rng.normal(0, rng.choice([5.0, 60.0, 250.0]), (k, 2)), axis=0
        ) + rng.uniform(0, 2000, 2)
        lines.append(shapely.LineString(pts))
    geoms = np.array(lines)
    ends = np.round(
        np.vstack([shapely.get_coordinates(shapely.get_point(geoms, i)) for i in (0, -1)]), 6
    )
    _, ids = np.unique(ends, axis=0, return_inverse=True)
    return gpd.GeoDataFrame(
        {"u": ids[:n_edges], "v": ids[n_edges:], "length_m": shapely.length(geoms)},
        geometry=geoms,
        crs=CRS,
    )


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 60), st.floats(5, 400))
def test_snap_equals_brute_force(seed: int, n_edges: int, max_snap: float) -> None:
    edges = random_network(seed, n_edges)
    graph = graph_from_edges(edges)
    rng = np.random.default_rng(seed + 1)
    pts = shapely.points(rng.uniform(-300, 2300, (300, 2)))
    s = snap_points(graph, pts, max_snap=max_snap)
    brute = shapely.distance(pts[:, None], graph.edge_geometry[None, :])
    best = brute.min(axis=1)
    inside = best <= max_snap
    assert np.array_equal(s.reachable, inside)
    assert np.allclose(s.access[inside], best[inside], atol=1e-6)
    # the snapped edge is one at that distance, and the offset lands on the projection
    e = s.edge[inside]
    assert np.allclose(brute[inside, :][np.arange(inside.sum()), e], best[inside], atol=1e-6)
    on = shapely.line_interpolate_point(graph.edge_geometry[e], s.offset[inside])
    assert np.allclose(shapely.distance(on, pts[inside]), best[inside], atol=1e-6)


def test_negative_max_snap() -> None:
    graph = graph_from_edges(random_network(1, 3))
    with pytest.raises(InputError, match="snap"):
        snap_points(graph, shapely.points([[0.0, 0.0]]), max_snap=-1)


def test_empty_and_missing_points() -> None:
    graph = graph_from_edges(random_network(2, 5))
    s = snap_points(graph, np.array([None, shapely.Point()], dtype=object))
    assert list(s.edge) == [-1, -1]
    assert len(snap_points(graph, np.array([], dtype=object))) == 0


@pytest.mark.parametrize("seed", [3, 11, 29])
def test_snap_does_not_depend_on_point_order(seed: int) -> None:
    # the points are queried in grid-cell order internally; each answer must be the point's own
    graph = graph_from_edges(random_network(seed, 40))
    rng = np.random.default_rng(seed)
    pts = shapely.points(rng.uniform(-300, 2300, (500, 2)))
    perm = rng.permutation(len(pts))
    a = snap_points(graph, pts)
    b = snap_points(graph, pts[perm])
    assert np.array_equal(a.edge[perm], b.edge)
    assert np.array_equal(a.offset[perm], b.offset)
    assert np.array_equal(a.access[perm], b.access, equal_nan=True)


def test_spatial_order_visits_cells_row_by_row() -> None:
    from cityos.network.snap import spatial_order

    # cells of 100 m: (250, 10) is cell (2, 0), (10, 150) cell (0, 1), (120, 20) cell (1, 0)
    xy = np.array([[10.0, 150.0], [250.0, 10.0], [120.0, 20.0], [0.0, 0.0]])
    assert list(spatial_order(xy)) == [3, 2, 1, 0]
    assert len(spatial_order(np.zeros((0, 2)))) == 0
