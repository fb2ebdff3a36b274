"""Benchmark: `cityos import` against pyrosm reading the same synthetic .osm.pbf.

Generates seeded synthetic city extracts (benchmarks/synthetic_osm.py, cached in
benchmarks/.cache) at three sizes, then times each tool in a fresh subprocess and reports wall
time and peak resident memory (ru_maxrss of the process plus its largest child) per size, with the ratio pyrosm / cityos.

* cityos: the full ``cityos import`` (walk network, buildings with levels and floor area,
  classified facilities, green spaces, land use, admin units, projected measurement, atomic
  GeoParquet bundle write).
* pyrosm: ``get_network("walking", nodes=True)`` + ``get_buildings()`` +
  ``get_pois(amenity, shop, leisure, highway=bus_stop, railway=station)`` + ``get_landuse()`` on the
  same file, in memory only (no output written).

Usage::

    .venv/bin/python benchmarks/bench_import.py                 # small, medium, large
    .venv/bin/python benchmarks/bench_import.py --sizes small   # quick check
    .venv/bin/python benchmarks/bench_import.py --no-peer       # cityos only

Targets (issue 2): the 1,000,000-building city in under 60 s and under 6 GB, no slower than pyrosm.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from synthetic_osm import CitySpec, write_city  # noqa: E402

SIZES = {
    "small": CitySpec("small", grid=100, buildings=50_000, pois=2_000),
    "medium": CitySpec("medium", grid=250, buildings=250_000, pois=10_000),
    "large": CitySpec("large", grid=400, buildings=1_000_000, pois=40_000),
}


def _peak_mb() -> float:
    """Peak resident memory of this process plus the largest child it waited for (cityos reads
    buildings in a second process); the sum is an upper bound of the two running together."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024.0


def worker(tool: str, pbf: str) -> dict[str, object]:
    """Run one tool on one file in this (fresh) process; return time, memory and counts."""
    warnings.simplefilter("ignore")
    if tool == "cityos":
        import cityos

        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            bundle = cityos.import_city(Path(tmp) / "bundle", osm=pbf)
            seconds = time.perf_counter() - t0
            counts = dict(bundle.manifest["layers"])
    elif tool == "pyrosm":
        import pyrosm

        t0 = time.perf_counter()
        osm = pyrosm.OSM(pbf)
        nodes, edges = osm.get_network(network_type="walking", nodes=True)
        buildings = osm.get_buildings()
        pois = osm.get_pois(
            custom_filter={
                "amenity": True,
                "shop": True,
                "leisure": True,
                "highway": ["bus_stop"],
                "railway": ["station"],
            }
        )
        landuse = osm.get_landuse()
        seconds = time.perf_counter() - t0
        counts = {
            "walk_nodes": len(nodes),
            "walk_edges": len(edges),
            "buildings": len(buildings),
            "facilities": 0 if pois is None else len(pois),
            "landuse": 0 if landuse is None else len(landuse),
        }
    else:
        raise SystemExit(f"unknown tool {tool}")
    return {
        "tool": tool,
        "seconds": round(seconds, 2),
        "peak_mb": round(_peak_mb(), 1),
        "counts": counts,
    }


def run_worker(tool: str, pbf: Path) -> dict[str, object]:
    res = subprocess.run(
        [sys.executable, __file__, "--worker", tool, str(pbf)],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        return {
            "tool": tool,
            "error": res.stderr.strip().splitlines()[-1] if res.stderr else "failed",
        }
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="small,medium,large")
    parser.add_argument("--no-peer", action="store_true", help="skip pyrosm")
    parser.add_argument("--worker", nargs=2, metavar=("TOOL", "PBF"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    cache = HERE / ".cache"
    rows = []
    for name in args.sizes.split(","):
        spec = SIZES[name]
        pbf = cache / f"city-{spec.name}-g{spec.grid}-b{spec.buildings}-s{spec.seed}.osm.pbf"
        if not pbf.exists():
            t0 = time.perf_counter()
            info = write_city(spec, pbf)
            print(f"generated {pbf.name}: {info} in {time.perf_counter() - t0:.1f} s", flush=True)
        ours = run_worker("cityos", pbf)
        peer = None if args.no_peer else run_worker("pyrosm", pbf)
        rows.append({"size": name, "buildings": spec.buildings, "file_mb": round(pbf.stat().st_size / 1e6, 1),
                     "cityos": ours, "pyrosm": peer})  # fmt: skip
        print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    print()
    print(
        "| city | buildings | PBF MB | cityos s | cityos peak MB | pyrosm s | pyrosm peak MB | time ratio pyrosm/cityos |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        c, p = r["cityos"], r["pyrosm"] or {}
        ratio = f"{p['seconds'] / c['seconds']:.2f}×" if "seconds" in p and "seconds" in c else "—"
        print(
            f"| {r['size']} | {r['buildings']:,} | {r['file_mb']} | {c.get('seconds', c.get('error'))} | "
            f"{c.get('peak_mb', '—')} | {p.get('seconds', p.get('error', '—'))} | {p.get('peak_mb', '—')} | {ratio} |"
        )
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "import.json").write_text(
        json.dumps({"cpu_count": os.cpu_count(), "rows": rows}, indent=2)
    )


if __name__ == "__main__":
    main()
