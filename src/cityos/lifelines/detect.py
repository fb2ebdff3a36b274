"""The rules evaluated on one datastream's readings: pure functions from times and values to
episodes (an alert's life: raised, its levels, cleared or still open), with the readings that
raised each.

Data quality comes first: readings outside the sensor's range are flagged and not used by
hazard rules, and while the readings are flat (the same value for a day) no hazard is raised.
Threshold and rate-of-change rules share one state machine: a level is raised once it has held
for the rule's minimum duration, escalates at once, falls back only below (threshold −
hysteresis), and clears after ``clear_readings`` readings below every level.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from cityos.lifelines.rules import LEVEL_RANK, Rule

__all__ = ["Episode", "evaluate_stream", "hazard_signal", "run_levels"]

#: readings kept with an episode (the ones that raised it)
KEEP_READINGS = 10


@dataclass
class Episode:
    """One alert's life on one datastream: when raised, its highest and its last level, when
    cleared (None: still open at the last reading), and the readings that raised it."""

    rule: str
    datastream_id: int | str  # an id in the store; a name in a table of readings
    start: dt.datetime
    level: str
    last_level: str
    end: dt.datetime | None = None
    readings: list[tuple[dt.datetime, float]] = field(default_factory=list)


def _level(rule: Rule, x: float, slack: float = 0.0) -> str | None:
    """The highest level whose threshold ``x`` reaches (``slack``: the hysteresis in favour of
    the level already held)."""
    best: str | None = None
    for level, thr in rule.levels.items():
        below = rule.direction == "below" or (rule.kind == "rate_of_change" and thr < 0)
        hit = x <= thr + slack if below else x >= thr - slack
        if hit and (best is None or LEVEL_RANK[level] > LEVEL_RANK[best]):
            best = level
    return best


def hazard_signal(rule: Rule, times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """What a rule compares with its levels at each reading: the value (threshold), or its
    change since the reading ``window_s`` before (rate of change; NaN before the window is
    filled), in percent of the earlier value when the rule says so."""
    if rule.kind != "rate_of_change":
        return values.astype(float)
    t = times.astype("datetime64[ms]").astype(np.int64) / 1000.0
    j = np.searchsorted(t, t - rule.window_s, side="right") - 1
    out = np.full(len(values), np.nan)
    ok = j >= 0
    before = values[j[ok]].astype(float)
    change = values[ok].astype(float) - before
    if rule.percent:
        with np.errstate(divide="ignore", invalid="ignore"):
            change = np.where(before != 0, 100.0 * change / np.abs(before), np.nan)
    out[ok] = change
    return out


def run_levels(rule: Rule, stream: int | str, times: Sequence[dt.datetime], signal: np.ndarray,
               values: np.ndarray) -> list[Episode]:  # fmt: skip
    """The episodes of a rule over a signal (NaN: a reading not used)."""
    out: list[Episode] = []
    open_: Episode | None = None
    since: int | None = None  # first reading of the run at a level, before it is raised
    clear = 0
    for i, (t, x) in enumerate(zip(times, signal, strict=True)):
        if np.isnan(x):
            continue
        if open_ is None:
            level = _level(rule, float(x))
            if level is None:
                since = None
                continue
            since = i if since is None else since
            if (t - times[since]).total_seconds() >= rule.min_duration_s:
                open_ = Episode(rule.id, stream, t, level, level,
                                readings=[(times[k], float(values[k])) for k in range(since, i + 1)][-KEEP_READINGS:])  # fmt: skip
                out.append(open_)
                clear, since = 0, None
            continue
        now_level = _level(rule, float(x))
        held = _level(rule, float(x), slack=rule.hysteresis)
        if now_level is not None and LEVEL_RANK[now_level] > LEVEL_RANK[open_.last_level]:
            open_.last_level = now_level  # escalates at once
            if LEVEL_RANK[now_level] > LEVEL_RANK[open_.level]:
                open_.level = now_level
                open_.readings = [*open_.readings, (t, float(values[i]))][-KEEP_READINGS:]
        if held is None:
            clear += 1
            if clear >= rule.clear_readings:
                open_.end, open_, clear = t, None, 0
            continue
        clear = 0
        if LEVEL_RANK[held] < LEVEL_RANK[open_.last_level]:
            open_.last_level = held  # falls back only past the hysteresis
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each run of True."""
    edges = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1, strict=True))


def evaluate_stream(
    stream: int | str, prop: str, unit: str, times: Sequence[dt.datetime], values: np.ndarray,
    hazards: Sequence[Rule], quality: Sequence[Rule], *, interval_s: float | None = None,
    now: dt.datetime | None = None,
) -> list[Episode]:  # fmt: skip
    """Every episode on one datastream's readings (ascending times): data quality, staleness
    at ``now``, then the hazard rules on the readings quality leaves."""
    values = np.asarray(values, dtype=float)
    usable = np.ones(len(values), dtype=bool)
    out: list[Episode] = []
    for rule in quality:
        if rule.kind == "out_of_range" and f"{prop} {unit}" in rule.ranges:
            low, high = rule.ranges[f"{prop} {unit}"]
            bad = (values < low) | (values > high)
            usable &= ~bad
            for a, b in _runs(bad):
                end = times[b + 1] if b + 1 < len(times) else None
                out.append(Episode(rule.id, stream, times[a], rule.level, rule.level, end,
                                   [(times[k], float(values[k])) for k in range(a, b + 1)][:KEEP_READINGS]))  # fmt: skip
        if rule.kind == "flatline" and len(values) > 1:
            same = np.r_[False, values[1:] == values[:-1]]
            for a, b in _runs(same):
                first = a - 1  # the run starts at the reading before the first repeat
                span = (times[b] - times[first]).total_seconds()
                if span < rule.duration_s:
                    continue
                raised = next(k for k in range(first, b + 1)
                              if (times[k] - times[first]).total_seconds() >= rule.duration_s)  # fmt: skip
                end = times[b + 1] if b + 1 < len(times) else None
                out.append(Episode(rule.id, stream, times[raised], rule.level, rule.level, end,
                                   [(times[first], float(values[first])), (times[b], float(values[b]))]))  # fmt: skip
                usable[first : b + 1] = False
        if rule.kind == "stale" and interval_s and now is not None and len(times):
            limit = dt.timedelta(seconds=rule.intervals * interval_s)
            if now - times[-1] > limit:
                out.append(Episode(rule.id, stream, times[-1] + limit, rule.level, rule.level,
                                   readings=[(times[-1], float(values[-1]))]))  # fmt: skip
    arr = np.array(times, dtype="datetime64[us]")
    for rule in hazards:
        signal = hazard_signal(rule, arr, np.where(usable, values, np.nan))
        out.extend(run_levels(rule, stream, times, signal, values))
    return out
