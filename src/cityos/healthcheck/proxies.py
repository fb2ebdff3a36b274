"""The open-data proxies of the health check: counts of units lacking a facility
(``units_without``, ``units_with_area_below``) and per-capita areas (``per_capita_area``).

What they look for inside a unit may be unknown — a facility mapped without an area, a unit only
partly within the data, a unit without data — and such a unit is unknown, never "lacking"; the
count above it is then a lower bound (see :mod:`cityos.healthcheck.status`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cityos.healthcheck.context import UNIT_LEVEL_ORDER, CheckupContext
from cityos.healthcheck.evaluation import Evaluation, unmeasured
from cityos.healthcheck.measures import per_capita_area, population_coverage
from cityos.units import UnitSet, assign_to_units

if TYPE_CHECKING:
    from cityos.healthcheck.catalogue import Indicator

__all__ = ["per_capita", "units_with_area_below", "units_without"]


def _counted(ctx: CheckupContext, base_level: str, lack: pd.Series, levels: list[str],
             ev: Evaluation, *, inside: bool = False) -> Evaluation:  # fmt: skip
    """Units of ``base_level`` that lack something (1), do not (0) or are unknown (NaN), counted
    at every level: at the base level the unit's own 0/1; above it the number of base units
    lacking. Base units without residents do not count (nobody lacks anything there); those
    without data are unknown, and so is the count above them (a lower bound). With ``inside``
    (the thing is looked for inside the unit), a unit only partly within the data extent cannot
    be said to lack it: unknown."""
    ev.bound = True
    if inside:
        share_in = (
            ctx.unit_status[base_level]["inside_pct"].reindex(lack.index.astype(str)).to_numpy()
        )
        lack = lack.where(~((lack == 1).to_numpy() & (share_in < ctx.policy.partial_extent_share)))
    ev.unknown_what = f"{base_level} units unmeasured (count is a lower bound)"
    residents = ctx.residents[base_level].reindex(lack.index.astype(str)).to_numpy()
    applicable = pd.Series(~(residents == 0), index=lack.index)  # NaN residents: no data, unknown
    lack = lack.where(applicable & ~np.isnan(residents))
    for lv in levels:
        ids = pd.Index(ctx.units(lv)["unit_id"], name="unit_id")
        if lv == base_level:
            v = lack.reindex(ids)
            unsure = applicable.reindex(ids).to_numpy() & v.isna().to_numpy()
            ev.frames[lv] = pd.DataFrame(
                {"numerator": v, "denominator": applicable.reindex(ids).astype(float), "value": v,
                 "unknown": unsure.astype(float),
                 "note": np.where(unsure, "unmeasured here: a facility mapped without an area, or the "
                                  "unit only partly within the data", "")},
                index=ids,
            )  # fmt: skip
            continue
        frame = pd.DataFrame({"unit": ctx.owner_of(base_level, lv), "lack": lack.to_numpy(),
                              "unknown": (applicable & lack.isna()).to_numpy()}).dropna(subset=["unit"])  # fmt: skip
        g = frame.groupby("unit")
        num = g["lack"].sum().reindex(ids, fill_value=0.0)
        den = g["lack"].count().reindex(ids, fill_value=0).astype(float)
        unknown = g["unknown"].sum().reindex(ids, fill_value=0).astype(float)
        ev.frames[lv] = pd.DataFrame(
            {"numerator": num, "denominator": den, "value": np.where(den > 0, num, np.nan),
             "unknown": unknown}, index=ids,
        )  # fmt: skip
    return ev


def _facilities_in(ctx: CheckupContext, cats: Sequence[str], level: str) -> pd.DataFrame:
    """The facilities of ``cats`` with ``area_m2`` and the unit of ``level`` holding them."""
    fac = ctx.facilities[ctx.facilities["category"].isin(cats)]
    owner = assign_to_units(fac.geometry, UnitSet({level: ctx.units(level)}, {level: ""}))[level]
    return pd.DataFrame({"unit": owner.to_numpy(), "area": fac["area_m2"].to_numpy(dtype=float)})


def units_without(
    ctx: CheckupContext, ind: Indicator, params: Mapping[str, Any], levels: list[str]
) -> Evaluation:
    """Proxy count of units lacking a facility: none of ≥ ``min_area_m2`` inside (a facility
    whose area is unknown leaves the unit unknown), or (with ``radius_m``) fewer than the
    policy's majority share of residents within the radius."""
    cats = list(params["categories"])
    if (none := unmeasured(ctx, cats)) is not None:
        return none
    base_level = ind.level if ind.level in UNIT_LEVEL_ORDER else "community"
    ids = pd.Index(ctx.units(base_level)["unit_id"], name="unit_id")
    if "min_area_m2" in params:
        fac = _facilities_in(ctx, cats, base_level).dropna(subset=["unit"])
        big = (
            fac.groupby("unit")["area"]
            .max()
            .ge(params["min_area_m2"])
            .reindex(ids, fill_value=False)
        )
        unsure = fac[fac["area"].isna()].groupby("unit").size().reindex(ids, fill_value=0) > 0
        lack = pd.Series(np.where(big, 0.0, np.where(unsure, np.nan, 1.0)), index=ids)
        method = f"units with no {', '.join(cats)} of ≥ {params['min_area_m2']:g} m² inside [proxy]"
        ev = Evaluation(method=method, note=str(params.get("note", "")))
        return _counted(ctx, base_level, lack, levels, ev, inside=True)
    else:
        radius = float(params["radius_m"])
        d = ctx.distance(cats, ctx.method_of(params))
        assert d is not None
        cov = population_coverage(d, ctx.population.population, ctx.unit_category[base_level],
                                  radius_m=radius, units=list(ids))  # fmt: skip
        lack = (cov["value"] < ctx.policy.majority_share).astype(float).where(cov["value"].notna())
        method = (f"{base_level} units where under {ctx.policy.majority_share:g} % of the residents have "
                  f"{', '.join(cats)} within {radius:g} m [proxy]")  # fmt: skip
    ev = Evaluation(
        method=method, radius_m=params.get("radius_m"), note=str(params.get("note", ""))
    )
    return _counted(ctx, base_level, lack, levels, ev)


def units_with_area_below(
    ctx: CheckupContext, ind: Indicator, params: Mapping[str, Any], levels: list[str]
) -> Evaluation:
    """Proxy count of units whose facilities of ``categories`` add up to less than
    ``min_area_m2`` (facilities of unknown area leave a unit below it unknown)."""
    cats, min_area = list(params["categories"]), float(params["min_area_m2"])
    if (none := unmeasured(ctx, cats)) is not None:
        return none
    base_level = ind.level if ind.level in UNIT_LEVEL_ORDER else "community"
    ids = pd.Index(ctx.units(base_level)["unit_id"], name="unit_id")
    fac = _facilities_in(ctx, cats, base_level).dropna(subset=["unit"])
    total = fac.groupby("unit")["area"].sum().reindex(ids, fill_value=0.0)
    unsure = fac[fac["area"].isna()].groupby("unit").size().reindex(ids, fill_value=0) > 0
    lack = pd.Series(np.where(total >= min_area, 0.0, np.where(unsure, np.nan, 1.0)), index=ids)
    ev = Evaluation(
        method=f"units whose {', '.join(cats)} inside add up to < {min_area:g} m² [proxy]",
        note=str(params.get("note", "")),
    )
    return _counted(ctx, base_level, lack, levels, ev, inside=True)


def per_capita(
    ctx: CheckupContext, ind: Indicator, params: Mapping[str, Any], levels: list[str]
) -> Evaluation:
    """Σ area of the facilities of ``categories`` in the unit ÷ its residents (m²/person);
    facilities mapped without an area make the value a lower bound."""
    cats = list(params["categories"])
    if (none := unmeasured(ctx, cats)) is not None:
        return none
    ev = Evaluation(method=f"Σ area of {', '.join(cats)} ÷ residents [proxy]", bound=True,
                    population_based=True, note=str(params.get("note", "")),
                    unknown_what="facilities mapped without an area (value is a lower bound)")  # fmt: skip
    for lv in levels:
        fac = _facilities_in(ctx, cats, lv)
        ids = list(ctx.units(lv)["unit_id"])
        ev.frames[lv] = per_capita_area(fac["area"], fac["unit"], ctx.residents[lv], ids)
    return ev
