"""Benchmark: facility siting (`cityos site`) on seeded synthetic cities, exact and greedy.

Two parts, each size in a fresh process:

1. **Cities** (the issue's benchmark). A synthetic city from benchmarks/synthetic_osm.py where
   every building is an apartment block (so every building is demand), imported with cityos;
   candidates are N street nodes drawn with a fixed seed, given as a CSV of lon/lat (the
   ``--candidates FILE`` path); the category is ``childcare`` (none exists, so every resident is
   demand) within 300 m walking. ``plan_sites`` runs end to end — population, walking coverage
   pairs, the solver, the scenario bundle and the before/after health check — once with the
   exact solver and once with the greedy one; its stage timings are printed.
2. **Solvers alone** on straight-line instances (uniform points, 500 m), for scale beyond the
   cities.

Usage::

    .venv/bin/python benchmarks/bench_siting.py                 # both cities, ~10 min
    .venv/bin/python benchmarks/bench_siting.py --sizes 100k    # the small city only

Targets (issue 6): exact solve under 60 s for 1,000 candidates × 100,000 buildings; greedy solve
under 10 s for 10,000 candidates × 1,000,000 buildings. No peer tool is named by the issue. The
small city also runs the p-median objective (``--objective distance``, 1000 m cutoff), greedy and
exact (60 s limit).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix
from scipy.spatial import cKDTree

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fresh import peak_gb  # noqa: E402
from synthetic_osm import CitySpec, write_city  # noqa: E402

#: (city, candidates, K, exact time limit)
SIZES = {
    "100k": (CitySpec("siting-100k", grid=160, buildings=100_000, pois=2_000,
                      residential_only=True), 1_000, 50, 60.0),
    "1m": (CitySpec("siting-1m", grid=400, buildings=1_000_000, pois=20_000,
                    residential_only=True), 10_000, 100, 60.0),
}  # fmt: skip
RADIUS_M = 300.0
CATEGORY = "childcare"


def city_worker(pbf: str, n_candidates: int, k: int, time_limit: float) -> dict[str, object]:
    warnings.simplefilter("ignore")
    import pandas as pd

    import cityos
    from cityos.renewal import plan_sites

    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        bundle = cityos.import_city(Path(tmp) / "bundle", osm=pbf, quiet=True)
        out["import_s"] = round(time.perf_counter() - t0, 1)
        nodes = bundle.walk_nodes
        rng = np.random.default_rng(7)
        pick = rng.choice(len(nodes), size=n_candidates, replace=False)
        cands = Path(tmp) / "candidates.csv"
        pd.DataFrame(
            {"id": [f"c{i}" for i in range(n_candidates)],
             "lon": nodes.geometry.x.to_numpy()[pick], "lat": nodes.geometry.y.to_numpy()[pick]}
        ).to_csv(cands, index=False)  # fmt: skip
        for method in ("exact", "greedy"):
            t0 = time.perf_counter()
            plan = plan_sites(
                bundle, category=CATEGORY, add=k, radius=RADIUS_M, candidates=cands,
                method=method, time_limit=time_limit,  # type: ignore[arg-type]
            )  # fmt: skip
            s = plan.summary
            out[method] = {
                "total_s": round(time.perf_counter() - t0, 1),
                "timings_s": s["timings_s"],
                "solver": s["solver"],
                "covered": s["covered_new_residents"],
                "bound": s["bound"],
                "gap": s["gap"],
                "after_pct": s["after_pct"],
                "added_population": s["added_population"],
            }
            out["demand_buildings"] = s["demand_buildings"]
            out["pairs"] = s["pairs"]
            out["candidates"] = s["candidates"]["count"]
            out["residents"] = s["residents"]
        if (
            n_candidates <= 1_000
        ):  # p-median (--objective distance, 1000 m cutoff) on the small city
            for method in ("greedy", "exact"):
                plan = plan_sites(
                    bundle, category=CATEGORY, add=k, radius=RADIUS_M, objective="distance",
                    candidates=cands, method=method, time_limit=time_limit, systems=[],  # type: ignore[arg-type]
                )  # fmt: skip
                s = plan.summary
                out[f"p-median {method}"] = {
                    "solve_s": s["timings_s"]["solve"], "solver": s["solver"], "pairs": s["pairs"],
                    "gap": s["gap"], "before_m": s["mean_distance_before_m"],
                    "after_m": s["mean_distance_after_m"],
                }  # fmt: skip
        out["buildings"] = len(bundle.buildings)
    out["peak_gb"] = peak_gb()
    return out


def straight_line(
    n_c: int, n_d: int, extent: float, radius: float, seed: int
) -> tuple[csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    demand = rng.uniform(0, extent, (n_d, 2))
    sites = rng.uniform(0, extent, (n_c, 2))
    pairs = cKDTree(sites).sparse_distance_matrix(cKDTree(demand), radius, output_type="coo_matrix")
    cover = csr_matrix((np.ones(pairs.nnz, dtype=bool), (pairs.row, pairs.col)), shape=(n_c, n_d))
    return cover, rng.integers(1, 30, n_d).astype(float)


def solvers_alone() -> None:
    from cityos.renewal import max_cover

    print("\nSolvers alone, straight-line coverage within 500 m (uniform points):")
    print("| instance | K | exact s | exact value | greedy s | greedy value | greedy / exact | greedy gap bound |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for n_c, n_d, extent, k, exact in (
        (1000, 100_000, 20_000.0, 50, True),
        (10_000, 1_000_000, 40_000.0, 100, False),
    ):
        cover, w = straight_line(n_c, n_d, extent, 500.0, seed=7)
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
        print(f"| {n_c:,} × {n_d:,} | {k} | {cols} | {g.gap:.3%} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100k,1m")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        pbf, n_c, k, limit = args.worker
        print(json.dumps(city_worker(pbf, int(n_c), int(k), float(limit))))
        return
    print(f"Cities: category {CATEGORY} (none exists), {RADIUS_M:g} m walking, candidates = seeded street nodes")  # fmt: skip
    print("| city | buildings (demand) | candidates × demand | pairs | K | exact solve s | exact value | exact gap | greedy solve s | greedy value | greedy / exact | greedy gap bound | coverage after (greedy) | peak GB |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    stages = {}
    medians: dict[str, dict[str, dict[str, object]]] = {}
    for name in args.sizes.split(","):
        spec, n_c, k, limit = SIZES[name]
        pbf = (
            HERE
            / ".cache"
            / f"city-{spec.name}-g{spec.grid}-b{spec.buildings}-s{spec.seed}.osm.pbf"
        )
        if not pbf.exists():
            pbf.parent.mkdir(parents=True, exist_ok=True)
            write_city(spec, pbf)
        res = subprocess.run(
            [sys.executable, __file__, "--worker", str(pbf), str(n_c), str(k), str(limit)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if res.returncode != 0:
            print(f"| {name} | failed: {res.stderr.strip().splitlines()[-1:]} |")
            continue
        o = json.loads(res.stdout.strip().splitlines()[-1])
        e, g = o["exact"], o["greedy"]
        print(
            f"| {name} | {o['buildings']:,} ({o['demand_buildings']:,}) | {o['candidates']:,} × {o['demand_buildings']:,} | "
            f"{o['pairs']:,} | {k} | {e['timings_s']['solve']:.2f} | {e['covered']:,.0f} | {e['gap']:.3%} | "
            f"{g['timings_s']['solve']:.2f} | {g['covered']:,.0f} | {g['covered'] / e['covered']:.4f} | {g['gap']:.3%} | "
            f"{g['after_pct']:.1f}% | {o['peak_gb']} |"
        )  # fmt: skip
        stages[name] = (o["import_s"], e, g)
        if "p-median greedy" in o:
            medians[name] = o
    for name, (imp, e, g) in stages.items():
        print(f"\n{name}: stages of plan_sites (seconds; import {imp} s before it)")
        print("| stage | exact run | greedy run |\n|---|---:|---:|")
        for stage in g["timings_s"]:
            print(f"| {stage} | {e['timings_s'][stage]} | {g['timings_s'][stage]} |")
        print(f"| total | {e['total_s']} | {g['total_s']} |")
        print(f"solvers: {e['solver']} / {g['solver']}")
    for name, pm in medians.items():
        pairs = pm["p-median greedy"]["pairs"]
        print(f"\n{name}: p-median (--objective distance), pairs within 1000 m: {pairs:,}")
        print(
            "| method | solve s | solver | gap (bound) | mean walk before → after (capped at 1000 m) |\n|---|---:|---|---:|---|"
        )
        for key in ("p-median greedy", "p-median exact"):
            r: dict[str, object] = pm[key]
            print(f"| {key.split()[1]} | {r['solve_s']:.2f} | {r['solver']} | {r['gap']:.2%} | "
                  f"{r['before_m']:.0f} m → {r['after_m']:.1f} m |")  # fmt: skip
    solvers_alone()


if __name__ == "__main__":
    main()
