"""Maximal covering: the MIP equals brute force over all K-subsets; greedy reaches (1 − 1/e) of
the optimum and its reported bound holds."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse import coo_matrix, csr_matrix

from cityos.errors import InputError
from cityos.renewal import max_cover


def brute_force(cover: np.ndarray, w: np.ndarray, k: int) -> float:
    best = 0.0
    for combo in itertools.combinations(range(cover.shape[0]), k):
        best = max(best, float(w[cover[list(combo)].any(axis=0)].sum()))
    return best


@st.composite
def instances(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int]:
    n_c = draw(st.integers(1, 7))
    n_d = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 10_000))
    rng = np.random.default_rng(seed)
    cover = rng.random((n_c, n_d)) < draw(st.sampled_from([0.15, 0.3, 0.6]))
    w = rng.integers(0, 50, n_d).astype(float)
    if w.sum() == 0:
        w[0] = 1.0
    k = draw(st.integers(1, n_c))
    return cover, w, k


@settings(max_examples=60, deadline=None)
@given(instances())
def test_exact_equals_brute_force_and_greedy_is_bounded(
    case: tuple[np.ndarray, np.ndarray, int],
) -> None:
    cover, w, k = case
    opt = brute_force(cover, w, k)
    exact = max_cover(csr_matrix(cover), w, k, method="exact")
    assert exact.covered == pytest.approx(opt)
    assert len(exact.chosen) == k
    assert exact.gap == pytest.approx(0.0, abs=1e-6)
    greedy = max_cover(csr_matrix(cover), w, k, method="greedy")
    assert len(set(greedy.chosen.tolist())) == k
    assert greedy.covered >= (1 - 1 / math.e) * opt - 1e-9
    assert greedy.bound >= opt - 1e-9  # the reported bound holds
    assert greedy.covered == pytest.approx(float(w[cover[greedy.chosen].any(axis=0)].sum()))


def test_greedy_picks_by_hand() -> None:
    # site 0 covers {0,1} (weights 10, 10), site 1 covers {1,2} (10, 5), site 2 covers {3} (8)
    cover = csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]], dtype=bool))
    w = np.array([10.0, 10.0, 5.0, 8.0])
    g = max_cover(cover, w, 2, method="greedy")
    assert g.chosen.tolist() == [0, 2] and g.covered == 28.0
    e = max_cover(cover, w, 2, method="exact")
    assert sorted(e.chosen.tolist()) == [0, 2] and e.solver.startswith("exact")


@pytest.mark.parametrize(
    ("k", "weights", "message"),
    [
        (0, [1.0], "at least 1"),
        (3, [1.0], "only 2 candidates"),
        (1, [0.0], "no demand"),
        (1, [], "demand columns"),
    ],
)
def test_bad_instances(k: int, weights: list[float], message: str) -> None:
    cover = csr_matrix(np.ones((2, 1), dtype=bool))
    with pytest.raises(InputError, match=message):
        max_cover(cover, weights, k)


def test_no_candidates() -> None:
    with pytest.raises(InputError, match="no candidate sites"):
        max_cover(csr_matrix((0, 3), dtype=bool), [1.0, 1.0, 1.0], 1)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(1, 8), st.integers(0, 10_000))
def test_p_median_exact_equals_brute_force(n_c: int, n_d: int, seed: int) -> None:
    from cityos.renewal import p_median

    rng = np.random.default_rng(seed)
    d = rng.uniform(0, 1000, (n_c, n_d)).round()
    w = rng.integers(1, 20, n_d).astype(float)
    current = rng.uniform(200, 1500, n_d).round()
    k = int(rng.integers(1, n_c + 1))
    best = min(
        float((w * np.minimum(current, d[list(c)].min(axis=0))).sum())
        for c in itertools.combinations(range(n_c), k)
    )
    exact = p_median(d, w, k, current=current, method="exact")
    assert exact.covered == pytest.approx(best)
    greedy = p_median(d, w, k, current=current, method="greedy")
    assert greedy.covered >= best - 1e-9 and greedy.bound <= best + 1e-9
    assert greedy.covered == pytest.approx(
        float((w * np.minimum(current, d[greedy.chosen].min(axis=0))).sum())
    )
    # the same instance as pairs within a 600 m cutoff (the rest cannot beat min(current, 600))
    cap = np.minimum(current, 600.0)
    near = d <= 600.0
    sparse = coo_matrix((d[near], np.nonzero(near)), shape=d.shape)
    best_cap = min(
        float((w * np.minimum(cap, np.where(near, d, np.inf)[list(c)].min(axis=0))).sum())
        for c in itertools.combinations(range(n_c), k)
    )
    assert p_median(sparse, w, k, current=cap, method="exact").covered == pytest.approx(best_cap)
    g = p_median(sparse, w, k, current=cap, method="greedy")
    assert best_cap - 1e-9 <= g.covered and g.bound <= best_cap + 1e-9
    # greedy keeps at least (1 − 1/e) of the best saving
    base = float((w * cap).sum())
    assert base - g.covered >= (1 - 1 / math.e) * (base - best_cap) - 1e-9


def test_exact_stopped_by_the_time_limit_keeps_the_better_solution() -> None:
    """With no time to solve, the MIP has no incumbent: the greedy solution is kept, with its
    bound, and the solver string says so (never K missing sites or a false 'optimal')."""
    from cityos.renewal import p_median

    rng = np.random.default_rng(3)
    cover = csr_matrix(rng.random((200, 5000)) < 0.01)
    w = rng.integers(1, 30, 5000).astype(float)
    got = max_cover(cover, w, 20, method="exact", time_limit=0.0)
    greedy = max_cover(cover, w, 20, method="greedy")
    assert len(got.chosen) == 20 and got.covered >= greedy.covered
    assert "kept the" in got.solver and got.bound >= got.covered
    assert got.gap == pytest.approx((got.bound - got.covered) / got.bound)
    dist = coo_matrix(np.where(cover.toarray(), rng.uniform(0, 300, cover.shape), 0.0))
    pm = p_median(dist, w, 20, current=np.full(5000, 300.0), method="exact", time_limit=0.0)
    pg = p_median(dist, w, 20, current=np.full(5000, 300.0), method="greedy")
    assert len(pm.chosen) == 20 and pm.covered <= pg.covered and pm.bound <= pm.covered
    assert "kept the" in pm.solver
