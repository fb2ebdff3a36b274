"""The city's own files for a bundle: unit polygons, facility tables and building footprints.

Each reader turns one kind of file into the raw columns the import step measures: ids (the city's
own codes kept, so that its registers match), names, levels, categories. Problems are reported
all at once where they can be (every bad level, every repeated id) and suspicious input is counted
in a warning through the ``warn`` callback the import passes in.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cityos.bundle import BUILDING_USES, LAYER_SCHEMAS, UNIT_LEVELS
from cityos.classify import FacilityRules, OsmTables
from cityos.errors import InputError
from cityos.naming import unknown_names
from cityos.sources.files import SourceCrs, find_column, read_geo, read_layer, stem_id
from cityos.validity import repair_polygons

__all__ = [
    "UNIT_LEVEL_ALIASES",
    "PathLike",
    "UnitSource",
    "read_building_files",
    "read_facility_files",
    "read_units",
    "split_unit_source",
]

WGS84 = "EPSG:4326"

UNIT_LEVEL_ALIASES = {
    "city": "city", "城区": "city", "城市": "city", "district": "city", "区": "city",
    "subdistrict": "subdistrict", "街道": "subdistrict", "街区": "subdistrict", "乡镇": "subdistrict",
    "street": "subdistrict", "township": "subdistrict",
    "community": "community", "社区": "community", "小区": "community", "居委会": "community",
    "neighbourhood": "community", "neighborhood": "community",
}  # fmt: skip

PathLike = str | os.PathLike[str]
UnitSource = PathLike | tuple[str | None, PathLike]
Warn = Callable[[str], None]

_LEVEL_WORDS = f"{', '.join(UNIT_LEVELS)} (or 城区/街道/社区)"


def split_unit_source(item: UnitSource) -> tuple[str | None, Path]:
    """``(level, path)`` of a units source: ``"LEVEL=PATH"``, ``(LEVEL, PATH)`` or a bare path.

    A prefix that is not a level (``foo=units.gpkg``) is refused with the known levels, unless the
    whole text is an existing file's name.
    """
    if isinstance(item, tuple):
        level, path = item
        return level, Path(path)
    text = os.fspath(item)
    head, sep, tail = text.partition("=")
    if sep and head.strip().lower() in UNIT_LEVEL_ALIASES:
        return head.strip(), Path(tail)
    if sep and not Path(text).exists() and "/" not in head and os.sep not in head:
        raise InputError(
            f"--units {text}: unknown level {head!r}; use {_LEVEL_WORDS}, e.g. subdistrict={tail}"
        )
    return None, Path(text)


def _normalise_level(value: Any, where: str) -> str | None:
    if (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or str(value).strip() == ""
    ):
        return None
    level = UNIT_LEVEL_ALIASES.get(str(value).strip().lower())
    if level is None:
        raise InputError(
            f"{where}: unit level {value!r} is not one of {_LEVEL_WORDS}; fix the level column "
            "or the LEVEL= prefix"
        )
    return level


def text_column(frame: pd.DataFrame, candidates: tuple[str, ...]) -> pd.Series | None:
    """The first candidate column as objects with missing values as None, or None."""
    col = find_column(list(frame.columns), candidates)
    if col is None:
        return None
    return frame[col].where(frame[col].notna(), None).astype(object)


def city_ids(frame: pd.DataFrame, path: Path, candidates: tuple[str, ...], what: str) -> pd.Series:
    """The city's own codes for units or buildings, kept as they are (its registers use them as
    keys), else ``stem:row``.

    Raises
    ------
    InputError
        The id column has blank cells or repeats codes (either would re-key the registers).
    """
    col = find_column(list(frame.columns), candidates)
    if col is None:
        return pd.Series(
            [f"{stem_id(path)}:{i}" for i in range(len(frame))], index=frame.index, dtype=object
        )
    codes = frame[col].astype(object).where(frame[col].notna(), None)
    text = codes.map(lambda v: None if v is None or str(v).strip() == "" else str(v).strip())
    if text.isna().any():
        raise InputError(
            f"{path}: {int(text.isna().sum())} {what}s have no '{col}' (first at row "
            f"{int(np.flatnonzero(text.isna().to_numpy())[0]) + 1}); fill the codes or drop the column"
        )
    dup = text[text.duplicated(keep=False)]
    if len(dup):
        examples = ", ".join(repr(v) for v in sorted(set(dup))[:5])
        raise InputError(
            f"{path}: {dup.nunique()} {what} codes in '{col}' repeat ({examples}); registers are "
            "keyed by these codes: make every code unique"
        )
    return text.astype(object)


def feature_ids(
    frame: pd.DataFrame, path: Path, candidates: tuple[str, ...], warn: Warn
) -> pd.Series:
    """Facility feature ids ``stem:code`` from the id column, else ``stem:row``; a repeated code
    gets ``#2``, ``#3`` … and a warning counts them (facilities are not register keys)."""
    prefix = stem_id(path)
    col = find_column(list(frame.columns), candidates)
    if col is None or frame[col].isna().any():
        return pd.Series(
            [f"{prefix}:{i}" for i in range(len(frame))], index=frame.index, dtype=object
        )
    codes = frame[col].astype(str).str.strip()
    nth = codes.groupby(codes).cumcount()
    repeated = nth > 0
    if repeated.any():
        warn(
            f"{path.name}: {int(repeated.sum())} rows repeat a facility id in '{col}' "
            f"(e.g. {codes[repeated].iloc[0]!r}); they are kept as '#2', '#3', …"
        )
        codes = codes.where(~repeated, codes + "#" + (nth + 1).astype(str))
    return (prefix + ":" + codes).astype(object)


def read_units(
    sources: Sequence[UnitSource], crs: SourceCrs | None, warn: Warn
) -> list[gpd.GeoDataFrame]:
    """Unit polygons from each source with ``unit_id``, ``name``, ``level`` and the file's other
    columns (``population`` among them), in WGS84."""
    frames = []
    for item in sources:
        level, path = split_unit_source(item)
        frame = read_layer(path, crs=crs, warn=warn)
        kinds = set(frame.geometry.geom_type)
        if not kinds <= {"Polygon", "MultiPolygon"}:
            raise InputError(f"{path}: units must be polygons, found {sorted(kinds)}")
        frame = repair_polygons(frame, path.name, "unit", warn)
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
        names = text_column(frame, name_candidates)
        ids = city_ids(frame, path, ("unit_id", "id", "code", "adcode", "编码", "代码"), "unit")
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


def read_facility_files(
    sources: Sequence[PathLike], crs: SourceCrs | None, rules: FacilityRules, warn: Warn
) -> list[gpd.GeoDataFrame]:
    """Facilities from POI tables and GIS layers: a ``category`` column taken as is (unknown
    names refused with the closest known one), else classified by name and Amap type."""
    frames = []
    for src in sources:
        path = Path(src)
        frame = read_geo(path, crs, warn=warn)
        names = text_column(frame, ("name", "名称", "poi_name"))
        amap = text_column(frame, ("type", "amap_type", "类型", "poi_type"))
        cat_col = find_column(list(frame.columns), ("category", "类别"))
        ids = feature_ids(frame, path, ("facility_id", "id", "poi_id", "uid"), warn)
        rows: list[tuple[int, str, str]] = []
        if cat_col is not None:
            unknown = set(frame[cat_col].dropna()) - set(rules.categories)
            if unknown:
                raise InputError(
                    f"{path}: unknown categories in column '{cat_col}': "
                    f"{unknown_names(unknown, rules.categories)}; use the ids of the rules table"
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


def read_building_files(
    sources: Sequence[PathLike], crs: SourceCrs | None, tables: OsmTables, warn: Warn
) -> list[gpd.GeoDataFrame]:
    """Building footprints with the city's codes, use (``住宅`` understood), levels and height
    tags (parsed when measured) and vacancy."""
    frames = []
    for src in sources:
        path = Path(src)
        frame = read_layer(path, crs=crs, warn=warn)
        kinds = set(frame.geometry.geom_type)
        if not kinds <= {"Polygon", "MultiPolygon"}:
            raise InputError(
                f"{path}: buildings must be polygons (footprints), found {sorted(kinds)}"
            )
        frame = repair_polygons(frame, path.name, "building", warn)
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
                "building_id": city_ids(
                    frame, path, ("building_id", "id", "bid", "编号"), "building"
                ).to_numpy(),
                "building": types.to_numpy(dtype=object),
                "use": use.to_numpy(dtype=object),
                "levels_tag": frame[lv_col].astype(object).where(frame[lv_col].notna(), None).to_numpy(dtype=object) if lv_col else None,
                "height_tag": frame[h_col].astype(object).where(frame[h_col].notna(), None).to_numpy(dtype=object) if h_col else None,
                "name": text_column(frame, ("name", "名称")),
                "address": text_column(frame, ("address", "地址", "房屋地址")),
                "vacancy": _vacancy_column(frame, path),
                "source": path.name,
                "levels_from_file": bool(lv_col),
            },
            geometry=frame.geometry.to_numpy(),
            crs=WGS84,
        )  # fmt: skip
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
