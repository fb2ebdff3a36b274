"""Suspicious but legal input to ``cityos import``: each check warns through the import's
``warn`` callback (the warnings are kept in the bundle's manifest too) and never refuses.

* facility categories the health check uses that the data have none of;
* OSM layers that came out empty;
* facilities from city files outside the city (its units, else the OSM extent);
* city files whose features lie far from the OSM extract (a wrong CRS, another city);
* units outside the data extent or without a building.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from cityos.extent import DataExtent
from cityos.measure import bbox
from cityos.sources.osm import OsmExtract

__all__ = [
    "CORE_CATEGORIES",
    "FAR_KM",
    "check_suspicious",
    "warn_far_away",
    "warn_units_without_data",
]

Warn = Callable[[str], None]

#: Categories the health check relies on; an empty one is worth a warning.
CORE_CATEGORIES = (
    "kindergarten", "childcare", "primary_school", "middle_school", "community_health", "clinic",
    "hospital", "elderly_care", "market", "supermarket", "convenience", "pharmacy",
    "community_centre", "cultural_centre", "sports_ground", "fitness", "playground", "toilets",
    "bus_stop", "rail_station", "fire_station", "police", "shelter",
)  # fmt: skip

#: A city file whose features lie farther than this from the OSM extract (km) is probably in
#: the wrong CRS or of another city [OP].
FAR_KM = 50.0


def warn_far_away(ext: OsmExtract | None, frames: Sequence[gpd.GeoDataFrame], warn: Warn) -> None:
    """Warn about a city file whose features lie far from the OSM extract (wrong CRS, another
    city), with the distance between the two boxes' centres in kilometres."""
    osm = bbox([ext.walk_edge_layer, ext.building_layer]) if ext is not None else None
    if osm is None:
        return
    for frame in frames:
        own = bbox([frame])
        if own is None:
            continue
        km = _great_circle_km(((osm[0] + osm[2]) / 2, (osm[1] + osm[3]) / 2),
                              ((own[0] + own[2]) / 2, (own[1] + own[3]) / 2))  # fmt: skip
        half = _great_circle_km((osm[0], osm[1]), (osm[2], osm[3])) / 2
        if km > half + FAR_KM:
            warn(
                f"{frame['source'].iloc[0]}: its features lie {km:,.0f} km from the OSM extract's "
                "centre; check the file's CRS (--crs; degrees labelled as metres?) or that both "
                "are of the same city"
            )


def _great_circle_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(h)))


def warn_units_without_data(
    units: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame, extent: DataExtent, warn: Warn
) -> None:
    """Warn how many of the city's units lie outside the data or hold no building: the health
    check reports them as no data (``--clip-units`` leaves them out)."""
    given = units[units["source"] != "osm"] if "source" in units else units
    if given.empty:
        return
    points = shapely.point_on_surface(buildings.geometry.to_numpy())
    hit = np.zeros(len(given), dtype=bool)
    if len(points):
        hit[np.unique(given.sindex.query(points, predicate="intersects")[1])] = True
    outside = ~shapely.intersects(given.geometry.to_numpy(), extent.geometry)
    empty = ~hit & ~outside
    if outside.any() or empty.any():
        warn(
            f"units: {int(outside.sum())} of {len(given)} units lie outside the data ({extent.source}) "
            f"and {int(empty.sum())} more hold no building; the health check reports them as no data "
            "(`cityos checkup --clip-units` leaves them out)"
        )


def check_suspicious(
    layers: Mapping[str, gpd.GeoDataFrame],
    ext: OsmExtract | None,
    fac_frames: Sequence[gpd.GeoDataFrame],
    unit_frames: Sequence[gpd.GeoDataFrame],
    warn: Warn,
) -> None:
    present = set(layers["facilities"]["category"])
    empty = [c for c in CORE_CATEGORIES if c not in present]
    if empty:
        warn(
            f"no facilities in {len(empty)} categories the health check uses: {', '.join(empty)}; "
            "their indicators will report no data unless a city file supplies them"
        )
    if ext is not None:
        for name in ("walk_edges", "buildings"):
            if layers[name].empty:
                warn(f"layer '{name}' is empty: the OSM extract has none; check the extract")
    # facilities from city files lying outside the city: outside the units, else the OSM extent
    area: Any = None
    if unit_frames:
        area = shapely.union_all(pd.concat([f.geometry for f in unit_frames]).to_numpy())
    elif ext is not None and not ext.walk_edge_layer.empty:
        area = shapely.box(*ext.walk_edge_layer.total_bounds)
    if area is not None:
        for frame in fac_frames:
            if frame.empty:
                continue
            outside = ~shapely.intersects(area, frame.geometry.to_numpy())
            if outside.any():
                warn(
                    f"{frame['source'].iloc[0]}: {int(outside.sum())} of {len(frame)} facilities lie outside "
                    "the city area (units, else the OSM extent); check their CRS (--crs gcj02?) or the extract"
                )
