"""Facility siting: choose K sites that cover the most demand (maximal covering location).

The instance is a coverage matrix — candidate j covers demand point i when i lies within the
service radius of j — and a weight per demand point (residents newly covered). Two solvers:

* ``exact``: the MIP  max Σ w_i y_i  s.t.  y_i ≤ Σ_{j covers i} x_j,  Σ x_j = K,  x binary,
  0 ≤ y ≤ 1 (y is integral at an optimum), solved with HiGHS; its bound and gap are reported.
* ``greedy``: lazy greedy (CELF): take the candidate with the largest marginal gain, re-evaluating
  gains only when they reach the top of the queue. It achieves at least (1 − 1/e) of the optimum;
  the reported bound is the tightest of ``value / (1 − 1/e)`` and, at every step, the value so far
  plus the K largest marginal gains (Nemhauser, Wolsey & Fisher 1978), which OPT cannot exceed.

``method="auto"`` solves exactly when the instance is small enough (``exact_max_nonzeros``).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import coo_matrix, csr_matrix, issparse, sparray, spmatrix

from cityos.errors import InputError

__all__ = [
    "DEFAULT_TIME_LIMIT_S",
    "EXACT_MAX_NONZEROS",
    "EXACT_MAX_PAIRS",
    "SitingResult",
    "max_cover",
    "p_median",
]

#: seconds the exact solver may take before it returns its best solution and gap [OP]
DEFAULT_TIME_LIMIT_S = 60.0

#: coverage-matrix size (nonzeros) up to which ``method="auto"`` solves the MIP exactly
EXACT_MAX_NONZEROS = 5_000_000
#: useful candidate–demand pairs up to which ``p_median(method="auto")`` solves exactly
EXACT_MAX_PAIRS = 200_000


@dataclass(frozen=True)
class SitingResult:
    """Chosen candidates (indices, in the order chosen for greedy), the weight they cover, the
    solver used, an upper bound on the optimum and the relative gap ``(bound − value) / bound``."""

    chosen: NDArray[np.int64]
    covered: float
    solver: str
    bound: float
    gap: float


def _check(n_c: int, n_d: int, weights: NDArray[np.float64], k: int) -> None:
    """An instance of ``n_c`` candidates × ``n_d`` demand points with these weights and K."""
    if n_c == 0:
        raise InputError("no candidate sites; give candidates (a file, 'stock' or 'network')")
    if k < 1:
        raise InputError(f"the number of new sites must be at least 1, got {k}")
    if k > n_c:
        raise InputError(f"asked for {k} new sites but there are only {n_c} candidates")
    if n_d != len(weights):
        raise InputError(f"the instance has {n_d} demand columns but {len(weights)} weights")
    if len(weights) == 0 or not np.any(weights > 0):
        raise InputError("no demand to cover: every demand point is already served or weighs 0")
    if np.any(weights < 0):
        raise InputError("demand weights must be >= 0")


def _lazy_greedy(
    n: int, gain: Callable[[int], float], take: Callable[[int], None], k: int
) -> tuple[list[int], float, float]:
    """Lazy greedy (CELF) for a monotone submodular gain: ``k`` times, take the candidate whose
    current ``gain`` is largest, re-evaluating a gain only when it reaches the top of the queue.

    Returns (chosen, total gain, upper bound on the best total gain of ``k`` candidates): the
    tightest of total ÷ (1 − 1/e) and, at every step, the total so far plus the ``k`` largest
    gains in the queue (stale gains only overstate: gains shrink as candidates are taken).
    """
    heap = [(-gain(j), j, 0) for j in range(n)]
    heapq.heapify(heap)
    chosen: list[int] = []
    total = 0.0
    upper = math.inf
    for step in range(k):
        while True:
            neg, j, seen = heapq.heappop(heap)
            if seen == step:  # gain is current
                break
            heapq.heappush(heap, (-gain(j), j, step))
        top = [-neg, *sorted((-g for g, _, _s in heap), reverse=True)[: k - 1]]
        upper = min(upper, total + sum(top))
        chosen.append(j)
        total += -neg
        take(j)
    return chosen, total, max(total, min(upper, total / (1 - 1 / math.e)))


def _greedy(cover: csr_matrix, w: NDArray[np.float64], k: int) -> SitingResult:
    covered = np.zeros(cover.shape[1], dtype=bool)
    indptr, indices = cover.indptr, cover.indices

    def gain(j: int) -> float:
        cols = indices[indptr[j] : indptr[j + 1]]
        return float(w[cols][~covered[cols]].sum())

    def take(j: int) -> None:
        covered[indices[indptr[j] : indptr[j + 1]]] = True

    chosen, value, bound = _lazy_greedy(cover.shape[0], gain, take, k)
    return SitingResult(
        np.asarray(chosen, dtype=np.int64), value, "greedy (lazy)", bound, _gap(value, bound)
    )


def _best_of(exact: SitingResult, greedy: SitingResult, *, maximise: bool) -> SitingResult:
    """An exact solve stopped short of optimality (time limit): keep the better of its incumbent
    and the greedy solution, with the tighter of the two bounds."""
    better = exact.covered >= greedy.covered if maximise else exact.covered <= greedy.covered
    best = exact if better else greedy
    if maximise:
        bound = max(best.covered, min(exact.bound, greedy.bound))
        gap = _gap(best.covered, bound)
    else:
        bound = min(best.covered, max(exact.bound, greedy.bound))
        gap = _gap_low(best.covered, bound)
    solver = f"{exact.solver}; kept the {'MIP incumbent' if better else 'greedy solution'}"
    return SitingResult(best.chosen, best.covered, solver, bound, gap)


def _gap(value: float, bound: float) -> float:
    return 0.0 if bound <= 0 else max(0.0, (bound - value) / bound)


def _exact(cover: csr_matrix, w: NDArray[np.float64], k: int, time_limit: float) -> SitingResult:
    import highspy

    n_c, n_d = cover.shape
    h: Any = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit))
    inf = highspy.kHighsInf
    # columns: x_0..x_{c-1} (binary), y_0..y_{d-1} (0..1); HiGHS minimises, so costs are −w
    h.addVars(n_c + n_d, np.zeros(n_c + n_d), np.ones(n_c + n_d))
    h.changeColsCost(
        n_c + n_d, np.arange(n_c + n_d, dtype=np.int32), np.concatenate([np.zeros(n_c), -w])
    )
    h.changeColsIntegrality(
        n_c, np.arange(n_c, dtype=np.int32), np.full(n_c, highspy.HighsVarType.kInteger)
    )
    # rows: y_i − Σ_{j covers i} x_j ≤ 0, one per demand point (CSC of the cover gives the rows)
    csc = cover.tocsc()
    sizes = np.diff(csc.indptr)
    starts = np.concatenate([[0], np.cumsum(sizes + 1)[:-1]]).astype(np.int32)
    idx = np.empty(int(sizes.sum()) + n_d, dtype=np.int32)
    val = np.empty(len(idx))
    idx[starts] = n_c + np.arange(n_d)
    val[starts] = 1.0
    body = np.ones(len(idx), dtype=bool)
    body[starts] = False
    idx[body] = csc.indices
    val[body] = -1.0
    h.addRows(n_d, np.full(n_d, -inf), np.zeros(n_d), len(idx), starts, idx, val)
    h.addRows(1, np.array([float(k)]), np.array([float(k)]), n_c, np.array([0], dtype=np.int32),
              np.arange(n_c, dtype=np.int32), np.ones(n_c))  # fmt: skip
    h.run()
    sol = np.asarray(h.getSolution().col_value)
    info = h.getInfo()
    chosen = np.flatnonzero(sol[:n_c] > 0.5).astype(np.int64)
    if len(chosen) != k:  # stopped before any feasible solution
        return SitingResult(chosen, 0.0, "exact (HiGHS MIP, no solution in time)", math.inf, 1.0)
    covered_mask = np.asarray(cover[chosen].sum(axis=0)).ravel() > 0
    value = float(w[covered_mask].sum())
    bound = max(value, -float(info.mip_dual_bound)) if math.isfinite(info.mip_dual_bound) else value
    status = h.modelStatusToString(h.getModelStatus())
    return SitingResult(chosen, value, f"exact (HiGHS MIP, {status})", bound, _gap(value, bound))


def max_cover(
    cover: csr_matrix,
    weights: NDArray[np.float64] | list[float],
    k: int,
    *,
    method: Literal["auto", "exact", "greedy"] = "auto",
    time_limit: float = DEFAULT_TIME_LIMIT_S,
    exact_max_nonzeros: int = EXACT_MAX_NONZEROS,
) -> SitingResult:
    """Choose ``k`` candidates maximising the weight of demand covered by at least one of them.

    Parameters
    ----------
    cover
        Boolean sparse matrix, candidates × demand points: True where the candidate covers it.
    weights
        Weight of each demand point (e.g. residents not yet served).
    k
        Number of new sites.
    method
        ``exact`` (HiGHS), ``greedy`` (lazy greedy with a bound), or ``auto``.
    time_limit
        Seconds for the exact solver; on timeout the best solution found and its gap are returned.
    """
    w = np.asarray(weights, dtype=float)
    cover = csr_matrix(cover, dtype=bool)
    _check(cover.shape[0], cover.shape[1], w, k)
    if method == "auto":
        method = "exact" if cover.nnz <= exact_max_nonzeros else "greedy"
    if method == "exact":
        exact = _exact(cover, w, k, time_limit)
        return exact if exact.gap <= 1e-9 else _best_of(exact, _greedy(cover, w, k), maximise=True)
    if method == "greedy":
        return _greedy(cover, w, k)
    raise InputError(f"method must be 'auto', 'exact' or 'greedy', got {method!r}")


def _pairs_of(
    distance: NDArray[np.float64] | spmatrix | sparray,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], int, int]:
    """(candidate, demand, metres, n_candidates, n_demand) of a dense or sparse distance matrix."""
    if issparse(distance):
        coo = coo_matrix(distance)  # stored entries are the pairs; explicit zeros are kept
        return (coo.row.astype(np.int64), coo.col.astype(np.int64),
                coo.data.astype(float), coo.shape[0], coo.shape[1])  # fmt: skip
    d = np.asarray(distance, dtype=float)
    n_c, n_d = d.shape
    cand, dem = np.divmod(np.arange(n_c * n_d, dtype=np.int64), n_d)
    return cand, dem, d.ravel(), n_c, n_d


def p_median(
    distance: NDArray[np.float64] | spmatrix | sparray,
    weights: NDArray[np.float64] | list[float],
    k: int,
    *,
    current: NDArray[np.float64] | list[float] | None = None,
    method: Literal["auto", "exact", "greedy"] = "auto",
    time_limit: float = DEFAULT_TIME_LIMIT_S,
    exact_max_pairs: int = EXACT_MAX_PAIRS,
) -> SitingResult:
    """Choose ``k`` candidates minimising the weighted distance to the nearest facility (p-median).

    Objective: ``Σ_i w_i · min(current_i, min_{j chosen} d_ij)`` — each demand point keeps its
    existing facility unless a new site is nearer.

    Parameters
    ----------
    distance
        Candidates × demand points, metres: a dense array (every pair), or a sparse matrix whose
        stored entries are the pairs within the search cutoff (explicit zeros count; pairs not
        stored cannot improve on ``current``).
    weights
        Residents per demand point.
    current
        Distance of each demand point to its nearest existing facility, capped at the search
        cutoff (default: the largest distance given).
    method
        ``exact`` (HiGHS MIP over assignment variables, one per useful pair), ``greedy`` (lazy
        greedy on the distance saved, which is submodular), or ``auto`` (exact up to
        ``exact_max_pairs`` useful pairs).

    Returns
    -------
    SitingResult
        ``covered`` is the weighted distance after the additions (person-metres, lower is
        better), ``bound`` a lower bound on the optimum and ``gap`` = (value − bound) / value.
        Greedy's bound is the best of: every point at its nearest candidate; and the distance
        saved by greedy over (1 − 1/e), or the saving so far plus the K largest marginal savings
        at any step (Nemhauser, Wolsey & Fisher 1978).
    """
    cand, dem, dist, n_c, n_d = _pairs_of(distance)
    w = np.asarray(weights, dtype=float)
    _check(n_c, n_d, w, k)
    if current is None:
        base = np.full(n_d, float(dist.max()) if len(dist) else 0.0)
    else:
        base = np.asarray(current, dtype=float)
    useful = (dist < base[dem]) & (w[dem] > 0)  # pairs that can lower the objective
    cand, dem, dist = cand[useful], dem[useful], dist[useful]
    base_cost = float((w * base).sum())
    if method == "auto":
        method = "exact" if len(cand) <= exact_max_pairs else "greedy"
    if method == "greedy":
        return _p_median_greedy(cand, dem, dist, n_c, w, base, base_cost, k)
    if method == "exact":
        exact = _p_median_exact(cand, dem, dist, n_c, w, base, k, time_limit)
        if exact.gap <= 1e-9:
            return exact
        greedy = _p_median_greedy(cand, dem, dist, n_c, w, base, base_cost, k)
        return _best_of(exact, greedy, maximise=False)
    raise InputError(f"method must be 'auto', 'exact' or 'greedy', got {method!r}")


def _p_median_greedy(
    cand: NDArray[np.int64], dem: NDArray[np.int64], dist: NDArray[np.float64], n_c: int,
    w: NDArray[np.float64], base: NDArray[np.float64], base_cost: float, k: int,
) -> SitingResult:  # fmt: skip
    order = np.argsort(cand, kind="stable")
    dem, dist = dem[order], dist[order]
    ptr = np.zeros(n_c + 1, dtype=np.int64)
    np.cumsum(np.bincount(cand, minlength=n_c), out=ptr[1:])
    best = base.copy()

    def saving(j: int) -> float:
        i, d = dem[ptr[j] : ptr[j + 1]], dist[ptr[j] : ptr[j + 1]]
        return float((w[i] * np.maximum(best[i] - d, 0.0)).sum())

    def take(j: int) -> None:
        i, d = dem[ptr[j] : ptr[j + 1]], dist[ptr[j] : ptr[j + 1]]
        best[i] = np.minimum(best[i], d)

    # the distance saved is monotone submodular: the bound on the best saving bounds the cost
    chosen, _, upper = _lazy_greedy(n_c, saving, take, k)
    value = float((w * best).sum())
    at_best = base.copy()
    np.minimum.at(at_best, dem, dist)
    lower = min(value, max(float((w * at_best).sum()), base_cost - upper))
    return SitingResult(
        np.asarray(chosen, dtype=np.int64), value, "greedy (lazy)", lower, _gap_low(value, lower)
    )


def _p_median_exact(
    cand: NDArray[np.int64], dem: NDArray[np.int64], dist: NDArray[np.float64], n_c: int,
    w: NDArray[np.float64], base: NDArray[np.float64], k: int, time_limit: float,
) -> SitingResult:  # fmt: skip
    import highspy

    n_d, n_p = len(w), len(cand)
    h: Any = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit))
    inf = highspy.kHighsInf
    # columns: x_j (n_c, binary) | z_p (n_p: demand dem[p] served by cand[p]) | e_i (n_d: keeps
    # its existing facility); minimise Σ w d z + Σ w base e
    n = n_c + n_p + n_d
    h.addVars(n, np.zeros(n), np.ones(n))
    costs = np.concatenate([np.zeros(n_c), w[dem] * dist, w * base])
    h.changeColsCost(n, np.arange(n, dtype=np.int32), costs)
    h.changeColsIntegrality(
        n_c, np.arange(n_c, dtype=np.int32), np.full(n_c, highspy.HighsVarType.kInteger)
    )
    # each demand point served once: Σ_{p of i} z_p + e_i = 1
    order = np.argsort(dem, kind="stable")
    sizes = np.bincount(dem, minlength=n_d) + 1
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int32)
    idx = np.empty(int(sizes.sum()), dtype=np.int32)
    last = starts + sizes - 1
    body = np.ones(len(idx), dtype=bool)
    body[last] = False
    idx[body] = n_c + order
    idx[last] = n_c + n_p + np.arange(n_d)
    h.addRows(n_d, np.ones(n_d), np.ones(n_d), len(idx), starts, idx, np.ones(len(idx)))
    # only through open sites: z_p − x_{cand p} ≤ 0
    if n_p:
        pidx = np.column_stack([n_c + np.arange(n_p), cand]).ravel().astype(np.int32)
        pval = np.tile([1.0, -1.0], n_p)
        h.addRows(n_p, np.full(n_p, -inf), np.zeros(n_p), 2 * n_p,
                  np.arange(0, 2 * n_p, 2, dtype=np.int32), pidx, pval)  # fmt: skip
    h.addRows(1, np.array([float(k)]), np.array([float(k)]), n_c, np.array([0], dtype=np.int32),
              np.arange(n_c, dtype=np.int32), np.ones(n_c))  # fmt: skip
    h.run()
    sol = np.asarray(h.getSolution().col_value)
    chosen = np.flatnonzero(sol[:n_c] > 0.5).astype(np.int64)
    if len(chosen) != k:  # stopped before any feasible solution
        cost = float((w * base).sum())
        return SitingResult(chosen, cost, "exact (HiGHS MIP, no solution in time)", 0.0, 1.0)
    best = base.copy()
    sel = np.isin(cand, chosen)
    np.minimum.at(best, dem[sel], dist[sel])
    value = float((w * best).sum())
    info = h.getInfo()
    lower = min(value, float(info.mip_dual_bound)) if math.isfinite(info.mip_dual_bound) else value
    status = h.modelStatusToString(h.getModelStatus())
    return SitingResult(
        chosen, value, f"exact (HiGHS MIP, {status})", lower, _gap_low(value, lower)
    )


def _gap_low(value: float, lower: float) -> float:
    return 0.0 if value <= 0 else max(0.0, (value - lower) / value)
