"""The hand-off's hot path (prebuilt Core statements; one CTE statement on PostgreSQL) writes
exactly what the ORM path wrote: the same rows, ids cross-referenced, references padded."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from core.models import AuditEntry
from intake.models import Case, CaseEvent, CaseSequence, Handoff
from intake.services import _statements_for
from tests.intake.signed import Sender

# psycopg caches the conversion of a statement only up to this length (psycopg._queries.
# MAX_CACHED_STATEMENT_LENGTH); past it, every hand-off pays for parsing it again.
PSYCOPG_CACHED_LENGTH = 4096


def test_events_and_audit_point_at_the_handoff_and_case(sender: Sender, db: Session) -> None:
    response = sender.post({"external_id": "hot-1", "province": "BS", "urgency": "urgent"})
    assert response.status_code == 201
    case = db.scalars(select(Case)).one()
    handoff = db.scalars(select(Handoff)).one()
    assert handoff.case_id == case.id
    created, routed = db.scalars(select(CaseEvent).order_by(CaseEvent.id)).all()
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


def test_the_postgresql_statement_stays_cacheable_by_psycopg() -> None:
    statement = _statements_for("postgresql").open_case
    assert statement is not None
    compiled = str(statement.compile(dialect=postgresql.dialect()))
    assert len(compiled.encode()) < PSYCOPG_CACHED_LENGTH
