"""Routing's scheduled work: the escalation tick, the readiness check that watches it, and the
reminders about cases in hand."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.readiness import Readiness, register_readiness_check
from core.scheduler import Job, register_job
from oncall.notifications import add_handover_source
from routing.dispatch import escalate
from routing.models import Dispatch, DispatchState
from routing.reminders import open_cases_left, remind_unworked_cases

# Short: a step's skip or a crash's leftovers wait at most this long for the worker.
ESCALATION_SECONDS = 2
FOLLOW_UP_SECONDS = 60
# A step later than this is a worker that is stuck, dead or swamped: page a human about Ali.
OVERDUE_AFTER = timedelta(seconds=60)


def escalation_readiness(session: Session, now: datetime) -> Readiness:
    """Not ready while any open dispatch is more than OVERDUE_AFTER past its due_at."""
    count, oldest = session.execute(
        select(func.count(), func.min(Dispatch.due_at)).where(
            Dispatch.state == DispatchState.OPEN, Dispatch.due_at < now - OVERDUE_AFTER
        )
    ).one()
    if not count or oldest is None:
        return Readiness("ok", {"overdue_dispatches": 0})
    return Readiness(
        "overdue",
        {
            "overdue_dispatches": count,
            "most_overdue_seconds": round((now - oldest).total_seconds(), 1),
        },
    )


def init_app(app: Flask) -> None:
    register_job(app, Job(id="routing.escalate", func=escalate, seconds=ESCALATION_SECONDS))
    register_job(
        app, Job(id="routing.follow_up", func=remind_unworked_cases, seconds=FOLLOW_UP_SECONDS)
    )
    # The next operator on call hears which cases the outgoing one leaves open.
    add_handover_source(app, open_cases_left)
    register_readiness_check(app, "escalation", escalation_readiness)
