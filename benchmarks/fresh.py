"""Shared by the benchmarks that run each seeded synthetic city in a fresh process: the peak
memory they report, and the loop over sizes (``--sizes``) with its hidden ``--worker`` mode."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench_import import SIZES
from synthetic_osm import cached_city


def peak_gb() -> float:
    """Peak resident memory (GB) of this process plus its largest child (the import's building
    reader): ru_maxrss of both, summed, an upper bound of the two running together."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round((own + kids) / 1024 / 1024, 2)


def sized_runs(
    script: str, doc: str | None, default_sizes: str, worker: Callable[[str], dict[str, Any]]
) -> Iterator[tuple[str, Path, dict[str, Any]]]:
    """Each size of ``--sizes`` (default ``default_sizes``) run by ``script --worker PBF`` in a
    fresh interpreter: yields (size, extract, the worker's result); a failed run is printed and
    skipped. Called as that worker, prints ``worker(PBF)`` as JSON and exits."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default=default_sizes)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker), ensure_ascii=False))
        raise SystemExit(0)
    for name in args.sizes.split(","):
        pbf = cached_city(SIZES[name])
        res = subprocess.run([sys.executable, script, "--worker", str(pbf)],
                             capture_output=True, text=True, check=False)  # fmt: skip
        if res.returncode != 0:
            print(f"{name}: failed: {res.stderr.strip().splitlines()[-1:]}")
            continue
        yield name, pbf, json.loads(res.stdout.strip().splitlines()[-1])
