"""Results across cities: ``all_indicators.parquet``, ``cities.csv`` and the comparison report.

``all_indicators.parquet`` is every finished city's ``results/indicators.parquet`` with
``city_id``, ``city_name`` and ``adcode`` in front, in the order of the list of cities: one row
per city × unit × indicator, each value with its method, radius, sources and standard as the
city's results give them. A city that failed has no rows; it is in ``cities.csv`` with its error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from cityos.cities.table import STEPS, City
from cityos.cities.task import Settings
from cityos.outputs import write_table

__all__ = ["all_indicators", "cities_table", "write_cities_table", "write_combined"]

ALL_INDICATORS = "all_indicators.parquet"
CITIES_TABLE = "cities.csv"
LEVELS = ("community", "subdistrict", "city")
STATUSES = ("pass", "fail", "no_data", "no_target")


def cities_table(records: Sequence[dict[str, Any]], headline: Sequence[str]) -> pd.DataFrame:
    """One row per city: status, error, durations per step, sizes, status counts, headline
    indicators (empty where not measured: never zero)."""
    rows = []
    for r in records:
        counts = r.get("counts") or {}
        units = r.get("units") or {}
        durations = r.get("durations_s") or {}
        heads = r.get("headline") or {}
        row: dict[str, Any] = {
            "city_id": r["city_id"], "name": r.get("name"), "adcode": r.get("adcode"),
            "status": r["status"], "resumed": bool(r.get("resumed", False)),
            "failed_step": r.get("step") or None if r["status"] != "ok" else None,
            "error": r.get("error"), "attempts": r.get("attempts"), "worker": r.get("worker"),
            "extract_mb": (r["extract_bytes"] / 1e6 if r.get("extract_bytes") else None),
            "memory_request_gb": (r["memory_request"] / 1e9 if r.get("memory_request") else None),
            "memory_peak_gb": (r["memory_peak"] / 1e9 if r.get("memory_peak") else None),
            "buildings": r.get("buildings"), "facilities": r.get("facilities"),
            "population": r.get("population"),
            **{f"units_{lv}": units.get(lv) for lv in LEVELS},
            **{f"n_{s}": counts.get(s) for s in STATUSES},
            **{f"{step}_s": durations.get(step) for step in STEPS},
            "total_s": durations.get("total"),
            **{f"{i}": heads.get(i) for i in headline},
            "warnings": r.get("warnings_total"), "started": r.get("started"),
            "finished": r.get("finished"),
        }  # fmt: skip
        rows.append(row)
    table = pd.DataFrame(rows)
    for c in ("buildings", "facilities", "attempts", "warnings",
              *(f"units_{lv}" for lv in LEVELS), *(f"n_{s}" for s in STATUSES)):  # fmt: skip
        table[c] = pd.array(table[c].tolist(), dtype="Int64")
    return table


def write_cities_table(root: Path, records: Sequence[dict[str, Any]], settings: Settings) -> Path:
    """Write ``cities.csv`` (UTF-8 with BOM, for Excel)."""
    write_table(cities_table(records, settings.headline), root / CITIES_TABLE)
    return root / CITIES_TABLE


def all_indicators(
    root: Path, cities: Sequence[City], records: Sequence[dict[str, Any]]
) -> pd.DataFrame:
    """Every finished city's indicator table, ``city_id``, ``city_name``, ``adcode`` in front."""
    parts = []
    for city, record in zip(cities, records, strict=True):
        file = root / city.city_id / "results" / "indicators.parquet"
        if record["status"] != "ok" or not file.is_file():
            continue
        t = pd.read_parquet(file)
        t.insert(0, "adcode", city.adcode)
        t.insert(0, "city_name", city.name)
        t.insert(0, "city_id", city.city_id)
        parts.append(t)
    if not parts:
        return pd.DataFrame(columns=["city_id", "city_name", "adcode"])
    table = pd.concat(parts, ignore_index=True)
    for c in ("city_id", "city_name", "adcode"):
        table[c] = table[c].astype("string")
    return table


def write_combined(
    root: Path, cities: Sequence[City], records: Sequence[dict[str, Any]], settings: Settings,
    *, compare_report: bool = True,
) -> None:  # fmt: skip
    """Write ``all_indicators.parquet`` and the comparison report (HTML and XLSX)."""
    from cityos.cities.comparison import write_comparison

    table = all_indicators(root, cities, records)
    write_table(table, root / ALL_INDICATORS)
    if compare_report:
        write_comparison(root, cities, records, table, settings)
