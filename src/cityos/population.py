"""Building-level population estimates (the health check's POP, ../shared/STANDARDS.md §11.1).

Two steps, each recorded in :attr:`PopulationEstimate.method`:

1. **Floor-area estimate.** Residents of a residential building = floor area ÷ floor area per
   person. The default, :data:`DEFAULT_AREA_PER_PERSON_M2` = 40 m² of building floor area per
   resident, is an assumption close to China's urban per-capita housing floor area in the 2020
   census (about 39–42 m²); it is **unconfirmed [R]**, so it is a parameter and the method record
   says so. Buildings whose use is unknown (most OSM ``building=yes``) count as residential when
   their representative point lies in residential land (``landuse=residential``), if given.
2. **Calibration** (dasymetric). When unit polygons with a population column are given, each
   unit's total is spread over its residential buildings in proportion to their floor-area
   estimates; when only a city total is given, every estimate is scaled to it. Units with
   population but no residential building keep their residents unallocated, and are listed.
3. **Plausibility.** A calibration factor above ``max_factor`` (default 3) or below its inverse
   means the buildings explain only a fraction of the unit's residents (the building data are
   incomplete there) or far more (the total is out of date, or many buildings are not homes):
   each such unit is listed in :attr:`PopulationEstimate.implausible` with a sentence for a
   planner, and its buildings are flagged in :attr:`PopulationEstimate.flagged`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from cityos.errors import InputError
from cityos.threads import query_sliced, sliced

__all__ = [
    "DEFAULT_AREA_PER_PERSON_M2",
    "PopulationEstimate",
    "estimate_population",
    "plausibility_message",
]

#: building floor area per resident (m²), an unconfirmed [R] default; see the module docstring
DEFAULT_AREA_PER_PERSON_M2 = 40.0


@dataclass(frozen=True)
class PopulationEstimate:
    """Residents per building and how they were estimated.

    Attributes
    ----------
    population
        Residents per building, aligned with the buildings given (0 for non-residential ones).
    residential
        Whether each building was counted as residential.
    method
        What produced the numbers: area per person, calibration source and factors, whether the
        default is confirmed.
    unallocated
        Units whose population found no residential building: unit id, name and population.
    implausible
        Calibration units whose factor lies beyond ``max_factor`` (or below its inverse): unit
        id, name, total, floor-area estimate, factor and the warning in English and Chinese.
    flagged
        Per building: whether its calibration unit is implausible.
    """

    population: pd.Series
    residential: pd.Series
    method: dict[str, Any]
    unallocated: pd.DataFrame = field(default_factory=pd.DataFrame)
    implausible: pd.DataFrame = field(default_factory=pd.DataFrame)
    flagged: pd.Series = field(default_factory=lambda: pd.Series(dtype=bool))


IMPLAUSIBLE_COLUMNS = ["unit_id", "name", "total", "estimate", "factor", "message", "message_zh"]


def plausibility_message(
    name: str, total: float, estimate: float, factor: float
) -> tuple[str, str]:
    """The warning for an implausible calibration, in English and Chinese.

    >>> plausibility_message("清华园街道", 84_000, 1_000, 84.0)[0][:52]
    "OSM buildings explain 1/84 of 清华园街道's population"
    """
    if factor >= 1:
        return (
            f"OSM buildings explain 1/{factor:.0f} of {name}'s population ({estimate:,.0f} residents "
            f"from floor area, unit total {total:,.0f}): the building data are incomplete here; "
            "population coverage indicators are unreliable",
            f"{name}：建筑数据仅能解释该单元人口的1/{factor:.0f}（按建筑面积估算{estimate:,.0f}人，"
            f"单元总人口{total:,.0f}人），此处建筑数据不完整，人口覆盖类指标不可靠",
        )
    return (
        f"OSM buildings' floor area suggests {1 / factor:.1f}× {name}'s population ({estimate:,.0f} "
        f"residents from floor area, unit total {total:,.0f}): the total may be out of date or many "
        "buildings are not homes; population coverage indicators are unreliable",
        f"{name}：按建筑面积估算的人口（{estimate:,.0f}人）是单元总人口（{total:,.0f}人）的"
        f"{1 / factor:.1f}倍，总人口可能过时或许多建筑并非住宅，人口覆盖类指标不可靠",
    )


def estimate_population(
    buildings: gpd.GeoDataFrame,
    *,
    area_per_person: float = DEFAULT_AREA_PER_PERSON_M2,
    residential_land: gpd.GeoDataFrame | None = None,
    units: gpd.GeoDataFrame | None = None,
    unit_population: str = "population",
    city_total: float | None = None,
    max_factor: float = 3.0,
    points: gpd.GeoSeries | None = None,
) -> PopulationEstimate:
    """Estimate residents per building, optionally calibrated to unit or city totals.

    Parameters
    ----------
    buildings
        The bundle's ``buildings`` layer (columns ``use`` and ``floor_area_m2``), any CRS.
    area_per_person
        Building floor area per resident in m² (default :data:`DEFAULT_AREA_PER_PERSON_M2`).
    residential_land
        Residential land polygons; buildings of unknown use inside them count as residential.
    units
        Unit polygons with a population column ``unit_population`` (e.g. subdistricts with a
        census or WorldPop total); every unit with a total is calibrated.
    city_total
        A total for the whole city, used when no units are given.
    max_factor
        Calibration factors above this, or below its inverse, are implausible (listed, flagged).
    points
        The buildings' points on surface (``shapely.point_on_surface``, same index and CRS)
        when the caller has them already; computed otherwise.

    Returns
    -------
    PopulationEstimate
        Residents per building (Series aligned with ``buildings``) and the method record.

    Formula: ``pop_b = floor_area_b / area_per_person``; calibrated:
    ``pop_b × total_U / Σ_{b' ∈ U} pop_b'`` for the unit ``U`` containing building ``b``.
    """
    if not area_per_person > 0:
        raise InputError(f"area per person must be positive (m²), got {area_per_person}")
    for col in ("use", "floor_area_m2"):
        if col not in buildings:
            raise InputError(
                f"buildings: missing column '{col}'; use a cityos bundle's buildings layer"
            )
    if units is not None and city_total is not None:
        raise InputError("give unit totals or a city total, not both")
    if points is None:
        points = gpd.GeoSeries(
            sliced(shapely.point_on_surface, buildings.geometry.to_numpy()),
            index=buildings.index,
            crs=buildings.crs,
        )
    residential = buildings["use"].eq("residential").to_numpy()
    unknown_in_res = 0
    if residential_land is not None and len(residential_land):
        land = residential_land.to_crs(buildings.crs)
        unknown = buildings["use"].eq("unknown").to_numpy()
        inside = np.zeros(len(buildings), dtype=bool)
        hit = query_sliced(partial(land.sindex.query, predicate="within"), points.to_numpy())[0]
        inside[np.unique(hit)] = True
        extra = unknown & inside
        unknown_in_res = int(extra.sum())
        residential = residential | extra
    floor = buildings["floor_area_m2"].to_numpy(dtype=float)
    raw = np.where(residential, floor / area_per_person, 0.0)
    method: dict[str, Any] = {
        "method": "floor area ÷ area per person",
        "area_per_person_m2": area_per_person,
        "area_per_person_confirmed": False,
        "area_per_person_note": "assumed ≈ China 2020 census urban per-capita housing floor area [R]",
        "residential_buildings": int(residential.sum()),
        "unknown_use_counted_in_residential_land": unknown_in_res,
        "calibration": "none",
    }
    if not max_factor > 1:
        raise InputError(f"the calibration plausibility factor must be > 1, got {max_factor}")
    pop = raw.copy()
    unallocated = pd.DataFrame(columns=["unit_id", "name", "population"])
    implausible = pd.DataFrame(columns=IMPLAUSIBLE_COLUMNS)
    flagged = np.zeros(len(raw), dtype=bool)
    if units is not None:
        pop, unallocated, info, implausible, flagged = _calibrate_to_units(
            points, raw, units, unit_population, max_factor
        )
        method.update(info)
    elif city_total is not None:
        if city_total < 0:
            raise InputError(f"city total must be >= 0, got {city_total}")
        base = raw.sum()
        if base <= 0:
            raise InputError("no residential floor area to spread the city total over")
        factor = city_total / base
        pop = raw * factor
        method.update({"calibration": "city total", "city_total": city_total, "factor": factor})
        if city_total > 0 and not 1 / max_factor <= factor <= max_factor:
            en, zh = plausibility_message("the city", city_total, base, factor)
            implausible = pd.DataFrame(
                [["city", "the city", city_total, base, factor, en, zh]],
                columns=IMPLAUSIBLE_COLUMNS,
            )
            flagged = raw > 0
    method["total"] = float(pop.sum())
    method["plausibility"] = {
        "max_factor": max_factor,
        "implausible_units": len(implausible),
    }
    return PopulationEstimate(
        pd.Series(pop, index=buildings.index, name="population"),
        pd.Series(residential, index=buildings.index, name="residential"),
        method,
        unallocated,
        implausible.reset_index(drop=True),
        pd.Series(flagged, index=buildings.index, name="flagged"),
    )


def _calibrate_to_units(
    points: gpd.GeoSeries, raw: np.ndarray, units: gpd.GeoDataFrame, column: str, max_factor: float
) -> tuple[np.ndarray, pd.DataFrame, dict[str, Any], pd.DataFrame, np.ndarray]:
    if column not in units:
        raise InputError(
            f"units: no population column '{column}'; name it or pass unit_population="
        )
    totals = pd.to_numeric(units[column], errors="coerce")
    units = units.assign(_total=totals.to_numpy()).loc[totals.notna().to_numpy()].to_crs(points.crs)
    if units.empty:
        raise InputError(f"units: column '{column}' has no numbers")
    # each building belongs to the first unit (in file order) containing its representative point
    b_idx, u_idx = query_sliced(partial(units.sindex.query, predicate="within"), points.to_numpy())
    order = np.lexsort((u_idx, b_idx))
    b_idx, u_idx = b_idx[order], u_idx[order]
    first = np.r_[True, b_idx[1:] != b_idx[:-1]] if len(b_idx) else np.zeros(0, dtype=bool)
    b_idx, u_idx = b_idx[first], u_idx[first]
    owner = np.full(len(raw), -1, dtype=np.int64)
    owner[b_idx] = u_idx
    base = np.bincount(u_idx, weights=raw[b_idx], minlength=len(units))
    total = units["_total"].to_numpy(dtype=float)
    factor = np.divide(total, base, out=np.zeros_like(total), where=base > 0)
    pop = np.where(owner >= 0, raw * factor[np.maximum(owner, 0)], raw)
    lost = (base <= 0) & (total > 0)
    ids = (
        units["unit_id"]
        if "unit_id" in units
        else pd.Series(units.index.astype(str), index=units.index)
    )
    names = units["name"] if "name" in units else pd.Series([None] * len(units), index=units.index)
    unallocated = pd.DataFrame(
        {"unit_id": ids.to_numpy()[lost], "name": names.to_numpy()[lost], "population": total[lost]}
    )
    odd = (base > 0) & (total > 0) & ((factor > max_factor) | (factor < 1 / max_factor))
    rows = []
    for k in np.flatnonzero(odd):
        name = str(names.iloc[k]) if pd.notna(names.iloc[k]) else str(ids.iloc[k])
        en, zh = plausibility_message(name, float(total[k]), float(base[k]), float(factor[k]))
        rows.append(
            [str(ids.iloc[k]), name, float(total[k]), float(base[k]), float(factor[k]), en, zh]
        )
    implausible = pd.DataFrame(rows, columns=IMPLAUSIBLE_COLUMNS)
    flagged = (owner >= 0) & odd[np.maximum(owner, 0)]
    info = {
        "calibration": f"unit totals ('{column}')",
        "calibrated_units": int((base > 0).sum()),
        "units_without_residential_buildings": int(lost.sum()),
        "unallocated_population": float(total[lost].sum()),
        "buildings_outside_units": int(((owner < 0) & (raw > 0)).sum()),
        "factor_median": float(np.median(factor[base > 0])) if (base > 0).any() else None,
    }
    return pop, unallocated, info, implausible, flagged
