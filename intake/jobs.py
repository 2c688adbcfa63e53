"""Intake's scheduled work: raw texts of inbound SMS emptied after the retention period;
closed and non-pertinent cases pseudonymised after theirs."""

from __future__ import annotations

from datetime import datetime

from flask import Flask
from sqlalchemy.orm import Session

from core.config import get_settings
from core.scheduler import Job, register_job
from core.telephony import Telephony
from intake import calls
from intake.retention import RetentionCounts, record_run, retain_cases
from intake.sms import purge_raw_texts
from routing.dispatch import run_follow_up

# Hourly: the retention is counted in days, and a run that finds nothing costs one UPDATE.
PURGE_SECONDS = 3600
# Hourly too: periods are months and days, a run with nothing due costs two SELECTs, and a
# worker restarted at every deploy still gets to run it.
RETENTION_SECONDS = 3600
# Every minute: a call left without a case is a person waiting for a callback.
STALLED_SECONDS = 60


def purge_expired_raw_texts(session: Session, _telephony: Telephony, now: datetime) -> int:
    return purge_raw_texts(session, now=now, retention_days=get_settings().raw_text_retention_days)


def retain_expired_cases(session: Session, _telephony: Telephony, now: datetime) -> dict[str, int]:
    """Pseudonymise the cases past their retention; a run that did something is audited with
    its counts (an hourly entry saying "nothing" would bury the ones that matter)."""
    counts = retain_cases(session, now=now)
    if counts != RetentionCounts():
        record_run(session, counts, now=now, actor="worker")
    return counts.as_dict()


def recover_stalled_calls(session: Session, telephony: Telephony, now: datetime) -> int:
    """Partner calls whose Twilio callbacks never came: each becomes its missed-call case,
    committed on its own and paged at once (the escalation job goes on from there)."""
    recovered = 0
    for call_id in calls.stalled_calls(session, now):
        follow_up = calls.recover_stalled_call(session, call_id, now)
        session.commit()
        if follow_up:
            recovered += 1
            run_follow_up(session, telephony, now, follow_up)
    return recovered


def init_app(app: Flask) -> None:
    register_job(
        app, Job(id="intake.purge_raw_texts", func=purge_expired_raw_texts, seconds=PURGE_SECONDS)
    )
    register_job(
        app, Job(id="intake.retention", func=retain_expired_cases, seconds=RETENTION_SECONDS)
    )
    register_job(
        app, Job(id="intake.stalled_calls", func=recover_stalled_calls, seconds=STALLED_SECONDS)
    )
