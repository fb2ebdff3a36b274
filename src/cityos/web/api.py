"""The hotline's JSON API under ``/api/v1/``: the workflow actions (one endpoint, the action in
the path, the roles of :mod:`cityos.ops.workflow`), a ticket's internal view with its audit trail
and deadlines, and the reporter's contact data for those allowed to see it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from cityos.errors import ForbiddenError
from cityos.lifelines.desk import close_with_ticket
from cityos.ops.hotline import now
from cityos.ops.models import Ticket
from cityos.ops.rates import month_bounds, rates, read_frames
from cityos.ops.workflow import ACTIONS, CLOSED_STATES, allowed_actions
from cityos.web.deps import KeyDep, Ops, OpsDep
from cityos.web.formats import stamp
from cityos.web.open311 import public_request

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["hotline workflow"])


class ActionBody(BaseModel):
    """What an action may carry; each action reads the fields it needs."""

    reason: str | None = Field(
        default=None, max_length=4000, description="Why (kept in the audit row)"
    )
    department: str | None = Field(
        default=None, max_length=64, description="dispatch / approve_return: the department"
    )
    until: str | None = Field(
        default=None, description="approve_extension: the new deadline, ISO 8601"
    )
    into: int | None = Field(
        default=None, ge=1, description="merge: the open request this one duplicates"
    )
    reached: bool | None = Field(default=None, description="call_back: the citizen was reached")
    resolved: bool | None = Field(
        default=None, description="call_back: the citizen says it is resolved"
    )
    satisfaction: str | None = Field(
        default=None, max_length=32, description="call_back: 满意 / 基本满意 / 不满意"
    )
    attachment: str | None = Field(
        default=None, max_length=2000, description="A reference kept with the audit row"
    )


class Transition(BaseModel):
    action: str
    from_state: str | None
    to_state: str
    actor: str
    role: str
    at: str
    reason: str | None
    department: str | None


class TicketView(BaseModel):
    """A ticket as the hotline's staff see it (never the reporter's data)."""

    id: int
    state: str
    department: str
    routing_rule: str
    urgency: str
    units: dict[str, str | None]
    outside_city: bool
    due: dict[str, str]
    times: dict[str, str | None]
    overdue: bool
    allowed_actions: list[str]
    seconds_in_state: dict[str, float]
    transitions: list[Transition]
    public: dict[str, Any]


def _view(t: Ticket, request: Request, ops: Ops) -> TicketView:
    at = now()
    spent: dict[str, float] = {}
    steps = list(t.transitions)
    for a, b in zip(steps, [*steps[1:], None], strict=True):
        end = b.at if b is not None else (t.closed_at or at)
        spent[a.to_state] = spent.get(a.to_state, 0.0) + (end - a.at).total_seconds()
    open_ = t.state not in CLOSED_STATES
    return TicketView(
        id=t.id, state=t.state, department=t.department, routing_rule=t.routing_rule,
        urgency=t.urgency,
        units={"community": t.community_id, "subdistrict": t.subdistrict_id, "city": t.city_id},
        outside_city=t.outside_city,
        due={"sign": stamp(t.due_sign) or "", "contact": stamp(t.due_contact) or "",
             "resolve": stamp(t.due_resolve) or ""},
        times={"dispatched": stamp(t.dispatched_at), "signed": stamp(t.signed_at),
               "contacted": stamp(t.contacted_at), "handled": stamp(t.handled_at),
               "closed": stamp(t.closed_at)},
        overdue=(open_ and at > t.due_resolve) or (t.closed_at is not None and t.closed_at > t.due_resolve),
        allowed_actions=allowed_actions(t.state), seconds_in_state=spent,
        transitions=[Transition(action=x.action, from_state=x.from_state, to_state=x.to_state,
                                actor=x.actor, role=x.role, at=stamp(x.at) or "", reason=x.reason,
                                department=x.department) for x in steps],
        public=public_request(t, ops.hotline, notes=steps, base=str(request.base_url).rstrip("/")),
    )  # fmt: skip


@router.get("/rates", summary="The three rates, on-time resolution and the composite of a month")
def month_rates(
    ops: OpsDep,
    month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")],
    level: Annotated[Literal["subdistrict", "community", "department"], Query()] = "subdistrict",
) -> list[dict[str, Any]]:
    """One row per group and rate: numerator, denominator, percent (null: no data), and the
    tickets behind both."""
    start, end = month_bounds(month)
    table = rates(read_frames(ops.engine, start, end), month, level, ops.rate_rule, as_of=now())
    return [
        {str(k): (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
        for row in table.to_dict("records")
    ]


@router.get("/actions", summary="The workflow's transition table")
async def actions() -> list[dict[str, Any]]:
    return [
        {"action": a.name, "from": sorted(a.sources), "to": a.target, "roles": sorted(a.roles),
         "description": a.description}
        for a in ACTIONS.values()
    ]  # fmt: skip


@router.get(
    "/requests/{ticket_id}", summary="A ticket with its audit trail", response_model=TicketView
)
async def ticket(
    ticket_id: int,
    request: Request,
    ops: OpsDep,
    key: KeyDep,
) -> TicketView:
    with ops.session() as s:
        return _view(ops.hotline.get(s, ticket_id), request, ops)


@router.post(
    "/requests/{ticket_id}/actions/{action}", summary="Take a workflow action",
    response_model=TicketView,
    responses={403: {"description": "wrong role"}, 404: {"description": "no such ticket or action"},
               409: {"description": "not allowed from the current state"}},
)  # fmt: skip
async def act(
    ticket_id: int, action: str, body: ActionBody, request: Request,
    ops: OpsDep, key: KeyDep,
) -> TicketView:  # fmt: skip
    params = body.model_dump(exclude_none=True)

    def run(s: Session) -> TicketView:
        t = ops.hotline.act(s, ticket_id, action, key, params)
        if t.state in CLOSED_STATES:  # a lifeline alert closes with its work order
            close_with_ticket(s.connection(), t.id, t.state, key)
        return _view(t, request, ops)

    return await ops.write(run)


@router.get(
    "/requests/{ticket_id}/reporter",
    summary="The reporter's contact data (admin, handling department)",
)
async def reporter(ticket_id: int, ops: OpsDep, key: KeyDep) -> dict[str, str | None]:
    with ops.session() as s:
        t = ops.hotline.get(s, ticket_id)
        if key.role != "admin" and key.role != f"department:{t.department}":
            raise ForbiddenError(
                f"only admin and department:{t.department} may read the reporter of request {t.id}"
            )
        r = t.reporter
        fields = ("first_name", "last_name", "email", "phone", "device_id", "account_id")
        return {f: getattr(r, f) if r else None for f in fields}
