"""The hand-off's hot path (prebuilt Core statements; one CTE statement on PostgreSQL) writes
exactly what the ORM path wrote: the same rows, ids cross-referenced, references padded."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import AuditEntry
from intake.models import Handoff
from routing.models import Case, CaseEvent, CaseSequence
from tests.intake.signed import Sender


def test_events_and_audit_point_at_the_handoff_and_case(sender: Sender, db: Session) -> None:
    response = sender.post({"external_id": "hot-1", "province": "BS", "urgency": "urgent"})
    assert response.status_code == 201
    case = db.scalars(select(Case)).one()
    handoff = db.scalars(select(Handoff)).one()
    assert handoff.case_id == case.id
    created, routed = db.scalars(
        select(CaseEvent).where(CaseEvent.kind.in_(["created", "routed"])).order_by(CaseEvent.id)
    ).all()
    assert (created.case_id, created.kind, created.actor) == (
        case.id,
        "created",
        "source:numero-verde",
    )
    assert created.data == {"channel": "webhook", "handoff_id": handoff.id, "urgency": "urgent"}
    assert (routed.case_id, routed.kind, routed.actor) == (case.id, "routed", "system")
    entry = db.scalars(select(AuditEntry).where(AuditEntry.object_type == "case")).one()
    assert entry.object_id == str(case.id)
    assert entry.detail == {"reference": case.reference, "handoff_id": handoff.id}
    assert entry.remote_addr == "127.0.0.1"


def test_references_keep_counting_past_four_digits(sender: Sender, db: Session) -> None:
    db.add(CaseSequence(province="BS", year=2026, last=9998))
    db.flush()
    answers = [sender.post({"external_id": f"hot-{n}", "province": "BS"}) for n in range(2)]
    assert [a.get_json()["case"] for a in answers] == ["BS-2026-9999", "BS-2026-10000"]
