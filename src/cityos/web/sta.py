"""OGC SensorThings API (Part 1: Sensing 1.1) under ``/sta/v1.1/``: the service root, every
entity set and path (``Things(1)/Datastreams``), the query options, and writes (POST with deep
insert, PATCH, PUT, DELETE) for keys of role ``sensor`` or ``admin`` — in ``X-API-Key`` or as
the password of HTTP Basic, which is what SensorThings clients send."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityos.errors import ForbiddenError, InputError
from cityos.lifelines.entities import ENTITY_SETS, result_number
from cityos.lifelines.ingest import create_observations, not_stored
from cityos.lifelines.models import StaObservation
from cityos.lifelines.sta import (
    create,
    delete_entity,
    read,
    resolve,
    update_entity,
)
from cityos.ops.keys import KeyInfo, find_key
from cityos.web.deps import Ops, OpsDep

__all__ = ["router", "store_observations"]

router = APIRouter(prefix="/sta/v1.1", tags=["SensorThings"])
WRITERS = ("sensor", "admin")


async def sensor_key(
    ops: OpsDep,
    x_api_key: Annotated[
        str | None, Header(description="An API key of role sensor or admin")
    ] = None,
    authorization: Annotated[
        str | None, Header(description="HTTP Basic: any user, the key as password")
    ] = None,
) -> KeyInfo:
    """The caller's key (``X-API-Key`` or the password of HTTP Basic); 403 unless it is a
    ``sensor`` or ``admin`` key."""
    text = x_api_key
    if text is None and authorization and authorization.lower().startswith("basic "):
        try:
            text = base64.b64decode(authorization[6:]).decode("utf-8").partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            text = None
    with ops.reading() as conn:
        key = find_key(conn, text)
    if key is None or key.role not in WRITERS:
        raise ForbiddenError("SensorThings writes need a key of role sensor or admin "
                             "(X-API-Key, or HTTP Basic with the key as password)")  # fmt: skip
    return key


SensorKey = Annotated[KeyInfo, Depends(sensor_key)]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/sta/v1.1"


@router.get("", summary="Service root: the entity sets")
async def root(request: Request) -> dict[str, Any]:
    base = _base(request)
    return {
        "value": [{"name": n, "url": f"{base}/{n}"} for n in ENTITY_SETS],
        "serverSettings": {"conformance": [
            "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
            "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
            "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data",
            "http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete",
        ]},
    }  # fmt: skip


@router.get("/{path:path}", summary="Entities, an entity, or the entities it links to")
async def get(path: str, request: Request, ops: OpsDep) -> JSONResponse:
    res = resolve(path)
    with ops.reading() as conn:
        out = read(conn, res, dict(request.query_params), _base(request), str(request.url))
    return JSONResponse(out)


async def _body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"the body is not JSON ({exc})") from exc


@router.post(
    "/CreateObservations", status_code=201, summary="Many observations at once (dataArray)"
)
async def create_many(request: Request, ops: OpsDep, key: SensorKey) -> JSONResponse:
    body = await _body(request)
    locate = ops.hotline.city.locate

    def write(s: Session) -> list[str]:
        conn = s.connection()
        paths, fresh = create_observations(conn, body, locate)
        ops.monitor.check(conn, fresh, fresh=fresh)  # the rules see the readings in the same write
        return paths

    base = _base(request)
    return JSONResponse([f"{base}/{p}" for p in await ops.write(write)], status_code=201)


@router.post("/{path:path}", status_code=201, summary="Create an entity (deep insert)")
async def post(path: str, request: Request, ops: OpsDep, key: SensorKey) -> JSONResponse:
    res = resolve(path)
    if res.single:
        raise InputError(
            "POST to an entity set (Things) or a link below one (Things(1)/Datastreams)"
        )
    body = await _body(request)
    locate = ops.hotline.city.locate

    def write(s: Session) -> int:
        conn = s.connection()
        new = create(conn, res.entity, body, locate, res.parent)
        if res.entity.name == "Observations":  # the rules see the reading in the same write
            stream = conn.scalar(
                select(StaObservation.datastream_id).where(StaObservation.id == new)
            )
            ops.monitor.check(conn, [int(stream or 0)])
        return new

    new_id = await ops.write(write)
    base = _base(request)
    location = f"{base}/{res.entity.name}({new_id})"
    with ops.reading() as conn:
        out = read(conn, resolve(f"{res.entity.name}({new_id})"), {}, base, location)
    return JSONResponse(out, status_code=201, headers={"Location": location})


async def _change(path: str, request: Request, ops: Ops) -> Response:
    res = resolve(path)
    body = await _body(request)
    locate = ops.hotline.city.locate

    def write(s: Session) -> None:
        update_entity(s.connection(), res, body, locate)

    await ops.write(write)
    with ops.reading() as conn:
        out = read(conn, res, {}, _base(request), str(request.url))
    return JSONResponse(out)


@router.patch("/{path:path}", summary="Change members of an entity")
async def patch(path: str, request: Request, ops: OpsDep, key: SensorKey) -> Response:
    if "json-patch" in request.headers.get("content-type", ""):
        raise InputError(
            "JSON Patch is not supported; PATCH with a JSON object of the members to change"
        )
    return await _change(path, request, ops)


@router.put("/{path:path}", summary="Change an entity (members given replace those stored)")
async def put(path: str, request: Request, ops: OpsDep, key: SensorKey) -> Response:
    return await _change(path, request, ops)


@router.delete("/{path:path}", status_code=200, summary="Delete an entity and what depends on it")
async def remove(path: str, ops: OpsDep, key: SensorKey) -> Response:
    res = resolve(path)

    def write(s: Session) -> None:
        delete_entity(s.connection(), res)

    await ops.write(write)
    return Response(status_code=200)


async def store_observations(
    ops: Ops, stream: int, items: list[dict[str, Any]], redelivered: bool = False
) -> int:
    """Store the observations of one MQTT message on datastream ``stream`` (all or none) and
    let the rules see them, in one write; returns how many were stored. Of a ``redelivered``
    message (DUP), those already stored are left out."""
    observations = ENTITY_SETS["Observations"]
    locate = ops.hotline.city.locate

    def write(s: Session) -> int:
        conn = s.connection()
        nonlocal items
        if redelivered:
            items = not_stored(conn, stream, items)
            if not items:
                return 0
        for item in items:
            create(conn, observations, item, locate, ("Datastream", stream))
        fresh = {stream: [result_number(i.get("result")) for i in items]}
        ops.monitor.check(conn, [stream], fresh=fresh)
        return len(items)

    return await ops.write(write)
