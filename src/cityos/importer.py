"""``cityos import``: turn an OSM extract and a city's own files into a city bundle.

The steps: check every input exists (before any heavy work), read OSM, read the city files
(converting GCJ-02/BD-09 and any EPSG CRS to WGS84), choose the projected CRS for measurement
(UTM zone of the data's centre unless given), measure lengths and areas in it, derive building
levels and floor area, classify facilities, then write the bundle atomically with a manifest that
records every source (with checksum and OSM replication timestamp), the CRS, counts and the
as-of date.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from numpy.typing import NDArray

from cityos.bundle import (
    BUILDING_USES,
    LAYER_SCHEMAS,
    UNIT_LEVELS,
    Bundle,
    empty_layer,
    write_bundle,
)
from cityos.classify import FacilityRules, OsmTables, load_osm_tables, parse_height, parse_levels
from cityos.errors import CityosWarning, InputError, OutputExistsError
from cityos.extent import DataExtent, data_extent
from cityos.progress import Reporter
from cityos.sources.files import (
    SourceCrs,
    check_exists,
    find_column,
    parse_crs,
    read_geo,
    read_layer,
    read_register,
    stem_id,
)
from cityos.sources.osm import OsmExtract, check_osm_file, read_osm
from cityos.version import __version__

__all__ = [
    "CORE_CATEGORIES",
    "DEFAULT_LEVELS",
    "import_city",
    "utm_crs",
]

WGS84 = "EPSG:4326"
OSM_ATTRIBUTION = "© OpenStreetMap contributors, ODbL 1.0 (https://www.openstreetmap.org/copyright)"

#: Storeys assumed for a building with neither ``building:levels`` nor ``height``: the default of
#: ../shared/STANDARDS.md §11.1 (POP fallback: "footprint × building:levels, default 6 where
#: missing"), an [OP] rule. Override with ``levels_default`` / ``--levels-default``.
DEFAULT_LEVELS = 6.0

#: Categories the health check relies on; an empty one is worth a warning.
CORE_CATEGORIES = (
    "kindergarten", "childcare", "primary_school", "middle_school", "community_health", "clinic",
    "hospital", "elderly_care", "market", "supermarket", "convenience", "pharmacy",
    "community_centre", "cultural_centre", "sports_ground", "fitness", "playground", "toilets",
    "bus_stop", "rail_station", "fire_station", "police", "shelter",
)  # fmt: skip

UNIT_LEVEL_ALIASES = {
    "city": "city", "城区": "city", "城市": "city", "district": "city", "区": "city",
    "subdistrict": "subdistrict", "街道": "subdistrict", "街区": "subdistrict", "乡镇": "subdistrict",
    "street": "subdistrict", "township": "subdistrict",
    "community": "community", "社区": "community", "小区": "community", "居委会": "community",
    "neighbourhood": "community", "neighborhood": "community",
}  # fmt: skip

PathLike = str | os.PathLike[str]
UnitSource = PathLike | tuple[str | None, PathLike]


def utm_crs(lon: float, lat: float) -> str:
    """The WGS84 / UTM zone CRS (``EPSG:326zz`` north, ``EPSG:327zz`` south) containing a point."""
    zone = min(max(math.floor((lon + 180.0) / 6.0) + 1, 1), 60)
    return f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _source(path: Path, kind: str, **extra: Any) -> dict[str, Any]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    stat_time = max(p.stat().st_mtime for p in files) if files else 0.0
    digest = (
        hashlib.sha256("".join(_sha256(p) for p in files).encode()).hexdigest()
        if len(files) > 1
        else (_sha256(files[0]) if files else "")
    )
    return {
        "kind": kind,
        "path": str(path.resolve()),
        "sha256": digest,
        "bytes": sum(p.stat().st_size for p in files),
        "modified": dt.datetime.fromtimestamp(stat_time, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **{k: v for k, v in extra.items() if v is not None},
    }


class _Warnings:
    """Collects warnings for the manifest and emits them as :class:`CityosWarning`."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, message: str) -> None:
        self.messages.append(message)
        warnings.warn(message, CityosWarning, stacklevel=3)


def _split_unit_source(item: UnitSource) -> tuple[str | None, Path]:
    if isinstance(item, tuple):
        level, path = item
        return level, Path(path)
    text = os.fspath(item)
    head, sep, tail = text.partition("=")
    if sep and head.strip().lower() in UNIT_LEVEL_ALIASES | {k: k for k in UNIT_LEVELS}:
        return head.strip(), Path(tail)
    return None, Path(text)


def _normalise_level(value: Any, where: str) -> str | None:
    if (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or str(value).strip() == ""
    ):
        return None
    key = str(value).strip().lower()
    level = UNIT_LEVEL_ALIASES.get(
        key, UNIT_LEVELS[UNIT_LEVELS.index(key)] if key in UNIT_LEVELS else None
    )
    if level is None:
        raise InputError(
            f"{where}: unit level {value!r} is not one of {', '.join(UNIT_LEVELS)} "
            "(or 城区/街道/社区); fix the level column or the LEVEL= prefix"
        )
    return level


def _text_column(frame: pd.DataFrame, candidates: tuple[str, ...]) -> pd.Series | None:
    col = find_column(list(frame.columns), candidates)
    if col is None:
        return None
    return frame[col].where(frame[col].notna(), None).astype(object)


def _ids(
    frame: pd.DataFrame, prefix: str, candidates: tuple[str, ...], *, keep: bool = False
) -> pd.Series:
    """Ids from the first candidate column when complete and unique, else ``prefix:row``.

    ``keep=True`` keeps the city's own codes as they are (unit and building ids, which its
    registers use as keys); otherwise they are prefixed with the file's name.
    """
    col = find_column(list(frame.columns), candidates)
    if col is not None and frame[col].notna().all() and frame[col].astype(str).is_unique:
        codes = frame[col].astype(str)
        return codes.astype(object) if keep else prefix + ":" + codes
    return pd.Series([f"{prefix}:{i}" for i in range(len(frame))], index=frame.index, dtype=object)


def _read_units(sources: Sequence[UnitSource], crs: SourceCrs | None) -> list[gpd.GeoDataFrame]:
    frames = []
    for item in sources:
        level, path = _split_unit_source(item)
        frame = read_layer(path, crs=crs)
        kinds = set(frame.geometry.geom_type)
        if not kinds <= {"Polygon", "MultiPolygon"}:
            raise InputError(f"{path}: units must be polygons, found {sorted(kinds)}")
        if level is not None:
            levels = pd.Series([_normalise_level(level, str(path))] * len(frame), index=frame.index)
        elif (col := find_column(list(frame.columns), ("level", "层级", "级别"))) is not None:
            levels = frame[col].map(lambda v, p=path: _normalise_level(v, str(p)))
            frame = frame.drop(columns=[col])
        else:
            raise InputError(
                f"{path}: unit level unknown; pass it as LEVEL=PATH (e.g. subdistrict={path.name}) "
                "or add a 'level' column"
            )
        level_names = tuple(map(str, levels.dropna().unique()))
        name_candidates = ("name", "名称", "unit_name", *level_names, "街道", "社区")
        name_candidates += tuple(c[:10] for c in name_candidates)  # Shapefile truncates names
        names = _text_column(frame, name_candidates)
        ids = _ids(
            frame, stem_id(path), ("unit_id", "id", "code", "adcode", "编码", "代码"), keep=True
        )
        reserved = set(LAYER_SCHEMAS["units"].columns) | {"geometry"}
        extra = frame.drop(columns=[c for c in frame.columns if c in reserved])
        out = gpd.GeoDataFrame(
            {
                "unit_id": ids.astype(object),
                "name": names
                if names is not None
                else pd.Series([None] * len(frame), index=frame.index, dtype=object),
                "level": levels.astype(object),
                "admin_level": np.nan,
                "source": str(path.name),
            },
            geometry=frame.geometry,
            crs=WGS84,
        )
        for col in extra.columns:
            if col != "geometry":
                out[col] = extra[col].to_numpy()
        frames.append(out)
    return frames


def _read_facility_files(
    sources: Sequence[PathLike], crs: SourceCrs | None, rules: FacilityRules, warn: _Warnings
) -> list[gpd.GeoDataFrame]:
    frames = []
    for src in sources:
        path = Path(src)
        frame = read_geo(path, crs)
        names = _text_column(frame, ("name", "名称", "poi_name"))
        amap = _text_column(frame, ("type", "amap_type", "类型", "poi_type"))
        cat_col = find_column(list(frame.columns), ("category", "类别"))
        ids = _ids(frame, stem_id(path), ("facility_id", "id", "poi_id", "uid"))
        rows: list[tuple[int, str, str]] = []
        if cat_col is not None:
            unknown = set(frame[cat_col].dropna()) - set(rules.categories)
            if unknown:
                raise InputError(
                    f"{path}: unknown categories {sorted(unknown)[:5]} in column '{cat_col}'; "
                    f"use ids from the rules table, e.g. {', '.join(list(rules.categories)[:6])}"
                )
            rows = [
                (i, str(c), "file.category")
                for i, c in enumerate(frame[cat_col])
                if isinstance(c, str)
            ]
        else:
            for i in range(len(frame)):
                name = names.iloc[i] if names is not None else None
                typ = amap.iloc[i] if amap is not None else None
                for cat, rule in rules.classify(name=name, amap=typ):
                    rows.append((i, cat, rule))
        unclassified = len(frame) - len({i for i, _, _ in rows})
        if unclassified:
            warn(
                f"{path.name}: {unclassified} of {len(frame)} rows match no facility category and "
                "were left out; add a 'category' column or a rule"
            )
        idx = np.array([r[0] for r in rows], dtype=np.int64)
        sub = frame.iloc[idx]
        out = gpd.GeoDataFrame(
            {
                "feature_id": ids.iloc[idx].to_numpy(),
                "category": np.array([r[1] for r in rows], dtype=object),
                "rule": np.array([r[2] for r in rows], dtype=object),
                "name": names.iloc[idx].to_numpy()
                if names is not None
                else np.full(len(idx), None, dtype=object),
            },
            geometry=sub.geometry.to_numpy(),
            crs=WGS84,
        )
        out["source"] = path.name
        frames.append(out)
    return frames


def _read_building_files(
    sources: Sequence[PathLike], crs: SourceCrs | None, tables: OsmTables
) -> list[gpd.GeoDataFrame]:
    frames = []
    for src in sources:
        path = Path(src)
        frame = read_layer(path, crs=crs)
        kinds = set(frame.geometry.geom_type)
        if not kinds <= {"Polygon", "MultiPolygon"}:
            raise InputError(
                f"{path}: buildings must be polygons (footprints), found {sorted(kinds)}"
            )
        cols = list(frame.columns)
        use_col = find_column(cols, ("use", "用途"))
        type_col = find_column(cols, ("building", "type", "类型"))
        types = (
            frame[type_col].astype(object)
            if type_col
            else pd.Series(["yes"] * len(frame), index=frame.index)
        )
        types = types.where(types.notna(), "yes").astype(str)
        if use_col is not None:
            use = frame[use_col].map(
                lambda v: {"住宅": "residential", "居住": "residential"}.get(
                    str(v), str(v).strip().lower()
                )
            )
            bad = set(use) - set(BUILDING_USES)
            if bad:
                raise InputError(
                    f"{path}: column '{use_col}' has values {sorted(bad)[:5]}; use "
                    f"{', '.join(BUILDING_USES)} (or 住宅)"
                )
        else:
            use = types.map(lambda v: tables.buildings.use({"building": v}) or "unknown")
        lv_col = find_column(cols, ("levels", "floors", "building:levels", "层数", "floor"))
        h_col = find_column(cols, ("height", "height_m", "高度"))
        out = gpd.GeoDataFrame(
            {
                "building_id": _ids(
                    frame, stem_id(path), ("building_id", "id", "bid", "编号"), keep=True
                ).to_numpy(),
                "building": types.to_numpy(dtype=object),
                "use": use.to_numpy(dtype=object),
                "levels_tag": frame[lv_col].astype(str).to_numpy(dtype=object) if lv_col else None,
                "height_tag": frame[h_col].astype(str).to_numpy(dtype=object) if h_col else None,
                "name": _text_column(frame, ("name", "名称")),
                "vacancy": _vacancy_column(frame, path),
                "source": path.name,
                "levels_from_file": bool(lv_col),
            },
            geometry=frame.geometry.to_numpy(),
            crs=WGS84,
        )
        frames.append(out)
    return frames


_VACANT_WORDS = {"yes", "true", "1", "vacant", "idle", "disused", "abandoned", "是", "闲置", "空置"}
_IN_USE_WORDS = {"", "no", "false", "0", "nan", "none", "否", "在用", "使用"}


def _vacancy_column(frame: pd.DataFrame, path: Path) -> NDArray[np.object_]:
    """``vacant`` where a ``vacancy`` / ``vacant`` / ``闲置`` column says the building is idle."""
    col = find_column(list(frame.columns), ("vacancy", "vacant", "idle", "闲置", "空置"))
    if col is None:
        return np.full(len(frame), None, dtype=object)
    words = frame[col].astype(object).fillna("").astype(str).str.strip().str.lower()
    bad = set(words) - _VACANT_WORDS - _IN_USE_WORDS
    if bad:
        raise InputError(
            f"{path}: column '{col}' has values {sorted(bad)[:5]}; use yes/no (or 闲置/在用)"
        )
    out = np.full(len(frame), None, dtype=object)
    out[words.isin(_VACANT_WORDS).to_numpy()] = "vacant"
    return out


def _concat(frames: list[gpd.GeoDataFrame], name: str) -> gpd.GeoDataFrame:
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


def _measure_buildings(
    raw: gpd.GeoDataFrame, crs: str, tables: OsmTables, levels_default: float
) -> gpd.GeoDataFrame:
    if raw.empty:
        return empty_layer("buildings")
    footprint = raw.geometry.to_crs(crs).area.to_numpy()
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
            "vacancy": raw.get("vacancy", pd.Series([None] * len(raw))).to_numpy(dtype=object),
            "source": raw["source"].to_numpy(dtype=object),
        },
        geometry=raw.geometry.to_numpy(),
        crs=WGS84,
    )


def _measure_facilities(raw: gpd.GeoDataFrame, crs: str, rules: FacilityRules) -> gpd.GeoDataFrame:
    if raw.empty:
        return empty_layer("facilities")
    geoms = raw.geometry.to_numpy()
    poly = shapely.get_type_id(geoms) >= 3  # Polygon, MultiPolygon (and collections)
    area = np.full(len(raw), np.nan)
    if poly.any():
        area[poly] = gpd.GeoSeries(geoms[poly], crs=WGS84).to_crs(crs).area.to_numpy()
        geoms = geoms.copy()
        geoms[poly] = shapely.point_on_surface(geoms[poly])
    line = shapely.get_type_id(geoms) == 1
    if line.any():
        geoms[line] = shapely.line_interpolate_point(geoms[line], 0.5, normalized=True)
    feature = raw["feature_id"].astype(str)
    category = raw["category"].astype(str)
    return gpd.GeoDataFrame(
        {
            "facility_id": (feature + ":" + category).to_numpy(dtype=object),
            "feature_id": feature.to_numpy(dtype=object),
            "category": category.to_numpy(dtype=object),
            "rule": raw["rule"].to_numpy(dtype=object),
            "name": raw["name"].to_numpy(dtype=object),
            "area_m2": area,
            "transit": np.array([rules.transit_capacity(c) for c in category], dtype=object),
            "source": raw["source"].to_numpy(dtype=object),
        },
        geometry=geoms,
        crs=WGS84,
    )


def _with_area(raw: gpd.GeoDataFrame | None, crs: str, name: str) -> gpd.GeoDataFrame:
    """OSM polygons as layer ``name``, with ``area_m2`` measured in ``crs``."""
    if raw is None or raw.empty:
        return empty_layer(name)
    out = raw.assign(source="osm", area_m2=raw.geometry.to_crs(crs).area.to_numpy())
    return out[[*LAYER_SCHEMAS[name].columns, "geometry"]]


def _walk_layers(ext: OsmExtract | None, crs: str) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    if ext is None or ext.walk_edges.empty:
        return empty_layer("walk_nodes"), empty_layer("walk_edges")
    nodes = gpd.GeoDataFrame(
        {"node_id": ext.walk_nodes["node_id"].to_numpy(np.int64)},
        geometry=shapely.points(ext.walk_nodes["lon"].to_numpy(), ext.walk_nodes["lat"].to_numpy()),
        crs=WGS84,
    )
    e = ext.walk_edges
    lengths = e.geometry.to_crs(crs).length.to_numpy()
    edges = gpd.GeoDataFrame(
        {
            "edge_id": np.arange(len(e), dtype=np.int64),
            "u": e["u"].to_numpy(np.int64),
            "v": e["v"].to_numpy(np.int64),
            "osm_way_id": e["osm_way_id"].to_numpy(np.int64),
            "highway": e["highway"].to_numpy(dtype=object),
            "name": e["name"].to_numpy(dtype=object),
            "length_m": lengths,
        },
        geometry=e.geometry.to_numpy(),
        crs=WGS84,
    )
    return nodes, edges


def _bbox(frames: Sequence[gpd.GeoDataFrame]) -> tuple[float, float, float, float] | None:
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


def import_city(
    out: PathLike,
    *,
    osm: PathLike | None = None,
    units: Sequence[UnitSource] = (),
    facilities: Sequence[PathLike] = (),
    buildings: Sequence[PathLike] = (),
    registers: Mapping[str, PathLike] | None = None,
    crs: str | None = None,
    measure_crs: str | None = None,
    as_of: str | dt.date | None = None,
    levels_default: float = DEFAULT_LEVELS,
    rules: PathLike | None = None,
    osm_tables: PathLike | None = None,
    node_index: str = "flex_mem",
    force: bool = False,
    quiet: bool = True,
) -> Bundle:
    """Build a city bundle from an OSM extract and/or the city's own files.

    Parameters
    ----------
    out
        The bundle folder to create (written atomically).
    osm
        An OpenStreetMap extract (``.osm.pbf``; ``.osm`` XML works too).
    units
        Unit polygon files. Each item is a path whose layer has a ``level`` column, a string
        ``"LEVEL=PATH"`` or a tuple ``(LEVEL, PATH)``; LEVEL is ``city``, ``subdistrict`` or
        ``community`` (城区/街道/社区 accepted).
    facilities
        POI tables (CSV/XLSX with lon/lat) or GIS point/polygon layers. A ``category`` column is
        taken as is; otherwise rows are classified by name and Amap ``type`` with the rules table.
    buildings
        Building footprint layers; when given they replace the OSM buildings.
    registers
        Register name → CSV/XLSX table kept in the bundle (e.g. housing-safety inspections).
    crs
        CRS of the city files' coordinates when it differs from what they declare (EPSG code,
        ``gcj02`` or ``bd09``). CSV/XLSX default to WGS84.
    measure_crs
        Projected CRS for lengths and areas; default the UTM zone of the data's centre.
    as_of
        The date the data describe; default the OSM replication timestamp, else the newest OSM
        object, else today.
    levels_default
        Storeys for buildings with neither levels nor height (default :data:`DEFAULT_LEVELS`).
    rules, osm_tables
        Custom facility rules / OSM layer tables (TOML); default the built-in ones.
    node_index
        libosmium node-location index: ``flex_mem`` (default, in memory) or
        ``sparse_file_array,PATH`` to keep the index on disk (about 16 bytes per node;
        ``dense_file_array`` needs 8 bytes per node *id*, about 100 GB for current OSM ids).
    force
        Replace ``out`` if it exists (only once the new bundle is complete).
    quiet
        No progress display.

    Returns
    -------
    Bundle
        The written bundle (its layers validated before writing).
    """
    target = Path(out)
    if target.exists() and not force:
        raise OutputExistsError(f"{target}: output folder exists; pass --force to replace it")
    if osm is None and not (units or facilities or buildings):
        raise InputError(
            "nothing to import; give an OSM extract and/or --units/--facilities/--buildings"
        )
    if not levels_default > 0:
        raise InputError(f"levels default must be positive, got {levels_default}")
    registers = dict(registers or {})
    if osm is not None:
        check_osm_file(Path(osm))
    unit_items = [_split_unit_source(u) for u in units]
    for _lvl, p in unit_items:
        check_exists(p, "units file")
    for p in [*map(Path, facilities), *map(Path, buildings)]:
        check_exists(p, "input file")
    for p in map(Path, registers.values()):
        check_exists(p, "register")
    src_crs = parse_crs(crs)
    if measure_crs is not None:
        try:
            mcrs = pyproj.CRS.from_user_input(measure_crs)
        except pyproj.exceptions.CRSError as exc:
            raise InputError(
                f"unknown measurement CRS {measure_crs!r}; use a projected EPSG code"
            ) from exc
        if not mcrs.is_projected:
            raise InputError(
                f"measurement CRS {measure_crs} is not projected; give one in metres (e.g. UTM)"
            )
    as_of_date = _parse_date(as_of) if as_of is not None else None

    reporter = Reporter(quiet=quiet)
    warn = _Warnings()
    fac_rules = FacilityRules.load(Path(rules) if rules else None)
    tables = load_osm_tables(Path(osm_tables) if osm_tables else None)
    sources: list[dict[str, Any]] = []

    ext: OsmExtract | None = None
    if osm is not None:
        with reporter.stage(f"reading {Path(osm).name}", unit="objects") as advance:
            ext = read_osm(
                osm, rules=fac_rules, tables=tables, progress=advance, location_storage=node_index
            )
        sources.append(
            _source(
                Path(osm), "osm",
                replication_timestamp=ext.replication_timestamp,
                newest_object=ext.newest_timestamp,
                attribution=OSM_ATTRIBUTION,
            )
        )  # fmt: skip

    with reporter.stage(
        "reading city files", total=len(units) + len(facilities) + len(buildings) + len(registers)
    ) as advance:
        unit_frames = _read_units(units, src_crs)
        for lvl, p in unit_items:
            sources.append(_source(p, "units", level=lvl))
            advance(1)
        fac_frames = _read_facility_files(facilities, src_crs, fac_rules, warn)
        for fp in facilities:
            sources.append(_source(Path(fp), "facilities", crs=src_crs.label if src_crs else None))
            advance(1)
        bld_frames = _read_building_files(buildings, src_crs, tables)
        for bp in buildings:
            sources.append(_source(Path(bp), "buildings"))
            advance(1)
        reg_tables: dict[str, pd.DataFrame] = {}
        for name, rp in registers.items():
            reg_tables[name] = read_register(rp)
            sources.append(_source(Path(rp), "register", name=name, rows=len(reg_tables[name])))
            advance(1)

    with reporter.stage("measuring and classifying", total=6) as advance:
        raw_buildings = _concat(bld_frames, "buildings") if bld_frames else None
        if raw_buildings is None:
            raw_buildings = (
                ext.buildings.assign(source="osm") if ext is not None else empty_layer("buildings")
            )
        osm_fac = ext.facilities.assign(source="osm") if ext is not None else None
        raw_fac = _concat([f for f in [osm_fac, *fac_frames] if f is not None], "facilities")
        osm_units = (
            ext.admin.assign(level=None, source="osm")
            if ext is not None and len(ext.admin)
            else None
        )
        raw_units = _concat([f for f in [osm_units, *unit_frames] if f is not None], "units")
        raw_buildings_ids = (
            raw_buildings["building_id"] if len(raw_buildings) else pd.Series([], dtype=object)
        )
        for what, ids in (("unit", raw_units["unit_id"]), ("building", raw_buildings_ids)):
            dup = ids[ids.duplicated()]
            if len(dup):
                raise InputError(
                    f"{what} ids repeat across the input files (e.g. {dup.iloc[0]!r}); "
                    "give every file its own codes"
                )

        extent_frames = [
            ext.walk_edges if ext is not None else empty_layer("walk_edges"),
            raw_buildings, raw_units, raw_fac,
        ]  # fmt: skip
        bbox = _bbox(extent_frames)
        if bbox is None:
            raise InputError(
                "the inputs hold no features at all; check the files and the OSM extract"
            )
        centre = ((bbox[0] + bbox[2]) / 2.0, (bbox[1] + bbox[3]) / 2.0)
        crs_out = (
            f"EPSG:{pyproj.CRS.from_user_input(measure_crs).to_epsg()}"
            if measure_crs
            else utm_crs(*centre)
        )
        advance(1)
        walk_nodes, walk_edges = _walk_layers(ext, crs_out)
        advance(1)
        buildings_layer = _measure_buildings(raw_buildings, crs_out, tables, levels_default)
        advance(1)
        facilities_layer = _measure_facilities(raw_fac, crs_out, fac_rules)
        advance(1)
        green = _with_area(ext.green_spaces if ext else None, crs_out, "green_spaces")
        res = _with_area(ext.residential_land if ext else None, crs_out, "residential_land")
        advance(1)
        units_layer = raw_units
        advance(1)

    layers = {
        "walk_nodes": walk_nodes,
        "walk_edges": walk_edges,
        "buildings": buildings_layer,
        "facilities": facilities_layer,
        "green_spaces": green,
        "units": units_layer,
        "residential_land": res,
    }
    _check_suspicious(layers, ext, fac_frames, unit_frames, warn)
    extent = data_extent(
        ext.header_bbox if ext is not None else None,
        [ext.walk_edges, ext.buildings, ext.facilities, ext.green_spaces, ext.residential_land]
        if ext is not None
        else [],
        buildings_layer,
    )
    if extent is not None and unit_frames:
        _warn_units_without_data(layers["units"], layers["buildings"], extent, warn)

    if as_of_date is not None:
        as_of_value, as_of_source = as_of_date.isoformat(), "given"
    elif ext is not None and ext.replication_timestamp:
        as_of_value, as_of_source = ext.replication_timestamp[:10], "osm replication timestamp"
    elif ext is not None and ext.newest_timestamp:
        as_of_value, as_of_source = ext.newest_timestamp[:10], "newest OSM object"
    else:
        as_of_value, as_of_source = dt.date.today().isoformat(), "import date"

    counts = {name: len(frame) for name, frame in layers.items()}
    categories = facilities_layer["category"].value_counts().sort_index()
    manifest: dict[str, Any] = {
        "cityos_version": __version__,
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "as_of": as_of_value,
        "as_of_source": as_of_source,
        "crs": crs_out,
        "crs_source": "given" if measure_crs else "UTM zone of the data's centre",
        "storage_crs": WGS84,
        "bbox": [round(v, 7) for v in bbox],
        "data_extent": extent.record() if extent is not None else None,
        "layers": counts,
        "facility_categories": {str(k): int(v) for k, v in categories.items()},
        "sources": sources,
        "settings": {
            "levels_default": levels_default,
            "storey_height_m": tables.buildings.storey_height_m,
            "facility_rules": fac_rules.source,
            "osm_tables": tables.source,
            "node_index": node_index,
        },
        "warnings": warn.messages,
        "attribution": [OSM_ATTRIBUTION] if ext is not None else [],
    }
    if ext is not None:
        manifest["osm_stats"] = ext.stats
    with reporter.stage("writing bundle"):
        return write_bundle(target, layers, manifest, registers=reg_tables, force=force)


def _warn_units_without_data(
    units: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame, extent: DataExtent, warn: _Warnings
) -> None:
    """Warn how many of the city's units lie outside the data or hold no building: the health
    check reports them as no data (``--clip-units`` leaves them out)."""
    given = units[units["source"] != "osm"] if "source" in units else units
    if given.empty:
        return
    points = shapely.point_on_surface(buildings.geometry.to_numpy())
    hit = np.zeros(len(given), dtype=bool)
    if len(points):
        hit[np.unique(given.sindex.query(points, predicate="intersects")[1])] = True
    outside = ~shapely.intersects(given.geometry.to_numpy(), extent.geometry)
    empty = ~hit & ~outside
    if outside.any() or empty.any():
        warn(
            f"units: {int(outside.sum())} of {len(given)} units lie outside the data ({extent.source}) "
            f"and {int(empty.sum())} more hold no building; the health check reports them as no data "
            "(`cityos checkup --clip-units` leaves them out)"
        )


def _parse_date(value: str | dt.date) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise InputError(f"as-of date {value!r} is not a date; use YYYY-MM-DD") from exc


def _check_suspicious(
    layers: Mapping[str, gpd.GeoDataFrame],
    ext: OsmExtract | None,
    fac_frames: Sequence[gpd.GeoDataFrame],
    unit_frames: Sequence[gpd.GeoDataFrame],
    warn: _Warnings,
) -> None:
    present = set(layers["facilities"]["category"])
    empty = [c for c in CORE_CATEGORIES if c not in present]
    if empty:
        warn(
            f"no facilities in {len(empty)} categories the health check uses: {', '.join(empty)}; "
            "their indicators will report no data unless a city file supplies them"
        )
    if ext is not None:
        for name in ("walk_edges", "buildings"):
            if layers[name].empty:
                warn(f"layer '{name}' is empty: the OSM extract has none; check the extract")
    # facilities from city files lying outside the city: outside the units, else the OSM extent
    area: Any = None
    if unit_frames:
        area = shapely.union_all(pd.concat([f.geometry for f in unit_frames]).to_numpy())
    elif ext is not None and not ext.walk_edges.empty:
        area = shapely.box(*ext.walk_edges.total_bounds)
    if area is not None:
        for frame in fac_frames:
            if frame.empty:
                continue
            outside = ~shapely.intersects(area, frame.geometry.to_numpy())
            if outside.any():
                warn(
                    f"{frame['source'].iloc[0]}: {int(outside.sum())} of {len(frame)} facilities lie outside "
                    "the city area (units, else the OSM extent); check their CRS (--crs gcj02?) or the extract"
                )
