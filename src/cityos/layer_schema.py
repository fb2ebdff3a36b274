"""The bundle's layers: their columns, kinds and geometry types (:data:`LAYER_SCHEMAS`), an
empty layer of each, and the checks a layer must pass when written or read — as a GeoDataFrame
(:func:`validate_layer`) or as flat Arrow columns (:func:`validate_flat_layer`).

Layers and their columns (``?`` = may be missing)::

    walk_nodes        node_id:int  geometry:Point
    walk_edges        edge_id:int u:int v:int osm_way_id:int highway:str name:str? length_m:float
                      geometry:LineString
    buildings         building_id:str building:str use:str levels:float levels_source:str
                      height_m:float? footprint_m2:float floor_area_m2:float name:str?
                      vacancy:str? (disused / abandoned / vacant: out of use) source:str
                      geometry:(Multi)Polygon
    facilities        facility_id:str feature_id:str category:str rule:str name:str?
                      area_m2:float? transit:str? source:str  geometry:Point
    green_spaces      green_id:str kind:str name:str? area_m2:float source:str geometry:(Multi)Polygon
    units             unit_id:str name:str? level:str? admin_level:float? source:str
                      geometry:(Multi)Polygon
    residential_land  landuse_id:str area_m2:float source:str geometry:(Multi)Polygon
    registers/NAME    a plain table (no geometry) as the city supplied it

Lengths and areas are measured in the manifest's projected CRS (``crs``); coordinates are stored
in WGS84 (EPSG:4326).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import geopandas as gpd
import pandas as pd

from cityos.errors import BundleError
from cityos.flatlayer import FlatLayer

__all__ = [
    "ADDED_COLUMNS",
    "BUILDING_USES",
    "LAYER_SCHEMAS",
    "STORAGE_CRS",
    "UNIT_LEVELS",
    "LayerSchema",
    "empty_layer",
    "validate_flat_layer",
    "validate_layer",
]

STORAGE_CRS = "EPSG:4326"
UNIT_LEVELS = ("city", "subdistrict", "community")
BUILDING_USES = ("residential", "non_residential", "unknown")

_POLY = frozenset({"Polygon", "MultiPolygon"})


@dataclass(frozen=True)
class LayerSchema:
    """Required columns (name → kind: ``int``, ``float``, ``str``; ``?`` suffix = nullable)."""

    columns: Mapping[str, str]
    geometry: frozenset[str]
    allowed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


LAYER_SCHEMAS: dict[str, LayerSchema] = {
    "walk_nodes": LayerSchema({"node_id": "int"}, frozenset({"Point"})),
    "walk_edges": LayerSchema(
        {
            "edge_id": "int",
            "u": "int",
            "v": "int",
            "osm_way_id": "int",
            "highway": "str",
            "name": "str?",
            "length_m": "float",
        },
        frozenset({"LineString"}),
    ),
    "buildings": LayerSchema(
        {
            "building_id": "str",
            "building": "str",
            "use": "str",
            "levels": "float",
            "levels_source": "str",
            "height_m": "float?",
            "footprint_m2": "float",
            "floor_area_m2": "float",
            "name": "str?",
            "address": "str?",
            "vacancy": "str?",
            "source": "str",
        },
        _POLY,
        {
            "use": BUILDING_USES,
            "levels_source": ("tag", "height", "default", "file"),
            "vacancy": ("disused", "abandoned", "vacant"),
        },
    ),
    "facilities": LayerSchema(
        {
            "facility_id": "str",
            "feature_id": "str",
            "category": "str",
            "rule": "str",
            "name": "str?",
            "area_m2": "float?",
            "transit": "str?",
            "source": "str",
        },
        frozenset({"Point"}),
        {"transit": ("low", "high")},
    ),
    "green_spaces": LayerSchema(
        {"green_id": "str", "kind": "str", "name": "str?", "area_m2": "float", "source": "str"},
        _POLY,
    ),
    "units": LayerSchema(
        {
            "unit_id": "str",
            "name": "str?",
            "level": "str?",
            "admin_level": "float?",
            "source": "str",
        },
        _POLY,
        {"level": UNIT_LEVELS},
    ),
    "residential_land": LayerSchema(
        {"landuse_id": "str", "area_m2": "float", "source": "str"},
        _POLY,
    ),
}


def empty_layer(name: str) -> gpd.GeoDataFrame:
    """An empty GeoDataFrame with the columns and dtypes of layer ``name``."""
    schema = LAYER_SCHEMAS[name]
    data: dict[str, pd.Series] = {}
    for col, kind in schema.columns.items():
        base = kind.rstrip("?")
        dtype = {"int": "int64", "float": "float64", "str": "object"}[base]
        data[col] = pd.Series([], dtype=dtype)
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries([], crs=STORAGE_CRS), crs=STORAGE_CRS)


#: optional columns added after schema version 2's first bundles: read as blank when absent
ADDED_COLUMNS: dict[str, tuple[str, ...]] = {"buildings": ("address",)}


def validate_layer(name: str, frame: gpd.GeoDataFrame, *, where: str = "") -> None:
    """Raise :class:`BundleError` naming the layer and column if ``frame`` breaks its schema."""
    schema = LAYER_SCHEMAS[name]
    label = f"{where}layer '{name}'"
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name != "geometry":
        raise BundleError(
            f"{label}: no 'geometry' column; re-create the bundle with `cityos import`"
        )
    crs = frame.crs
    if crs is None or crs.to_epsg() != 4326:
        raise BundleError(f"{label}: stored CRS must be EPSG:4326, found {crs}; re-import the data")
    for col, kind in schema.columns.items():
        if col not in frame.columns:
            raise BundleError(
                f"{label}: missing column '{col}'; the bundle is from another schema version "
                "or was edited, re-create it with `cityos import`"
            )
        series = frame[col]
        nullable = kind.endswith("?")
        base = kind.rstrip("?")
        if not nullable and series.isna().any():
            raise BundleError(f"{label}: column '{col}' has missing values; it must be complete")
        if base == "int":
            ok = pd.api.types.is_integer_dtype(series)
        elif base == "float":
            ok = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        else:
            ok = pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty")
        if not ok:
            raise BundleError(f"{label}: column '{col}' must be {base}, found {series.dtype}")
        allowed = schema.allowed.get(col)
        if allowed is not None:
            bad = set(series.dropna().unique()) - set(allowed)
            if bad:
                raise BundleError(
                    f"{label}: column '{col}' has values {sorted(map(str, bad))[:5]}; "
                    f"allowed: {', '.join(allowed)}"
                )
    if len(frame):
        types = set(frame.geometry.geom_type.dropna().unique())
        if frame.geometry.isna().any() or frame.geometry.is_empty.any():
            raise BundleError(f"{label}: column 'geometry' has empty or missing geometries")
        if not types <= schema.geometry:
            raise BundleError(
                f"{label}: column 'geometry' has {sorted(types)}, expected {sorted(schema.geometry)}"
            )


def validate_flat_layer(name: str, layer: FlatLayer) -> None:
    """:func:`validate_layer` for a :class:`FlatLayer` (its Arrow columns, its polygons)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import shapely

    schema = LAYER_SCHEMAS[name]
    label = f"layer '{name}'"
    for col, kind in schema.columns.items():
        if col not in layer.columns:
            raise BundleError(f"{label}: missing column '{col}'")
        values = layer.columns[col]
        base = kind.rstrip("?")
        if not kind.endswith("?") and values.null_count:
            raise BundleError(f"{label}: column '{col}' has missing values; it must be complete")
        t = values.type
        ok = {
            "int": pa.types.is_integer(t),
            "float": pa.types.is_floating(t) or pa.types.is_integer(t),
            "str": pa.types.is_string(t) or pa.types.is_null(t),
        }[base]
        if not ok:
            raise BundleError(f"{label}: column '{col}' must be {base}, found {t}")
        allowed = schema.allowed.get(col)
        if allowed is not None:
            bad = set(pc.unique(values.drop_null()).to_pylist()) - set(allowed)
            if bad:
                raise BundleError(
                    f"{label}: column '{col}' has values {sorted(map(str, bad))[:5]}; "
                    f"allowed: {', '.join(allowed)}"
                )
    g = layer.geometry
    if len(g.other) and (shapely.is_missing(g.other) | shapely.is_empty(g.other)).any():
        raise BundleError(f"{label}: column 'geometry' has empty or missing geometries")
    types = set(g.geom_types())
    if not types <= schema.geometry:
        raise BundleError(
            f"{label}: column 'geometry' has {sorted(types)}, expected {sorted(schema.geometry)}"
        )
