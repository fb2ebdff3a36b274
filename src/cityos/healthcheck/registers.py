"""Ratios over a city's own register: Σ a numerator column ÷ Σ a denominator column (or the
unit's residents), per unit at every level — the hotline's requests per 1,000 residents and
unresolved share come this way (``systems/hotline.toml``, register ``hotline`` written by
``cityos hotline hotspots``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from cityos.healthcheck.context import UNIT_LEVEL_ORDER, CheckupContext
from cityos.healthcheck.evaluation import Evaluation

__all__ = ["register_ratio", "register_units"]


def register_units(ctx: CheckupContext, level: str, key: str, lv: str) -> pd.Series:
    """A register's key value → its unit of ``lv``: buildings through their point; unit ids of
    the indicator's own ``level`` (community for housing) through the unit of ``lv`` holding
    them."""
    if key == "building_id":
        return pd.Series(ctx.unit_of[lv].to_numpy(), index=ctx.buildings["building_id"].to_numpy())
    base = level if level in UNIT_LEVEL_ORDER else "community"
    ids = ctx.units(base)["unit_id"].to_numpy()
    return pd.Series(ids if base == lv else ctx.owner_of(base, lv), index=ids)


def register_ratio(
    ctx: CheckupContext, ind: Any, params: Mapping[str, Any], levels: list[str]
) -> Evaluation:
    """Σ ``numerator`` ÷ Σ ``denominator`` × ``scale`` of a register per unit; ``denominator =
    "residents"`` divides by the unit's estimated residents. A blank cell is unknown, never 0."""
    name, key, num_col = params["register"], params["key"], params["numerator"]
    den_col, scale = params.get("denominator", "residents"), float(params.get("scale", 100))
    if name not in ctx.bundle.registers:
        return Evaluation(
            no_data=f"register '{name}' not given; pass it with `cityos checkup --register {name}=FILE`"
        )
    table = ctx.bundle.registers[name]
    needed = [key, num_col] + ([] if den_col == "residents" else [den_col])
    missing = [c for c in needed if c not in table]
    if missing:
        return Evaluation(
            no_data=f"register '{name}' has no column {', '.join(repr(c) for c in missing)}"
        )
    per = "residents" if den_col == "residents" else den_col
    ev = Evaluation(
        method=f"Σ register '{name}' {num_col} ÷ Σ {per} × {scale:g}", unit_keyed=key != "building_id",
        population_based=den_col == "residents", denominator_kind="residents" if den_col == "residents" else "",
        unknown_what="register cells blank or unreadable",
    )  # fmt: skip
    num = pd.to_numeric(table[num_col], errors="coerce")
    den = pd.to_numeric(table[den_col], errors="coerce") if den_col != "residents" else None
    for lv in levels:
        unit = (
            table[key]
            .astype(str)
            .map(register_units(ctx, ind.level, key, lv).astype(object).to_dict())
        )
        index = pd.Index(ctx.units(lv)["unit_id"].astype(str), name="unit_id")
        frame = pd.DataFrame(
            {"unit": unit, "num": num, "den": den if den is not None else 0.0}
        ).dropna(subset=["unit"])
        blank = frame["num"].isna() | (frame["den"].isna() if den is not None else False)
        g = frame[~blank].groupby("unit")
        numerator = g["num"].sum().reindex(index, fill_value=0.0)
        if den is None:
            denominator = ctx.residents[lv].reindex(index)
        else:
            denominator = g["den"].sum().reindex(index, fill_value=0.0)
        unknown = blank.groupby(frame["unit"]).sum().reindex(index, fill_value=0).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(
                denominator.to_numpy() > 0,
                numerator.to_numpy() / denominator.to_numpy() * scale,
                np.nan,
            )
        if scale == 100:
            value = np.clip(value, 0.0, 100.0)
        ev.frames[lv] = pd.DataFrame(
            {
                "numerator": numerator,
                "denominator": denominator,
                "value": value,
                "unknown": unknown,
            },
            index=index,
        )
    return ev
