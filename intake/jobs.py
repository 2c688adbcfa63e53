"""Intake's scheduled work: raw texts of inbound SMS emptied after the retention period."""

from __future__ import annotations

from datetime import datetime

from flask import Flask
from sqlalchemy.orm import Session

from core.config import get_settings
from core.scheduler import Job, register_job
from core.telephony import Telephony
from intake.sms import purge_raw_texts

# Hourly: the retention is counted in days, and a run that finds nothing costs one UPDATE.
PURGE_SECONDS = 3600


def purge_expired_raw_texts(session: Session, _telephony: Telephony, now: datetime) -> int:
    return purge_raw_texts(session, now=now, retention_days=get_settings().raw_text_retention_days)


def init_app(app: Flask) -> None:
    register_job(
        app, Job(id="intake.purge_raw_texts", func=purge_expired_raw_texts, seconds=PURGE_SECONDS)
    )
