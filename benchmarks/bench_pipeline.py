"""Benchmark: the whole pipeline of one city in one process chain — OSM extract → bundle →
health check (the three built-in systems) → results → renewal priorities → HTML report — on the
seeded synthetic cities of bench_import.py, seconds and peak memory by stage.

Each size runs in a fresh process (cached extracts in benchmarks/.cache). The health check's own
stages are those recorded in summary.json's ``timings_s``; peak memory is ru_maxrss of the
process plus its largest child (the import's building reader), cumulative.

Usage::

    .venv/bin/python benchmarks/bench_pipeline.py                  # the 1,000,000-building city
    .venv/bin/python benchmarks/bench_pipeline.py --sizes small,medium,large

Target (issue 16): the 1,000,000-building city from extract to report in under 90 s on 2 cores.
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

TARGET_S = 90.0


def worker(pbf: str) -> dict[str, object]:
    warnings.simplefilter("ignore")  # the synthetic city lacks some categories: not measured here
    import cityos
    from cityos.report import write_report

    stages: list[tuple[str, float, float | None]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)

        def timed(name: str, fn: object) -> object:
            t0 = time.perf_counter()
            out = fn()  # type: ignore[operator]
            stages.append((name, round(time.perf_counter() - t0, 2), peak_gb()))
            return out

        bundle = timed("import (extract → bundle)", lambda: cityos.import_city(root / "b", osm=pbf))
        result = timed("health check", lambda: cityos.checkup(bundle))
        inner = result.summary["timings_s"]  # type: ignore[attr-defined]
        timed("write results", lambda: cityos.write_results(result, root / "r"))  # type: ignore[arg-type]
        timed("renewal priorities", lambda: cityos.write_priorities(root / "r"))
        timed("HTML report", lambda: write_report(root / "r", root / "report.html"))
    total = round(sum(s for _, s, _ in stages), 2)
    return {"stages": stages, "checkup_stages": inner, "total_s": total, "peak_gb": peak_gb(),
            "buildings": int(bundle.manifest["layers"]["buildings"])}  # type: ignore[attr-defined]  # fmt: skip


def main() -> None:
    for name, pbf, out in sized_runs(__file__, __doc__, "large", worker):
        print(
            f"\n{name}: {out['buildings']:,} buildings, extract {pbf.stat().st_size / 1e6:.1f} MB"
        )
        print("| stage | seconds | peak GB (cumulative) |\n|---|---:|---:|")
        for stage, sec, peak in out["stages"]:
            print(f"| {stage} | {sec} | {peak} |")
            if stage == "health check":
                for inner, s in out["checkup_stages"].items():
                    print(f"| · {inner} | {s} | |")
        print(f"| **extract → report** | **{out['total_s']}** | {out['peak_gb']} |")
        print(f"target {TARGET_S:g} s: {out['total_s'] / TARGET_S:.2f}× the target "
              f"({'met' if out['total_s'] < TARGET_S else 'not met'})")  # fmt: skip


if __name__ == "__main__":
    main()
