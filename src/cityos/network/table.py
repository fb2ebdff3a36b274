"""The per-building accessibility table (the health check's ``access.parquet``) and the nearest
facility of each category behind it, kept as arrays aligned with the buildings.

The health check reads distances by category many times (every indicator that asks for the
nearest facility of some categories); :class:`NearestByCategory` answers that with one NumPy
minimum over aligned arrays instead of filtering and regrouping a table of (buildings ×
categories) rows. The table itself is assembled from the same arrays in Arrow (the building
ids repeated without copying), only when it is asked for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import shapely
from numpy.typing import NDArray

from cityos.bundle import Bundle
from cityos.errors import InputError
from cityos.naming import unknown_names
from cityos.network.access import DEFAULT_CUTOFF_M, Method, nearest
from cityos.network.graph import WalkGraph, graph_from_bundle
from cityos.network.snap import DEFAULT_MAX_SNAP_M, Snapped, snap_points

__all__ = ["ACCESS_COLUMNS", "NearestByCategory", "accessibility_table", "nearest_by_category"]

#: columns of the per-building accessibility table (``access.parquet``)
ACCESS_COLUMNS = ("building_id", "category", "distance_m", "facility_id")


@dataclass(frozen=True)
class NearestByCategory:
    """The nearest facility of each category for every building.

    ``distance[c]`` is in metres (NaN where none lies within the cutoff or the building is not
    snapped), ``facility[c]`` the index into ``facility_ids[c]`` (-1 where none); both aligned
    with ``building_ids``. ``attrs`` are the settings (method, cutoff, snapping).
    """

    building_ids: NDArray[np.object_]
    distance: dict[str, NDArray[np.float64]]
    facility: dict[str, NDArray[np.int64]]
    facility_ids: dict[str, NDArray[np.object_]]
    attrs: dict[str, Any] = field(default_factory=dict)

    def min_distance(self, categories: Sequence[str]) -> NDArray[np.float64]:
        """Per building, the distance to the nearest facility of any of ``categories`` (those
        measured; NaN where none is within reach): ``min_c distance[c]``, NaN-skipping."""
        found = [self.distance[c] for c in categories if c in self.distance]
        if not found:
            return np.full(len(self.building_ids), np.nan)
        return (
            np.asarray(np.fmin.reduce(found), dtype=np.float64)
            if len(found) > 1
            else found[0].copy()
        )

    def facility_id(self, category: str) -> NDArray[np.object_]:
        """Per building, the id of the nearest facility of ``category`` (None where none)."""
        out = np.full(len(self.building_ids), None, dtype=object)
        if category in self.facility:
            idx = self.facility[category]
            out[idx >= 0] = self.facility_ids[category][idx[idx >= 0]]
        return out

    def table(self) -> pd.DataFrame:
        """The accessibility table: one row per building and category, categories in the order
        measured, ``category`` a categorical of the sorted category names."""
        cats = list(self.distance)
        if not cats:
            frame = pd.DataFrame({c: pd.Series([], dtype=object) for c in ACCESS_COLUMNS})
            frame["category"] = frame["category"].astype("category")
            frame.attrs.update(self.attrs)
            return frame
        n = len(self.building_ids)
        ids = pa.array(self.building_ids, type=pa.string())
        fids = []
        for c in cats:
            idx = self.facility[c]
            taken = pa.array(idx, mask=idx < 0, type=pa.int64())
            fids.append(pa.array(self.facility_ids[c], type=pa.string()).take(taken))
        dtype = pd.StringDtype("pyarrow", na_value=np.nan)
        order = sorted(cats)
        codes = np.repeat(np.array([order.index(c) for c in cats], dtype=np.int32), n)
        frame = pd.DataFrame(
            {
                "building_id": pd.array(pa.chunked_array([ids] * len(cats)), dtype=dtype),
                "category": pd.Categorical.from_codes(codes, categories=pd.Index(order)),
                "distance_m": np.concatenate([self.distance[c] for c in cats]),
                "facility_id": pd.array(pa.chunked_array(fids), dtype=dtype),
            }
        )
        frame.attrs.update(self.attrs)
        return frame


def nearest_by_category(
    bundle: Bundle,
    *,
    categories: Sequence[str] | None = None,
    cutoff: float = DEFAULT_CUTOFF_M,
    distance: Method = "network",
    max_snap: float = DEFAULT_MAX_SNAP_M,
    graph: WalkGraph | None = None,
    origins: Snapped | None = None,
) -> NearestByCategory:
    """The nearest facility of each category for every building of ``bundle``.

    Buildings are represented by a point on their surface (``shapely.point_on_surface``);
    ``origins`` may give them already snapped to ``graph`` (with ``max_snap``), which saves
    snapping them again. The other parameters are those of :func:`accessibility_table`.
    """
    facilities = bundle.projected("facilities")
    cats = sorted(facilities["category"].unique()) if categories is None else list(categories)
    unknown = set(cats) - set(facilities["category"])
    if unknown:
        raise InputError(
            f"{bundle.path}: no facilities of categories {unknown_names(unknown, facilities['category'])}; "
            "`cityos info` lists the categories"
        )
    if not (math.isfinite(max_snap) and max_snap > 0):
        raise InputError(
            f"max snap {max_snap:g} m: give a distance above 0 m (default {DEFAULT_MAX_SNAP_M:g})"
        )
    buildings = bundle.projected("buildings")
    if distance == "network":
        graph = graph if graph is not None else graph_from_bundle(bundle)
    if origins is None:
        origins = _locate(graph, shapely.point_on_surface(buildings.geometry.to_numpy()), max_snap)
    dist, fac, fac_ids = {}, {}, {}
    for cat in cats:
        sub = facilities[facilities["category"] == cat]
        res = nearest(graph, origins, _locate(graph, sub.geometry.to_numpy(), max_snap),
                      cutoff=cutoff, method=distance)  # fmt: skip
        found = res.facility >= 0
        dist[cat] = np.where(found, res.distance, np.nan)
        fac[cat] = np.where(found, res.facility, -1).astype(np.int64)
        fac_ids[cat] = sub["facility_id"].to_numpy(dtype=object)
    attrs = {"method": distance, "cutoff_m": cutoff, "max_snap_m": max_snap, "crs": bundle.crs,
             "origin": "building point_on_surface",
             "unsnapped_buildings": int((~origins.reachable).sum())}  # fmt: skip
    return NearestByCategory(buildings["building_id"].to_numpy(dtype=object), dist, fac, fac_ids,
                             attrs)  # fmt: skip


def accessibility_table(
    bundle: Bundle,
    *,
    categories: Sequence[str] | None = None,
    cutoff: float = DEFAULT_CUTOFF_M,
    distance: Method = "network",
    max_snap: float = DEFAULT_MAX_SNAP_M,
    graph: WalkGraph | None = None,
) -> pd.DataFrame:
    """The per-building accessibility table of a bundle (the health check's ``access.parquet``).

    One row per building and facility category: ``building_id``, ``category``, ``distance_m``
    (walking metres to the nearest facility of that category, access legs included; NaN where
    none lies within ``cutoff`` or the building is farther than ``max_snap`` from every walkable
    street) and ``facility_id`` (None where NaN). Buildings are represented by a point on their
    surface (``shapely.point_on_surface``). The settings are kept in ``DataFrame.attrs``.

    Parameters
    ----------
    categories
        Facility categories (default: every category in the bundle).
    cutoff
        Search limit in metres (default :data:`DEFAULT_CUTOFF_M`).
    distance
        ``"network"`` (default) or ``"euclidean"``.
    max_snap
        Maximum access leg in metres for buildings and facilities.
    graph
        A prebuilt graph of the bundle (built if not given).
    """
    return nearest_by_category(
        bundle, categories=categories, cutoff=cutoff, distance=distance, max_snap=max_snap,
        graph=graph,
    ).table()  # fmt: skip


def _locate(graph: WalkGraph | None, points: NDArray[np.object_], max_snap: float) -> Snapped:
    if graph is None:  # euclidean: coordinates only
        return Snapped.unsnapped(points)
    return snap_points(graph, points, max_snap=max_snap)
