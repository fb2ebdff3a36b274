"""Write a health check's results folder atomically.

RESULTS/
  indicators.parquet, indicators.csv   one row per unit × indicator (CSV in UTF-8 with BOM for Excel)
  access.parquet                       per building and facility category: distance_m, facility_id
  problems.csv                         the problem list (问题清单): failing units and the cause
  units.gpkg                           one layer per level, indicator values as columns
  summary.json                         systems, data, population method, status counts
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cityos.atomic import atomic_folder
from cityos.checkup.engine import CheckupResult

__all__ = ["RESULT_FILES", "write_results"]

RESULT_FILES = (
    "indicators.parquet",
    "indicators.csv",
    "access.parquet",
    "problems.csv",
    "units.gpkg",
    "summary.json",
)


def write_results(
    result: CheckupResult, out: str | os.PathLike[str], *, force: bool = False
) -> Path:
    """Write ``result`` into the folder ``out`` (temporary folder, then renamed)."""
    target = Path(out)
    with atomic_folder(target, force=force) as tmp:
        result.indicators.to_parquet(tmp / "indicators.parquet", index=False)
        result.indicators.to_csv(tmp / "indicators.csv", index=False, encoding="utf-8-sig")
        access = result.access.copy()
        access.attrs = {}
        access.to_parquet(tmp / "access.parquet", index=False)
        result.problems.to_csv(tmp / "problems.csv", index=False, encoding="utf-8-sig")
        for level, layer in result.units.items():
            layer.to_file(tmp / "units.gpkg", layer=level, driver="GPKG")
        (tmp / "summary.json").write_text(
            json.dumps(result.summary, ensure_ascii=False, indent=2, default=str) + "\n", "utf-8"
        )
    return target
