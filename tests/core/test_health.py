"""Health, readiness with the worker heartbeat, error pages and the scheduler's jobs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from core.db import get_session
from core.models import User, WorkerHeartbeat
from core.scheduler import registered_jobs, run_job, worker_name
from tests.conftest import T0, UserFactory


def test_healthz_answers_without_the_database(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_reports_the_worker_heartbeat(
    app: Flask, client: FlaskClient, clock: FrozenClock
) -> None:
    never = client.get("/readyz")
    assert never.status_code == 503
    assert never.json is not None
    assert never.json["checks"]["worker"]["status"] == "never_seen"

    [heartbeat] = [job for job in registered_jobs(app) if job.id == "core.heartbeat"]
    run_job(app, heartbeat)
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json is not None
    assert ready.json["checks"]["database"] == "ok"
    assert ready.json["checks"]["worker"] == {
        "status": "ok",
        "last_heartbeat": clock.now().isoformat(),
        "age_seconds": 0.0,
    }
    assert ready.json["failing"] == []

    clock.advance(timedelta(minutes=5))
    stale = client.get("/readyz")
    assert stale.status_code == 503
    assert stale.json is not None
    assert stale.json["checks"]["worker"]["status"] == "stale"
    assert stale.json["failing"] == ["worker"]
    run_job(app, heartbeat)
    assert client.get("/readyz").status_code == 200


def test_error_pages_leak_nothing(app: Flask, client: FlaskClient) -> None:
    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret detail of a case")

    missing = client.get("/no-such-page")
    assert missing.status_code == 404
    assert "Questa pagina non esiste" in missing.get_data(as_text=True)
    crash = client.get("/boom")
    assert crash.status_code == 500
    assert "secret detail" not in crash.get_data(as_text=True)
    api = client.get("/api/v1/nothing")
    assert api.status_code == 404
    assert api.json is not None
    assert api.json["status"] == 404


def test_static_assets_are_served_locally(client: FlaskClient) -> None:
    with client.get("/static/ali.css") as response:
        assert response.status_code == 200
    page = client.get("/login").get_data(as_text=True)
    assert "https://" not in page.split("<footer>")[0]


def test_a_database_error_is_logged_without_the_rows_personal_data(
    app: Flask, client: FlaskClient, make_user: UserFactory, caplog: pytest.LogCaptureFixture
) -> None:
    make_user(email="maria.rossi@ali.example", name="Maria Rossi", phone="+393331112222")

    @app.get("/duplicate")
    def duplicate() -> str:
        session = get_session()
        session.add(
            User(
                email="maria.rossi@ali.example",
                display_name="Maria Rossi",
                phone="+393339998888",
                created_at=T0,
            )
        )
        session.commit()
        return "unreachable"

    response = client.get("/duplicate")
    assert response.status_code == 500
    assert "IntegrityError" in caplog.text  # operators still see what failed, and where
    for personal in ("maria.rossi", "Maria Rossi", "3331112222", "3339998888"):
        assert personal not in caplog.text
        assert personal not in response.get_data(as_text=True)


def test_heartbeats_of_long_dead_workers_are_forgotten(
    app: Flask, clock: FrozenClock, db: Session
) -> None:
    db.add(WorkerHeartbeat(name="old-host:1", beat_at=clock.now() - timedelta(days=2), pid=1))
    db.commit()
    [heartbeat] = [job for job in registered_jobs(app) if job.id == "core.heartbeat"]
    run_job(app, heartbeat)
    names = db.scalars(select(WorkerHeartbeat.name)).all()
    assert names == [worker_name()]
