"""Reminders, phone checks and gap warnings: through the worker's jobs to the Twilio stand-in."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from core.db import session_scope
from core.models import OutboxMessage, SentNotification, User
from core.scheduler import registered_jobs, run_job
from core.telephony import SandboxTelephony
from oncall import editing
from oncall.jobs import GAP_WARNINGS, PHONE_CHECK, REMINDERS
from oncall.models import Override, Rotation
from oncall.notifications import current_gaps, send_shift_reminders, warn_new_gaps
from oncall.schedule import Tier
from tests.conftest import PUBLIC_URL, UserFactory, csrf_token, login
from tests.twilio_standin import TwilioStandIn

STATUS_URL = f"{PUBLIC_URL}/twilio/status"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def rotation(
    db: Session,
    now: datetime,
    operators: list[User],
    *,
    start: date,
    handover: time = time(8, 0),
    period_days: int = 7,
    end: date | None = None,
    province: str | None = "BS",
    tier: Tier = Tier.PRIMARY,
) -> Rotation:
    row = editing.create_rotation(
        db,
        actor="test",
        now=now,
        province=province,
        tier=tier,
        operator_ids=[u.id for u in operators],
        handover=handover,
        period_days=period_days,
        start_date=start,
        end_date=end,
    )
    db.commit()  # the audit entry is still pending in the session
    return row


def run_at(app: Flask, clock: FrozenClock, at: datetime, job: object = REMINDERS) -> object:
    clock.set(at)
    return run_job(app, job)  # type: ignore[arg-type]


def bodies(twilio: TwilioStandIn) -> list[str]:
    return [m.body or "" for m in twilio.messages]


def sent_of_kind(db: Session, twilio: TwilioStandIn, kind: str) -> list[tuple[str, str]]:
    """(to, body) of the messages sent for one kind of notification, in order."""
    sids = set(
        db.scalars(select(SentNotification.provider_id).where(SentNotification.kind == kind))
    )
    return [(m.to, m.body or "") for m in twilio.messages if m.sid in sids]


def test_the_jobs_are_registered_with_the_worker(app: Flask) -> None:
    ids = {job.id for job in registered_jobs(app)}
    assert {"oncall.reminders", "oncall.phone_check", "oncall.gap_warnings"} <= ids


# -- reminders


def test_day_before_reminder_goes_at_18_local_exactly_once(
    app: Flask, db: Session, clock: FrozenClock, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    anna = make_user(phone="+393331000001")
    rotation(db, clock.now(), [anna], start=date(2026, 11, 26))

    run_at(app, clock, utc(2026, 11, 25, 16, 59))  # 17:59 in Rome
    assert twilio.messages == []
    run_at(app, clock, utc(2026, 11, 25, 17, 0))  # 18:00 in Rome
    [message] = twilio.messages
    assert message.to == "+393331000001"
    assert message.body == "Ali: domani dalle 08:00 sei reperibile (principale) per BS."
    assert message.status_callback == STATUS_URL

    run_at(app, clock, utc(2026, 11, 25, 17, 1))
    run_at(app, clock, utc(2026, 11, 25, 22, 0))
    assert len(twilio.messages) == 1
    row = db.scalar(select(SentNotification))
    assert row is not None
    assert row.provider_id == message.sid
    assert row.kind == "reminder_day_before"
    assert row.key == f"reminder:day_before:{anna.id}:BS:primary:20261126T0700Z"


def test_start_of_shift_reminder_goes_at_the_hand_over_once(
    app: Flask, db: Session, clock: FrozenClock, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    anna, bruno = make_user(), make_user()
    rotation(db, clock.now(), [anna, bruno], start=date(2026, 11, 26), period_days=1)

    run_at(app, clock, utc(2026, 11, 25, 17, 0))
    assert bodies(twilio) == ["Ali: domani dalle 08:00 sei reperibile (principale) per BS."]
    twilio.reset()
    run_at(app, clock, utc(2026, 11, 26, 7, 0))
    run_at(app, clock, utc(2026, 11, 26, 7, 1))
    assert [(m.to, m.body) for m in twilio.messages] == [
        (anna.phone, "Ali: dalle 08:00 sei reperibile (principale) per BS.")
    ]
    # Bruno's turn is the next day: reminded at 18:00 the day before, then at its start.
    run_at(app, clock, utc(2026, 11, 26, 17, 0))
    run_at(app, clock, utc(2026, 11, 27, 7, 0))
    assert [(m.to, m.body) for m in twilio.messages[1:]] == [
        (bruno.phone, "Ali: domani dalle 08:00 sei reperibile (principale) per BS."),
        (bruno.phone, "Ali: dalle 08:00 sei reperibile (principale) per BS."),
    ]


def test_a_worker_back_from_downtime_sends_what_is_still_useful(
    app: Flask, db: Session, clock: FrozenClock, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    anna, bruno = make_user(), make_user()
    rotation(db, clock.now(), [anna], start=date(2026, 11, 26))
    rotation(db, clock.now(), [bruno], start=date(2026, 11, 26), tier=Tier.BACKUP)

    # Down from before 18:00 until 09:30 the next morning: the day-before reminders are late
    # but their shifts have started, so only the start-of-shift ones go (within 4 hours).
    run_at(app, clock, utc(2026, 11, 26, 8, 30))
    assert sorted((m.to or "", m.body or "") for m in twilio.messages) == sorted(
        [
            (anna.phone or "", "Ali: dalle 08:00 sei reperibile (principale) per BS."),
            (bruno.phone or "", "Ali: dalle 08:00 sei reperibile (di riserva) per BS."),
        ]
    )


def test_a_start_reminder_is_not_sent_hours_into_the_shift(
    app: Flask, db: Session, clock: FrozenClock, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    anna = make_user()
    rotation(db, clock.now(), [anna], start=date(2026, 11, 26))
    run_at(app, clock, utc(2026, 11, 26, 11, 1))  # 4 h 1 min after the start
    assert twilio.messages == []
    assert db.scalar(select(func.count(SentNotification.id))) == 0


def test_a_late_day_before_reminder_says_today(
    app: Flask, db: Session, clock: FrozenClock, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    anna = make_user()
    rotation(db, clock.now(), [anna], start=date(2026, 11, 26))
    run_at(app, clock, utc(2026, 11, 26, 5, 0))  # 06:00 in Rome, the shift starts at 08:00
    assert bodies(twilio) == ["Ali: oggi dalle 08:00 sei reperibile (principale) per BS."]


def test_a_retryable_twilio_failure_leaves_the_reminder_for_the_next_tick(
    app: Flask, db: Session, clock: FrozenClock, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    anna = make_user()
    rotation(db, clock.now(), [anna], start=date(2026, 11, 26))
    twilio.fail_next(1, 500)
    result = run_at(app, clock, utc(2026, 11, 25, 17, 0))
    assert result == {"sent": 0, "already": 0, "retry": 1, "refused": 0, "unreachable": 0}
    assert twilio.messages == []
    assert db.scalar(select(func.count(SentNotification.id))) == 0

    run_at(app, clock, utc(2026, 11, 25, 17, 1))
    run_at(app, clock, utc(2026, 11, 25, 17, 2))
    assert bodies(twilio) == ["Ali: domani dalle 08:00 sei reperibile (principale) per BS."]
    row = db.scalar(select(SentNotification))
    assert row is not None
    assert row.provider_id == twilio.messages[0].sid


def test_a_refused_number_is_not_retried_every_minute(
    app: Flask, db: Session, clock: FrozenClock, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    anna = make_user()
    rotation(db, clock.now(), [anna], start=date(2026, 11, 26))
    twilio.fail_next(1, 400, code=21211)
    run_at(app, clock, utc(2026, 11, 25, 17, 0))
    run_at(app, clock, utc(2026, 11, 25, 17, 1))
    assert twilio.messages == []
    row = db.scalar(select(SentNotification))
    assert row is not None
    assert row.provider_id is None


def test_reminders_speak_the_operators_language(
    app: Flask, db: Session, clock: FrozenClock, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    anna = make_user(locale="en")
    rotation(db, clock.now(), [anna], start=date(2026, 11, 26))
    run_at(app, clock, utc(2026, 11, 25, 17, 0))
    run_at(app, clock, utc(2026, 11, 26, 7, 0))
    assert bodies(twilio) == [
        "Ali: tomorrow from 08:00 you are on call (primary) for BS.",
        "Ali: from 08:00 you are on call (primary) for BS.",
    ]


def test_coordinators_are_reminded_of_their_turn(
    app: Flask, db: Session, clock: FrozenClock, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    chiara = make_user(roles=("coordinator",), provinces=())
    rotation(
        db, clock.now(), [chiara], start=date(2026, 11, 26), province=None, tier=Tier.COORDINATOR
    )
    run_at(app, clock, utc(2026, 11, 25, 17, 0))
    assert bodies(twilio) == ["Ali: domani dalle 08:00 sei reperibile per il coordinamento."]


def test_an_operator_without_a_verified_phone_gets_no_reminder_until_verified(
    app: Flask, db: Session, clock: FrozenClock, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    anna = make_user(verified=False)
    rotation(db, clock.now(), [anna], start=date(2026, 11, 26))
    result = run_at(app, clock, utc(2026, 11, 25, 17, 0))
    assert isinstance(result, dict)
    assert result["unreachable"] == 1
    assert twilio.messages == []
    anna.phone_verified_at = utc(2026, 11, 25, 17, 30)
    db.commit()
    run_at(app, clock, utc(2026, 11, 25, 17, 31))
    assert len(twilio.messages) == 1


def test_an_override_by_the_same_operator_is_not_a_new_shift(
    app: Flask, db: Session, clock: FrozenClock, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    anna, bruno = make_user(), make_user()
    rotation(db, clock.now(), [anna, bruno], start=date(2026, 11, 23), period_days=1)
    # Anna covers Bruno's day too: one long duty for her, reminded once, at its start.
    editing.add_override(
        db,
        actor="test",
        now=clock.now(),
        province="BS",
        tier=Tier.PRIMARY,
        user_id=anna.id,
        start=utc(2026, 11, 26, 7),
        end=utc(2026, 11, 27, 7),
    )
    db.commit()
    # Anna: 25th (rotation), 26th (override), 27th (rotation) in one go, until the 28th.
    for hour in range(0, 61):
        run_at(app, clock, utc(2026, 11, 25, 7) + timedelta(hours=hour))
    assert [(m.to, m.body) for m in twilio.messages] == [
        (anna.phone, "Ali: dalle 08:00 sei reperibile (principale) per BS."),
        (bruno.phone, "Ali: domani dalle 08:00 sei reperibile (principale) per BS."),
    ]


def test_two_workers_at_once_send_each_reminder_once(
    app: Flask, db: Session, clock: FrozenClock, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    people = [make_user() for _ in range(4)]
    rotation(db, clock.now(), people, start=date(2026, 11, 26), period_days=1)
    rotation(
        db, clock.now(), people[::-1], start=date(2026, 11, 26), period_days=1, tier=Tier.BACKUP
    )
    clock.set(utc(2026, 11, 26, 7, 0))
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            run_job(app, REMINDERS)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # The primary and the backup shifts starting now: two messages, whatever the interleaving.
    keys = db.scalars(select(SentNotification.key)).all()
    assert len(keys) == len(set(keys)) == len(twilio.messages) == 2
    assert {m.to for m in twilio.messages} == {people[0].phone, people[3].phone}


def test_reminders_through_the_sandbox_do_not_wait_on_their_own_lock(
    app: Flask, db: Session, clock: FrozenClock, make_user: UserFactory
) -> None:
    """The sandbox writes its outbox on another connection: on SQLite a job that kept its
    write transaction open across the send would wait for itself."""
    anna = make_user()
    rotation(db, clock.now(), [anna], start=date(2026, 11, 26))
    clock.set(utc(2026, 11, 25, 17, 0))
    sandbox = SandboxTelephony(app.extensions["ali.sessionmaker"], clock, "+390212345678")
    with app.app_context(), session_scope(app) as session:
        send_shift_reminders(session, sandbox, clock.now())
    [message] = db.scalars(select(OutboxMessage)).all()
    assert message.to == anna.phone
    assert message.body == "Ali: domani dalle 08:00 sei reperibile (principale) per BS."


# -- across the change of time


def test_day_before_reminder_on_the_saturday_before_the_clocks_go_back(
    app: Flask, db: Session, clock: FrozenClock, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    anna = make_user()
    clock.set(utc(2026, 10, 20))
    rotation(db, clock.now(), [anna], start=date(2026, 10, 25))
    # Saturday 24 October: 18:00 is still summer time (UTC+2).
    run_at(app, clock, utc(2026, 10, 24, 15, 59))
    assert twilio.messages == []
    run_at(app, clock, utc(2026, 10, 24, 16, 0))
    assert bodies(twilio) == ["Ali: domani dalle 08:00 sei reperibile (principale) per BS."]
    # Sunday 08:00 is winter time (UTC+1): 07:00Z, 25 hours after 08:00 the day before.
    run_at(app, clock, utc(2026, 10, 25, 6, 59))
    assert len(twilio.messages) == 1
    run_at(app, clock, utc(2026, 10, 25, 7, 0))
    assert bodies(twilio)[1:] == ["Ali: dalle 08:00 sei reperibile (principale) per BS."]


def test_a_shift_starting_in_the_repeated_hour_is_reminded_once(
    app: Flask, db: Session, clock: FrozenClock, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    anna, bruno = make_user(), make_user()
    clock.set(utc(2026, 10, 20))
    rotation(
        db,
        clock.now(),
        [bruno, anna],
        start=date(2026, 10, 24),
        handover=time(2, 30),
        period_days=1,
    )
    # Anna's shift starts at the first 02:30 of 25 October (00:30Z); 02:30 comes again at
    # 01:30Z and must not look like a new start.
    for minute in range(0, 24 * 60, 15):
        run_at(app, clock, utc(2026, 10, 24, 12) + timedelta(minutes=minute))
    to_anna = [m.body for m in twilio.messages if m.to == anna.phone]
    assert to_anna == [
        "Ali: domani dalle 02:30 CEST sei reperibile (principale) per BS.",
        "Ali: dalle 02:30 CEST sei reperibile (principale) per BS.",
    ]
    start = next(m for m in twilio.messages if m.body == to_anna[1])
    row = db.scalar(select(SentNotification).where(SentNotification.provider_id == start.sid))
    assert row is not None
    assert row.sent_at == utc(2026, 10, 25, 0, 30)


def test_a_hand_over_in_the_missing_hour_is_reminded_at_its_real_instant(
    app: Flask, db: Session, clock: FrozenClock, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    anna, bruno = make_user(), make_user()
    clock.set(utc(2026, 3, 25))
    rotation(
        db, clock.now(), [bruno, anna], start=date(2026, 3, 28), handover=time(2, 30), period_days=1
    )
    # 02:30 does not exist on 29 March: the hand-over happens at 03:30 CEST (01:30Z).
    run_at(app, clock, utc(2026, 3, 29, 1, 29))
    assert [m.body for m in twilio.messages if m.to == anna.phone] == [
        "Ali: oggi dalle 03:30 sei reperibile (principale) per BS."
    ]
    run_at(app, clock, utc(2026, 3, 29, 1, 30))
    assert [m.body for m in twilio.messages if m.to == anna.phone][1:] == [
        "Ali: dalle 03:30 sei reperibile (principale) per BS."
    ]


# -- phone check


def test_rota_managers_hear_once_a_day_of_rostered_operators_without_a_verified_phone(
    app: Flask, db: Session, clock: FrozenClock, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    manager = make_user(roles=("operator", "rota_manager"), phone="+393331000009")
    make_user(roles=("operator", "rota_manager"), provinces=("BG",))
    anna = make_user(verified=False)
    rotation(db, clock.now(), [manager, anna], start=date(2026, 11, 23))

    run_at(app, clock, utc(2026, 11, 24, 7, 59), PHONE_CHECK)  # 08:59 in Rome: not yet
    assert twilio.messages == []
    run_at(app, clock, utc(2026, 11, 24, 8, 0), PHONE_CHECK)
    run_at(app, clock, utc(2026, 11, 24, 20, 0), PHONE_CHECK)
    assert sent_of_kind(db, twilio, "phone_check") == [
        (
            "+393331000009",
            "Ali: 1 operatore del turno di BS nei prossimi 14 giorni non ha un telefono "
            "verificato. Controlla la pagina dei turni.",
        )
    ]
    run_at(app, clock, utc(2026, 11, 25, 8, 0), PHONE_CHECK)
    assert len(sent_of_kind(db, twilio, "phone_check")) == 2
    row = db.scalar(select(SentNotification).where(SentNotification.kind == "phone_check"))
    assert row is not None
    assert row.key == f"phones:BS:2026-11-24:{manager.id}"


def test_nobody_is_told_when_every_rostered_phone_is_verified(
    app: Flask, db: Session, clock: FrozenClock, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    make_user(roles=("operator", "rota_manager"))
    anna = make_user()
    rotation(db, clock.now(), [anna], start=date(2026, 11, 23))
    run_at(app, clock, utc(2026, 11, 24, 9, 0), PHONE_CHECK)
    assert twilio.messages == []


def test_without_a_reachable_rota_manager_the_coordinators_are_told(
    app: Flask, db: Session, clock: FrozenClock, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    chiara = make_user(roles=("coordinator",), provinces=(), locale="en")
    anna = make_user(phone=None, verified=False)
    anna.phone = None
    db.commit()
    rotation(db, clock.now(), [anna], start=date(2026, 11, 30))
    run_at(app, clock, utc(2026, 11, 24, 9, 0), PHONE_CHECK)
    assert sent_of_kind(db, twilio, "phone_check") == [
        (
            chiara.phone,
            "Ali: 1 operator on the BS rota in the next 14 days has no verified phone. "
            "Check the rota page.",
        )
    ]


# -- gap warnings


def test_rota_managers_hear_once_a_day_of_gaps_in_the_next_14_days(
    app: Flask, db: Session, clock: FrozenClock, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    manager = make_user(roles=("operator", "rota_manager"))
    bg_manager = make_user(roles=("operator", "rota_manager"), provinces=("BG",), locale="en")
    # Friday 20 to Friday 27 at 08:00, then nothing until Sunday 29 at 08:00.
    rotation(db, clock.now(), [manager], start=date(2026, 11, 20), end=date(2026, 11, 27))
    rotation(db, clock.now(), [manager], start=date(2026, 11, 29))
    run_at(app, clock, utc(2026, 11, 24, 8, 0), GAP_WARNINGS)
    run_at(app, clock, utc(2026, 11, 24, 12, 0), GAP_WARNINGS)
    assert sorted((m.to or "", m.body or "") for m in twilio.messages) == sorted(
        [
            (
                manager.phone or "",
                "Ali: il turno di BS ha 1 scopertura senza primario nei prossimi 14 giorni, dal "
                "27/11 08:00. Apri la pagina dei turni per coprirla.",
            ),
            (
                bg_manager.phone or "",
                "Ali: the BG rota has 1 gap with no primary in the next 14 days, from "
                "24/11 09:00. Open the rota page to cover it.",
            ),
        ]
    )
    run_at(app, clock, utc(2026, 11, 25, 8, 0), GAP_WARNINGS)
    assert len(twilio.messages) == 4


def test_a_change_that_opens_a_gap_is_reported_at_once_and_only_once(
    app: Flask, db: Session, clock: FrozenClock, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    manager = make_user(roles=("operator", "rota_manager"))
    other_manager = make_user(roles=("operator", "rota_manager"), locale="en")
    anna = make_user()
    rota = rotation(db, clock.now(), [anna, manager], start=date(2026, 11, 23), period_days=1)
    now = clock.now()
    # As the rota page does it: gaps before, the change, commit, then the warning.
    with app.app_context(), session_scope(app) as session:
        before = current_gaps(session, province="BS", now=now)
        assert before == []
        editing.update_rotation(
            session,
            session.get_one(Rotation, rota.id),
            actor=manager,
            now=now,
            end_date=date(2026, 11, 28),
        )
        session.commit()
        telephony = app.extensions["ali.telephony"]
        opened = warn_new_gaps(
            session, telephony, province="BS", before=before, now=now, exclude_user_id=manager.id
        )
        # Asked again (a second save, a retried request): nothing new is sent.
        warn_new_gaps(session, telephony, province="BS", before=before, now=now)
    assert opened == [(utc(2026, 11, 28, 7), now + timedelta(days=14))]
    assert [(m.to, m.body) for m in twilio.messages] == [
        (
            other_manager.phone,
            "Ali: after a change the BS rota has no primary from 28/11 08:00 to 08/12 11:00. "
            "Open the rota page to cover it.",
        ),
        (
            manager.phone,
            "Ali: dopo una modifica il turno di BS non ha un primario dal 28/11 08:00 "
            "al 08/12 11:00. Apri la pagina dei turni per coprirlo.",
        ),
    ]


def test_a_change_that_opens_no_gap_sends_nothing(
    app: Flask, db: Session, clock: FrozenClock, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    make_user(roles=("operator", "rota_manager"))
    anna, bruno = make_user(), make_user()
    rotation(db, clock.now(), [anna], start=date(2026, 11, 23), end=date(2026, 11, 30))
    now = clock.now()
    with app.app_context(), session_scope(app) as session:
        before = current_gaps(session, province="BS", now=now)
        assert before != []
        # Cover part of the existing gap: it shrinks, nothing opens.
        editing.add_override(
            session,
            actor="test",
            now=now,
            province="BS",
            tier=Tier.PRIMARY,
            user_id=bruno.id,
            start=utc(2026, 12, 1, 7),
            end=utc(2026, 12, 2, 7),
        )
        session.commit()
        opened = warn_new_gaps(
            session, app.extensions["ali.telephony"], province="BS", before=before, now=now
        )
    assert opened == []
    assert twilio.messages == []


def test_deleting_an_unrelated_swap_warns_nobody_while_the_clock_moves(
    client: FlaskClient,
    db: Session,
    clock: FrozenClock,
    twilio: TwilioStandIn,
    make_user: UserFactory,
) -> None:
    """A gap that runs past the 14-day horizon is cut there: if the page read the clock once
    for the gaps before a change and again after it, the same gap would end a little later,
    look new, and text the rota managers about a gap nobody opened."""
    manager = make_user(roles=("operator", "rota_manager"), email="manager@ali.example")
    make_user(roles=("rota_manager",))  # the colleague a false warning would reach
    anna, bruno = make_user(), make_user()
    # Anna until Monday 30 at 08:00, then nobody: a gap up to the horizon and beyond it.
    rotation(db, clock.now(), [anna], start=date(2026, 11, 23), end=date(2026, 11, 30))
    swap = editing.add_override(
        db,
        actor="test",
        now=clock.now(),
        province="BS",
        tier=Tier.PRIMARY,
        user_id=bruno.id,
        start=utc(2026, 11, 25, 19),
        end=utc(2026, 11, 26, 7),
    )
    db.commit()
    login(client, manager.email)
    token = csrf_token(client.get("/rota/BS").get_data(as_text=True))
    clock.step = timedelta(milliseconds=1)

    response = client.post(f"/rota/BS/overrides/{swap.id}/delete", data={"csrf_token": token})

    assert response.status_code == 302
    assert db.scalar(select(func.count(Override.id))) == 0
    assert twilio.messages == []


@pytest.mark.parametrize("hour", [7, 8])
def test_daily_checks_wait_for_the_morning(
    hour: int,
    app: Flask,
    clock: FrozenClock,
    twilio: TwilioStandIn,
    make_user: UserFactory,
) -> None:
    make_user(roles=("operator", "rota_manager"))
    run_at(app, clock, utc(2026, 11, 24, hour, 59), GAP_WARNINGS)
    # 08:59 in Rome is too early; 09:59 is not.
    assert len(twilio.messages) == (0 if hour == 7 else 1)
