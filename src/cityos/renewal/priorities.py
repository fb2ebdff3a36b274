"""Renewal priorities (城市更新优先级): rank units by their failing indicators, weighted by the
residents affected, and say per unit what drives its score.

The formula and the default weights are in ``renewal/weights.toml`` (operational defaults,
replaceable with ``--weights``)::

    score(unit) = Σ_failing indicators  weight × severity × residents affected

:func:`contributions` gives one row per unit and failing indicator (the traceable parts),
:func:`priorities` sums and ranks them, :func:`write_priorities` writes ``priorities.csv``,
``priorities_detail.csv``, ``priorities.gpkg`` and ``priorities.json`` into a results folder.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from cityos.atomic import write_table
from cityos.checkup.results import read_results
from cityos.errors import ConfigError, OutputExistsError

__all__ = [
    "PRIORITY_COLUMNS",
    "Weights",
    "contributions",
    "load_weights",
    "priorities",
    "write_priorities",
]

#: columns of priorities.csv
PRIORITY_COLUMNS = (
    "level", "rank", "unit_id", "unit_name", "population", "score", "score_per_1000_residents",
    "failing", "no_data", "top_indicator", "unconfirmed_share", "explanation", "explanation_en",
)  # fmt: skip
#: the health check's method texts of indicators whose denominator is residents
_POPULATION_METHODS = ("coverage of population", "population with any of")
PRIORITY_FILES = ("priorities.csv", "priorities_detail.csv", "priorities.gpkg", "priorities.json")


@dataclass(frozen=True)
class Weights:
    """Scoring settings (see ``renewal/weights.toml``)."""

    levels: tuple[str, ...]
    severity: str
    count_saturation: float
    default_weight: float
    unconfirmed_factor: float
    dimension: dict[str, float]
    indicator: dict[str, float]
    source: str

    def weight(self, indicator_id: str, dimension: str, confirmed: bool) -> float:
        w = self.indicator.get(indicator_id, self.dimension.get(dimension, self.default_weight))
        return w if confirmed else w * self.unconfirmed_factor


def load_weights(path: str | os.PathLike[str] | None = None) -> Weights:
    """The built-in weights, or a city's own TOML file (same keys; missing keys keep defaults)."""
    base = tomllib.loads(
        resources.files("cityos.renewal").joinpath("weights.toml").read_text("utf-8")
    )
    where = "built-in weights.toml"
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: no such weights file")
        try:
            own = tomllib.loads(p.read_text("utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML ({exc})") from exc
        unknown = set(own) - set(base)
        if unknown:
            raise ConfigError(
                f"{p}: unknown tables {sorted(unknown)}; use score, dimension, indicator"
            )
        for key in base:
            if key in own:
                base[key] = {**base[key], **own[key]}
        where = str(p)
    score = base["score"]
    try:
        weights = Weights(
            levels=tuple(str(v) for v in score["levels"]),
            severity=str(score["severity"]),
            count_saturation=float(score["count_saturation"]),
            default_weight=float(score["default_weight"]),
            unconfirmed_factor=float(score["unconfirmed_factor"]),
            dimension={str(k): float(v) for k, v in base.get("dimension", {}).items()},
            indicator={str(k): float(v) for k, v in base.get("indicator", {}).items()},
            source=where,
        )
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(f"{where}: weights must be numbers ({exc})") from exc
    if weights.severity not in ("shortfall", "flat"):
        raise ConfigError(f"{where}: score.severity must be 'shortfall' or 'flat'")
    bad = set(weights.levels) - {"community", "subdistrict", "city"}
    if bad:
        raise ConfigError(f"{where}: score.levels {sorted(bad)}: use community, subdistrict")
    negative = [k for k, v in {**weights.dimension, **weights.indicator}.items() if v < 0]
    if negative or weights.count_saturation <= 0:
        raise ConfigError(f"{where}: weights must be >= 0 and count_saturation > 0 ({negative})")
    return weights


def _severity(rows: pd.DataFrame, weights: Weights) -> np.ndarray:
    """min(1, |value − target| / |target|); counts against target 0: min(1, value / saturation)."""
    if weights.severity == "flat":
        return np.ones(len(rows))
    v = rows["value"].to_numpy(float)
    t = rows["target"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(v - t) / np.abs(t)
    count = np.abs(v - t) / weights.count_saturation
    out = np.where(np.abs(t) > 0, rel, count)
    clipped: np.ndarray = np.clip(np.nan_to_num(out, nan=1.0), 0.0, 1.0)
    return clipped


def contributions(
    indicators: pd.DataFrame, population: pd.DataFrame, weights: Weights
) -> pd.DataFrame:
    """One row per unit and failing indicator: weight, severity, residents affected and the
    contribution ``weight × severity × affected``.

    ``population`` has columns ``level``, ``unit_id``, ``population`` (units.gpkg)."""
    rows = indicators[
        (indicators["status"] == "fail") & indicators["level"].isin(weights.levels)
    ].copy()
    rows = rows.merge(population, on=["level", "unit_id"], how="left")
    rows["population"] = rows["population"].fillna(0.0)
    by_residents = rows["method"].astype(str).str.contains("|".join(_POPULATION_METHODS))
    uncovered = (rows["denominator"] - rows["numerator"]).clip(lower=0.0)
    rows["affected"] = np.where(by_residents, uncovered, rows["population"])
    rows["affected_basis"] = np.where(by_residents, "residents not covered", "unit residents")
    rows["weight"] = [
        weights.weight(i, str(d), bool(c))
        for i, d, c in zip(rows["indicator_id"], rows["dimension"], rows["confirmed"], strict=True)
    ]
    rows["severity"] = _severity(rows, weights)
    rows["contribution"] = rows["weight"] * rows["severity"] * rows["affected"]
    cols = ["level", "unit_id", "unit_name", "indicator_id", "name_zh", "name_en", "dimension",
            "value", "unit", "target", "target_op", "confirmed", "population", "affected",
            "affected_basis", "weight", "severity", "contribution"]  # fmt: skip
    return rows[cols].reset_index(drop=True)


def _driver(r: Any, share: float, lang: str) -> str:
    value = "—" if pd.isna(r.value) else f"{r.value:.3g}"
    target = "—" if pd.isna(r.target) else f"{r.target_op or ''}{r.target:g}"
    if lang == "zh":
        return (
            f"{r.name_zh}：{value}{r.unit}（目标{target}），影响{r.affected:,.0f}人，占{share:.0%}"
        )
    return (
        f"{r.name_en}: {value} {r.unit} (target {target}), {r.affected:,.0f} residents, {share:.0%}"
    )


def priorities(
    indicators: pd.DataFrame, population: pd.DataFrame, weights: Weights, *, drivers: int = 3
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(priorities, contributions): every unit of the scored levels ranked by score (highest
    first; ties by unit id), with the ``drivers`` largest contributions as the explanation."""
    parts = contributions(indicators, population, weights)
    units = indicators[indicators["level"].isin(weights.levels)].drop_duplicates(
        ["level", "unit_id"]
    )[["level", "unit_id", "unit_name"]]
    units = units.merge(population, on=["level", "unit_id"], how="left").fillna({"population": 0.0})
    nodata = indicators[indicators["status"] == "no_data"].groupby(["level", "unit_id"]).size()
    ordered = parts.sort_values(["contribution", "indicator_id"], ascending=[False, True])
    groups = dict(list(ordered.groupby(["level", "unit_id"], sort=False)))
    rows = []
    records: list[dict[Any, Any]] = units.to_dict("records")
    for unit in records:
        level, uid, people = str(unit["level"]), str(unit["unit_id"]), float(unit["population"])
        mine = groups.get((level, uid), parts.iloc[:0])
        score = float(mine["contribution"].sum())
        top: list[Any] = list(mine.head(drivers).itertuples(index=False))
        share = [float(t.contribution) / score if score > 0 else 0.0 for t in top]
        unconfirmed = float(mine.loc[~mine["confirmed"].astype(bool), "contribution"].sum())
        rows.append({
            "level": level, "unit_id": uid, "unit_name": unit["unit_name"], "population": people,
            "score": score,
            "score_per_1000_residents": score / people * 1000 if people > 0 else math.nan,
            "failing": len(mine), "no_data": int(nodata.get((level, uid), 0)),
            "top_indicator": top[0].indicator_id if top else "",
            "unconfirmed_share": unconfirmed / score if score > 0 else 0.0,
            "explanation": "；".join(_driver(t, s, "zh") for t, s in zip(top, share, strict=True)),
            "explanation_en": "; ".join(_driver(t, s, "en") for t, s in zip(top, share, strict=True)),
        })  # fmt: skip
    table = pd.DataFrame(rows, columns=[c for c in PRIORITY_COLUMNS if c != "rank"])
    table = table.sort_values(["level", "score", "unit_id"], ascending=[True, False, True])
    table.insert(1, "rank", table.groupby("level").cumcount() + 1)
    return table.reset_index(drop=True)[list(PRIORITY_COLUMNS)], parts


def write_priorities(
    results: str | os.PathLike[str],
    *,
    weights: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> tuple[Path, pd.DataFrame]:
    """Score a results folder and write the priority files into ``out`` (default: the results
    folder itself, where ``cityos report`` picks them up for its priorities map)."""
    saved = read_results(results, also=["units.gpkg"])
    target = Path(out) if out is not None else saved.folder
    existing = [n for n in PRIORITY_FILES if (target / n).exists()]
    if existing and not force:
        raise OutputExistsError(
            f"{target / existing[0]}: priorities exist; pass --force to replace them"
        )
    w = load_weights(weights)
    layers = {
        lv: gpd.read_file(saved.folder / "units.gpkg", layer=lv, columns=["unit_id", "population"])
        for lv in w.levels
    }
    population = pd.concat(
        [pd.DataFrame({"level": lv, "unit_id": g["unit_id"].astype(str), "population": g["population"]})
         for lv, g in layers.items()],
        ignore_index=True,
    )  # fmt: skip
    ind = saved.indicators.assign(unit_id=saved.indicators["unit_id"].astype(str))
    table, parts = priorities(ind, population, w)
    target.mkdir(parents=True, exist_ok=True)
    write_table(table, target / "priorities.csv")
    write_table(parts, target / "priorities_detail.csv")
    tmp = target / ".priorities.gpkg.tmp"
    tmp.unlink(missing_ok=True)
    try:
        for lv, layer in layers.items():
            geo = layer[["unit_id", "geometry"]].assign(unit_id=layer["unit_id"].astype(str))
            geo.merge(table[table["level"] == lv], on="unit_id", how="left").to_file(
                tmp, layer=lv, driver="GPKG", engine="pyogrio"
            )
        tmp.replace(target / "priorities.gpkg")
    finally:
        tmp.unlink(missing_ok=True)
    meta = {
        "formula": "score = Σ failing indicators weight × severity × residents affected",
        "weights": w.source,
        "settings": {"levels": list(w.levels), "severity": w.severity,
                     "count_saturation": w.count_saturation, "default_weight": w.default_weight,
                     "unconfirmed_factor": w.unconfirmed_factor},
        "dimension_weights": w.dimension,
        "indicator_weights": w.indicator,
        "confirmed": False,
        "note": "weights are cityos operational defaults [OP] unless a city's file is given",
        "results": str(saved.folder),
        "units_scored": {lv: int((table["level"] == lv).sum()) for lv in w.levels},
    }  # fmt: skip
    tmp_json = target / ".priorities.json.tmp"
    tmp_json.write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", "utf-8")
    tmp_json.replace(target / "priorities.json")
    return target, table
