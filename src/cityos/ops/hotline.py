"""The citizen hotline (12345 接诉即办): intake of a request and every workflow action on it.

Intake checks the request as Open311 states (service, location, description length,
attributes), places it in the city's units, routes it (``routing.toml``), sets its deadlines
(``deadlines.toml``), flags a likely duplicate (same service, within the service's radius and
window of an open ticket) and writes ticket, reporter (kept apart) and audit rows in one
transaction: what a client got an id for is committed. Actions follow the transition table of
:mod:`cityos.ops.workflow`, each one an audit row.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Executable, bindparam, insert, select, union_all
from sqlalchemy.orm import Session

from cityos.errors import ConflictError, ForbiddenError, InputError, NotFoundError
from cityos.ops.catalogue import Service, ServiceCatalogue
from cityos.ops.city import CityModel
from cityos.ops.deadlines import Deadlines, parse_datetime
from cityos.ops.keys import KeyInfo
from cityos.ops.models import Callback, Reporter, Ticket, Transition
from cityos.ops.routing import Routing
from cityos.ops.workflow import ACTIONS, CLOSED_STATES, OPEN_STATES, allowed_actions, may

__all__ = ["MAX_DESCRIPTION", "MAX_ID", "Hotline", "Intake", "Prepared", "load_hotline", "now"]

#: Open311: description up to 4,000 characters
MAX_DESCRIPTION = 4000
#: open tickets looked at for a likely duplicate in each square around a new one (the newest)
DUPLICATE_CANDIDATES = 50
#: ticket ids are 32-bit integers (PostgreSQL INTEGER)
MAX_ID = 2**31
_REPORTER_FIELDS = ("first_name", "last_name", "email", "phone", "device_id", "account_id")


#: intake's inserts (Core, built once)
_INSERT_TICKET = insert(Ticket).returning(Ticket.id)
_INSERT_TRANSITION = insert(Transition)
_INSERT_REPORTER = insert(Reporter)


def _candidates() -> Executable:
    """The duplicate lookup's candidates: per square of the 3 × 3 around a new ticket, the
    newest :data:`DUPLICATE_CANDIDATES` open ones of its service in the window (each an index
    range read backwards, so a hotspot costs what a quiet street does). Built once."""
    parts = []
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            parts.append(
                select(Ticket.id, Ticket.lat, Ticket.lon)
                .where(
                    Ticket.service_code == bindparam("service"),
                    Ticket.near_x == bindparam("x") + dx,
                    Ticket.near_y == bindparam("y") + dy,
                    Ticket.state.in_(sorted(OPEN_STATES)),
                    Ticket.requested_at >= bindparam("since"),
                )
                .order_by(Ticket.id.desc())
                .limit(DUPLICATE_CANDIDATES)
                .subquery()
            )
    return union_all(*(select(*p.c) for p in parts))


_CANDIDATES = _candidates()


def now() -> dt.datetime:
    """UTC now, naive (as stored)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass
class Intake:
    """A request as received: Open311 fields, attribute values and an optional photo."""

    service_code: str
    lat: float | None = None
    lon: float | None = None
    address: str | None = None
    address_id: str | None = None
    description: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    reporter: dict[str, str] = field(default_factory=dict)
    media_url: str | None = None
    photo: bytes | None = None
    channel: str = "open311"


@dataclass(frozen=True)
class Prepared:
    """A checked, placed, routed and timed request, ready to be written."""

    service: Service
    request: Intake
    values: dict[str, Any]
    steps: list[dict[str, Any]]
    reporter: dict[str, str]
    outside: bool


@dataclass
class Hotline:
    """The hotline's settings: catalogue, routing, deadlines, the city model and the policy for
    requests outside the city (``flag``: accept, route to the fallback and flag; ``refuse``)."""

    services: ServiceCatalogue
    routing: Routing
    deadlines: Deadlines
    city: CityModel
    media_dir: Path
    outside: str = "flag"
    auto_dispatch: bool = True

    # ---- intake ---------------------------------------------------------------------------
    def check(self, req: Intake) -> Service:
        """The request's service, or an :class:`InputError` naming what is wrong (every
        problem at once)."""
        problems = []
        service = self.services.services.get(req.service_code)
        if service is None:
            problems.append(f"service_code {req.service_code!r} is not a service of this city")
        if req.lat is None and req.lon is None and not req.address and not req.address_id:
            problems.append("a location is required: lat and long, address_string or address_id")
        if (req.lat is None) != (req.lon is None):
            problems.append("lat and long go together")
        if req.lat is not None and not (math.isfinite(req.lat) and -90 <= req.lat <= 90):
            problems.append(f"lat {req.lat} is outside -90..90")
        if req.lon is not None and not (math.isfinite(req.lon) and -180 <= req.lon <= 180):
            problems.append(f"long {req.lon} is outside -180..180")
        if req.description and len(req.description) > MAX_DESCRIPTION:
            problems.append(
                f"description has {len(req.description)} characters; at most {MAX_DESCRIPTION}"
            )
        if service is not None:
            for a in service.attributes:
                value = req.attributes.get(a.code)
                if a.required and value in (None, "", []):
                    problems.append(f"attribute[{a.code}] is required")
                keys = {k for k, _ in a.values}
                given = (
                    value if isinstance(value, list) else [value] if value not in (None, "") else []
                )
                if keys and any(str(v) not in keys for v in given):
                    problems.append(f"attribute[{a.code}] must be one of {', '.join(sorted(keys))}")
        if problems:
            raise InputError("; ".join(problems))
        assert service is not None
        return service

    def create(self, session: Session, req: Intake, key: KeyInfo) -> tuple[Ticket, str | None]:
        """Check, place, route, time and store a request; returns the ticket and the service
        notice (a likely duplicate, a location outside the city)."""
        return self.store(session, self.prepare(req, key))

    def prepare(self, req: Intake, key: KeyInfo, *, at: dt.datetime | None = None) -> Prepared:
        """Everything intake decides without the store: the key's right, the request's checks,
        its units, route and deadlines, the photo without its metadata (the service does this
        before it queues the write, so the store's writer only writes). ``at``: when it came
        (default now; ``cityos simulate`` writes a past month)."""
        if key.role not in ("intake", "dispatcher", "admin"):
            raise ForbiddenError(
                f"key {key.name!r} ({key.role}) may not create requests; use an intake key"
            )
        service = self.check(req)
        units: Mapping[str, str | None] = (
            self.city.locate(req.lon, req.lat)
            if req.lat is not None and req.lon is not None
            else {}
        )
        outside = req.lat is not None and units.get("city") is None
        if outside and self.outside == "refuse":
            raise InputError(
                f"lat {req.lat}, long {req.lon} lies outside the city; this service refuses such requests"
            )
        point = (req.lon, req.lat) if req.lat is not None and req.lon is not None else None
        route = self.routing.route(service, units, point)
        t = at or now()
        due = self.deadlines.due(service.urgency, t)
        dispatch = self.auto_dispatch and service.request_type != "inquiry"
        values: dict[str, Any] = dict(
            service_code=service.service_code, state="dispatched" if dispatch else "received",
            description=req.description, lat=req.lat, lon=req.lon, address=req.address,
            address_id=req.address_id, community_id=units.get("community"),
            subdistrict_id=units.get("subdistrict"), city_id=units.get("city"),
            outside_city=outside, department=route.department, routing_rule=route.rule,
            urgency=service.urgency, channel=req.channel,
            attributes=json.dumps(req.attributes, ensure_ascii=False), media_url=req.media_url,
            media=self.store_photo(req.photo) if req.photo is not None else None,
            requested_at=t, updated_at=t, due_sign=due.sign, due_contact=due.contact,
            due_resolve=due.resolve, dispatched_at=t if dispatch else None,
        )  # fmt: skip
        values["near_x"], values["near_y"] = self.near_square(service, req.lon, req.lat)
        audit = dict(actor=key.name, role=key.role, at=t, attachment=None,
                     department=route.department)  # fmt: skip
        steps = [dict(audit, action="receive", from_state=None, to_state="received",
                      reason=f"channel {req.channel}")]  # fmt: skip
        if dispatch:
            steps.append(dict(audit, action="dispatch", from_state="received", to_state="dispatched",
                              reason=f"routed by rule {route.rule}" + (" (fallback)" if route.fallback else "")))  # fmt: skip
        who = {k: v for k, v in req.reporter.items() if k in _REPORTER_FIELDS and v}
        return Prepared(service, req, values, steps, who, outside)

    def store(self, session: Session, p: Prepared) -> tuple[Ticket, str | None]:
        """Write a prepared request: flag a likely duplicate (inside the write, so two at once
        see each other), insert ticket, reporter and audit rows (Core: intake is the service's
        busiest write). The caller commits."""
        values = dict(p.values)
        values["likely_duplicate_of"] = self._likely_duplicate(session, p.service, values)
        notices = []
        if values["likely_duplicate_of"] is not None:
            notices.append(
                f"possible duplicate of request {values['likely_duplicate_of']} (same service within {p.service.duplicate_radius_m:g} m); a dispatcher may merge them"
            )
        if p.outside:
            notices.append(
                "the location lies outside the city's units; routed to the fallback department"
            )
        conn = session.connection()
        tid = conn.execute(_INSERT_TICKET, values).scalar_one()
        if p.reporter:
            conn.execute(_INSERT_REPORTER, {"ticket_id": tid, **p.reporter})
        conn.execute(_INSERT_TRANSITION, [dict(step, ticket_id=tid) for step in p.steps])
        return Ticket(id=tid, **values), "; ".join(notices) or None

    def _likely_duplicate(
        self, session: Session, service: Service, values: Mapping[str, Any]
    ) -> int | None:
        """The id of the nearest open ticket of the same service within its radius and window:
        among the newest :data:`DUPLICATE_CANDIDATES` of each of the 3 × 3 squares around it
        (any point within the radius lies in one of them; a hotspot with thousands of open
        tickets must not slow every new one down)."""
        if values["near_x"] is None or service.duplicate_radius_m <= 0:
            return None
        since = values["requested_at"] - dt.timedelta(hours=service.duplicate_window_h)
        rows = session.connection().execute(
            _CANDIDATES, {"service": service.service_code, "x": values["near_x"],
                          "y": values["near_y"], "since": since},
        ).all()  # fmt: skip
        if not rows:
            return None
        x, y = self.city.metres(values["lon"], values["lat"])
        ids = np.array([r[0] for r in rows])
        bx, by = self.city.metres_many(
            np.array([r[2] for r in rows], dtype=float), np.array([r[1] for r in rows], dtype=float)
        )
        d = np.hypot(bx - x, by - y)
        near = d <= service.duplicate_radius_m
        return int(ids[near][np.argmin(d[near])]) if near.any() else None

    def near_square(
        self, service: Service, lon: float | None, lat: float | None
    ) -> tuple[int | None, int | None]:
        """The square of the duplicate lookup a point lies in: side the service's duplicate
        radius, in the city's metres (None without a point or a radius)."""
        if lon is None or lat is None or service.duplicate_radius_m <= 0:
            return None, None
        x, y = self.city.metres(lon, lat)
        side = service.duplicate_radius_m
        return math.floor(x / side), math.floor(y / side)

    def store_photo(self, data: bytes) -> str:
        """Re-encode the photo without its metadata (EXIF carries GPS, device, time)."""
        from PIL import Image, UnidentifiedImageError

        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except (UnidentifiedImageError, OSError) as exc:
            raise InputError("media is not a readable image (JPEG or PNG)") from exc
        fmt = "PNG" if image.format == "PNG" else "JPEG"
        clean = Image.new(image.mode, image.size)
        clean.putdata(list(image.getdata()))
        if fmt == "JPEG" and clean.mode not in ("RGB", "L"):
            clean = clean.convert("RGB")
        self.media_dir.mkdir(parents=True, exist_ok=True)
        name = f"{uuid.uuid4().hex}.{fmt.lower().replace('jpeg', 'jpg')}"
        tmp = self.media_dir / f".{name}.tmp"
        clean.save(tmp, format=fmt)
        tmp.replace(self.media_dir / name)
        return name

    # ---- actions --------------------------------------------------------------------------
    def act(
        self, session: Session, ticket_id: int, action: str, key: KeyInfo,
        params: Mapping[str, Any], *, at: dt.datetime | None = None,
    ) -> Ticket:  # fmt: skip
        """Take ``action`` on a ticket: by the key's role (403 otherwise, before anything about
        the ticket's state is said), allowed from its state (409 with the allowed ones
        otherwise), recorded as an audit row. ``at``: when (default now)."""
        ticket = self.get(session, ticket_id)
        spec = ACTIONS.get(action)
        if spec is None:
            raise NotFoundError(f"no action {action!r}; use one of {', '.join(ACTIONS)}")
        if not may(key.role, spec, ticket.department):
            raise ForbiddenError(
                f"key {key.name!r} ({key.role}) may not {action}: it needs "
                f"{' or '.join(sorted(spec.roles))}" + (f" for {ticket.department}" if "department" in spec.roles else "")
            )  # fmt: skip
        if ticket.state not in spec.sources:
            allowed = allowed_actions(ticket.state)
            raise ConflictError(
                f"request {ticket.id} is {ticket.state}: {action} is not allowed from there; "
                f"allowed: {', '.join(allowed) or 'none (closed)'}", allowed,
            )  # fmt: skip
        t = at or now()
        before = ticket.state
        reason = params.get("reason")
        self._apply(session, ticket, action, params, t)
        ticket.state = spec.target
        ticket.updated_at = t
        if spec.target in CLOSED_STATES and action != "merge":
            ticket.closed_at = t
            self._close_merged(session, ticket, key, t)
        self._audit(
            session, ticket, action, before, spec.target, key, reason, t, params.get("attachment")
        )
        return ticket

    def _apply(
        self, session: Session, ticket: Ticket, action: str, p: Mapping[str, Any], t: dt.datetime
    ) -> None:
        if action in ("dispatch", "approve_return") and p.get("department"):
            ticket.department = str(p["department"])
            ticket.routing_rule = "manual"
        if action == "approve_return" and not p.get("department"):
            raise InputError("approve_return re-dispatches: give the new department")
        if action in ("dispatch", "approve_return"):  # a new dispatch: its own sign and contact
            ticket.dispatched_at, ticket.signed_at, ticket.contacted_at = t, None, None
            due = self.deadlines.due(ticket.urgency, t)
            ticket.due_sign, ticket.due_contact, ticket.due_resolve = (
                due.sign,
                due.contact,
                due.resolve,
            )
        if action == "sign" or (action == "reject_return" and ticket.signed_at is None):
            ticket.signed_at = t  # a refused return leaves it signed by the department
        if action == "start" and ticket.contacted_at is None:
            ticket.contacted_at = t
        if action == "approve_extension":
            try:
                until = parse_datetime(str(p["until"]), "until") if p.get("until") else None
            except ValueError as exc:
                raise InputError(str(exc)) from exc
            if until is None or until <= ticket.due_resolve:
                raise InputError(
                    "approve_extension needs 'until', a date-time after the current deadline"
                )
            ticket.due_resolve = until
        if action == "handle":
            ticket.handled_at = t
            ticket.status_notes = p.get("reason") or ticket.status_notes
        if action == "call_back":
            reached = bool(p.get("reached", True))
            resolved = p.get("resolved")
            session.add(Callback(ticket_id=ticket.id, at=t, reached=reached,
                                 resolved=None if resolved is None else bool(resolved),
                                 satisfaction=p.get("satisfaction")))  # fmt: skip
        if action == "merge":
            into = int(p.get("into", 0) or 0)
            target = session.get(Ticket, into) if 1 <= into < MAX_ID else None
            if target is None or target.id == ticket.id or target.state not in OPEN_STATES:
                raise InputError("merge needs 'into', the id of another open request")
            ticket.duplicate_of = target.id

    def _close_merged(self, session: Session, ticket: Ticket, key: KeyInfo, t: dt.datetime) -> None:
        merged = session.scalars(select(Ticket).where(Ticket.duplicate_of == ticket.id)).all()
        for m in merged:
            m.closed_at = t
            m.updated_at = t
            m.status_notes = f"closed with request {ticket.id} ({ticket.state})"

    def _audit(self, session: Session, ticket: Ticket, action: str, before: str | None, after: str,
               key: KeyInfo, reason: str | None, t: dt.datetime, attachment: str | None = None) -> None:  # fmt: skip
        session.add(Transition(ticket_id=ticket.id, action=action, from_state=before, to_state=after,
                               actor=key.name, role=key.role, at=t, reason=reason,
                               attachment=attachment, department=ticket.department))  # fmt: skip

    def get(self, session: Session, ticket_id: int) -> Ticket:
        """The ticket ``ticket_id``, or a :class:`NotFoundError` (ids beyond the 32-bit column
        too)."""
        if not 1 <= ticket_id < MAX_ID:
            raise NotFoundError(f"no request {ticket_id}")
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            raise NotFoundError(f"no request {ticket_id}")
        return ticket


def load_hotline(
    bundle: Any,
    *,
    services: str | Path | None = None,
    routing: str | Path | None = None,
    deadlines: str | Path | None = None,
    outside: str = "flag",
    media_dir: Path | None = None,
    city: CityModel | None = None,
) -> Hotline:
    """The hotline of a bundle (a :class:`cityos.Bundle`) with the built-in or a city's own
    catalogue, routing and deadlines, checked against each other; ``city``: the bundle's city
    model when made already (default: made here)."""
    from cityos.ops.catalogue import load_services
    from cityos.ops.deadlines import load_deadlines
    from cityos.ops.routing import load_routing

    dl = load_deadlines(deadlines)
    catalogue = load_services(services, urgencies=dl.urgencies)
    return Hotline(
        services=catalogue, routing=load_routing(routing, services=catalogue.services),
        deadlines=dl, city=city or CityModel.from_bundle(bundle),
        media_dir=media_dir or Path(bundle.path).with_name(Path(bundle.path).name + ".media"),
        outside=outside,
    )  # fmt: skip
