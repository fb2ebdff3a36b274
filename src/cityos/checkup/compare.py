"""Year-over-year comparison of two health checks: change per indicator and unit."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from cityos.checkup.policy import Policy
from cityos.checkup.results import read_results
from cityos.errors import BundleError

__all__ = ["COMPARE_COLUMNS", "compare_results", "read_indicators"]

COMPARE_COLUMNS = (
    "system", "level", "unit_id", "unit_name", "indicator_id", "name_zh", "unit", "direction",
    "old", "new", "change", "trend", "old_status", "new_status",
)  # fmt: skip
_KEY = ["system", "level", "unit_id", "indicator_id"]
_NEEDED = {*_KEY, "value", "status", "direction", "name_zh", "unit", "unit_name"}


def read_indicators(results: str | os.PathLike[str]) -> pd.DataFrame:
    """``indicators.parquet`` of a results folder (read and checked by
    :func:`cityos.checkup.results.read_results`), with the columns compare needs."""
    saved = read_results(results)
    frame = saved.indicators
    missing = _NEEDED - set(frame.columns)
    if missing:
        raise BundleError(
            f"{saved.folder / 'indicators.parquet'}: from another cityos version (missing {sorted(missing)}); run the checkup again"
        )
    frame.attrs["policy"] = saved.summary.get("policy")
    return frame


def compare_results(
    old: pd.DataFrame, new: pd.DataFrame, *, policy: Policy | None = None
) -> pd.DataFrame:
    """Change per indicator and unit between two checkups: ``improved`` / ``worsened`` /
    ``unchanged`` by the indicator's direction, ``not_comparable`` where either year has no data
    or the unit or indicator exists in one year only. A change within the tolerance of the
    indicator's unit of measure (``policy.toml`` [compare]; default: the policy the new results
    were made with) is ``unchanged``."""
    policy = policy or Policy.from_record(new.attrs.get("policy"))
    merged = old.merge(new, on=_KEY, how="outer", suffixes=("_old", "_new"))
    change = merged["value_new"] - merged["value_old"]
    direction = merged["direction_new"].fillna(merged["direction_old"])
    unit = merged["unit_new"].fillna(merged["unit_old"]).astype(str)
    tolerance = unit.map(lambda u: policy.tolerance_for(u)).to_numpy(dtype=float)
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
