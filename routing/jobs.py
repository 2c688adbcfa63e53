"""Routing's scheduled work: the escalation tick and the reminders about cases in hand."""

from __future__ import annotations

from flask import Flask

from core.scheduler import Job, register_job
from oncall.notifications import add_handover_source
from routing.dispatch import escalate
from routing.reminders import open_cases_left, remind_unworked_cases

# Short: a step's skip or a crash's leftovers wait at most this long for the worker.
ESCALATION_SECONDS = 2
FOLLOW_UP_SECONDS = 60


def init_app(app: Flask) -> None:
    register_job(app, Job(id="routing.escalate", func=escalate, seconds=ESCALATION_SECONDS))
    register_job(
        app, Job(id="routing.follow_up", func=remind_unworked_cases, seconds=FOLLOW_UP_SECONDS)
    )
    # The next operator on call hears which cases the outgoing one leaves open.
    add_handover_source(app, open_cases_left)
