"""House inspections in the field (房屋体检, ``/api/v1/housing/…``): record an event (role
``inspector`` or ``admin``), attach its photos (EXIF stripped), read a building's history and
the inspections due or overdue (roles ``inspector``, ``dispatcher``, ``admin``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from cityos.errors import ForbiddenError, InputError
from cityos.ops.inspections import attach_photo, check_event, events_table, history, record
from cityos.ops.keys import KeyInfo
from cityos.web.deps import KeyDep, OpsDep

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/housing", tags=["housing safety"])
WRITERS, READERS = ("inspector", "admin"), ("inspector", "dispatcher", "admin")


def _allow(key: KeyInfo, roles: tuple[str, ...], what: str) -> None:
    if key.role not in roles:
        raise ForbiddenError(
            f"key {key.name!r} ({key.role}) may not {what}; use a key of role {' or '.join(roles)}"
        )


class InspectionBody(BaseModel):
    """One inspection event: the building and the housing-safety columns it records."""

    building_id: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00-\x1f]+$",
        description="The bundle's building id",
    )
    fields: dict[str, str | int | float | bool | None] = Field(
        description="housing_safety columns → values (inspection_kind and inspection_date required)"
    )


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.post("/inspections", status_code=201, summary="Record an inspection event",
             responses={400: {"description": "a bad cell"}, 403: {"description": "wrong role"}})  # fmt: skip
async def create(
    body: InspectionBody, request: Request, ops: OpsDep, key: KeyDep
) -> dict[str, Any]:
    _allow(key, WRITERS, "record inspections")
    event = check_event(body.building_id, body.fields, ops.building_ids)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)

    def write(s: Session) -> int:
        return record(s.connection(), event, key, now)

    new = await ops.write(write)
    return {"id": new, "building_id": body.building_id, "event": event, "photos": []}


@router.post("/inspections/{inspection_id}/photos", status_code=201, summary="Attach a photo",
             responses={400: {"description": "not an image"}, 403: {"description": "wrong role"},
                        404: {"description": "no such inspection"}})  # fmt: skip
async def photo(
    inspection_id: Annotated[int, PathParam(ge=1, le=2**31 - 1)], photo: UploadFile,
    request: Request, ops: OpsDep, key: KeyDep,
) -> dict[str, Any]:  # fmt: skip
    _allow(key, WRITERS, "attach photos")
    data = await photo.read()
    if not data:
        raise InputError("photo: the file is empty")
    name = await run_in_threadpool(ops.hotline.store_photo, data)  # re-encoded: no EXIF

    def write(s: Session) -> list[str]:
        return attach_photo(s.connection(), inspection_id, name)

    photos = await ops.write(write)
    return {"id": inspection_id, "photos": [f"{_base(request)}/media/{p}" for p in photos]}


@router.get("/buildings/{building_id}/inspections", summary="A building's inspections")
async def building_history(
    building_id: Annotated[str, PathParam(max_length=200, pattern=r"^[^\x00-\x1f]+$")],
    request: Request,
    ops: OpsDep,
    key: KeyDep,
) -> list[dict[str, Any]]:
    _allow(key, READERS, "read inspections")
    with ops.reading() as conn:
        return history(conn, building_id, _base(request))


@router.get("/due", summary="Inspections due, overdue first")
async def due(
    ops: OpsDep, key: KeyDep,
    as_of: Annotated[dt.date | None, Query(description="The day to judge by (default today)")] = None,
    overdue: Annotated[bool, Query(description="Only the overdue ones")] = False,
) -> list[dict[str, Any]]:  # fmt: skip
    from cityos.registers.housing import load_inspection_rules, next_due

    _allow(key, READERS, "read inspections")
    with ops.reading() as conn:
        events = events_table(conn)
    if ops.housing_safety is not None:  # the bundle's register, then what the field recorded
        events = pd.concat([ops.housing_safety.astype(str), events], ignore_index=True)
    if events.empty:
        return []
    day = as_of or dt.datetime.now(dt.UTC).date()
    table = next_due(events, load_inspection_rules(), day)
    if overdue:
        table = table[table["overdue"]]
    table = table.sort_values(["overdue", "days_overdue"], ascending=False, kind="stable")
    out = []
    for r in table.to_dict("records"):
        grade = r["appraisal_grade"]
        out.append({"building_id": str(r["building_id"]),
                    "appraisal_grade": grade if isinstance(grade, str) else None, "rule": str(r["rule"]),
                    "last_periodic": None if r["last_periodic"] is None else str(r["last_periodic"]),
                    "next_due": None if r["next_due"] is None else str(r["next_due"]),
                    "overdue": bool(r["overdue"]), "days_overdue": int(r["days_overdue"])})  # fmt: skip
    return out
