"""The three rates of the hotline (三率), on-time resolution and the composite score, per unit
(街乡, community) or department and month, by the versioned rule of ``ops/rates.toml``.

Each rate is a pure function of two frames (tickets with their response times, callbacks)
returning one row per group with numerator, denominator, rate (percent, NaN when the
denominator is empty: no data, never 0) and the ticket ids behind both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from cityos.errors import ConfigError, InputError
from cityos.ops.workflow import OPEN_STATES
from cityos.tomlfiles import read_with_defaults

__all__ = [
    "CALLBACK_COLUMNS",
    "GROUPS",
    "RATE_COLUMNS",
    "TICKET_COLUMNS",
    "WITHDRAWN_STATES",
    "RateRule",
    "load_rate_rule",
    "month_bounds",
    "rates",
    "read_frames",
    "withdrawn_early",
]

#: what rates are grouped by
GROUPS = {"subdistrict": "subdistrict_id", "community": "community_id", "department": "department"}
RATE_COLUMNS = (
    "month", "level", "group", "rate", "numerator", "denominator", "percent", "tickets",
    "denominator_tickets", "note",
)  # fmt: skip


@dataclass(frozen=True)
class RateRule:
    """The satisfaction words, the weight of partly satisfied, the composite weights, and the
    closed states that take a ticket out of the response rate when reached before a limit was
    missed."""

    satisfied: frozenset[str]
    partly: frozenset[str]
    partly_weight: float
    weights: dict[str, float]
    composite_id: str
    version: str
    source: str
    withdrawn: frozenset[str] = frozenset({"merged_duplicate", "cancelled"})


def load_rate_rule(path: str | Path | None = None) -> RateRule:
    """The built-in rule with a city's file merged over it.

    Raises
    ------
    ConfigError
        Weights not numbers in [0, 1], unknown rate names in the weights, withdrawn states
        that are not closed states of the workflow.
    """
    raw, where = read_with_defaults("cityos.ops", "rates.toml", path, what="rate rule")
    sat, comp = raw.get("satisfaction", {}), raw.get("composite", {})
    weights = {str(k): v for k, v in comp.get("weights", {}).items()}
    bad = set(weights) - {"response", "resolution", "satisfaction"}
    if bad:
        raise ConfigError(f"{where}: [composite] weights of unknown rates {sorted(bad)}")
    if any(not isinstance(v, int | float) or not 0 <= v <= 1 for v in weights.values()):
        raise ConfigError(f"{where}: [composite] weights must be numbers in [0, 1]")
    withdrawn = raw.get("response", {}).get("withdrawn_states", ["merged_duplicate", "cancelled"])
    if not isinstance(withdrawn, list) or not set(map(str, withdrawn)) <= WITHDRAWN_STATES:
        raise ConfigError(f"{where}: [response] withdrawn_states must be states that end a "
                          f"ticket unhandled: {', '.join(sorted(WITHDRAWN_STATES))}")  # fmt: skip
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
        frozenset(map(str, withdrawn)),
    )


def month_bounds(month: str) -> tuple[dt.datetime, dt.datetime]:
    """``YYYY-MM`` → [first instant, first instant of the next month) in UTC."""
    try:
        start = dt.datetime.strptime(month, "%Y-%m")
    except ValueError as exc:
        raise InputError(f"month {month!r}: use YYYY-MM, e.g. 2026-11") from exc
    end = dt.datetime(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return start, end


#: the states that end a ticket without handling it: merged into a twin (closed only when the
#: twin closes), withdrawn, out of scope; the frames give when each ticket entered one
WITHDRAWN_STATES = frozenset({"merged_duplicate", "cancelled", "rejected_out_of_scope"})

#: the ticket columns the rates read, as Arrow types
TICKET_COLUMNS = {
    "id": "int64", "state": "string", "department": "string", "subdistrict_id": "string",
    "community_id": "string", "due_sign": "time", "due_contact": "time", "due_resolve": "time",
    "dispatched_at": "time", "signed_at": "time", "contacted_at": "time", "handled_at": "time",
    "closed_at": "time",
}  # fmt: skip
CALLBACK_COLUMNS = {
    "ticket_id": "int64", "at": "time", "reached": "bool", "resolved": "bool",
    "satisfaction": "string",
}  # fmt: skip


def _arrow_store(engine: Engine) -> tuple[Any, str, Callable[[dt.datetime], object]]:
    """An ADBC connection to the store (Arrow in columns, no Python object per value: a month
    of a big city is millions of values), its placeholder style and how times are bound."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        import sqlite3

        # the standard library's SQLite, the copy SQLAlchemy's connections use: a second copy in
        # the process (ADBC's driver bundles one) breaks both, as POSIX locks belong to the
        # process: closing its file dropped the service's locks, it no longer saw the WAL (the
        # rates missed every ticket since the last checkpoint) and the next read of the store
        # failed with "disk I/O error". Times are stored as text, '%Y-%m-%d %H:%M:%S.%f'
        # (SQLAlchemy's SQLite format).
        return sqlite3.connect(url.database), "?", lambda t: t.strftime("%Y-%m-%d %H:%M:%S.%f")
    if url.get_backend_name() == "postgresql":
        import adbc_driver_postgresql.dbapi as adbc_pg

        uri = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return adbc_pg.connect(uri), "$", lambda t: t
    raise ConfigError(f"{url!r}: the rates read SQLite files and PostgreSQL stores only")


def _arrow_frame(
    conn: Any, sql: str, params: list[object], columns: dict[str, str], *, sqlite: bool
) -> pd.DataFrame:
    """The rows of ``sql`` as a frame of ``columns`` (times parsed by Arrow from SQLite's text)."""
    import pyarrow as pa

    types = {
        "int64": pa.int64(),
        "string": pa.string(),
        "time": pa.timestamp("us"),
        "bool": pa.bool_(),
    }
    if sqlite:  # rows from the standard library's driver, column by column into Arrow
        cur = conn.execute(sql, params)
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
        values = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        table = pa.table({n: pa.array(list(v)) for n, v in zip(names, values, strict=True)})
    else:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            table = cur.fetch_arrow_table()
    schema = pa.schema([(c, types[t]) for c, t in columns.items()])
    frame: pd.DataFrame = table.cast(schema).to_pandas()
    return frame


def read_frames(engine: Engine, start: dt.datetime, end: dt.datetime) -> dict[str, pd.DataFrame]:
    """The tickets a month's rates can involve (requested before its end and not closed in the
    two months before its start) with their dispatch, sign-off and contact times and when they
    were merged or withdrawn (``withdrawn_at``), and the month's callbacks of those tickets."""
    conn, mark, bind = _arrow_store(engine)
    sqlite = mark == "?"

    def p(i: int) -> str:
        return "?" if sqlite else f"${i}"

    # a month is most of the rows before its end: one scan beats the index on requested_at
    scan = "tickets NOT INDEXED" if sqlite else "tickets"
    try:
        tickets = _arrow_frame(
            conn,
            f"SELECT {', '.join(TICKET_COLUMNS)} FROM {scan} WHERE requested_at < {p(1)} "
            f"AND (closed_at IS NULL OR closed_at >= {p(2)})",
            [bind(end), bind(start - dt.timedelta(days=62))], TICKET_COLUMNS, sqlite=sqlite,
        )  # fmt: skip
        # when each merged or withdrawn ticket entered its state (a merged one's closed_at
        # waits for its twin): by the tickets' state index, then each one's transitions
        states = ", ".join(f"'{x}'" for x in sorted(WITHDRAWN_STATES))
        left = _arrow_frame(
            conn,
            f"SELECT t.id AS id, max(tr.at) AS at FROM tickets t JOIN transitions tr "
            f"ON tr.ticket_id = t.id AND tr.to_state = t.state WHERE t.state IN ({states}) "
            f"AND t.requested_at < {p(1)} GROUP BY t.id",
            [bind(end)], {"id": "int64", "at": "time"}, sqlite=sqlite,
        )  # fmt: skip
        calls = _arrow_frame(
            conn,
            f"SELECT {', '.join(CALLBACK_COLUMNS)} FROM callbacks WHERE at >= {p(1)} AND at < {p(2)}",
            [bind(start), bind(end)], CALLBACK_COLUMNS, sqlite=sqlite,
        )  # fmt: skip
    finally:
        conn.close()
    calls = calls[calls["ticket_id"].isin(tickets["id"])].reset_index(drop=True)
    pos = pd.Index(left["id"]).get_indexer(tickets["id"])
    gone = np.full(len(tickets), np.datetime64("NaT"), dtype="datetime64[us]")
    gone[pos >= 0] = left["at"].to_numpy(dtype="datetime64[us]")[pos[pos >= 0]]
    tickets["withdrawn_at"] = gone
    return {"tickets": tickets, "callbacks": calls}


OUTSIDE = "(outside every unit)"


@dataclass(frozen=True)
class _Grouped:
    """Rows of a frame by group: each row's group code, the group names, each row's ticket id
    as text (rows ascending by id, so every list of ids comes out sorted)."""

    codes: np.ndarray
    labels: np.ndarray
    ids: np.ndarray


def _joined(codes: np.ndarray, ids: np.ndarray, n: int) -> np.ndarray:
    """For each of ``n`` groups, the ids of its rows joined by commas, in row order."""
    order = np.argsort(codes, kind="stable")
    text = ids[order].tolist()
    bounds = np.searchsorted(codes[order], np.arange(n + 1))
    return np.array([",".join(text[bounds[i] : bounds[i + 1]]) for i in range(n)], dtype=object)


def _rows(g: _Grouped, num: pd.Series, den: pd.Series, rate: str, note: str = "") -> pd.DataFrame:
    """One row per group with something to count: numerator, denominator, percent and the
    ticket ids behind both (one pass over the frame per rate: a month is millions of rows)."""
    den_ = den.to_numpy(dtype=bool)
    num_ = num.to_numpy(dtype=float) * den_
    n = len(g.labels)
    denominator = np.bincount(g.codes[den_], minlength=n).astype(float)
    numerator = np.bincount(g.codes, weights=num_, minlength=n)
    present = np.flatnonzero(denominator > 0)
    hits = num_ > 0
    out = pd.DataFrame({
        "group": g.labels[present], "numerator": numerator[present],
        "denominator": denominator[present],
        "tickets": _joined(g.codes[hits], g.ids[hits], n)[present],
        "denominator_tickets": _joined(g.codes[den_], g.ids[den_], n)[present],
    })  # fmt: skip
    out["percent"] = np.clip(100.0 * out["numerator"] / out["denominator"], 0.0, 100.0)
    out["rate"], out["note"] = rate, note
    return out


def withdrawn_early(t: pd.DataFrame, states: frozenset[str]) -> pd.Series:
    """Tickets that went into one of ``states`` (merged into a twin, withdrawn) before the
    unit had missed a response limit: not contacted, gone (``withdrawn_at``) before the contact
    limit, and signed in time or gone before the sign-off limit. Aligned with ``t``.

    Such a ticket leaves the response rate's denominator (``rates.toml`` [response]); one left
    unsigned past its limit and merged later stays in, as the failure it was."""
    gone = t["withdrawn_at"]
    sign_missed = (t["signed_at"] > t["due_sign"]) | (t["signed_at"].isna() & (gone > t["due_sign"]))  # fmt: skip
    return (
        t["state"].isin(states) & t["contacted_at"].isna() & (gone < t["due_contact"]) & ~sign_missed
    )  # fmt: skip


def rates(frames: dict[str, pd.DataFrame], month: str, level: str, rule: RateRule,
          as_of: dt.datetime | None = None) -> pd.DataFrame:  # fmt: skip
    """Every rate of ``month`` per group of ``level`` (``subdistrict``, ``community``,
    ``department``), with the tickets behind each; columns :data:`RATE_COLUMNS`.

    ``as_of``: when the rates are read (default: the month's end). A limit after it has not
    fallen yet: a ticket whose response limit is still to come is not in the response rate, and
    "open and overdue" is judged at ``as_of`` — so the current month's rates are not dragged
    down by tickets that may still be answered in time."""
    if level not in GROUPS:
        raise InputError(f"level {level!r}: use one of {', '.join(GROUPS)}")
    start, end = month_bounds(month)
    end_fallen = min(end, as_of) if as_of is not None else end
    by = GROUPS[level]
    t, calls = frames["tickets"], frames["callbacks"]
    t = t if t["id"].is_monotonic_increasing else t.sort_values("id", kind="stable")
    codes, uniques = pd.factorize(t[by].astype(object).fillna(OUTSIDE))
    labels = np.asarray(uniques, dtype=object)
    # small integer codes: numpy sorts them stably by radix, in linear time
    codes = codes.astype(np.int16 if len(labels) < 2**15 else np.int32)
    text = np.array(list(map(str, t["id"].tolist())), dtype=object)
    tg = _Grouped(codes, labels, text)
    # response: dispatched, contact limit in the month, not withdrawn early; signed and
    # contacted in time
    den = (
        t["dispatched_at"].notna() & (t["due_contact"] >= start) & (t["due_contact"] < end_fallen)
        & ~withdrawn_early(t, rule.withdrawn)
    )  # fmt: skip
    num = den & (t["signed_at"] <= t["due_sign"]) & (t["contacted_at"] <= t["due_contact"])
    parts = [_rows(tg, num, den, "response")]
    # callbacks of the month, with their ticket's group
    c = calls[(calls["at"] >= start) & (calls["at"] < end)]
    row = pd.Series(np.arange(len(t)), index=t["id"].to_numpy())
    c = c[c["ticket_id"].isin(row.index)]
    at = row.loc[c["ticket_id"].to_numpy()].to_numpy()
    order = np.argsort(at, kind="stable")  # by ticket id, like the tickets
    c, at = c.iloc[order].reset_index(drop=True), at[order]
    cg = _Grouped(codes[at], labels, text[at])
    reached = c["reached"].astype(bool)
    parts.append(_rows(cg, reached & (c["resolved"] == True), reached, "resolution"))  # noqa: E712
    sat = c["satisfaction"].isin(rule.satisfied).astype(float) + rule.partly_weight * c[
        "satisfaction"
    ].isin(rule.partly)
    parts.append(_rows(cg, sat.where(reached, 0.0), reached, "satisfaction"))
    parts.append(_rows(cg, ~reached, pd.Series(True, index=c.index), "callbacks_unreached",
                       "callbacks that could not reach the citizen ÷ all callbacks; not in the rates"))  # fmt: skip
    # on time: handled in the month (on time or not) + open and overdue at its end
    handled = (t["handled_at"] >= start) & (t["handled_at"] < end)
    # open at the month's end, past its deadline, with a department (dispatched, whenever)
    with_department = t["state"].isin(OPEN_STATES - {"received", "classified"})
    overdue_open = (
        t["handled_at"].isna()
        & (t["due_resolve"] < end_fallen)
        & with_department
        & t["closed_at"].isna()
    )
    on_time = handled & (t["handled_at"] <= t["due_resolve"])
    parts.append(_rows(tg, on_time, handled | overdue_open, "on_time"))
    out = (
        pd.concat([p for p in parts if len(p)], ignore_index=True)
        if any(len(p) for p in parts)
        else pd.DataFrame(columns=list(RATE_COLUMNS))
    )
    out = _complete(out, labels)
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
    # every group, also one with nothing to count yet (its composite: no data, never dropped)
    wide = table.pivot_table(index="group", columns="rate", values="percent", aggfunc="first")
    wide = wide.reindex(sorted(table["group"].astype(str).unique()))
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
