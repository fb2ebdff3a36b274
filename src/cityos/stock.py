"""Stock-taking (全面摸清底数): per unit of every level, the buildings (by use, by age where the
housing-safety register knows it, floor area), the facilities by category, green space and
residential land, and the under-used building stock (the stock rules of siting: industrial,
storage, retail and office buildings, those marked vacant or disused, the idle-property
register) — as a workbook and a GeoPackage (``cityos stock``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from cityos.bundle import Bundle
from cityos.errors import InputError

__all__ = ["AGE_BANDS", "Stock", "take_stock", "under_used", "write_stock"]

#: year-built bands (first year of each; the last is open)
AGE_BANDS = ((0, "before_1980"), (1980, "1980_1999"), (2000, "2000_2019"), (2020, "from_2020"))
_USES = ("residential", "non_residential", "unknown")


def under_used(
    buildings: pd.DataFrame, registers: Mapping[str, pd.DataFrame], stock: Mapping[str, Any]
) -> pd.Series:
    """Why each building is under-used stock (aligned to ``buildings``; None: it is not): on
    the idle-property register, marked vacant or disused (``vacancy``), or of a building type
    the stock rules list.

    Raises
    ------
    InputError
        The register lacks its key column.
    """
    kinds, vacancy = set(stock.get("building", [])), set(stock.get("vacancy", []))
    by_type = buildings["building"].isin(kinds).to_numpy()
    by_vacancy = buildings["vacancy"].isin(vacancy).to_numpy()
    by_register = np.zeros(len(buildings), dtype=bool)
    name, key = str(stock.get("register", "")), str(stock.get("register_key", "building_id"))
    reg = registers.get(name)
    if reg is not None:
        if key not in reg:
            raise InputError(f"register '{name}' has no column '{key}'; it must list idle "
                             "buildings by the bundle's building ids")  # fmt: skip
        by_register = buildings["building_id"].isin(set(reg[key].astype(str))).to_numpy()
    reason = np.where(by_register, f"register {name}", np.where(
        by_vacancy, "vacancy=" + buildings["vacancy"].fillna("").astype(str),
        "building=" + buildings["building"].astype(str)))  # fmt: skip
    keep = by_type | by_vacancy | by_register
    out = pd.Series(reason, index=buildings.index).astype(object)
    return out.where(keep, None)


@dataclass(frozen=True)
class Stock:
    """Per level the units with their counts and areas (measurement CRS), and the under-used
    buildings."""

    units: dict[str, gpd.GeoDataFrame]
    under_used: gpd.GeoDataFrame


def _year_built(bundle: Bundle) -> pd.Series:
    reg = bundle.registers.get("housing_safety")
    if reg is None or "year_built" not in reg:
        return pd.Series(dtype=float)
    from cityos.registers.housing import current_state

    return pd.to_numeric(current_state(reg)["year_built"], errors="coerce")


def _area_in(units: gpd.GeoDataFrame, layer: gpd.GeoDataFrame) -> np.ndarray:
    """The area (m²) of ``layer``'s polygons inside each unit, overlaps dissolved first."""
    if layer.empty:
        return np.zeros(len(units))
    whole = shapely.union_all(shapely.make_valid(layer.geometry.to_numpy()))
    return np.asarray(shapely.area(shapely.intersection(units.geometry.to_numpy(), whole)))


def take_stock(
    bundle: Bundle, stock_rules: Mapping[str, Any], admin_levels: dict[int, str] | None = None
) -> Stock:
    """The inventory of a bundle per unit of every level, the units as the health check forms
    them. Floor areas are the bundle's (storeys × footprint where storeys are known or
    defaulted); ages come from the housing-safety register (blank elsewhere: unknown)."""
    from cityos.units import assign_to_units, bundle_units

    crs = bundle.crs
    unit_set = bundle_units(bundle, admin_levels)
    levels = unit_set.levels
    b = bundle.buildings.to_crs(crs)
    where = assign_to_units(gpd.GeoSeries(shapely.point_on_surface(b.geometry.to_numpy()), crs=crs),
                            unit_set)  # fmt: skip
    fac = bundle.facilities.to_crs(crs)
    fac_at = assign_to_units(gpd.GeoSeries(shapely.point_on_surface(fac.geometry.to_numpy()), crs=crs),
                             unit_set)  # fmt: skip
    year = b["building_id"].map(_year_built(bundle))
    band = pd.Series("unknown", index=b.index, dtype=object)
    for start, label in AGE_BANDS:
        band[year >= start] = label
    reason = under_used(b, bundle.registers, stock_rules)
    green = bundle.layers.get("green_spaces", gpd.GeoDataFrame(geometry=[], crs=4326)).to_crs(crs)
    land = bundle.layers.get("residential_land", gpd.GeoDataFrame(geometry=[], crs=4326)).to_crs(
        crs
    )
    area = b["floor_area_m2"].astype(float)
    out: dict[str, gpd.GeoDataFrame] = {}
    for lv, units in levels.items():
        ids = pd.Index(units["unit_id"].astype(str), name="unit_id")
        unit = where[lv].astype(object)
        frame = pd.DataFrame(index=ids)
        frame["buildings"] = unit.value_counts().reindex(ids, fill_value=0)
        frame["floor_area_m2"] = area.groupby(unit).sum().reindex(ids, fill_value=0.0)
        for use in _USES:
            mine = b["use"].eq(use)
            frame[f"{use}_buildings"] = unit[mine].value_counts().reindex(ids, fill_value=0)
            frame[f"{use}_floor_area_m2"] = (
                area[mine].groupby(unit[mine]).sum().reindex(ids, fill_value=0.0)
            )
        for _, label in (*AGE_BANDS, (None, "unknown")):
            mine = band.eq(label)
            frame[f"built_{label}"] = unit[mine].value_counts().reindex(ids, fill_value=0)
        idle = reason.notna()
        frame["under_used_buildings"] = unit[idle].value_counts().reindex(ids, fill_value=0)
        frame["under_used_floor_area_m2"] = (
            area[idle].groupby(unit[idle]).sum().reindex(ids, fill_value=0.0)
        )
        if len(fac):
            counts = pd.crosstab(fac_at[lv].astype(object), fac["category"]).reindex(
                ids, fill_value=0
            )
            for cat in sorted(counts.columns):
                frame[f"facilities_{cat}"] = counts[cat].astype(int)
        unit_area = shapely.area(units.geometry.to_numpy())
        frame["unit_area_m2"] = unit_area
        frame["green_space_m2"] = _area_in(units, green)
        frame["residential_land_m2"] = _area_in(units, land)
        with np.errstate(divide="ignore", invalid="ignore"):
            for col in ("green_space", "residential_land"):
                share = np.where(
                    unit_area > 0, frame[f"{col}_m2"].to_numpy() / unit_area * 100, np.nan
                )
                frame[f"{col}_share"] = np.clip(share, 0.0, 100.0)
        out[lv] = gpd.GeoDataFrame(
            frame.reset_index().assign(name=units["name"].to_numpy(), level=lv,
                                       generated=units["generated"].to_numpy()),
            geometry=units.geometry.to_numpy(), crs=crs,
        )  # fmt: skip
    idle_b = b[reason.notna()]
    listing = gpd.GeoDataFrame({
        "building_id": idle_b["building_id"].to_numpy(), "name": idle_b["name"].to_numpy(),
        "building": idle_b["building"].to_numpy(), "use": idle_b["use"].to_numpy(),
        "floor_area_m2": idle_b["floor_area_m2"].to_numpy(), "reason": reason[reason.notna()].to_numpy(),
        **{lv: where.loc[idle_b.index, lv].to_numpy() for lv in levels},
    }, geometry=idle_b.geometry.to_numpy(), crs=crs)  # fmt: skip
    return Stock(out, listing)


_SHEETS = {"city": "城区", "subdistrict": "街区", "community": "社区"}


def write_stock(result: Stock, folder: Path) -> None:
    """``stock.xlsx`` (a sheet per level and one of the under-used buildings; numbers at full
    precision) and ``stock.gpkg`` (the same as layers, for QGIS/ArcGIS) into ``folder``."""
    with pd.ExcelWriter(folder / "stock.xlsx", engine="openpyxl") as xl:
        for lv in ("city", "subdistrict", "community"):
            pd.DataFrame(result.units[lv].drop(columns="geometry")).to_excel(
                xl, sheet_name=f"{_SHEETS[lv]} {lv}", index=False)  # fmt: skip
        pd.DataFrame(result.under_used.drop(columns="geometry")).to_excel(
            xl, sheet_name="存量资源 under_used", index=False)  # fmt: skip
    for lv, frame in result.units.items():
        frame.to_crs(4326).to_file(folder / "stock.gpkg", layer=f"units_{lv}", engine="pyogrio")
    result.under_used.to_crs(4326).to_file(
        folder / "stock.gpkg", layer="under_used", engine="pyogrio"
    )
