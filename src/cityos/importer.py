"""``cityos import``: turn an OSM extract and a city's own files into a city bundle.

Four steps, each its own function: **validate** every input and the output (cheap checks, all
before any heavy work), **read** OSM and the city files (:mod:`cityos.sources`; GCJ-02/BD-09 and
any EPSG CRS converted to WGS84), **measure** in a projected CRS (:mod:`cityos.measure`; the UTM
zone of the OSM extract's centre unless given), and **write** the bundle atomically with a
manifest that records every source (with checksum and OSM replication timestamp), the CRS,
counts, warnings and the as-of date.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from cityos.bulk import bulk_work
from cityos.bundle import Bundle, empty_layer, write_bundle
from cityos.classify import FacilityRules, OsmTables, load_osm_tables
from cityos.errors import CityosWarning, InputError
from cityos.extent import DataExtent, data_extent
from cityos.flatlayer import FlatLayer
from cityos.measure import (
    DEFAULT_LEVELS,
    bbox,
    concat,
    measure_buildings,
    measure_crs,
    measure_facilities,
    measure_flat_buildings,
    utm_crs,
    walk_layers,
    with_area,
)
from cityos.outputs import check_output_folder
from cityos.plausibility import check_suspicious, warn_far_away, warn_units_without_data
from cityos.progress import Reporter
from cityos.provenance import source_record
from cityos.registers.check import read_checked
from cityos.sources.cityfiles import (
    PathLike,
    UnitSource,
    read_building_files,
    read_facility_files,
    read_units,
    split_unit_source,
)
from cityos.sources.files import SourceCrs, check_exists, parse_crs
from cityos.sources.osm import OsmExtract, check_node_index, check_osm_file, read_osm
from cityos.version import __version__

__all__ = [
    "DEFAULT_LEVELS",
    "import_city",
    "utm_crs",
]

WGS84 = "EPSG:4326"
OSM_ATTRIBUTION = "© OpenStreetMap contributors, ODbL 1.0 (https://www.openstreetmap.org/copyright)"


class _Warnings:
    """Collects warnings for the manifest and emits them as :class:`CityosWarning`."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, message: str) -> None:
        self.messages.append(message)
        warnings.warn(message, CityosWarning, stacklevel=3)


@dataclass
class _Inputs:
    """The validated inputs of one import."""

    target: Path
    osm: Path | None
    units: list[tuple[str | None, Path]]
    facilities: list[Path]
    buildings: list[Path]
    registers: dict[str, Path]
    crs: SourceCrs | None
    measure_crs: str | None
    as_of: dt.date | None
    levels_default: float
    node_index: str


@dataclass
class _Read:
    """What the read step found: the OSM extract, the city's frames, registers and sources."""

    ext: OsmExtract | None
    units: list[gpd.GeoDataFrame]
    facilities: list[gpd.GeoDataFrame]
    buildings: list[gpd.GeoDataFrame]
    registers: dict[str, pd.DataFrame]
    sources: list[dict[str, Any]] = field(default_factory=list)


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
    inputs = _validate(
        Path(out), osm=osm, units=units, facilities=facilities, buildings=buildings,
        registers=registers or {}, crs=crs, measure_crs=measure_crs, as_of=as_of,
        levels_default=levels_default, node_index=node_index, force=force,
    )  # fmt: skip
    reporter = Reporter(quiet=quiet)
    warn = _Warnings()
    fac_rules = FacilityRules.load(Path(rules) if rules else None)
    tables = load_osm_tables(Path(osm_tables) if osm_tables else None)
    # millions of objects, GBs of arrays: see cityos.bulk
    with bulk_work(), ThreadPoolExecutor(1) as background:
        read = _read(inputs, fac_rules, tables, reporter, warn)
        if read.ext is not None and read.ext.flat_buildings is not None and not read.buildings:
            # the buildings' WKB for the file (C, without the GIL) made while this thread
            # measures the layers; the writer takes it (FlatGeometry.wkb waits for it)
            background.submit(read.ext.flat_buildings.geometry.wkb)
        layers, crs_out, box, extent = _measure(inputs, read, fac_rules, tables, reporter, warn)
        manifest = _manifest(inputs, read, layers, crs_out, box, extent, fac_rules, tables, warn)
        with reporter.stage("writing bundle"):
            return write_bundle(
                inputs.target, layers, manifest, registers=read.registers, force=force
            )


def _validate(
    target: Path,
    *,
    osm: PathLike | None,
    units: Sequence[UnitSource],
    facilities: Sequence[PathLike],
    buildings: Sequence[PathLike],
    registers: Mapping[str, PathLike],
    crs: str | None,
    measure_crs: str | None,
    as_of: str | dt.date | None,
    levels_default: float,
    node_index: str,
    force: bool,
) -> _Inputs:
    """Every cheap check, before any heavy work: the inputs exist and are of a known kind, the
    CRSs and the date parse, the output may be written."""
    if osm is None and not (units or facilities or buildings):
        raise InputError(
            "nothing to import; give an OSM extract and/or --units/--facilities/--buildings"
        )
    if not (math.isfinite(levels_default) and 0 < levels_default <= 200):
        raise InputError(
            f"--levels-default {levels_default:g}: storeys must be a number above 0 and at most 200"
        )
    unit_items = [split_unit_source(u) for u in units]
    inputs = _Inputs(
        target=target,
        osm=Path(osm) if osm is not None else None,
        units=unit_items,
        facilities=[Path(p) for p in facilities],
        buildings=[Path(p) for p in buildings],
        registers={name: Path(p) for name, p in registers.items()},
        crs=parse_crs(crs),
        measure_crs=_measure_crs_or_none(measure_crs),
        as_of=_parse_date(as_of) if as_of is not None else None,
        levels_default=levels_default,
        node_index=node_index,
    )
    if inputs.osm is not None:
        check_osm_file(inputs.osm)
        check_node_index(node_index)
    for _lvl, p in unit_items:
        check_exists(p, "units file")
    for p in [*inputs.facilities, *inputs.buildings]:
        check_exists(p, "input file")
    for p in inputs.registers.values():
        check_exists(p, "register")
    every = [inputs.osm, *(p for _l, p in unit_items), *inputs.facilities, *inputs.buildings,
             *inputs.registers.values()]  # fmt: skip
    check_output_folder(target, "bundle", force=force, inputs=every)
    return inputs


def _measure_crs_or_none(value: str | None) -> str | None:
    return None if value is None else measure_crs(value, None)


def _read(
    inputs: _Inputs, rules: FacilityRules, tables: OsmTables, reporter: Reporter, warn: _Warnings
) -> _Read:
    """Read the OSM extract and every city file into WGS84 frames, with their source records."""
    sources: list[dict[str, Any]] = []
    ext: OsmExtract | None = None
    if inputs.osm is not None:
        with reporter.stage(f"reading {inputs.osm.name}", unit="objects") as advance:
            ext = read_osm(
                inputs.osm, rules=rules, tables=tables, progress=advance,
                location_storage=inputs.node_index, warn=warn,
            )  # fmt: skip
        sources.append(
            source_record(
                inputs.osm, "osm",
                replication_timestamp=ext.replication_timestamp,
                newest_object=ext.newest_timestamp,
                attribution=OSM_ATTRIBUTION,
            )
        )  # fmt: skip
    total = (
        len(inputs.units) + len(inputs.facilities) + len(inputs.buildings) + len(inputs.registers)
    )
    with reporter.stage("reading city files", total=total) as advance:
        unit_frames = read_units(inputs.units, inputs.crs, warn)
        for lvl, p in inputs.units:
            sources.append(source_record(p, "units", level=lvl))
            advance(1)
        fac_frames = read_facility_files(inputs.facilities, inputs.crs, rules, warn)
        label = inputs.crs.label if inputs.crs else None
        for fp in inputs.facilities:
            sources.append(source_record(fp, "facilities", crs=label))
            advance(1)
        bld_frames = read_building_files(inputs.buildings, inputs.crs, tables, warn)
        for bp in inputs.buildings:
            sources.append(source_record(bp, "buildings"))
            advance(1)
        reg_tables: dict[str, pd.DataFrame] = {}
        for name, rp in inputs.registers.items():
            reg_tables[name] = read_checked(name, Path(rp), None)
            sources.append(source_record(rp, "register", name=name, rows=len(reg_tables[name])))
            advance(1)
    warn_far_away(ext, [*unit_frames, *fac_frames, *bld_frames], warn)
    return _Read(ext, unit_frames, fac_frames, bld_frames, reg_tables, sources)


def _measure(
    inputs: _Inputs,
    read: _Read,
    rules: FacilityRules,
    tables: OsmTables,
    reporter: Reporter,
    warn: _Warnings,
) -> tuple[dict[str, gpd.GeoDataFrame], str, tuple[float, float, float, float], DataExtent | None]:
    """Join OSM and the city files, choose the measurement CRS and measure every layer."""
    ext = read.ext
    with reporter.stage("measuring and classifying", total=6) as advance:
        raw_buildings: gpd.GeoDataFrame | FlatLayer
        # the OSM buildings of the flat reader stay flat (no geometries made) unless city
        # files replace them
        if read.buildings:
            raw_buildings = concat(read.buildings, "buildings")
        elif ext is not None and ext.flat_buildings is not None:
            raw_buildings = ext.flat_buildings
        elif ext is not None:
            raw_buildings = ext.buildings.assign(source="osm")
        else:
            raw_buildings = empty_layer("buildings")
        osm_fac = ext.facilities.assign(source="osm") if ext is not None else None
        raw_fac = concat([f for f in [osm_fac, *read.facilities] if f is not None], "facilities")
        osm_units = (
            ext.admin.assign(level=None, source="osm")
            if ext is not None and len(ext.admin)
            else None
        )
        raw_units = concat([f for f in [osm_units, *read.units] if f is not None], "units")
        _refuse_repeated_ids(raw_units, raw_buildings)
        osm_frames = [ext.walk_edge_layer, ext.building_layer] if ext is not None else []
        box = bbox([raw_buildings, raw_units, raw_fac, *osm_frames])
        if box is None:
            raise InputError(
                "the inputs hold no features at all; check the files and the OSM extract"
            )
        # the UTM zone of the OSM extract when there is one: city files in a wrong CRS must not
        # move the zone (they are warned about above)
        centre_box = bbox(osm_frames) or box
        centre = ((centre_box[0] + centre_box[2]) / 2.0, (centre_box[1] + centre_box[3]) / 2.0)
        crs_out = inputs.measure_crs or measure_crs(None, centre)
        advance(1)
        walk_nodes, walk_edges = walk_layers(ext, crs_out)
        advance(1)
        buildings_layer = (
            measure_flat_buildings(raw_buildings, crs_out, tables, inputs.levels_default)
            if isinstance(raw_buildings, FlatLayer)
            else measure_buildings(raw_buildings, crs_out, tables, inputs.levels_default, warn)
        )
        advance(1)
        facilities_layer = measure_facilities(raw_fac, crs_out, rules)
        advance(1)
        green = with_area(ext.green_spaces if ext else None, crs_out, "green_spaces")
        res = with_area(ext.residential_land if ext else None, crs_out, "residential_land")
        advance(2)
    layers = {
        "walk_nodes": walk_nodes,
        "walk_edges": walk_edges,
        "buildings": buildings_layer,
        "facilities": facilities_layer,
        "green_spaces": green,
        "units": raw_units,
        "residential_land": res,
    }
    check_suspicious(layers, ext, read.facilities, read.units, warn)
    extent = data_extent(
        ext.header_bbox if ext is not None else None,
        [
            ext.walk_edge_layer,
            ext.building_layer,
            ext.facilities,
            ext.green_spaces,
            ext.residential_land,
        ]
        if ext is not None
        else [],
        buildings_layer,
    )
    if extent is not None and read.units:
        b = layers["buildings"]
        frame = b.to_geodataframe() if isinstance(b, FlatLayer) else b
        warn_units_without_data(layers["units"], frame, extent, warn)
    return layers, crs_out, box, extent


def _refuse_repeated_ids(units: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame | FlatLayer) -> None:
    if isinstance(buildings, FlatLayer):  # one OSM extract: its ids are unique by themselves
        buildings = gpd.GeoDataFrame({"building_id": pd.Series([], dtype=object)})
    for what, ids in (("unit", units["unit_id"]), ("building", buildings["building_id"])):
        dup = ids[ids.duplicated(keep=False)]
        if len(dup):
            examples = ", ".join(repr(v) for v in sorted(set(map(str, dup)))[:5])
            raise InputError(
                f"{dup.nunique()} {what} ids repeat across the input files ({examples}); "
                "give every file its own codes"
            )


def _manifest(
    inputs: _Inputs,
    read: _Read,
    layers: Mapping[str, gpd.GeoDataFrame],
    crs_out: str,
    box: tuple[float, float, float, float],
    extent: DataExtent | None,
    rules: FacilityRules,
    tables: OsmTables,
    warn: _Warnings,
) -> dict[str, Any]:
    ext = read.ext
    if inputs.as_of is not None:
        as_of_value, as_of_source = inputs.as_of.isoformat(), "given"
    elif ext is not None and ext.replication_timestamp:
        as_of_value, as_of_source = ext.replication_timestamp[:10], "osm replication timestamp"
    elif ext is not None and ext.newest_timestamp:
        as_of_value, as_of_source = ext.newest_timestamp[:10], "newest OSM object"
    else:
        as_of_value, as_of_source = dt.date.today().isoformat(), "import date"
    categories = layers["facilities"]["category"].value_counts().sort_index()
    manifest: dict[str, Any] = {
        "cityos_version": __version__,
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "as_of": as_of_value,
        "as_of_source": as_of_source,
        "crs": crs_out,
        "crs_source": "given" if inputs.measure_crs else "UTM zone of the data's centre",
        "storage_crs": WGS84,
        "bbox": [round(v, 7) for v in box],
        "data_extent": extent.record() if extent is not None else None,
        "layers": {name: len(frame) for name, frame in layers.items()},
        "facility_categories": {str(k): int(v) for k, v in categories.items()},
        "sources": read.sources,
        "settings": {
            "levels_default": inputs.levels_default,
            "storey_height_m": tables.buildings.storey_height_m,
            "facility_rules": rules.source,
            "osm_tables": tables.source,
            "node_index": inputs.node_index,
        },
        "warnings": warn.messages,
        "attribution": [OSM_ATTRIBUTION] if ext is not None else [],
    }
    if ext is not None:
        manifest["osm_stats"] = ext.stats
    return manifest


def _parse_date(value: str | dt.date) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise InputError(f"as-of date {value!r} is not a date; use YYYY-MM-DD") from exc
