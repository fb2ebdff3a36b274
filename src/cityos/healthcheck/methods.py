"""The health check's methods: one table (:data:`METHODS`) of every method an indicator system
may name, with its parameters and the function that computes it.

Each function takes the shared :class:`~cityos.healthcheck.context.CheckupContext`, the indicator,
its params and the unit levels to report, and returns an :class:`Evaluation`: per level a frame
of ``numerator``, ``denominator``, ``value`` and ``unknown`` (parts that could not be measured)
indexed by ``unit_id``, optionally a per-unit ``note``. Three states per item: met, not met,
unmeasured; an input that is absent (a facility category the bundle has none of, a facility
without an area, a blank register cell) is unmeasured, never "not met". The catalogue checks
system files against this table, so a method is named in a system only if it is computed here.
"""

from __future__ import annotations

import math
import tomllib
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from importlib import resources
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from cityos.errors import CityosWarning, ConfigError
from cityos.healthcheck.context import CheckupContext
from cityos.healthcheck.evaluation import Evaluation, levels_for, unmeasured
from cityos.healthcheck.measures import (
    area_coverage,
    area_within,
    park_service_area,
    population_coverage,
    ratio_frame,
    register_count,
    register_flags,
    register_mean,
    register_sum,
    share,
)
from cityos.healthcheck.proxies import per_capita, units_with_area_below, units_without
from cityos.healthcheck.registers import register_ratio, register_units
from cityos.healthcheck.survey import survey_score
from cityos.network import TOLERANCE_M, service_area, snap_points
from cityos.threads import query_sliced

if TYPE_CHECKING:
    from cityos.healthcheck.catalogue import Indicator

__all__ = ["METHODS", "Evaluation", "Method", "evaluate", "levels_for"]


Fn = Callable[[CheckupContext, "Indicator", Mapping[str, Any], list[str]], Evaluation]


@dataclass(frozen=True)
class Method:
    """One method: its name, required and optional params, what it computes, and the function."""

    name: str
    fn: Fn
    required: frozenset[str]
    optional: frozenset[str]
    summary: str


def _served(
    ctx: CheckupContext, categories: Sequence[str], radius: float, distance: str
) -> shapely.Geometry:
    fac = ctx.facilities[ctx.facilities["category"].isin(categories)]
    if distance == "network" and not ctx.bundle.walk_edges.empty:
        snapped = snap_points(ctx.graph, fac.geometry.to_numpy())
        return service_area(ctx.graph, snapped, distance=radius).polygon
    return shapely.union_all(shapely.buffer(fac.geometry.to_numpy(), radius))


def _coverage(
    ctx: CheckupContext, ind: Indicator, params: Mapping[str, Any], levels: list[str]
) -> Evaluation:
    """PopCov or AreaCov within a radius of a set of categories (STANDARDS §11.1)."""
    cats = list(params["categories"])
    radius = float(params["radius_m"])
    measure = params["measure"]
    distance = ctx.method_of(params)
    if (none := unmeasured(ctx, cats)) is not None:
        return none
    ev = Evaluation(
        method=f"coverage of {measure} within {radius:g} m ({distance}) of {', '.join(cats)}",
        radius_m=radius,
    )
    if measure == "population":
        d = ctx.distance(cats, distance)
        assert d is not None
        ev.population_based, ev.denominator_kind = True, "residents"
        ev.uncovered = (ctx.population.population > 0) & ~(d.fillna(np.inf) <= radius + TOLERANCE_M)
        for lv in levels:
            ev.frames[lv] = population_coverage(
                d, ctx.population.population, ctx.unit_category[lv], radius_m=radius,
                units=list(ctx.units(lv)["unit_id"]),
            )  # fmt: skip
        return ev
    served = _served(ctx, cats, radius, distance)
    if measure == "residential_area":
        ev.frames = ctx.residential_coverage(served, levels)
        ev.note = "; ".join(
            filter(None, [f"residential land: {ctx.residential_pieces[1]}", ev.note])
        )
    else:
        for lv in levels:
            units = ctx.units(lv)
            whole = gpd.GeoDataFrame(geometry=units.geometry.to_numpy(), crs=ctx.crs)
            ev.frames[lv] = area_coverage(served, whole, units)
        ev.note = "; ".join(filter(None, ["share of unit area", ev.note]))
    return ev


def _park_rules(ind: Indicator, name: str) -> tuple[list[tuple[float, float, float]], str]:
    rules = tomllib.loads(
        resources.files("cityos.healthcheck").joinpath("parks.toml").read_text("utf-8")
    )["rule_sets"]
    if name not in rules:
        raise ConfigError(
            f"indicator {ind.id}: unknown park rule set {name!r}; known: {', '.join(rules)}"
        )
    tiers = [
        (float(lo), math.inf if hi == "inf" else float(hi), float(r))
        for lo, hi, r in rules[name]["tiers"]
    ]
    return tiers, str(rules[name]["source"])


def _park_coverage(
    ctx: CheckupContext, ind: Indicator, params: Mapping[str, Any], levels: list[str]
) -> Evaluation:
    """Residential land within the tiered service radius of the parks (``parks.toml``)."""
    tiers, source = _park_rules(ind, str(params["rule_set"]))
    parks = ctx.bundle.projected("green_spaces")
    if parks.empty:
        return Evaluation(no_data="unmeasured: no public green spaces in the bundle")
    ev = Evaluation(
        method=f"park service radius ({params['rule_set']}: {source})",
        note=f"residential land: {ctx.residential_pieces[1]}",
    )
    ev.frames = ctx.residential_coverage(park_service_area(parks, tiers), levels)
    return ev


def _road_density(
    ctx: CheckupContext, ind: Indicator, params: Mapping[str, Any], levels: list[str]
) -> Evaluation:
    """Street length ÷ unit area (km/km²), streets of the listed classes clipped to each unit."""
    classes = set(params["highways"])
    if params.get("links"):
        classes |= {f"{c}_link" for c in list(classes)}
    edges = ctx.bundle.projected("walk_edges")
    edges = edges[edges["highway"].isin(classes)]
    if edges.empty:
        return Evaluation(
            no_data="unmeasured: no streets of the listed classes in the walk network"
        )
    lines = edges.geometry.to_numpy()
    ev = Evaluation(method="road length ÷ unit area (km/km²), streets of the walk network",
                    note="motorways are not in the walk network; dual carriageways counted twice")  # fmt: skip
    for lv in levels:
        units = ctx.units(lv)
        geoms = units.geometry.to_numpy()
        # each street clipped to each unit it touches (no union of the whole network); a
        # street wholly inside its unit (no point on the boundary) counts its whole length
        e_idx, u_idx = query_sliced(partial(units.sindex.query, predicate="intersects"), lines)
        shapely.prepare(geoms)
        inside = shapely.contains_properly(geoms[u_idx], lines[e_idx])
        clipped = shapely.length(lines[e_idx])
        crossing = ~inside
        clipped[crossing] = shapely.length(
            shapely.intersection(lines[e_idx[crossing]], geoms[u_idx[crossing]])
        )
        index = pd.Index(units["unit_id"], name="unit_id")
        km = pd.Series(
            np.bincount(u_idx, weights=clipped, minlength=len(units)) / 1000.0, index=index
        )
        km2 = pd.Series(shapely.area(geoms) / 1e6, index=index)
        ev.frames[lv] = ratio_frame(km, km2, index, kind="rate")
    return ev


def _register(
    ctx: CheckupContext, ind: Indicator, params: Mapping[str, Any], levels: list[str]
) -> Evaluation:
    """A register's flags counted (``register_count``), its numbers summed (``register_sum``:
    counts and lengths that add up) or averaged (``register_value``) per unit; blank cells are
    unknown, never "no" or 0."""
    name, key, column = params["register"], params["key"], params["column"]
    if name not in ctx.bundle.registers:
        return Evaluation(
            no_data=f"register '{name}' not in the bundle (data class {ind.data}); import it with --register {name}=FILE"
        )
    table = ctx.bundle.registers[name]
    missing = [c for c in (key, column) if c not in table]
    if missing:
        return Evaluation(
            no_data=f"register '{name}' has no column {', '.join(repr(c) for c in missing)}"
        )
    counting = ind.method == "register_count"
    summing = ind.method == "register_sum"
    bound = (
        " (count is a lower bound)" if counting else " (sum is a lower bound)" if summing else ""
    )
    ev = Evaluation(method=f"register '{name}', column '{column}'", bound=counting or summing,
                    unit_keyed=key != "building_id",
                    unknown_what="register rows blank or unreadable" + bound)  # fmt: skip
    unmatched = 0
    for lv in levels:
        unit_of = register_units(ctx, ind.level, key, lv)
        units = list(ctx.units(lv)["unit_id"])
        measure = register_count if counting else register_sum if summing else register_mean
        ev.frames[lv], unmatched = measure(
            table, key=key, column=column, unit_of=unit_of, units=units
        )
    if counting and key == "building_id":  # the problem list names the flagged buildings
        flagged = set(table.loc[register_flags(table[column]).eq(True).to_numpy(), key].astype(str))
        ev.uncovered = ctx.buildings["building_id"].astype(str).isin(flagged)
    if unmatched:
        ev.note = f"{unmatched} of {len(table)} register rows match no {key}"
        if (name, key) not in ctx.warned:
            ctx.warned.add((name, key))
            warnings.warn(
                f"register '{name}': {ev.note} in the bundle ({len(table) - unmatched} matched); "
                f"check the {key} codes",
                CityosWarning,
                stacklevel=2,
            )
    return ev


def _coverage_any(
    ctx: CheckupContext, ind: Indicator, params: Mapping[str, Any], levels: list[str]
) -> Evaluation:
    """Population within reach of any rule: e.g. SDG 11.2.1, a low-capacity stop within 500 m
    or a high-capacity one within 1000 m. A rule with a category the bundle has none of is
    unmeasured: the residents not reached by the others might reach it, so the share is then a
    lower bound."""
    distance = ctx.method_of(params)
    covered = pd.Series(False, index=ctx.buildings.index)
    used, unmeasured = [], []
    for rule in params["rules"]:
        label = f"{'/'.join(rule['categories'])} ≤ {float(rule['radius_m']):g} m"
        d = ctx.distance(list(rule["categories"]), distance)
        if d is None:
            unmeasured.append(label)
            continue
        covered |= d.fillna(np.inf) <= float(rule["radius_m"]) + TOLERANCE_M
        used.append(label)
    if not used:
        return Evaluation(no_data=f"unmeasured: none of {'; '.join(unmeasured)} is in the bundle")
    d0 = pd.Series(np.where(covered, 0.0, np.inf), index=ctx.buildings.index)
    ev = Evaluation(method=f"population with any of: {'; '.join(used)} ({distance})",
                    population_based=True, bound=bool(unmeasured), denominator_kind="residents",
                    note=f"unmeasured rules: {'; '.join(unmeasured)}" if unmeasured else "",
                    unknown_what="residents who might reach an unmeasured rule (share is a lower bound)")  # fmt: skip
    for lv in levels:
        frame = population_coverage(d0, ctx.population.population, ctx.unit_category[lv], radius_m=0.0,
                                    units=list(ctx.units(lv)["unit_id"]))  # fmt: skip
        if unmeasured:
            frame["unknown"] = frame["denominator"] - frame["numerator"]
        ev.frames[lv] = frame
    return ev


def _complete_set(
    ctx: CheckupContext, ind: Indicator, params: Mapping[str, Any], levels: list[str]
) -> Evaluation:
    """Per community: the share (%) of the set's items it meets; an item is met when at least
    ``share`` % of the community's residents reach it within its radius. Higher levels: the share
    of their communities that meet every item. An item with a category the bundle has none of
    is unmeasured, and then the set is too (``no_data``, the share over the measured items and
    the unmeasured ones in the note)."""
    share_pct = float(params.get("share", ctx.policy.default_set_share))
    distance = ctx.method_of(params)
    ids = pd.Index(ctx.units("community")["unit_id"], name="unit_id")
    met = pd.DataFrame(index=ids)
    unmeasured: list[str] = []
    for item in params["items"]:
        d = ctx.distance(list(item["categories"]), distance)
        if d is None:
            unmeasured.append(str(item["label"]))
            continue
        cov = population_coverage(d, ctx.population.population, ctx.unit_category["community"],
                                  radius_m=float(item["radius_m"]), units=list(ids))  # fmt: skip
        # 1 met, 0 not met, NaN nobody to reach it
        met[str(item["label"])] = (
            (cov["value"] >= share_pct).astype(float).where(cov["value"].notna())
        )
    residents = ctx.residents["community"].reindex(ids.astype(str)).fillna(0.0).to_numpy()
    has_people = pd.Series(residents > 0, index=ids)
    n_items = len(params["items"])
    ev = Evaluation(method=f"complete set of {n_items} items, each met by ≥ {share_pct:g} % of residents ({distance})",
                    population_based=True,
                    note=f"unmeasured items (no facility of the category in the bundle): {', '.join(unmeasured)}" if unmeasured else "")  # fmt: skip
    n_met = met.sum(axis=1)
    n_measured = met.shape[1]
    notes = []
    for row, people, n, pct in zip(met.to_numpy().tolist(), has_people, n_met,
                                   share(n_met, n_measured), strict=True):  # fmt: skip
        gaps = [c for c, v in zip(met.columns, row, strict=True) if v == 0.0]
        parts = [f"missing: {', '.join(gaps)}"] if gaps and people else []
        if unmeasured and people:
            parts.append(f"{int(n)} of {n_measured} measured items met ({pct:.1f} %)")
        notes.append("; ".join(parts))
    value = pd.Series(share(n_met, n_items), index=ids).where(has_people)
    ev.frames["community"] = pd.DataFrame(
        {"numerator": n_met, "denominator": float(met.shape[1]),
         "value": value if not unmeasured else np.nan, "unknown": float(len(unmeasured)), "note": notes},
        index=ids,
    )  # fmt: skip
    complete = met.min(axis=1) if met.shape[1] else pd.Series(np.nan, index=ids)
    for lv in levels:
        if lv == "community":
            continue
        frame = pd.DataFrame({"unit": ctx.owner_of("community", lv), "all": complete.to_numpy(),
                              "people": has_people.to_numpy()})  # fmt: skip
        frame = frame[frame["people"]].dropna(subset=["unit"])
        g = frame.groupby("unit")["all"]
        lv_ids = pd.Index(ctx.units(lv)["unit_id"], name="unit_id")
        out = ratio_frame(g.sum(), g.count(), lv_ids)
        if unmeasured:
            out["value"] = np.nan
            out["unknown"] = float(len(unmeasured))
        ev.frames[lv] = out
    return ev


def _area_share(
    ctx: CheckupContext, ind: Indicator, params: Mapping[str, Any], levels: list[str]
) -> Evaluation:
    """Share (%) of each unit's area covered by a bundle layer's polygons (dissolved)."""
    layer = ctx.bundle.projected(params["layer"])
    if layer.empty:
        return Evaluation(no_data=f"unmeasured: layer '{params['layer']}' is empty in the bundle")
    merged = shapely.union_all(layer.geometry.to_numpy())
    ev = Evaluation(
        method=f"area of {params['layer']} ÷ unit area", note="street space not counted [OP]"
    )
    for lv in levels:
        units = ctx.units(lv)
        geoms = units.geometry.to_numpy()
        index = pd.Index(units["unit_id"], name="unit_id")
        num = pd.Series(area_within(geoms, merged), index=index)
        ev.frames[lv] = ratio_frame(num, pd.Series(shapely.area(geoms), index=index), index)
    return ev


def _m(name: str, fn: Fn, required: set[str], optional: set[str]) -> Method:
    return Method(
        name, fn, frozenset(required), frozenset(optional), (fn.__doc__ or "").split("\n")[0]
    )


#: every method a system may name: name → parameters and implementation (one table)
METHODS: Mapping[str, Method] = MappingProxyType({m.name: m for m in (
    _m("coverage", _coverage, {"categories", "radius_m", "measure"}, {"distance", "note", "min_area_m2"}),
    _m("survey_score", survey_score, {"register", "items"}, {"min_respondents"}),
    _m("coverage_any", _coverage_any, {"rules"}, {"distance", "measure"}),
    _m("complete_set", _complete_set, {"items"}, {"share", "distance"}),
    _m("park_coverage", _park_coverage, {"rule_set", "measure"}, {"distance"}),
    _m("road_density", _road_density, {"highways"}, {"links"}),
    _m("area_share", _area_share, {"layer"}, set()),
    _m("register_count", _register, {"register", "column", "key"}, set()),
    _m("register_value", _register, {"register", "column", "key"}, set()),
    _m("register_sum", _register, {"register", "column", "key"}, set()),
    _m("register_ratio", register_ratio, {"register", "key", "numerator"}, {"denominator", "scale"}),
    _m("units_without", units_without, {"categories"}, {"radius_m", "distance", "min_area_m2", "note"}),
    _m("units_with_area_below", units_with_area_below, {"categories", "min_area_m2"}, {"note"}),
    _m("per_capita_area", per_capita, {"categories"}, {"note"}),
)})  # fmt: skip


def evaluate(ctx: CheckupContext, ind: Indicator) -> Evaluation:
    """Compute one indicator: its method, else (when that has no data) its open-data proxy,
    labelled ``[proxy]`` with the reason the official data are missing."""
    levels = levels_for(ind)
    ev = METHODS[ind.method].fn(ctx, ind, ind.params, levels)
    if ev.no_data is not None and ind.proxy is not None:
        params = {k: v for k, v in ind.proxy.items() if k != "method"}
        pev = METHODS[str(ind.proxy["method"])].fn(ctx, ind, params, levels)
        if pev.no_data is None:
            pev.method = f"[proxy] {pev.method}; official data missing: {ev.no_data}"
            return pev
        ev.no_data = f"{ev.no_data}; proxy: {pev.no_data}"
    return ev
