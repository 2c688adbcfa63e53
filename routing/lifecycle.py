"""A case's status: the allowed transitions of design §3, each one an event and an audit entry."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from core import audit
from core.models import Role, User
from routing.models import Case, CaseEvent, CaseEventKind, CaseStatus

_OUTCOMES = frozenset(
    {
        CaseStatus.PLACED,
        CaseStatus.REFERRED,
        CaseStatus.NOT_PERTINENT,
        CaseStatus.OUT_OF_AREA,
        CaseStatus.UNREACHABLE,
    }
)
# new → dispatched → accepted → in_contact → outcome → closed. An accepted case may end
# without contact (the person is unreachable, or it turns out not pertinent / out of area).
TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    CaseStatus.NEW: frozenset({CaseStatus.DISPATCHED, CaseStatus.ACCEPTED}),
    CaseStatus.DISPATCHED: frozenset({CaseStatus.ACCEPTED}),
    CaseStatus.ACCEPTED: frozenset(
        {
            CaseStatus.IN_CONTACT,
            CaseStatus.UNREACHABLE,
            CaseStatus.NOT_PERTINENT,
            CaseStatus.OUT_OF_AREA,
        }
    ),
    CaseStatus.IN_CONTACT: _OUTCOMES,
    **{outcome: frozenset({CaseStatus.CLOSED}) for outcome in _OUTCOMES},
    CaseStatus.CLOSED: frozenset(),
}
COORDINATOR_ROLES = (Role.COORDINATOR, Role.ADMIN)
# Reopening a closed case puts it back in the hands of whoever holds it.
REOPENED_TO = CaseStatus.IN_CONTACT


class TransitionRefused(ValueError):
    """A status change the lifecycle does not allow; the message says which and why."""


def allowed_next(case: Case) -> frozenset[CaseStatus]:
    return TRANSITIONS[CaseStatus(case.status)]


def change_status(
    session: Session,
    case: Case,
    to: CaseStatus,
    *,
    actor: User | str,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> CaseEvent:
    """Move a case to `to`, recording the event and the audit entry; refuses anything else.

    Reopening (closed → in contact) is for coordinators only.
    """
    current = CaseStatus(case.status)
    if current == CaseStatus.CLOSED and to == REOPENED_TO:
        if not (isinstance(actor, User) and actor.has_role(*COORDINATOR_ROLES)):
            raise TransitionRefused("only a coordinator can reopen a closed case")
    elif to not in TRANSITIONS[current]:
        raise TransitionRefused(f"a case {current.value} cannot become {to.value}")
    case.status = to
    event = record_event(
        session,
        case_id=case.id,
        kind=CaseEventKind.STATUS_CHANGED,
        actor=actor,
        now=now,
        data={"from": current.value, "to": to.value, **(detail or {})},
    )
    audit.record(
        session,
        now=now,
        action="update",
        object_type="case",
        object_id=case.id,
        actor=actor,
        fields=["status"],
        detail={"from": current.value, "to": to.value},
    )
    return event


def record_read(
    session: Session, case: Case, *, actor: User | str, fields: Iterable[str], now: datetime
) -> None:
    """Every read of a case is audited (design §6): who, when, which case, which fields —
    never their values."""
    audit.record(
        session,
        now=now,
        action="read",
        object_type="case",
        object_id=case.id,
        actor=actor,
        fields=fields,
    )


def record_event(
    session: Session,
    *,
    case_id: int,
    kind: CaseEventKind,
    actor: User | str,
    now: datetime,
    data: dict[str, Any] | None = None,
) -> CaseEvent:
    """Append one entry to a case's timeline (ids and codes only, never what a person said)."""
    event = CaseEvent(
        case_id=case_id,
        at=now,
        kind=kind.value,
        actor=actor if isinstance(actor, str) else f"user:{actor.id}",
        data=data or {},
    )
    session.add(event)
    return event


OUTCOMES = _OUTCOMES
MAX_NOTE = 4000


def add_note(session: Session, case: Case, text: str, *, actor: User, now: datetime) -> CaseEvent:
    """A note on the case's timeline: its text encrypted in the event, the audit entry
    naming the field only."""
    event = record_event(session, case_id=case.id, kind=CaseEventKind.NOTE, actor=actor, now=now)
    event.note = text
    audit.record(
        session,
        now=now,
        action="update",
        object_type="case",
        object_id=case.id,
        actor=actor,
        fields=["note"],
    )
    return event


def close_with_outcome(
    session: Session, case: Case, outcome: CaseStatus, *, actor: User, now: datetime
) -> None:
    """Record the outcome (placed, referred, ...), then close: two status changes, both on
    the timeline, so a report counts outcomes from the same events as any other change."""
    if outcome not in OUTCOMES:
        raise TransitionRefused(f"{outcome.value} is not an outcome")
    if CaseStatus(case.status) != outcome:
        change_status(session, case, outcome, actor=actor, now=now)
    change_status(session, case, CaseStatus.CLOSED, actor=actor, now=now)
