"""Calling back through Ali end to end: the case page's button (login, CSRF), the real twilio
client placing the operator's call at the stand-in, Twilio's signed requests for the TwiML
(parsed as XML), the Dial's result recorded as a case event with its duration."""

from __future__ import annotations

import logging
from typing import Any
from xml.etree import ElementTree

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from core.models import User
from intake.models import CaseCallback
from routing.models import Case, CaseEvent
from tests.alerting import Chain, Phone
from tests.conftest import FROM_NUMBER, PUBLIC_URL, UserFactory, csrf_token, login
from tests.intake.signed import Sender
from tests.twilio_standin import gather_action_url

PERSON = "+393337654321"
HANDOFF = {
    "external_id": "NV-cb",
    "province": "BS",
    "urgency": "emergency",
    "callback_phone": PERSON,
    "contact_safe": "yes",
}
CASE_PAGE = "/cases/BS-2026-0001"


def open_case(sender: Sender, db: Session, *, contact_safe: str = "yes") -> None:
    """A hand-off with a callback number; then the case's contact_safe as a worker set it."""
    sender.post(HANDOFF)
    db.execute(update(Case).values(contact_safe=contact_safe))


def calls_back(phone: Phone, user: User) -> list[Any]:
    """The calls Ali placed to `user` for a call back (not the case's alert calls)."""
    return [c for c in phone.calls_to(user) if "/twilio/callback/" in (c.url or "")]


def twiml(response: TestResponse) -> ElementTree.Element:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/xml"
    return ElementTree.fromstring(response.get_data(as_text=True))  # noqa: S314 -- our TwiML


def call_back(client: FlaskClient, **form: str) -> TestResponse:
    token = csrf_token(client.get(CASE_PAGE).get_data(as_text=True))
    return client.post(f"{CASE_PAGE}/callback", data={"csrf_token": token, **form})


def callbacks(db: Session) -> list[CaseCallback]:
    db.expire_all()
    return list(db.scalars(select(CaseCallback).order_by(CaseCallback.id)))


def callback_events(db: Session) -> list[CaseEvent]:
    db.expire_all()
    return list(
        db.scalars(
            select(CaseEvent)
            .where(CaseEvent.kind.in_(["callback_started", "callback"]))
            .order_by(CaseEvent.id)
        )
    )


def dial_done(phone: Phone, url: str, call_sid: str, status: str, duration: int) -> TestResponse:
    """Twilio's request to the <Dial action> when the dialled leg ends."""
    return phone.hooks.signed_post(
        url,
        {
            "AccountSid": phone.twilio.account_sid,
            "CallSid": call_sid,
            "CallStatus": "in-progress",
            "DialCallSid": "CA" + "1" * 32,
            "DialCallStatus": status,
            "DialCallDuration": str(duration),
            "Direction": "outbound-api",
        },
    )


def test_a_call_back_bridges_the_operator_to_the_person_with_the_projects_number(
    client: FlaskClient, sender: Sender, chain: Chain, phone: Phone, db: Session
) -> None:
    open_case(sender, db)
    login(client, chain.primary.email)
    page = client.get(CASE_PAGE).get_data(as_text=True)
    assert "Richiama" in page
    assert 'name="confirm"' not in page  # contact_safe yes: nothing to confirm
    response = call_back(client)
    assert response.status_code == 302
    assert "Ali sta chiamando il tuo telefono" in client.get(CASE_PAGE).get_data(as_text=True)

    [call] = calls_back(phone, chain.primary)
    assert call.from_ == FROM_NUMBER
    assert call.url == f"{PUBLIC_URL}/twilio/callback/1/answer"
    assert PERSON[3:] not in (call.url + (call.status_callback or ""))
    assert call.machine_detection is None  # the operator's key, not a guess, starts the dial

    # The operator picks up: a prompt, and nothing is dialled before 1.
    answered = twiml(phone.answer(call.sid))
    gather = answered.find("Gather")
    assert gather is not None
    assert gather.get("numDigits") == "1"
    say = gather.find("Say")
    assert say is not None
    assert say.get("language") == "it-IT"
    assert "B S 2 0 2 6 0 0 0 1" in (say.text or "")
    assert answered.find("Dial") is None

    action = gather_action_url(phone.answer(call.sid).get_data(as_text=True), call.url or "")
    connected = twiml(phone.twilio.send_gather(call.sid, "1", action, phone.hooks.transport))
    dial = connected.find("Dial")
    assert dial is not None
    assert dial.get("callerId") == FROM_NUMBER
    number = dial.find("Number")
    assert number is not None
    assert number.text == PERSON
    done_url = dial.get("action") or ""
    assert done_url == f"{PUBLIC_URL}/twilio/callback/1/done"

    hung_up = twiml(dial_done(phone, done_url, call.sid, "completed", 125))
    assert hung_up.find("Hangup") is not None
    [row] = callbacks(db)
    assert (row.status, row.duration_seconds, row.call_sid) == ("completed", 125, call.sid)
    started, ended = callback_events(db)
    assert started.data["operator_id"] == chain.primary.id
    assert ended.data == {
        "operator_id": chain.primary.id,
        "callback_id": row.id,
        "status": "completed",
        "leg": "person",
        "duration_seconds": 125,
    }
    # Twilio repeats a request: still one event. The operator's call then completes: nothing new.
    dial_done(phone, done_url, call.sid, "completed", 125)
    phone.call_status(call.sid, "completed")
    assert len(callback_events(db)) == 2
    timeline = client.get(CASE_PAGE).get_data(as_text=True)
    assert "Richiamata conclusa" in timeline
    assert "125 s" in timeline


def test_a_number_not_known_safe_needs_the_operators_confirmation(
    client: FlaskClient, sender: Sender, chain: Chain, phone: Phone, db: Session
) -> None:
    open_case(sender, db, contact_safe="unknown")
    login(client, chain.primary.email)
    page = client.get(CASE_PAGE).get_data(as_text=True)
    assert "non noto" in page
    assert 'name="confirm"' in page
    call_back(client)
    refused = client.get(CASE_PAGE).get_data(as_text=True)
    assert "spunta la casella per confermare" in refused
    assert calls_back(phone, chain.primary) == []
    assert callbacks(db) == []

    call_back(client, confirm="1")
    assert len(calls_back(phone, chain.primary)) == 1
    [row] = callbacks(db)
    assert (row.contact_safe, row.confirmed) == ("unknown", True)
    [started] = callback_events(db)
    assert started.data["confirmed"] is True


def test_no_key_pressed_dials_nobody_and_the_call_back_ends_cancelled(
    client: FlaskClient, sender: Sender, chain: Chain, phone: Phone, db: Session
) -> None:
    open_case(sender, db)
    login(client, chain.primary.email)
    call_back(client)
    [call] = calls_back(phone, chain.primary)
    answered = phone.answer(call.sid).get_data(as_text=True)
    redirect = twiml(phone.answer(call.sid)).find("Redirect")
    assert redirect is not None
    no_key = twiml(phone.hooks.signed_post(redirect.text or "", {"CallSid": call.sid}))
    assert no_key.find("Dial") is None
    assert no_key.find("Hangup") is not None
    action = gather_action_url(answered, call.url or "")
    wrong = twiml(phone.twilio.send_gather(call.sid, "7", action, phone.hooks.transport))
    assert wrong.find("Dial") is None
    phone.call_status(call.sid, "completed")
    [row] = callbacks(db)
    assert (row.status, row.duration_seconds) == ("canceled", 0)
    assert callback_events(db)[-1].data["leg"] == "operator"


def test_an_operator_whose_phone_does_not_answer_is_recorded(
    client: FlaskClient, sender: Sender, chain: Chain, phone: Phone, db: Session
) -> None:
    open_case(sender, db)
    login(client, chain.primary.email)
    call_back(client)
    [call] = calls_back(phone, chain.primary)
    phone.call_status(call.sid, "no-answer")
    assert callbacks(db)[0].status == "no-answer"


def test_who_may_call_back(
    client: FlaskClient,
    sender: Sender,
    chain: Chain,
    phone: Phone,
    make_user: UserFactory,
    db: Session,
) -> None:
    open_case(sender, db)
    unverified = make_user(provinces=("BS",), verified=False)
    login(client, unverified.email)
    page = client.get(CASE_PAGE).get_data(as_text=True)
    assert "ti serve un telefono verificato" in page
    call_back(client)
    assert "Il tuo telefono non è verificato" in client.get(CASE_PAGE).get_data(as_text=True)
    stranger = make_user(provinces=("BG",))
    token = csrf_token(client.get("/").get_data(as_text=True))
    client.post("/logout", data={"csrf_token": token})
    login(client, stranger.email)
    token = csrf_token(client.get("/").get_data(as_text=True))
    assert client.post(f"{CASE_PAGE}/callback", data={"csrf_token": token}).status_code == 404
    assert client.post(f"{CASE_PAGE}/callback").status_code == 400  # no CSRF token
    assert calls_back(phone, stranger) == []
    assert calls_back(phone, unverified) == []


def test_twilios_callback_steps_refuse_unsigned_requests(
    client: FlaskClient, sender: Sender, chain: Chain, phone: Phone, db: Session
) -> None:
    open_case(sender, db)
    login(client, chain.primary.email)
    call_back(client)
    for step in ("answer", "connect", "done", "status"):
        url = f"{PUBLIC_URL}/twilio/callback/1/{step}"
        params: dict[str, Any] = {"Digits": "1", "DialCallStatus": "completed"}
        assert phone.hooks.post(url, params).status_code == 403
    assert phone.hooks.signed_post(f"{PUBLIC_URL}/twilio/callback/99/answer", {}).status_code == 404
    assert callbacks(db)[0].status == "ringing"


def test_a_twilio_refusal_is_a_failed_call_back_with_an_event(
    client: FlaskClient, sender: Sender, chain: Chain, phone: Phone, db: Session
) -> None:
    open_case(sender, db)
    login(client, chain.primary.email)
    phone.twilio.fail_next(1, status=400, code=21217)
    call_back(client)
    assert "Non è stato possibile effettuare la chiamata" in client.get(CASE_PAGE).get_data(
        as_text=True
    )
    [row] = callbacks(db)
    assert row.status == "failed"
    assert callback_events(db)[-1].data["leg"] == "operator"


def test_no_phone_number_reaches_the_logs_or_urls(
    client: FlaskClient,
    sender: Sender,
    chain: Chain,
    phone: Phone,
    db: Session,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    open_case(sender, db)
    login(client, chain.primary.email)
    call_back(client)
    [call] = calls_back(phone, chain.primary)
    action = gather_action_url(phone.answer(call.sid).get_data(as_text=True), call.url or "")
    dial = twiml(phone.twilio.send_gather(call.sid, "1", action, phone.hooks.transport)).find(
        "Dial"
    )
    assert dial is not None
    dial_done(phone, dial.get("action") or "", call.sid, "completed", 30)
    for number in (PERSON, chain.primary.phone or ""):
        assert number[3:] not in caplog.text
        assert number[3:] not in action
