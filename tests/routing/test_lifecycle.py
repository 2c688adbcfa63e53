"""A case's status moves along design §3's transitions only, each an event and an audit entry."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from core.models import AuditEntry
from routing.lifecycle import TRANSITIONS, TransitionRefused, change_status
from routing.models import Case, CaseEvent, CaseStatus
from tests.alerting import Chain
from tests.intake.signed import Sender


@pytest.fixture
def case(sender: Sender, chain: Chain, db: Session) -> Case:
    sender.post({"external_id": "NV-l", "province": "BS"})
    return db.scalars(select(Case)).one()


def test_a_case_walks_the_lifecycle_to_closed(
    case: Case, chain: Chain, db: Session, clock: FrozenClock
) -> None:
    for status in (
        CaseStatus.ACCEPTED,
        CaseStatus.IN_CONTACT,
        CaseStatus.PLACED,
        CaseStatus.CLOSED,
    ):
        change_status(db, case, status, actor=chain.primary, now=clock.now())
    db.commit()
    changes = db.scalars(select(CaseEvent).where(CaseEvent.kind == "status_changed")).all()
    assert [(e.data["from"], e.data["to"]) for e in changes] == [
        ("dispatched", "accepted"),
        ("accepted", "in_contact"),
        ("in_contact", "placed"),
        ("placed", "closed"),
    ]
    assert {e.actor for e in changes} == {f"user:{chain.primary.id}"}
    audits = db.scalars(
        select(AuditEntry).where(AuditEntry.action == "update", AuditEntry.object_type == "case")
    ).all()
    assert len(audits) == 4
    assert all(entry.fields == ["status"] for entry in audits)
    db.refresh(case)
    assert case.status is CaseStatus.CLOSED


def test_a_skipped_step_is_refused(
    case: Case, chain: Chain, db: Session, clock: FrozenClock
) -> None:
    with pytest.raises(TransitionRefused, match="dispatched cannot become placed"):
        change_status(db, case, CaseStatus.PLACED, actor=chain.primary, now=clock.now())
    assert case.status == CaseStatus.DISPATCHED


def test_only_a_coordinator_reopens_a_closed_case(
    case: Case, chain: Chain, db: Session, clock: FrozenClock
) -> None:
    for status in (CaseStatus.ACCEPTED, CaseStatus.UNREACHABLE, CaseStatus.CLOSED):
        change_status(db, case, status, actor=chain.primary, now=clock.now())
    with pytest.raises(TransitionRefused, match="coordinator"):
        change_status(db, case, CaseStatus.IN_CONTACT, actor=chain.primary, now=clock.now())
    change_status(db, case, CaseStatus.IN_CONTACT, actor=chain.coordinator, now=clock.now())
    assert case.status == CaseStatus.IN_CONTACT


def test_every_status_has_its_transitions_and_closed_is_final() -> None:
    assert set(TRANSITIONS) == set(CaseStatus)
    assert TRANSITIONS[CaseStatus.CLOSED] == frozenset()
    reachable = {CaseStatus.NEW}
    for _ in CaseStatus:
        reachable |= {nxt for status in reachable for nxt in TRANSITIONS[status]}
    assert reachable == set(CaseStatus)
