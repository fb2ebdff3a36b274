"""The health check's tables: one row per unit × indicator, the problem list, the unit layers.

Rows are assembled per indicator and level with array operations (no loop over units or
buildings): the method's frame is aligned with the level's units, units without data are
masked to ``no_data`` with the reason, the status is computed for the whole column
(:func:`cityos.healthcheck.status.statuses`), and the notes say what is unmeasured, what is partial
and where the population behind a value is implausible.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd

from cityos.healthcheck.context import UNIT_LEVEL_ORDER, CheckupContext
from cityos.healthcheck.methods import Evaluation, levels_for
from cityos.healthcheck.policy import Policy, format_value
from cityos.healthcheck.status import statuses, target_of

if TYPE_CHECKING:
    from cityos.healthcheck.catalogue import Indicator

__all__ = ["INDICATOR_COLUMNS", "PROBLEM_COLUMNS", "indicator_rows", "problem_list", "unit_layers"]

#: columns of indicators.parquet / indicators.csv
INDICATOR_COLUMNS = (
    "unit_id", "unit_name", "level", "indicator_id", "name_zh", "name_en", "value", "unit", "target",
    "status", "confirmed", "method", "radius_m", "sources", "system", "numerator", "denominator",
    "target_op", "target_source", "generated_unit", "note", "direction", "dimension", "unknown",
    "warning", "denominator_kind",
)  # fmt: skip
#: columns of problems.csv
PROBLEM_COLUMNS = (
    "unit_id", "unit_name", "level", "indicator_id", "name_zh", "name_en", "value", "unit",
    "target", "cause", "cause_zh", "buildings", "building_ids", "warning",
)  # fmt: skip
#: uncovered buildings listed per failing unit in the problem list
LISTED_BUILDINGS = 20


def _join(*parts: pd.Series | str) -> pd.Series:
    """Element-wise "; "-join of string Series (and constant strings), skipping empty parts."""
    index = next(p.index for p in parts if isinstance(p, pd.Series))
    acc = pd.Series("", index=index, dtype=object)
    for part in parts:
        s = (part.fillna("").astype(str) if isinstance(part, pd.Series)
             else pd.Series(str(part or ""), index=index, dtype=object))  # fmt: skip
        sep = pd.Series(np.where((acc != "") & (s != ""), "; ", ""), index=index, dtype=object)
        acc = acc + sep + s
    return acc


def indicator_rows(
    ctx: CheckupContext, system_id: str, ind: Indicator, ev: Evaluation, sources: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of one indicator at every level it is reported at, and, for coverage, the
    residential buildings not reached in each failing unit (level, unit_id, buildings, ids)."""
    policy = ctx.policy
    target = target_of(ind, policy)
    out, listed = [], []
    for lv in levels_for(ind):
        units = ctx.units(lv)
        ids = pd.Index(units["unit_id"], name="unit_id")
        frame = ev.frames.get(lv)
        if frame is None:
            frame = pd.DataFrame(
                index=ids, columns=["numerator", "denominator", "value", "unknown"], dtype=float
            )
        frame = frame.reindex(ids)
        state = ctx.unit_status[lv].reindex(ids.astype(str))
        reason = pd.Series(state["reason"].to_numpy(), index=ids)
        value = frame["value"].astype(float)
        masked = reason.notna() & ~(ev.unit_keyed & value.notna())
        value = value.where(~masked)
        unknown = (
            frame["unknown"].astype(float).fillna(0.0)
            if "unknown" in frame
            else pd.Series(0.0, index=ids)
        )
        status = pd.Series(
            statuses(value.to_numpy(), unknown.to_numpy(), bound=ev.bound, target=target).astype(object),
            index=ids,
        )  # fmt: skip
        open_bound = (status == "no_data") & value.notna()
        shown = value.where(~open_bound)
        bound_note = pd.Series("", index=ids)
        if ev.bound:
            partial = (unknown > 0) & value.notna()
            bound_note = pd.Series(
                [f"at least {format_value(v, ind.unit, policy)}: {u:g} {ev.unknown_what}" if p else ""
                 for v, u, p in zip(value, unknown, partial, strict=True)], index=ids,
            )  # fmt: skip
        extent_note = pd.Series(ctx.extent_notes[lv].to_numpy(), index=ids)
        warning = pd.Series(
            ctx.population_warnings[lv].to_numpy() if ev.population_based else "", index=ids
        )
        base_note = ev.no_data if ev.no_data else ev.note
        unit_note = frame["note"].fillna("") if "note" in frame else ""
        empty = value.isna() & (frame["denominator"].astype(float) == 0) & (ev.no_data is None)
        what = (
            "no residents in this unit"
            if ev.denominator_kind == "residents"
            else "nothing to measure in this unit (denominator 0)"
        )
        empty_note = pd.Series(np.where(empty, what, ""), index=ids)
        note = _join(empty_note, base_note, unit_note, bound_note, extent_note)
        note = note.where(
            ~masked, _join(reason.fillna(""), "" if ev.no_data is None else ev.no_data)
        )
        numerator = frame["numerator"].astype(float).where(~masked)
        denominator = frame["denominator"].astype(float).where(~masked)
        out.append(pd.DataFrame({
            "unit_id": ids, "unit_name": units["name"].to_numpy(), "level": lv, "indicator_id": ind.id,
            "name_zh": ind.name_zh, "name_en": ind.name_en, "value": shown.to_numpy(), "unit": ind.unit,
            "target": target.value, "status": status.to_numpy(), "confirmed": ind.confirmed,
            "method": ev.method or ind.method, "radius_m": ev.radius_m, "sources": sources,
            "system": system_id, "numerator": numerator.to_numpy(), "denominator": denominator.to_numpy(),
            "target_op": target.op, "target_source": target.source,
            "generated_unit": units["generated"].astype(bool).to_numpy(), "note": note.to_numpy(),
            "direction": ind.direction, "dimension": ind.dimension, "unknown": unknown.to_numpy(),
            "warning": warning.where(~masked, "").to_numpy(), "denominator_kind": ev.denominator_kind,
        }))  # fmt: skip
        failing = status == "fail"
        if ev.uncovered is not None and failing.any():
            listed.append(_uncovered(ctx, ev.uncovered, lv, set(ids[failing.to_numpy()])).assign(
                indicator_id=ind.id, level=lv))  # fmt: skip
    rows = pd.concat(out, ignore_index=True)
    return rows, (pd.concat(listed, ignore_index=True) if listed else pd.DataFrame())


def _uncovered(
    ctx: CheckupContext, uncovered: pd.Series, level: str, units: set[str]
) -> pd.DataFrame:
    owner = ctx.unit_of[level]
    pick = uncovered.to_numpy() & owner.isin(units).to_numpy()
    frame = pd.DataFrame({"unit_id": owner.to_numpy()[pick],
                          "building_id": ctx.buildings["building_id"].to_numpy()[pick]})  # fmt: skip
    g = frame.groupby("unit_id")["building_id"]
    return pd.DataFrame({
        "buildings": g.size(),
        "building_ids": g.apply(lambda s: ", ".join(map(str, s.head(LISTED_BUILDINGS)))),
    }).reset_index()  # fmt: skip


def problem_list(indicators: pd.DataFrame, listed: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """The problem list (问题清单): each failing unit and indicator with its cause in English and
    Chinese (values rounded for people), and for coverage the residential buildings not reached
    (count and up to :data:`LISTED_BUILDINGS` ids)."""
    fail = indicators[indicators["status"] == "fail"].reset_index(drop=True)
    if fail.empty:
        return pd.DataFrame(columns=list(PROBLEM_COLUMNS))
    if len(listed):
        fail = fail.merge(listed, on=["indicator_id", "level", "unit_id"], how="left")
    else:
        fail = fail.assign(buildings=np.nan, building_ids="")
    fail["buildings"] = fail["buildings"].fillna(0).astype(int)
    fail["building_ids"] = fail["building_ids"].fillna("")
    value = [format_value(v, u, policy) for v, u in zip(fail["value"], fail["unit"], strict=True)]
    value_zh = [
        format_value(v, u, policy, lang="zh")
        for v, u in zip(fail["value"], fail["unit"], strict=True)
    ]
    target = [
        f"{op} {format_value(t, u, policy)}"
        for t, op, u in zip(fail["target"], fail["target_op"], fail["unit"], strict=True)
    ]
    target_zh = [
        f"{op}{format_value(t, u, policy, lang='zh')}"
        for t, op, u in zip(fail["target"], fail["target_op"], fail["unit"], strict=True)
    ]
    cause = pd.Series([f"{v} against target {t}" for v, t in zip(value, target, strict=True)])
    cause_zh = pd.Series([f"{v}，目标{t}" for v, t in zip(value_zh, target_zh, strict=True)])
    note = fail["note"].fillna("").astype(str)
    cause = _join(cause, note)
    cause_zh = _join(cause_zh, note)
    coverage = (fail["denominator_kind"] == "residents") & (fail["buildings"] > 0)
    uncovered = (fail["denominator"] - fail["numerator"]).clip(lower=0)
    extra = [f"{u:,.0f} of {d:,.0f} residents in {b:,} residential buildings are farther than {r:g} m" if c else ""
             for u, d, b, r, c in zip(uncovered, fail["denominator"], fail["buildings"], fail["radius_m"].fillna(0), coverage, strict=True)]  # fmt: skip
    extra_zh = [f"{d:,.0f}名居民中有{u:,.0f}名（{b:,}栋住宅）距离超过{r:g}米" if c else ""
                for u, d, b, r, c in zip(uncovered, fail["denominator"], fail["buildings"], fail["radius_m"].fillna(0), coverage, strict=True)]  # fmt: skip
    fail["cause"] = _join(cause, pd.Series(extra))
    fail["cause_zh"] = _join(cause_zh, pd.Series(extra_zh))
    return fail[list(PROBLEM_COLUMNS)]


def unit_layers(ctx: CheckupContext, indicators: pd.DataFrame) -> dict[str, gpd.GeoDataFrame]:
    """Per level the units with their residents (NaN where the unit has no data), whether they
    have data, and one column per indicator value (for QGIS/ArcGIS)."""
    out = {}
    for lv in UNIT_LEVEL_ORDER:
        units = ctx.units(lv)[["unit_id", "name", "generated", "geometry"]].copy()
        units["population"] = ctx.residents[lv].reindex(units["unit_id"].astype(str)).to_numpy()
        state = ctx.unit_status[lv].reindex(units["unit_id"].astype(str))
        units["has_data"] = state["reason"].isna().to_numpy()
        units["data_inside_pct"] = state["inside_pct"].to_numpy()
        wide = indicators[indicators["level"] == lv].pivot_table(
            index="unit_id", columns="indicator_id", values="value", aggfunc="first", dropna=False
        )
        out[lv] = units.merge(wide, left_on="unit_id", right_index=True, how="left").to_crs(
            "EPSG:4326"
        )
    return out
