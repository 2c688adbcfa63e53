"""Scheduled jobs: the only importer of APScheduler; one scheduler process runs them all."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask
from sqlalchemy import delete
from sqlalchemy.orm import Session

from core.db import session_scope
from core.models import WorkerHeartbeat
from core.telephony import Telephony

log = logging.getLogger(__name__)

JobFunction = Callable[[Session, Telephony, datetime], object]
HEARTBEAT_SECONDS = 5
HEARTBEAT_FRESH = timedelta(seconds=60)
HEARTBEAT_KEEP = timedelta(days=1)


@dataclass(frozen=True)
class Job:
    """A plain function of (session, telephony, now) run every `seconds` by the worker."""

    id: str
    func: JobFunction
    seconds: float


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def heartbeat(session: Session, _telephony: Telephony, now: datetime) -> None:
    """Tell /readyz this scheduler is alive."""
    name = worker_name()
    # Each worker start beats under a new name (host:pid); forget the long-dead ones.
    session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.beat_at < now - HEARTBEAT_KEEP))
    row = session.get(WorkerHeartbeat, name)
    if row is None:
        session.add(WorkerHeartbeat(name=name, beat_at=now, pid=os.getpid()))
    else:
        row.beat_at = now


def register_job(app: Flask, job: Job) -> None:
    jobs: dict[str, Job] = app.extensions.setdefault("ali.jobs", {})
    if job.id in jobs:
        raise ValueError(f"job id {job.id} registered twice")
    jobs[job.id] = job


def registered_jobs(app: Flask) -> list[Job]:
    jobs: dict[str, Job] = app.extensions.get("ali.jobs", {})
    return list(jobs.values())


def run_job(app: Flask, job: Job) -> object:
    """One run of a job in its own app context and transaction (committed on success)."""
    with app.app_context(), session_scope(app) as session:
        now = app.extensions["ali.clock"].now()
        return job.func(session, app.extensions["ali.telephony"], now)


def _safe_run(app: Flask, job: Job) -> None:
    try:
        run_job(app, job)
    except Exception:
        # One failing run must not stop the scheduler; the next tick retries.
        log.exception("job %s failed", job.id)


def _configure(scheduler: Any, app: Flask) -> Any:
    for job in registered_jobs(app):
        scheduler.add_job(
            _safe_run,
            "interval",
            seconds=job.seconds,
            args=(app, job),
            id=job.id,
            name=job.id,
            max_instances=1,
            coalesce=True,
            next_run_time=app.extensions["ali.clock"].now(),
            replace_existing=True,
        )
    return scheduler


def start_background(app: Flask) -> Any:
    """The in-process scheduler of `ali run` (embedded mode); never under gunicorn."""
    scheduler = _configure(BackgroundScheduler(timezone="UTC", daemon=True), app)
    scheduler.start()
    log.info("in-process scheduler started with %d jobs", len(registered_jobs(app)))
    return scheduler


def run_blocking(app: Flask) -> None:
    """`ali worker`: run every job until interrupted."""
    scheduler = _configure(BlockingScheduler(timezone="UTC"), app)
    log.info("worker %s starting with %d jobs", worker_name(), len(registered_jobs(app)))
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("worker stopping")


def init_app(app: Flask) -> None:
    register_job(app, Job(id="core.heartbeat", func=heartbeat, seconds=HEARTBEAT_SECONDS))
