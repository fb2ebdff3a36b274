"""Facility siting on a city bundle: where K new facilities of a category serve the most residents.

:func:`plan_sites` measures the residents' walking distance to the category's existing facilities
(the health check's own population estimate, units and distances, so the figures agree with
``cityos checkup``), builds the candidate–building relation within the radius (walking network or
straight line) and solves

* ``objective="cover"`` — maximal covering: maximise the residents newly within ``radius`` of a
  facility (:func:`cityos.renewal.max_cover`);
* ``objective="distance"`` — p-median: minimise Σ residents × walking distance to the nearest
  facility, distances capped at ``cutoff`` (:func:`cityos.renewal.p_median`).

The chosen sites are added to a *scenario* copy of the bundle and every indicator that uses the
category is recomputed by the health-check engine on both bundles (the before/after table), with
one more indicator for the radius asked: the share of residents within it.

Candidates: a file of points or buildings, ``"stock"`` (under-used buildings, rules in
``renewal/stock.toml``) or ``"network"`` (street nodes of the walking graph).
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix, csr_matrix

from cityos.bundle import Bundle, write_bundle
from cityos.classify import FacilityRules
from cityos.errors import CityosWarning, InputError
from cityos.healthcheck.catalogue import (
    BUILTIN_SYSTEMS,
    IndicatorSystem,
    system_from_toml,
)
from cityos.healthcheck.engine import CheckupContext, categories_of, checkup_with
from cityos.network import TOLERANCE_M, Snapped, pairs_within, snap_points
from cityos.network.access import DEFAULT_CUTOFF_M
from cityos.outputs import atomic_folder, write_table
from cityos.population import DEFAULT_AREA_PER_PERSON_M2
from cityos.renewal.candidates import candidate_sites, load_stock_rules
from cityos.renewal.scenario import (
    SITING_INDICATOR,
    affected_systems,
    before_after,
    scenario_bundle,
    siting_system,
)
from cityos.renewal.siting import DEFAULT_TIME_LIMIT_S, SitingResult, max_cover, p_median
from cityos.threads import query_sliced

__all__ = ["PLAN_STAGES", "SITE_COLUMNS", "SitePlan", "plan_sites", "write_plan"]

#: columns of sites.csv / sites.gpkg. ``residents_new``: residents brought within the radius by
#: the site (each counted at its nearest new site); ``residents_nearer``: residents whose nearest
#: facility it becomes, nearer than before (existing-only: residents within the radius whose
#: nearest facility it is); ``person_m_saved``: Σ residents × metres of walking saved (distances
#: capped at the cutoff)
SITE_COLUMNS = (
    "site_id", "order", "candidate_id", "candidate_source", "reason", "name", "category",
    "residents_new", "residents_nearer", "person_m_saved", "lon", "lat",
)  # fmt: skip
#: files of a siting output folder
PLAN_FILES = ("sites.csv", "sites.gpkg", "summary.json", "before_after.csv", "siting-system.toml")

Objective = Literal["cover", "distance"]
#: stages of :func:`plan_sites` (population, before, candidates and pairs, solve, after)
PLAN_STAGES = 5


class _Clock(dict[str, float]):
    """Seconds per stage (kept in summary.json); each stage also advances ``progress``."""

    def __init__(self, progress: Callable[[float], None] | None) -> None:
        super().__init__()
        self.progress = progress

    def __setitem__(self, key: str, value: float) -> None:
        super().__setitem__(key, value)
        if self.progress is not None:
            self.progress(1)


@dataclass
class SitePlan:
    """A siting plan: ``sites`` (WGS84 points, :data:`SITE_COLUMNS`; the existing facilities
    with ``existing_only``), ``before_after`` (one row per affected indicator, level and unit),
    ``summary`` (the figures of summary.json), ``scenario`` (the bundle with the sites added;
    None with ``existing_only``) and ``system_toml`` (the radius indicator as a system file)."""

    sites: gpd.GeoDataFrame
    before_after: pd.DataFrame
    summary: dict[str, Any]
    scenario: Bundle | None
    system_toml: str


def plan_sites(
    bundle: Bundle,
    *,
    category: str,
    add: int = 0,
    radius: float,
    objective: Objective = "cover",
    candidates: str | Path = "network",
    solver: Literal["auto", "exact", "greedy"] = "auto",
    distance: Literal["network", "euclidean"] = "network",
    cutoff: float = DEFAULT_CUTOFF_M,
    existing_only: bool = False,
    systems: Sequence[str | IndicatorSystem] = BUILTIN_SYSTEMS,
    area_per_person: float = DEFAULT_AREA_PER_PERSON_M2,
    admin_levels: dict[int, str] | None = None,
    city_population: float | None = None,
    time_limit: float = DEFAULT_TIME_LIMIT_S,
    stock_rules: str | Path | None = None,
    progress: Callable[[float], None] | None = None,
) -> SitePlan:
    """Choose ``add`` new sites of ``category`` and measure what they change.

    Parameters
    ----------
    bundle
        The city bundle.
    category
        Facility category id (``kindergarten``, ``elderly_care``, … see ``data/facilities.toml``).
    add
        Number of new sites K (≥ 1 unless ``existing_only``).
    radius
        Service radius in metres: coverage means a walk (or straight line) of at most this.
    objective
        ``"cover"`` (maximal covering of residents not yet within ``radius``) or
        ``"distance"`` (p-median: population-weighted distance, capped at ``cutoff``).
    candidates
        A file (CSV/XLSX with lon/lat, or a GIS layer of points or buildings), ``"stock"``
        (under-used buildings) or ``"network"`` (street nodes).
    solver
        ``"exact"`` (HiGHS MIP), ``"greedy"`` (lazy greedy with a bound) or ``"auto"``.
    distance
        ``"network"`` (walking distance, default) or ``"euclidean"``.
    cutoff
        Search limit in metres for existing facilities and the distance objective
        (default 1000 m; raised to ``radius`` if smaller).
    existing_only
        Score the existing facilities without adding any.
    systems
        Indicator systems whose indicators using the category are recomputed (default: the
        three built-in systems).
    area_per_person, admin_levels, city_population
        As for :func:`cityos.checkup`.
    time_limit
        Seconds for the exact solver (its best solution and gap are kept on timeout).
    stock_rules
        A TOML file replacing the built-in rules of ``candidates="stock"``.
    progress
        Called with 1 after each of the :data:`PLAN_STAGES` stages (2 with ``existing_only``).
    """
    rules = FacilityRules.load()
    known = set(rules.categories) | set(bundle.facilities["category"])
    if category not in known:
        raise InputError(
            f"unknown facility category {category!r}; use one of {', '.join(sorted(known))}"
        )
    if not (math.isfinite(radius) and radius > 0):
        raise InputError(f"--radius must be a positive number of metres, got {radius:g}")
    if objective not in ("cover", "distance"):
        raise InputError(f"objective must be 'cover' or 'distance', got {objective!r}")
    if distance not in ("network", "euclidean"):
        raise InputError(f"distance must be 'network' or 'euclidean', got {distance!r}")
    if not existing_only and add < 1:
        raise InputError(f"--add must be at least 1 new site, got {add}")
    cutoff = max(float(cutoff), float(radius))
    clock = _Clock(progress)
    t0 = time.perf_counter()
    system_toml = siting_system(category, radius, distance, rules)
    own = system_from_toml(system_toml, "cityos site")
    affected = [own, *affected_systems(systems, category)]
    needed = sorted({c for s in affected for i in s.indicators for c in categories_of(i)})
    ctx = CheckupContext(
        bundle, cutoff_m=cutoff, area_per_person=area_per_person, admin_levels=admin_levels,
        city_population=city_population, categories=needed,
    )  # fmt: skip
    pop = ctx.population.population.to_numpy(dtype=float)
    if not (pop > 0).any():
        raise InputError(
            f"{bundle.path}: no residents in the bundle (no residential floor area); siting needs "
            "residential buildings"
        )
    existing = ctx.distance([category], distance)
    d_now = np.full(len(pop), np.inf) if existing is None else existing.fillna(np.inf).to_numpy()
    covered = d_now <= radius + TOLERANCE_M
    clock["units, population, distances to existing"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    before = checkup_with(ctx, affected)
    clock["health check before (affected indicators)"] = time.perf_counter() - t0
    if existing_only:
        sites = _existing_sites(ctx, category, d_now, pop, radius, distance)
        plan_summary: dict[str, Any] = {"solver": "none (existing facilities only)", "gap": 0.0}
        after = None
        scenario = None
    else:
        sites, plan_summary = _solve(
            ctx, bundle, category=category, add=add, radius=radius, objective=objective,
            candidates=candidates, solver=solver, distance=distance, cutoff=cutoff,
            d_now=d_now, pop=pop, covered=covered, time_limit=time_limit,
            stock=load_stock_rules(stock_rules), clock=clock,
        )  # fmt: skip
        t0 = time.perf_counter()
        scenario = scenario_bundle(bundle, sites, category)
        # the scenario differs in its facilities only: units, population and snapping are shared
        after = checkup_with(ctx.with_facilities(scenario), affected)
        clock["scenario and health check after"] = time.perf_counter() - t0
    table = before_after(before.indicators, after.indicators if after is not None else None)
    city = table[(table["indicator_id"] == SITING_INDICATOR) & (table["level"] == "city")].iloc[0]
    n_existing = int((ctx.facilities["category"] == category).sum())
    # with no existing facility the health check says no_data (OSM may simply lack them); for
    # the plan the city starts from 0 residents covered, and says so
    none_yet = n_existing == 0 and math.isnan(float(city["before"]))
    before_pct = 0.0 if none_yet else float(city["before"])
    before_num = 0.0 if none_yet else float(city["numerator_before"])
    after_pct = float(city["after"]) if after is not None else before_pct
    added_pop = float(city["numerator_after"]) - before_num if after is not None else 0.0
    names = rules.categories.get(category, {})
    summary: dict[str, Any] = {
        "category": category,
        "category_zh": names.get("zh", category),
        "radius_m": radius,
        "objective": objective if not existing_only else "existing-only",
        "distance": distance,
        "cutoff_m": cutoff,
        "added": 0 if existing_only else len(sites),
        "existing": n_existing,
        "before_note": f"no {category} in the bundle: coverage before counted as 0 %"
        if none_yet
        else "",
        "residents": float(pop.sum()),
        "before_pct": before_pct,
        "after_pct": after_pct,
        "added_population": added_pop,
        **plan_summary,
        "headline": (
            f"{category} {radius:g} m coverage {before_pct:.1f}% → {after_pct:.1f}%, "
            f"{added_pop:,.0f} more residents covered"
            + (
                f"; mean walk to the nearest {category} (capped at {cutoff:g} m) "
                f"{plan_summary['mean_distance_before_m']:.0f} m → "
                f"{plan_summary['mean_distance_after_m']:.0f} m"
                if "mean_distance_before_m" in plan_summary
                else ""
            )
        ),
        "affected_indicators": sorted(set(table["indicator_id"]) - {SITING_INDICATOR}),
        "population": ctx.population.method,
        "units": {lv: ctx.unit_set.sources[lv] for lv in ("community", "subdistrict", "city")},
        "bundle": str(bundle.path),
        "as_of": bundle.as_of,
        "timings_s": {k: round(v, 3) for k, v in clock.items()},
        "unconfirmed": "population per floor area and the stock rules are operational "
        "defaults [OP]; the radius is the one asked",
    }
    return SitePlan(sites, table, summary, scenario, system_toml)


def _demand_points(ctx: CheckupContext, idx: np.ndarray, distance: str) -> Snapped:
    if distance == "network" and not ctx.bundle.walk_edges.empty:
        origins: Snapped = ctx.origins.subset(idx)
        return origins
    return Snapped.unsnapped(ctx.points.to_numpy()[idx])


def _solve(
    ctx: CheckupContext, bundle: Bundle, *, category: str, add: int, radius: float,
    objective: str, candidates: str | Path, solver: Literal["auto", "exact", "greedy"],
    distance: str, cutoff: float, d_now: np.ndarray, pop: np.ndarray, covered: np.ndarray,
    time_limit: float, stock: dict[str, Any], clock: _Clock,
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:  # fmt: skip
    t0 = time.perf_counter()
    cand = candidate_sites(ctx, candidates, stock)
    if cand.empty:
        raise InputError(
            f"no candidate sites from {candidates!s}; give a file of points or buildings, "
            "'stock' or 'network'"
        )
    hull = shapely.convex_hull(shapely.multipoints(ctx.points.to_numpy()))
    outside = ~shapely.within(cand.geometry.to_numpy(), shapely.buffer(hull, cutoff))
    if outside.any():
        warnings.warn(
            f"{int(outside.sum())} of {len(cand)} candidate sites lie more than {cutoff:g} m "
            "outside the city's buildings; check the file's coordinates and the CRS it declares",
            CityosWarning,
            stacklevel=3,
        )
    if add > len(cand):
        raise InputError(
            f"asked for {add} new sites but there are only {len(cand)} candidates; lower --add"
        )
    network = distance == "network" and not bundle.walk_edges.empty
    if network:
        cs = snap_points(ctx.graph, cand.geometry.to_numpy())
        if not cs.reachable.any():
            raise InputError(
                "no candidate site lies within 200 m of a walkable street; check the candidates"
            )
        lost = int((~cs.reachable).sum())
        if lost:
            warnings.warn(
                f"{lost} candidate sites are farther than 200 m from every walkable street and "
                "reach no one by walking",
                CityosWarning,
                stacklevel=3,
            )
    else:
        cs = Snapped.unsnapped(cand.geometry.to_numpy())
    if objective == "cover":
        demand = np.flatnonzero((pop > 0) & ~covered)
        if not len(demand):
            raise InputError(
                f"no demand: every resident already lives within {radius:g} m of a {category}; "
                "use --existing-only to score the current facilities"
            )
        reach = radius
    else:
        demand = np.flatnonzero(pop > 0)
        reach = cutoff
    origins = _demand_points(ctx, demand, distance)
    graph = ctx.graph if network else None
    pairs = pairs_within(
        graph, origins, cs, radius=reach, method="network" if network else "euclidean"
    )
    w = pop[demand]
    now = np.minimum(d_now[demand], cutoff)  # walk to the nearest existing facility, capped
    clock["candidates and coverage pairs"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    result: SitingResult
    if objective == "cover":
        cover = csr_matrix(
            (np.ones(len(pairs.origin), dtype=bool), (pairs.facility, pairs.origin)),
            shape=(len(cand), len(demand)),
        )
        result = max_cover(cover, w, add, method=solver, time_limit=time_limit)
    else:
        dist = coo_matrix(
            (pairs.distance, (pairs.facility, pairs.origin)), shape=(len(cand), len(demand))
        )
        result = p_median(dist, w, add, current=now, method=solver, time_limit=time_limit)
    clock["solve"] = time.perf_counter() - t0
    chosen = result.chosen
    rank = np.full(len(cand), -1, dtype=np.int64)
    rank[chosen] = np.arange(len(chosen))
    on = rank[pairs.facility] >= 0
    po, pf, pd_ = pairs.origin[on], pairs.facility[on], pairs.distance[on]
    # each demand building goes to its nearest chosen site (ties: the earlier one)
    order = np.lexsort((rank[pf], pd_, po))
    first = np.ones(len(order), dtype=bool)
    first[1:] = po[order][1:] != po[order][:-1]
    best_o, best_f, best_d = po[order][first], pf[order][first], pd_[order][first]
    residents_new = np.zeros(len(cand))
    residents_nearer = np.zeros(len(cand))
    saved = np.zeros(len(cand))
    if objective == "cover":
        np.add.at(residents_new, best_f, w[best_o])
    better = best_d < now[best_o] - TOLERANCE_M
    np.add.at(residents_nearer, best_f[better], w[best_o[better]])
    np.add.at(saved, best_f[better], (w * now)[best_o[better]] - (w[best_o] * best_d)[better])
    if objective == "distance":
        newly = better & (best_d <= radius + TOLERANCE_M) & ~covered[demand][best_o]
        np.add.at(residents_new, best_f[newly], w[best_o[newly]])
    picked = cand.iloc[chosen]
    pts = picked.geometry.to_crs(4326)
    sites = gpd.GeoDataFrame(
        {
            "site_id": [f"site:{c}" for c in picked["candidate_id"]],
            "order": np.arange(1, len(chosen) + 1),
            "candidate_id": picked["candidate_id"].astype(str).to_numpy(),
            "candidate_source": picked["candidate_source"].to_numpy(),
            "reason": picked["reason"].to_numpy(),
            "name": picked["name"].astype(object).to_numpy(),
            "category": category,
            "residents_new": residents_new[chosen],
            "residents_nearer": residents_nearer[chosen],
            "person_m_saved": saved[chosen],
            "lon": pts.x.to_numpy(),
            "lat": pts.y.to_numpy(),
        },
        geometry=pts.to_numpy(),
        crs="EPSG:4326",
    )
    objective_value = (
        {"covered_new_residents": result.covered, "bound": result.bound}
        if objective == "cover"
        else {"person_m_after": result.covered, "person_m_before": float((w * now).sum()),
              "bound": result.bound,
              "mean_distance_before_m": float((w * now).sum()) / float(w.sum()),
              "mean_distance_after_m": result.covered / float(w.sum())}
    )  # fmt: skip
    summary = {
        "solver": result.solver,
        "gap": result.gap,
        **objective_value,
        "candidates": {"source": str(candidates), "count": len(cand),
                       "unreachable": int((~cs.reachable).sum()) if network else 0},
        "demand_buildings": len(demand),
        "pairs": len(pairs.origin),
    }  # fmt: skip
    return sites, summary


def _existing_sites(
    ctx: CheckupContext, category: str, d_now: np.ndarray, pop: np.ndarray, radius: float,
    distance: str,
) -> gpd.GeoDataFrame:  # fmt: skip
    """The existing facilities of ``category``, each with the residents for whom it is the
    nearest within ``radius`` (from the walking-distance table, or straight line)."""
    fac = ctx.facilities[ctx.facilities["category"] == category]
    per = np.zeros(len(fac))
    if len(fac):
        if distance == "network" and not ctx.bundle.walk_edges.empty:
            near = ctx.nearest_facility
            nearest_id = (near.facility_id(category) if near is not None
                          else np.full(len(ctx.buildings), None, dtype=object))  # fmt: skip
        else:
            tree = shapely.STRtree(fac.geometry.to_numpy())
            idx = query_sliced(
                partial(tree.query_nearest, all_matches=False), ctx.points.to_numpy()
            )[1]
            nearest_id = fac["facility_id"].to_numpy()[idx]
        inside = d_now <= radius + TOLERANCE_M
        sums = pd.Series(pop[inside]).groupby(nearest_id[inside]).sum()
        per = sums.reindex(fac["facility_id"]).fillna(0.0).to_numpy()
    pts = fac.geometry.to_crs(4326)
    return gpd.GeoDataFrame(
        {
            "site_id": fac["facility_id"].to_numpy(),
            "order": np.arange(1, len(fac) + 1),
            "candidate_id": fac["facility_id"].to_numpy(),
            "candidate_source": "existing",
            "reason": fac["rule"].to_numpy(),
            "name": fac["name"].astype(object).to_numpy(),
            "category": category,
            "residents_new": 0.0,
            "residents_nearer": per,
            "person_m_saved": 0.0,
            "lon": pts.x.to_numpy(),
            "lat": pts.y.to_numpy(),
        },
        geometry=pts.to_numpy(),
        crs="EPSG:4326",
    )


def _finite(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null, numpy numbers plain numbers."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_plan(plan: SitePlan, out: str | Path, *, force: bool = False) -> Path:
    """Write a plan folder atomically: sites.csv, sites.gpkg, summary.json, before_after.csv,
    siting-system.toml and, unless existing-only, the scenario bundle in ``bundle/``."""
    target = Path(out)
    with atomic_folder(target, force=force, kind="sites") as tmp:
        table = pd.DataFrame(plan.sites.drop(columns="geometry"))
        write_table(table[list(SITE_COLUMNS)], tmp / "sites.csv")
        plan.sites.to_file(tmp / "sites.gpkg", layer="sites", driver="GPKG", engine="pyogrio")
        write_table(plan.before_after, tmp / "before_after.csv")
        (tmp / "siting-system.toml").write_text(plan.system_toml, "utf-8")
        (tmp / "summary.json").write_text(
            json.dumps(_finite(plan.summary), ensure_ascii=False, indent=2, allow_nan=False) + "\n",
            "utf-8",
        )
        if plan.scenario is not None:
            s = plan.scenario
            write_bundle(tmp / "bundle", s.layers, s.manifest, registers=s.registers)
    return target
