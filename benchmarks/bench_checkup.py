"""Benchmark: the full health check (mohurd-2024 + complete-community + sdg-11) on seeded
synthetic cities, time and peak memory by stage.

Cities come from benchmarks/synthetic_osm.py (a perturbed street grid with buildings, POIs and
parks, written as .osm.pbf and cached in benchmarks/.cache); each size runs in a fresh process:
import → checkup (stages as recorded in summary.json's ``timings_s``) → write results → HTML
report (its file size is printed too). Peak
memory is ru_maxrss after each stage (cumulative, process plus the import's building reader).

Usage::

    .venv/bin/python benchmarks/bench_checkup.py                     # 50k, 250k, 1M buildings
    .venv/bin/python benchmarks/bench_checkup.py --sizes small

Targets: the 1,000,000-building city in under 120 s and under 8 GB (issue 4); the health check
of the three systems in under 60 s and under 6 GB (issue 16).
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fresh import peak_gb, sized_runs  # noqa: E402


def _open_seconds(page: Path) -> float | str:
    """Seconds until headless Chromium has drawn the report's map (Debian's chromium)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return "playwright not installed"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
        )
        tab = browser.new_page()
        t0 = time.perf_counter()
        tab.goto(page.as_uri())
        tab.wait_for_selector("#units path")
        seconds = round(time.perf_counter() - t0, 2)
        browser.close()
    return seconds


def worker(pbf: str) -> dict[str, object]:
    warnings.simplefilter("ignore")
    import cityos
    from cityos.healthcheck.results import write_results

    stages: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        bundle = cityos.import_city(Path(tmp) / "bundle", osm=pbf)
        stages["import"] = {"seconds": round(time.perf_counter() - t0, 2), "peak_gb": peak_gb()}
        t1 = time.perf_counter()
        result = cityos.checkup(bundle)
        for name, sec in result.summary["timings_s"].items():
            stages[name] = {"seconds": sec}
        stages["checkup total"] = {
            "seconds": round(time.perf_counter() - t1, 2),
            "peak_gb": peak_gb(),
        }
        t2 = time.perf_counter()
        write_results(result, Path(tmp) / "results")
        stages["write results"] = {
            "seconds": round(time.perf_counter() - t2, 2),
            "peak_gb": peak_gb(),
        }
        t3 = time.perf_counter()
        from cityos.report import write_html

        page = write_html(Path(tmp) / "results", Path(tmp) / "report.html")
        stages["HTML report"] = {
            "seconds": round(time.perf_counter() - t3, 2),
            "peak_gb": peak_gb(),
        }
        report_mb = round(page.stat().st_size / 1e6, 1)
        peak = peak_gb()  # before Chromium, whose own memory would count as the largest child
        stages["HTML report opens in Chromium"] = {"seconds": _open_seconds(page)}
        rows = len(result.indicators)
        units = {k: v["count"] for k, v in result.summary["units"].items()}
    total = sum(
        v["seconds"] for k, v in stages.items() if k in ("import", "checkup total", "write results")
    )
    return {"stages": stages, "total_s": round(total, 2), "peak_gb": peak, "indicator_rows": rows,
            "report_mb": report_mb,
            "units": units, "buildings": int(bundle.manifest["layers"]["buildings"])}  # fmt: skip


def main() -> None:
    for name, _, out in sized_runs(__file__, __doc__, "small,medium,large", worker):
        print(f"\n{name}: {out['buildings']:,} buildings, units {out['units']}, {out['indicator_rows']:,} indicator rows, "
              f"total {out['total_s']} s, peak {out['peak_gb']} GB, HTML report {out['report_mb']} MB")  # fmt: skip
        print("| stage | seconds | peak GB (cumulative) |\n|---|---:|---:|")
        for stage, v in out["stages"].items():
            print(f"| {stage} | {v['seconds']} | {v.get('peak_gb', '')} |")


if __name__ == "__main__":
    main()
