"""The measure step of ``cityos import``: the projected CRS for lengths and areas, then every
layer measured in it (footprints, floor area from levels or height, facility areas and points,
street lengths, polygon areas).

Storeys come from ``building:levels`` (or the city file's levels column), else from the height
divided by the storey height of the OSM tables, else :data:`DEFAULT_LEVELS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyproj
import shapely

from cityos.bundle import LAYER_SCHEMAS, empty_layer
from cityos.classify import FacilityRules, OsmTables, parse_height, parse_levels
from cityos.errors import InputError
from cityos.flatlayer import FlatLayer
from cityos.sources.osm import OsmExtract

__all__ = [
    "DEFAULT_LEVELS",
    "bbox",
    "concat",
    "measure_buildings",
    "measure_crs",
    "measure_facilities",
    "measure_flat_buildings",
    "projected_area",
    "utm_crs",
    "walk_layers",
    "with_area",
]

WGS84 = "EPSG:4326"

#: Storeys assumed for a building with neither ``building:levels`` nor ``height``: the default of
#: ../shared/STANDARDS.md §11.1 (POP fallback: "footprint × building:levels, default 6 where
#: missing"), an [OP] rule. Override with ``levels_default`` / ``--levels-default``.
DEFAULT_LEVELS = 6.0

_METRE_NAMES = {"metre", "meter", "metres", "meters"}


def utm_crs(lon: float, lat: float) -> str:
    """The WGS84 / UTM zone CRS (``EPSG:326zz`` north, ``EPSG:327zz`` south) containing a point."""
    zone = min(max(math.floor((lon + 180.0) / 6.0) + 1, 1), 60)
    return f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"


def measure_crs(value: str | None, centre: tuple[float, float] | None) -> str:
    """The projected CRS for measuring: ``value`` when given (checked to be projected in metres),
    else the UTM zone of ``centre`` (lon, lat).

    Raises
    ------
    InputError
        ``value`` is unknown, not projected, or not in metres (US feet would scale every area).
    """
    if value is None:
        if centre is None:
            raise InputError(
                "the inputs hold no features at all; check the files and the OSM extract"
            )
        return utm_crs(*centre)
    try:
        crs = pyproj.CRS.from_user_input(value)
    except pyproj.exceptions.CRSError as exc:
        raise InputError(
            f"--measure-crs {value}: unknown CRS; use a projected EPSG code in metres (e.g. a UTM zone)"
        ) from exc
    if not crs.is_projected:
        raise InputError(
            f"--measure-crs {value}: measurement CRS is not projected; give one in metres (e.g. UTM)"
        )
    units = {str(a.unit_name).lower() for a in crs.axis_info}
    if not units <= _METRE_NAMES:
        raise InputError(
            f"--measure-crs {value}: its axes are in {', '.join(sorted(units))}, not metres; "
            "lengths and areas would be wrong: give a CRS in metres (e.g. a UTM zone)"
        )
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()


def projected_area(geoms: gpd.GeoSeries, crs: str) -> np.ndarray:
    """Area (m²) of each geometry measured in the projected ``crs``, without building the
    projected geometries: the polygons' coordinates as one array, projected in one call, and the
    shoelace formula per ring.

    For a ring p₀ … pₙ₋₁ (pₙ₋₁ = p₀), ``A = ½ |Σᵢ₌₁ⁿ⁻² (xᵢ − x₀)(yᵢ₋₁ − yᵢ₊₁)|``: GEOS's own
    form (shifted by x₀ for precision), so the result equals ``geoms.to_crs(crs).area``
    bit for bit on the footprints tested; a polygon is its shell less its holes, a multipolygon
    the sum of its parts. Polygons without holes (nearly every footprint) are read with
    ``shapely.get_coordinates``, the rest with ``shapely.to_ragged_array``. Other geometry
    types are measured by GEOS after ``to_crs`` (points and lines have area 0, missing ones NaN).
    """
    values = np.asarray(geoms.array, dtype=object)
    area = np.zeros(len(values))
    kind = shapely.get_type_id(values)
    simple = (kind == 3) & (shapely.get_num_interior_rings(values) == 0)
    simple &= ~shapely.is_empty(values)
    nested = (kind == 6) | ((kind == 3) & ~simple)
    other = ~(simple | nested)
    if other.any():
        area[other] = gpd.GeoSeries(values[other], crs=geoms.crs).to_crs(crs).area.to_numpy()
    if not (simple | nested).any():
        return area
    project = pyproj.Transformer.from_crs(geoms.crs, crs, always_xy=True).transform
    if simple.any():
        xy = shapely.get_coordinates(values[simple])
        ring_at = np.concatenate([[0], np.cumsum(shapely.get_num_coordinates(values[simple]))])
        area[simple] = _ring_areas(*project(xy[:, 0], xy[:, 1]), ring_at)
    if nested.any():
        _, xy, offsets = shapely.to_ragged_array(values[nested])
        ring_at, poly_at = offsets[0], offsets[1]
        # polygons only: one polygon per geometry; with multipolygons, their offsets
        geom_at = offsets[2] if len(offsets) == 3 else np.arange(len(poly_at))
        rings = _ring_areas(*project(xy[:, 0], xy[:, 1]), ring_at)
        sign = np.full(len(rings), -1.0)
        sign[poly_at[:-1][np.diff(poly_at) > 0]] = 1.0  # each polygon's first ring is its shell
        polygon = np.repeat(np.arange(len(poly_at) - 1), np.diff(poly_at))
        geom = np.repeat(np.arange(len(geom_at) - 1), np.diff(geom_at))
        area[nested] = np.bincount(geom[polygon], weights=sign * rings, minlength=int(nested.sum()))
    return area


def _ring_areas(x: np.ndarray, y: np.ndarray, ring_at: np.ndarray) -> np.ndarray:
    """Unsigned area of each closed ring ``x[ring_at[k]:ring_at[k + 1]]`` (shoelace, GEOS form)."""
    starts = ring_at[:-1]
    ring = np.repeat(np.arange(len(starts)), np.diff(ring_at))
    inner = np.ones(len(x), dtype=bool)
    inner[starts] = False
    inner[ring_at[1:] - 1] = False
    i = np.flatnonzero(inner)
    r = ring[i]
    twice = np.bincount(r, weights=(x[i] - x[starts][r]) * (y[i - 1] - y[i + 1]),
                        minlength=len(starts))  # fmt: skip
    return np.abs(twice) / 2.0


def concat(frames: list[gpd.GeoDataFrame], name: str) -> gpd.GeoDataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty_layer(name)
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=WGS84)


def _parse_numbers(
    values: np.ndarray, parse: Callable[[str | None], float | None], *, upper: float
) -> np.ndarray:
    """Vectorised tag parsing: plain numbers at C speed, the rest (``"3;5"``, ``"12 m"``) by
    ``parse``; zero, negative and implausible values become NaN, as ``parse`` returns None."""
    numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(
        dtype=float, copy=True
    )
    is_text = np.fromiter((isinstance(v, str) for v in values), dtype=bool, count=len(values))
    for i in np.flatnonzero(np.isnan(numbers) & is_text):
        parsed = parse(values[i])
        numbers[i] = np.nan if parsed is None else parsed
    numbers[(numbers <= 0) | (numbers > upper)] = np.nan
    return numbers


def measure_buildings(
    raw: gpd.GeoDataFrame,
    crs: str,
    tables: OsmTables,
    levels_default: float,
    warn: Callable[[str], None] | None = None,
) -> gpd.GeoDataFrame:
    """The ``buildings`` layer: footprint (m² in ``crs``), levels and their source (``file``,
    ``tag``, ``height`` or ``default``), floor area = footprint × levels.

    A city file's storey count that is not a positive number (``-3``, ``abc``) is counted in a
    warning through ``warn`` and replaced as a missing one would be.
    """
    if raw.empty:
        return empty_layer("buildings")
    footprint = projected_area(raw.geometry, crs)
    levels_tag = raw.get("levels_tag", pd.Series([None] * len(raw))).to_numpy(dtype=object)
    height_tag = raw.get("height_tag", pd.Series([None] * len(raw))).to_numpy(dtype=object)
    from_file = (
        raw.get("levels_from_file", pd.Series([False] * len(raw)))
        .fillna(False)
        .to_numpy(dtype=bool)
    )
    levels = _parse_numbers(levels_tag, parse_levels, upper=200.0)
    height = _parse_numbers(height_tag, parse_height, upper=1000.0)
    source = np.where(from_file, "file", "tag").astype(object)
    from_height = np.isnan(levels) & ~np.isnan(height)
    levels[from_height] = np.maximum(
        1.0, np.round(height[from_height] / tables.buildings.storey_height_m)
    )
    source[from_height] = "height"
    default = np.isnan(levels)
    bad = default & from_file  # a city file's count that did not parse (only those rows)
    if bad.any():
        tags = levels_tag[bad]
        bad[bad] = [v is not None and str(v).strip() not in ("", "nan", "None") for v in tags]
    if warn is not None and bad.any():
        examples = ", ".join(repr(str(v)) for v in pd.unique(levels_tag[bad])[:3])
        files = ", ".join(sorted(set(map(str, raw["source"].to_numpy()[bad]))))
        warn(
            f"{files}: {int(bad.sum())} buildings have storey counts that are not positive numbers "
            f"({examples}); {levels_default:g} storeys (--levels-default) are assumed for them"
        )
    levels[default] = levels_default
    source[default] = "default"
    return gpd.GeoDataFrame(
        {
            "building_id": raw["building_id"].to_numpy(dtype=object),
            "building": raw["building"].to_numpy(dtype=object),
            "use": raw["use"].to_numpy(dtype=object),
            "levels": levels,
            "levels_source": source,
            "height_m": height,
            "footprint_m2": footprint,
            "floor_area_m2": footprint * levels,
            "name": raw["name"].to_numpy(dtype=object),
            "address": (
                raw["address"] if "address" in raw else pd.Series([None] * len(raw))
            ).to_numpy(dtype=object),
            "vacancy": raw.get("vacancy", pd.Series([None] * len(raw))).to_numpy(dtype=object),
            "source": raw["source"].to_numpy(dtype=object),
        },
        geometry=raw.geometry.to_numpy(),
        crs=WGS84,
    )


def _parse_column(
    values: pa.Array, parse: Callable[[str | None], float | None], *, upper: float
) -> np.ndarray:
    """:func:`_parse_numbers` of an Arrow text column, each distinct value parsed once."""
    if pa.types.is_null(values.type):
        return np.full(len(values), np.nan)
    codes = values.dictionary_encode()
    distinct = np.asarray(codes.dictionary.to_numpy(zero_copy_only=False), dtype=object)
    parsed = _parse_numbers(distinct, parse, upper=upper)
    at = pc.fill_null(codes.indices, -1).to_numpy()
    out = np.full(len(values), np.nan)
    out[at >= 0] = parsed[at[at >= 0]]
    return out


def measure_flat_buildings(
    raw: FlatLayer, crs: str, tables: OsmTables, levels_default: float
) -> FlatLayer:
    """:func:`measure_buildings` for the OSM buildings of the flat reader, column by column:
    the same layer (``tests/test_importer.py`` compares the two), without making geometries."""
    footprint = raw.geometry.areas(crs)
    levels = _parse_column(raw.columns["levels_tag"], parse_levels, upper=200.0)
    height = _parse_column(raw.columns["height_tag"], parse_height, upper=1000.0)
    source = np.zeros(len(raw), dtype=np.int8)  # 0 tag, 1 height, 2 default
    from_height = np.isnan(levels) & ~np.isnan(height)
    levels[from_height] = np.maximum(
        1.0, np.round(height[from_height] / tables.buildings.storey_height_m)
    )
    source[from_height] = 1
    default = np.isnan(levels)
    levels[default] = levels_default
    source[default] = 2

    def labels(codes: np.ndarray, names: list[str]) -> pa.Array:
        return pa.DictionaryArray.from_arrays(codes, pa.array(names)).cast(pa.string())

    c = raw.columns
    return FlatLayer(
        {
            "building_id": c["building_id"],
            "building": c["building"],
            "use": c["use"],
            "levels": pa.array(levels),
            "levels_source": labels(source, ["tag", "height", "default"]),
            "height_m": pa.array(height),
            "footprint_m2": pa.array(footprint),
            "floor_area_m2": pa.array(footprint * levels),
            "name": c["name"],
            "address": c["address"],
            "vacancy": c["vacancy"],
            "source": labels(np.zeros(len(raw), dtype=np.int8), ["osm"]),
        },
        raw.geometry,
    )


def measure_facilities(raw: gpd.GeoDataFrame, crs: str, rules: FacilityRules) -> gpd.GeoDataFrame:
    if raw.empty:
        return empty_layer("facilities")
    geoms = raw.geometry.to_numpy()
    poly = shapely.get_type_id(geoms) >= 3  # Polygon, MultiPolygon (and collections)
    area = np.full(len(raw), np.nan)
    if poly.any():
        area[poly] = projected_area(gpd.GeoSeries(geoms[poly], crs=raw.crs), crs)
        geoms = geoms.copy()
        geoms[poly] = shapely.point_on_surface(geoms[poly])
    line = shapely.get_type_id(geoms) == 1
    if line.any():
        geoms[line] = shapely.line_interpolate_point(geoms[line], 0.5, normalized=True)
    feature = raw["feature_id"].astype(str)
    category = raw["category"].astype(str)
    transit = {c: rules.transit_capacity(c) for c in category.unique().tolist()}
    return gpd.GeoDataFrame(
        {
            "facility_id": (feature + ":" + category).to_numpy(dtype=object),
            "feature_id": feature.to_numpy(dtype=object),
            "category": category.to_numpy(dtype=object),
            "rule": raw["rule"].to_numpy(dtype=object),
            "name": raw["name"].to_numpy(dtype=object),
            "area_m2": area,
            "transit": np.array([transit[c] for c in category.tolist()], dtype=object),
            "source": raw["source"].to_numpy(dtype=object),
        },
        geometry=geoms,
        crs=WGS84,
    )


def with_area(raw: gpd.GeoDataFrame | None, crs: str, name: str) -> gpd.GeoDataFrame:
    """OSM polygons as layer ``name``, with ``area_m2`` measured in ``crs``."""
    if raw is None or raw.empty:
        return empty_layer(name)
    out = raw.assign(source="osm", area_m2=projected_area(raw.geometry, crs))
    return out[[*LAYER_SCHEMAS[name].columns, "geometry"]]


def walk_layers(
    ext: OsmExtract | None, crs: str
) -> tuple[gpd.GeoDataFrame, FlatLayer | gpd.GeoDataFrame]:
    """The walk layers: nodes as points, edges (a flat layer) with their length (m) in ``crs``."""
    if ext is None or ext.walk_edge_layer.empty:
        return empty_layer("walk_nodes"), empty_layer("walk_edges")
    nodes = gpd.GeoDataFrame(
        {"node_id": ext.walk_nodes["node_id"].to_numpy(np.int64)},
        geometry=shapely.points(ext.walk_nodes["lon"].to_numpy(), ext.walk_nodes["lat"].to_numpy()),
        crs=WGS84,
    )
    e = ext.walk_edge_layer
    c = e.columns
    edges = FlatLayer(
        {
            "edge_id": pa.array(np.arange(len(e), dtype=np.int64)),
            "u": c["u"],
            "v": c["v"],
            "osm_way_id": c["osm_way_id"],
            "highway": c["highway"],
            "name": c["name"],
            "length_m": pa.array(e.geometry.lengths(crs)),
        },
        e.geometry,
    )
    return nodes, edges


def bbox(frames: Sequence[gpd.GeoDataFrame]) -> tuple[float, float, float, float] | None:
    boxes = [f.total_bounds for f in frames if len(f)]
    if not boxes:
        return None
    arr = np.array(boxes)
    return (
        float(arr[:, 0].min()),
        float(arr[:, 1].min()),
        float(arr[:, 2].max()),
        float(arr[:, 3].max()),
    )
