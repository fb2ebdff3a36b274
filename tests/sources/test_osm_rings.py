"""Rings in libosmium's form: counter-clockwise from the smallest vertex, and GEOS's simple test."""

from __future__ import annotations

import numpy as np
import pytest

from cityos.sources import osm_rings


def test_rings_turn_counter_clockwise_from_the_smallest_vertex() -> None:
    # one clockwise square starting at (1, 1): libosmium writes (0, 0) (1, 0) (1, 1) (0, 1)
    lon = np.array([1.0, 1.0, 0.0, 0.0, 1.0])
    lat = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    xy, offsets, repeat = osm_rings.rings(lon, lat, np.array([0, 5]))
    assert xy.tolist() == [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]
    assert offsets.tolist() == [0, 5]
    assert repeat.tolist() == [False]


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
    ],
)
def test_simple_rings_as_geos_says(ring: list[tuple[int, int]], simple: bool) -> None:
    xy = np.array([*ring, ring[0]], dtype=float) * 1e-5 + [24.9, 60.1]
    got = osm_rings.simple(xy, np.array([0, len(xy)]))
    assert got.tolist() == [simple]


def test_rings_in_chunks_equal_rings_at_once() -> None:
    rng = np.random.default_rng(1)
    offsets = np.concatenate([[0], np.cumsum(rng.integers(4, 9, size=1000))])
    lon, lat = rng.random(offsets[-1]), rng.random(offsets[-1])
    lon[offsets[1:] - 1], lat[offsets[1:] - 1] = lon[offsets[:-1]], lat[offsets[:-1]]
    whole = osm_rings.rings(lon, lat, offsets, chunk=10**9)
    for got, want in zip(osm_rings.rings(lon, lat, offsets, chunk=77), whole, strict=True):
        np.testing.assert_array_equal(got, want)
    assert len(whole[1]) == 1001 and whole[1][-1] == len(whole[0])
