"""Residents' satisfaction per dimension from the survey register (method ``survey_score``).

Answers score 非常满意 100, 满意 75, 一般 50, 不满意 25, 非常不满意 0; 不了解 and blank are no
answer. A respondent's score for a dimension is the mean of the items they answered; a
community's score is the mean over its respondents, with the 95 % margin of error
1.96 · s / √n · √((N − n) / (N − 1)) (s: the sample standard deviation, N: the community's
estimated residents, the finite-population correction only where N > n is known). A community
with fewer than ``min_respondents`` respondents has no score (no_data, with the count). A
subdistrict or the city scores the residents-weighted mean of its communities that have one
(their respondents' weights where residents are unknown), its margin
1.96 · √(Σ wᵢ² sᵢ² / nᵢ) with the weights summing to 1. [OP]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from cityos.healthcheck.context import CheckupContext
from cityos.healthcheck.evaluation import Evaluation

__all__ = ["ANSWER_SCORES", "community_scores", "survey_score"]

#: five-level answers → score (0–100)
ANSWER_SCORES = {"非常满意": 100.0, "满意": 75.0, "一般": 50.0, "不满意": 25.0, "非常不满意": 0.0}
Z95 = 1.96


def community_scores(
    table: pd.DataFrame, items: list[str], residents: pd.Series, key: str = "unit_id"
) -> pd.DataFrame:
    """Per community in the register: respondents ``n``, mean ``score``, standard deviation
    ``sd`` and margin of error ``moe`` (95 %) of the dimension made of ``items``."""
    answers = pd.DataFrame({i: table[i].map(ANSWER_SCORES) for i in items if i in table})
    person = answers.mean(axis=1, skipna=True)
    frame = pd.DataFrame({"unit": table[key].astype(str), "score": person}).dropna()
    g = frame.groupby("unit")["score"]
    out = pd.DataFrame({"n": g.count(), "score": g.mean(), "sd": g.std(ddof=1)})
    big_n = residents.reindex(out.index).astype(float)
    fpc = np.where((big_n > out["n"]) & (big_n > 1),
                   np.sqrt((big_n - out["n"]) / (big_n - 1).where(big_n > 1)), 1.0)  # fmt: skip
    out["moe"] = Z95 * out["sd"].fillna(0.0) / np.sqrt(out["n"]) * fpc
    return out


def survey_score(
    ctx: CheckupContext, ind: Any, params: Mapping[str, Any], levels: list[str]
) -> Evaluation:
    """Residents' satisfaction per unit for the dimension of ``items`` (0–100)."""
    name = params["register"]
    if name not in ctx.bundle.registers:
        return Evaluation(no_data=f"register '{name}' not given: run the survey (`cityos template "
                                  f"--register {name}`) and pass it with --register {name}=FILE")  # fmt: skip
    table = ctx.bundle.registers[name]
    items = [str(i) for i in params["items"]]
    missing = [c for c in ("unit_id", *items) if c not in table]
    if missing:
        return Evaluation(no_data=f"register '{name}' has no column {', '.join(missing)}")
    least = int(params.get("min_respondents", 30))
    base = ctx.residents["community"]
    scores = community_scores(table, items, base)
    ev = Evaluation(method=f"survey '{name}': mean score of {', '.join(items)} (0–100), communities "
                           f"with ≥ {least} respondents, residents-weighted above", unit_keyed=True)  # fmt: skip
    enough = scores[scores["n"] >= least]
    for lv in levels:
        ids = pd.Index(ctx.units(lv)["unit_id"].astype(str), name="unit_id")
        if lv == "community":
            got = scores.reindex(ids)
            ok = got["n"] >= least
            value = got["score"].where(ok)
            note = [
                (f"{int(n)} respondents, ± {m:.1f} (95 %)" if k else
                 f"{0 if pd.isna(n) else int(n)} respondents, fewer than the {least} needed")
                for n, m, k in zip(got["n"], got["moe"], ok, strict=True)
            ]  # fmt: skip
            ev.frames[lv] = pd.DataFrame({"numerator": got["n"].fillna(0.0), "denominator": got["n"].fillna(0.0),
                                          "value": value, "unknown": 0.0, "note": note}, index=ids)  # fmt: skip
            continue
        comm = pd.Index(ctx.units("community")["unit_id"].astype(str))
        owner = pd.Series(ctx.owner_of("community", lv), index=comm)
        part = enough.assign(owner=owner.reindex(enough.index), people=base.reindex(enough.index))
        weight = part["people"].where(part["people"] > 0, part["n"]).astype(float)
        part = part.assign(w=weight)
        rows = []
        for uid in ids:
            mine = part[part["owner"] == uid]
            if mine.empty:
                rows.append((0.0, np.nan, f"no community with {least} respondents or more"))
                continue
            w = mine["w"] / mine["w"].sum()
            score = float((w * mine["score"]).sum())
            moe = Z95 * float(np.sqrt((w**2 * mine["sd"].fillna(0.0) ** 2 / mine["n"]).sum()))
            rows.append((float(mine["n"].sum()), score,
                         f"{len(mine)} communities, {int(mine['n'].sum())} respondents, ± {moe:.1f} (95 %)"))  # fmt: skip
        ev.frames[lv] = pd.DataFrame(
            {"numerator": [r[0] for r in rows], "denominator": [r[0] for r in rows],
             "value": [r[1] for r in rows], "unknown": 0.0, "note": [r[2] for r in rows]},
            index=ids,
        )  # fmt: skip
    return ev
