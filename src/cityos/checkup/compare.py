"""Year-over-year comparison of two health checks: change per indicator and unit."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from cityos.errors import BundleError

__all__ = ["COMPARE_COLUMNS", "compare_results", "read_indicators"]

COMPARE_COLUMNS = (
    "system", "level", "unit_id", "unit_name", "indicator_id", "name_zh", "unit", "direction",
    "old", "new", "change", "trend", "old_status", "new_status",
)  # fmt: skip
_KEY = ["system", "level", "unit_id", "indicator_id"]
_NEEDED = {*_KEY, "value", "status", "direction", "name_zh", "unit", "unit_name"}


def read_indicators(results: str | os.PathLike[str]) -> pd.DataFrame:
    """``indicators.parquet`` of a results folder, checked to have the columns compare needs."""
    path = Path(results) / "indicators.parquet"
    if not path.is_file():
        raise BundleError(
            f"{results}: not a health-check results folder (no indicators.parquet); run `cityos checkup`"
        )
    frame = pd.read_parquet(path)
    missing = _NEEDED - set(frame.columns)
    if missing:
        raise BundleError(
            f"{path}: from another cityos version (missing {sorted(missing)}); run the checkup again"
        )
    return frame


def compare_results(
    old: pd.DataFrame, new: pd.DataFrame, *, tolerance: float = 1e-9
) -> pd.DataFrame:
    """Change per indicator and unit between two checkups: ``improved`` / ``worsened`` /
    ``unchanged`` by the indicator's direction, ``not_comparable`` where either year has no data
    or the unit or indicator exists in one year only."""
    merged = old.merge(new, on=_KEY, how="outer", suffixes=("_old", "_new"))
    change = merged["value_new"] - merged["value_old"]
    direction = merged["direction_new"].fillna(merged["direction_old"])
    better = np.where(direction == "lower", -change, change)
    trend = np.select(
        [change.isna(), np.abs(change) <= tolerance, better > 0],
        ["not_comparable", "unchanged", "improved"],
        default="worsened",
    )
    return pd.DataFrame({
        "system": merged["system"], "level": merged["level"], "unit_id": merged["unit_id"],
        "unit_name": merged["unit_name_new"].fillna(merged["unit_name_old"]),
        "indicator_id": merged["indicator_id"], "name_zh": merged["name_zh_new"].fillna(merged["name_zh_old"]),
        "unit": merged["unit_new"].fillna(merged["unit_old"]), "direction": direction,
        "old": merged["value_old"], "new": merged["value_new"], "change": change, "trend": trend,
        "old_status": merged["status_old"], "new_status": merged["status_new"],
    })[list(COMPARE_COLUMNS)]  # fmt: skip
