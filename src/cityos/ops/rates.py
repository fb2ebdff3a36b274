"""The three rates of the hotline (三率), on-time resolution and the composite score, per unit
(街乡, community) or department and month, by the versioned rule of ``ops/rates.toml``.

Each rate is a pure function of three frames (tickets, transitions, callbacks) returning one row
per group with numerator, denominator, rate (percent, NaN when the denominator is empty: no
data, never 0) and the ticket ids behind both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from cityos.errors import ConfigError, InputError
from cityos.ops.models import Callback, Ticket, Transition
from cityos.ops.workflow import OPEN_STATES
from cityos.tomlfiles import read_with_defaults

__all__ = [
    "GROUPS",
    "RATE_COLUMNS",
    "RateRule",
    "load_rate_rule",
    "month_bounds",
    "rates",
    "read_frames",
]

#: what rates are grouped by
GROUPS = {"subdistrict": "subdistrict_id", "community": "community_id", "department": "department"}
RATE_COLUMNS = (
    "month", "level", "group", "rate", "numerator", "denominator", "percent", "tickets",
    "denominator_tickets", "note",
)  # fmt: skip


@dataclass(frozen=True)
class RateRule:
    """The satisfaction words, the weight of partly satisfied, the composite weights."""

    satisfied: frozenset[str]
    partly: frozenset[str]
    partly_weight: float
    weights: dict[str, float]
    composite_id: str
    version: str
    source: str


def load_rate_rule(path: str | Path | None = None) -> RateRule:
    """The built-in rule with a city's file merged over it.

    Raises
    ------
    ConfigError
        Weights not numbers in [0, 1], unknown rate names in the weights.
    """
    raw, where = read_with_defaults("cityos.ops", "rates.toml", path, what="rate rule")
    sat, comp = raw.get("satisfaction", {}), raw.get("composite", {})
    weights = {str(k): v for k, v in comp.get("weights", {}).items()}
    bad = set(weights) - {"response", "resolution", "satisfaction"}
    if bad:
        raise ConfigError(f"{where}: [composite] weights of unknown rates {sorted(bad)}")
    if any(not isinstance(v, int | float) or not 0 <= v <= 1 for v in weights.values()):
        raise ConfigError(f"{where}: [composite] weights must be numbers in [0, 1]")
    pw = sat.get("partly_weight", 0.5)
    if not isinstance(pw, int | float) or not 0 <= pw <= 1:
        raise ConfigError(f"{where}: [satisfaction] partly_weight must lie in [0, 1]")
    return RateRule(
        frozenset(map(str, sat.get("satisfied", []))),
        frozenset(map(str, sat.get("partly", []))),
        float(pw),
        {k: float(v) for k, v in weights.items()},
        str(comp.get("id", "")),
        str(raw.get("version", "")),
        where,
    )


def month_bounds(month: str) -> tuple[dt.datetime, dt.datetime]:
    """``YYYY-MM`` → [first instant, first instant of the next month) in UTC."""
    try:
        start = dt.datetime.strptime(month, "%Y-%m")
    except ValueError as exc:
        raise InputError(f"month {month!r}: use YYYY-MM, e.g. 2026-11") from exc
    end = dt.datetime(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return start, end


def read_frames(engine: Engine, start: dt.datetime, end: dt.datetime) -> dict[str, pd.DataFrame]:
    """The tickets a month's rates can involve (requested before its end and not closed in the
    two months before its start), their first dispatch, sign-off and contact times, and the
    month's callbacks."""
    horizon = start - dt.timedelta(days=62)
    cols = [Ticket.id, Ticket.state, Ticket.department, Ticket.subdistrict_id, Ticket.community_id,
            Ticket.requested_at, Ticket.due_sign, Ticket.due_contact, Ticket.due_resolve,
            Ticket.handled_at, Ticket.closed_at]  # fmt: skip
    relevant = (Ticket.requested_at < end) & (
        Ticket.closed_at.is_(None) | (Ticket.closed_at >= horizon)
    )
    with engine.connect() as conn:
        tickets = pd.read_sql(select(*cols).where(relevant), conn)
        steps = pd.read_sql(
            select(Transition.ticket_id, Transition.action, Transition.at)
            .join(Ticket, Ticket.id == Transition.ticket_id)
            .where(relevant, Transition.action.in_(["dispatch", "approve_return", "sign", "start"])),
            conn,
        )  # fmt: skip
        calls = pd.read_sql(
            select(Callback.ticket_id, Callback.at, Callback.reached, Callback.resolved,
                   Callback.satisfaction).where(Callback.at >= start, Callback.at < end),
            conn,
        )  # fmt: skip
    keep = set(tickets["id"])
    return {
        "tickets": tickets,
        "transitions": steps,
        "callbacks": calls[calls["ticket_id"].isin(keep)],
    }


def _rows(
    frame: pd.DataFrame, by: str, num: pd.Series, den: pd.Series, rate: str, note: str = ""
) -> pd.DataFrame:
    """One row per group: counts, percent (NaN when nothing to count) and ticket ids."""
    f = frame.assign(_num=num.to_numpy(), _den=den.to_numpy())
    f = f[f["_den"]]
    if f.empty:
        return pd.DataFrame(
            columns=[
                "group",
                "rate",
                "numerator",
                "denominator",
                "percent",
                "tickets",
                "denominator_tickets",
                "note",
            ]
        )
    g = f.groupby(by, dropna=False)

    def ids(s: pd.Series) -> str:
        return ",".join(str(i) for i in sorted(s))

    out = pd.DataFrame({
        "numerator": g["_num"].sum().astype(float),
        "denominator": g["_den"].sum().astype(float),
        "tickets": f[f["_num"] > 0].groupby(by, dropna=False)["id"].apply(ids),
        "denominator_tickets": g["id"].apply(ids),
    })  # fmt: skip
    out["tickets"] = out["tickets"].fillna("")
    out["percent"] = np.clip(100.0 * out["numerator"] / out["denominator"], 0.0, 100.0)
    out = out.reset_index().rename(columns={by: "group"})
    out["group"] = out["group"].fillna("(outside every unit)")
    out["rate"], out["note"] = rate, note
    return out


def rates(frames: dict[str, pd.DataFrame], month: str, level: str, rule: RateRule) -> pd.DataFrame:
    """Every rate of ``month`` per group of ``level`` (``subdistrict``, ``community``,
    ``department``), with the tickets behind each; columns :data:`RATE_COLUMNS`."""
    if level not in GROUPS:
        raise InputError(f"level {level!r}: use one of {', '.join(GROUPS)}")
    start, end = month_bounds(month)
    by = GROUPS[level]
    t = frames["tickets"].copy()
    steps, calls = frames["transitions"], frames["callbacks"]
    first = steps.groupby(["ticket_id", "action"])["at"].min().unstack()
    for action in ("dispatch", "sign", "start"):
        t[f"{action}_at"] = t["id"].map(first[action]) if action in first else pd.NaT
    # response: dispatched, contact limit in the month
    den = t["dispatch_at"].notna() & (t["due_contact"] >= start) & (t["due_contact"] < end)
    num = den & (t["sign_at"] <= t["due_sign"]) & (t["start_at"] <= t["due_contact"])
    parts = [_rows(t, by, num, den, "response")]
    # callbacks of the month, joined to their ticket's group
    c = calls[(calls["at"] >= start) & (calls["at"] < end)].merge(
        t[["id", by]], left_on="ticket_id", right_on="id", how="inner"
    )
    reached = c["reached"].astype(bool)
    parts.append(_rows(c, by, reached & (c["resolved"] == True), reached, "resolution"))  # noqa: E712
    sat = c["satisfaction"].isin(rule.satisfied).astype(float) + rule.partly_weight * c[
        "satisfaction"
    ].isin(rule.partly)
    parts.append(_rows(c.assign(_w=sat), by, sat.where(reached, 0.0), reached, "satisfaction"))
    parts.append(_rows(c, by, ~reached, pd.Series(True, index=c.index), "callbacks_unreached",
                       "callbacks that could not reach the citizen ÷ all callbacks; not in the rates"))  # fmt: skip
    # on time: handled in the month (on time or not) + open and overdue at its end
    handled = (t["handled_at"] >= start) & (t["handled_at"] < end)
    # open at the month's end, past its deadline, with a department (dispatched, whenever)
    with_department = t["state"].isin(OPEN_STATES - {"received", "classified"})
    overdue_open = (
        t["handled_at"].isna() & (t["due_resolve"] < end) & with_department & t["closed_at"].isna()
    )
    parts.append(
        _rows(
            t,
            by,
            handled & (t["handled_at"] <= t["due_resolve"]),
            handled | overdue_open,
            "on_time",
        )
    )
    out = (
        pd.concat([p for p in parts if len(p)], ignore_index=True)
        if any(len(p) for p in parts)
        else pd.DataFrame(columns=list(RATE_COLUMNS))
    )
    out = _complete(out, t[by].fillna("(outside every unit)").unique())
    out = _composite(out, rule)
    out["month"], out["level"] = month, level
    return (
        out[list(RATE_COLUMNS)].sort_values(["group", "rate"], kind="stable").reset_index(drop=True)
    )


_RATES = ("response", "resolution", "satisfaction", "callbacks_unreached", "on_time")


def _complete(table: pd.DataFrame, groups: Iterable[object]) -> pd.DataFrame:
    """Every group × rate, a rate with nothing to count as no data (NaN, with the reason)."""
    pairs = [(g, r) for g in sorted(map(str, groups)) for r in _RATES]
    full = pd.MultiIndex.from_tuples(pairs, names=["group", "rate"])
    out = table.set_index(["group", "rate"]).reindex(full).reset_index()
    empty = out["denominator"].isna()
    out.loc[empty, ["numerator", "denominator"]] = 0.0
    out.loc[empty, ["tickets", "denominator_tickets"]] = ""
    out.loc[empty, "note"] = "no data: nothing to count in this month"
    return out


def _composite(table: pd.DataFrame, rule: RateRule) -> pd.DataFrame:
    if table.empty or not rule.weights:
        return table
    wide = table.pivot_table(index="group", columns="rate", values="percent", aggfunc="first")
    parts = [
        wide[r] * w if r in wide else pd.Series(np.nan, index=wide.index)
        for r, w in rule.weights.items()
    ]
    score = pd.concat(parts, axis=1).sum(axis=1, min_count=len(parts))
    composite = pd.DataFrame({
        "group": score.index, "rate": "composite", "numerator": np.nan, "denominator": np.nan,
        "percent": score.to_numpy(), "tickets": "", "denominator_tickets": "",
        "note": f"{rule.composite_id}: " + " + ".join(f"{w:g} × {r}" for r, w in rule.weights.items())
                + " (no data when a rate has none)",
    })  # fmt: skip
    return pd.concat([table, composite], ignore_index=True)
