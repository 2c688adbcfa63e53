"""The case workspace: the case list (filters, order, amber and red) and who may do what.

Plain functions taking a Session; they never commit. Visibility is routing's one rule,
`visible_cases`, used here as a SQL filter so a list or a count never holds a case its reader
may not open.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy import case as sql_case
from sqlalchemy.orm import Session

from core.models import Role, User
from routing.lifecycle import COORDINATOR_ROLES, OUTCOMES, allowed_next
from routing.models import Case, CaseStatus, Dispatch, DispatchState, Urgency
from routing.services import visible_cases

PAGE_SIZE = 25
OPEN = "open"  # the status filter "every status but closed"
ALL = "all"
_URGENCY_ORDER = {Urgency.EMERGENCY.value: 0, Urgency.URGENT.value: 1, Urgency.ORDINARY.value: 2}


class Lateness(StrEnum):
    """How a case looks in a list (design §5)."""

    ON_TIME = ""
    AMBER = "amber"  # its first escalation step passed unaccepted
    RED = "red"  # every step used up: unanswered


@dataclass(frozen=True)
class CaseFilter:
    province: str | None = None
    status: str = OPEN  # OPEN, ALL or a CaseStatus value
    urgency: str | None = None
    unaccepted: bool = False
    mine: bool = False
    page: int = 1


@dataclass(frozen=True)
class ListedCase:
    case: Case
    lateness: Lateness


@dataclass(frozen=True)
class CasePage:
    cases: list[ListedCase]
    total: int
    page: int
    pages: int


def lateness_of(dispatch: Dispatch | None) -> Lateness:
    if dispatch is None:
        return Lateness.ON_TIME
    if dispatch.state == DispatchState.EXHAUSTED:
        return Lateness.RED
    if dispatch.state == DispatchState.OPEN and dispatch.steps_fired > 1:
        return Lateness.AMBER
    return Lateness.ON_TIME


def _conditions(user: User, wanted: CaseFilter) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = [visible_cases(user)]
    if wanted.province:
        found.append(Case.province == wanted.province)
    if wanted.status == OPEN:
        found.append(Case.status != CaseStatus.CLOSED)
    elif wanted.status != ALL:
        found.append(Case.status == wanted.status)
    if wanted.urgency:
        found.append(Case.urgency == wanted.urgency)
    if wanted.unaccepted:
        found.append(Case.accepted_by_id.is_(None))
    if wanted.mine:
        found.append(Case.accepted_by_id == user.id)
    return found


def list_cases(session: Session, user: User, wanted: CaseFilter) -> CasePage:
    """One page of the cases `user` may see, most urgent first, then oldest first."""
    conditions = _conditions(user, wanted)
    total = session.scalar(select(func.count(Case.id)).where(and_(*conditions))) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, wanted.page), pages)
    urgency_rank = sql_case(_URGENCY_ORDER, value=Case.urgency, else_=3)
    rows = session.execute(
        select(Case, Dispatch)
        .outerjoin(Dispatch, Dispatch.case_id == Case.id)
        .where(and_(*conditions))
        .order_by(urgency_rank, Case.received_at, Case.id)
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    listed = [ListedCase(case, lateness_of(dispatch)) for case, dispatch in rows]
    return CasePage(cases=listed, total=total, page=page, pages=pages)


@dataclass(frozen=True)
class Unaccepted:
    total: int
    red: int
    amber: int
    cases: list[ListedCase]  # the first few: red first, then amber, then by urgency and age


def _is_red() -> ColumnElement[bool]:
    return Dispatch.state == DispatchState.EXHAUSTED


def _is_amber() -> ColumnElement[bool]:
    return and_(Dispatch.state == DispatchState.OPEN, Dispatch.steps_fired > 1)


def unaccepted_cases(session: Session, user: User, listed: int) -> Unaccepted:
    """Every open case `user` may see that nobody accepted, counted red and amber in SQL (as
    `lateness_of` says), and the first `listed` of them, unanswered ones first: a page of the
    case list would leave the later ones out of the counts."""
    conditions = _conditions(user, CaseFilter(unaccepted=True))
    total, red, amber = session.execute(
        select(
            func.count(Case.id),
            func.coalesce(func.sum(sql_case((_is_red(), 1), else_=0)), 0),
            func.coalesce(func.sum(sql_case((_is_amber(), 1), else_=0)), 0),
        )
        .select_from(Case)
        .outerjoin(Dispatch, Dispatch.case_id == Case.id)
        .where(and_(*conditions))
    ).one()
    lateness_rank = sql_case((_is_red(), 0), (_is_amber(), 1), else_=2)
    urgency_rank = sql_case(_URGENCY_ORDER, value=Case.urgency, else_=3)
    rows = session.execute(
        select(Case, Dispatch)
        .outerjoin(Dispatch, Dispatch.case_id == Case.id)
        .where(and_(*conditions))
        .order_by(lateness_rank, urgency_rank, Case.received_at, Case.id)
        .limit(listed)
    ).all()
    return Unaccepted(
        total=int(total),
        red=int(red),
        amber=int(amber),
        cases=[ListedCase(case, lateness_of(dispatch)) for case, dispatch in rows],
    )


# --- what the case page offers -------------------------------------------------------------


def next_statuses(case: Case) -> list[CaseStatus]:
    """The status changes the page offers as such; acceptance has its own button, and an
    outcome is recorded by closing with it (or on its own, to close later)."""
    allowed = allowed_next(case)
    return [
        status
        for status in CaseStatus  # in the lifecycle's order, not a set's
        if status in allowed and status not in {CaseStatus.ACCEPTED, CaseStatus.DISPATCHED}
    ]


def closing_outcomes(case: Case) -> list[CaseStatus]:
    """The outcomes a case can be closed with now (its own, once it has one)."""
    current = CaseStatus(case.status)
    if current in OUTCOMES:
        return [current]
    allowed = allowed_next(case)
    return [status for status in CaseStatus if status in allowed and status in OUTCOMES]


def can_reopen(user: User, case: Case) -> bool:
    return case.status == CaseStatus.CLOSED and user.has_role(*COORDINATOR_ROLES)


def can_enter_cases(user: User) -> bool:
    """Manual entry is for those who meet people: operators and coordinators."""
    return user.has_role(Role.OPERATOR, Role.COORDINATOR)
