"""The operations dashboard (一屏观全城) at ``/``: one page drawn with the vendored MapLibre GL JS
over the bundle's own vector tiles, with the health check's indicators as choropleths.

Everything here is public: units, indicators and their sources, base layers from OSM and the
city's files. Nothing about a person reaches the page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from cityos.bundle import Bundle
from cityos.errors import InputError, NotFoundError
from cityos.healthcheck.results import read_results
from cityos.measure import bbox
from cityos.web import checkup_layers, live
from cityos.web.deps import OpsDep
from cityos.web.tiles import MAX_ZOOM, TileStore, load_map_layers

__all__ = ["MapData", "load_map", "router"]

router = APIRouter(tags=["dashboard"])

#: the indicator columns the page shows for a unit
_SHOWN = ("unit_id", "unit_name", "value", "unit", "target", "target_op", "status", "confirmed",
          "method", "radius_m", "sources", "target_source", "note", "numerator", "denominator",
          "previous", "change", "trend")  # fmt: skip
#: the columns every unit's row carries even when all units agree
_PER_UNIT = frozenset({"unit_id", "unit_name", "value", "status", "previous", "change", "trend"})
_LEVELS = ("city", "subdistrict", "community")


@dataclass(frozen=True)
class MapData:
    """What the dashboard draws: the tiles, and the health check's indicators when loaded."""

    tiles: TileStore
    bounds: tuple[float, float, float, float]
    levels: tuple[str, ...]
    indicators: pd.DataFrame | None
    results: str | None
    priorities: pd.DataFrame | None = None
    #: each unit's box by its map key, to locate it
    boxes: dict[str, list[float]] = field(default_factory=dict)
    #: with a previous year's results: each value's change and trend
    changes: pd.DataFrame | None = None
    previous: str | None = None
    #: the indicators' listing (``/api/v1/map/indicators``) and each indicator's rows by
    #: (system, level, indicator_id), made once: the results do not change while served
    listing: tuple[dict[str, Any], ...] = ()
    rows_of: dict[tuple[str, str, str], Any] = field(default_factory=dict)
    #: every level's units (WGS84, ``key`` = LEVEL:UNIT_ID), for what lies in a unit
    units: gpd.GeoDataFrame | None = None


def _units(bundle: Bundle, results: Path | None) -> gpd.GeoDataFrame:
    """Every level's units: the results' (which hold the units the check generated) or the
    bundle's, with ``key`` = ``LEVEL:UNIT_ID`` (a unit's id on the map)."""
    if results is not None:
        saved = _gpkg_layers(results / "units.gpkg")
        parts = [gpd.read_file(results / "units.gpkg", layer=lv, columns=["unit_id", "name"])
                 .to_crs("EPSG:4326").assign(level=lv)
                 for lv in _LEVELS if lv in saved]  # fmt: skip
        units = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs="EPSG:4326")
    else:
        units = bundle.units[["unit_id", "name", "level", "geometry"]].copy()
    units["level"] = units["level"].fillna("unit")
    units["key"] = units["level"].astype(str) + ":" + units["unit_id"].astype(str)
    return units


def _gpkg_layers(path: Path) -> set[str]:
    import pyogrio

    return {str(name) for name, _ in pyogrio.list_layers(path)}


def load_map(bundle: Bundle, results: str | Path | None,
             previous: str | Path | None = None) -> MapData:  # fmt: skip
    """The dashboard's data: the base layers of ``bundle`` as tiles, the indicators of the
    health-check folder ``results`` (checked, as every reader of results does) with its renewal
    priorities as system ``renewal``, and with ``previous`` (last year's results of the same
    city) each value's change."""
    folder = Path(results) if results is not None else None
    if previous is not None and folder is None:
        raise InputError(
            "--previous needs --results: the change is from the previous results to these"
        )
    indicators = None
    if folder is not None:
        indicators = read_results(folder, also=["units.gpkg"]).indicators
    units = _units(bundle, folder)
    layers = {"units": units, "walk_edges": bundle.walk_edges, "buildings": bundle.buildings,
              "facilities": bundle.facilities, "green_spaces": bundle.green_spaces}  # fmt: skip
    present = set(units["level"])
    levels = tuple(lv for lv in (*_LEVELS, "unit") if lv in present)
    tiles = TileStore(layers, load_map_layers())
    # the first view: the city's data (generated grid units reach beyond it), else its units
    bounds = bbox([f for name, f in layers.items() if name != "units"]) or tiles.bounds
    priorities = None
    if folder is not None and (folder / "priorities" / "priorities.csv").is_file():
        priorities = pd.read_csv(folder / "priorities" / "priorities.csv", encoding="utf-8-sig",
                                 dtype={"unit_id": str})  # fmt: skip
        extra = checkup_layers.priority_indicators(priorities, folder)
        if indicators is not None and len(extra):
            indicators = pd.concat([indicators, extra], ignore_index=True)
    changes = None
    if previous is not None and folder is not None:
        changes = checkup_layers.changes(Path(previous), folder)
    rows_of: dict[tuple[str, str, str], Any] = {}
    if indicators is not None:  # in the results' order: the order the page lists them
        at = indicators.groupby(_KEYS, sort=False).indices
        rows_of = {(str(a), str(b), str(c)): at[(a, b, c)]
                   for a, b, c in indicators[_KEYS].drop_duplicates().itertuples(index=False)}  # fmt: skip
    return MapData(tiles, bounds, levels, indicators, str(folder) if folder else None, priorities,
                   checkup_layers.unit_boxes(units), changes, str(previous) if previous else None,
                   _listing(indicators, rows_of), rows_of, units[["key", "geometry"]])  # fmt: skip


_KEYS = ["system", "level", "indicator_id"]


def _listing(frame: pd.DataFrame | None,
             rows_of: dict[tuple[str, str, str], Any]) -> tuple[dict[str, Any], ...]:  # fmt: skip
    """Each indicator of the results once, in their order: names, unit, direction, whether its
    thresholds are all confirmed, units, units measured and the units by status."""
    if frame is None:
        return ()
    out = []
    for (system, level, ind), at in rows_of.items():
        g = frame.iloc[at]
        first = g.iloc[0]
        out.append({
            "system": system, "level": level, "indicator_id": ind,
            "name_zh": first["name_zh"], "name_en": first["name_en"], "unit": first["unit"],
            "direction": _plain(first.get("direction")), "confirmed": bool(g["confirmed"].all()),
            "units": len(g), "measured": int(g["value"].notna().sum()),
            "status": {str(k): int(v) for k, v in g["status"].value_counts().items()},
        })  # fmt: skip
    return tuple(out)


def get_map(request: Request) -> MapData:
    """The dashboard's data of this service (a dependency)."""
    data: MapData = request.app.state.map
    return data


MapDep = Annotated[MapData, Depends(get_map)]


def _plain(value: Any) -> Any:
    """A value as JSON has it: NaN and missing as null, NumPy scalars as Python's."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):
        value = value.item()
        return None if isinstance(value, float) and math.isnan(value) else value
    return value


@router.get("/", include_in_schema=False)
def page() -> HTMLResponse:
    html = resources.files("cityos.web").joinpath("static/dashboard.html").read_text("utf-8")
    return HTMLResponse(html)


@router.get(
    "/api/v1/map", summary="The map: its box, levels, tile layers and whether results are loaded"
)
def map_config(data: MapDep) -> dict[str, Any]:
    return {
        "bounds": list(data.bounds),
        "levels": list(data.levels),
        "tiles": "/tiles/{z}/{x}/{y}.mvt",
        "maxzoom": MAX_ZOOM,
        "layers": [
            {"id": layer.id, "minzoom": layer.minzoom, "label": layer.label}
            for layer in data.tiles.layers
        ],
        "results": data.results,
        "previous": data.previous,
    }


@router.get(
    "/tiles/{z}/{x}/{y}.mvt",
    summary="A vector tile of the bundle's base layers (Mapbox Vector Tile 2.1)",
    response_class=Response,
    responses={200: {"content": {"application/vnd.mapbox-vector-tile": {}}}},
)
def tile(z: int, x: int, y: int, data: MapDep) -> Response:
    return Response(
        data.tiles.tile(z, x, y),
        media_type="application/vnd.mapbox-vector-tile",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.get("/api/v1/map/indicators", summary="The health check's indicators, by system and level")
def indicators(data: MapDep) -> dict[str, Any]:
    if data.indicators is None:
        return {"results": None, "indicators": []}
    return {"results": data.results, "indicators": list(data.listing)}


@router.get(
    "/api/v1/map/indicators/{system}/{level}/{indicator_id}",
    summary="One indicator's value, target, status and sources in every unit of a level",
)
def indicator_values(system: str, level: str, indicator_id: str, data: MapDep) -> dict[str, Any]:
    frame = data.indicators
    if frame is None:
        raise NotFoundError("no health-check results are loaded: serve with --results RESULTS")
    rows = frame.iloc[data.rows_of.get((system, level, indicator_id), [])]
    if rows.empty:
        raise NotFoundError(
            f"no indicator {indicator_id!r} at level {level!r} in system {system!r}; "
            "GET /api/v1/map/indicators lists them"
        )
    first = rows.iloc[0]
    values = rows["value"].dropna()
    if data.changes is not None:  # last year's value, the change and its trend
        key = pd.MultiIndex.from_arrays([rows["system"], rows["level"], rows["unit_id"].astype(str),
                                         rows["indicator_id"]])  # fmt: skip
        found = data.changes.reindex(key)
        rows = rows.assign(previous=found["old"].to_numpy(), change=found["change"].to_numpy(),
                           trend=found["trend"].fillna("not_comparable").to_numpy())  # fmt: skip
    shown = [c for c in _SHOWN if c in rows]
    # what every unit shares is said once (a city has thousands of communities, one method)
    same = [c for c in shown if c not in _PER_UNIT and rows[c].nunique(dropna=False) == 1]
    return {
        "system": system, "level": level, "indicator_id": indicator_id,
        "name_zh": first["name_zh"], "name_en": first["name_en"],
        "direction": _plain(first.get("direction")),
        "range": [float(values.min()), float(values.max())] if len(values) else None,
        "common": {c: _plain(first[c]) for c in same},
        "units": [{"key": f"{level}:{r['unit_id']}",
                   **{c: _plain(r[c]) for c in shown if c not in same}}
                  for r in rows.to_dict("records")],
    }  # fmt: skip


#: the columns of a unit's renewal priority the page shows
_PRIORITY = ("rank", "score", "score_per_1000_residents", "population", "failing", "no_data",
             "measured", "top_indicator", "explanation", "explanation_en")  # fmt: skip


@router.get(
    "/api/v1/map/units/{level}/{unit_id}",
    summary="One unit side by side: its indicators, renewal priority, tickets, alerts and housing safety",
)
def unit_detail(level: str, unit_id: str, data: MapDep, ops: OpsDep) -> dict[str, Any]:
    """What the page shows when a unit is clicked: every indicator of every system at its
    level (value, target, status), its renewal priority (rank among the level's units), and the
    counts of its hotline tickets (open, overdue, closed in 30 days) and of its alerts not
    closed, by level, and its buildings graded C or D or overdue for inspection. Counts only:
    no ticket's content."""
    frame = data.indicators
    rows = pd.DataFrame() if frame is None else frame[
        (frame["level"] == level) & (frame["unit_id"] == unit_id)
        & (frame["system"] != checkup_layers.RENEWAL)]  # the priority is said on its own  # fmt: skip
    if rows.empty and not data.tiles.has_feature("units", "key", f"{level}:{unit_id}"):
        raise NotFoundError(f"no unit {unit_id!r} at level {level!r}")
    cols = ("system", "indicator_id", "name_zh", "name_en", "value", "unit", "target",
            "target_op", "status", "confirmed")  # fmt: skip
    priority = None
    if data.priorities is not None:
        p = data.priorities[(data.priorities["level"] == level)
                            & (data.priorities["unit_id"] == unit_id)]  # fmt: skip
        if len(p):
            of = int((data.priorities["level"] == level).sum())
            priority = {"of": of, **{c: _plain(p.iloc[0][c]) for c in _PRIORITY if c in p}}
    return {
        "level": level, "unit_id": unit_id,
        "name": _plain(rows["unit_name"].iloc[0]) if len(rows) else None,
        "indicators": [{c: _plain(r[c]) for c in cols} for r in rows.to_dict("records")],
        "priority": priority,
        **live.unit_counts(ops, level, unit_id),
        "housing": unit_housing(data, ops, f"{level}:{unit_id}"),
    }  # fmt: skip


@router.get("/api/v1/map/problems", summary="The problem list: every failing indicator in a unit")
def problem_list(
    data: MapDep, system: str | None = None, level: str | None = None
) -> dict[str, Any]:
    """The health check's problems (status ``fail``), the city first, optionally of one system
    (``complete-community``: the complete-community gaps) or level; each with the unit's box
    (west, south, east, north) for the page to locate it."""
    frame = data.indicators
    if frame is None:
        return {"results": None, "count": 0, "problems": []}
    rows = checkup_layers.problems(frame)
    if system:
        rows = rows[rows["system"] == system]
    if level:
        rows = rows[rows["level"] == level]
    cols = ("system", "level", "unit_id", "unit_name", "indicator_id", "name_zh", "name_en",
            "value", "unit", "target", "target_op", "confirmed")  # fmt: skip
    out = []
    for r in rows.to_dict("records"):
        key = f"{r['level']}:{r['unit_id']}"
        out.append({"key": key, **{c: _plain(r.get(c)) for c in cols}, "bbox": data.boxes.get(key)})
    return {"results": data.results, "count": len(out), "problems": out}


@router.get("/api/v1/map/housing", summary="Buildings graded C or D, and overdue inspections")
def housing_layer(data: MapDep, ops: OpsDep) -> dict[str, Any]:
    """The housing-safety state on the map (the bundle's register and the inspections recorded
    since): every building whose latest appraisal grade is C or D (JGJ 125: local or whole-
    building danger) or whose next inspection is overdue today (``inspection.toml``), at a point
    on its footprint, as a GeoJSON FeatureCollection. No person's data: the register's
    responsible person never leaves it."""
    return {"type": "FeatureCollection", "features": housing_state(data, ops)}


def housing_state(data: MapData, ops: Any) -> list[dict[str, Any]]:
    """The features of :func:`housing_layer`: buildings graded C or D or overdue today."""
    import datetime as dt

    from cityos.ops.inspections import events_table
    from cityos.registers.housing import load_inspection_rules, next_due

    with ops.reading() as conn:
        events = events_table(conn)
    if ops.housing_safety is not None:
        events = pd.concat([ops.housing_safety.astype(str), events], ignore_index=True)
    if events.empty:
        return []
    table = next_due(events, load_inspection_rules(), dt.datetime.now(dt.UTC).date())
    shown = table[table["appraisal_grade"].isin(["C", "D"]) | table["overdue"].astype(bool)]
    where = data.tiles.points("buildings", "building_id", [str(b) for b in shown["building_id"]])
    features = []
    for r in shown.to_dict("records"):
        at = where.get(str(r["building_id"]))
        if at is None:
            continue
        grade = r["appraisal_grade"] if isinstance(r["appraisal_grade"], str) else None
        features.append({"type": "Feature", "id": str(r["building_id"]),
                         "geometry": {"type": "Point", "coordinates": list(at)},
                         "properties": {"building_id": str(r["building_id"]), "grade": grade,
                                        "overdue": bool(r["overdue"]), "days_overdue": int(r["days_overdue"]),
                                        "next_due": None if r["next_due"] is None else str(r["next_due"]),
                                        "rule": str(r["rule"])}})  # fmt: skip
    return features


def unit_housing(data: MapData, ops: Any, key: str) -> dict[str, int]:
    """A unit's housing-safety state: its buildings (by their point on the footprint, boundary
    included) graded C and D, and those whose inspection is overdue today."""
    out = {"C": 0, "D": 0, "overdue": 0}
    if data.units is None:
        return out
    shapes = data.units.geometry[data.units["key"] == key]
    features = housing_state(data, ops) if len(shapes) else []
    if not features:
        return out
    xy = np.array([f["geometry"]["coordinates"] for f in features], dtype=float)
    inside = shapely.intersects_xy(shapes.iloc[0], xy[:, 0], xy[:, 1])
    for f, hit in zip(features, inside, strict=True):
        if hit:
            p = f["properties"]
            if p["grade"] in ("C", "D"):
                out[p["grade"]] += 1
            out["overdue"] += bool(p["overdue"])
    return out
