"""What every health-check method shares, computed once per check: units, the buildings'
points and residents, which units have data, the walking graph and distances."""

from __future__ import annotations

import copy
import dataclasses
import warnings
from collections.abc import Sequence
from functools import cached_property, partial
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from cityos.bundle import Bundle
from cityos.errors import CityosWarning, InputError
from cityos.extent import extent_from_manifest, unit_data_status
from cityos.healthcheck.measures import area_within, ratio_frame, residential_by_unit
from cityos.healthcheck.policy import Policy, load_policy
from cityos.network import (
    ACCESS_COLUMNS,
    NearestByCategory,
    graph_from_bundle,
    nearest,
    nearest_by_category,
    snap_points,
)
from cityos.population import PopulationEstimate, estimate_population
from cityos.threads import query_sliced, sliced
from cityos.units import UnitSet, assign_to_units, bundle_units

__all__ = ["GREEN_EDGE_STEP_M", "UNIT_LEVEL_ORDER", "CheckupContext", "with_derived_registers"]

UNIT_LEVEL_ORDER = ("community", "subdistrict", "city")
#: green spaces are reached at their edge, sampled this often (metres): entrances are not mapped
GREEN_EDGE_STEP_M = 25.0
#: implausible calibrations listed one by one on the terminal; the rest are counted
WARN_LISTED = 5


def with_derived_registers(bundle: Bundle) -> Bundle:
    """The bundle with the registers derived from the housing-safety events when they are
    given: ``housing`` (the ten 住房 flags per building; unless given itself) and
    ``housing_status`` (grade C/D, inspection overdue on the bundle's as-of date)."""
    regs = bundle.registers
    if "housing_safety" not in regs:
        return bundle
    import datetime as dt

    from cityos.registers.housing import housing_register, housing_status, load_inspection_rules

    events = regs["housing_safety"]
    as_of = str(bundle.manifest.get("as_of") or "")[:10]
    try:
        day = dt.date.fromisoformat(as_of)
    except ValueError:
        day = dt.datetime.now(dt.UTC).date()
    derived = {"housing_status": housing_status(events, load_inspection_rules(), day)}
    if "housing" not in regs:
        derived["housing"] = housing_register(events)
    return dataclasses.replace(bundle, registers={**regs, **derived})


class CheckupContext:
    """Everything the methods share, computed once per check: units, the buildings' points and
    residents, the walking graph and distances (also used by facility siting, so that its
    coverage figures are the health check's own). ``categories`` limits the walking-distance
    table to those facility categories (default: every category in the bundle).

    ``clip_units`` keeps only the units that hold data (a building of the bundle, inside the
    data extent); otherwise units without data stay and report ``no_data`` throughout.
    """

    def __init__(self, bundle: Bundle, *, cutoff_m: float, area_per_person: float,
                 admin_levels: dict[int, str] | None, city_population: float | None = None,
                 distance: str | None = None, categories: Sequence[str] | None = None,
                 policy: Policy | None = None, clip_units: bool = False) -> None:  # fmt: skip
        self.distance_override = distance
        self.categories = None if categories is None else sorted(set(categories))
        self.policy = policy or load_policy()
        self.bundle = with_derived_registers(bundle)
        self.crs = bundle.crs
        self.cutoff_m = cutoff_m
        self.buildings = self.bundle.projected("buildings")
        if self.buildings.empty:
            raise InputError(
                f"{bundle.path}: the bundle has no buildings; the health check needs them"
            )
        self.points = gpd.GeoSeries(
            sliced(shapely.point_on_surface, self.buildings.geometry.to_numpy()),
            index=self.buildings.index,
            crs=self.crs,
        )
        extent = extent_from_manifest(bundle.manifest, bundle.layers)
        self.extent_source = extent.source if extent else "none"
        self.extent = extent.projected(self.crs) if extent else None
        unit_set = bundle_units(bundle, admin_levels, points=self.points)
        unit_of = assign_to_units(self.points, unit_set)
        self.clipped: dict[str, int] = {}
        if clip_units:
            unit_set, unit_of = self._clip(unit_set, unit_of)
        self.unit_set: UnitSet = unit_set
        self.unit_of = unit_of
        calib_level = next(
            (lv for lv in UNIT_LEVEL_ORDER if "population" in self.unit_set.levels[lv]
             and pd.to_numeric(self.unit_set.levels[lv]["population"], errors="coerce").notna().any()),
            None,
        )  # fmt: skip
        self.population: PopulationEstimate = estimate_population(
            self.buildings,
            area_per_person=area_per_person,
            residential_land=bundle.projected("residential_land"),
            points=self.points,
            units=self.unit_set.levels[calib_level]
            if calib_level and city_population is None
            else None,
            city_total=city_population,
            max_factor=self.policy.max_calibration_factor,
        )
        self._warn_implausible()
        self.facilities = bundle.projected("facilities")
        self._distances: dict[tuple[tuple[str, ...], str], pd.Series] = {}
        self.warned: set[tuple[str, str]] = set()
        self._owners: dict[tuple[str, str], NDArray[np.object_]] = {}

    def _clip(self, unit_set: UnitSet, unit_of: pd.DataFrame) -> tuple[UnitSet, pd.DataFrame]:
        levels = dict(unit_set.levels)
        for lv, frame in unit_set.levels.items():
            if unit_set.generated(lv):
                continue
            status = unit_data_status(frame, unit_of[lv], self.extent, self.extent_source)
            keep = status["reason"].isna().to_numpy()
            if not keep.any():
                raise InputError(
                    f"--clip-units: no {lv} unit holds a building of the bundle; check that the "
                    "unit file and the OSM extract cover the same place"
                )
            self.clipped[lv] = int((~keep).sum())
            levels[lv] = frame[keep]
        clipped = UnitSet(levels, dict(unit_set.sources))
        return clipped, assign_to_units(self.points, clipped)

    def _warn_implausible(self) -> None:
        odd = self.population.implausible
        if odd.empty:
            return
        listed = "; ".join(odd["message"].head(WARN_LISTED))
        more = (
            f"; and {len(odd) - WARN_LISTED} more units (summary.json)"
            if len(odd) > WARN_LISTED
            else ""
        )
        warnings.warn(
            f"population calibration: {len(odd)} units beyond {self.policy.max_calibration_factor:g}× "
            f"their buildings' estimate: {listed}{more}",
            CityosWarning,
            stacklevel=3,
        )

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
        other.__dict__.pop("nearest_facility", None)
        return other

    @cached_property
    def graph(self) -> Any:
        return graph_from_bundle(self.bundle)

    @cached_property
    def nearest_facility(self) -> NearestByCategory | None:
        """The walk to the nearest facility of each category (those of ``categories``) for every
        building; None when the bundle has no streets or no such facilities."""
        cats = sorted(self.facilities["category"].unique())
        if self.categories is not None:
            cats = [c for c in cats if c in self.categories]
        if not cats or self.bundle.walk_edges.empty:
            return None
        return nearest_by_category(
            self.bundle, categories=cats, cutoff=self.cutoff_m, graph=self.graph,
            origins=self.origins,
        )  # fmt: skip

    @cached_property
    def access(self) -> pd.DataFrame:
        """The accessibility table (``access.parquet``) of :attr:`nearest_facility`."""
        if self.nearest_facility is None:
            return pd.DataFrame(columns=list(ACCESS_COLUMNS))
        return self.nearest_facility.table()

    def missing(self, categories: Sequence[str]) -> list[str]:
        """The categories of ``categories`` the bundle has no data for (no facility of the
        category; for ``green_space[>=A]`` no public green space of that area): an item or rule
        using any of them is unmeasured, since the data cannot say whether it is met."""
        return [
            c for c in categories
            if not (len(self._parks(c)) if c.startswith("green_space") else (self.facilities["category"] == c).any())
        ]  # fmt: skip

    def _parks(self, category: str) -> gpd.GeoDataFrame:
        min_area = float(category.split(">=", 1)[1]) if ">=" in category else 0.0
        parks = self.bundle.projected("green_spaces")
        return parks[parks["area_m2"] >= min_area]

    def distance(self, categories: Sequence[str], method: str) -> pd.Series | None:
        """Distance from each building to the nearest facility of any of ``categories``; None
        when the bundle has no data for one of them (:meth:`missing`): unmeasured, not far.

        A category ``green_space`` (optionally ``green_space>=AREA_M2``) means the public green
        spaces of at least that area, reached at any point of their edge (sampled every
        :data:`GREEN_EDGE_STEP_M` metres, since entrances are not mapped).
        """
        if not categories or self.missing(categories):
            return None
        green = [c for c in categories if c.startswith("green_space")]
        plain = tuple(sorted(c for c in categories if c not in green))
        parts = [self._facility_distance(plain, method)] if plain else []
        parts += [self._green_distance(c, method) for c in green]
        return pd.concat(parts, axis=1).min(axis=1, skipna=True)

    def _facility_distance(self, present: tuple[str, ...], method: str) -> pd.Series:
        key = (present, method)
        if key not in self._distances:
            if method == "network" and not self.bundle.walk_edges.empty:
                near = self.nearest_facility
                d = near.min_distance(present) if near is not None else np.nan
            else:
                d = nearest_by_category(
                    self.bundle, categories=list(present), cutoff=self.cutoff_m,
                    distance="euclidean",
                ).min_distance(present)  # fmt: skip
            self._distances[key] = pd.Series(d, index=self.buildings.index, dtype=float)
        return self._distances[key]

    def _green_distance(self, category: str, method: str) -> pd.Series:
        key = ((category,), method)
        if key not in self._distances:
            parks = self._parks(category)
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
                _, d = query_sliced(
                    partial(tree.query_nearest, return_distance=True, all_matches=False),
                    self.points.to_numpy(),
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
        buildings grown by the policy's residential buffer on every side (mitred corners; the
        STANDARDS §11.1 fallback), dissolved per community so that a million buildings never
        become one union.
        """
        units = self.units("community")
        geoms = units.geometry.to_numpy()
        land = self.bundle.projected("residential_land")
        if len(land):
            merged = shapely.union_all(land.geometry.to_numpy())
            return shapely.intersection(geoms, merged), "landuse=residential"
        res = self.population.residential.to_numpy()
        buffer_m = self.policy.residential_buffer_m
        # the community categories are the units in order: a code is a position in ``geoms``
        owner = self.unit_category["community"].cat.codes.to_numpy(np.int64)[res]
        pieces = residential_by_unit(
            self.buildings.geometry.to_numpy()[res], owner, geoms, buffer_m
        )
        return pieces, f"residential building footprints grown {buffer_m:g} m (mitred) [OP]"

    def method_of(self, params: Any) -> str:
        """The distance method of an indicator: its own (default network), unless overridden."""
        return self.distance_override or str(params.get("distance", "network"))

    def owner_of(self, base: str, level: str) -> NDArray[np.object_]:
        """For each unit of ``base``, the unit of ``level`` holding its representative point;
        a unit whose point lies in none (a generated grid cell reaching past the city's
        outline) goes to the unit it overlaps most."""
        key = (base, level)
        if key not in self._owners:
            units, upper = self.units(base), self.units(level)
            pts = gpd.GeoSeries(shapely.point_on_surface(units.geometry.to_numpy()), crs=self.crs)
            owner = (
                assign_to_units(pts, UnitSet({level: upper}, {level: ""}))[level].to_numpy().copy()
            )
            lost = np.flatnonzero(pd.isna(owner))
            if len(lost):
                geoms, tops = units.geometry.to_numpy()[lost], upper.geometry.to_numpy()
                a, b = upper.sindex.query(geoms, predicate="intersects")
                area = shapely.area(shapely.intersection(geoms[a], tops[b]))
                best: dict[int, tuple[float, int]] = {}
                for i, j, x in zip(a, b, area, strict=True):
                    if x > best.get(int(i), (0.0, -1))[0]:
                        best[int(i)] = (float(x), int(j))
                ids = upper["unit_id"].to_numpy()
                for i, (_, j) in best.items():
                    owner[lost[i]] = ids[j]
            self._owners[key] = owner
        return self._owners[key]

    def residential_coverage(
        self, served: shapely.Geometry, levels: Sequence[str]
    ) -> dict[str, pd.DataFrame]:
        """AreaCov per unit: residential land inside ``served`` ÷ residential land. Communities
        are measured directly; higher levels sum the communities whose point they hold."""
        pieces, _ = self.residential_pieces
        ids = self.units("community")["unit_id"].to_numpy()
        num = area_within(pieces, served)
        den = shapely.area(pieces)
        out = {}
        for lv in levels:
            lv_ids = pd.Index(self.units(lv)["unit_id"], name="unit_id")
            if lv == "community":
                n, d = pd.Series(num, index=ids), pd.Series(den, index=ids)
            else:
                owner = self.owner_of("community", lv)
                frame = pd.DataFrame({"unit": owner, "num": num, "den": den}).dropna(
                    subset=["unit"]
                )
                n, d = frame.groupby("unit")["num"].sum(), frame.groupby("unit")["den"].sum()
            out[lv] = ratio_frame(n, d, lv_ids)
        return out

    def units(self, level: str) -> gpd.GeoDataFrame:
        return self.unit_set.levels[level]

    @cached_property
    def unit_status(self) -> dict[str, pd.DataFrame]:
        """Per level and unit: buildings inside, the share inside the data extent, and the
        reason it has no data (None when it has); see :func:`cityos.extent.unit_data_status`."""
        return {
            lv: unit_data_status(self.units(lv), self.unit_of[lv], self.extent, self.extent_source)
            for lv in UNIT_LEVEL_ORDER
        }

    @cached_property
    def unit_category(self) -> dict[str, pd.Series]:
        """:attr:`unit_of` per level as a categorical of the level's unit ids: the codes that
        every population share of the level groups by, made once."""
        return {
            lv: pd.Series(
                pd.Categorical(self.unit_of[lv].to_numpy(), categories=self.units(lv)["unit_id"]),
                index=self.unit_of.index,
            )
            for lv in UNIT_LEVEL_ORDER
        }

    @cached_property
    def residents(self) -> dict[str, pd.Series]:
        """Estimated residents per unit of each level (NaN for a unit without data: unknown,
        not 0)."""
        out = {}
        for lv in UNIT_LEVEL_ORDER:
            ids = self.units(lv)["unit_id"].astype(str)
            pop = self.population.population.groupby(self.unit_of[lv].to_numpy()).sum()
            series = pd.Series(ids.map(pop).fillna(0.0).to_numpy(), index=ids.to_numpy())
            reason = self.unit_status[lv]["reason"].reindex(series.index)
            out[lv] = series.where(reason.isna().to_numpy())
        return out

    @cached_property
    def unreliable_population(self) -> dict[str, pd.Series]:
        """Per level and unit: the share (0–1) of its estimated residents living in units whose
        calibration is implausible (see :attr:`PopulationEstimate.implausible`)."""
        flagged = self.population.population.where(self.population.flagged, 0.0)
        out = {}
        for lv in UNIT_LEVEL_ORDER:
            ids = self.units(lv)["unit_id"].astype(str)
            owner = self.unit_of[lv].to_numpy()
            total = self.population.population.groupby(owner).sum()
            bad = flagged.groupby(owner).sum()
            share_bad = (bad / total.where(total > 0)).fillna(0.0)
            out[lv] = pd.Series(ids.map(share_bad).fillna(0.0).to_numpy(), index=ids.to_numpy())
        return out

    @cached_property
    def extent_notes(self) -> dict[str, pd.Series]:
        """Per level and unit: "only N % of this unit lies within the data extent" for units of
        the city's own files or OSM partly outside the data (generated grids are laid over the
        data and left out), else ""."""
        out = {}
        for lv in UNIT_LEVEL_ORDER:
            state = self.unit_status[lv]
            generated = self.units(lv)["generated"].astype(bool).to_numpy()
            partial = (
                (state["inside_pct"] < self.policy.partial_extent_share).to_numpy()
                & state["reason"].isna().to_numpy()
                & ~generated
            )
            text = [f"only {p:.0f} % of this unit lies within the data extent ({self.extent_source})"
                    if on else "" for p, on in zip(state["inside_pct"], partial, strict=True)]  # fmt: skip
            out[lv] = pd.Series(text, index=state.index)
        return out

    @cached_property
    def population_warnings(self) -> dict[str, pd.Series]:
        """Per level and unit: the warning that stands beside its population-based values — the
        unit's own implausible calibration, or the share of its residents living in such units —
        else ""."""
        odd = self.population.implausible
        own = odd.set_index("unit_id")["message"] if len(odd) else pd.Series(dtype=str)
        out = {}
        for lv, bad in self.unreliable_population.items():
            mine = pd.Series(bad.index).map(own).to_numpy()
            text = [
                str(o) if isinstance(o, str)
                else f"population unreliable: {s:.0%} of the residents live in units whose calibration is implausible"
                if s > 0 else ""
                for o, s in zip(mine, bad.to_numpy(), strict=True)
            ]  # fmt: skip
            out[lv] = pd.Series(text, index=bad.index)
        return out
