"""Rings in libosmium's form: counter-clockwise from the smallest vertex, and GEOS's simple
test, computed exactly on the fixed-point coordinates."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from cityos.sources import osm_rings


def _rings(*rings: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closed rings of small integer vertices as fixed-point arrays around Helsinki."""
    closed = [
        np.array([*r, r[0]], dtype=np.int64) * 100 + [249_000_000, 601_000_000] for r in rings
    ]
    xy = np.vstack(closed)
    off = np.concatenate([[0], np.cumsum([len(c) for c in closed])]).astype(np.int64)
    return xy[:, 0].astype(np.int32), xy[:, 1].astype(np.int32), off


def test_rings_turn_counter_clockwise_from_the_smallest_vertex() -> None:
    # one clockwise square starting at (1, 1): libosmium writes (0, 0) (1, 0) (1, 1) (0, 1)
    x, y, off = _rings([(1, 1), (1, 0), (0, 0), (0, 1)])
    xy, offsets, state = osm_rings.rings(x, y, off)
    want = (
        np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]) * 100 + [249_000_000, 601_000_000]
    ) / 1e7
    np.testing.assert_array_equal(xy, want)
    assert offsets.tolist() == [0, 5] and state.tolist() == [osm_rings.SIMPLE]


def test_a_location_twice_in_a_row_is_libosmiums() -> None:
    x, y, off = _rings([(0, 0), (1, 0), (1, 0), (1, 1)], [(0, 0), (1, 0), (0, 1)])
    assert osm_rings.rings(x, y, off)[2].tolist() == [osm_rings.REPEAT, osm_rings.SIMPLE]


@pytest.mark.parametrize(
    ("ring", "simple"),
    [
        ([(0, 0), (1, 0), (1, 1), (0, 1)], True),
        ([(0, 0), (1, 1), (1, 0), (0, 1)], False),  # bow tie
        ([(0, 0), (2, 0), (1, 0), (0, 1)], False),  # spike back along an edge
        ([(0, 0), (1, 0), (2, 0), (0, 1)], True),  # collinear corner, still simple
        ([(0, 0), (1, 0), (0, 1)], True),
        ([(0, 0), (2, 0), (1, 1), (2, 2), (0, 2), (1, 1)], False),  # touches itself
        ([(0, 0), (3, 0), (3, 3), (2, 1), (1, 3), (0, 3)], True),
        ([(0, 0), (4, 0), (4, 4), (2, 0), (0, 4)], False),  # a vertex on another edge
    ],
)
def test_simple_rings_as_geos_says(ring: list[tuple[int, int]], simple: bool) -> None:
    got = osm_rings.rings(*_rings(ring))[2]
    assert got.tolist() == [osm_rings.SIMPLE if simple else osm_rings.NOT_SIMPLE]
    line = shapely.LineString([*ring, ring[0]])
    assert shapely.is_simple(line) == simple  # the cases are GEOS's own


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=3, max_size=8))
def test_simple_test_agrees_with_geos(ring: list[tuple[int, int]]) -> None:
    state = osm_rings.rings(*_rings(ring))[2][0]
    closed = [*ring, ring[0]]
    if any(a == b for a, b in itertools.pairwise(closed)):
        assert state == osm_rings.REPEAT
    else:
        assert (state == osm_rings.SIMPLE) == shapely.is_simple(shapely.LineString(closed))


def test_rings_of_hundreds_of_vertices_are_tested_by_geos() -> None:
    angle = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    circle = [(int(1000 * np.cos(a)), int(1000 * np.sin(a))) for a in angle]
    bent = [*circle[:200], (0, 0), *circle[200:]]  # through the centre: still simple
    crossed = [*circle[:200], (2000, 0), *circle[200:]]  # across and out the far side
    got = osm_rings.rings(*_rings(circle, bent, crossed))[2].tolist()
    assert got == [osm_rings.SIMPLE, osm_rings.SIMPLE, osm_rings.NOT_SIMPLE]
