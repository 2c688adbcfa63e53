"""Routing a case: whether its province has a rota of ours, the chain on call for it, and who
may see it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.auth import can_see_province
from core.models import Role, User
from oncall.chain import OnCallChain, on_call_chain
from routing.models import Case, CaseEvent, Dispatch, Page
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


def can_see_case(session: Session, user: User, case: Case) -> bool:
    """Who may read a case (and take it): coordinators every case; operators the cases of
    their provinces; anyone paged for it or who accepted it (an unresolved case sent to
    them, say). Admins and rota managers as such do not: a case is special-category
    personal data, seen by those who work it (design §6)."""
    if user.has_role(Role.COORDINATOR):
        return True
    in_province = case.province is not None and can_see_province(user, case.province)
    if in_province and user.has_role(Role.OPERATOR):
        return True
    return case.accepted_by_id == user.id or was_paged(session, user, case)


def timeline(session: Session, case: Case) -> list[CaseEvent]:
    return list(
        session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
        )
    )
