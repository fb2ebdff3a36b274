"""Benchmark: nearest facility of 20 categories for every building, cityos against its peers.

Seeded synthetic street networks (a perturbed grid, 100 m blocks, 8 % of streets removed) of about
50k, 200k and 500k nodes, with 2 building points per node (100k, 400k, 1M origins) scattered
within the blocks, and 20 facility categories of 5 to 5,000 points each; cutoff 1000 m.
Each tool runs in a fresh process (time and peak memory, ru_maxrss):

* cityos: graph build + snapping every origin and facility to its nearest *edge* + one
  multi-source Dijkstra per category (``cityos.network.nearest``), end to end; the scipy Dijkstra
  calls alone are also timed ("shortest-path part").
* pandana: ``Network`` (contraction-hierarchy preprocessing, timed separately) + ``precompute`` +
  ``set_pois``/``nearest_pois`` per category + ``get_node_ids`` for the buildings (snaps to nodes).
* networkx: ``multi_source_dijkstra_path_length`` from the facilities' nearest nodes per category
  (if it would exceed ``--nx-budget`` seconds, the remaining categories are extrapolated from the
  measured ones and the figure is marked ``~``).
* floor: one ``scipy.sparse.csgraph.breadth_first_order`` pass over the graph per category — no
  nearest-distance computation can beat visiting every node once.

Usage::

    .venv/bin/python benchmarks/bench_access.py                    # 50k, 200k, 500k
    .venv/bin/python benchmarks/bench_access.py --sizes 50k --no-peers

Targets (issue 3): 500k nodes × 1M origins × 20 categories in under 10 s including snapping and
under 4 GB; at least 10× faster than pandana end to end; within 5× of the floor for the
shortest-path part.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CRS = "EPSG:32650"
CUTOFF = 1000.0
FACILITY_COUNTS = [
    5000,
    3000,
    2000,
    1000,
    800,
    500,
    400,
    300,
    200,
    150,
    100,
    80,
    60,
    50,
    40,
    30,
    20,
    15,
    10,
    5,
]
SIZES = {"50k": 224, "200k": 448, "500k": 708}  # grid side → about 50k, 200k, 500k nodes


@dataclass
class City:
    node_xy: np.ndarray
    u: np.ndarray
    v: np.ndarray
    length: np.ndarray
    origins: np.ndarray
    facilities: list[np.ndarray]


def make_city(side: int, seed: int = 7) -> City:
    rng = np.random.default_rng(seed)
    gx, gy = np.meshgrid(np.arange(side) * 100.0, np.arange(side) * 100.0, indexing="xy")
    xy = np.column_stack([gx.ravel(), gy.ravel()]) + rng.uniform(-15, 15, (side * side, 2))
    idx = np.arange(side * side).reshape(side, side)
    u = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    v = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    keep = rng.random(len(u)) >= 0.08
    u, v = u[keep], v[keep]
    length = np.hypot(*(xy[u] - xy[v]).T)
    extent = (side - 1) * 100.0
    n_orig = 2 * side * side
    origins = rng.uniform(0, extent, (n_orig, 2))
    facilities = [rng.uniform(0, extent, (n, 2)) for n in FACILITY_COUNTS]
    return City(xy, u.astype(np.int64), v.astype(np.int64), length, origins, facilities)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_cityos(city: City) -> dict[str, float]:
    import geopandas as gpd
    import shapely
    from scipy.sparse.csgraph import dijkstra

    from cityos.network import graph_from_edges, nearest, snap_points
    from cityos.network.access import _augmented

    lines = shapely.linestrings(np.stack([city.node_xy[city.u], city.node_xy[city.v]], axis=1))
    frame = gpd.GeoDataFrame(
        {"u": city.u, "v": city.v, "length_m": city.length}, geometry=lines, crs=CRS
    )
    t0 = time.perf_counter()
    graph = graph_from_edges(frame)
    t_graph = time.perf_counter() - t0
    origins = snap_points(graph, shapely.points(city.origins))
    t_snap = time.perf_counter() - t0 - t_graph
    reached = 0
    for fac in city.facilities:
        res = nearest(graph, origins, snap_points(graph, shapely.points(fac)), cutoff=CUTOFF)
        reached += int(np.isfinite(res.distance).sum())
    total = time.perf_counter() - t0
    # the shortest-path part alone: the same Dijkstra calls again
    snapped = [snap_points(graph, shapely.points(f)) for f in city.facilities]
    t1 = time.perf_counter()
    for s in snapped:
        matrix, ok = _augmented(graph, s)
        dijkstra(matrix, directed=True, indices=graph.n_nodes + np.arange(len(ok)), min_only=True,
                 return_predecessors=True, limit=CUTOFF)  # fmt: skip
    sp = time.perf_counter() - t1
    return {"seconds": total, "graph_s": t_graph, "snap_origins_s": t_snap, "shortest_path_s": sp,
            "reached_pairs": reached, "nodes": graph.n_nodes, "edges": graph.n_edges}  # fmt: skip


def run_pandana(city: City) -> dict[str, float]:
    import pandana
    import pandas as pd

    t0 = time.perf_counter()
    nodes = pd.DataFrame({"x": city.node_xy[:, 0], "y": city.node_xy[:, 1]})
    edges = pd.DataFrame({"from": city.u, "to": city.v, "length": city.length})
    net = pandana.Network(
        nodes["x"], nodes["y"], edges["from"], edges["to"], edges[["length"]], twoway=True
    )
    net.precompute(CUTOFF)
    t_pre = time.perf_counter() - t0
    origin_nodes = net.get_node_ids(pd.Series(city.origins[:, 0]), pd.Series(city.origins[:, 1]))
    reached = 0
    for k, fac in enumerate(city.facilities):
        cat = f"c{k}"
        net.set_pois(cat, CUTOFF, 1, pd.Series(fac[:, 0]), pd.Series(fac[:, 1]))
        d = net.nearest_pois(CUTOFF, cat, num_pois=1, include_poi_ids=True)
        dist = d[1].reindex(origin_nodes.to_numpy()).to_numpy()
        reached += int((dist < CUTOFF).sum())
    return {"seconds": time.perf_counter() - t0, "preprocess_s": t_pre, "reached_pairs": reached}


def run_networkx(city: City, budget: float) -> dict[str, float]:
    import networkx as nx
    from scipy.spatial import cKDTree

    t0 = time.perf_counter()
    g = nx.Graph()
    g.add_weighted_edges_from(
        zip(city.u.tolist(), city.v.tolist(), city.length.tolist(), strict=True)
    )
    tree = cKDTree(city.node_xy)
    t_build = time.perf_counter() - t0
    done, spent = 0, 0.0
    for fac in city.facilities:
        t = time.perf_counter()
        sources = set(tree.query(fac)[1].tolist()) & set(g.nodes)
        nx.multi_source_dijkstra_path_length(g, sources, cutoff=CUTOFF, weight="weight")
        spent += time.perf_counter() - t
        done += 1
        if spent > budget:
            break
    per_cat = spent / done
    estimate = t_build + spent + per_cat * (len(city.facilities) - done)
    return {
        "seconds": estimate,
        "categories_measured": done,
        "extrapolated": done < len(city.facilities),
    }


def run_floor(city: City) -> dict[str, float]:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import breadth_first_order

    n = len(city.node_xy)
    m = coo_matrix((city.length, (city.u, city.v)), shape=(n, n)).tocsr()
    m = (m + m.T).tocsr()
    t0 = time.perf_counter()
    for _ in city.facilities:
        breadth_first_order(m, 0, directed=True, return_predecessors=False)
    return {"seconds": time.perf_counter() - t0}


def worker(tool: str, size: str, budget: float) -> dict[str, object]:
    warnings.simplefilter("ignore")
    city = make_city(SIZES[size])
    runner = {
        "cityos": run_cityos,
        "pandana": run_pandana,
        "networkx": lambda c: run_networkx(c, budget),
        "floor": run_floor,
    }[tool]
    out: dict[str, object] = {"tool": tool, "size": size, **runner(city)}
    out["peak_mb"] = round(_peak_mb(), 1)
    return out


def run_worker(tool: str, size: str, budget: float) -> dict[str, object]:
    res = subprocess.run(
        [sys.executable, __file__, "--worker", tool, size, str(budget)],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        lines = res.stderr.strip().splitlines()
        return {
            "tool": tool,
            "size": size,
            "error": lines[-1] if lines else f"exit {res.returncode}",
        }
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


def fmt(x: object, digits: int = 2) -> str:
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="50k,200k,500k")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument(
        "--nx-budget", type=float, default=60.0, help="seconds of networkx per size"
    )
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        tool, size, budget = args.worker
        print(json.dumps(worker(tool, size, float(budget))))
        return
    tools = ["cityos", "floor"] if args.no_peers else ["cityos", "floor", "pandana", "networkx"]
    rows = []
    for size in args.sizes.split(","):
        row = {t: run_worker(t, size, args.nx_budget) for t in tools}
        rows.append({"size": size, **row})
        print(json.dumps(rows[-1]), flush=True)
    print()
    print(
        "| graph | nodes | origins | cityos s (incl. snapping) | cityos peak MB | shortest-path part s | floor s (20 BFS) | ×floor | pandana s (preprocess) | pandana peak MB | ×faster than pandana | networkx s | ×faster than networkx |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        c, f = r["cityos"], r["floor"]
        p, x = r.get("pandana", {}), r.get("networkx", {})
        nodes = c.get("nodes", "—")
        origins = 2 * SIZES[r["size"]] ** 2
        ratio_floor = (
            f"{c['shortest_path_s'] / f['seconds']:.1f}×"
            if "seconds" in f and "shortest_path_s" in c
            else "—"
        )
        vs_p = f"{p['seconds'] / c['seconds']:.0f}×" if "seconds" in p and "seconds" in c else "—"
        vs_x = f"{x['seconds'] / c['seconds']:.0f}×" if "seconds" in x and "seconds" in c else "—"
        nx_s = ("~" if x.get("extrapolated") else "") + fmt(
            x.get("seconds", x.get("error", "—")), 1
        )
        print(
            f"| {r['size']} | {nodes:,} | {origins:,} | {fmt(c.get('seconds', c.get('error')))} | {c.get('peak_mb', '—')} | "
            f"{fmt(c.get('shortest_path_s', '—'))} | {fmt(f.get('seconds', f.get('error', '—')))} | {ratio_floor} | "
            f"{fmt(p.get('seconds', p.get('error', '—')), 1)} ({fmt(p.get('preprocess_s', '—'), 1)}) | {p.get('peak_mb', '—')} | {vs_p} | "
            f"{nx_s} | {vs_x} |"
        )
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "access.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
