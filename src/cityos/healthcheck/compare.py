"""Year-over-year comparison of two health checks: change per indicator and unit."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd

from cityos.errors import BundleError, CityosWarning, InputError
from cityos.healthcheck.policy import Policy
from cityos.healthcheck.results import read_results

__all__ = ["COMPARE_COLUMNS", "compare_results", "read_indicators"]

COMPARE_COLUMNS = (
    "system", "level", "unit_id", "unit_name", "indicator_id", "name_zh", "unit", "direction",
    "old", "new", "change", "trend", "old_status", "new_status",
)  # fmt: skip
_KEY = ["system", "level", "unit_id", "indicator_id"]
_NEEDED = {*_KEY, "value", "status", "direction", "name_zh", "unit", "unit_name"}


def read_indicators(results: str | os.PathLike[str]) -> pd.DataFrame:
    """``indicators.parquet`` of a results folder (read and checked by
    :func:`cityos.healthcheck.results.read_results`), with the columns compare needs."""
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
    old: pd.DataFrame,
    new: pd.DataFrame,
    *,
    policy: Policy | None = None,
    where: tuple[object, object] = ("the old results", "the new results"),
) -> pd.DataFrame:
    """Change per indicator and unit between two checkups: ``improved`` / ``worsened`` /
    ``unchanged`` by the indicator's direction, ``not_comparable`` where either year has no data
    or the unit or indicator exists in one year only. A change within the tolerance of the
    indicator's unit of measure (``policy.toml`` [compare]; default: the policy the new results
    were made with) is ``unchanged``."""
    policy = policy or Policy.from_record(new.attrs.get("policy"))
    _check_same_city(old, new, where)
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


#: below this share of units in common two health checks are probably of different places [OP]
SAME_CITY_SHARE = 0.5


def _check_same_city(old: pd.DataFrame, new: pd.DataFrame, where: tuple[object, object]) -> None:
    """Refuse two health checks that share no unit; warn when they share few (units renamed,
    another boundary vintage or another city)."""
    a = set(zip(old["level"], old["unit_id"].astype(str), strict=True))
    b = set(zip(new["level"], new["unit_id"].astype(str), strict=True))
    if not a or not b:
        return
    common = len(a & b) / min(len(a), len(b))
    if common == 0:
        raise InputError(
            f"{where[0]} and {where[1]} share no unit id: they are not of the same city or "
            "units; compare two health checks of the same place"
        )
    if common < SAME_CITY_SHARE:
        warnings.warn(
            f"{where[0]} and {where[1]} share only {common:.0%} of their units; the rest are "
            "not comparable (another boundary vintage or another place?)",
            CityosWarning,
            stacklevel=3,
        )
