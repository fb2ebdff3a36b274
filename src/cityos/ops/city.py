"""The city model the service routes on: the bundle's units at every level (the health check's
own, generated grid cells included — 网格化 management cells are units too), to place a ticket."""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from numpy.typing import NDArray

from cityos.bundle import Bundle
from cityos.units import UnitSet, bundle_units

__all__ = ["CityModel"]


@dataclass
class CityModel:
    """Units per level (in the bundle's measurement CRS) and the transform from WGS84."""

    units: UnitSet
    crs: str
    _to_crs: pyproj.Transformer
    #: per level, a spatial index of the units and their ids (in the units' order)
    _trees: dict[str, tuple[shapely.STRtree, list[str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for level, frame in self.units.levels.items():
            self._trees[level] = (
                shapely.STRtree(np.asarray(frame.geometry.array)),
                [str(u) for u in frame["unit_id"]],
            )

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> CityModel:
        return cls(
            bundle_units(bundle),
            bundle.crs,
            pyproj.Transformer.from_crs(4326, bundle.crs, always_xy=True),
        )

    def locate(self, lon: float, lat: float) -> dict[str, str | None]:
        """The unit id at each level containing the point (boundary included; None outside;
        the first unit in the level's order where units touch)."""
        x, y = self._to_crs.transform(lon, lat)
        point = shapely.Point(x, y)
        out: dict[str, str | None] = {}
        for level, (tree, ids) in self._trees.items():
            hits = tree.query(point, predicate="intersects")
            out[level] = ids[int(hits.min())] if len(hits) else None
        return out

    def metres(self, lon: float, lat: float) -> tuple[float, float]:
        """The point in the measurement CRS (metres)."""
        x, y = self._to_crs.transform(lon, lat)
        return float(x), float(y)

    def metres_many(
        self, lon: NDArray[np.float64], lat: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Many points in the measurement CRS at once (one call into PROJ)."""
        x, y = self._to_crs.transform(lon, lat)
        return np.asarray(x, dtype=float), np.asarray(y, dtype=float)

    def unit_names(self, level: str) -> dict[str, str]:
        frame: gpd.GeoDataFrame = self.units.levels[level]
        return {str(u): str(n) for u, n in zip(frame["unit_id"], frame["name"], strict=True)}
