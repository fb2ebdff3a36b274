"""Spatial units at the health check's levels: city (城区), subdistrict (街道/街区) and community
(社区/小区); the fourth level, housing (住房), is the building itself.

Units come, in order of preference, from the city's own files (their ``level`` is explicit), from
OSM administrative boundaries (``admin_level`` mapped by ``data/admin_levels.toml`` or a table you
pass), and, for a level that neither provides, from a generated square grid over the buildings
(cell sizes in :data:`GRID_SIZE_M`), marked ``generated`` in every output.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from importlib import resources
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from cityos.bundle import UNIT_LEVELS, Bundle
from cityos.errors import ConfigError, InputError
from cityos.threads import query_sliced

__all__ = [
    "GRID_SIZE_M",
    "UnitSet",
    "admin_level_table",
    "assign_to_units",
    "bundle_units",
    "square_grid",
    "units_by_level",
]

#: cell size (metres) of the generated grid per level: community 500 m (the fallback of
#: ../shared/STANDARDS.md §11.1, "a 500 m hex grid", here squares), subdistrict 2000 m (about a
#: 15-minute life circle of ≈ 3 km², TD/T 1062-2021); the city level is one unit covering all
GRID_SIZE_M: dict[str, float] = {"community": 500.0, "subdistrict": 2000.0}


def admin_level_table(country: str) -> dict[int, str]:
    """The built-in admin_level → level table of a country (ISO code, e.g. ``cn``, ``fi``)."""
    data = tomllib.loads(
        resources.files("cityos.data").joinpath("admin_levels.toml").read_text("utf-8")
    )
    countries = data.get("countries", {})
    if country not in countries:
        raise ConfigError(
            f"no admin_level table for country {country!r}; known: {', '.join(sorted(countries))}"
        )
    table = {int(k): str(v) for k, v in countries[country].items()}
    bad = set(table.values()) - set(UNIT_LEVELS)
    if bad:
        raise ConfigError(f"admin_levels.toml [{country}]: unknown levels {sorted(bad)}")
    return table


def square_grid(
    extent: tuple[float, float, float, float], size: float, crs: Any
) -> gpd.GeoDataFrame:
    """Square cells of ``size`` metres covering ``extent`` (minx, miny, maxx, maxy), in ``crs``."""
    if not size > 0:
        raise InputError(f"grid cell size must be positive, got {size}")
    # cells aligned to multiples of the size: the same city gets the same cell ids every year
    x0, y0 = np.floor(extent[0] / size) * size, np.floor(extent[1] / size) * size
    x1, y1 = extent[2], extent[3]
    nx = max(1, int(np.floor((x1 - x0) / size)) + 1)
    ny = max(1, int(np.floor((y1 - y0) / size)) + 1)
    ix, iy = np.meshgrid(np.arange(nx), np.arange(ny), indexing="xy")
    cells = shapely.box(
        x0 + ix.ravel() * size,
        y0 + iy.ravel() * size,
        x0 + (ix.ravel() + 1) * size,
        y0 + (iy.ravel() + 1) * size,
    )
    ids = [
        f"grid{size:g}:{int(x0 // size) + c}_{int(y0 // size) + r}"
        for r, c in zip(iy.ravel(), ix.ravel(), strict=True)
    ]
    return gpd.GeoDataFrame({"unit_id": ids, "name": ids}, geometry=cells, crs=crs)


@dataclass(frozen=True)
class UnitSet:
    """Units per level (GeoDataFrames in the measurement CRS) and where each level came from."""

    levels: dict[str, gpd.GeoDataFrame]
    sources: dict[str, str]

    def generated(self, level: str) -> bool:
        return self.sources[level].startswith("generated")


def units_by_level(
    units: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    *,
    crs: Any,
    admin_levels: Mapping[int, str] | None = None,
    grid_size_m: Mapping[str, float] | None = None,
    points: gpd.GeoSeries | None = None,
) -> UnitSet:
    """Units for each level: given (``level`` column), else OSM admin (``admin_level`` through
    ``admin_levels``), else generated (a square grid over the buildings; one unit for the city).

    Only units that contain at least one building are kept for generated grids. ``points`` may
    give the buildings' points on surface in ``crs`` when the caller has them already.
    """
    sizes = {**GRID_SIZE_M, **(grid_size_m or {})}
    projected = units.to_crs(crs) if len(units) else units.set_crs(crs, allow_override=True)
    level = (
        projected["level"].copy()
        if "level" in projected
        else pd.Series([None] * len(projected), index=projected.index)
    )
    from_admin = pd.Series(False, index=projected.index)
    if admin_levels and "admin_level" in projected:
        mapped = projected["admin_level"].map(
            lambda v: admin_levels.get(int(v)) if pd.notna(v) else None
        )
        from_admin = level.isna() & mapped.notna()
        level = level.where(level.notna(), mapped)
    pts = points
    if pts is None:
        pts = gpd.GeoSeries(
            shapely.point_on_surface(buildings.to_crs(crs).geometry.to_numpy()), crs=crs
        )
    levels: dict[str, gpd.GeoDataFrame] = {}
    sources: dict[str, str] = {}
    for lv in UNIT_LEVELS:
        chosen = projected[level.eq(lv).to_numpy()]
        if len(chosen):
            levels[lv] = chosen.assign(level=lv, generated=False)[
                [
                    "unit_id",
                    "name",
                    "level",
                    "generated",
                    *[
                        c
                        for c in chosen.columns
                        if c not in ("unit_id", "name", "level", "generated", "geometry")
                    ],
                    "geometry",
                ]
            ]
            sources[lv] = "OSM admin_level" if from_admin[chosen.index].all() else "city files"
            continue
        if not len(pts):
            raise InputError(f"no units at level '{lv}' and no buildings to lay a grid over")
        if lv == "city":
            hull = shapely.convex_hull(shapely.multipoints(pts.to_numpy())).buffer(
                sizes.get("community", 500.0) / 2
            )
            grid = gpd.GeoDataFrame(
                {"unit_id": ["city"], "name": ["city"]}, geometry=[hull], crs=crs
            )
            sources[lv] = "generated: convex hull of the buildings + half a community cell"
        else:
            size = sizes[lv]
            grid = square_grid(tuple(pts.total_bounds), size, crs)
            occupied = np.unique(
                query_sliced(partial(grid.sindex.query, predicate="intersects"), pts.to_numpy())[1]
            )
            grid = grid.iloc[occupied].reset_index(drop=True)
            sources[lv] = f"generated: {size:g} m square grid"
        levels[lv] = grid.assign(level=lv, generated=True)[
            ["unit_id", "name", "level", "generated", "geometry"]
        ]
    return UnitSet(levels, sources)


def assign_to_units(points: gpd.GeoSeries, unit_set: UnitSet) -> pd.DataFrame:
    """For each point (e.g. a building's point on surface), the ``unit_id`` at each level that
    contains it, boundary included (the first in file order where units overlap or touch; None
    outside every unit)."""
    out = pd.DataFrame(index=points.index)
    for lv, frame in unit_set.levels.items():
        p = points.to_crs(frame.crs).to_numpy()
        b_idx, u_idx = query_sliced(partial(frame.sindex.query, predicate="intersects"), p)
        order = np.lexsort((u_idx, b_idx))
        b_idx, u_idx = b_idx[order], u_idx[order]
        first = np.r_[True, b_idx[1:] != b_idx[:-1]] if len(b_idx) else np.zeros(0, dtype=bool)
        ids = np.full(len(p), None, dtype=object)
        ids[b_idx[first]] = frame["unit_id"].to_numpy()[u_idx[first]]
        out[lv] = pd.Series(ids, index=points.index, dtype=object)
    return out


def bundle_units(
    bundle: Bundle,
    admin_levels: Mapping[int, str] | None = None,
    points: gpd.GeoSeries | None = None,
) -> UnitSet:
    """A bundle's units per level as the health check forms them: its own units (polygons
    repaired), OSM admin boundaries through ``admin_levels``, else generated grids (over
    ``points``, the buildings' points on surface in the bundle's CRS, when given)."""
    from cityos.validity import repair_polygons

    units = repair_polygons(bundle.units, f"{bundle.path}/units.parquet", "unit", ids="unit_id")
    return units_by_level(
        units, bundle.buildings, crs=bundle.crs, admin_levels=admin_levels, points=points
    )
