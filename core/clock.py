"""The clock: one injectable source of "now" so tests never sleep or patch time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from flask import current_app, has_request_context, request

ROME = ZoneInfo("Europe/Rome")
_REQUEST_NOW = "ali.now"


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock UTC time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to; used by tests and the benchmarks.

    With a ``step`` it also moves by that much after every read, as a real clock does between
    two reads: code that reads the clock twice where it means one instant then sees two.
    """

    def __init__(self, at: datetime, *, step: timedelta = timedelta(0)) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._at = at.astimezone(UTC)
        self.step = step
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            at = self._at
            self._at += self.step
            return at

    def set(self, at: datetime) -> None:
        with self._lock:
            self._at = at.astimezone(UTC)

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._at += delta
            return self._at


def now() -> datetime:
    """Current UTC instant from the application's clock, read once per request.

    Every read during one request returns the instant of the first: a request is one moment,
    so what a view works out before and after a change (a rota's gaps over the next 14 days,
    say) is measured from the same "now", whatever the clock did in between. Outside a
    request (CLI commands, the worker) each call reads the clock; jobs get ``now`` passed.
    """
    if has_request_context():
        # The WSGI environ is the request's own dict (PEP 3333 leaves dotted keys to apps).
        at: datetime | None = request.environ.get(_REQUEST_NOW)
        if at is None:
            at = request.environ[_REQUEST_NOW] = _read()
        return at
    return _read()


def _read() -> datetime:
    clock: Clock = current_app.extensions["ali.clock"]
    return clock.now()
