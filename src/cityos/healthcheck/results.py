"""Write a health check's results folder atomically.

RESULTS/
  indicators.parquet, indicators.csv   one row per unit × indicator (CSV in UTF-8 with BOM for Excel)
  access.parquet                       per building and facility category: distance_m, facility_id
  problems.csv                         the problem list (问题清单): failing units and the cause
  units.gpkg                           one layer per level, indicator values as columns
  streets.parquet                      the report's basemap (so the folder carries its own map)
  summary.json                         results schema, systems, data, population method and its
                                       warnings, policy numbers, status counts

Every reader (``report``, ``renew``, ``compare``) goes through :func:`read_results`, which checks
that the folder is complete and of this results schema.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from cityos.errors import BundleError
from cityos.healthcheck.engine import RESULTS_SCHEMA, CheckupResult
from cityos.outputs import atomic_folder

__all__ = ["RESULT_FILES", "SavedResults", "as_number", "read_results", "write_results"]

RESULT_FILES = (
    "indicators.parquet",
    "indicators.csv",
    "access.parquet",
    "problems.csv",
    "units.gpkg",
    "streets.parquet",
    "summary.json",
)


def write_results(
    result: CheckupResult, out: str | os.PathLike[str], *, force: bool = False
) -> Path:
    """Write ``result`` into the folder ``out`` (temporary folder, then renamed)."""
    target = Path(out)
    with atomic_folder(target, force=force, kind="results") as tmp:
        access = result.access.copy()
        access.attrs = {}
        # a row per building and category (20 M rows for a city of 1 M buildings): zstd makes
        # it a third smaller than snappy in the same time; min/max of ids would help no reader.
        # Arrow writes it without the GIL, on a second thread while pandas writes the CSV
        # (4.9 s and 8.1 s on the 1M city, one after the other)
        with ThreadPoolExecutor(1) as pool:
            written = pool.submit(
                access.to_parquet, tmp / "access.parquet", index=False, compression="zstd",
                write_statistics=["category", "distance_m"],
            )  # fmt: skip
            result.indicators.to_parquet(tmp / "indicators.parquet", index=False)
            result.indicators.to_csv(tmp / "indicators.csv", index=False, encoding="utf-8-sig")
            written.result()
        result.problems.to_csv(tmp / "problems.csv", index=False, encoding="utf-8-sig")
        for level, layer in result.units.items():
            layer.to_file(tmp / "units.gpkg", layer=level, driver="GPKG")
        streets = result.streets
        if streets is None:
            streets = gpd.GeoDataFrame({"highway": []}, geometry=[], crs="EPSG:4326")
        streets.to_parquet(tmp / "streets.parquet", index=False)
        (tmp / "summary.json").write_text(
            json.dumps(result.summary, ensure_ascii=False, indent=2, default=str) + "\n", "utf-8"
        )
    return target


_INDICATOR_NEEDS = (
    "level",
    "indicator_id",
    "unit_id",
    "unit_name",
    "value",
    "status",
    "name_zh",
    "name_en",
    "unit",
    "target",
)


@dataclass(frozen=True)
class SavedResults:
    """A results folder read back: the indicator table, the problem list and the summary."""

    folder: Path
    indicators: pd.DataFrame
    problems: pd.DataFrame
    summary: dict[str, Any]


def read_results(folder: str | os.PathLike[str], *, also: Sequence[str] = ()) -> SavedResults:
    """Read a health-check results folder, checking it is complete (``also``: further files that
    must exist, e.g. ``units.gpkg``) and from this cityos version.

    Raises
    ------
    BundleError
        One line naming the folder and what is missing.
    """
    root = Path(folder)
    if not (root / "summary.json").is_file() and not (root / "indicators.parquet").is_file():
        raise BundleError(
            f"{root}: not a health-check results folder (no summary.json); run `cityos checkup`"
        )
    names = ("indicators.parquet", "problems.csv", "summary.json", *also)
    missing = [n for n in names if not (root / n).exists()]
    if missing:
        raise BundleError(
            f"{root}: not a complete health-check results folder (missing {', '.join(missing)}); run `cityos checkup`"
        )
    try:
        summary = json.loads((root / "summary.json").read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(
            f"{root / 'summary.json'}: damaged ({exc.__class__.__name__}); run `cityos checkup` again"
        ) from exc
    schema = summary.get("results_schema") if isinstance(summary, dict) else None
    if schema != RESULTS_SCHEMA:
        raise BundleError(
            f"{root}: results schema {schema or 1}, this cityos reads schema {RESULTS_SCHEMA}; "
            "run `cityos checkup` again"
        )
    indicators = _read_part(root / "indicators.parquet", pd.read_parquet)
    absent = [c for c in _INDICATOR_NEEDS if c not in indicators]
    if absent:
        raise BundleError(
            f"{root / 'indicators.parquet'}: from another cityos version (no column {absent[0]!r}); run the checkup again"
        )
    problems = _read_part(
        root / "problems.csv",
        lambda p: pd.read_csv(p, encoding="utf-8-sig", dtype={"unit_id": str}),
    )
    return SavedResults(root, indicators, problems, summary)


def _read_part(path: Path, read: Callable[[Path], pd.DataFrame]) -> pd.DataFrame:
    """One file of a results folder; a damaged one is a one-line :class:`BundleError`."""
    try:
        return read(path)
    except Exception as exc:  # pyarrow and the CSV parser raise many types for damaged files
        raise BundleError(
            f"{path}: damaged or not a cityos file ({exc.__class__.__name__}); run `cityos checkup` again"
        ) from exc


def as_number(value: Any) -> float | None:
    """A float, or None for missing and non-numbers (for JSON and spreadsheets)."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f
