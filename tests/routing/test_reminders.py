"""Reminders about cases in hand: the follow-up SMS two hours after an acceptance with no
contact, and the open cases named in the next operator's start-of-shift reminder."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from flask import Flask
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from core.models import User
from core.scheduler import Job, registered_jobs, run_job
from oncall import editing
from oncall.jobs import REMINDERS
from oncall.schedule import Tier
from routing.lifecycle import change_status, close_with_outcome
from routing.models import CaseStatus
from tests.conftest import PUBLIC_URL, UserFactory
from tests.intake.cases import accept, new_case
from tests.twilio_standin import TwilioStandIn


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def follow_up_job(app: Flask) -> Job:
    return {job.id: job for job in registered_jobs(app)}["routing.follow_up"]


def run_at(app: Flask, clock: FrozenClock, at: datetime, job: Job) -> object:
    clock.set(at)
    return run_job(app, job)


def test_an_accepted_case_with_no_contact_reminds_its_operator_once_after_two_hours(
    app: Flask, db: Session, clock: FrozenClock, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    anna = make_user(name="Anna", phone="+393331000001")
    colleague = make_user(name="Bea", phone="+393331000002")
    start = clock.now()
    late = new_case(db, now=start, by=anna, province="BS", summary="Maria, 17 anni, via Roma 3")
    accept(db, late, anna, now=start)
    worked = new_case(db, now=start, by=colleague, province="BS")
    accept(db, worked, colleague, now=start)
    change_status(db, worked, CaseStatus.IN_CONTACT, actor=colleague, now=start)
    db.commit()

    job = follow_up_job(app)
    run_at(app, clock, start + timedelta(hours=1, minutes=59), job)
    assert twilio.messages == []
    run_at(app, clock, start + timedelta(hours=2), job)
    run_at(app, clock, start + timedelta(hours=2, minutes=1), job)
    run_at(app, clock, start + timedelta(hours=9), job)
    [message] = twilio.messages
    assert message.to == anna.phone
    assert message.body == (
        f"ALI {late.reference}: accettato 2 ore fa, ancora senza contatto. "
        f"Aggiorna il caso: {PUBLIC_URL}/cases/{late.reference}"
    )
    assert "Maria" not in (message.body or "")


def test_the_follow_up_counts_real_hours_when_the_clocks_go_back(
    app: Flask, db: Session, clock: FrozenClock, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    anna = make_user(phone="+393331000001", locale="en")
    # 02:30 CEST on 25 October 2026; two real hours later the wall clock says 03:30 CET.
    accepted_at = utc(2026, 10, 25, 0, 30)
    clock.set(accepted_at)
    case = new_case(db, now=accepted_at, by=anna, province="BS")
    accept(db, case, anna, now=accepted_at)
    job = follow_up_job(app)
    run_at(app, clock, utc(2026, 10, 25, 1, 30), job)  # 02:30 CET: the wall clock's "2 h"
    assert twilio.messages == []
    run_at(app, clock, utc(2026, 10, 25, 2, 30), job)
    [message] = twilio.messages
    assert (message.body or "").startswith(f"ALI {case.reference}: accepted 2 hours ago")


def test_the_next_on_call_hears_the_open_cases_the_outgoing_operator_leaves(
    app: Flask, db: Session, clock: FrozenClock, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    anna = make_user(name="Anna", phone="+393331000001", provinces=("BS", "BG"))
    bruno = make_user(name="Bruno", phone="+393331000002")
    coordinator = make_user(roles=("coordinator",), provinces=())
    editing.create_rotation(
        db,
        actor="test",
        now=clock.now(),
        province="BS",
        tier=Tier.PRIMARY,
        operator_ids=[anna.id, bruno.id],
        handover=time(8, 0),
        period_days=1,
        start_date=date(2026, 11, 26),
        end_date=None,
    )
    db.commit()
    during = utc(2026, 11, 26, 10)
    clock.set(during)
    kept = [new_case(db, now=during, by=coordinator, province="BS") for _ in range(2)]
    for case in kept:
        accept(db, case, anna, now=during)
    change_status(db, kept[1], CaseStatus.IN_CONTACT, actor=anna, now=during)
    closed = new_case(db, now=during, by=coordinator, province="BS")
    accept(db, closed, anna, now=during)
    change_status(db, closed, CaseStatus.IN_CONTACT, actor=anna, now=during)
    close_with_outcome(db, closed, CaseStatus.REFERRED, actor=anna, now=during)
    elsewhere = new_case(db, now=during, by=coordinator, province="BG")
    accept(db, elsewhere, anna, now=during)
    not_hers = new_case(db, now=during, by=coordinator, province="BS")
    accept(db, not_hers, coordinator, now=during)
    db.commit()

    run_at(app, clock, utc(2026, 11, 27, 7, 0), REMINDERS)  # 08:00 in Rome: Bruno's turn
    to_bruno = [m.body for m in twilio.messages if m.to == bruno.phone]
    assert to_bruno == [
        "Ali: dalle 08:00 sei reperibile (principale) per BS. Casi aperti dal turno "
        f"precedente: {kept[0].reference}, {kept[1].reference}."
    ]


def test_a_long_hand_over_list_stays_one_short_sms(
    app: Flask, db: Session, clock: FrozenClock, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    anna: User = make_user(phone="+393331000001")
    bruno: User = make_user(phone="+393331000002", locale="en")
    editing.create_rotation(
        db,
        actor="test",
        now=clock.now(),
        province="BS",
        tier=Tier.PRIMARY,
        operator_ids=[anna.id, bruno.id],
        handover=time(8, 0),
        period_days=1,
        start_date=date(2026, 11, 26),
        end_date=None,
    )
    db.commit()
    during = utc(2026, 11, 26, 10)
    for _ in range(10):
        accept(db, new_case(db, now=during, by=anna, province="BS"), anna, now=during)
    run_at(app, clock, utc(2026, 11, 27, 7, 0), REMINDERS)
    [body] = [m.body or "" for m in twilio.messages if m.to == bruno.phone]
    assert body.endswith("BS-2026-0008 and 2 more.")
    assert "BS-2026-0009" not in body
