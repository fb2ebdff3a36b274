"""How many health-check indicators have no data on the Helsinki demo before and after every
register the built-in systems read is filled from `cityos template` (seeded values, the fill of
tests/registers/test_template.py), added with `cityos register add`, and checked again.

    make demo && .venv/bin/python benchmarks/registers_demo.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cityos.cli import main  # noqa: E402
from tests.registers.test_template import REGISTERS, fill  # noqa: E402


def counts(results: Path) -> tuple[int, int, int, int, pd.DataFrame]:
    ind = pd.read_parquet(results / "indicators.parquet")
    city = ind[ind["level"] == "city"]
    mohurd = city[city["system"] == "mohurd-2024"]
    gone = city[city["status"] == "no_data"][["system", "indicator_id", "name_zh", "note"]]
    return (int((mohurd["status"] == "no_data").sum()), len(mohurd),
            int((city["status"] == "no_data").sum()), len(city), gone)  # fmt: skip


def run() -> int:
    demo = REPO / "demo" / "helsinki"
    if not demo.is_dir():
        print("no demo bundle: run `make demo` first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bundle = root / "bundle"
        shutil.copytree(demo, bundle)
        assert main(["template", str(bundle), "--out", str(root / "forms"), "-q"]) == 0
        for seed, name in enumerate(REGISTERS):
            fill(root / "forms" / f"{name}.xlsx", root / f"{name}.xlsx", seed)
            assert main(["register", "add", str(bundle), f"{name}={root / name}.xlsx", "-q"]) == 0
        rows = []
        for label, b in (("before", demo), ("after", bundle)):
            out = root / f"check_{label}"
            assert main(["checkup", str(b), "--out", str(out), "-q"]) == 0
            m, mn, a, an, gone = counts(out)
            rows.append((label, m, mn, a, an))
        print(
            "city-level indicators without data (default systems: mohurd-2024, complete-community, sdg-11)"
        )
        print(f"{'':<8}{'mohurd-2024':>14}{'all systems':>14}")
        for label, m, mn, a, an in rows:
            print(f"{label:<8}{f'{m} of {mn}':>14}{f'{a} of {an}':>14}")
        print("\nstill without data after, and why:")
        print(gone.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(run())
