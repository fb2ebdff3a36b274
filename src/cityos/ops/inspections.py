"""House inspections recorded in the field through the service (``/api/v1/housing/…``): each
event checked against the housing-safety register's schema like a filled workbook, stored
with who recorded it, its photos kept without EXIF; a building's history; and the events back
as the ``housing_safety`` register (``cityos register export``)."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Collection, Mapping
from typing import Any

import pandas as pd
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from cityos.errors import InputError, NotFoundError
from cityos.ops.keys import KeyInfo
from cityos.ops.models import Inspection
from cityos.registers.schema import RegisterSchema, load_schema

__all__ = ["attach_photo", "check_event", "events_table", "history", "record"]


@functools.lru_cache(maxsize=1)
def _schema() -> RegisterSchema:
    """The housing-safety schema, read once per process."""
    return load_schema("housing_safety", systems=())


def check_event(
    building_id: str, fields: Mapping[str, Any], buildings: Collection[str]
) -> dict[str, str]:
    """The event's cells, normalised (是/否, numbers, ISO dates), checked as one row of the
    housing-safety register.

    Raises
    ------
    InputError
        An unknown column, a building the bundle does not have, a bad cell — every problem at
        once, each with its fix.
    """
    from cityos.registers.check import check_register

    schema = _schema()
    names = {c.name for c in schema.columns}
    unknown = sorted(set(fields) - names)
    cells = {"building_id": building_id, **{k: "" if v is None else str(v).lower()
             if isinstance(v, bool) else str(v) for k, v in fields.items() if k in names}}  # fmt: skip
    for k, v in list(cells.items()):
        if v in ("true", "false") and schema.column(k).type == "flag":
            cells[k] = "是" if v == "true" else "否"
    raw = pd.DataFrame([list(cells), list(cells.values())])
    checked = check_register(raw, schema, buildings, "inspection")
    problems = [f"{p.column} {p.value!r}: {p.problem}; {p.fix}" for p in checked.errors]
    if unknown:
        problems.insert(0, f"unknown fields {', '.join(unknown)}; use the housing_safety columns")
    if problems:
        raise InputError("; ".join(problems))
    row = checked.table.iloc[0].to_dict()
    return {str(k): str(v) for k, v in row.items() if str(v) != ""}


def record(conn: Connection, event: dict[str, str], key: KeyInfo, now: dt.datetime) -> int:
    """Store a checked event; returns its id."""
    return int(conn.execute(insert(Inspection).values(
        building_id=event["building_id"], inspection_date=event["inspection_date"],
        event=json.dumps(event, ensure_ascii=False), photos="[]", actor=key.name, role=key.role,
        recorded_at=now,
    ).returning(Inspection.id)).scalar_one())  # fmt: skip


def attach_photo(conn: Connection, inspection_id: int, name: str) -> list[str]:
    """Add a stored photo (its media name) to an inspection; returns all its photos.

    Raises
    ------
    NotFoundError
        No such inspection.
    """
    row = conn.execute(select(Inspection.photos).where(Inspection.id == inspection_id)).first()
    if row is None:
        raise NotFoundError(f"no inspection {inspection_id}")
    photos = [*json.loads(row[0]), name]
    conn.execute(
        update(Inspection).where(Inspection.id == inspection_id).values(photos=json.dumps(photos))
    )
    return photos


def _view(r: Any, base: str) -> dict[str, Any]:
    return {"id": r.id, "building_id": r.building_id, "event": json.loads(r.event),
            "photos": [f"{base}/media/{p}" for p in json.loads(r.photos)],
            "recorded_by": r.actor, "role": r.role,
            "recorded_at": r.recorded_at.isoformat(timespec="seconds") + "Z"}  # fmt: skip


def history(conn: Connection, building_id: str, base: str) -> list[dict[str, Any]]:
    """A building's inspections, oldest first (by inspection date, then as recorded)."""
    rows = conn.execute(
        select(Inspection).where(Inspection.building_id == building_id)
        .order_by(Inspection.inspection_date, Inspection.id)
    ).all()  # fmt: skip
    return [_view(r, base) for r in rows]


def events_table(conn: Connection) -> pd.DataFrame:
    """Every stored inspection as rows of the housing-safety register (its columns, in order)."""
    columns = [c.name for c in _schema().columns]
    rows = [json.loads(e) for e in conn.scalars(select(Inspection.event).order_by(Inspection.id))]
    return pd.DataFrame(rows, columns=columns).fillna("")
