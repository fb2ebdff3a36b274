"""The data extent of a bundle: where its data say anything at all.

Outside the extent a unit has no data, and every indicator there is ``no_data`` (never a
failure). The extent is the OSM extract's bounds (the file header's box joined with the box of
the OSM features, since exports include every way touching the box whole), else, for bundles
made from city files alone, the convex hull of the buildings. It is recorded in the bundle's
manifest (``data_extent``) and recomputed the same way for bundles made before it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = ["DataExtent", "data_extent", "extent_from_manifest", "unit_data_status"]

WGS84 = "EPSG:4326"


class DataExtent:
    """The extent polygon (WGS84) and what it was made from."""

    def __init__(self, geometry: shapely.Geometry, source: str) -> None:
        self.geometry = geometry
        self.source = source

    def record(self) -> dict[str, Any]:
        return {"source": self.source, "wkt": shapely.to_wkt(self.geometry, rounding_precision=7)}

    def projected(self, crs: Any) -> shapely.Geometry:
        return gpd.GeoSeries([self.geometry], crs=WGS84).to_crs(crs).iloc[0]


def data_extent(
    osm_bbox: Sequence[float] | None,
    osm_frames: Sequence[gpd.GeoDataFrame],
    buildings: gpd.GeoDataFrame,
) -> DataExtent | None:
    """The extent from an OSM extract (header ``osm_bbox`` and its features ``osm_frames``, all
    WGS84), else from the buildings' hull; None when there is nothing at all."""
    boxes = [np.asarray(f.total_bounds) for f in osm_frames if len(f)]
    if osm_bbox is not None:
        boxes.append(np.asarray(osm_bbox, dtype=float))
    if boxes:
        arr = np.vstack(boxes)
        box = shapely.box(arr[:, 0].min(), arr[:, 1].min(), arr[:, 2].max(), arr[:, 3].max())
        return DataExtent(box, "OSM extract bounds")
    if len(buildings):
        hull = shapely.convex_hull(
            shapely.multipoints(shapely.get_coordinates(buildings.geometry.to_numpy()))
        )
        return DataExtent(hull, "convex hull of the buildings")
    return None


def extent_from_manifest(
    manifest: Mapping[str, Any], layers: Mapping[str, gpd.GeoDataFrame]
) -> DataExtent | None:
    """The bundle's recorded extent, or (older bundles) the same rule applied to its layers."""
    rec = manifest.get("data_extent")
    if isinstance(rec, dict) and rec.get("wkt"):
        return DataExtent(shapely.from_wkt(rec["wkt"]), str(rec.get("source", "manifest")))
    osm = [
        f[f["source"] == "osm"] if "source" in f else f
        for name in ("walk_edges", "buildings")
        if (f := layers.get(name)) is not None and len(f)
    ]
    return data_extent(None, osm, layers.get("buildings", gpd.GeoDataFrame()))


def unit_data_status(
    units: gpd.GeoDataFrame,
    building_units: pd.Series,
    extent: shapely.Geometry | None,
    extent_source: str,
) -> pd.DataFrame:
    """Per unit (any CRS, with ``extent`` in the same CRS): how many buildings lie in it, the
    share (%) of its area inside the data extent, and why it has no data (None when it has).

    ``building_units`` is the unit id of each building (None outside every unit).
    """
    ids = units["unit_id"].astype(str).to_numpy()
    counts = pd.Series(building_units.dropna().astype(str)).value_counts()
    n = pd.Series(ids).map(counts).fillna(0).astype(int).to_numpy()
    geoms = units.geometry.to_numpy()
    area = shapely.area(geoms)
    if extent is None:
        inside = np.full(len(ids), 100.0)
    else:
        inside_area = shapely.area(shapely.intersection(geoms, extent))
        inside = np.where(
            area > 0, np.clip(inside_area / np.where(area > 0, area, 1.0), 0, 1) * 100, 100.0
        )
    outside = inside <= 0.0
    reason = pd.Series(None, index=range(len(ids)), dtype=object)
    reason[n == 0] = "no data in this unit: no building of the bundle lies in it"
    reason[outside] = f"no data in this unit: it lies outside the data extent ({extent_source})"
    return pd.DataFrame(
        {"buildings": n, "inside_pct": inside, "reason": reason.to_numpy()},
        index=pd.Index(ids, name="unit_id"),
    )
