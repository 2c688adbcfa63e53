"""The database layer: SQLite's pragmas, one session per app context that commits nothing itself."""

from __future__ import annotations

import fcntl
import os
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.app import create_app
from core.clock import FrozenClock
from core.config import Settings
from core.db import Base, _write_lock, get_session, make_engine, serialised_writes
from core.models import AuditEntry, User
from tests.conftest import T0


def test_sqlite_runs_in_wal_mode_with_foreign_keys_enforced(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'ali.sqlite3'}")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        Base.metadata.create_all(engine)
        orphan = AuditEntry(at=T0, actor_id=999, actor="user:999", action="read", object_type="x")
        with Session(engine) as session:
            session.add(orphan)
            with pytest.raises(IntegrityError):
                session.commit()
    finally:
        engine.dispose()


def test_one_session_per_app_context_and_uncommitted_work_is_dropped(
    app: Flask, db: Session
) -> None:
    with app.app_context():
        session = get_session()
        assert get_session() is session
        session.add(User(email="x@ali.example", display_name="X", created_at=T0))
        session.flush()
    with app.app_context():
        assert get_session() is not session
    # Nobody committed: the app context's teardown rolled the insert back.
    assert db.scalar(select(func.count(User.id))) == 0


def test_the_app_factory_never_starts_a_scheduler(
    settings: Settings, engine: Engine, clock: FrozenClock
) -> None:
    # gunicorn imports wsgi.py, which only calls create_app: jobs must run in `ali worker` alone.
    before = {t.ident for t in threading.enumerate()}
    create_app(replace(settings, scheduler="inprocess"), clock=clock, engine=engine)
    started = [t.name for t in threading.enumerate() if t.ident not in before]
    assert started == []


def _fail_in_a_write(session: Session) -> None:
    with serialised_writes(session):
        session.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: SQLite's write lock is held
        raise RuntimeError("boom")


def test_serialised_writes_roll_back_and_release_on_an_error(tmp_path: Path) -> None:
    path = tmp_path / "ali.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    try:
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            with pytest.raises(RuntimeError):
                _fail_in_a_write(session)
            assert not session.in_transaction()
        assert not _write_lock(engine).thread_lock.locked()
        fd = os.open(f"{path}-writelock", os.O_RDWR)  # the processes' flock is free too
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        with Session(engine) as session, serialised_writes(session):
            session.execute(text("SELECT 1"))
            assert _write_lock(engine).thread_lock.locked()
            session.commit()
        assert not _write_lock(engine).thread_lock.locked()
    finally:
        engine.dispose()


def test_serialised_writes_do_not_hold_up_a_session_in_a_transaction(tmp_path: Path) -> None:
    """Such a session may hold SQLite's write lock the lock's holder waits for: it must not
    queue behind it (a deadlock until the timeouts)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'ali.sqlite3'}")
    passed = threading.Event()

    def in_a_transaction() -> None:
        with Session(engine) as busy:
            busy.execute(text("SELECT 1"))
            with serialised_writes(busy):
                passed.set()

    try:
        Base.metadata.create_all(engine)
        with Session(engine) as holder, serialised_writes(holder):
            thread = threading.Thread(target=in_a_transaction, daemon=True)
            thread.start()
            thread.join(timeout=10)
            assert passed.is_set()
    finally:
        engine.dispose()
