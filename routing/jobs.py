"""Routing's scheduled work: the escalation tick."""

from __future__ import annotations

from flask import Flask

from core.scheduler import Job, register_job
from routing.dispatch import escalate

# Short: a step's skip or a crash's leftovers wait at most this long for the worker.
ESCALATION_SECONDS = 2


def init_app(app: Flask) -> None:
    register_job(app, Job(id="routing.escalate", func=escalate, seconds=ESCALATION_SECONDS))
