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
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix

from cityos.errors import InputError

__all__ = ["EXACT_MAX_NONZEROS", "SitingResult", "max_cover", "p_median"]

#: coverage-matrix size (nonzeros) up to which ``method="auto"`` solves the MIP exactly
EXACT_MAX_NONZEROS = 5_000_000


@dataclass(frozen=True)
class SitingResult:
    """Chosen candidates (indices, in the order chosen for greedy), the weight they cover, the
    solver used, an upper bound on the optimum and the relative gap ``(bound − value) / bound``."""

    chosen: NDArray[np.int64]
    covered: float
    solver: str
    bound: float
    gap: float


def _check(cover: csr_matrix, weights: NDArray[np.float64], k: int) -> None:
    if cover.shape[0] == 0:
        raise InputError("no candidate sites; give candidates (a file, 'stock' or 'network')")
    if k < 1:
        raise InputError(f"the number of new sites must be at least 1, got {k}")
    if k > cover.shape[0]:
        raise InputError(f"asked for {k} new sites but there are only {cover.shape[0]} candidates")
    if cover.shape[1] != len(weights):
        raise InputError(f"coverage has {cover.shape[1]} demand columns but {len(weights)} weights")
    if len(weights) == 0 or not np.any(weights > 0):
        raise InputError("no demand to cover: every demand point is already served or weighs 0")
    if np.any(weights < 0):
        raise InputError("demand weights must be >= 0")


def _greedy(cover: csr_matrix, w: NDArray[np.float64], k: int) -> SitingResult:
    covered = np.zeros(cover.shape[1], dtype=bool)
    indptr, indices = cover.indptr, cover.indices

    def gain(j: int) -> float:
        cols = indices[indptr[j] : indptr[j + 1]]
        return float(w[cols][~covered[cols]].sum())

    heap = [(-gain(j), j, 0) for j in range(cover.shape[0])]
    heapq.heapify(heap)
    chosen: list[int] = []
    value = 0.0
    bound = math.inf
    for step in range(k):
        while True:
            neg, j, seen = heapq.heappop(heap)
            if seen == step:  # gain is current
                break
            heapq.heappush(heap, (-gain(j), j, step))
        # the k largest current gains bound what any k more sites can add (gains only shrink)
        top = [-neg, *sorted((-g for g, _, s in heap), reverse=True)[: k - 1]]
        bound = min(bound, value + sum(top))
        chosen.append(j)
        value += -neg
        cols = indices[indptr[j] : indptr[j + 1]]
        covered[cols] = True
    bound = min(bound, value / (1 - 1 / math.e)) if value > 0 else bound
    bound = max(bound, value)
    return SitingResult(
        np.asarray(chosen, dtype=np.int64), value, "greedy (lazy)", bound, _gap(value, bound)
    )


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
    time_limit: float = 60.0,
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
    _check(cover, w, k)
    if method == "auto":
        method = "exact" if cover.nnz <= exact_max_nonzeros else "greedy"
    if method == "exact":
        return _exact(cover, w, k, time_limit)
    if method == "greedy":
        return _greedy(cover, w, k)
    raise InputError(f"method must be 'auto', 'exact' or 'greedy', got {method!r}")


def p_median(
    distance: NDArray[np.float64],
    weights: NDArray[np.float64] | list[float],
    k: int,
    *,
    current: NDArray[np.float64] | None = None,
    method: Literal["exact", "greedy"] = "greedy",
    time_limit: float = 60.0,
) -> SitingResult:
    """Choose ``k`` candidates minimising the weighted distance to the nearest facility (p-median).

    ``distance`` is a dense candidates × demand matrix in metres (use the search cutoff for
    pairs beyond it); ``current`` the distance of each demand point to its nearest existing
    facility (default: the largest distance given). ``covered`` in the result is the weighted
    distance after the additions (lower is better); ``bound`` a lower bound on the optimum and
    ``gap`` = (value − bound) / value. Exact: HiGHS MIP over assignment variables (small
    instances); greedy: add the site that lowers the total most, K times.
    """
    d = np.asarray(distance, dtype=float)
    w = np.asarray(weights, dtype=float)
    n_c, n_d = d.shape
    _check(csr_matrix(np.ones((n_c, n_d), dtype=bool)), w, k)
    base = (
        np.full(n_d, float(d.max()) if d.size else 0.0)
        if current is None
        else np.asarray(current, dtype=float)
    )
    if method == "greedy":
        best = base.copy()
        chosen: list[int] = []
        for _ in range(k):
            totals = (w * np.minimum(best[None, :], d)).sum(axis=1)
            totals[chosen] = np.inf
            j = int(np.argmin(totals))
            chosen.append(j)
            best = np.minimum(best, d[j])
        value = float((w * best).sum())
        lower = float((w * np.minimum(base, d.min(axis=0))).sum())  # every point at its best site
        return SitingResult(
            np.asarray(chosen, dtype=np.int64), value, "greedy", lower, _gap_low(value, lower)
        )
    if method != "exact":
        raise InputError(f"method must be 'exact' or 'greedy', got {method!r}")
    import highspy

    h: Any = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit))
    # columns: x_j (n_c, binary), z_ij (n_c*n_d, assign i to new site j), e_i (n_d, keep existing)
    n_z = n_c * n_d
    costs = np.concatenate([np.zeros(n_c), (w[None, :] * d).ravel(), w * base])
    h.addVars(n_c + n_z + n_d, np.zeros(n_c + n_z + n_d), np.ones(n_c + n_z + n_d))
    h.changeColsCost(len(costs), np.arange(len(costs), dtype=np.int32), costs)
    h.changeColsIntegrality(
        n_c, np.arange(n_c, dtype=np.int32), np.full(n_c, highspy.HighsVarType.kInteger)
    )
    # each demand point assigned once: Σ_j z_ij + e_i = 1
    for i in range(n_d):
        idx = np.concatenate([n_c + np.arange(n_c) * n_d + i, [n_c + n_z + i]]).astype(np.int32)
        h.addRow(1.0, 1.0, len(idx), idx, np.ones(len(idx)))
    # only to open sites: z_ij ≤ x_j
    for j in range(n_c):
        for i in range(n_d):
            h.addRow(
                -highspy.kHighsInf,
                0.0,
                2,
                np.array([n_c + j * n_d + i, j], dtype=np.int32),
                np.array([1.0, -1.0]),
            )
    h.addRow(float(k), float(k), n_c, np.arange(n_c, dtype=np.int32), np.ones(n_c))
    h.run()
    sol = np.asarray(h.getSolution().col_value)
    chosen_idx = np.flatnonzero(sol[:n_c] > 0.5).astype(np.int64)
    best = np.minimum(base, d[chosen_idx].min(axis=0)) if len(chosen_idx) else base
    value = float((w * best).sum())
    info = h.getInfo()
    lower = min(value, float(info.mip_dual_bound)) if math.isfinite(info.mip_dual_bound) else value
    status = h.modelStatusToString(h.getModelStatus())
    return SitingResult(
        chosen_idx, value, f"exact (HiGHS MIP, {status})", lower, _gap_low(value, lower)
    )


def _gap_low(value: float, lower: float) -> float:
    return 0.0 if value <= 0 else max(0.0, (value - lower) / value)
