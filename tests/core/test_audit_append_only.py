"""The audit log is append-only in the database: UPDATE and DELETE are refused on both."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, delete, func, select, text, update
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session

from core import audit
from core.clock import FrozenClock
from core.models import AuditEntry
from tests.conftest import _empty_tables


def _one_entry(engine: Engine, clock: FrozenClock) -> int:
    with Session(engine) as session:
        entry = audit.record(
            session, now=clock.now(), action="read", object_type="case", object_id=7, actor="cli"
        )
        session.commit()
        return entry.id


def test_an_audit_entry_cannot_be_updated(engine: Engine, clock: FrozenClock) -> None:
    entry_id = _one_entry(engine, clock)
    with Session(engine) as session, pytest.raises(DatabaseError, match="append-only"):
        session.execute(update(AuditEntry).where(AuditEntry.id == entry_id).values(actor="x"))
    with Session(engine) as session:
        assert session.get(AuditEntry, entry_id).actor == "cli"  # type: ignore[union-attr]


def test_an_audit_entry_cannot_be_deleted_even_in_raw_sql(
    engine: Engine, clock: FrozenClock
) -> None:
    entry_id = _one_entry(engine, clock)
    with Session(engine) as session, pytest.raises(DatabaseError, match="append-only"):
        session.execute(delete(AuditEntry))
    with engine.connect() as conn, pytest.raises(DatabaseError, match="append-only"):
        conn.execute(text("DELETE FROM audit_entries WHERE id = :id"), {"id": entry_id})
    with Session(engine) as session:
        assert session.scalar(select(func.count(AuditEntry.id))) == 1


def test_appending_still_works(engine: Engine, clock: FrozenClock) -> None:
    _one_entry(engine, clock)
    _one_entry(engine, clock)
    with Session(engine) as session:
        assert session.scalar(select(func.count(AuditEntry.id))) == 2


def test_the_test_suite_can_empty_the_log_and_the_guard_stays(
    engine: Engine, clock: FrozenClock
) -> None:
    # PostgreSQL: TRUNCATE is not a row DELETE, no row trigger fires. SQLite: the cleanup
    # drops the triggers and recreates them from their stored SQL.
    _one_entry(engine, clock)
    _empty_tables(engine)
    with Session(engine) as session:
        assert session.scalar(select(func.count(AuditEntry.id))) == 0
    entry_id = _one_entry(engine, clock)
    with engine.connect() as conn, pytest.raises(DatabaseError, match="append-only"):
        conn.execute(text("DELETE FROM audit_entries WHERE id = :id"), {"id": entry_id})
