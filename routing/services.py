"""Routing a case: whether its province has a rota of ours, the chain on call for it, and who
may see it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true
from sqlalchemy.orm import Session

from core.models import Role, User
from oncall.chain import OnCallChain, on_call_chain
from routing.models import Case, CaseEvent, Dispatch, DispatchState, Page
from routing.places import ProvinceResolution, ProvinceSource

# Sources whose province has a rota of its own; out-of-area and unresolved cases go to the
# coordinators (design §5) and have no primary.
_ROTA_SOURCES = frozenset(
    {
        ProvinceSource.EXPLICIT,
        ProvinceSource.MUNICIPALITY,
        ProvinceSource.AREA_CODE,
        ProvinceSource.PARTNER,
        ProvinceSource.MANUAL,
    }
)


def has_rota(resolution: ProvinceResolution) -> bool:
    """Whether a case of this resolution goes to its province's rota (else: coordinators)."""
    return resolution.sigla is not None and resolution.source in _ROTA_SOURCES


def chain_for(
    session: Session, *, resolution: ProvinceResolution, at: datetime
) -> OnCallChain | None:
    """The on-call chain of a resolved province at `at`; None when it has no rota of ours."""
    if resolution.sigla is None or not has_rota(resolution):
        return None
    return on_call_chain(session, province=resolution.sigla, at=at)


# --- who may see a case ------------------------------------------------------------------------


def was_paged(session: Session, user: User, case: Case) -> bool:
    """Whether `user` was alerted for this case (any page, any step)."""
    return (
        session.scalar(
            select(Page.id)
            .join(Dispatch, Dispatch.id == Page.dispatch_id)
            .where(Dispatch.case_id == case.id, Page.operator_id == user.id)
            .limit(1)
        )
        is not None
    )


# A case whose person is (or may be) a minor is seen by fewer people (design §6).
MINOR_VALUES = ("yes", "presumed")


def visible_cases(user: User) -> ColumnElement[bool]:
    """The rule of who may read a case (and take it), as a WHERE clause on `Case`: lists,
    counts and the single case page all use it, so a case never shows up where it may not.

    Coordinators see every case. Anyone sees the cases they accepted. A minor's case
    (`minor` yes or presumed) is seen, besides, only by those paged on its dispatch while
    it is not yet accepted. Any other case is seen by the operators of its province and by
    anyone ever paged for it (an unresolved case sent to them, say). Admins and rota
    managers as such see none: a case is special-category personal data, seen by those who
    work it."""
    if user.has_role(Role.COORDINATOR):
        return true()
    paged = select(Page.id).join(Dispatch, Dispatch.id == Page.dispatch_id)
    paged = paged.where(Dispatch.case_id == Case.id, Page.operator_id == user.id)
    ever_paged = exists(paged)
    paged_open = exists(paged.where(Dispatch.state != DispatchState.ACCEPTED))
    in_province: ColumnElement[bool] = false()
    if user.has_role(Role.OPERATOR):
        if user.has_role(Role.ADMIN):  # can_see_province: admins cover every province
            in_province = Case.province.is_not(None)
        elif user.provinces:
            in_province = Case.province.in_(list(user.provinces))
    is_minor = Case.person_minor.in_(MINOR_VALUES)
    not_minor = or_(Case.person_minor.is_(None), Case.person_minor.not_in(MINOR_VALUES))
    return or_(
        Case.accepted_by_id == user.id,
        and_(is_minor, paged_open),
        and_(not_minor, or_(in_province, ever_paged)),
    )


def can_see_case(session: Session, user: User, case: Case) -> bool:
    """Whether `user` may read (and take) this case: `visible_cases` asked of one row."""
    if user.has_role(Role.COORDINATOR):
        return True
    session.flush()
    found = session.scalar(select(Case.id).where(Case.id == case.id, visible_cases(user)))
    return found is not None


def timeline(session: Session, case: Case) -> list[CaseEvent]:
    return list(
        session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
        )
    )
