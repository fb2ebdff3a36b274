"""Slices in threads give what one call gives, in order, on more than one thread."""

from __future__ import annotations

import threading
from functools import partial

import numpy as np
import pytest
import shapely

from cityos.threads import MIN_PARALLEL, cpu_threads, map_threads, query_sliced, sliced


@pytest.mark.parametrize("n", [0, 1, MIN_PARALLEL - 1, 2 * MIN_PARALLEL + 1, 1000])
def test_sliced_equals_one_call(n: int) -> None:
    squares = shapely.box(np.arange(n), 0, np.arange(n) + np.arange(n) % 7 + 1, 1)
    cut = shapely.box(3.5, 0, 500.25, 0.5)
    got = sliced(lambda a: shapely.area(shapely.intersection(a, cut)), squares, threads=2)
    assert got.tolist() == shapely.area(shapely.intersection(squares, cut)).tolist()


def test_sliced_runs_on_two_threads_and_keeps_order() -> None:
    both = threading.Barrier(2, timeout=10)  # broken unless the two slices run at once

    def tag(a: np.ndarray) -> np.ndarray:
        both.wait()
        return a * 2

    values = np.arange(4 * MIN_PARALLEL)
    assert sliced(tag, values, threads=2).tolist() == (values * 2).tolist()


def test_map_threads_keeps_order() -> None:
    assert map_threads(lambda x: x * x, list(range(50)), threads=3) == [x * x for x in range(50)]
    assert map_threads(str, [], threads=2) == []
    assert cpu_threads() >= 1


@pytest.mark.parametrize("n", [0, 1, 3 * MIN_PARALLEL + 5])
def test_query_sliced_gives_every_pair_in_order(n: int) -> None:
    # unit squares [j, j + 1] × [0, 1]; the point (i, 0.5) touches squares i − 1 and i
    tree = shapely.STRtree(shapely.box(np.arange(n), 0, np.arange(n) + 1, 1))
    points = shapely.points(np.arange(n + 1), 0.5)
    want = [(i, j) for i in range(n + 1) for j in (i - 1, i) if 0 <= j < n]
    got = query_sliced(partial(tree.query, predicate="intersects"), points, threads=2)
    assert sorted(zip(*got.tolist(), strict=True)) == want
    # and in the order one call gives (the tree's own order within a point)
    assert got.tolist() == tree.query(points, predicate="intersects").tolist()
    # above the squares at height 3: the nearest is the square below, 2 away
    above = shapely.points(np.arange(n) + 0.25, 3.0)
    pairs, dist = query_sliced(
        partial(tree.query_nearest, return_distance=True, all_matches=False), above, threads=2
    )
    assert pairs.tolist() == [list(range(n)), list(range(n))] and dist.tolist() == [2.0] * n
