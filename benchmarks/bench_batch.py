"""Benchmark: ``cityos batch`` of 24 seeded synthetic cities (10,000–250,000 buildings) on a
2-worker Dask LocalCluster against the same cities one after another in one process, in the
same run; then an extrapolation to the 297 prefecture-level cities on 32 workers.

Cities come from benchmarks/synthetic_osm.py (a perturbed street grid with buildings, POIs and
parks, about five buildings per 100 m block), cached in benchmarks/.cache. Each city runs the
whole task: import → checkup (the three built-in systems) → renew → report.

Figures printed:

* wall time sequential (``cityos.batch(client=None)``) and on 2 workers
  (``cityos batch --workers 2``: one thread each), their ratio and the fraction of the
  ideal 2× reached. Target (issue 15): ratio ≥ 1.7.
* per-city task time and peak memory against buildings and extract size, with a least-squares
  line t = a + b × buildings and the memory line used by cityos/cities/batch.toml.
* the national extrapolation. Method: the 297 prefecture-level cities are given building
  counts by the rank-size rule (Zipf, exponent 1): city k has ``TOP / k`` buildings, at least
  10,000 (TOP = 2,000,000, about the OSM footprints of the largest Chinese cities, an
  assumption); each city's time is the fitted line; the cities are scheduled biggest first on
  32 workers (what the batch does: longest-processing-time-first list scheduling); the
  makespan is divided by the parallel efficiency measured here on 2 workers
  (contention of memory bandwidth and disk, assumed no worse at 32). Target: < 1 hour.

Usage::

    .venv/bin/python benchmarks/bench_batch.py            # 24 cities, about 15 minutes
    .venv/bin/python benchmarks/bench_batch.py --cities 8 --max-buildings 50000   # quick look
"""

from __future__ import annotations

import argparse
import heapq
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from synthetic_osm import CitySpec, write_city  # noqa: E402

NATIONAL_CITIES = 297
NATIONAL_WORKERS = 32
TOP_BUILDINGS = 2_000_000


def specs(n: int, lo: int, hi: int, seed: int = 15) -> list[CitySpec]:
    """``n`` cities, building counts spaced evenly on a log scale from ``lo`` to ``hi``, in a
    seeded random order (so neither run meets them sorted)."""
    sizes = np.geomspace(lo, hi, n).round(-3).astype(int)
    order = np.random.default_rng(seed).permutation(n)
    return [CitySpec(f"c{i:02d}", grid=int((b / 5) ** 0.5) + 2, buildings=int(b),
                     pois=max(200, int(b) // 25), seed=100 + i)
            for i, b in enumerate(sizes[order])]  # fmt: skip


def write_list(cities: list[CitySpec], cache: Path, root: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    lines = ["city_id,name,osm"]
    for c in cities:
        pbf = cache / f"batch-{c.name}-g{c.grid}-b{c.buildings}-s{c.seed}.osm.pbf"
        if not pbf.exists():
            t0 = time.perf_counter()
            write_city(c, pbf)
            print(f"generated {pbf.name} in {time.perf_counter() - t0:.1f} s", flush=True)
        lines.append(f"{c.name},synthetic {c.name},{pbf}")
    file = root / "cities.csv"
    file.write_text("\n".join(lines) + "\n", "utf-8")
    return file


def lpt_makespan(times: list[float], workers: int) -> float:
    """Makespan of list scheduling, longest first, on ``workers`` identical workers."""
    loads = [0.0] * workers
    heapq.heapify(loads)
    for t in sorted(times, reverse=True):
        heapq.heappush(loads, heapq.heappop(loads) + t)
    return max(loads)


def main() -> None:
    from dask.utils import parse_bytes
    from distributed import Client

    import cityos
    from cityos.cities.cluster import local_cluster

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cities", type=int, default=24)
    parser.add_argument("--min-buildings", type=int, default=10_000)
    parser.add_argument("--max-buildings", type=int, default=250_000)
    parser.add_argument("--memory-limit", default="8GiB", help="per worker of the 2-worker cluster")
    args = parser.parse_args()
    cities = specs(args.cities, args.min_buildings, args.max_buildings)
    root = Path(tempfile.mkdtemp(prefix="cityos-bench-batch-"))
    try:
        listing = write_list(cities, HERE / ".cache", root)
        print(f"{len(cities)} cities, {sum(c.buildings for c in cities):,} buildings", flush=True)
        t0 = time.perf_counter()
        seq = cityos.batch(listing, root / "sequential", quiet=False)
        t_seq = time.perf_counter() - t0
        print(f"sequential, one process: {t_seq:.1f} s", flush=True)
        t0 = time.perf_counter()  # the cluster's start counts too
        memory = parse_bytes(args.memory_limit)
        with local_cluster(2, memory, "127.0.0.1:0") as lc, Client(lc) as client:
            dist = cityos.batch(listing, root / "distributed", client=client, quiet=False)
            t_dist = time.perf_counter() - t0
        print(f"2 workers (LocalCluster): {t_dist:.1f} s", flush=True)
        bad = [r["city_id"] for r in seq.records + dist.records if r["status"] != "ok"]
        if bad:
            raise SystemExit(f"cities failed: {bad}")
        import pandas as pd

        same = pd.read_parquet(root / "sequential" / "all_indicators.parquet").equals(
            pd.read_parquet(root / "distributed" / "all_indicators.parquet")
        )
        ratio = t_seq / t_dist
        per_city = [(c.buildings, r["extract_bytes"], r["durations_s"]["total"], r["memory_peak"])
                    for c, r in zip(cities, dist.records, strict=True)]  # fmt: skip
        b = np.array([p[0] for p in per_city], float)
        size = np.array([p[1] for p in per_city], float)
        t = np.array([p[2] for p in per_city], float)
        mem = np.array([p[3] for p in per_city], float)
        slope, intercept = np.polyfit(b, t, 1)
        m_slope, m_icpt = np.polyfit(size, mem, 1)
        efficiency = ratio / 2
        national = [max(10_000, TOP_BUILDINGS // k) for k in range(1, NATIONAL_CITIES + 1)]
        national_t = [intercept + slope * n for n in national]
        makespan = lpt_makespan(national_t, NATIONAL_WORKERS) / efficiency
        print()
        alone = [r["durations_s"]["total"] for r in seq.records]
        print(
            "city  buildings  extract_MB  task_s sequential  task_s 2 workers  peak_GB (2 workers)"
        )
        for c, (nb, sz, tt, mm), t1 in zip(cities, per_city, alone, strict=True):
            print(
                f"{c.name}  {nb:>9,}  {sz / 1e6:>10.1f}  {t1:>17.1f}  {tt:>16.1f}  {mm / 1e9:>7.2f}"
            )
        print()
        print(json.dumps({
            "cities": len(cities), "buildings": int(b.sum()),
            "sequential_s": round(t_seq, 1), "two_workers_s": round(t_dist, 1),
            "ratio": round(ratio, 2), "fraction_of_ideal_2x": round(efficiency, 2),
            "sum_of_task_s": {"sequential": round(sum(alone), 1), "two_workers": round(float(t.sum()), 1)},
            "target_ratio": 1.7, "identical_all_indicators": bool(same),
            "task_s_fit": {"a_s": round(intercept, 2), "s_per_1000_buildings": round(slope * 1000, 3)},
            "memory_fit": {"base_bytes": int(m_icpt), "per_extract_byte": round(m_slope, 1),
                           "worst_peak_gb": round(mem.max() / 1e9, 2)},
            "national": {"cities": NATIONAL_CITIES, "workers": NATIONAL_WORKERS,
                         "buildings": int(sum(national)), "largest_city_buildings": TOP_BUILDINGS,
                         "largest_city_task_s": round(national_t[0], 1),
                         "sum_of_task_s": round(sum(national_t), 1),
                         "extrapolated_hours": round(makespan / 3600, 2), "target_hours": 1.0},
        }, indent=2))  # fmt: skip
        print(
            f"\n2 workers vs sequential: {ratio:.2f}x ({efficiency:.0%} of the ideal 2x; target 1.7x)"
        )
        print(f"national run extrapolated: {makespan / 3600:.2f} h on {NATIONAL_WORKERS} workers "
              "(target < 1 h)")  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
