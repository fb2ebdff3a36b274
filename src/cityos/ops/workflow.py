"""The 12345 workflow (接诉即办) as an explicit table of allowed transitions.

received → answered_directly | classified → dispatched → signed → (return_requested →
dispatched again | signed) → in_progress → (extension_requested → in_progress, deadline moved)
→ handled → callback → closed_resolved | closed_unresolved | reissued → dispatched; and from any
open state merged_duplicate, cancelled; from intake rejected_out_of_scope. ../shared/OPS.md §1.5
[OP], after Amsterdam Signals' ``ALLOWED_STATUS_CHANGES`` (read, not copied).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ACTIONS",
    "CLOSED_STATES",
    "OPEN_STATES",
    "STATES",
    "Action",
    "allowed_actions",
    "detailed_status",
    "may",
]

STATES = (
    "received", "answered_directly", "classified", "dispatched", "signed", "return_requested",
    "in_progress", "extension_requested", "handled", "callback", "closed_resolved",
    "closed_unresolved", "reissued", "merged_duplicate", "cancelled", "rejected_out_of_scope",
)  # fmt: skip
CLOSED_STATES = frozenset(
    {"answered_directly", "closed_resolved", "closed_unresolved", "merged_duplicate",
     "cancelled", "rejected_out_of_scope"}
)  # fmt: skip
OPEN_STATES = frozenset(STATES) - CLOSED_STATES

#: who may act: the hotline's intake operators, its dispatchers, the handling department
#: (``department:CODE`` where CODE is the ticket's department) and admins (everything)
INTAKE, DISPATCHER, DEPARTMENT = "intake", "dispatcher", "department"


@dataclass(frozen=True)
class Action:
    """A workflow action: the states it leaves, the state it enters, the roles allowed."""

    name: str
    sources: frozenset[str]
    target: str
    roles: frozenset[str]
    description: str


def _a(name: str, sources: set[str], target: str, roles: set[str], description: str) -> Action:
    return Action(name, frozenset(sources), target, frozenset(roles), description)


_ANY_OPEN = set(OPEN_STATES)
ACTIONS: dict[str, Action] = {a.name: a for a in [
    _a("answer", {"received"}, "answered_directly", {INTAKE, DISPATCHER},
       "answered at intake from the knowledge base (直接答复)"),
    _a("classify", {"received"}, "classified", {INTAKE, DISPATCHER}, "category and urgency checked"),
    _a("dispatch", {"received", "classified", "reissued"}, "dispatched", {DISPATCHER},
       "sent to the responsible department (派单); the clock starts"),
    _a("sign", {"dispatched"}, "signed", {DEPARTMENT}, "accepted by the department (签收)"),
    _a("request_return", {"dispatched", "signed"}, "return_requested", {DEPARTMENT},
       "the department asks to return it (退单): wrong area, ownership unclear, overlapping duty"),
    _a("approve_return", {"return_requested"}, "dispatched", {DISPATCHER},
       "return upheld: re-dispatched to another department"),
    _a("reject_return", {"return_requested"}, "signed", {DISPATCHER},
       "return refused: the department keeps it"),
    _a("start", {"signed"}, "in_progress", {DEPARTMENT}, "work started; citizen contacted (先行联系)"),
    _a("request_extension", {"in_progress"}, "extension_requested", {DEPARTMENT},
       "more time asked before the deadline (延期申请)"),
    _a("approve_extension", {"extension_requested"}, "in_progress", {DISPATCHER},
       "extension granted: the resolution deadline moves"),
    _a("reject_extension", {"extension_requested"}, "in_progress", {DISPATCHER},
       "extension refused: the deadline stays"),
    _a("handle", {"signed", "in_progress"}, "handled", {DEPARTMENT},
       "reported done by the department (办结)"),
    _a("call_back", {"handled"}, "callback", {INTAKE, DISPATCHER},
       "the citizen is called back (回访): reached, resolved, satisfaction"),
    _a("close_resolved", {"callback"}, "closed_resolved", {INTAKE, DISPATCHER}, "closed: resolved"),
    _a("close_unresolved", {"callback"}, "closed_unresolved", {INTAKE, DISPATCHER},
       "closed: not resolved (objective reasons)"),
    _a("reissue", {"callback"}, "reissued", {INTAKE, DISPATCHER},
       "the citizen is not satisfied for the unit's reasons: handled again (重新办理)"),
    _a("merge", _ANY_OPEN, "merged_duplicate", {DISPATCHER},
       "merged into another open ticket of the same problem; closes with it"),
    _a("cancel", _ANY_OPEN, "cancelled", {DISPATCHER}, "withdrawn by the citizen or void"),
    _a("reject_scope", {"received", "classified"}, "rejected_out_of_scope", {INTAKE, DISPATCHER},
       "outside the hotline's remit (不予受理)"),
]}  # fmt: skip


def may(role: str, action: Action, department: str) -> bool:
    """Whether a key of ``role`` may take ``action`` on a ticket handled by ``department``."""
    if role == "admin":
        return True
    if role.startswith("department:"):
        return DEPARTMENT in action.roles and role.split(":", 1)[1] == department
    return role in action.roles


def allowed_actions(state: str) -> list[str]:
    """The actions possible from ``state``, in table order."""
    return [a.name for a in ACTIONS.values() if state in a.sources]


def detailed_status(state: str) -> str:
    """The Open311 ``extended_attributes.detailed_status`` of a state."""
    if state in ("received", "classified"):
        return "RECEIVED"
    if state in ("answered_directly", "closed_resolved", "closed_unresolved"):
        return "PROCESSED"
    if state == "merged_duplicate":
        return "ARCHIVED"
    if state in ("cancelled", "rejected_out_of_scope"):
        return "REJECTED"
    return "IN_PROCESS"
