"""Twilio at 3 a.m. on a bad night: answering 500 or cutting connections for a while, refusing
a page for good, a number that texted STOP. Signed hand-offs, the real twilio client against
the stand-in, the worker's tick with the clock moved by hand."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import AuditEntry, User
from oncall.verification import set_phone
from routing.models import CaseEvent, CaseEventKind, DispatchState
from tests.alerting import Chain, Phone, dispatch_of, events, pages, the_case
from tests.conftest import T0, UserFactory
from tests.intake.signed import Sender
from tests.twilio_standin import TwilioStandIn

EMERGENCY = {
    "external_id": "NV-f",
    "province": "BS",
    "urgency": "emergency",
    "summary": "Maria, 19 anni, chiede aiuto in via Roma",
}


def _step_times(db: Session, reference: str) -> list[float]:
    """Minutes after T0 at which each escalation step of the case fired."""
    case = the_case(db, reference)
    fired = db.scalars(
        select(CaseEvent.at)
        .where(CaseEvent.case_id == case.id, CaseEvent.kind == CaseEventKind.STEP)
        .order_by(CaseEvent.id)
    )
    return [(at - T0).total_seconds() / 60 for at in fired]


@pytest.mark.parametrize("fault", ["500", "dropped"])
def test_while_twilio_fails_the_escalation_moves_on_and_every_page_goes_out_once_after(
    fault: str, sender: Sender, chain: Chain, phone: Phone, db: Session, twilio: TwilioStandIn
) -> None:
    if fault == "500":
        twilio.set_down(status=500)
    else:
        twilio.set_dropping()
    sender.post(EMERGENCY)
    assert twilio.messages == []
    assert twilio.calls == []
    assert {p.status for p in pages(db)} == {"pending"}  # waiting, not given up
    for _minute in range(7):  # seven minutes of outage, a worker tick each minute
        phone.tick(minutes=1)
    # Every step fired on its schedule (0, 3, 6 min), each queueing its pages meanwhile.
    assert _step_times(db, "BS-2026-0001") == [0, 3, 6]
    queued = Counter((p.operator_id, p.channel.value) for p in pages(db))
    assert queued == {
        (chain.primary.id, "sms"): 2,
        (chain.primary.id, "voice"): 2,
        (chain.backup.id, "sms"): 1,
        (chain.backup.id, "voice"): 1,
        (chain.coordinator.id, "sms"): 1,
        (chain.coordinator.id, "voice"): 1,
    }
    assert {p.status for p in pages(db)} == {"pending"}
    retries = [e.data for e in db.scalars(select(CaseEvent).where(CaseEvent.kind == "page_failed"))]
    assert retries
    assert all(r["retry"] for r in retries)
    assert {r["error_code"] for r in retries} == ({20500} if fault == "500" else {None})
    assert dispatch_of(db, "BS-2026-0001").state == DispatchState.OPEN  # nobody skipped
    # One try per send while it is down, not one per page: a tick stays short.
    assert len(twilio.requests) <= 8

    if fault == "500":
        twilio.set_down(False)
    else:
        twilio.set_dropping(False)
    phone.tick(minutes=1)  # the longest backoff is a minute: everything due goes now

    assert len(phone.sms_to(chain.primary)) == 2
    assert len(phone.calls_to(chain.primary)) == 2
    assert len(phone.sms_to(chain.backup)) == 1
    assert len(phone.calls_to(chain.coordinator)) == 1
    assert {p.status for p in pages(db)} <= {"sent", "queued"}
    sids = [p.provider_sid for p in pages(db)]
    assert len(set(sids)) == len(sids) == 8
    calls = Counter(c.url for c in twilio.calls)
    assert set(calls.values()) == {1}  # each alert call placed once
    for _ in range(2):  # before the coordinators' repeat at 11 min
        phone.tick(minutes=1)
    assert len(twilio.messages) + len(twilio.calls) == 8  # and none twice


def test_a_refused_page_is_an_event_with_its_code_and_no_personal_data(
    sender: Sender, chain: Chain, phone: Phone, db: Session, twilio: TwilioStandIn
) -> None:
    twilio.fail_next(1, 400, code=21211, message="The 'To' number is not a valid phone number.")
    sender.post(EMERGENCY)
    [failed] = [
        e for e in db.scalars(select(CaseEvent).order_by(CaseEvent.id)) if e.kind == "page_failed"
    ]
    assert failed.data["error_code"] == 21211
    assert "retry" not in failed.data
    flat = repr(failed.data)
    for private in (chain.primary.phone or "", "Maria", "Roma", chain.primary.display_name):
        assert private not in flat
    assert pages(db)[0].status == "failed"
    assert len(phone.calls_to(chain.primary)) == 1  # the step's call still went


@pytest.fixture
def manager(make_user: UserFactory) -> User:
    return make_user(name="Rita Rota", roles=("rota_manager",), provinces=("BS",))


def test_an_operator_who_texted_stop_is_called_instead_and_the_rota_managers_are_told_once(
    sender: Sender,
    chain: Chain,
    manager: User,
    phone: Phone,
    db: Session,
    twilio: TwilioStandIn,
    make_user: UserFactory,
) -> None:
    elsewhere = make_user(name="Mario Milano", roles=("rota_manager",), provinces=("BG",))
    twilio.fail_next(1, 400, code=21610, message="Attempt to send to unsubscribed recipient")
    sender.post(EMERGENCY)

    db.refresh(chain.primary)
    assert chain.primary.sms_opted_out_at == T0
    assert phone.sms_to(chain.primary) == []
    assert len(phone.calls_to(chain.primary)) == 1  # the call still goes
    failed = [e.data for e in db.scalars(select(CaseEvent)) if e.kind == "page_failed"]
    assert [f["error_code"] for f in failed] == [21610]

    phone.tick()
    [notice] = phone.sms_to(manager)
    assert "Paola Primaria" in notice
    assert "STOP" in notice
    assert "START" in notice
    assert phone.sms_to(elsewhere) == []
    phone.tick(minutes=1)
    assert len(phone.sms_to(manager)) == 1  # once

    phone.tick(minutes=2)  # step 2: primary and backup again
    assert phone.sms_to(chain.primary) == []  # no SMS tried: Twilio would refuse it
    assert len(phone.calls_to(chain.primary)) == 2
    assert len(phone.sms_to(chain.backup)) == 1
    assert [r.param("To") for r in twilio.requests].count(chain.primary.phone) == 3
    audit = db.scalars(select(AuditEntry).where(AuditEntry.object_type == "user")).all()
    assert any("sms_opted_out_at" in (a.fields or []) for a in audit)


def test_start_gives_the_operator_sms_again_and_stop_takes_them_away(
    sender: Sender, chain: Chain, manager: User, phone: Phone, db: Session
) -> None:
    phone.text(chain.primary, "STOP")
    db.refresh(chain.primary)
    assert chain.primary.sms_opted_out_at == T0
    sender.post(EMERGENCY)
    assert phone.sms_to(chain.primary) == []
    assert len(phone.calls_to(chain.primary)) == 1
    phone.tick()
    assert len(phone.sms_to(manager)) == 1

    reply = phone.text(chain.primary, "start")
    assert reply.status_code == 200
    db.refresh(chain.primary)
    assert chain.primary.sms_opted_out_at is None
    sender.post(EMERGENCY | {"external_id": "NV-g"})
    assert len(phone.sms_to(chain.primary)) == 1
    assert "sms_reply" not in events(db)  # a keyword is no reply to an alert


def test_a_new_phone_is_not_opted_out(chain: Chain, db: Session) -> None:
    chain.primary.sms_opted_out_at = T0
    db.commit()
    set_phone(db, user=chain.primary, phone="+393339998877", now=T0 + timedelta(days=1))
    db.commit()
    db.refresh(chain.primary)
    assert chain.primary.sms_opted_out_at is None


def test_an_sms_only_step_calls_an_operator_who_opted_out(
    sender: Sender, chain: Chain, phone: Phone, db: Session
) -> None:
    chain.primary.sms_opted_out_at = T0
    db.commit()
    sender.post(EMERGENCY | {"urgency": "ordinary"})  # ordinary: step 1 is an SMS only
    assert phone.sms_to(chain.primary) == []
    assert len(phone.calls_to(chain.primary)) == 1
    assert [p.channel.value for p in pages(db)] == ["voice"]


def test_when_no_rota_manager_can_get_the_stop_notice_the_coordinators_do(
    chain: Chain, manager: User, phone: Phone, db: Session
) -> None:
    manager.sms_opted_out_at = T0  # the only rota manager of BS texted STOP too
    db.commit()
    phone.text(chain.primary, "STOP")
    phone.tick()
    assert phone.sms_to(manager) == []
    notices = phone.sms_to(chain.coordinator)
    assert any("Paola Primaria" in text and "STOP" in text for text in notices)
    phone.tick(minutes=1)
    assert phone.sms_to(chain.coordinator) == notices  # once
