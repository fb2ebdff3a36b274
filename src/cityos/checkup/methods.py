"""Indicator methods: small pure functions from frames to one value per unit.

Each returns a DataFrame indexed by ``unit_id`` with the numerator, the denominator and the
``value``, so every number can be traced; a unit whose denominator is zero gets ``value`` NaN
(no data), never 0. Definitions follow ../shared/STANDARDS.md §11.1:

* PopCov(F, d, U) = Σ POP of buildings in U within d of F ÷ Σ POP in U × 100
* AreaCov(F, d, U) = area(RES ∩ U ∩ SA(F, d)) ÷ area(RES ∩ U) × 100
* per-capita area = Σ area of features in U ÷ Σ POP in U (m²/person)
* register counts: rows of a register flagged true, aggregated from buildings (or units) to units
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from cityos.errors import InputError
from cityos.network.access import TOLERANCE_M

__all__ = [
    "ParkTier",
    "area_coverage",
    "park_service_area",
    "per_capita_area",
    "population_coverage",
    "register_count",
]

_TRUE = {"1", "true", "yes", "y", "是", "有", "√", "x"}


def _frame(num: pd.Series, den: pd.Series, scale: float, index: pd.Index) -> pd.DataFrame:
    num = num.reindex(index, fill_value=0.0).astype(float)
    den = den.reindex(index, fill_value=0.0).astype(float)
    value = np.where(den > 0, num / den.where(den > 0, 1.0) * scale, np.nan)
    return pd.DataFrame({"numerator": num, "denominator": den, "value": value}, index=index)


def population_coverage(
    distance_m: pd.Series,
    population: pd.Series,
    unit_of: pd.Series,
    *,
    radius_m: float,
    units: Sequence[str],
) -> pd.DataFrame:
    """PopCov: the share (%) of each unit's residents within ``radius_m`` of a facility.

    Parameters
    ----------
    distance_m
        Distance from each building to the nearest facility (NaN or inf: none in reach).
    population
        Residents per building (same index).
    unit_of
        Unit id of each building (same index; None outside every unit).
    radius_m
        The service radius in metres (a building exactly at the radius is covered).
    units
        All unit ids of the level (units without residents get NaN).
    """
    if radius_m < 0:
        raise InputError(f"radius must be >= 0 m, got {radius_m}")
    d = distance_m.astype(float).fillna(np.inf)
    pop = population.astype(float)
    covered = pop.where(d <= radius_m + TOLERANCE_M, 0.0)
    frame = pd.DataFrame({"unit": unit_of, "pop": pop, "covered": covered}).dropna(subset=["unit"])
    grouped = frame.groupby("unit")
    return _frame(
        grouped["covered"].sum(), grouped["pop"].sum(), 100.0, pd.Index(units, name="unit_id")
    )


def area_coverage(
    served: shapely.Geometry,
    residential_land: gpd.GeoDataFrame,
    units: gpd.GeoDataFrame,
) -> pd.DataFrame:
    """AreaCov: the share (%) of each unit's residential land inside the served area.

    All inputs in the same projected CRS; ``units`` has a ``unit_id`` column.
    """
    res = (
        shapely.union_all(residential_land.geometry.to_numpy())
        if len(residential_land)
        else shapely.Polygon()
    )
    unit_geoms = units.geometry.to_numpy()
    res_in_unit = shapely.intersection(unit_geoms, res)
    den = pd.Series(shapely.area(res_in_unit), index=units["unit_id"].to_numpy())
    num = pd.Series(
        shapely.area(shapely.intersection(res_in_unit, served)), index=units["unit_id"].to_numpy()
    )
    return _frame(num, den, 100.0, pd.Index(units["unit_id"], name="unit_id"))


def per_capita_area(
    features: gpd.GeoDataFrame,
    population_by_unit: pd.Series,
    units: gpd.GeoDataFrame,
) -> pd.DataFrame:
    """Σ area (m²) of the features' parts inside each unit ÷ the unit's residents (m²/person).

    Overlapping features are dissolved first, so shared ground is counted once.
    """
    merged = shapely.union_all(features.geometry.to_numpy()) if len(features) else shapely.Polygon()
    area = pd.Series(
        shapely.area(shapely.intersection(units.geometry.to_numpy(), merged)),
        index=units["unit_id"].to_numpy(),
    )
    return _frame(area, population_by_unit, 1.0, pd.Index(units["unit_id"], name="unit_id"))


def register_count(
    register: pd.DataFrame,
    *,
    key: str,
    column: str,
    unit_of: pd.Series,
    units: Sequence[str],
) -> tuple[pd.DataFrame, int]:
    """Count register rows flagged true in ``column`` per unit, through their ``key``.

    ``unit_of`` maps key values (building ids, or unit ids themselves) to unit ids. Returns the
    per-unit frame (numerator = flagged rows, denominator = register rows matched to the unit,
    value = flagged count) and the number of register rows whose key matched nothing.
    """
    for col in (key, column):
        if col not in register:
            raise InputError(
                f"register: no column '{col}'; the register needs '{key}' and '{column}'"
            )
    flag = register[column].astype(str).str.strip().str.lower().isin(_TRUE) | (
        pd.to_numeric(register[column], errors="coerce").fillna(0) > 0
    )
    unit = register[key].astype(str).map(unit_of.astype(object).to_dict())
    unmatched = int(unit.isna().sum())
    frame = pd.DataFrame({"unit": unit, "flag": flag.astype(float)}).dropna(subset=["unit"])
    grouped = frame.groupby("unit")["flag"]
    index = pd.Index(units, name="unit_id")
    num = grouped.sum().reindex(index, fill_value=0.0)
    den = grouped.size().reindex(index, fill_value=0).astype(float)
    value = np.where(den > 0, num, np.nan)
    return pd.DataFrame(
        {"numerator": num, "denominator": den, "value": value}, index=index
    ), unmatched


ParkTier = tuple[float, float, float]  # (min area m², max area m² (inf = none), radius m)


def park_service_area(
    green_spaces: gpd.GeoDataFrame, tiers: Sequence[ParkTier]
) -> shapely.Geometry:
    """The area within the tiered service radius of the parks (straight-line 服务半径).

    A park of area A serves the ground within radius r of its boundary, for the tier with
    ``min ≤ A < max``; parks below every tier serve nothing. E.g. the 2021 health check:
    ``[(5000, inf, 500), (2000, 5000, 300)]`` (STANDARDS §5, [C] S7). ``green_spaces`` needs
    ``area_m2`` and a projected CRS.
    """
    parts = []
    area = green_spaces["area_m2"].to_numpy(dtype=float)
    geoms = green_spaces.geometry.to_numpy()
    for lo, hi, radius in tiers:
        pick = (area >= lo) & (area < hi)
        if pick.any():
            parts.append(shapely.union_all(shapely.buffer(geoms[pick], radius)))
    return shapely.union_all(parts) if parts else shapely.Polygon()
