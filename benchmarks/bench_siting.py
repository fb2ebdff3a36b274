"""Benchmark: maximal-covering siting, exact (HiGHS) and lazy greedy.

Seeded synthetic instances: demand points (buildings, weighted by residents 1–29) and candidate
sites scattered over a square city, coverage within 500 m straight line (a KD-tree builds the
coverage matrix; its time is printed apart). Usage::

    .venv/bin/python benchmarks/bench_siting.py

Targets (issue 6): exact under 60 s for 1,000 candidates × 100,000 buildings; greedy under 10 s
for 10,000 candidates × 1,000,000 buildings. The full issue asks for synthetic *cities* (street
networks, network coverage, before/after); this script measures the solvers on straight-line
coverage until the siting command exists.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.sparse import csr_matrix
from scipy.spatial import cKDTree

from cityos.renewal import max_cover


def instance(
    n_c: int, n_d: int, extent: float, radius: float, seed: int
) -> tuple[csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    demand = rng.uniform(0, extent, (n_d, 2))
    sites = rng.uniform(0, extent, (n_c, 2))
    pairs = cKDTree(sites).sparse_distance_matrix(cKDTree(demand), radius, output_type="coo_matrix")
    cover = csr_matrix((np.ones(pairs.nnz, dtype=bool), (pairs.row, pairs.col)), shape=(n_c, n_d))
    return cover, rng.integers(1, 30, n_d).astype(float)


def main() -> None:
    print(
        "| instance | K | build s | exact s | exact value | greedy s | greedy value | greedy / exact | greedy gap bound |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n_c, n_d, extent, k, exact in (
        (1000, 100_000, 20_000.0, 50, True),
        (10_000, 1_000_000, 40_000.0, 100, False),
    ):
        t = time.perf_counter()
        cover, w = instance(n_c, n_d, extent, 500.0, seed=7)
        build = time.perf_counter() - t
        t = time.perf_counter()
        g = max_cover(cover, w, k, method="greedy")
        tg = time.perf_counter() - t
        if exact:
            t = time.perf_counter()
            e = max_cover(cover, w, k, method="exact")
            te = time.perf_counter() - t
            cols = f"{te:.1f} | {e.covered:,.0f} | {tg:.2f} | {g.covered:,.0f} | {g.covered / e.covered:.4f}"
        else:
            cols = f"— | — | {tg:.2f} | {g.covered:,.0f} | —"
        print(f"| {n_c:,} × {n_d:,} | {k} | {build:.1f} | {cols} | {g.gap:.3f} |")


if __name__ == "__main__":
    main()
