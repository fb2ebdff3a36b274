"""The health-check engine: evaluate indicator systems on a city bundle, unit by unit.

For each indicator and each unit level at or above the indicator's own (a housing indicator is
counted per community, subdistrict and city; a coverage rate is computed per unit at each level),
the method (:mod:`cityos.healthcheck.methods`) gives numerator, denominator and value; a missing
input gives ``no_data`` with the reason, never 0 and never ``fail``. Registers (the city's own
tables) are used when the bundle has them; otherwise an indicator with an open-data ``proxy`` is
computed from OSM and labelled as a proxy. A unit that holds no building of the bundle, or lies
outside the data extent, is ``no_data`` for every indicator not read from a table keyed by unit.

Status (:mod:`cityos.healthcheck.status`): ``pass`` / ``fail`` against the target; counts of problems
without a published target fail on any case (implicit target 0, labelled); rates without a
target get ``no_target``; missing data ``no_data``. The policy numbers behind these choices are
data (``checkup/policy.toml``) and recorded in the summary.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import pandas as pd

from cityos.bundle import Bundle
from cityos.errors import InputError
from cityos.healthcheck.basemap import basemap_streets
from cityos.healthcheck.catalogue import BUILTIN_SYSTEMS, Indicator, IndicatorSystem, load_system
from cityos.healthcheck.context import UNIT_LEVEL_ORDER, CheckupContext
from cityos.healthcheck.methods import evaluate
from cityos.healthcheck.policy import Policy
from cityos.healthcheck.tables import INDICATOR_COLUMNS, indicator_rows, problem_list, unit_layers
from cityos.network.access import DEFAULT_CUTOFF_M
from cityos.population import DEFAULT_AREA_PER_PERSON_M2

__all__ = [
    "INDICATOR_COLUMNS",
    "RESULTS_SCHEMA",
    "CheckupContext",
    "CheckupResult",
    "categories_of",
    "checkup",
    "checkup_with",
]

#: version of the results folder layout (summary.json ``results_schema``), checked by readers
RESULTS_SCHEMA = 2


@dataclass
class CheckupResult:
    """What a health check produced (see :func:`checkup`)."""

    indicators: pd.DataFrame
    access: pd.DataFrame
    problems: pd.DataFrame
    units: dict[str, gpd.GeoDataFrame]
    summary: dict[str, Any]
    streets: gpd.GeoDataFrame | None = None


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


def checkup(
    bundle: Bundle,
    *,
    systems: Sequence[str | IndicatorSystem] = BUILTIN_SYSTEMS,
    cutoff_m: float = DEFAULT_CUTOFF_M,
    area_per_person: float = DEFAULT_AREA_PER_PERSON_M2,
    admin_levels: dict[int, str] | None = None,
    city_population: float | None = None,
    distance: str | None = None,
    categories: Sequence[str] | None = None,
    policy: Policy | None = None,
    clip_units: bool = False,
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
    policy
        The policy numbers (:func:`cityos.healthcheck.policy.load_policy`; default the built-in).
    clip_units
        Leave out the units that hold no data (no building of the bundle, or outside the data
        extent) instead of reporting them as ``no_data``.

    Returns
    -------
    CheckupResult
        ``indicators`` (one row per unit × indicator, columns :data:`INDICATOR_COLUMNS`),
        ``access`` (per building and category), ``problems`` (failing units with the cause),
        ``units`` (per level, indicator values as columns), ``summary`` and ``streets`` (the
        basemap kept with the results).
    """
    clock = _Stages()
    if distance not in (None, "network", "euclidean"):
        raise InputError(f"distance must be 'network' or 'euclidean', got {distance!r}")
    loaded = _load(systems, bundle)
    ctx = CheckupContext(
        bundle, cutoff_m=cutoff_m, area_per_person=area_per_person, admin_levels=admin_levels,
        city_population=city_population, distance=distance, categories=categories,
        policy=policy, clip_units=clip_units,
    )  # fmt: skip
    clock.mark("units and population")
    return checkup_with(ctx, loaded, clock=clock)


def _load(systems: Sequence[str | IndicatorSystem], bundle: Bundle) -> list[IndicatorSystem]:
    """The systems, loaded where given by id or path; the bundle's own facility categories
    count as known in them."""
    if all(isinstance(s, IndicatorSystem) for s in systems):
        return [s for s in systems if isinstance(s, IndicatorSystem)]
    own = set(bundle.facilities["category"])
    return [
        s if isinstance(s, IndicatorSystem) else load_system(s, categories=own) for s in systems
    ]


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
    loaded = _load(systems, ctx.bundle)
    bundle, cutoff_m = ctx.bundle, ctx.cutoff_m
    _ = ctx.nearest_facility
    clock.mark("walking distances (all categories)")
    sources = "; ".join(
        f"{s['kind']}:{s['path'].rsplit('/', 1)[-1]}" for s in bundle.manifest.get("sources", [])
    )
    parts: list[pd.DataFrame] = []
    listed: list[pd.DataFrame] = []
    for system in loaded:
        clock.mark_start()
        for ind in system.indicators:
            rows, uncovered = indicator_rows(ctx, system.id, ind, evaluate(ctx, ind), sources)
            parts.append(rows)
            if len(uncovered):
                listed.append(uncovered)
        clock.mark(f"system {system.id}")
    indicators = pd.concat(parts, ignore_index=True)[list(INDICATOR_COLUMNS)]
    problems = problem_list(
        indicators, pd.concat(listed, ignore_index=True) if listed else pd.DataFrame(), ctx.policy
    )
    layers = unit_layers(ctx, indicators)
    clock.mark("tables and unit layers")
    counts = indicators["status"].value_counts().to_dict()
    odd = ctx.population.implausible
    summary = {
        "results_schema": RESULTS_SCHEMA,
        "systems": [{"id": s.id, "version": s.version, "source": s.path} for s in loaded],
        "bundle": str(bundle.path), "as_of": bundle.as_of, "crs": bundle.crs,
        "status_counts": {k: int(counts.get(k, 0)) for k in ("pass", "fail", "no_data", "no_target")},
        "population": {**ctx.population.method,
                       "implausible": odd.to_dict("records"),
                       "unallocated": ctx.population.unallocated.to_dict("records")},
        "units": {lv: {"count": len(ctx.units(lv)), "source": ctx.unit_set.sources[lv],
                       "without_data": int(ctx.unit_status[lv]["reason"].notna().sum()),
                       "clipped": ctx.clipped.get(lv, 0)} for lv in UNIT_LEVEL_ORDER},
        "data_extent": ctx.extent_source,
        "distances": {"cutoff_m": cutoff_m, "origin": "building point_on_surface", "snap": "nearest walkable edge ≤ 200 m"},
        "policy": ctx.policy.record(),
        "attribution": bundle.manifest.get("attribution", []),
        "sources": [
            {k: src[k] for k in ("kind", "path", "sha256", "replication_timestamp", "newest_object") if k in src}
            for src in bundle.manifest.get("sources", [])
        ],
        "timings_s": clock.seconds,
    }  # fmt: skip
    return CheckupResult(indicators, ctx.access, problems, layers, summary, _basemap(bundle))


def _basemap(bundle: Bundle) -> gpd.GeoDataFrame:
    """The streets the report draws under the units, kept with the results (WGS84)."""
    return basemap_streets(bundle.walk_edges)
