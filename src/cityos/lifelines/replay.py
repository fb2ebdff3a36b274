"""Replay and backtest: the rules evaluated on stored history (or on a table of readings), so a
city tunes thresholds before it goes live. Pure over frames: readings in, episodes out."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, cast

import pandas as pd
from sqlalchemy import Engine, select

from cityos.errors import InputError
from cityos.lifelines.detect import evaluate_stream
from cityos.lifelines.models import StaDatastream, StaObservation, StaObservedProperty
from cityos.lifelines.rules import Binding, RuleSet, bind

__all__ = [
    "EPISODE_COLUMNS",
    "READING_COLUMNS",
    "count_by_level",
    "read_history",
    "read_readings_file",
    "replay",
]

#: a table of readings: one row per reading
READING_COLUMNS = ("datastream", "property", "unit", "time", "result")
EPISODE_COLUMNS = ("rule", "datastream", "property", "unit", "level", "max_level", "raised_at",
                   "cleared_at", "readings")  # fmt: skip


def read_history(engine: Engine, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    """The stored readings in [start, end) with their datastream's property and unit."""
    stmt = (
        select(StaObservation.datastream_id, StaObservedProperty.name, StaDatastream.unit_of_measurement,
               StaObservation.phenomenon_time, StaObservation.result_number)
        .join(StaDatastream, StaDatastream.id == StaObservation.datastream_id)
        .join(StaObservedProperty, StaObservedProperty.id == StaDatastream.observed_property_id)
        .where(StaObservation.phenomenon_time >= start, StaObservation.phenomenon_time < end)
    )  # fmt: skip
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    frame = pd.DataFrame(rows, columns=["datastream", "property", "uom", "time", "result"])
    frame["unit"] = [str(json.loads(u or "{}").get("symbol", "")) for u in frame.pop("uom")]
    return frame[list(READING_COLUMNS)]


def read_readings_file(path: Path) -> pd.DataFrame:
    """A CSV of readings (columns :data:`READING_COLUMNS`; time ISO 8601 with its offset).

    Raises
    ------
    InputError
        A missing column, a time or a result that does not parse (the lines named).
    """
    try:
        frame = pd.read_csv(
            path, dtype={"datastream": str, "property": str, "unit": str, "time": str}
        )
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: not a readable CSV ({exc})") from exc
    missing = [c for c in READING_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(
            f"{path}: no column {', '.join(missing)}; give {', '.join(READING_COLUMNS)}"
        )
    times = pd.to_datetime(frame["time"], utc=True, errors="coerce", format="ISO8601")
    results = pd.to_numeric(frame["result"], errors="coerce")
    bad = (times.isna() | results.isna()).to_numpy().nonzero()[0]
    if len(bad):
        lines = ", ".join(str(i + 2) for i in bad[:5])
        raise InputError(f"{path}: lines {lines} have a time or a result that does not parse")
    frame["time"] = times.dt.tz_localize(None)
    frame["result"] = results.astype(float)
    return frame[list(READING_COLUMNS)]


def replay(readings: pd.DataFrame, rules: RuleSet) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The episodes the rules raise on the readings (columns :data:`EPISODE_COLUMNS`), and the
    datastreams no rule watches, with the reason."""
    quality = [r for r in rules.rules if not r.hazard]
    streams = readings.drop_duplicates("datastream")[["datastream", "property", "unit"]]
    bindings: dict[Any, Binding] = {
        b.datastream_id: b for b in bind(rules, streams.itertuples(index=False, name=None))
    }
    rows, unwatched = [], []
    ordered = readings.sort_values(["datastream", "time"], kind="stable")
    for key, part in ordered.groupby(["datastream", "property", "unit"], sort=True):
        raw, prop, unit = cast(tuple[Any, str, str], key)
        stream: int | str = raw if isinstance(raw, str) else int(raw)
        b = bindings[raw]
        if b.unwatched:
            unwatched.append(
                {"datastream": stream, "property": prop, "unit": unit, "reason": b.unwatched}
            )
        times = [t.to_pydatetime() for t in pd.to_datetime(part["time"])]
        for e in evaluate_stream(
            stream, prop, unit, times, part["result"].to_numpy(dtype=float), b.rules, quality
        ):
            rows.append({"rule": e.rule, "datastream": stream, "property": prop, "unit": unit,
                         "level": e.last_level, "max_level": e.level, "raised_at": e.start,
                         "cleared_at": e.end,
                         "readings": "; ".join(f"{t.isoformat()} {v:g}" for t, v in e.readings)})  # fmt: skip
    episodes = pd.DataFrame(rows, columns=list(EPISODE_COLUMNS))
    return episodes, pd.DataFrame(unwatched, columns=["datastream", "property", "unit", "reason"])


def count_by_level(episodes: pd.DataFrame) -> dict[str, int]:
    """How many episodes reached each level."""
    return (
        {str(k): int(v) for k, v in episodes["max_level"].value_counts().items()}
        if len(episodes)
        else {}
    )
