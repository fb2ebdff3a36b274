"""Invalid polygons (self-intersecting rings, bow ties) repaired with ``shapely.make_valid``, so
that an area, a containment test or an intersection never fails on a city's own drawing."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from cityos.errors import CityosWarning, InputError

__all__ = ["repair_polygons"]


def _warn(message: str) -> None:
    warnings.warn(message, CityosWarning, stacklevel=4)


def repair_polygons(
    frame: gpd.GeoDataFrame,
    where: str,
    what: str,
    warn: Callable[[str], None] | None = None,
    *,
    ids: str | None = None,
) -> gpd.GeoDataFrame:
    """``frame`` with its invalid polygons repaired (only the polygonal part kept), and a warning
    through ``warn`` (default a :class:`CityosWarning`) that counts them.

    Raises
    ------
    InputError
        A polygon has no area left after the repair; the message names its ids (column ``ids``)
        or rows.
    """
    geoms = frame.geometry.to_numpy()
    bad = ~shapely.is_valid(geoms)
    if not bad.any():
        return frame
    fixed = np.array([_polygonal(g) for g in shapely.make_valid(geoms[bad])], dtype=object)
    lost = np.array([g is None or g.is_empty for g in fixed], dtype=bool)
    if lost.any():
        rows = frame.iloc[np.flatnonzero(bad)[lost]]
        names = rows[ids].astype(str) if ids else rows.index.astype(str)
        raise InputError(
            f"{where}: {int(lost.sum())} {what} polygons are invalid with no area left after repair "
            f"({', '.join(list(names)[:5])}); fix them in a GIS"
        )
    geoms = geoms.copy()
    geoms[bad] = fixed
    (warn or _warn)(
        f"{where}: {int(bad.sum())} of {len(frame)} {what} polygons were invalid "
        "(self-intersecting) and were repaired with make_valid; check them in a GIS"
    )
    return frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index, crs=frame.crs))


def _polygonal(geom: Any) -> Any:
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else None
