"""Each datastream's latest reading and the start of its trailing run of equal values, kept on
the datastream as readings are stored (``last_phenomenon_time``, ``last_result_number``,
``flat_since``): what the silent-sensor sweep and the flat-line rule read instead of the whole
history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.engine import Connection

from cityos.lifelines.models import StaDatastream, StaObservation

__all__ = ["note_readings", "refresh_latest"]

Reading = tuple[int, dt.datetime, float | None]  # datastream, phenomenon time, number


def _same(a: float | None, b: float | None) -> bool:
    """Equal numbers continue a run; a result that is not a number breaks it."""
    return a is not None and b is not None and a == b


def note_readings(conn: Connection, readings: Sequence[Reading]) -> None:
    """Move each datastream's latest reading and run start past the readings just stored.

    A reading newer than the latest extends the run when its number equals the latest's and
    starts a new one otherwise. A reading at or before the latest (late, or out of order) is
    not folded in: its datastream is recomputed from the stored readings
    (:func:`refresh_latest`).
    """
    if not readings:
        return
    by: dict[int, list[tuple[dt.datetime, float | None]]] = {}
    for sid, when, value in readings:
        by.setdefault(sid, []).append((when, value))
    state = {
        int(r.id): (r.last_phenomenon_time, r.last_result_number, r.flat_since)
        for r in conn.execute(
            select(StaDatastream.id, StaDatastream.last_phenomenon_time,
                   StaDatastream.last_result_number, StaDatastream.flat_since)
            .where(StaDatastream.id.in_(sorted(by)))
        )
    }  # fmt: skip
    rows, late = [], []
    for sid, items in by.items():
        last, value, since = state.get(sid, (None, None, None))
        items.sort(key=lambda i: i[0])
        if last is not None and items[0][0] <= last:
            late.append(sid)
            continue
        for when, number in items:
            if last is None or since is None or not _same(number, value):
                since = when
            last, value = when, number
        rows.append({"sid": sid, "t": last, "v": value, "f": since})
    if rows:
        conn.execute(
            update(StaDatastream).where(StaDatastream.id == bindparam("sid"))
            .values(last_phenomenon_time=bindparam("t"), last_result_number=bindparam("v"),
                    flat_since=bindparam("f")),
            rows,
        )  # fmt: skip
    refresh_latest(conn, late)


def refresh_latest(conn: Connection, datastream_ids: Iterable[int]) -> None:
    """Recompute the latest reading and the run start of datastreams from their stored
    readings (after a late reading, an edit or a deletion)."""
    obs = StaObservation
    for sid in sorted(set(datastream_ids)):
        last = conn.execute(
            select(obs.phenomenon_time, obs.result_number).where(obs.datastream_id == sid)
            .order_by(obs.phenomenon_time.desc(), obs.id.desc()).limit(1)
        ).first()  # fmt: skip
        since = None
        if last is not None and last[1] is None:
            since = last[0]
        elif last is not None:
            before = conn.scalar(
                select(func.max(obs.phenomenon_time)).where(
                    obs.datastream_id == sid, obs.phenomenon_time < last[0],
                    or_(obs.result_number.is_(None), obs.result_number != last[1]))
            )  # fmt: skip
            first = select(func.min(obs.phenomenon_time)).where(obs.datastream_id == sid)
            if before is not None:
                first = first.where(obs.phenomenon_time > before)
            since = conn.scalar(first)
        conn.execute(
            update(StaDatastream).where(StaDatastream.id == sid).values(
                last_phenomenon_time=last[0] if last else None,
                last_result_number=last[1] if last else None, flat_since=since)
        )  # fmt: skip
