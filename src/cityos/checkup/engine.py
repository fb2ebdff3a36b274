"""The health-check engine: evaluate indicator systems on a city bundle, unit by unit.

For each indicator and each unit level at or above the indicator's own (a housing indicator is
counted per community, subdistrict and city; a coverage rate is computed per unit at each level),
the method gives numerator, denominator and value; a missing input gives ``no_data`` with the
reason, never 0. Registers (the city's own tables) are used when the bundle has them; otherwise an
indicator with an open-data ``proxy`` is computed from OSM and labelled as a proxy.

Status: ``pass`` / ``fail`` against the target; count-of-problems indicators (direction
``lower``, units 个/栋/套/条/处/起) without a published target fail on any case (implicit target
0, labelled); rates without a target get ``no_target``; missing data ``no_data``.
"""

from __future__ import annotations

import copy
import math
import time
import tomllib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from cityos.bundle import Bundle
from cityos.checkup.catalogue import BUILTIN_SYSTEMS, Indicator, IndicatorSystem, load_system
from cityos.checkup.methods import (
    area_coverage,
    park_service_area,
    population_coverage,
    register_count,
)
from cityos.errors import CityosWarning, ConfigError, InputError
from cityos.network import (
    TOLERANCE_M,
    accessibility_table,
    graph_from_bundle,
    nearest,
    service_area,
    snap_points,
)
from cityos.population import DEFAULT_AREA_PER_PERSON_M2, PopulationEstimate, estimate_population
from cityos.units import UnitSet, assign_to_units, units_by_level

__all__ = [
    "INDICATOR_COLUMNS",
    "CheckupContext",
    "CheckupResult",
    "categories_of",
    "checkup",
    "checkup_with",
]

UNIT_LEVEL_ORDER = ("community", "subdistrict", "city")
COUNT_UNITS = {"个", "栋", "套", "条", "处", "起", "条/处"}
#: columns of indicators.parquet / indicators.csv
INDICATOR_COLUMNS = (
    "unit_id", "unit_name", "level", "indicator_id", "name_zh", "name_en", "value", "unit", "target",
    "status", "confirmed", "method", "radius_m", "sources", "system", "numerator", "denominator",
    "target_op", "target_source", "generated_unit", "note", "direction", "dimension",
)  # fmt: skip
#: residential land fallback: residential building footprints buffered by this much (STANDARDS §11.1)
RES_BUFFER_M = 15.0
#: green spaces are reached at their edge, sampled this often (metres): entrances are not mapped
GREEN_EDGE_STEP_M = 25.0


@dataclass
class CheckupResult:
    """What a health check produced (see :func:`checkup`)."""

    indicators: pd.DataFrame
    access: pd.DataFrame
    problems: pd.DataFrame
    units: dict[str, gpd.GeoDataFrame]
    summary: dict[str, Any]


@dataclass
class _Eval:
    frames: dict[str, pd.DataFrame] = field(
        default_factory=dict
    )  # level → numerator/denominator/value
    method: str = ""
    radius_m: float | None = None
    note: str = ""
    no_data: str | None = None
    missing: dict[str, list[str]] = field(default_factory=dict)  # unit → items it lacks
    uncovered: pd.Series | None = None  # per building: a resident not reached (coverage)


class CheckupContext:
    """Everything the methods share, computed once per check: units, the buildings' points and
    residents, the walking graph and distances (also used by facility siting, so that its
    coverage figures are the health check's own). ``categories`` limits the walking-distance
    table to those facility categories (default: every category in the bundle)."""

    def __init__(self, bundle: Bundle, *, cutoff_m: float, area_per_person: float,
                 admin_levels: dict[int, str] | None, city_population: float | None = None,
                 distance: str | None = None, categories: Sequence[str] | None = None) -> None:  # fmt: skip
        self.distance_override = distance
        self.categories = None if categories is None else sorted(set(categories))
        self.bundle = bundle
        self.crs = bundle.crs
        self.cutoff_m = cutoff_m
        self.buildings = bundle.projected("buildings")
        if self.buildings.empty:
            raise InputError(
                f"{bundle.path}: the bundle has no buildings; the health check needs them"
            )
        self.points = gpd.GeoSeries(
            shapely.point_on_surface(self.buildings.geometry.to_numpy()),
            index=self.buildings.index,
            crs=self.crs,
        )
        self.unit_set: UnitSet = units_by_level(
            bundle.units, bundle.buildings, crs=self.crs, admin_levels=admin_levels
        )
        self.unit_of = assign_to_units(self.points, self.unit_set)
        calib_level = next(
            (lv for lv in UNIT_LEVEL_ORDER if "population" in self.unit_set.levels[lv]
             and pd.to_numeric(self.unit_set.levels[lv]["population"], errors="coerce").notna().any()),
            None,
        )  # fmt: skip
        self.population: PopulationEstimate = estimate_population(
            self.buildings,
            area_per_person=area_per_person,
            residential_land=bundle.projected("residential_land"),
            units=self.unit_set.levels[calib_level]
            if calib_level and city_population is None
            else None,
            city_total=city_population,
        )
        self.facilities = bundle.projected("facilities")
        self._distances: dict[tuple[tuple[str, ...], str], pd.Series] = {}
        self.warned: set[tuple[str, str]] = set()
        self._owners: dict[tuple[str, str], NDArray[np.object_]] = {}

    def with_facilities(self, bundle: Bundle) -> CheckupContext:
        """This context for ``bundle``, a copy of its own bundle with other facilities (a
        scenario): units, population, the graph and the buildings' snapping are kept; everything
        that depends on facilities is recomputed."""
        if bundle.buildings is not self.bundle.buildings and not bundle.buildings.equals(
            self.bundle.buildings
        ):
            raise InputError("with_facilities: the bundles differ in more than their facilities")
        other = copy.copy(self)
        other.bundle = bundle
        other.facilities = bundle.projected("facilities")
        other._distances = {}
        other.warned = set()
        other.__dict__.pop("access", None)
        return other

    @cached_property
    def graph(self) -> Any:
        return graph_from_bundle(self.bundle)

    @cached_property
    def access(self) -> pd.DataFrame:
        cats = sorted(self.facilities["category"].unique())
        if self.categories is not None:
            cats = [c for c in cats if c in self.categories]
        if not cats or self.bundle.walk_edges.empty:
            return pd.DataFrame(columns=["building_id", "category", "distance_m", "facility_id"])
        return accessibility_table(
            self.bundle, categories=cats, cutoff=self.cutoff_m, graph=self.graph
        )

    def distance(self, categories: Sequence[str], method: str) -> pd.Series | None:
        """Distance from each building to the nearest facility of any of ``categories``.

        A category ``green_space`` (optionally ``green_space>=AREA_M2``) means the public green
        spaces of at least that area, reached at any point of their edge (sampled every
        :data:`GREEN_EDGE_STEP_M` metres, since entrances are not mapped).
        """
        green = [c for c in categories if c.startswith("green_space")]
        present = [
            c for c in categories if c not in green and (self.facilities["category"] == c).any()
        ]
        parts = [self._facility_distance(tuple(sorted(present)), method)] if present else []
        parts += [d for c in green if (d := self._green_distance(c, method)) is not None]
        if not parts:
            return None
        return pd.concat(parts, axis=1).min(axis=1, skipna=True)

    def _facility_distance(self, present: tuple[str, ...], method: str) -> pd.Series:
        key = (present, method)
        if key not in self._distances:
            if method == "network" and not self.bundle.walk_edges.empty:
                acc = self.access[self.access["category"].isin(present)]
                d = acc.groupby("building_id", observed=True)["distance_m"].min()
            else:
                table = accessibility_table(
                    self.bundle, categories=list(present), cutoff=self.cutoff_m, method="euclidean"
                )
                d = table.groupby("building_id", observed=True)["distance_m"].min()
            self._distances[key] = pd.Series(
                d.reindex(self.buildings["building_id"]).to_numpy(), index=self.buildings.index
            )
        return self._distances[key]

    def _green_distance(self, category: str, method: str) -> pd.Series | None:
        key = ((category,), method)
        if key not in self._distances:
            min_area = float(category.split(">=", 1)[1]) if ">=" in category else 0.0
            parks = self.bundle.projected("green_spaces")
            parks = parks[parks["area_m2"] >= min_area]
            if parks.empty:
                return None
            edge = shapely.segmentize(
                shapely.boundary(parks.geometry.to_numpy()), GREEN_EDGE_STEP_M
            )
            pts = shapely.points(shapely.get_coordinates(edge))
            if method == "network" and not self.bundle.walk_edges.empty:
                res = nearest(
                    self.graph, self.origins, snap_points(self.graph, pts), cutoff=self.cutoff_m
                )
                dist = res.distance
            else:
                tree = shapely.STRtree(parks.geometry.to_numpy())
                _, d = tree.query_nearest(
                    self.points.to_numpy(), return_distance=True, all_matches=False
                )
                dist = d
            self._distances[key] = pd.Series(
                np.where(np.isfinite(dist), dist, np.nan), index=self.buildings.index
            )
        return self._distances[key]

    @cached_property
    def origins(self) -> Any:
        return snap_points(self.graph, self.points.to_numpy())

    @cached_property
    def residential_pieces(self) -> tuple[NDArray[np.object_], str]:
        """RES ∩ community, one geometry per community unit, and where RES came from.

        RES is ``landuse=residential`` when the bundle has it, else the footprints of residential
        buildings grown by :data:`RES_BUFFER_M` on every side (mitred corners; the STANDARDS §11.1
        fallback), dissolved per community so that a million buildings never become one union.
        """
        units = self.units("community")
        geoms = units.geometry.to_numpy()
        land = self.bundle.projected("residential_land")
        if len(land):
            merged = shapely.union_all(land.geometry.to_numpy())
            return shapely.intersection(geoms, merged), "landuse=residential"
        res = self.population.residential.to_numpy()
        # mitred corners: a rectangle stays a rectangle, which keeps the unions cheap
        buffers = shapely.buffer(
            self.buildings.geometry.to_numpy()[res], RES_BUFFER_M, join_style="mitre"
        )
        owner = self.unit_of["community"].to_numpy()[res]
        index = {uid: k for k, uid in enumerate(units["unit_id"])}
        pieces = np.array([shapely.Polygon()] * len(units), dtype=object)
        frame = pd.DataFrame({"owner": owner, "k": np.arange(len(owner))}).dropna(subset=["owner"])
        for uid, rows in frame.groupby("owner")["k"]:
            k = index[uid]
            pieces[k] = shapely.intersection(geoms[k], shapely.union_all(buffers[rows.to_numpy()]))
        return pieces, f"residential building footprints grown {RES_BUFFER_M:g} m (mitred) [OP]"

    def method_of(self, params: Any) -> str:
        """The distance method of an indicator: its own (default network), unless overridden."""
        return self.distance_override or str(params.get("distance", "network"))

    def owner_of(self, base: str, level: str) -> NDArray[np.object_]:
        """For each unit of ``base``, the unit of ``level`` holding its representative point."""
        key = (base, level)
        if key not in self._owners:
            units = self.units(base)
            pts = gpd.GeoSeries(shapely.point_on_surface(units.geometry.to_numpy()), crs=self.crs)
            self._owners[key] = assign_to_units(
                pts, UnitSet({level: self.units(level)}, {level: ""})
            )[level].to_numpy()
        return self._owners[key]

    def residential_coverage(
        self, served: shapely.Geometry, levels: Sequence[str]
    ) -> dict[str, pd.DataFrame]:
        """AreaCov per unit: residential land inside ``served`` ÷ residential land. Communities
        are measured directly; higher levels sum the communities whose point they hold."""
        pieces, _ = self.residential_pieces
        ids = self.units("community")["unit_id"].to_numpy()
        num = shapely.area(shapely.intersection(pieces, served))
        den = shapely.area(pieces)
        out = {}
        for lv in levels:
            lv_ids = list(self.units(lv)["unit_id"])
            if lv == "community":
                n, d = pd.Series(num, index=ids), pd.Series(den, index=ids)
            else:
                owner = self.owner_of("community", lv)
                frame = pd.DataFrame({"unit": owner, "num": num, "den": den}).dropna(
                    subset=["unit"]
                )
                n, d = frame.groupby("unit")["num"].sum(), frame.groupby("unit")["den"].sum()
            n, d = n.reindex(lv_ids, fill_value=0.0), d.reindex(lv_ids, fill_value=0.0)
            out[lv] = pd.DataFrame(
                {
                    "numerator": n,
                    "denominator": d,
                    "value": np.where(d > 0, n / d.where(d > 0, 1.0) * 100.0, np.nan),
                },
                index=pd.Index(lv_ids, name="unit_id"),
            )
        return out

    def units(self, level: str) -> gpd.GeoDataFrame:
        return self.unit_set.levels[level]


class _Stages:
    """Wall-clock seconds per stage of a check (kept in the summary)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._t = time.perf_counter()

    def mark_start(self) -> None:
        self._t = time.perf_counter()

    def mark(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = round(self.seconds.get(stage, 0.0) + now - self._t, 3)
        self._t = now


def categories_of(indicator: Indicator) -> set[str]:
    """The facility categories an indicator uses: in its params, its proxy, and the items or
    rules of composite methods (``green_space`` pseudo-categories included)."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "categories":
                    found.update(str(c) for c in item)
                else:
                    walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(dict(indicator.params))
    walk(dict(indicator.proxy or {}))
    return found


def _levels_for(indicator: Indicator) -> list[str]:
    start = (
        0
        if indicator.level in ("housing", "community")
        else UNIT_LEVEL_ORDER.index(indicator.level)
    )
    return list(UNIT_LEVEL_ORDER[start:])


def _served(
    ctx: CheckupContext, categories: Sequence[str], radius: float, distance: str
) -> shapely.Geometry:
    fac = ctx.facilities[ctx.facilities["category"].isin(categories)]
    if distance == "network" and not ctx.bundle.walk_edges.empty:
        snapped = snap_points(ctx.graph, fac.geometry.to_numpy())
        return service_area(ctx.graph, snapped, distance=radius).polygon
    return shapely.union_all(shapely.buffer(fac.geometry.to_numpy(), radius))


def _coverage(ctx: CheckupContext, ind: Indicator, params: Any, levels: list[str]) -> _Eval:
    cats = list(params["categories"])
    radius = float(params["radius_m"])
    measure = params["measure"]
    distance = ctx.method_of(params)
    if measure == "population" and ctx.distance(cats, distance) is None:
        return _Eval(no_data=f"no facilities of {', '.join(cats)} in the bundle")
    if measure != "population" and not (ctx.facilities["category"].isin(cats)).any():
        return _Eval(no_data=f"no facilities of {', '.join(cats)} in the bundle")
    ev = _Eval(
        method=f"coverage of {measure} within {radius:g} m ({distance}) of {', '.join(cats)}",
        radius_m=radius,
    )
    if measure == "population":
        d = ctx.distance(cats, distance)
        assert d is not None
        ev.uncovered = (ctx.population.population > 0) & ~(d.fillna(np.inf) <= radius + TOLERANCE_M)
        for lv in levels:
            ev.frames[lv] = population_coverage(
                d,
                ctx.population.population,
                ctx.unit_of[lv],
                radius_m=radius,
                units=list(ctx.units(lv)["unit_id"]),
            )
        return ev
    served = _served(ctx, cats, radius, distance)
    if measure == "residential_area":
        ev.frames = ctx.residential_coverage(served, levels)
        ev.note = f"residential land: {ctx.residential_pieces[1]}"
    else:
        for lv in levels:
            units = ctx.units(lv)
            whole = gpd.GeoDataFrame(geometry=units.geometry.to_numpy(), crs=ctx.crs)
            ev.frames[lv] = area_coverage(served, whole, units)
        ev.note = "share of unit area"
    return ev


def _park_coverage(ctx: CheckupContext, ind: Indicator, params: Any, levels: list[str]) -> _Eval:
    rules = tomllib.loads(
        resources.files("cityos.checkup").joinpath("parks.toml").read_text("utf-8")
    )["rule_sets"]
    name = params["rule_set"]
    if name not in rules:
        raise ConfigError(
            f"indicator {ind.id}: unknown park rule set {name!r}; known: {', '.join(rules)}"
        )
    tiers = [
        (float(lo), math.inf if hi == "inf" else float(hi), float(r))
        for lo, hi, r in rules[name]["tiers"]
    ]
    parks = ctx.bundle.projected("green_spaces")
    if parks.empty:
        return _Eval(no_data="no public green spaces in the bundle")
    served = park_service_area(parks, tiers)
    ev = _Eval(
        method=f"park service radius ({name}: {rules[name]['source']})",
        note=f"residential land: {ctx.residential_pieces[1]}",
    )
    ev.frames = ctx.residential_coverage(served, levels)
    return ev


def _road_density(ctx: CheckupContext, ind: Indicator, params: Any, levels: list[str]) -> _Eval:
    classes = set(params["highways"])
    if params.get("links"):
        classes |= {f"{c}_link" for c in list(classes)}
    edges = ctx.bundle.projected("walk_edges")
    edges = edges[edges["highway"].isin(classes)]
    if edges.empty:
        return _Eval(no_data="no streets of the listed classes in the walk network")
    lines = edges.geometry.to_numpy()
    ev = _Eval(method="road length ÷ unit area (km/km²), streets of the walk network",
               note="motorways are not in the walk network; dual carriageways counted twice")  # fmt: skip
    for lv in levels:
        units = ctx.units(lv)
        geoms = units.geometry.to_numpy()
        # each street clipped to each unit it touches (no union of the whole network)
        e_idx, u_idx = units.sindex.query(lines, predicate="intersects")
        clipped = shapely.length(shapely.intersection(lines[e_idx], geoms[u_idx]))
        km = np.bincount(u_idx, weights=clipped, minlength=len(units)) / 1000.0
        km2 = shapely.area(geoms) / 1e6
        ev.frames[lv] = pd.DataFrame(
            {
                "numerator": km,
                "denominator": km2,
                "value": np.where(km2 > 0, km / np.where(km2 > 0, km2, 1), np.nan),
            },
            index=pd.Index(units["unit_id"], name="unit_id"),
        )
    return ev


def _register(ctx: CheckupContext, ind: Indicator, params: Any, levels: list[str]) -> _Eval:
    name = params["register"]
    if name not in ctx.bundle.registers:
        return _Eval(
            no_data=f"register '{name}' not in the bundle (data class {ind.data}); import it with --register {name}=FILE"
        )
    table = ctx.bundle.registers[name]
    missing = [c for c in (params["key"], params["column"]) if c not in table]
    if missing:
        return _Eval(
            no_data=f"register '{name}' has no column {', '.join(repr(c) for c in missing)}"
        )
    ev = _Eval(method=f"register '{name}', column '{params['column']}'")
    key = params["key"]
    for lv in levels:
        if key == "building_id":
            unit_of = pd.Series(
                ctx.unit_of[lv].to_numpy(), index=ctx.buildings["building_id"].to_numpy()
            )
        else:
            ids = ctx.units(lv)["unit_id"]
            unit_of = pd.Series(ids.to_numpy(), index=ids.to_numpy())
        frame, unmatched = register_count(
            table,
            key=key,
            column=params["column"],
            unit_of=unit_of,
            units=list(ctx.units(lv)["unit_id"]),
        )
        if ind.method == "register_value":
            values = pd.to_numeric(table[params["column"]], errors="coerce")
            per = pd.DataFrame(
                {"unit": table[key].astype(str).map(unit_of.astype(object).to_dict()), "v": values}
            ).dropna()
            frame["value"] = per.groupby("unit")["v"].mean().reindex(frame.index)
        ev.frames[lv] = frame
        if unmatched:
            ev.note = f"{unmatched} of {len(table)} register rows match no {key}"
    if unmatched and (name, key) not in ctx.warned:
        ctx.warned.add((name, key))
        warnings.warn(
            f"register '{name}': {ev.note} in the bundle ({len(table) - unmatched} matched); "
            f"check the {key} codes",
            CityosWarning,
            stacklevel=2,
        )
    return ev


def _units_without(ctx: CheckupContext, ind: Indicator, params: Any, levels: list[str]) -> _Eval:
    cats = list(params["categories"])
    if not (ctx.facilities["category"].isin(cats)).any():
        return _Eval(no_data=f"no facilities of {', '.join(cats)} in the bundle")
    base_level = ind.level if ind.level in UNIT_LEVEL_ORDER else "community"
    base = ctx.units(base_level)
    lacking: pd.Series
    if "min_area_m2" in params:
        fac = ctx.facilities[
            ctx.facilities["category"].isin(cats)
            & (ctx.facilities["area_m2"] >= params["min_area_m2"])
        ]
        hit = np.zeros(len(base), dtype=bool)
        hit[np.unique(base.sindex.query(fac.geometry.to_numpy(), predicate="intersects")[1])] = True
        lacking = pd.Series(~hit, index=base["unit_id"].to_numpy())
        method = f"units with no {', '.join(cats)} of ≥ {params['min_area_m2']:g} m² inside [proxy]"
    else:
        radius = float(params["radius_m"])
        d = ctx.distance(cats, ctx.method_of(params))
        assert d is not None
        cov = population_coverage(
            d,
            ctx.population.population,
            ctx.unit_of[base_level],
            radius_m=radius,
            units=list(base["unit_id"]),
        )
        lacking = (cov["value"] < 50.0).where(cov["value"].notna())
        method = f"{base_level} units where under half the residents have {', '.join(cats)} within {radius:g} m [proxy]"
    ev = _Eval(method=method, radius_m=params.get("radius_m"), note=str(params.get("note", "")))
    community_of = pd.Series(base["unit_id"].to_numpy(), index=base["unit_id"].to_numpy())
    for lv in levels:
        ids = list(ctx.units(lv)["unit_id"])
        if lv == base_level:
            v = lacking.astype(float)
            ev.frames[lv] = pd.DataFrame(
                {"numerator": v, "denominator": 1.0, "value": v},
                index=pd.Index(ids, name="unit_id"),
            )
            continue
        owner = ctx.owner_of(base_level, lv)  # the higher unit holding each base unit's point
        frame = pd.DataFrame(
            {"unit": owner, "lack": lacking.reindex(community_of.index).astype(float).to_numpy()}
        ).dropna()
        g = frame.groupby("unit")["lack"]
        num = g.sum().reindex(ids, fill_value=0.0)
        den = g.size().reindex(ids, fill_value=0).astype(float)
        ev.frames[lv] = pd.DataFrame(
            {"numerator": num, "denominator": den, "value": np.where(den > 0, num, np.nan)},
            index=pd.Index(ids, name="unit_id"),
        )
    return ev


def _coverage_any(ctx: CheckupContext, ind: Indicator, params: Any, levels: list[str]) -> _Eval:
    """Population within reach of any rule: e.g. SDG 11.2.1, a low-capacity stop within 500 m
    or a high-capacity one within 1000 m."""
    distance = ctx.method_of(params)
    covered = pd.Series(False, index=ctx.buildings.index)
    used = []
    for rule in params["rules"]:
        d = ctx.distance(list(rule["categories"]), distance)
        if d is None:
            continue
        covered |= d.fillna(np.inf) <= float(rule["radius_m"]) + TOLERANCE_M
        used.append(f"{'/'.join(rule['categories'])} ≤ {float(rule['radius_m']):g} m")
    if not used:
        return _Eval(no_data="none of the listed facilities is in the bundle")
    d0 = pd.Series(np.where(covered, 0.0, np.inf), index=ctx.buildings.index)
    ev = _Eval(method=f"population with any of: {'; '.join(used)} ({distance})")
    for lv in levels:
        ev.frames[lv] = population_coverage(
            d0,
            ctx.population.population,
            ctx.unit_of[lv],
            radius_m=0.0,
            units=list(ctx.units(lv)["unit_id"]),
        )
    return ev


def _complete_set(ctx: CheckupContext, ind: Indicator, params: Any, levels: list[str]) -> _Eval:
    """Per community: the share (%) of the set's items it meets; an item is met when at least
    ``share`` % of the community's residents reach it within its radius. Higher levels: the share
    of their communities that meet every item. Missing items are listed in ``missing``."""
    share = float(params.get("share", 50.0))
    distance = ctx.method_of(params)
    base = ctx.units("community")
    ids = list(base["unit_id"])
    met = pd.DataFrame(index=pd.Index(ids, name="unit_id"))
    for item in params["items"]:
        d = ctx.distance(list(item["categories"]), distance)
        label = str(item["label"])
        if d is None:
            met[label] = False
            continue
        cov = population_coverage(
            d,
            ctx.population.population,
            ctx.unit_of["community"],
            radius_m=float(item["radius_m"]),
            units=ids,
        )
        met[label] = (cov["value"] >= share) & cov["value"].notna()
    residents = (
        ctx.population.population.groupby(ctx.unit_of["community"].to_numpy())
        .sum()
        .reindex(ids, fill_value=0.0)
    )
    has_people = residents > 0
    ev = _Eval(
        method=f"complete set of {len(params['items'])} items, each met by ≥ {share:g} % of residents ({distance})"
    )
    ev.missing = {
        uid: [c for c in met.columns if not met.loc[uid, c]] for uid in ids if has_people[uid]
    }
    for lv in levels:
        if lv == "community":
            value = met.mean(axis=1) * 100.0
            ev.frames[lv] = pd.DataFrame({"numerator": met.sum(axis=1).astype(float), "denominator": float(met.shape[1]),
                                          "value": value.where(has_people)}, index=pd.Index(ids, name="unit_id"))  # fmt: skip
            continue
        owner = ctx.owner_of("community", lv)
        frame = pd.DataFrame(
            {
                "unit": owner,
                "all": met.all(axis=1).astype(float).to_numpy(),
                "people": has_people.to_numpy(),
            }
        )
        frame = frame[frame["people"]].dropna(subset=["unit"])
        g = frame.groupby("unit")["all"]
        lv_ids = list(ctx.units(lv)["unit_id"])
        num = g.sum().reindex(lv_ids, fill_value=0.0)
        den = g.size().reindex(lv_ids, fill_value=0).astype(float)
        ev.frames[lv] = pd.DataFrame({"numerator": num, "denominator": den,
                                      "value": np.where(den > 0, num / den.where(den > 0, 1.0) * 100.0, np.nan)},
                                     index=pd.Index(lv_ids, name="unit_id"))  # fmt: skip
    return ev


def _area_share(ctx: CheckupContext, ind: Indicator, params: Any, levels: list[str]) -> _Eval:
    """Share (%) of each unit's area covered by a bundle layer's polygons (dissolved)."""
    layer = ctx.bundle.projected(params["layer"])
    if layer.empty:
        return _Eval(no_data=f"layer '{params['layer']}' is empty in the bundle")
    merged = shapely.union_all(layer.geometry.to_numpy())
    ev = _Eval(
        method=f"area of {params['layer']} ÷ unit area", note="street space not counted [OP]"
    )
    for lv in levels:
        units = ctx.units(lv)
        geoms = units.geometry.to_numpy()
        num = pd.Series(
            shapely.area(shapely.intersection(geoms, merged)), index=units["unit_id"].to_numpy()
        )
        den = pd.Series(shapely.area(geoms), index=units["unit_id"].to_numpy())
        ev.frames[lv] = pd.DataFrame({"numerator": num, "denominator": den,
                                      "value": np.where(den > 0, num / den.where(den > 0, 1.0) * 100, np.nan)})  # fmt: skip
    return ev


_METHODS = {
    "area_share": _area_share,
    "coverage_any": _coverage_any,
    "complete_set": _complete_set,
    "coverage": _coverage,
    "park_coverage": _park_coverage,
    "road_density": _road_density,
    "register_count": _register,
    "register_value": _register,
    "units_without": _units_without,
}


def _evaluate(ctx: CheckupContext, ind: Indicator) -> _Eval:
    levels = _levels_for(ind)
    fn = _METHODS.get(ind.method)
    if fn is None:
        return _Eval(no_data=f"method '{ind.method}' is not computed by this cityos version yet")
    ev = fn(ctx, ind, ind.params, levels)
    if ev.no_data is not None and ind.proxy is not None:
        proxy_fn = _METHODS.get(str(ind.proxy.get("method")))
        if proxy_fn is not None:
            params = {k: v for k, v in ind.proxy.items() if k != "method"}
            pev = proxy_fn(ctx, ind, params, levels)
            if pev.no_data is None:
                pev.method = f"[proxy] {pev.method}; official data missing: {ev.no_data}"
                return pev
            ev.no_data = f"{ev.no_data}; proxy: {pev.no_data}"
    return ev


def _status(ind: Indicator, value: float) -> tuple[str, float | None, str | None, str | None]:
    """(status, target, op, source) of one value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "no_data", ind.target, ind.target_op, ind.target_source
    target, op, source = ind.target, ind.target_op, ind.target_source
    if target is None and ind.direction == "lower" and ind.unit in COUNT_UNITS:
        target, op, source = 0.0, "<=", "implicit: every case is a problem (no published target)"
    if target is None:
        return "no_target", None, None, None
    op = op or (">=" if ind.direction == "higher" else "<=")
    ok = {
        ">=": value >= target - 1e-9,
        "<=": value <= target + 1e-9,
        ">": value > target,
        "<": value < target,
        "==": value == target,
    }[op]
    return ("pass" if ok else "fail"), target, op, source


def checkup(
    bundle: Bundle,
    *,
    systems: Sequence[str | IndicatorSystem] = BUILTIN_SYSTEMS,
    cutoff_m: float = 1000.0,
    area_per_person: float = DEFAULT_AREA_PER_PERSON_M2,
    admin_levels: dict[int, str] | None = None,
    city_population: float | None = None,
    distance: str | None = None,
    categories: Sequence[str] | None = None,
) -> CheckupResult:
    """Run the health check on a bundle.

    Parameters
    ----------
    bundle
        A city bundle (:func:`cityos.read_bundle`).
    systems
        Built-in system ids or paths of a city's own system files, or loaded systems (default:
        the three built-in systems together).
    cutoff_m
        Search limit of the walking distances (default 1000 m, the 15-minute life circle).
    area_per_person
        Floor area per resident for the population estimate (m², unconfirmed default).
    admin_levels
        OSM admin_level → level table for units from OSM (see :func:`cityos.units.admin_level_table`).
    city_population
        A city total to calibrate the building estimates to (instead of unit totals).
    distance
        ``"network"`` or ``"euclidean"`` for every coverage indicator, overriding their own.
    categories
        Facility categories of the walking-distance table (``access``); default every category
        in the bundle. Indicators' values do not depend on it as long as it holds the categories
        they use (:func:`categories_of`); facility siting passes just those.

    Returns
    -------
    CheckupResult
        ``indicators`` (one row per unit × indicator, columns :data:`INDICATOR_COLUMNS`),
        ``access`` (per building and category), ``problems`` (failing units with the cause),
        ``units`` (per level, indicator values as columns) and ``summary``.
    """
    clock = _Stages()
    if distance not in (None, "network", "euclidean"):
        raise InputError(f"distance must be 'network' or 'euclidean', got {distance!r}")
    loaded = [s if isinstance(s, IndicatorSystem) else load_system(s) for s in systems]
    ctx = CheckupContext(
        bundle, cutoff_m=cutoff_m, area_per_person=area_per_person, admin_levels=admin_levels,
        city_population=city_population, distance=distance, categories=categories,
    )  # fmt: skip
    clock.mark("units and population")
    return checkup_with(ctx, loaded, clock=clock)


def checkup_with(
    ctx: CheckupContext,
    systems: Sequence[str | IndicatorSystem],
    *,
    clock: _Stages | None = None,
) -> CheckupResult:
    """Run the health check with a prepared :class:`CheckupContext` (its bundle, units,
    population and settings): :func:`checkup` builds one and calls this; facility siting reuses
    one for the scenario (:meth:`CheckupContext.with_facilities`)."""
    clock = clock or _Stages()
    loaded = [s if isinstance(s, IndicatorSystem) else load_system(s) for s in systems]
    bundle, cutoff_m = ctx.bundle, ctx.cutoff_m
    _ = ctx.access
    clock.mark("walking distances (all categories)")
    sources = "; ".join(
        f"{s['kind']}:{s['path'].rsplit('/', 1)[-1]}" for s in bundle.manifest.get("sources", [])
    )
    rows: list[dict[str, Any]] = []
    listed: dict[tuple[str, str, str], tuple[int, str]] = {}  # uncovered buildings per failing unit
    for system in loaded:
        clock.mark_start()
        for ind in system.indicators:
            ev = _evaluate(ctx, ind)
            for lv in _levels_for(ind):
                units = ctx.units(lv)
                frame = ev.frames.get(lv)
                for uid, uname, gen in zip(
                    units["unit_id"], units["name"], units["generated"], strict=True
                ):
                    value = (
                        float(frame.loc[uid, "value"])
                        if frame is not None and uid in frame.index
                        else math.nan
                    )
                    status, target, op, tsource = _status(ind, value)
                    if status == "fail" and ev.uncovered is not None:
                        mask = ev.uncovered.to_numpy() & (ctx.unit_of[lv].to_numpy() == uid)
                        ids = ctx.buildings["building_id"].to_numpy()[mask]
                        listed[(ind.id, lv, uid)] = (len(ids), ", ".join(map(str, ids[:20])))
                    rows.append({
                        "unit_id": uid, "unit_name": uname, "level": lv, "indicator_id": ind.id,
                        "name_zh": ind.name_zh, "name_en": ind.name_en, "value": value, "unit": ind.unit,
                        "target": target, "status": status, "confirmed": ind.confirmed,
                        "method": ev.method or ind.method, "radius_m": ev.radius_m, "sources": sources,
                        "system": system.id,
                        "numerator": float(frame.loc[uid, "numerator"]) if frame is not None and uid in frame.index else math.nan,
                        "denominator": float(frame.loc[uid, "denominator"]) if frame is not None and uid in frame.index else math.nan,
                        "target_op": op, "target_source": tsource, "generated_unit": bool(gen),
                        "note": ev.no_data if ev.no_data else (
                            "missing: " + ", ".join(ev.missing[uid]) if ev.missing.get(uid) and lv == "community" else ev.note
                        ),
                        "direction": ind.direction,
                        "dimension": ind.dimension,
                    })  # fmt: skip
        clock.mark(f"system {system.id}")
    indicators = pd.DataFrame(rows, columns=list(INDICATOR_COLUMNS))
    problems = _problems(indicators, listed)
    unit_layers = _unit_layers(ctx, indicators)
    clock.mark("tables and unit layers")
    counts = indicators["status"].value_counts().to_dict()
    summary = {
        "systems": [{"id": s.id, "version": s.version, "source": s.path} for s in loaded],
        "bundle": str(bundle.path), "as_of": bundle.as_of, "crs": bundle.crs,
        "status_counts": {k: int(counts.get(k, 0)) for k in ("pass", "fail", "no_data", "no_target")},
        "population": ctx.population.method,
        "units": {lv: {"count": len(ctx.units(lv)), "source": ctx.unit_set.sources[lv]} for lv in UNIT_LEVEL_ORDER},
        "distances": {"cutoff_m": cutoff_m, "origin": "building point_on_surface", "snap": "nearest walkable edge ≤ 200 m"},
        "attribution": bundle.manifest.get("attribution", []),
        "sources": [
            {k: src[k] for k in ("kind", "path", "sha256", "replication_timestamp", "newest_object") if k in src}
            for src in bundle.manifest.get("sources", [])
        ],
        "timings_s": clock.seconds,
    }  # fmt: skip
    return CheckupResult(indicators, ctx.access, problems, unit_layers, summary)


def _problems(
    indicators: pd.DataFrame, listed: dict[tuple[str, str, str], tuple[int, str]]
) -> pd.DataFrame:
    """The problem list: each failing unit and indicator with its cause, and for coverage the
    residential buildings not reached (count and up to 20 ids)."""
    fail = indicators[indicators["status"] == "fail"]
    rows = []
    for rec in fail.to_dict("records"):
        cause = (
            f"{rec['value']:.4g} {rec['unit']} against target {rec['target_op']} {rec['target']:g}"
        )
        if str(rec["note"]).startswith("missing: "):
            cause += f"; {rec['note']}"
        count, ids = listed.get((rec["indicator_id"], rec["level"], rec["unit_id"]), (0, ""))
        if str(rec["method"]).startswith("coverage of population"):
            uncovered = float(rec["denominator"]) - float(rec["numerator"])
            cause += (
                f"; {uncovered:,.0f} of {float(rec['denominator']):,.0f} residents in {count:,} residential "
                f"buildings are farther than {float(rec['radius_m']):g} m"
            )
        rows.append({k: rec[k] for k in ("unit_id", "unit_name", "level", "indicator_id", "name_zh", "value", "target")}
                    | {"cause": cause, "buildings": count, "building_ids": ids})  # fmt: skip
    columns = [
        "unit_id",
        "unit_name",
        "level",
        "indicator_id",
        "name_zh",
        "value",
        "target",
        "cause",
        "buildings",
        "building_ids",
    ]
    return pd.DataFrame(rows, columns=columns)


def _unit_layers(ctx: CheckupContext, indicators: pd.DataFrame) -> dict[str, gpd.GeoDataFrame]:
    out = {}
    for lv in UNIT_LEVEL_ORDER:
        units = ctx.units(lv)[["unit_id", "name", "generated", "geometry"]].copy()
        pop = ctx.population.population.groupby(ctx.unit_of[lv].to_numpy()).sum()
        units["population"] = units["unit_id"].map(pop).fillna(0.0)
        wide = indicators[indicators["level"] == lv].pivot_table(
            index="unit_id", columns="indicator_id", values="value", aggfunc="first", dropna=False
        )
        out[lv] = units.merge(wide, left_on="unit_id", right_index=True, how="left").to_crs(
            "EPSG:4326"
        )
    return out
