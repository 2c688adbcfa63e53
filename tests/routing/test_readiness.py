"""/readyz watches the escalation: an open dispatch more than 60 s past due makes Ali unready."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from core.scheduler import registered_jobs, run_job
from tests.alerting import Chain, Phone, dispatch_of
from tests.intake.signed import Sender

EMERGENCY = {"external_id": "NV-1", "province": "BS", "urgency": "emergency"}


def beat(app: Flask) -> None:
    [heartbeat] = [job for job in registered_jobs(app) if job.id == "core.heartbeat"]
    run_job(app, heartbeat)


def test_an_overdue_dispatch_makes_readyz_fail_naming_it(
    app: Flask,
    client: FlaskClient,
    sender: Sender,
    chain: Chain,
    phone: Phone,
    db: Session,
    clock: FrozenClock,
) -> None:
    sender.post(EMERGENCY)
    due = dispatch_of(db, "BS-2026-0001").due_at
    assert due == clock.now() + timedelta(minutes=3)
    beat(app)
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json is not None
    assert ready.json["checks"]["escalation"] == {"status": "ok", "overdue_dispatches": 0}

    # The worker beats but its escalation does not run: a minute late is still tolerated...
    clock.advance(timedelta(minutes=4))
    beat(app)
    assert client.get("/readyz").status_code == 200
    # ...61 s late is not.
    clock.advance(timedelta(seconds=1))
    beat(app)
    late = client.get("/readyz")
    assert late.status_code == 503
    assert late.json is not None
    assert late.json["status"] == "unavailable"
    assert late.json["failing"] == ["escalation"]
    assert late.json["checks"]["escalation"] == {
        "status": "overdue",
        "overdue_dispatches": 1,
        "most_overdue_seconds": 61.0,
    }
    assert late.json["checks"]["worker"]["status"] == "ok"
    assert "BS-2026" not in late.get_data(as_text=True)

    # The escalation runs: the step fires, the next one is due in the future, ready again.
    phone.tick()
    assert client.get("/readyz").status_code == 200


def test_a_stale_heartbeat_and_an_overdue_dispatch_are_both_named(
    app: Flask, client: FlaskClient, sender: Sender, chain: Chain, clock: FrozenClock
) -> None:
    sender.post(EMERGENCY)
    beat(app)
    clock.advance(timedelta(minutes=10))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json is not None
    assert response.json["failing"] == ["worker", "escalation"]
    assert response.json["checks"]["worker"]["status"] == "stale"


def test_accepted_and_exhausted_dispatches_are_never_overdue(
    app: Flask, client: FlaskClient, sender: Sender, chain: Chain, phone: Phone, db: Session
) -> None:
    sender.post(EMERGENCY)
    [call] = phone.calls_to(chain.primary)
    phone.press(call.sid, "1")
    phone.clock.advance(timedelta(hours=2))
    beat(app)
    assert client.get("/readyz").status_code == 200
