"""Read a city's own files: GIS layers (GeoPackage, GeoJSON, Shapefile, GeoParquet), POI tables
(CSV, XLSX with longitude/latitude columns) and registers (plain CSV/XLSX tables).

Everything is returned in WGS84. ``crs`` overrides the coordinate system a file declares and is
required knowledge for Chinese commercial data: ``gcj02`` (Amap, Tencent) and ``bd09`` (Baidu) are
converted with :mod:`cityos.sources.china`; anything pyproj understands (``EPSG:4490``, ``4326``)
is reprojected.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from cityos.errors import CityosWarning, InputError, InputFileNotFoundError
from cityos.sources.china import to_wgs84

__all__ = [
    "CHINESE_SYSTEMS",
    "SourceCrs",
    "find_column",
    "parse_crs",
    "read_geo",
    "read_layer",
    "read_points_table",
    "read_register",
]

WGS84 = "EPSG:4326"
CHINESE_SYSTEMS = {"gcj02": "gcj02", "gcj-02": "gcj02", "bd09": "bd09", "bd-09": "bd09"}
GIS_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".parquet", ".geoparquet", ".fgb", ".zip")
TABLE_SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx", ".xls")

Warn = Callable[[str], None]


def _warn(message: str) -> None:
    warnings.warn(message, CityosWarning, stacklevel=4)


LON_COLUMNS = (
    "lon",
    "lng",
    "long",
    "longitude",
    "x",
    "经度",
    "wgs84_lon",
    "wgs_lon",
    "gcj_lon",
    "gcj_lng",
)
LAT_COLUMNS = ("lat", "latitude", "y", "纬度", "wgs84_lat", "wgs_lat", "gcj_lat")


@dataclass(frozen=True)
class SourceCrs:
    """The coordinate system of input coordinates: a pyproj CRS or a Chinese offset system."""

    crs: pyproj.CRS | None
    chinese: str | None = None

    @property
    def label(self) -> str:
        if self.chinese:
            return self.chinese
        assert self.crs is not None
        epsg = self.crs.to_epsg()
        return f"EPSG:{epsg}" if epsg else self.crs.to_string()


def parse_crs(value: str | int | None) -> SourceCrs | None:
    """Parse a ``--crs`` value: an EPSG code (``4326``, ``EPSG:4490``), ``gcj02`` or ``bd09``."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    chinese = CHINESE_SYSTEMS.get(text.lower())
    if chinese:
        return SourceCrs(None, chinese)
    if text.isdigit():
        text = f"EPSG:{text}"
    try:
        return SourceCrs(pyproj.CRS.from_user_input(text))
    except pyproj.exceptions.CRSError as exc:
        raise InputError(
            f"unknown CRS {value!r}; use an EPSG code such as EPSG:4326 or EPSG:4490, or gcj02 / bd09"
        ) from exc


def check_exists(path: Path, what: str) -> None:
    """Raise a one-line error if ``path`` is missing, a folder (unless a dataset) or empty."""
    if not path.exists():
        raise InputFileNotFoundError(f"{path}: {what} not found; check the path")
    if path.is_file() and path.stat().st_size == 0:
        raise InputFileNotFoundError(f"{path}: {what} is empty; export the data again")


def find_column(columns: list[str], candidates: tuple[str, ...]) -> str | None:
    """The first column whose lower-cased, stripped name is one of ``candidates``."""
    norm = {str(c).strip().lower(): c for c in columns}
    for cand in candidates:
        if cand in norm:
            return str(norm[cand])
    return None


def _to_wgs84_geoms(geoms: gpd.GeoSeries, src: SourceCrs) -> gpd.GeoSeries:
    if src.chinese:
        system = src.chinese

        def convert(xy: np.ndarray) -> np.ndarray:
            lon, lat = to_wgs84(system, xy[:, 0], xy[:, 1])
            return np.column_stack([lon, lat])

        return gpd.GeoSeries(shapely.transform(geoms.values, convert), index=geoms.index, crs=WGS84)
    return geoms.set_crs(src.crs, allow_override=True).to_crs(WGS84)


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV/TSV/XLSX table with every column as text (codes keep leading zeros)."""
    suffix = path.suffix.lower()
    if suffix == ".xls":
        raise InputError(
            f"{path}: old Excel 97-2003 (.xls) files are not read; open it and save it as .xlsx or CSV"
        )
    try:
        if suffix == ".xlsx":
            frame = pd.read_excel(path, dtype=str)
        else:
            sep = "\t" if suffix == ".tsv" else None
            frame = pd.read_csv(path, dtype=str, sep=sep, engine="python", encoding="utf-8-sig")
    except UnicodeDecodeError:
        try:
            frame = pd.read_csv(path, dtype=str, sep=None, engine="python", encoding="gb18030")
        except Exception as exc:
            raise InputError(
                f"{path}: cannot read the table ({exc}); save it as UTF-8 CSV"
            ) from exc
    except (ValueError, pd.errors.ParserError, OSError) as exc:
        raise InputError(f"{path}: cannot read the table ({exc}); save it as CSV or XLSX") from exc
    if frame.empty:
        raise InputError(f"{path}: the table has no rows; export it again")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def read_points_table(
    path: str | os.PathLike[str],
    *,
    crs: SourceCrs | None = None,
    lon: str | None = None,
    lat: str | None = None,
) -> gpd.GeoDataFrame:
    """Read a POI table (CSV/XLSX) with longitude/latitude columns into WGS84 points.

    The columns are found by name (``lon``/``lng``/``longitude``/``x``/``经度`` and
    ``lat``/``latitude``/``y``/``纬度``) or given; a single ``location`` column of ``"lon,lat"``
    (Amap's format) also works. ``crs`` defaults to WGS84.

    Raises
    ------
    InputError
        No coordinate columns, non-numeric or out-of-range coordinates (with the first bad row).
    """
    p = Path(path)
    check_exists(p, "POI table")
    frame = read_table(p)
    cols = list(frame.columns)
    lon_col = lon or find_column(cols, LON_COLUMNS)
    lat_col = lat or find_column(cols, LAT_COLUMNS)
    if (lon_col is None or lat_col is None) and find_column(cols, ("location",)):
        loc = frame[find_column(cols, ("location",))].str.split(",", expand=True)
        if loc.shape[1] == 2:
            frame["_lon"], frame["_lat"] = loc[0], loc[1]
            lon_col, lat_col = "_lon", "_lat"
    if lon_col is None or lat_col is None or lon_col not in frame or lat_col not in frame:
        raise InputError(
            f"{p}: no longitude/latitude columns (found {', '.join(cols[:12])}); "
            "name the columns lon and lat (or 经度 and 纬度), or give a 'location' column of lon,lat"
        )
    x = pd.to_numeric(frame[lon_col].str.strip(), errors="coerce")
    y = pd.to_numeric(frame[lat_col].str.strip(), errors="coerce")
    bad = x.isna() | y.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 2
        raise InputError(
            f"{p}: {int(bad.sum())} rows have missing or non-numeric coordinates "
            f"(first at line {row}); fill or remove them"
        )
    src = crs or SourceCrs(pyproj.CRS.from_epsg(4326))
    geographic = src.chinese is not None or (src.crs is not None and src.crs.is_geographic)
    if geographic:
        out = (x.abs() > 180) | (y.abs() > 90)
        if out.any():
            row = int(np.flatnonzero(out.to_numpy())[0]) + 2
            raise InputError(
                f"{p}: {int(out.sum())} rows have coordinates out of range (first at line {row}: "
                f"{lon_col}={x.iloc[row - 2]}, {lat_col}={y.iloc[row - 2]}); longitude must be within "
                "±180 and latitude within ±90: check that the columns are not swapped, or give the CRS (`cityos import --crs`)"
            )
    points = gpd.GeoSeries(shapely.points(x.to_numpy(), y.to_numpy()), index=frame.index)
    geoms = _to_wgs84_geoms(points, src)
    data = frame.drop(columns=[c for c in ("_lon", "_lat") if c in frame])
    return gpd.GeoDataFrame(data, geometry=geoms, crs=WGS84)


def read_layer(
    path: str | os.PathLike[str],
    *,
    layer: str | None = None,
    crs: SourceCrs | None = None,
    warn: Warn | None = None,
) -> gpd.GeoDataFrame:
    """Read a GIS layer (GeoPackage, GeoJSON, Shapefile, GeoParquet, FlatGeobuf) into WGS84.

    ``crs`` overrides the declared CRS (e.g. a GCJ-02 shapefile labelled EPSG:4326); a file with
    no CRS at all needs it. Features without a geometry are left out and counted in a warning
    (``warn``, default a :class:`CityosWarning`), as are coordinates that look like degrees in a
    CRS of metres.
    """
    warn = warn or _warn
    p = Path(path)
    check_exists(p, "GIS file")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".geoparquet"):
            frame = gpd.read_parquet(p)
        else:
            frame = gpd.read_file(p, layer=layer, engine="pyogrio")
    except ValueError as exc:
        if "geometry" in str(exc).lower():
            raise InputError(
                f"{p}: the file has no geometry column; export it with geometries"
            ) from exc
        raise InputError(
            f"{p}: cannot read the GIS file ({exc}); export it again as GeoPackage or GeoJSON"
        ) from exc
    except Exception as exc:  # pyogrio/GDAL raise their own error types
        raise InputError(
            f"{p}: cannot read the GIS file ({exc}); export it again as GeoPackage or GeoJSON"
        ) from exc
    if not isinstance(frame, gpd.GeoDataFrame) or "geometry" not in frame:
        raise InputError(f"{p}: the file has no geometry column; export it with geometries")
    if frame.empty:
        raise InputError(f"{p}: the layer has no features; export it again with its features")
    missing = frame.geometry.isna() | frame.geometry.is_empty
    if missing.all():
        raise InputError(f"{p}: no feature has a geometry; export the layer with its geometries")
    if missing.any():
        warn(
            f"{p.name}: {int(missing.sum())} of {len(frame)} features have no geometry and were "
            "left out; export them with their geometries"
        )
    frame = frame.loc[~missing].copy()
    if crs is None:
        if frame.crs is None:
            raise InputError(
                f"{p}: the file declares no CRS; save it with its CRS or give one with `cityos import --crs` (e.g. EPSG:4326 or gcj02)"
            )
        src = SourceCrs(frame.crs)
    else:
        src = crs
    if src.crs is not None and src.crs.is_projected:
        x0, y0, x1, y1 = frame.total_bounds
        if max(abs(x0), abs(x1)) <= 180 and max(abs(y0), abs(y1)) <= 90:
            warn(
                f"{p.name}: coordinates lie within ±180/±90 but the CRS {src.label} is in metres: "
                "they look like degrees; if they are longitude/latitude, fix the file's CRS or give `cityos import --crs EPSG:4326`"
            )
    frame = frame.set_geometry(_to_wgs84_geoms(frame.geometry, src))
    frame.columns = [str(c) for c in frame.columns]
    return frame.rename_geometry("geometry") if frame.geometry.name != "geometry" else frame


def read_geo(
    path: Path, crs: SourceCrs | None = None, *, warn: Warn | None = None
) -> gpd.GeoDataFrame:
    """A POI table (CSV/XLSX, by :func:`read_points_table`) or a GIS layer (:func:`read_layer`),
    by the file's suffix, in WGS84."""
    if is_table(path):
        return read_points_table(path, crs=crs)
    return read_layer(path, crs=crs, warn=warn)


def read_register(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a register (CSV/XLSX, keyed to buildings or units) as a text table."""
    p = Path(path)
    check_exists(p, "register")
    if p.suffix.lower() not in TABLE_SUFFIXES:
        raise InputError(f"{p}: a register must be a CSV or XLSX table")
    return read_table(p)


def is_table(path: Path) -> bool:
    """True for CSV/XLSX inputs (read with coordinate columns), False for GIS files."""
    return path.suffix.lower() in TABLE_SUFFIXES


def stem_id(path: Path) -> str:
    """A short id prefix for features from ``path`` (file stem, safe characters only)."""
    return re.sub(r"[^\w\-]+", "_", path.stem) or "file"
