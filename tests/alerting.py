"""Fixtures of the alert tests (a pytest plugin of tests/conftest.py): a rostered province, a
signed sender, Twilio's side of calls and texts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from xml.etree import ElementTree

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from core.clock import FrozenClock
from core.models import User
from oncall.models import RotaShift
from routing.models import Case, CaseEvent, Dispatch, Page
from tests.conftest import PUBLIC_URL, UserFactory
from tests.intake.signed import Sender, make_source
from tests.twilio_standin import (
    TwilioStandIn,
    TwilioWebhooks,
    flask_transport,
    gather_action_url,
)


@dataclass
class Chain:
    primary: User
    backup: User
    coordinator: User


def on_shift(
    db: Session, user: User, *, at: datetime, tier: str = "primary", province: str | None = "BS"
) -> None:
    """`user` holds `tier` of `province` (None: the coordinators' rota) for 12 h around `at`."""
    db.add(
        RotaShift(
            province=province,
            tier=tier,
            user_id=user.id,
            start_at=at - timedelta(hours=12),
            end_at=at + timedelta(hours=12),
            created_at=at,
        )
    )
    db.commit()


@pytest.fixture
def chain(db: Session, make_user: UserFactory, clock: FrozenClock) -> Chain:
    """BS with a primary and a backup on shift for a day around the clock, and a coordinator."""
    primary = make_user(name="Paola Primaria", provinces=("BS",))
    backup = make_user(name="Bruno Backup", provinces=("BS",))
    coordinator = make_user(name="Carla Coordinatrice", roles=("coordinator",), provinces=())
    on_shift(db, primary, at=clock.now())
    on_shift(db, backup, at=clock.now(), tier="backup")
    return Chain(primary, backup, coordinator)


@pytest.fixture
def sender(client: FlaskClient, db: Session, clock: FrozenClock) -> Sender:
    return Sender(client, make_source(db, clock), clock)


@dataclass
class Phone:
    """Twilio's side: what the stand-in received, and the webhooks Twilio would send back."""

    twilio: TwilioStandIn
    client: FlaskClient
    app: Flask
    clock: FrozenClock

    @property
    def hooks(self) -> TwilioWebhooks[TestResponse]:
        return self.twilio._webhooks(flask_transport(self.client, PUBLIC_URL), None)

    def sms_to(self, user: User) -> list[str]:
        return [m.body or "" for m in self.twilio.messages if m.to == user.phone]

    def calls_to(self, user: User) -> list[Any]:
        return [c for c in self.twilio.calls if c.to == user.phone]

    def answer(self, call_sid: str, *, answered_by: str | None = None) -> TestResponse:
        """The callee picks up: Twilio fetches the alert call's TwiML."""
        return self.twilio.send_call_answered(
            call_sid, flask_transport(self.client, PUBLIC_URL), answered_by=answered_by
        )

    def press(self, call_sid: str, digits: str) -> TestResponse:
        twiml = self.answer(call_sid).get_data(as_text=True)
        action = gather_action_url(twiml, self.twilio.call(call_sid).url or "")
        return self.twilio.send_gather(
            call_sid, digits, action, flask_transport(self.client, PUBLIC_URL)
        )

    def machine(self, call_sid: str, answered_by: str = "machine_end_beep") -> TestResponse:
        self.answer(call_sid)
        return self.twilio.send_amd_result(
            call_sid, answered_by, flask_transport(self.client, PUBLIC_URL)
        )

    def text(self, user: User, body: str) -> TestResponse:
        return self.hooks.inbound_sms(
            f"{PUBLIC_URL}/twilio/sms", from_=user.phone or "", to="+390212345678", body=body
        )

    def call_status(self, call_sid: str, status: str) -> TestResponse:
        return self.twilio.send_call_status(
            call_sid, status, flask_transport(self.client, PUBLIC_URL), force=True
        )

    def message_status(self, sid: str, status: str, error_code: int | None = None) -> TestResponse:
        return self.twilio.send_message_status(
            sid, status, flask_transport(self.client, PUBLIC_URL), error_code=error_code
        )

    def tick(self, minutes: float = 0) -> dict[str, int]:
        """Move the clock, then one run of the worker's escalation job."""
        self.clock.advance(timedelta(minutes=minutes))
        from core.scheduler import run_job  # noqa: PLC0415 -- the worker's own runner

        jobs = {job.id: job for job in self.app.extensions["ali.jobs"].values()}
        result = run_job(self.app, jobs["routing.escalate"])
        assert isinstance(result, dict)
        return result


@pytest.fixture
def phone(twilio: TwilioStandIn, client: FlaskClient, app: Flask, clock: FrozenClock) -> Phone:
    return Phone(twilio, client, app, clock)


def reply_text(response: TestResponse) -> str:
    """The text of the <Message> a TwiML answer to an SMS sends back ("" when none)."""
    root = ElementTree.fromstring(response.get_data(as_text=True))  # noqa: S314 -- our TwiML
    message = root.find("Message")
    return message.text or "" if message is not None else ""


def spoken(response: TestResponse) -> str:
    root = ElementTree.fromstring(response.get_data(as_text=True))  # noqa: S314 -- our TwiML
    return " ".join(say.text or "" for say in root.iter("Say"))


def events(db: Session, case: Case | None = None) -> list[str]:
    query = select(CaseEvent.kind).order_by(CaseEvent.id)
    if case is not None:
        query = query.where(CaseEvent.case_id == case.id)
    return list(db.scalars(query))


def the_case(db: Session, reference: str) -> Case:
    db.expire_all()
    return db.scalars(select(Case).where(Case.reference == reference)).one()


def dispatch_of(db: Session, reference: str) -> Dispatch:
    db.expire_all()
    return db.scalars(select(Dispatch).where(Dispatch.reference == reference)).one()


def pages(db: Session) -> list[Page]:
    db.expire_all()
    return list(db.scalars(select(Page).order_by(Page.id)))

