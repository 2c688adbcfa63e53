"""One instant per request, whatever the clock does between two reads."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from core.clock import FrozenClock, now
from tests.conftest import T0


def test_a_moving_clock_moves_at_every_read() -> None:
    clock = FrozenClock(T0, step=timedelta(seconds=1))
    assert [clock.now(), clock.now()] == [T0, T0 + timedelta(seconds=1)]


def test_a_request_reads_one_instant(app: Flask, clock: FrozenClock) -> None:
    clock.step = timedelta(seconds=1)
    with app.test_request_context("/"):
        first = now()
        assert now() == first
    with app.test_request_context("/"):
        assert now() > first
    # Outside a request (a CLI command, the worker) every read is a new instant.
    with app.app_context():
        assert now() < now()
