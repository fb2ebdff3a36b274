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

* quackosm (second peer, issue 16): ``convert_pbf_to_geodataframe`` with the tags cityos reads
  (buildings, highways, amenity, shop, leisure, landuse, railway, boundary) into one GeoDataFrame.
  It needs packages that clash with cityos's pins, so it runs in its own virtual environment
  (``benchmarks/.cache/quackosm-venv``, made on first use from the package index), with DuckDB's
  spatial extension taken from the ``duckdb-extension-spatial`` wheel (quackosm would download
  it, which an offline machine cannot); "—" with the reason when that cannot be made.

* the readers alone (``read_osm``: every layer in memory, nothing measured or written),
  pyosmium's and the flat one (:mod:`cityos.sources.osm_flat`), each in a fresh process, with
  their row counts (they must agree).

``--repeat N`` runs cityos and pyrosm N times each, in turn (cityos, pyrosm, cityos, …), and
reports the run of median time with the range: on the 2-core machine one run of either tool can
take 2–6× its usual time.

Choosing the reading engine (issue 16), measured on the large city (1,000,000 buildings,
22 MB PBF) on the 2-core machine, 2026-12-01 to 2026-12-03:

=============================================  ==========  ======================================
engine                                         seconds     note
=============================================  ==========  ======================================
pyosmium, a Python callback per object (the     8.2–11.4    reading alone, every layer; peak
reader until 2026-12-02; still the reader of                2.1 GB; the whole import took
XML, o5m and ``--node-index`` on disk)                      14.3–19.2 s
DuckDB spatial ``ST_ReadOSM`` scan, rings in    6.0–6.2     the buildings alone (the 2026-12-01
NumPy, relations through a pyosmium pass                    reader, deleted): the scan is 1.6 s,
                                                            but its rows must still be joined
                                                            and put in libosmium's order
quackosm 0.19 (DuckDB), the tags cityos reads   27.3–32.7   writes GeoParquet, then reads it back
pyrosm (Cython decoder), the peer               2.2–3.8     network, buildings, POIs, land use
                                                            in memory; once 19.3 s
**flat reader** (``cityos/_pbf.c``: blocks      1.7–2.6     reading alone, every layer; peak
decoded to arrays on two threads, way nodes                 0.9–1.3 GB
located and rings tested in C, layers made
with NumPy and Arrow), in cityos now
=============================================  ==========  ======================================

The flat reader gives exactly pyosmium's layers (``tests/sources/test_osm_flat.py``: Helsinki,
Kouvola, the Chinese extracts, synthetic cities, toys of the rings and relations libosmium must
judge; ``tests/test_import_readers.py``: the bundles of both readers equal table for table),
because it follows libosmium's rules: coordinates as the fixed-point integer ÷ 1e7, a way node
without a location splits a walk way and keeps a closed way from being an area, outer rings
counter-clockwise from their lexicographically smallest vertex, a relation's area emitted when
its last member way is read. What NumPy cannot judge (a ring with a location twice in a row or
not simple, a relation whose members are not each a closed ring, such as administrative
boundaries to be stitched) goes through one pyosmium pass that lets only those areas reach
Python. It is used for PBF files with the node index in memory; XML, o5m and ``--node-index``
on disk keep pyosmium's reader, whose on-disk node-location index reads extracts larger than
memory. The rest of the import is flat too: the buildings' and walk edges' columns stay Arrow
arrays from the reader to the bundle file (areas and lengths by the same sums GEOS makes, WKB
written in C), made on a second thread while the facility rules run; the cyclic GC and NumPy's
huge-page advice are off during the import (:mod:`cityos.bulk`).

Usage::

    .venv/bin/python benchmarks/bench_import.py                 # small, medium, large
    .venv/bin/python benchmarks/bench_import.py --sizes small   # quick check
    .venv/bin/python benchmarks/bench_import.py --no-peer       # cityos only
    .venv/bin/python benchmarks/bench_import.py --no-quackosm   # cityos and pyrosm

Targets (issues 2 and 16): the 1,000,000-building city no slower than pyrosm, under 3 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from synthetic_osm import CitySpec, cached_city  # noqa: E402

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
        import cityos.importer

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
    elif tool in ("read-pyosmium", "read-flat"):  # read_osm alone: every layer, in memory
        from cityos.bulk import bulk_work
        from cityos.classify import FacilityRules, load_osm_tables
        from cityos.sources.osm import read_osm

        rules, tables = FacilityRules.load(), load_osm_tables()
        t0 = time.perf_counter()
        with bulk_work():
            ext = read_osm(pbf, rules=rules, tables=tables, reader=tool.split("-")[1])  # type: ignore[arg-type]
            seconds = time.perf_counter() - t0
        counts = {"buildings": len(ext.building_layer), "facilities": len(ext.facilities),
                  "walk_edges": len(ext.walk_edges)}  # fmt: skip
    else:
        raise SystemExit(f"unknown tool {tool}")
    return {
        "tool": tool,
        "seconds": round(seconds, 2),
        "peak_mb": round(_peak_mb(), 1),
        "counts": counts,
    }


QUACKOSM = ("quackosm==0.19.0", "duckdb==1.5.5", "duckdb-extension-spatial==1.5.5")
QUACKOSM_TAGS = {"building": True, "highway": True, "amenity": True, "shop": True,
                 "leisure": True, "landuse": True, "railway": True, "boundary": True}  # fmt: skip
QUACKOSM_SCRIPT = """
import json, sys, time
import quackosm

if __name__ == "__main__":
    t0 = time.perf_counter()
    gdf = quackosm.convert_pbf_to_geodataframe(
        sys.argv[1], tags_filter=json.loads(sys.argv[2]), verbosity_mode="silent",
        working_directory=sys.argv[3])
    print(json.dumps({"seconds": time.perf_counter() - t0, "features": len(gdf)}))
"""


def quackosm_python(cache: Path) -> tuple[Path | None, str]:
    """The interpreter of quackosm's own virtual environment (made if missing), with DuckDB's
    spatial extension installed from its wheel; (None, reason) when it cannot be made."""
    venv = cache / "quackosm-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        made = subprocess.run(
            [sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True
        )
        pip = subprocess.run([str(python), "-m", "pip", "install", "-q", *QUACKOSM],
                             capture_output=True, text=True) if made.returncode == 0 else made  # fmt: skip
        if pip.returncode != 0:
            return (
                None,
                f"cannot install {' '.join(QUACKOSM)}: {pip.stderr.strip().splitlines()[-1:]}",
            )
    ext = subprocess.run(
        [str(python), "-c", "import duckdb, duckdb_extension_spatial as s, pathlib; "
         "print(duckdb.__version__); print(next(pathlib.Path(s.__path__[0]).rglob('*.duckdb_extension')))"],
        capture_output=True, text=True,
    )  # fmt: skip
    if ext.returncode != 0:
        return None, "duckdb-extension-spatial is not importable in the quackosm venv"
    version, wheel_file = ext.stdout.split()
    home = cache / "duckdb-home"
    target = (
        home / ".duckdb" / "extensions" / f"v{version}" / "linux_amd64" / "spatial.duckdb_extension"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        shutil.copyfile(wheel_file, target)
    return python, ""


def run_quackosm(pbf: Path, python: Path, cache: Path) -> dict[str, object]:
    script = cache / "quackosm_worker.py"
    script.write_text(QUACKOSM_SCRIPT)
    with tempfile.TemporaryDirectory() as work:
        res = subprocess.run(
            [str(python), str(script), str(pbf), json.dumps(QUACKOSM_TAGS), work],
            capture_output=True, text=True, env={**os.environ, "HOME": str(cache / "duckdb-home")},
        )  # fmt: skip
    if res.returncode != 0:
        return {"tool": "quackosm", "error": (res.stderr.strip().splitlines() or ["failed"])[-1]}
    out = json.loads(res.stdout.strip().splitlines()[-1])
    return {"tool": "quackosm", "seconds": round(out["seconds"], 2), "features": out["features"]}


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


def _median(runs: list[dict[str, object]]) -> dict[str, object]:
    """The run of median time (the first failure if any failed), with every run's seconds."""
    failed = [r for r in runs if "seconds" not in r]
    if failed:
        return failed[0]
    ranked = sorted(runs, key=lambda r: float(r["seconds"]))  # type: ignore[arg-type]
    return {**ranked[(len(ranked) - 1) // 2], "runs": [r["seconds"] for r in runs]}


def _seconds(run: dict[str, object]) -> str:
    """A run's seconds, with the range of its repeats: ``3.4 (3.1–3.9)``."""
    if "seconds" not in run:
        return str(run.get("error", "—"))
    many = run.get("runs")
    if isinstance(many, list) and len(many) > 1:
        return f"{run['seconds']} ({min(many)}–{max(many)})"
    return str(run["seconds"])


def _ratio(peer: dict[str, object], ours: dict[str, object]) -> str:
    if "seconds" in peer and "seconds" in ours:
        return f"{float(peer['seconds']) / float(ours['seconds']):.2f}×"  # type: ignore[arg-type]
    return "—"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="small,medium,large")
    parser.add_argument("--no-peer", action="store_true", help="skip pyrosm and quackosm")
    parser.add_argument("--no-quackosm", action="store_true", help="skip quackosm")
    parser.add_argument(
        "--repeat", type=int, default=1, metavar="N",
        help="run cityos and pyrosm N times each, in turn, and report the median (the machine is noisy)",
    )  # fmt: skip
    parser.add_argument("--worker", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    cache = HERE / ".cache"
    python, reason = (
        (None, "skipped") if args.no_peer or args.no_quackosm else quackosm_python(cache)
    )
    rows = []
    for name in args.sizes.split(","):
        spec = SIZES[name]
        pbf = cached_city(spec, cache)
        runs: dict[str, list[dict[str, object]]] = {"cityos": [], "pyrosm": []}
        for _ in range(max(1, args.repeat)):  # in turn, so that a busy spell hits both
            for tool in ("cityos",) if args.no_peer else ("cityos", "pyrosm"):
                runs[tool].append(run_worker(tool, pbf))
        ours = _median(runs["cityos"])
        peer = None if args.no_peer else _median(runs["pyrosm"])
        readers = {r: run_worker(f"read-{r}", pbf) for r in ("pyosmium", "flat")}
        quack = (run_quackosm(pbf, python, cache) if python
                 else {"tool": "quackosm", "error": reason})  # fmt: skip
        rows.append({"size": name, "buildings": spec.buildings, "file_mb": round(pbf.stat().st_size / 1e6, 1),
                     "cityos": ours, "pyrosm": peer, "quackosm": quack, "readers": readers})  # fmt: skip
        print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    print()
    print(
        "| city | buildings | PBF MB | cityos s | cityos peak MB | pyrosm s | pyrosm peak MB | "
        "time ratio pyrosm/cityos | quackosm s | time ratio quackosm/cityos |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        c, p, q = r["cityos"], r["pyrosm"] or {}, r["quackosm"] or {}
        print(
            f"| {r['size']} | {r['buildings']:,} | {r['file_mb']} | {_seconds(c)} | "
            f"{c.get('peak_mb', '—')} | {_seconds(p)} | {p.get('peak_mb', '—')} | "
            f"{_ratio(p, c)} | {q.get('seconds', q.get('error', '—'))} | {_ratio(q, c)} |"
        )
    print()
    print(
        "reading alone (read_osm, every layer in memory, no measuring or writing), each in a fresh process:"
    )
    print("| city | pyosmium s | pyosmium peak MB | flat s | flat peak MB | counts equal |")
    print("|---|---:|---:|---:|---:|---|")
    for r in rows:
        p, c = r["readers"]["pyosmium"], r["readers"]["flat"]
        print(f"| {r['size']} | {p.get('seconds', p.get('error'))} | {p.get('peak_mb', '—')} | "
              f"{c.get('seconds', c.get('error'))} | {c.get('peak_mb', '—')} | "
              f"{p.get('counts') == c.get('counts')} |")  # fmt: skip
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "import.json").write_text(
        json.dumps({"cpu_count": os.cpu_count(), "rows": rows}, indent=2)
    )


if __name__ == "__main__":
    main()
