"""GeoJSON and WKT for the sensing entities: bounding boxes to prefilter, shapes to test."""

from __future__ import annotations

import math
from typing import Any

import shapely
from shapely.geometry import shape

from cityos.errors import InputError

__all__ = ["bbox_of", "from_geojson", "from_wkt", "metres_between"]


def from_geojson(value: Any) -> shapely.Geometry:
    """A GeoJSON geometry (or a Feature of one) as a shape.

    Raises
    ------
    InputError
        Not GeoJSON, or an empty or invalid geometry.
    """
    geo = (
        value.get("geometry")
        if isinstance(value, dict) and value.get("type") == "Feature"
        else value
    )
    try:
        geom = shape(geo)
    except (AttributeError, KeyError, TypeError, ValueError, shapely.errors.GEOSException) as exc:
        raise InputError(f"not a GeoJSON geometry ({exc})") from exc
    if geom.is_empty:
        raise InputError("an empty geometry")
    return geom


def bbox_of(value: Any) -> tuple[float, float, float, float]:
    """The bounding box (min lon, min lat, max lon, max lat) of a GeoJSON geometry."""
    minx, miny, maxx, maxy = from_geojson(value).bounds
    return float(minx), float(miny), float(maxx), float(maxy)


def from_wkt(text: str) -> shapely.Geometry:
    """A WKT literal of a filter (``POLYGON((…))``, ``POINT(…)``).

    Raises
    ------
    InputError
        Not WKT.
    """
    try:
        return shapely.from_wkt(text)
    except shapely.errors.GEOSException as exc:
        raise InputError(f"geography'{text}' is not WKT ({exc})") from exc


def metres_between(lon0: float, lat0: float, lon1: float, lat1: float) -> float:
    """Great-circle distance in metres between two WGS84 points (haversine, R = 6,371,008.8 m)."""
    p0, p1 = math.radians(lat0), math.radians(lat1)
    a = (
        math.sin((p1 - p0) / 2) ** 2
        + math.cos(p0) * math.cos(p1) * math.sin(math.radians(lon1 - lon0) / 2) ** 2
    )
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))
