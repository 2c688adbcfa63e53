"""Outbound SMS and calls through the real twilio client, and signed status callbacks."""

from __future__ import annotations

import threading
import time

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from core.config import Settings
from core.models import DeliveryStatus, OutboxMessage
from core.telephony import SandboxTelephony, TelephonyError, TwilioTelephony
from tests.conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    OLD_AUTH_TOKEN,
    PUBLIC_URL,
    UserFactory,
    login,
)
from tests.twilio_standin import TwilioStandIn, TwilioWebhooks, flask_transport

STATUS_URL = f"{PUBLIC_URL}/twilio/status"


@pytest.fixture
def telephony(settings: Settings) -> TwilioTelephony:
    return TwilioTelephony(settings)


@pytest.fixture
def hooks(client: FlaskClient) -> TwilioWebhooks:  # type: ignore[type-arg]
    return TwilioWebhooks(AUTH_TOKEN, ACCOUNT_SID, flask_transport(client, PUBLIC_URL))


def test_sms_goes_through_the_real_client_and_its_signed_status_is_accepted(
    telephony: TwilioTelephony, twilio: TwilioStandIn, client: FlaskClient, db: Session
) -> None:
    sid = telephony.send_sms(
        to="+393331234567", body="ALI BS-2026-0001", status_callback=STATUS_URL
    )
    assert sid.startswith("SM")
    [message] = twilio.messages
    assert message.to == "+393331234567"
    assert message.status_callback == STATUS_URL

    response = twilio.send_message_status(
        sid, "delivered", flask_transport(client, PUBLIC_URL), AUTH_TOKEN
    )
    assert response.status_code == 204
    row = db.get(DeliveryStatus, sid)
    assert row is not None
    assert row.status == "delivered"


def test_call_carries_status_events_and_answering_machine_detection(
    telephony: TwilioTelephony, twilio: TwilioStandIn, client: FlaskClient, db: Session
) -> None:
    sid = telephony.place_call(
        to="+393331234567",
        url=f"{PUBLIC_URL}/twilio/alert-call",
        status_callback=STATUS_URL,
        amd_callback=f"{PUBLIC_URL}/twilio/amd",
    )
    call = twilio.call(sid)
    request = next(r for r in twilio.requests if r.path.endswith("/Calls.json"))
    assert request.form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert request.param("AsyncAmd") == "true"
    assert request.param("MachineDetection") == "DetectMessageEnd"
    assert call.status_callback == STATUS_URL

    transport = flask_transport(client, PUBLIC_URL)
    assert twilio.send_call_status(sid, "ringing", transport, AUTH_TOKEN).status_code == 204
    assert twilio.send_call_status(sid, "completed", transport, AUTH_TOKEN).status_code == 204
    row = db.get(DeliveryStatus, sid)
    assert row is not None
    assert row.status == "completed"


def test_forged_and_unsigned_callbacks_get_403_and_change_nothing(
    hooks: TwilioWebhooks,
    db: Session,  # type: ignore[type-arg]
) -> None:
    forged = hooks.post(
        STATUS_URL,
        {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered"},
        signature="bm90IGEgc2lnbmF0dXJl",
    )
    unsigned = hooks.post(STATUS_URL, {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered"})
    wrong_token = TwilioWebhooks("0" * 32, ACCOUNT_SID, hooks.transport).message_status(
        STATUS_URL, "SM" + "1" * 32, "delivered"
    )
    assert forged.status_code == 403
    assert unsigned.status_code == 403
    assert wrong_token.status_code == 403
    assert db.scalars(select(DeliveryStatus)).all() == []


def test_the_previous_auth_token_still_works_during_rotation(
    client: FlaskClient, db: Session
) -> None:
    old = TwilioWebhooks(OLD_AUTH_TOKEN, ACCOUNT_SID, flask_transport(client, PUBLIC_URL))
    assert old.message_status(STATUS_URL, "SM" + "2" * 32, "sent").status_code == 204


def test_a_late_status_never_overwrites_a_later_one(
    hooks: TwilioWebhooks,
    db: Session,  # type: ignore[type-arg]
) -> None:
    sid = "SM" + "3" * 32
    assert hooks.message_status(STATUS_URL, sid, "delivered").status_code == 204
    assert hooks.message_status(STATUS_URL, sid, "sent").status_code == 204
    assert hooks.message_status(STATUS_URL, sid, "delivered").status_code == 204
    row = db.get(DeliveryStatus, sid)
    assert row is not None
    assert row.status == "delivered"
    assert [h["status"] for h in row.history] == ["delivered", "sent", "delivered"]


def test_a_malformed_callback_is_a_clear_400(hooks: TwilioWebhooks) -> None:  # type: ignore[type-arg]
    assert hooks.signed_post(STATUS_URL, {"Foo": "bar"}).status_code == 400
    unknown = hooks.signed_post(
        STATUS_URL, {"MessageSid": "SM" + "4" * 32, "MessageStatus": "lost"}
    )
    assert unknown.status_code == 400


def test_twilio_errors_surface_with_their_code(
    telephony: TwilioTelephony, twilio: TwilioStandIn
) -> None:
    with pytest.raises(TelephonyError) as invalid:
        telephony.send_sms(to="+3912", body="x")
    assert invalid.value.code == 21211
    assert not invalid.value.retryable

    twilio.fail_next(1, 429, 20429, "Too Many Requests")
    with pytest.raises(TelephonyError) as throttled:
        telephony.send_sms(to="+393331234567", body="x")
    assert throttled.value.retryable

    twilio.fail_next(1, 500, None, "boom")
    with pytest.raises(TelephonyError) as down:
        telephony.place_call(to="+393331234567", url=f"{PUBLIC_URL}/x")
    assert down.value.retryable


def test_wrong_credentials_are_error_20003(settings: Settings, twilio: TwilioStandIn) -> None:
    from dataclasses import replace  # noqa: PLC0415

    bad = TwilioTelephony(replace(settings, twilio_auth_tokens=("0" * 32,)))
    with pytest.raises(TelephonyError) as error:
        bad.send_sms(to="+393331234567", body="x")
    assert error.value.code == 20003


def test_sandbox_stores_the_outbox_and_admins_see_it(
    app: Flask, client: FlaskClient, make_user: UserFactory, db: Session, clock: FrozenClock
) -> None:
    sandbox = SandboxTelephony(app.extensions["ali.sessionmaker"], clock, "+390200000000")
    sid = sandbox.send_sms(to="+393331234567", body="ALI BS-2026-0001 EMERGENZA")
    call_sid = sandbox.place_call(to="+393331234567", url=f"{PUBLIC_URL}/twilio/alert-call")
    rows = db.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert [r.sid for r in rows] == [sid, call_sid]

    make_user(email="op@ali.example")
    login(client, "op@ali.example")
    assert client.get("/sandbox").status_code == 403


def test_sandbox_page_lists_messages_for_admins_in_embedded_mode(
    database_url: str, engine: object, tmp_path: object, make_user: UserFactory, clock: FrozenClock
) -> None:
    from pathlib import Path  # noqa: PLC0415

    from core.app import create_app  # noqa: PLC0415
    from core.config import load_settings  # noqa: PLC0415
    from tests.conftest import ali_environ  # noqa: PLC0415

    assert isinstance(tmp_path, Path)
    env = ali_environ(database_url, tmp_path)
    for name in ("ALI_TWILIO_ACCOUNT_SID", "ALI_TWILIO_AUTH_TOKEN"):
        env.pop(name)
    app = create_app(load_settings(env), clock=clock, engine=engine)  # type: ignore[arg-type]
    telephony = app.extensions["ali.telephony"]
    assert isinstance(telephony, SandboxTelephony)
    telephony.send_sms(to="+393331234567", body="ALI BS-2026-0007 URGENTE")
    make_user(email="admin@ali.example", roles=("admin",), provinces=())
    client = app.test_client()
    login(client, "admin@ali.example")
    page = client.get("/sandbox")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "ALI BS-2026-0007 URGENTE" in html
    assert 'href="/sandbox"' in client.get("/").get_data(as_text=True)


def test_a_signed_callback_with_out_of_range_values_is_a_400_or_ignored_never_a_500(
    hooks: TwilioWebhooks,  # type: ignore[type-arg]
    db: Session,
) -> None:
    too_long = hooks.signed_post(
        STATUS_URL, {"MessageSid": "XX" + "1" * 100, "MessageStatus": "sent"}
    )
    assert too_long.status_code == 400
    sid = "CA" + "5" * 32
    odd = hooks.signed_post(
        STATUS_URL,
        {"CallSid": sid, "CallStatus": "completed", "AnsweredBy": "x" * 100, "ErrorCode": "9" * 30},
    )
    assert odd.status_code == 204
    row = db.get(DeliveryStatus, sid)
    assert row is not None
    assert (row.status, row.answered_by, row.error_code) == ("completed", None, None)


def test_two_first_callbacks_for_one_sid_at_once_are_both_recorded(
    app: Flask,
    engine: Engine,
    hooks: TwilioWebhooks,
    db: Session,
    clock: FrozenClock,  # type: ignore[type-arg]
) -> None:
    sid = "CA" + "6" * 32
    # Another request is inserting this sid's first status and has not committed yet.
    other = Session(engine)
    other.add(
        DeliveryStatus(
            sid=sid,
            kind="call",
            status="initiated",
            history=[{"status": "initiated", "at": clock.now().isoformat()}],
            updated_at=clock.now(),
        )
    )
    other.flush()
    answers: list[int] = []
    callback = threading.Thread(
        target=lambda: answers.append(hooks.call_status(STATUS_URL, sid, "ringing").status_code)
    )
    callback.start()
    if engine.dialect.name == "postgresql":
        # Commit only once the callback's INSERT waits on ours, so the race really happens.
        deadline = time.monotonic() + 20
        waiting = 0
        while not waiting and time.monotonic() < deadline:
            waiting = (
                db.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                    )
                )
                or 0
            )
        assert waiting, "the callback never reached the insert"
    other.commit()
    other.close()
    callback.join(timeout=30)
    assert answers == [204]
    row = db.get(DeliveryStatus, sid)
    assert row is not None
    assert row.status == "ringing"
    assert [h["status"] for h in row.history] == ["initiated", "ringing"]


def test_an_oversized_callback_is_413_not_403(client: FlaskClient) -> None:
    response = client.post(
        "/twilio/status",
        data={"MessageSid": "SM" + "5" * 32, "Body": "x" * (2 * 1024 * 1024)},
        headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"},
    )
    assert response.status_code == 413
