"""The clock: one injectable source of "now" so tests never sleep or patch time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from flask import current_app

ROME = ZoneInfo("Europe/Rome")


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock UTC time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to; used by tests and the benchmarks."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._at = at.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._at

    def set(self, at: datetime) -> None:
        with self._lock:
            self._at = at.astimezone(UTC)

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._at += delta
            return self._at


def now() -> datetime:
    """Current UTC instant from the application's clock."""
    clock: Clock = current_app.extensions["ali.clock"]
    return clock.now()


def to_local(at: datetime) -> datetime:
    """An instant shown in Europe/Rome, where every user of Ali lives."""
    return at.astimezone(ROME)
