"""GET /metrics: a Bearer token, figures read from the database, no personal data in labels."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from core.config import Settings, load_settings
from core.models import WorkerHeartbeat
from tests.alerting import Chain, Phone
from tests.conftest import ali_environ
from tests.intake.signed import Sender
from tests.twilio_standin import TwilioStandIn

TOKEN = "metrics-token-" + "m" * 30
EMERGENCY = {
    "external_id": "NV-1",
    "province": "BS",
    "urgency": "emergency",
    "summary": "Maria, 19 anni, chiede aiuto in via Roma",
    "callback_phone": "+393337654321",
}
# Every label value /metrics may carry: codes and the source's name, nothing about a person.
ALLOWED_LABELS = {
    "source": {"numero-verde"},
    "outcome": {"open", "accepted", "exhausted", "none"},
    "channel": {"sms", "voice"},
}


@pytest.fixture
def settings(database_url: str, tmp_path: Path, twilio: TwilioStandIn) -> Settings:
    return load_settings(
        ali_environ(
            database_url, tmp_path, ALI_TWILIO_API_BASE=twilio.base_url, ALI_METRICS_TOKEN=TOKEN
        )
    )


def scrape(client: FlaskClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=")
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_metrics_need_the_bearer_token(client: FlaskClient) -> None:
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"].startswith("Bearer")
    basic = client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_without_a_configured_token_there_is_no_metrics_endpoint(
    database_url: str, tmp_path: Path, twilio: TwilioStandIn, engine: object, clock: FrozenClock
) -> None:
    from core.app import create_app  # noqa: PLC0415

    app = create_app(
        load_settings(ali_environ(database_url, tmp_path, ALI_TWILIO_API_BASE=twilio.base_url)),
        clock=clock,
        engine=engine,  # type: ignore[arg-type]
    )
    client = app.test_client()
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


def test_metrics_follow_a_case_from_hand_off_to_unanswered_without_personal_labels(
    client: FlaskClient, sender: Sender, chain: Chain, phone: Phone, db: Session, clock: FrozenClock
) -> None:
    before = scrape(client)
    assert math.isinf(before["ali_worker_heartbeat_age_seconds", ()])
    assert before["ali_unanswered_cases", ()] == 0
    assert before["ali_escalation_lateness_seconds", ()] == 0

    assert sender.post(EMERGENCY).status_code == 201
    db.add(WorkerHeartbeat(name="worker-1", beat_at=clock.now() - timedelta(seconds=30), pid=1))
    db.commit()
    now = scrape(client)
    assert now["ali_handoffs_received_total", (("source", "numero-verde"),)] == 1
    assert now["ali_handoffs", (("outcome", "open"), ("source", "numero-verde"))] == 1
    assert now["ali_worker_heartbeat_age_seconds", ()] == 30
    sms = [v for (n, tags), v in now.items() if n == "ali_pages" and ("channel", "sms") in tags]
    assert sum(sms) == 1

    # The worker misses the next step by 40 seconds: the lateness shows it at the scrape.
    clock.advance(timedelta(minutes=3, seconds=40))
    late = scrape(client)
    assert late["ali_escalation_lateness_seconds", ()] == 40
    assert late["ali_escalation_steps_overdue", ()] == 1

    for minutes in (0, 3, 5, 5, 5, 5):
        phone.tick(minutes=minutes)
    after = scrape(client)
    assert after["ali_unanswered_cases", ()] == 1
    assert after["ali_handoffs", (("outcome", "exhausted"), ("source", "numero-verde"))] == 1
    assert after["ali_escalation_lateness_seconds", ()] == 0

    body = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(
        as_text=True
    )
    for secret in ("Maria", "3337654321", "BS-2026", "Primaria", chain.primary.phone or "?"):
        assert secret not in body
    for _name, labels in after:
        for key, value in labels:
            if key in ALLOWED_LABELS:
                assert value in ALLOWED_LABELS[key], (key, value)
            else:
                assert key == "status", key
                assert value.isalpha(), value
