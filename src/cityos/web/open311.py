"""Open311 GeoReport v2 under ``/open311/v2/``: discovery, services, service definitions, POST and
GET requests, single requests and tokens, in XML and JSON, with ``extensions=true``
(``extended_attributes`` and ``notes``) and the paging and ``updated_after``/``updated_before``
extensions (../shared/OPEN311.md)."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import ColumnElement, Connection, Executable, bindparam, select
from sqlalchemy.orm import Session

from cityos.errors import ForbiddenError, InputError, NotFoundError
from cityos.ops.catalogue import Service
from cityos.ops.hotline import MAX_ID, Hotline, Intake, now
from cityos.ops.keys import find_key
from cityos.ops.models import Ticket, Transition
from cityos.ops.workflow import CLOSED_STATES, detailed_status
from cityos.web.deps import OpsDep
from cityos.web.formats import open311_response, parse_datetime, stamp, without_nulls

__all__ = ["MAX_PAGE_SIZE", "PUBLIC_COLUMNS", "public_request", "router"]

router = APIRouter(prefix="/open311/v2", tags=["Open311 GeoReport v2"])
Fmt = Literal["json", "xml"]
#: the default window of GET requests (Open311: the last 90 days)
WINDOW = dt.timedelta(days=90)
MAX_PAGE_SIZE = 1000


def _service(s: Service) -> dict[str, Any]:
    return {
        "service_code": s.service_code, "service_name": s.name_zh,
        "description": f"{s.name_en} ({s.category})", "metadata": bool(s.attributes),
        "type": "realtime", "keywords": ",".join(s.keywords), "group": s.group,
    }  # fmt: skip


@router.get("/discovery.{fmt}", summary="Service discovery")
async def discovery(fmt: Fmt, request: Request) -> Response:
    base = str(request.base_url).rstrip("/") + "/open311/v2"
    endpoint = {
        "specification": "http://wiki.open311.org/GeoReport_v2", "url": base,
        "changeset": "2026-12-01T00:00:00Z", "formats": ["text/xml", "application/json"],
    }  # fmt: skip
    payload = {
        "changeset": "2026-12-01T00:00:00Z", "contact": "the city's 12345 hotline",
        "key_service": "ask the hotline's administrator for an intake key (cityos keys create)",
        "endpoints": [{**endpoint, "type": "production"}, {**endpoint, "type": "test"}],
    }  # fmt: skip
    return open311_response(fmt, "discovery", None, payload, bare_xml=True)


@router.get("/services.{fmt}", summary="Service list")
async def services(fmt: Fmt, ops: OpsDep) -> Response:
    return open311_response(
        fmt, "services", "service", [_service(s) for s in ops.hotline.services.services.values()]
    )


@router.get("/services/{service_code}.{fmt}", summary="Service definition")
async def service_definition(service_code: str, fmt: Fmt, ops: OpsDep) -> Response:
    s = ops.hotline.services.services.get(service_code)
    if s is None:
        raise NotFoundError(f"service_code {service_code!r} is not a service of this city")
    attributes = [
        {"variable": True, "code": a.code, "datatype": a.datatype, "required": a.required,
         "datatype_description": a.datatype_description or None, "order": a.order,
         "description": a.description,
         "values": [{"key": k, "name": n} for k, n in a.values] or None}
        for a in s.attributes
    ]  # fmt: skip
    payload = {"service_code": s.service_code, "attributes": attributes}
    return open311_response(fmt, "service_definition", None, payload)


#: what the public view of a ticket reads (a row of these or a :class:`Ticket`)
PUBLIC_COLUMNS = (
    Ticket.id, Ticket.service_code, Ticket.state, Ticket.status_notes, Ticket.description,
    Ticket.department, Ticket.requested_at, Ticket.updated_at, Ticket.due_resolve, Ticket.address,
    Ticket.address_id, Ticket.lat, Ticket.lon, Ticket.media, Ticket.media_url, Ticket.closed_at,
    Ticket.channel, Ticket.likely_duplicate_of, Ticket.duplicate_of,
)  # fmt: skip

_ONE = select(*PUBLIC_COLUMNS).where(Ticket.id == bindparam("id"))
_NOTES = (
    select(Transition.ticket_id, Transition.at, Transition.action, Transition.to_state,
           Transition.reason)
    .where(Transition.ticket_id.in_(bindparam("ids", expanding=True)))
    .order_by(Transition.id)
)  # fmt: skip


def public_request(
    t: Any, hotline: Hotline, *, notes: Sequence[Any] | None, base: str
) -> dict[str, Any]:
    """The public view of a ticket (no reporter data, ever), absent fields left out; with
    ``notes`` (its transitions, oldest first) the ``extensions=true`` view."""
    service = hotline.services.services.get(t.service_code)
    closed = t.state in CLOSED_STATES and (t.state != "merged_duplicate" or t.closed_at is not None)
    media = f"{base}/media/{t.media}" if t.media else t.media_url
    out: dict[str, Any] = {
        "service_request_id": str(t.id), "status": "closed" if closed else "open",
        "status_notes": t.status_notes, "service_name": service.name_zh if service else t.service_code,
        "service_code": t.service_code, "description": t.description,
        "agency_responsible": t.department, "requested_datetime": stamp(t.requested_at),
        "updated_datetime": stamp(t.updated_at), "expected_datetime": stamp(t.due_resolve),
        "address": t.address, "address_id": t.address_id, "lat": t.lat, "long": t.lon,
        "media_url": media,
    }  # fmt: skip
    if notes is not None:
        out["extended_attributes"] = without_nulls({
            "detailed_status": detailed_status(t.state), "state": t.state, "channel": t.channel,
            "duplicate": str(t.likely_duplicate_of) if t.likely_duplicate_of else None,
            "parent_service_request_id": str(t.duplicate_of) if t.duplicate_of else None,
        })  # fmt: skip
        out["notes"] = [
            {"datetime": stamp(tr.at), "type": "status",
             "description": f"{tr.action}: {tr.to_state}" + (f" ({tr.reason})" if tr.reason else "")}
            for tr in notes
        ]  # fmt: skip
    return {k: v for k, v in out.items() if v is not None}


def _notes(conn: Connection, ids: list[int]) -> dict[int, list[Any]]:
    """The transitions of the tickets ``ids``, oldest first, in one query."""
    by: dict[int, list[Any]] = {i: [] for i in ids}
    for r in conn.execute(_NOTES, {"ids": ids}):
        by[r.ticket_id].append(r)
    return by


def _one(params: Any, name: str) -> str | None:
    value = params.get(name)
    return value if value not in (None, "") else None


def _int(params: Any, name: str, default: int, low: int, high: int) -> int:
    text = _one(params, name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError as exc:
        raise InputError(f"{name} {text!r} is not a whole number") from exc
    if not low <= value <= high:
        raise InputError(f"{name} {value} must lie in {low}..{high}")
    return value


def _when(params: Any, name: str) -> dt.datetime | None:
    text = _one(params, name)
    if text is None:
        return None
    try:
        return parse_datetime(text, name)
    except ValueError as exc:
        raise InputError(str(exc)) from exc


@functools.lru_cache(maxsize=64)
def _list_statement(filters: frozenset[str], status: str) -> Executable:
    """The page query for a set of filters (built once per set: building a statement costs
    more than running it); every value a bound parameter."""
    stmt = select(*PUBLIC_COLUMNS)
    where: dict[str, ColumnElement[bool]] = {
        "ids": Ticket.id.in_(bindparam("ids", expanding=True)),
        "codes": Ticket.service_code.in_(bindparam("codes", expanding=True)),
        "start": Ticket.requested_at >= bindparam("start"),
        "end": Ticket.requested_at <= bindparam("end"),
        "after": Ticket.updated_at >= bindparam("after"),
        "before": Ticket.updated_at <= bindparam("before"),
    }
    for name in sorted(filters & where.keys()):
        stmt = stmt.where(where[name])
    closed = sorted(CLOSED_STATES - {"merged_duplicate"})
    if status == "open":
        stmt = stmt.where(Ticket.state.not_in(closed))
    elif status == "closed":
        stmt = stmt.where(Ticket.state.in_(closed))
    return stmt.order_by(Ticket.id).offset(bindparam("offset")).limit(bindparam("limit"))


@router.get("/requests.{fmt}", summary="Service requests")
async def requests_list(fmt: Fmt, request: Request, ops: OpsDep) -> Response:
    q = request.query_params
    extensions = (_one(q, "extensions") or "").lower() == "true"
    page = _int(q, "page", 1, 1, 10**9)
    size = _int(q, "page_size", MAX_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    params: dict[str, Any] = {"offset": (page - 1) * size, "limit": size}
    ids = _one(q, "service_request_id")
    if ids:
        try:
            wanted = [i for i in (int(x) for x in ids.split(",") if x.strip()) if 0 < i < MAX_ID]
        except ValueError as exc:
            raise InputError(
                f"service_request_id {ids!r}: give request ids separated by commas"
            ) from exc
        params["ids"] = wanted
        status_kind = ""
    else:
        codes = _one(q, "service_code")
        if codes:
            params["codes"] = [c.strip() for c in codes.split(",")]
        start, end = _when(q, "start_date"), _when(q, "end_date")
        if start and end and end - start > WINDOW:
            raise InputError("start_date to end_date may span at most 90 days")
        after, before = _when(q, "updated_after"), _when(q, "updated_before")
        if start is None and end is None and after is None and before is None:
            start = now() - WINDOW
        for name, value in (("start", start), ("end", end), ("after", after), ("before", before)):
            if value is not None:
                params[name] = value
        status = _one(q, "status")
        wanted_status = {x.strip().lower() for x in status.split(",")} if status else set()
        if not wanted_status <= {"open", "closed"}:
            raise InputError(f"status {status!r}: use open or closed")
        status_kind = wanted_status.pop() if len(wanted_status) == 1 else ""
    stmt = _list_statement(frozenset(params), status_kind)
    base = str(request.base_url).rstrip("/")
    with ops.reading() as conn:
        tickets = conn.execute(stmt, params).all()
        # the notes: every page's transitions in one query, not one per ticket
        notes = _notes(conn, [t.id for t in tickets]) if extensions else {}
    rows = [
        public_request(t, ops.hotline, notes=notes.get(t.id) if extensions else None, base=base)
        for t in tickets
    ]
    return open311_response(fmt, "service_requests", "request", rows, clean=False)


@router.get("/requests/{service_request_id}.{fmt}", summary="Service request")
async def request_one(service_request_id: str, fmt: Fmt, request: Request, ops: OpsDep) -> Response:
    extensions = (request.query_params.get("extensions") or "").lower() == "true"
    if not service_request_id.isdigit():
        raise NotFoundError(f"no request {service_request_id}")
    rid = int(service_request_id)
    if not 1 <= rid < MAX_ID:
        raise NotFoundError(f"no request {service_request_id}")
    with ops.reading() as conn:
        t = conn.execute(_ONE, {"id": rid}).first()
        if t is None:
            raise NotFoundError(f"no request {service_request_id}")
        notes = _notes(conn, [rid])[rid] if extensions else None
    row = public_request(t, ops.hotline, notes=notes, base=str(request.base_url).rstrip("/"))
    return open311_response(fmt, "service_requests", "request", [row], clean=False)


@router.get("/tokens/{token}.{fmt}", summary="Request id from a token")
async def token(token: str, fmt: Fmt, ops: OpsDep) -> Response:
    if not token.startswith("tok-") or not token[4:].isdigit():
        raise NotFoundError(f"no token {token}")
    with ops.session() as s:
        t = ops.hotline.get(s, int(token[4:]))
        row = {"service_request_id": str(t.id), "token": token}
    return open311_response(fmt, "service_requests", "request", [row])


def _number(form: Any, name: str) -> float | None:
    text = _one(form, name)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError as exc:
        raise InputError(f"{name} {text!r} is not a number") from exc


@router.post("/requests.{fmt}", summary="Create a service request (api_key required)")
async def create_request(fmt: Fmt, request: Request, ops: OpsDep) -> Response:
    form = await request.form()
    key_text = _one(form, "api_key") or _one(request.query_params, "api_key")
    attributes: dict[str, Any] = {}
    for name in form:
        if name.startswith("attribute[") and name.endswith("]"):
            inner = name[len("attribute[") : -1]
            if inner.endswith("]["):  # attribute[CODE][]: a multivaluelist
                attributes[inner[:-2]] = [str(v) for v in form.getlist(name)]
            else:
                attributes[inner] = str(form.get(name))
    photo = form.get("media")
    data = await photo.read() if photo is not None and not isinstance(photo, str) else None
    with ops.reading() as conn:
        key = find_key(conn, key_text)
    if key is None:
        raise ForbiddenError("a valid api_key is required to create requests")
    intake = Intake(
        service_code=_one(form, "service_code") or "", lat=_number(form, "lat"),
        lon=_number(form, "long"), address=_one(form, "address_string"),
        address_id=_one(form, "address_id"), description=_one(form, "description"),
        attributes=attributes, media_url=_one(form, "media_url"), photo=data or None,
        reporter={k: str(form.get(k)) for k in ("first_name", "last_name", "email", "phone",
                                                 "device_id", "account_id") if _one(form, k)},
    )  # fmt: skip
    # a photo is decoded and re-encoded: off the event loop
    prepare = ops.hotline.prepare
    prepared = await run_in_threadpool(prepare, intake, key) if data else prepare(intake, key)

    def write(s: Session) -> tuple[Ticket, str | None]:
        ticket, notice = ops.hotline.store(s, prepared)
        # a citizen's report near an open lifeline alert corroborates it (same write)
        ops.monitor.corroborate_ticket(s.connection(), ticket.id, ticket.service_code, ticket.lon,
                                       ticket.lat, ticket.requested_at)  # fmt: skip
        return ticket, notice

    ticket, notice = await ops.write(write)
    row = {"service_request_id": str(ticket.id), "service_notice": notice,
           "account_id": intake.reporter.get("account_id")}  # fmt: skip
    return open311_response(fmt, "service_requests", "request", [row])
