"""Benchmark: the dashboard (``cityos serve BUNDLE --results RESULTS``, page at ``/``) in Debian's
headless Chromium on the same machine, on the Helsinki demo and on the seeded synthetic city of
1,000,000 buildings (bench_import.py's ``large``).

For each city: the bundle and its health check are made once (cached in
``benchmarks/.cache/dashboard-*``), then a fresh ``cityos serve`` is started and timed until it
answers, and a fresh page is opened on it:

* first paint: navigation start → MapLibre's first ``render`` with tiles drawn (the units'
  choropleth layer on screen);
* interactive: navigation start → the map ``idle`` with the first indicator's choropleth applied;
* bytes: every response body of the first view (HTML, JS, CSS, JSON, tiles), as the browser
  received them;
* server time per tile: each tile of the first view fetched again from a second, cold server
  (nothing cached), median and slowest, then the same tiles from the cache.

The floor it is compared with: the bundle as one GeoJSON (what a page without tiles would load
for the same layers), its size measured by writing it.

Usage::

    .venv/bin/python benchmarks/bench_dashboard.py                   # demo and large
    .venv/bin/python benchmarks/bench_dashboard.py --cities demo

Targets (issue 17): first paint under 2 s and the first view under 5 MB on the
1,000,000-building city.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_import import SIZES  # noqa: E402
from synthetic_osm import CACHE, cached_city  # noqa: E402

TARGET_PAINT_S, TARGET_MB = 2.0, 5.0
CHROMIUM_ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]  # fmt: skip


def city_folders(name: str) -> tuple[Path, Path]:
    """The bundle and health-check results of ``name`` (made once, then cached)."""
    import cityos

    root = CACHE / f"dashboard-{name}"
    bundle, results = root / "bundle", root / "results"
    if not (results / "summary.json").is_file():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        osm = cityos.demo_osm_path() if name == "demo" else cached_city(SIZES[name])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the cities lack some categories: not measured here
            b = cityos.import_city(bundle, osm=osm)
            cityos.write_results(cityos.checkup(b), results)
    return bundle, results


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(bundle: Path, results: Path, db: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    """A fresh ``cityos serve``: the process, its address, seconds until it answered."""
    import httpx

    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "cityos", "serve", str(bundle), "--db",
                             f"sqlite:///{db}", "--results", str(results), "--port", str(port), "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    while True:
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "serve exited")
        try:
            httpx.get(f"{base}/api/v1/map", timeout=1)
            return proc, base, time.perf_counter() - t0
        except httpx.HTTPError:
            time.sleep(0.05)


def measure(name: str) -> dict[str, Any]:
    import httpx
    from playwright.sync_api import sync_playwright

    bundle, results = city_folders(name)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "ops.sqlite"
        subprocess.run([sys.executable, "-m", "cityos", "db", "upgrade", "--db", f"sqlite:///{db}", "-q"],
                       check=True, capture_output=True)  # fmt: skip
        proc, base, startup = serve(bundle, results, db)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                            args=CHROMIUM_ARGS)  # fmt: skip
                page = browser.new_page(viewport={"width": 1600, "height": 900})
                sizes: list[tuple[str, int]] = []
                page.on("requestfinished",
                        lambda r: sizes.append((r.url, r.sizes()["responseBodySize"])))  # fmt: skip
                page.add_init_script("""
                    window.__marks = {};
                    const stamp = () => {
                      const map = window.cityos && window.cityos.map;
                      if (!map) return requestAnimationFrame(stamp);
                      map.on("render", () => {
                        if (!window.__marks.paint && map.getLayer("units-fill") &&
                            map.queryRenderedFeatures({layers: ["units-fill"]}).length)
                          window.__marks.paint = performance.now();
                      });
                      map.on("idle", () => {
                        if (!window.__marks.idle && document.body.dataset.choropleth)
                          window.__marks.idle = performance.now();
                      });
                    };
                    requestAnimationFrame(stamp);
                """)
                page.goto(f"{base}/?lang=en")
                page.wait_for_function("window.__marks.paint && window.__marks.idle", timeout=120_000,
                                       polling=50)  # fmt: skip
                marks = page.evaluate("window.__marks")
                zoom = page.evaluate("window.cityos.map.getZoom()")
                shot = CACHE / f"dashboard-{name}.png"
                page.screenshot(path=str(shot))
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        tiles = [u.removeprefix(base) for u, _ in sizes if "/tiles/" in u]
        proc, base, _ = serve(bundle, results, db)  # cold: nothing cached
        try:
            with httpx.Client(base_url=base, timeout=60) as client:
                cold, warm = [], []
                for t in tiles:
                    t0 = time.perf_counter()
                    client.get(t).raise_for_status()
                    cold.append(time.perf_counter() - t0)
                for t in tiles:
                    t0 = time.perf_counter()
                    client.get(t)
                    warm.append(time.perf_counter() - t0)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return {
        "startup_s": startup,
        "paint_s": marks["paint"] / 1000,
        "idle_s": marks["idle"] / 1000,
        "bytes": sum(s for _, s in sizes),
        "tile_bytes": sum(s for u, s in sizes if "/tiles/" in u),
        "requests": len(sizes),
        "tiles": len(tiles),
        "zoom": zoom,
        "tile_cold_ms": (1000 * statistics.median(cold), 1000 * max(cold)) if cold else None,
        "tile_warm_ms": 1000 * statistics.median(warm) if warm else None,
        "geojson_mb": geojson_mb(bundle),
        "screenshot": str(shot),
    }


def geojson_mb(bundle: Path) -> float:
    """The floor's size: units, streets, buildings, facilities and green spaces as one GeoJSON."""
    import geopandas as gpd
    import pandas as pd

    import cityos

    b = cityos.read_bundle(bundle)
    frames = [f[["geometry"]] for f in (b.units, b.walk_edges, b.buildings, b.facilities, b.green_spaces)
              if len(f)]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "all.geojson"
        gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs="EPSG:4326").to_file(
            path, driver="GeoJSON"
        )
        return os.path.getsize(path) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cities", default="demo,large")
    args = parser.parse_args()
    print(f"{'city':<6} {'serve up':>9} {'1st paint':>10} {'interactive':>12} {'1st view':>10} "
          f"{'requests':>9} {'tile cold med/max':>18} {'tile cached':>12} {'one GeoJSON':>12}")  # fmt: skip
    for name in args.cities.split(","):
        r = measure(name)
        cold = (
            "—"
            if r["tile_cold_ms"] is None
            else f"{r['tile_cold_ms'][0]:.0f}/{r['tile_cold_ms'][1]:.0f} ms"
        )
        warm = "—" if r["tile_warm_ms"] is None else f"{r['tile_warm_ms']:.1f} ms"
        mb = r["bytes"] / 1e6
        print(f"{name:<6} {r['startup_s']:>8.1f}s {r['paint_s']:>9.2f}s {r['idle_s']:>11.2f}s "
              f"{mb:>8.2f}MB {r['requests']:>9} {cold:>18} {warm:>12} {r['geojson_mb']:>10.1f}MB")  # fmt: skip
        print(f"       zoom {r['zoom']:.1f}, {r['tiles']} tiles ({r['tile_bytes'] / 1e6:.2f} MB); "
              f"first paint {r['paint_s'] / TARGET_PAINT_S:.2f}× the 2 s target, first view "
              f"{mb / TARGET_MB:.2f}× the 5 MB target and {mb / r['geojson_mb']:.3f}× one GeoJSON "
              f"of the same layers; screenshot {r['screenshot']}")  # fmt: skip


if __name__ == "__main__":
    main()
