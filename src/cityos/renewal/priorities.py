"""Renewal priorities (城市更新优先级): rank units by their failing indicators, weighted by the
residents affected, and say per unit what drives its score.

The formula and the default weights are in ``renewal/weights.toml`` (operational defaults,
replaceable with ``--weights``)::

    score(unit) = Σ_failing indicators  weight × severity × residents affected

Missing data never ranks a unit: ``no_data`` adds nothing, a failing indicator whose severity or
residents are unknown is skipped (and counted), a unit with no measured indicator is not ranked,
and the explanation says when a rank rests on few measured indicators.

:func:`contributions` gives one row per unit and failing indicator (the traceable parts),
:func:`priorities` sums and ranks them, :func:`write_priorities` writes ``priorities.csv``,
``priorities_detail.csv``, ``priorities.gpkg`` and ``priorities.json`` together into one folder
(``RESULTS/priorities`` by default), all or nothing.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd

from cityos.errors import ConfigError
from cityos.healthcheck.policy import Policy, format_value, load_policy
from cityos.healthcheck.results import read_results
from cityos.naming import unknown_names
from cityos.outputs import atomic_folder, check_output_folder, files_of, write_table
from cityos.tomlfiles import read_with_defaults

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
    "failing", "no_data", "measured", "indicators", "skipped", "top_indicator", "unconfirmed_share",
    "explanation", "explanation_en",
)  # fmt: skip
#: the folder of the priority files inside a results folder
PRIORITY_FOLDER = "priorities"
PRIORITY_FILES = ("priorities.csv", "priorities_detail.csv", "priorities.gpkg", "priorities.json")


@dataclass(frozen=True)
class Weights:
    """Scoring settings (see ``renewal/weights.toml``)."""

    levels: tuple[str, ...]
    severity: str
    count_saturation: float
    default_weight: float
    unconfirmed_factor: float
    few_measured_share: float
    dimension: dict[str, float]
    indicator: dict[str, float]
    source: str

    def weight(self, indicator_id: str, dimension: str, confirmed: bool) -> float:
        w = self.indicator.get(indicator_id, self.dimension.get(dimension, self.default_weight))
        return w if confirmed else w * self.unconfirmed_factor


def load_weights(path: str | os.PathLike[str] | None = None) -> Weights:
    """The built-in weights, or a city's own TOML file (same keys; missing keys keep defaults)."""
    base, where = read_with_defaults("cityos.renewal", "weights.toml", path, what="weights")
    score = base["score"]
    try:
        weights = Weights(
            levels=tuple(str(v) for v in score["levels"]),
            severity=str(score["severity"]),
            count_saturation=float(score["count_saturation"]),
            default_weight=float(score["default_weight"]),
            unconfirmed_factor=float(score["unconfirmed_factor"]),
            few_measured_share=float(score["few_measured_share"]),
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
    if not 0 <= weights.few_measured_share <= 1:
        raise ConfigError(f"{where}: score.few_measured_share must lie in [0, 1]")
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
    clipped: np.ndarray = np.clip(out, 0.0, 1.0)  # NaN stays NaN: unknown, skipped
    return clipped


def contributions(
    indicators: pd.DataFrame, population: pd.DataFrame, weights: Weights
) -> pd.DataFrame:
    """One row per unit and failing indicator: weight, severity, residents affected and the
    contribution ``weight × severity × affected``; ``skipped`` is True (and the contribution
    NaN) where the severity or the residents are unknown.

    ``population`` has columns ``level``, ``unit_id``, ``population`` (units.gpkg; NaN where
    the unit's population is unknown)."""
    rows = indicators[
        (indicators["status"] == "fail") & indicators["level"].isin(weights.levels)
    ].copy()
    rows = rows.merge(population, on=["level", "unit_id"], how="left")
    by_residents = rows["denominator_kind"].fillna("").eq("residents")
    uncovered = (rows["denominator"] - rows["numerator"]).clip(lower=0.0)
    rows["affected"] = np.where(by_residents, uncovered, rows["population"])
    rows["affected_basis"] = np.where(by_residents, "residents not covered", "unit residents")
    rows["weight"] = [
        weights.weight(i, str(d), bool(c))
        for i, d, c in zip(rows["indicator_id"], rows["dimension"], rows["confirmed"], strict=True)
    ]
    rows["severity"] = _severity(rows, weights)
    rows["contribution"] = rows["weight"] * rows["severity"] * rows["affected"]
    rows["skipped"] = rows["contribution"].isna()
    cols = ["level", "unit_id", "unit_name", "indicator_id", "name_zh", "name_en", "dimension",
            "value", "unit", "target", "target_op", "confirmed", "population", "affected",
            "affected_basis", "weight", "severity", "contribution", "skipped"]  # fmt: skip
    return rows[cols].reset_index(drop=True)


def _driver(r: Any, share: float, lang: str, policy: Policy) -> str:
    value = format_value(r.value, str(r.unit), policy, lang=lang)
    target = (
        "—"
        if pd.isna(r.target)
        else f"{r.target_op or ''}{format_value(r.target, str(r.unit), policy, lang=lang)}"
    )
    if lang == "zh":
        return f"{r.name_zh}：{value}（目标{target}），影响{r.affected:,.0f}人，占{share:.0%}"
    return f"{r.name_en}: {value} (target {target}), {r.affected:,.0f} residents, {share:.0%}"


def _coverage_note(measured: int, total: int, lang: str) -> str:
    if lang == "zh":
        return f"（排名仅依据{measured}/{total}项有数据的指标）"
    return f" (rank rests on {measured} of {total} indicators measured)"


def priorities(
    indicators: pd.DataFrame,
    population: pd.DataFrame,
    weights: Weights,
    *,
    drivers: int = 3,
    policy: Policy | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(priorities, contributions): every unit of the scored levels ranked by score (highest
    first; ties by unit id), with the ``drivers`` largest contributions as the explanation.

    A unit none of whose indicators is measured gets no score and no rank; one measured on less
    than ``weights.few_measured_share`` of its indicators says so in its explanation."""
    policy = policy or load_policy()
    parts = contributions(indicators, population, weights)
    scope = indicators[indicators["level"].isin(weights.levels)]
    units = scope.drop_duplicates(["level", "unit_id"])[["level", "unit_id", "unit_name"]]
    units = units.merge(population, on=["level", "unit_id"], how="left")
    key = ["level", "unit_id"]
    counts = scope.assign(nd=scope["status"] == "no_data").groupby(key)["nd"].agg(["sum", "size"])
    usable = parts[~parts["skipped"]]
    ordered = usable.sort_values(["contribution", "indicator_id"], ascending=[False, True])
    # each unit's contributions as one contiguous slice, in the order above (a stable sort by
    # unit keeps it), so that a unit's sums add the same numbers in the same order as before
    code = ordered.groupby(key, sort=False).ngroup().to_numpy()
    order = np.argsort(code, kind="stable")
    ordered = ordered.iloc[order]
    code = code[order]
    firsts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]]) if len(code) else code[:0]
    ends = np.r_[firsts[1:], len(code)].astype(int) if len(code) else code[:0]
    span = {(str(ordered["level"].iat[a]), str(ordered["unit_id"].iat[a])): (int(a), int(b))
            for a, b in zip(firsts, ends, strict=True)}  # fmt: skip
    values = ordered["contribution"].to_numpy(float)
    confirmed = ordered["confirmed"].astype(bool).to_numpy()
    tuples = list(ordered.itertuples(index=False))
    skipped = parts.groupby(key)["skipped"].sum()
    rows = []
    records: list[dict[Any, Any]] = units.to_dict("records")
    for unit in records:
        level, uid, people = str(unit["level"]), str(unit["unit_id"]), float(unit["population"])
        nodata, total = (int(cast(Any, counts.at[(level, uid), c])) for c in ("sum", "size"))
        measured = total - nodata
        a, b = span.get((level, uid), (0, 0))
        mine = values[a:b]
        score = float(mine.sum()) if measured else math.nan
        top: list[Any] = tuples[a : min(b, a + drivers)]
        share = [float(t.contribution) / score if score > 0 else 0.0 for t in top]
        unconfirmed = float(mine[~confirmed[a:b]].sum())
        zh = "；".join(_driver(t, s, "zh", policy) for t, s in zip(top, share, strict=True))
        en = "; ".join(_driver(t, s, "en", policy) for t, s in zip(top, share, strict=True))
        if not measured:
            zh, en = (
                "无数据：该单元没有可测指标，不参与排名",
                "no data: no indicator measured in this unit; not ranked",
            )
        elif measured < weights.few_measured_share * total:
            zh += _coverage_note(measured, total, "zh")
            en += _coverage_note(measured, total, "en")
        rows.append({
            "level": level, "unit_id": uid, "unit_name": unit["unit_name"], "population": people,
            "score": score,
            "score_per_1000_residents": score / people * 1000 if people > 0 else math.nan,
            "failing": b - a, "no_data": nodata, "measured": measured, "indicators": total,
            "skipped": int(skipped.get((level, uid), 0)),
            "top_indicator": top[0].indicator_id if top else "",
            "unconfirmed_share": unconfirmed / score if score > 0 else 0.0,
            "explanation": zh.lstrip("；"), "explanation_en": en.lstrip("; ").lstrip(),
        })  # fmt: skip
    table = pd.DataFrame(rows, columns=[c for c in PRIORITY_COLUMNS if c != "rank"])
    table = table.sort_values(
        ["level", "score", "unit_id"], ascending=[True, False, True], na_position="last"
    )
    rank = table.groupby("level").cumcount() + 1
    table.insert(1, "rank", rank.where(table["score"].notna()).astype("Int64"))
    return table.reset_index(drop=True)[list(PRIORITY_COLUMNS)], parts


def check_weight_names(weights: Weights, indicators: pd.DataFrame) -> None:
    """Refuse a weights file whose ``[dimension]`` or ``[indicator]`` names match nothing (a
    misspelling would silently fall back to the default weight), naming the closest known one.
    Known: the built-in systems' dimensions and indicator ids, and those of ``indicators``."""
    from cityos.healthcheck.catalogue import BUILTIN_SYSTEMS, load_system

    systems = [load_system(s) for s in BUILTIN_SYSTEMS]
    dims = {i.dimension for s in systems for i in s.indicators} | set(indicators["dimension"])
    ids = {i.id for s in systems for i in s.indicators} | set(indicators["indicator_id"])
    for table, given, known in (
        ("dimension", weights.dimension, dims),
        ("indicator", weights.indicator, ids),
    ):
        unknown = set(given) - known
        if unknown:
            raise ConfigError(
                f"{weights.source}: [{table}] names no {table} of the health check: "
                f"{unknown_names(unknown, known)}; fix the spelling"
            )


def write_priorities(
    results: str | os.PathLike[str],
    *,
    weights: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> tuple[Path, pd.DataFrame]:
    """Score a results folder and write the four priority files together into the folder
    ``out`` (default ``RESULTS/priorities``, where ``cityos report`` picks them up for its
    priorities map): written into a temporary folder renamed into place, so an interrupted run
    leaves the old set or the new one, never a mix."""
    saved = read_results(results, also=["units.gpkg"])
    target = Path(out) if out is not None else saved.folder / PRIORITY_FOLDER
    inputs = [p for p in files_of(saved.folder) if p.parent == saved.folder]
    check_output_folder(target, "priorities", force=force, inputs=inputs)
    w = load_weights(weights)
    check_weight_names(w, saved.indicators)
    policy = Policy.from_record(saved.summary.get("policy"))
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
    table, parts = priorities(ind, population, w, policy=policy)
    meta = {
        "formula": "score = Σ failing indicators weight × severity × residents affected",
        "weights": w.source,
        "settings": {"levels": list(w.levels), "severity": w.severity,
                     "count_saturation": w.count_saturation, "default_weight": w.default_weight,
                     "unconfirmed_factor": w.unconfirmed_factor, "few_measured_share": w.few_measured_share},
        "dimension_weights": w.dimension,
        "indicator_weights": w.indicator,
        "confirmed": False,
        "note": "weights are cityos operational defaults [OP] unless a city's file is given; "
                "no_data adds nothing, failing indicators with unknown severity or residents are skipped",
        "results": str(saved.folder),
        "units_scored": {lv: int(((table["level"] == lv) & table["score"].notna()).sum()) for lv in w.levels},
        "units_not_ranked": {lv: int(((table["level"] == lv) & table["score"].isna()).sum()) for lv in w.levels},
        "contributions_skipped": int(parts["skipped"].sum()),
    }  # fmt: skip
    with atomic_folder(target, force=force, kind="priorities") as tmp:
        write_table(table, tmp / "priorities.csv")
        write_table(parts, tmp / "priorities_detail.csv")
        for lv, layer in layers.items():
            geo = layer[["unit_id", "geometry"]].assign(unit_id=layer["unit_id"].astype(str))
            geo.merge(table[table["level"] == lv], on="unit_id", how="left").to_file(
                tmp / "priorities.gpkg", layer=lv, driver="GPKG", engine="pyogrio"
            )
        (tmp / "priorities.json").write_text(
            json.dumps(meta, ensure_ascii=False, indent=2) + "\n", "utf-8"
        )
    return target, table
