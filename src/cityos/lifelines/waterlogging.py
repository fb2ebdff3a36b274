"""The register of waterlogging points (易涝积水点): each point (or area) with its kind, its
responsible unit and person and its threshold depths, read from CSV/XLSX (Chinese headers
accepted) or a GIS file, checked (every problem at once), placed in the city's units and given
the nearest pump-truck staging point along the streets a vehicle may use (../shared/OPS.md §4).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from cityos.bundle import Bundle
from cityos.errors import InputError

__all__ = ["COLUMNS", "KINDS", "nearest_staging", "read_points"]

#: the kinds of point, with their Chinese names (MOHURD's flood-season checks)
KINDS = {"underpass": "下穿通道", "sunken_bridge": "下凹桥", "road": "道路", "estate": "小区",
         "basement_garage": "地下车库"}  # fmt: skip
#: columns: English name → the Chinese header also accepted
COLUMNS = {"id": "编号", "name": "名称", "kind": "类型", "responsible_unit": "责任单位",
           "responsible_person": "责任人", "yellow_cm": "黄色预警水深", "red_cm": "红色预警水深",
           "lon": "经度", "lat": "纬度"}  # fmt: skip
_REQUIRED = ("id", "name", "kind", "responsible_unit", "responsible_person")


def _table(path: Path) -> pd.DataFrame | gpd.GeoDataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path, dtype=str, encoding="utf-8-sig")
        if suffix == ".xlsx":
            return pd.read_excel(path, dtype=str, engine="openpyxl")
        if suffix in (".gpkg", ".geojson", ".json", ".shp"):
            return gpd.read_file(path, engine="pyogrio")
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not readable ({exc})") from exc
    raise InputError(f"{path}: give the points as .csv, .xlsx, .gpkg or .geojson")


def read_points(path: Path) -> gpd.GeoDataFrame:
    """The waterlogging points of a file, in WGS84 (lon/lat columns, or the file's geometry).

    Raises
    ------
    InputError
        A missing column, an unknown kind, a depth that is not a number or a red depth not
        above the yellow one, a point without a location, repeated ids — every problem of the
        file in one message, with the lines.
    """
    raw = _table(path)
    rename = {zh: en for en, zh in COLUMNS.items() if zh in raw.columns}
    frame = raw.rename(columns=rename)
    geo = isinstance(frame, gpd.GeoDataFrame) and frame.geometry is not None
    missing = [c for c in _REQUIRED if c not in frame.columns]
    if not geo:
        missing += [c for c in ("lon", "lat") if c not in frame.columns]
    if missing:
        raise InputError(
            f"{path}: no column {', '.join(missing)} (or {', '.join(COLUMNS[c] for c in missing)})"
        )
    problems = []
    by_zh = {zh: en for en, zh in KINDS.items()}
    kinds = frame["kind"].astype(str).str.strip().map(lambda k: by_zh.get(k, k))
    for i in np.flatnonzero(~kinds.isin(list(KINDS))):
        problems.append(
            f"line {i + 2}: kind {frame['kind'].iloc[i]!r}; use {', '.join(KINDS)} (or {', '.join(KINDS.values())})"
        )
    depth = {}
    for col in ("yellow_cm", "red_cm"):
        values = (
            pd.to_numeric(frame[col], errors="coerce")
            if col in frame.columns
            else pd.Series(np.nan, index=frame.index)
        )
        bad = frame[col].notna() & values.isna() if col in frame.columns else values.notna()
        for i in np.flatnonzero(bad.to_numpy()):
            problems.append(f"line {i + 2}: {col} {frame[col].iloc[i]!r} is not a depth in cm")
        depth[col] = values
    for i in np.flatnonzero((depth["red_cm"] <= depth["yellow_cm"]).to_numpy()):
        problems.append(f"line {i + 2}: red_cm must be above yellow_cm")
    if geo:
        gframe = gpd.GeoDataFrame(frame)
        geometry = gframe.to_crs(4326).geometry if gframe.crs else gframe.geometry
    else:
        lon, lat = (
            pd.to_numeric(frame["lon"], errors="coerce"),
            pd.to_numeric(frame["lat"], errors="coerce"),
        )
        for i in np.flatnonzero(
            (lon.isna() | lat.isna() | ~lon.between(-180, 180) | ~lat.between(-90, 90)).to_numpy()
        ):
            problems.append(f"line {i + 2}: no usable lon/lat")
        geometry = gpd.points_from_xy(lon.fillna(0), lat.fillna(0))
    ids = frame["id"].astype(str).str.strip()
    repeated = sorted(set(ids[ids.duplicated()]))
    if repeated:
        problems.append(f"repeated ids {repeated[:5]}")
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise InputError(f"{path}: {len(problems)} problems: {'; '.join(problems[:5])}{more}")
    out = gpd.GeoDataFrame({
        "id": ids, "name": frame["name"].astype(str), "kind": kinds,
        "responsible_unit": frame["responsible_unit"].astype(str),
        "responsible_person": frame["responsible_person"].astype(str),
        "yellow_cm": depth["yellow_cm"], "red_cm": depth["red_cm"],
    }, geometry=geometry, crs=4326)  # fmt: skip
    return out.reset_index(drop=True)


def nearest_staging(bundle: Bundle, points: gpd.GeoDataFrame, staging: gpd.GeoDataFrame,
                    cutoff_m: float = 20_000.0) -> pd.DataFrame:  # fmt: skip
    """For each point, the nearest pump-truck staging point along the streets a vehicle may use
    (the bundle's street graph restricted to the ``[drive]`` classes of ``osm.toml``: no
    footways, paths or steps; access legs included) and its distance in metres; none (NaN)
    when none is reachable within ``cutoff_m``."""
    from cityos.classify import load_osm_tables
    from cityos.network import graph_from_bundle, nearest, snap_points

    graph = graph_from_bundle(bundle, load_osm_tables().drive_highway)
    origins = snap_points(
        graph, points.to_crs(bundle.crs).geometry.representative_point().to_numpy()
    )
    targets = snap_points(
        graph, staging.to_crs(bundle.crs).geometry.representative_point().to_numpy()
    )
    near = nearest(graph, origins, targets, cutoff=cutoff_m)
    found = near.facility >= 0
    ids = (
        staging["id"].astype(str).to_numpy()
        if "id" in staging
        else np.arange(len(staging)).astype(str)
    )
    return pd.DataFrame({
        "id": points["id"].to_numpy(),
        "nearest_staging": [str(ids[f]) if ok else None for f, ok in zip(near.facility, found, strict=True)],
        "staging_distance_m": np.where(found & np.isfinite(near.distance), near.distance, np.nan),
    })  # fmt: skip
