"""The streets drawn under the units in the report, chosen at checkup time and kept in the
results folder (``streets.parquet``), so that a results folder carries its own map wherever it
is moved or copied."""

from __future__ import annotations

import geopandas as gpd
import numpy as np

__all__ = ["LOCAL", "MAX_STREETS", "MINOR", "basemap_streets"]

#: above this many street segments the basemap keeps only streets above residential class, so a
#: metropolis still gives a report that opens in seconds
MAX_STREETS = 30_000
MINOR = ["footway", "path", "steps", "corridor", "service", "track", "bridleway", "pedestrian"]
LOCAL = ["residential", "living_street", "unclassified", "road"]


def basemap_streets(walk_edges: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The walk network's streets above footpath class (above residential class past
    :data:`MAX_STREETS` segments, then the longest), as ``highway`` and geometry in WGS84."""
    if walk_edges.empty:
        return gpd.GeoDataFrame({"highway": []}, geometry=[], crs="EPSG:4326")
    major = walk_edges[~walk_edges["highway"].isin(MINOR)][["highway", "geometry"]]
    if len(major) > MAX_STREETS:
        major = major[~major["highway"].isin(LOCAL)]
    if len(major) > MAX_STREETS:  # still too many: the longest streets carry the picture
        lengths = major.to_crs(major.estimate_utm_crs()).length.to_numpy()
        major = major.iloc[np.argsort(-lengths, kind="stable")[:MAX_STREETS]]
    return major.reset_index(drop=True).to_crs("EPSG:4326")
