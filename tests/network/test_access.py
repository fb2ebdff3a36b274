"""The accessibility engine against slow references: networkx Dijkstra over the same snapped graph
(random graphs, hypothesis), brute force for straight lines, hand-checked toy networks, and the
real Helsinki network."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cityos
from cityos.errors import InputError
from cityos.network import (
    Snapped,
    WalkGraph,
    accessibility_table,
    count_within,
    graph_from_bundle,
    graph_from_edges,
    nearest,
    pairs_within,
    service_area,
    snap_points,
)
from tests.network.reference import reference_distances, reference_graph

CRS = "EPSG:32650"


def make_graph(n_nodes: int, edges: list[tuple[int, int, float]], seed: int = 0) -> WalkGraph:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 1000, (n_nodes, 2))
    frame = gpd.GeoDataFrame(
        {
            "u": [e[0] for e in edges],
            "v": [e[1] for e in edges],
            "length_m": [e[2] for e in edges],
            "edge_id": np.arange(len(edges)),
        },
        geometry=[
            shapely.LineString([xy[a], xy[b] + (0.001 if a == b else 0)]) for a, b, _ in edges
        ],
        crs=CRS,
    )
    return graph_from_edges(frame)


def points_on(graph: WalkGraph, rows: list[tuple[int, float, float]]) -> Snapped:
    """Points given as (edge or -1, fraction along it, access leg)."""
    edge = np.array([r[0] for r in rows], dtype=np.int64)
    length = np.where(edge >= 0, graph.edge_length[np.maximum(edge, 0)], 0.0)
    offset = np.array([r[1] for r in rows]) * length
    access = np.where(edge >= 0, [r[2] for r in rows], np.nan)
    return Snapped(edge, offset, access, np.zeros((len(rows), 2)))


@st.composite
def networks(draw: st.DrawFn) -> tuple[WalkGraph, Snapped, Snapped]:
    n = draw(st.integers(2, 9))
    length = st.one_of(st.just(0.0), st.floats(0.5, 400.0), st.integers(1, 300).map(float))
    m = draw(st.integers(1, 14))
    edges = [
        (draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1)), draw(length)) for _ in range(m)
    ]
    node_ids = sorted({x for a, b, _ in edges for x in (a, b)})
    relabel = {x: i for i, x in enumerate(node_ids)}
    edges = [(relabel[a], relabel[b], w) for a, b, w in edges]
    graph = make_graph(len(node_ids), edges)
    frac = st.one_of(st.just(0.0), st.just(1.0), st.just(0.5), st.floats(0.0, 1.0))
    access = st.one_of(st.just(0.0), st.floats(0.0, 60.0))
    point = st.tuples(st.one_of(st.integers(0, graph.n_edges - 1), st.just(-1)), frac, access)
    origins = draw(st.lists(point, min_size=1, max_size=8))
    facilities = draw(st.lists(point, min_size=1, max_size=6))
    if draw(st.booleans()):  # a duplicate facility
        facilities.append(facilities[0])
    return graph, points_on(graph, origins), points_on(graph, facilities)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks(), st.sampled_from([0.0, 50.0, 250.0, 1000.0, np.inf]), st.booleans())
def test_nearest_equals_networkx(
    case: tuple[WalkGraph, Snapped, Snapped], cutoff: float, cutoff_at_a_distance: bool
) -> None:
    graph, origins, facilities = case
    ref = reference_distances(graph, origins, facilities)
    best = ref.min(axis=1)
    finite = best[np.isfinite(best)]
    if cutoff_at_a_distance and len(finite):
        cutoff = float(finite[len(finite) // 2])  # a facility exactly at the cutoff
    if not np.isfinite(cutoff):
        cutoff = 1e9
    got = nearest(graph, origins, facilities, cutoff=cutoff)
    expect = np.where(best <= cutoff + 1e-6, best, np.inf)
    assert np.allclose(got.distance, expect, atol=1e-6, rtol=0)  # inf equals inf
    # the facility reported is one at that distance
    for i in np.flatnonzero(np.isfinite(expect)):
        assert got.facility[i] >= 0
        assert ref[i, got.facility[i]] == pytest.approx(expect[i], abs=1e-6)
    assert (got.facility[~np.isfinite(expect)] == -1).all()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks(), st.sampled_from([0.0, 30.0, 120.0, 500.0]))
def test_count_within_equals_networkx(
    case: tuple[WalkGraph, Snapped, Snapped], radius: float
) -> None:
    graph, origins, facilities = case
    ref = reference_distances(graph, origins, facilities)
    weights = np.arange(1.0, len(facilities) + 1.0)
    got = count_within(graph, origins, facilities, radius=radius, weights=weights, chunk_cells=7)
    inside = ref <= radius + 1e-6
    assert list(got.count) == list(inside.sum(axis=1))
    assert np.allclose(got.total, (inside * weights).sum(axis=1))
    # the pairs themselves, with their distances (the coverage relation of facility siting)
    pairs = pairs_within(graph, origins, facilities, radius=radius, chunk_cells=5)
    dense = np.full(ref.shape, np.inf)
    dense[pairs.origin, pairs.facility] = pairs.distance
    assert np.allclose(dense, np.where(inside, ref, np.inf), atol=1e-6, rtol=0)
    assert len(set(zip(pairs.origin, pairs.facility, strict=True))) == len(pairs.origin)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-500, 500), st.floats(-500, 500)), min_size=1, max_size=40),
    st.lists(st.tuples(st.floats(-500, 500), st.floats(-500, 500)), min_size=1, max_size=15),
    st.floats(0, 400),
)
def test_euclidean_equals_brute_force(
    o: list[tuple[float, float]], f: list[tuple[float, float]], radius: float
) -> None:
    ox, fx = np.array(o), np.array(f)
    origins = Snapped(np.zeros(len(o), np.int64), np.zeros(len(o)), np.zeros(len(o)), ox)
    facilities = Snapped(np.zeros(len(f), np.int64), np.zeros(len(f)), np.zeros(len(f)), fx)
    d = np.hypot(ox[:, None, 0] - fx[None, :, 0], ox[:, None, 1] - fx[None, :, 1])
    got = nearest(None, origins, facilities, cutoff=radius, method="euclidean")
    best = d.min(axis=1)
    expect = np.where(best <= radius + 1e-6, best, np.inf)
    assert np.allclose(got.distance, expect, atol=1e-6, rtol=0)
    w = np.linspace(1, 2, len(f))
    within = count_within(None, origins, facilities, radius=radius, weights=w, method="euclidean")
    assert list(within.count) == list((d <= radius + 1e-6).sum(axis=1))
    pairs = pairs_within(None, origins, facilities, radius=radius, method="euclidean")
    dense = np.full(d.shape, np.inf)
    dense[pairs.origin, pairs.facility] = pairs.distance
    assert np.allclose(dense, np.where(d <= radius + 1e-6, d, np.inf), atol=1e-6, rtol=0)
    assert np.allclose(within.total, ((d <= radius + 1e-6) * w).sum(axis=1))


# --- hand-checked toy network ---------------------------------------------------------------
#
#   A ---- 100 m ---- B ---- 100 m ---- C        E ---- 50 m ---- F   (an island)
#                     |
#                    80 m
#                     |
#                     D


@pytest.fixture(scope="module")
def toy() -> WalkGraph:
    frame = gpd.GeoDataFrame(
        {
            "u": [1, 2, 2, 5],
            "v": [2, 3, 4, 6],
            "length_m": [100.0, 100.0, 80.0, 50.0],
            "edge_id": [10, 11, 12, 13],
        },
        geometry=[
            shapely.LineString([(0, 0), (100, 0)]),
            shapely.LineString([(100, 0), (200, 0)]),
            shapely.LineString([(100, 0), (100, -80)]),
            shapely.LineString([(500, 0), (550, 0)]),
        ],
        crs=CRS,
    )
    return graph_from_edges(frame)


def test_components_are_reported(toy: WalkGraph) -> None:
    comps = toy.components()
    assert comps.count == 2
    assert list(comps.sizes) == [4, 2]
    assert comps.largest_share == pytest.approx(4 / 6)


def test_snapping_to_edges_with_offsets_and_access(toy: WalkGraph) -> None:
    pts = np.array(
        [
            shapely.Point(30, 10),
            shapely.Point(100, -50),
            shapely.Point(300, 300),
            shapely.Point(520, -5),
        ]
    )
    s = snap_points(toy, pts, max_snap=200)
    assert list(s.edge) == [0, 2, -1, 3]
    assert s.offset[[0, 1, 3]] == pytest.approx([30.0, 50.0, 20.0])
    assert s.access[[0, 1, 3]] == pytest.approx([10.0, 0.0, 5.0])
    assert np.isnan(s.access[2])
    assert snap_points(toy, pts, max_snap=5).edge.tolist() == [-1, 2, -1, 3]


def test_toy_distances_by_hand(toy: WalkGraph) -> None:
    # origins: 30 m along A-B (10 m off the street), on the island; facility: 20 m down B-D, 5 m off
    origins = snap_points(toy, np.array([shapely.Point(30, 10), shapely.Point(520, 0)]))
    school = snap_points(toy, np.array([shapely.Point(105, -20)]))
    got = nearest(toy, origins, school, cutoff=1000)
    # 10 (access) + 70 (to B) + 20 (down to the school's spot) + 5 (access) = 105; island: none
    assert got.distance[0] == pytest.approx(105.0)
    assert got.facility.tolist() == [0, -1]
    assert np.isinf(got.distance[1])
    assert np.isinf(nearest(toy, origins, school, cutoff=104.9).distance[0])
    assert nearest(toy, origins, school, cutoff=105.0).distance[0] == pytest.approx(105.0)
    # same edge: two points 40 m apart on A-B, 10 m and 0 m off the street
    same = snap_points(toy, np.array([shapely.Point(70, 0)]))
    assert nearest(toy, origins, same, cutoff=1000).distance[0] == pytest.approx(10 + 40)
    # straight line
    assert nearest(toy, origins, school, cutoff=1000, method="euclidean").distance[
        0
    ] == pytest.approx(np.hypot(75, 30))


def test_toy_count_within(toy: WalkGraph) -> None:
    origins = snap_points(toy, np.array([shapely.Point(100, 0)]))
    facs = snap_points(
        toy,
        np.array(
            [
                shapely.Point(0, 0),
                shapely.Point(200, 0),
                shapely.Point(100, -80),
                shapely.Point(550, 0),
            ]
        ),
    )
    got = count_within(toy, origins, facs, radius=90, weights=[1, 10, 100, 1000])
    assert got.count.tolist() == [1] and got.total.tolist() == [100.0]
    got = count_within(toy, origins, facs, radius=100, weights=[1, 10, 100, 1000])
    assert got.count.tolist() == [3] and got.total.tolist() == [111.0]


def test_toy_service_area(toy: WalkGraph) -> None:
    facs = snap_points(toy, np.array([shapely.Point(50, 0)]))
    area = service_area(toy, facs, distance=80, buffer_m=10)
    seg = area.segments.set_index("edge_id")
    # 50 m to each end of A-B (whole edge), then 30 m beyond B on B-C and on B-D
    assert seg.loc[10, ["start_m", "end_m"]].tolist() == [0.0, 100.0]
    assert seg.loc[11, ["start_m", "end_m"]].tolist() == pytest.approx([0.0, 30.0])
    assert seg.loc[12, ["start_m", "end_m"]].tolist() == pytest.approx([0.0, 30.0])
    assert 13 not in seg.index
    assert area.segments.length.sum() == pytest.approx(160.0)
    assert area.polygon.contains(shapely.Point(125, 5)) and not area.polygon.contains(
        shapely.Point(145, 0)
    )


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"cutoff": -1}, "cutoff"),
        ({"cutoff": float("nan")}, "cutoff"),
        ({"method": "crow"}, "method"),
    ],
)
def test_bad_options(toy: WalkGraph, kw: dict[str, object], message: str) -> None:
    pts = snap_points(toy, np.array([shapely.Point(0, 0)]))
    with pytest.raises(InputError, match=message):
        nearest(toy, pts, pts, **kw)  # type: ignore[arg-type]


# --- the real Helsinki network ---------------------------------------------------------------


def test_helsinki_nearest_equals_networkx(helsinki: cityos.Bundle) -> None:
    graph = graph_from_bundle(helsinki)
    b = helsinki.projected("buildings").iloc[::4]
    stops = helsinki.projected("facilities").query("category == 'bus_stop'")
    origins = snap_points(graph, shapely.point_on_surface(b.geometry.to_numpy()))
    fac = snap_points(graph, stops.geometry.to_numpy())
    got = nearest(graph, origins, fac, cutoff=5000)
    g = reference_graph(graph, {"o": origins, "f": fac})
    sources = [("f", j) for j in range(len(fac)) if fac.edge[j] >= 0]
    ref = nx.multi_source_dijkstra_path_length(g, sources, weight="weight")
    expect = np.array([ref.get(("o", i), np.inf) for i in range(len(origins))])
    assert np.isfinite(expect).sum() > 80
    assert np.allclose(
        got.distance[np.isfinite(expect)], expect[np.isfinite(expect)], atol=1e-6, rtol=0
    )
    assert np.array_equal(np.isinf(got.distance), np.isinf(expect) | (expect > 5000))


def test_helsinki_graph_components(helsinki: cityos.Bundle) -> None:
    graph = graph_from_bundle(helsinki)
    assert graph.n_nodes == len(helsinki.walk_nodes)
    comps = graph.components()
    expect = nx.number_connected_components(
        nx.from_edgelist(zip(helsinki.walk_edges["u"], helsinki.walk_edges["v"], strict=True))
    )
    assert comps.count == expect and comps.sizes.sum() == graph.n_nodes


def test_accessibility_table(helsinki: cityos.Bundle, tmp_path: Path) -> None:
    table = accessibility_table(helsinki, categories=["bus_stop", "pharmacy"], cutoff=800)
    assert list(table.columns) == ["building_id", "category", "distance_m", "facility_id"]
    assert len(table) == 2 * len(helsinki.buildings)
    bus = table[table["category"] == "bus_stop"]
    assert bus["distance_m"].notna().mean() > 0.9
    assert (bus["distance_m"].dropna() <= 800 + 1e-6).all()
    assert bus["facility_id"].isna().equals(bus["distance_m"].isna())
    assert set(bus["facility_id"].dropna()) <= set(helsinki.facilities["facility_id"])
    assert table.attrs["method"] == "network" and table.attrs["cutoff_m"] == 800
    table.to_parquet(tmp_path / "access.parquet")  # writable as the health check's access.parquet
    straight = accessibility_table(
        helsinki, categories=["bus_stop"], cutoff=800, distance="euclidean"
    )
    # a straight line is never longer than the walk (both from the same building point)
    both = bus["distance_m"].to_numpy()
    line = straight["distance_m"].to_numpy()
    ok = ~np.isnan(both)
    assert (line[ok] <= both[ok] + 1e-6).all()


def test_accessibility_table_unknown_category(helsinki: cityos.Bundle) -> None:
    with pytest.raises(InputError, match="spaceport"):
        accessibility_table(helsinki, categories=["spaceport"])
