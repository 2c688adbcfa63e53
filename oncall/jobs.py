"""Scheduled rota work: reminders, phone checks, gap warnings."""

from __future__ import annotations

from flask import Flask

from core.scheduler import Job, register_job
from oncall import notifications

# Every minute: a reminder is due at a minute (18:00, a hand-over), and a run that finds
# nothing due costs a few small queries. The daily checks are keyed by the local date, so
# running them often only makes them punctual after a restart.
REMINDERS = Job(id="oncall.reminders", func=notifications.send_shift_reminders, seconds=60)
PHONE_CHECK = Job(id="oncall.phone_check", func=notifications.check_rostered_phones, seconds=300)
GAP_WARNINGS = Job(id="oncall.gap_warnings", func=notifications.warn_gaps_daily, seconds=300)

JOBS = (REMINDERS, PHONE_CHECK, GAP_WARNINGS)


def init_app(app: Flask) -> None:
    """Registers the rota jobs with the scheduler."""
    for job in JOBS:
        register_job(app, job)
