"""Chinese commercial coordinate systems: GCJ-02 (Amap, Tencent) and BD-09 (Baidu).

Chinese web maps publish coordinates in GCJ-02, an obfuscated offset of WGS84 defined on the
Krasovsky 1940 ellipsoid, and Baidu adds a second offset (BD-09). OSM and every GIS file use WGS84,
so POIs from those sources must be converted before they are overlaid.

* WGS84 → GCJ-02 is the published closed-form offset (:func:`wgs84_to_gcj02`).
* GCJ-02 → WGS84 has no closed form; :func:`gcj02_to_wgs84` inverts the offset by fixed-point
  iteration until the round trip closes to better than 1e-9 degrees (about 0.1 mm).
* BD-09 ↔ GCJ-02 are closed-form polar transforms.

Outside mainland China (the usual bounding box lon 72.004–137.8347, lat 0.8293–55.8271) no offset
is applied, as the commercial providers do. All functions are vectorised over numpy arrays.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "in_china",
    "to_wgs84",
    "wgs84_to_gcj02",
]

_A = 6378245.0  # Krasovsky 1940 semi-major axis (m)
_EE = 0.00669342162296594323  # Krasovsky 1940 first eccentricity squared
_X_PI = np.pi * 3000.0 / 180.0

Coords = tuple[NDArray[np.float64], NDArray[np.float64]]


def in_china(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_]:
    """True where a point lies in the box in which GCJ-02 applies an offset."""
    x = np.asarray(lon, dtype=float)
    y = np.asarray(lat, dtype=float)
    return (x >= 72.004) & (x <= 137.8347) & (y >= 0.8293) & (y <= 55.8271)


def _offset(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> Coords:
    x = lon - 105.0
    y = lat - 35.0
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    dlat += common
    dlat += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    dlon += common
    dlon += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    radlat = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    inside = in_china(lon, lat)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def _arrays(lon: ArrayLike, lat: ArrayLike) -> Coords:
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """WGS84 → GCJ-02 (degrees), the closed-form offset."""
    x, y = _arrays(lon, lat)
    dx, dy = _offset(x, y)
    return x + dx, y + dy


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike, *, tol: float = 1e-9) -> Coords:
    """GCJ-02 → WGS84 (degrees), by iterating ``w ← w + (g − f(w))`` until it closes within ``tol``."""
    gx, gy = _arrays(lon, lat)
    wx, wy = gx.copy(), gy.copy()
    for _ in range(30):
        fx, fy = wgs84_to_gcj02(wx, wy)
        ex, ey = gx - fx, gy - fy
        wx, wy = wx + ex, wy + ey
        if np.all(np.abs(ex) < tol) and np.all(np.abs(ey) < tol):
            break
    return wx, wy


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """GCJ-02 → BD-09 (Baidu), degrees."""
    x, y = _arrays(lon, lat)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """BD-09 (Baidu) → GCJ-02, degrees."""
    bx, by = _arrays(lon, lat)
    x, y = bx - 0.0065, by - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """BD-09 (Baidu) → WGS84, degrees."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def to_wgs84(system: str, lon: ArrayLike, lat: ArrayLike) -> Coords:
    """Convert from ``"gcj02"``, ``"bd09"`` or ``"wgs84"`` to WGS84."""
    if system == "gcj02":
        return gcj02_to_wgs84(lon, lat)
    if system == "bd09":
        return bd09_to_wgs84(lon, lat)
    if system == "wgs84":
        return _arrays(lon, lat)
    raise ValueError(f"unknown Chinese coordinate system {system!r}")
