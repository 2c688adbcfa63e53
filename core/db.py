"""Database: the declarative base, tz-aware UTC columns and one session per app context."""

from __future__ import annotations

import fcntl
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from flask import Flask, current_app, g
from sqlalchemy import DateTime, Engine, MetaData, String, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes stored as UTC; SQLite forgets the offset, so it is put back on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


E = TypeVar("E", bound=StrEnum)


class StrEnumText(TypeDecorator[E]):
    """A StrEnum stored as its code in a VARCHAR: rows read back as enum members, and a code
    the enum does not know fails on write instead of reaching the table."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E], length: int) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self.enum(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012 -- SQLAlchemy's own hook


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the worker write while web requests read; busy_timeout waits out short locks
    # instead of failing a hand-off with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine with the project's connection settings for SQLite or PostgreSQL.

    `hide_parameters`: a database error's message must not carry the row's personal data
    into the logs.
    """
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            hide_parameters=True,
        )
        _restrict_sqlite_files(engine.url.database)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "connect", lambda _c, _r: _restrict_sqlite_files(engine.url.database))
        # pysqlite defers BEGIN until the first write, so a read-then-write transaction can
        # fail with "database is locked" under concurrency. BEGIN IMMEDIATE takes the write
        # lock up front; busy_timeout queues the others instead of failing a hand-off.
        event.listen(engine, "connect", _disable_pysqlite_begin)
        # A pooled connection comes back with pysqlite's own isolation level restored after
        # an AUTOCOMMIT use; take transaction control again at every checkout.
        event.listen(engine, "checkout", _checkout_without_pysqlite_begin)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=10, hide_parameters=True
    )


def _restrict_sqlite_files(database: str | None) -> None:
    """The database holds every case: only Ali's own user reads it. The file is created 0600
    before SQLite opens it (SQLite gives its -wal and -shm files the database's permissions),
    and a database made earlier by a looser umask is tightened with its -wal and -shm."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        os.close(os.open(database, os.O_RDWR | os.O_CREAT, 0o600))
    except OSError:
        return  # SQLite reports a path it cannot open better than we would
    for path in (database, f"{database}-wal", f"{database}-shm"):
        try:
            if os.stat(path).st_mode & 0o077:
                os.chmod(path, 0o600)
        except OSError:
            continue  # not there (yet), or not ours: SQLite itself decides


def _disable_pysqlite_begin(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None


def _checkout_without_pysqlite_begin(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    dbapi_connection.isolation_level = None


def _sqlite_begin(conn: Any) -> None:
    if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        return
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def init_app(app: Flask, engine: Engine) -> None:
    app.extensions["ali.engine"] = engine
    app.extensions["ali.sessionmaker"] = sessionmaker(bind=engine, expire_on_commit=False)
    app.teardown_appcontext(_close_session)


def get_session() -> Session:
    """The session of the current app context; callers own the transaction."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["ali.sessionmaker"]()
    session: Session = g.db_session
    return session


def rollback_session() -> None:
    """Undo the current app context's unfinished work, if it has a session. An error page
    calls it first: after a failed statement PostgreSQL refuses every further one in the
    transaction, and the page itself reads the signed-in user."""
    session: Session | None = g.get("db_session")
    if session is not None:
        session.rollback()


def _close_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.close()


class _WriteLock:
    """A thread lock, plus an flock on a file beside the database shared by the processes."""

    def __init__(self, path: str | None) -> None:
        self.pid = os.getpid()
        self.thread_lock = threading.Lock()
        # Opened in this process: an inherited descriptor would share its flock with the parent.
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600) if path else None


# One lock per SQLite engine in this process (see `serialised_writes`).
_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, _WriteLock] = weakref.WeakKeyDictionary()
_WRITE_LOCKS_GUARD = threading.Lock()
# Past this wait the request goes on without the thread lock: SQLite's busy_timeout still
# serialises it, so a stuck holder can slow the others down but never hang them.
WRITE_LOCK_TIMEOUT = 30.0


def _write_lock(engine: Engine) -> _WriteLock:
    with _WRITE_LOCKS_GUARD:
        lock = _WRITE_LOCKS.get(engine)
        if lock is None or lock.pid != os.getpid():
            database = engine.url.database
            on_disk = database and database != ":memory:" and not database.startswith("file:")
            lock = _WRITE_LOCKS[engine] = _WriteLock(f"{database}-writelock" if on_disk else None)
            if lock.fd is not None:
                weakref.finalize(engine, os.close, lock.fd)
        return lock


@contextmanager
def serialised_writes(session: Session) -> Iterator[None]:
    """SQLite: the threads and processes serving requests take turns for a write transaction.

    Every SQLite transaction begins IMMEDIATE (it holds the database's write lock), and a
    connection that finds the lock taken waits in SQLite's busy handler, which sleeps up to
    100 ms between tries. Threads queued on a thread lock, then on an flock of a file beside
    the database (shared by the gunicorn workers), wake as soon as the holder is done.
    Writers that do not use this (jobs, the web UI) still meet these in the busy handler.

    Enter it BEFORE the session's first statement and end the transaction (commit or
    rollback) inside it; whatever opens another SQLite connection (e.g. the sandbox
    telephony's outbox) must not run inside it. A session already in a transaction (it may
    hold the write lock: waiting here could deadlock), an AUTOCOMMIT bind (no write lock is
    held between statements) and PostgreSQL skip the lock. On an error the transaction is
    rolled back before the lock is released.
    """
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    if (
        engine.dialect.name != "sqlite"
        or session.in_transaction()
        or bind.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
    ):
        yield
        return
    lock = _write_lock(engine)
    acquired = lock.thread_lock.acquire(timeout=WRITE_LOCK_TIMEOUT)
    # Only the thread holding the thread lock touches the flock: it is per open file, so
    # threads sharing the descriptor would not exclude each other.
    fd = lock.fd if acquired else None
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    except BaseException:
        session.rollback()
        raise
    finally:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        if acquired:
            lock.thread_lock.release()


@contextmanager
def session_scope(app: Flask) -> Iterator[Session]:
    """A session for work outside a request (jobs, CLI); commits on success."""
    session: Session = app.extensions["ali.sessionmaker"]()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def utc_now_default() -> datetime:
    """Column default evaluated at insert time (never at import)."""
    return datetime.now(UTC)
