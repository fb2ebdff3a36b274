"""Candidate sites for facility siting: a city's file of points or buildings, the under-used
building stock (rules in ``renewal/stock.toml``: vacant, disused or non-residential buildings of a
size that suits the category) or the street nodes of the walking graph."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from cityos.errors import ConfigError, InputError
from cityos.healthcheck.engine import CheckupContext
from cityos.sources.files import find_column, read_geo

__all__ = ["candidate_sites", "load_stock_rules"]


def load_stock_rules(path: str | Path | None) -> dict[str, Any]:
    if path is None:
        text = resources.files("cityos.renewal").joinpath("stock.toml").read_text("utf-8")
        where = "built-in stock.toml"
    else:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: no such stock rules file")
        text, where = p.read_text("utf-8"), str(p)
    try:
        rules = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML ({exc})") from exc
    for key in ("building", "vacancy"):
        if not isinstance(rules.get(key, []), list):
            raise ConfigError(f"{where}: '{key}' must be a list of values")
    return rules


def candidate_sites(
    ctx: CheckupContext, spec: str | Path, stock: dict[str, Any]
) -> gpd.GeoDataFrame:
    """Candidate points in the measurement CRS: candidate_id, candidate_source, reason, name."""
    bundle, buildings, crs = ctx.bundle, ctx.buildings, ctx.crs
    if str(spec) == "network":
        nodes = bundle.projected("walk_nodes")
        return gpd.GeoDataFrame(
            {
                "candidate_id": [f"node:{n}" for n in nodes["node_id"]],
                "candidate_source": "network",
                "reason": "street node",
                "name": None,
            },
            geometry=nodes.geometry.to_numpy(),
            crs=crs,
        )
    if str(spec) == "stock":
        from cityos.stock import under_used

        reason = under_used(buildings, bundle.registers, stock)
        keep = reason.notna().to_numpy()
        sub = buildings[keep]
        return gpd.GeoDataFrame(
            {
                "candidate_id": sub["building_id"].to_numpy(),
                "candidate_source": "stock",
                "reason": reason[keep].to_numpy(),
                "name": sub["name"].to_numpy(),
            },
            geometry=ctx.points.to_numpy()[keep],
            crs=crs,
        )
    path = Path(spec)
    frame = read_geo(path)
    cols = [str(c) for c in frame.columns]
    id_col = find_column(cols, ("candidate_id", "id", "building_id", "编号"))
    name_col = find_column(cols, ("name", "名称"))
    ids = (
        frame[id_col].astype(str).to_numpy()
        if id_col
        else np.array([f"{path.stem}:{i + 1}" for i in range(len(frame))])
    )
    if len(set(ids)) != len(ids):
        raise InputError(f"{path}: candidate ids in column '{id_col}' repeat; make them unique")
    geoms = frame.geometry.to_crs(crs).to_numpy()
    return gpd.GeoDataFrame(
        {
            "candidate_id": ids,
            "candidate_source": path.name,
            "reason": "file",
            "name": frame[name_col].astype(object).to_numpy() if name_col else None,
        },
        geometry=shapely.point_on_surface(geoms),
        crs=crs,
    )
