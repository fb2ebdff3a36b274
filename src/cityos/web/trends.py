"""The dashboard's trends (``/api/v1/map/trends``): hotline tickets per day of the top categories,
lifeline alerts per day and domain, and the city's three rates per month — counts and rates a
chart draws, each rate with the numerator and denominator behind it (``/api/v1/rates`` lists
the tickets)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Query, Request
from sqlalchemy import select

from cityos.lifelines.models import Alert
from cityos.ops.hotline import now
from cityos.ops.models import Ticket
from cityos.ops.rates import rates, read_frames
from cityos.web.deps import OpsDep

__all__ = ["city_rates", "daily_counts", "router"]

router = APIRouter(tags=["dashboard"])

#: the rates a month's point shows
RATES = ("response", "resolution", "satisfaction")


def daily_counts(
    times: pd.Series, groups: pd.Series, days: pd.DatetimeIndex
) -> dict[str, list[int]]:
    """Per group, how many of ``times`` fall on each of ``days`` (UTC dates), oldest first."""
    frame = pd.DataFrame({"day": pd.to_datetime(times).dt.normalize(), "group": groups.astype(str)})
    table = (
        frame.groupby(["group", "day"])
        .size()
        .unstack(fill_value=0)
        .reindex(columns=days, fill_value=0)
    )
    return {str(g): [int(v) for v in row] for g, row in table.iterrows()}


def city_rates(frames: dict[str, pd.DataFrame], month: str, rule: Any,
               as_of: dt.datetime | None = None) -> dict[str, Any]:  # fmt: skip
    """The city's rates of ``month``: every department's numerator and denominator summed (every
    dispatched ticket has a department, so the city is all of them), the percent null when
    there is nothing to count."""
    table = rates(frames, month, "department", rule, as_of)
    out: dict[str, Any] = {}
    for rate in RATES:
        part = table[table["rate"] == rate]
        num, den = float(part["numerator"].sum()), float(part["denominator"].sum())
        out[rate] = {"numerator": num, "denominator": den,
                     "percent": 100.0 * num / den if den > 0 else None}  # fmt: skip
    return out


def _months(today: dt.date, n: int) -> list[str]:
    y, m = today.year, today.month
    out = []
    for _ in range(n):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return out[::-1]


@router.get(
    "/api/v1/map/trends",
    summary="Tickets per day by top category, alerts per day by domain, rates per month",
)
def trends(
    request: Request, ops: OpsDep,
    days: Annotated[int, Query(ge=1, le=366, description="Days of daily counts, ending today (UTC)")] = 30,
    months: Annotated[int, Query(ge=1, le=24, description="Months of rates, ending this month")] = 6,
    top: Annotated[int, Query(ge=1, le=20, description="Categories shown; the rest are 'other'")] = 5,
) -> dict[str, Any]:  # fmt: skip
    """Aggregates only: no ticket's content. A past month's rates are read once and kept (the
    current month's are read each time)."""
    from cityos.ops.rates import month_bounds

    t = now()
    day_index = pd.date_range(end=pd.Timestamp(t.date()), periods=days, freq="D")
    since = day_index[0].to_pydatetime()
    with ops.reading() as conn:
        tk = pd.DataFrame(conn.execute(select(Ticket.requested_at, Ticket.service_code)
                                       .where(Ticket.requested_at >= since)).all(),
                          columns=["at", "service"])  # fmt: skip
        al = pd.DataFrame(conn.execute(select(Alert.raised_at, Alert.domain, Alert.hazard)
                                       .where(Alert.raised_at >= since)).all(),
                          columns=["at", "domain", "hazard"])  # fmt: skip
    # the most frequent categories, a tie going to the code first in alphabetical order
    counts = tk["service"].value_counts()
    ranked = sorted(counts.index, key=lambda code: (-int(counts[code]), str(code)))[:top]
    tk["group"] = tk["service"].where(tk["service"].isin(ranked), "other")
    ticket_days = daily_counts(tk["at"], tk["group"], day_index) if len(tk) else {}
    alert_days = daily_counts(al["at"], al["domain"], day_index) if len(al) else {}
    cache: dict[str, dict[str, Any]] = request.app.state.rates_by_month
    this_month = f"{t.year:04d}-{t.month:02d}"
    per_month = {}
    for month in _months(t.date(), months):
        if month not in cache or month == this_month:
            start, end = month_bounds(month)
            value = city_rates(read_frames(ops.engine, start, end), month, ops.rate_rule, t)
            if month == this_month:
                per_month[month] = value
                continue
            cache[month] = value
        per_month[month] = cache[month]
    return {
        "days": [d.date().isoformat() for d in day_index],
        "tickets": {
            g: ticket_days.get(g, [0] * days) for g in [*ranked, "other"] if g in ticket_days
        },
        "alerts": alert_days,
        "months": list(per_month),
        "rates": {r: [per_month[m][r] for m in per_month] for r in RATES},
    }
