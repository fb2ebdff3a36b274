"""Walking accessibility engine: graph, edge snapping, nearest / within-radius / service areas.

Example::

    from cityos import read_bundle
    from cityos.network import graph_from_bundle, snap_points, nearest

    bundle = read_bundle("demo/helsinki")
    graph = graph_from_bundle(bundle)
    buildings = snap_points(graph, bundle.projected("buildings").representative_point())
    stops = bundle.projected("facilities").query("category == 'bus_stop'")
    result = nearest(graph, buildings, snap_points(graph, stops.geometry), cutoff=500)
"""

from cityos.network.access import (
    DEFAULT_BUFFER_M,
    DEFAULT_CUTOFF_M,
    TOLERANCE_M,
    Method,
    Nearest,
    Pairs,
    ServiceArea,
    Within,
    count_within,
    nearest,
    pairs_within,
    service_area,
)
from cityos.network.graph import Components, WalkGraph, graph_from_bundle, graph_from_edges
from cityos.network.snap import DEFAULT_MAX_SNAP_M, Snapped, snap_points
from cityos.network.table import (
    ACCESS_COLUMNS,
    NearestByCategory,
    accessibility_table,
    nearest_by_category,
)

__all__ = [
    "ACCESS_COLUMNS",
    "DEFAULT_BUFFER_M",
    "DEFAULT_CUTOFF_M",
    "DEFAULT_MAX_SNAP_M",
    "TOLERANCE_M",
    "Components",
    "Method",
    "Nearest",
    "NearestByCategory",
    "Pairs",
    "ServiceArea",
    "Snapped",
    "WalkGraph",
    "Within",
    "accessibility_table",
    "count_within",
    "graph_from_bundle",
    "graph_from_edges",
    "nearest",
    "nearest_by_category",
    "pairs_within",
    "service_area",
    "snap_points",
]
