"""Retention (design §6): closed cases pseudonymised after ALI_RETENTION_CASE_MONTHS, non-pertinent
hand-offs reduced to a tombstone after ALI_RETENTION_NOT_PERTINENT_DAYS (a replay still a
duplicate), raw texts and recordings purged; the statistics reports count never change. The
clock is moved past each threshold; both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from core.clock import ROME, FrozenClock
from core.config import SettingsError, get_settings, load_settings
from core.models import AuditEntry
from core.scheduler import run_job
from intake.models import CallOutcome, Handoff, InboundText, PartnerCall
from intake.reports import month_of, report_for, to_csv
from intake.retention import months_before
from routing.lifecycle import add_note, change_status
from routing.models import Case, CaseEvent, CaseStatus
from tests.conftest import ali_environ, login
from tests.intake.signed import Sender
from tests.twilio_standin import TwilioStandIn

SUMMARY = "Maria Rossi, ospite di via Roma 12, chiede aiuto."


def body(external_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "municipality": "Chiari",
        "caller_phone": "030 712 3456",
        "callback_phone": "+39 333 765 4321",
        "urgency": "emergency",
        "reporter_type": "law_enforcement",
        "exploitation": ["sexual", "labour"],
        "person": {
            "gender": "female",
            "age_band": "18-24",
            "minor": "no",
            "nationality": "ng",
            "languages": ["en"],
        },
        "needs": ["pronta_accoglienza", "interpreter"],
        "summary": SUMMARY,
        **overrides,
    }


def open_case(sender: Sender, db: Session, external_id: str, **overrides: Any) -> Case:
    response = sender.post(body(external_id, **overrides))
    assert response.status_code == 201, response.get_json()
    return db.scalars(select(Case).where(Case.reference == response.get_json()["case"])).one()


def move(db: Session, case: Case, *path: CaseStatus, at: datetime) -> None:
    """Walk a case through the lifecycle at `at`, as an operator's clicks would."""
    for status in path:
        change_status(db, case, status, actor="user:test", now=at)
    db.commit()


def to_closed(db: Session, case: Case, at: datetime) -> None:
    move(
        db,
        case,
        CaseStatus.ACCEPTED,
        CaseStatus.IN_CONTACT,
        CaseStatus.PLACED,
        CaseStatus.CLOSED,
        at=at,
    )


def retention_job(app: Flask) -> Any:
    return run_job(app, app.extensions["ali.jobs"]["intake.retention"])


def report_rows(db: Session) -> list[tuple[Any, ...]]:
    """What a month's report counts, per case: province, urgency, exploitation, status, month
    (Rome), reporter type, person's gender, age band, minor, needs, channel, source."""
    db.expire_all()
    return [
        (
            case.province,
            case.urgency,
            sorted(case.exploitation),
            case.status,
            case.created_at.astimezone(ROME).strftime("%Y-%m"),
            case.reporter_type,
            case.person_gender,
            case.person_age_band,
            case.person_minor,
            sorted(case.needs),
            case.channel,
            case.source_id,
            case.received_at,
            case.accepted_at,
        )
        for case in db.scalars(select(Case).order_by(Case.id))
    ]


def events_of(db: Session) -> list[tuple[int, str, dict[str, Any]]]:
    return [
        (e.case_id, e.kind, e.data) for e in db.scalars(select(CaseEvent).order_by(CaseEvent.id))
    ]


def assert_pseudonymised(db: Session, case: Case) -> None:
    db.expire_all()
    case = db.get(Case, case.id)  # type: ignore[assignment]
    assert (case.summary, case.municipality, case.caller_phone, case.callback_phone) == (
        None,
        None,
        None,
        None,
    )
    assert (case.person_nationality, case.person_languages) == (None, [])
    # What reports count stays.
    assert (case.urgency, case.province, case.person_gender, case.person_age_band) == (
        "emergency",
        "BS",
        "female",
        "18-24",
    )
    raw = db.execute(
        text(
            "SELECT summary, municipality, caller_phone, callback_phone FROM cases WHERE id = :id"
        ),
        {"id": case.id},
    ).one()
    assert tuple(raw) == (None, None, None, None)  # gone, not merely unreadable
    handoff = db.scalars(select(Handoff).where(Handoff.case_id == case.id)).one()
    assert handoff.payload is None
    assert handoff.external_id.startswith("tombstone:")


# --- closed cases ------------------------------------------------------------------------------


def test_a_closed_case_is_pseudonymised_24_months_after_it_was_closed(
    app: Flask,
    sender: Sender,
    db: Session,
    clock: FrozenClock,
    client: FlaskClient,
    make_user: Any,
) -> None:
    case = open_case(sender, db, "NV-1")
    closed_at = clock.now() + timedelta(days=3)
    to_closed(db, case, closed_at)
    db.add_all(
        [
            PartnerCall(
                call_sid="CA" + "1" * 32,
                started_at=clock.now(),
                updated_at=clock.now(),
                caller_phone="+393331234567",
                outcome=CallOutcome.RECORDED,
                case_id=case.id,
            ),
            InboundText(case_id=case.id, sender="f" * 32, body="aiuto", received_at=clock.now()),
        ]
    )
    add_note(db, case, "Maria ha paura del datore di lavoro.", actor=make_user(), now=closed_at)
    db.commit()
    before = report_rows(db)
    events_before = events_of(db)

    # 24 calendar months in Rome: 27 November 2026 11:00 → 27 November 2028 11:00.
    assert months_before(datetime(2028, 11, 27, 10, 0, tzinfo=UTC), 24) == closed_at
    clock.set(closed_at + timedelta(days=730) - timedelta(minutes=1))  # 2 years less a day
    assert retention_job(app)["cases_pseudonymised"] == 0
    clock.set(datetime(2028, 11, 27, 9, 59, tzinfo=UTC))
    assert retention_job(app)["cases_pseudonymised"] == 0
    db.expire_all()
    assert db.get(Case, case.id).summary == SUMMARY  # type: ignore[union-attr]

    clock.set(datetime(2028, 11, 27, 10, 1, tzinfo=UTC))
    assert retention_job(app) == {
        "cases_pseudonymised": 1,
        "not_pertinent_tombstoned": 0,
        "caseless_callers_forgotten": 0,
        "raw_texts_emptied": 0,
        "recordings_deleted": 0,
    }
    assert_pseudonymised(db, case)
    assert report_rows(db) == before
    assert events_of(db) == events_before  # the timeline holds codes only: untouched
    # ... but for the operators' notes: their free text goes, the event that there was one stays.
    [note] = db.scalars(select(CaseEvent).where(CaseEvent.kind == "note"))
    assert note.note is None
    call = db.scalars(select(PartnerCall)).one()
    assert call.caller_phone is None
    sms = db.scalars(select(InboundText)).one()
    assert (sms.body, sms.sender) == (None, "pseudonymised")
    assert db.get(Case, case.id).pseudonymised_at == clock.now()  # type: ignore[union-attr]

    run = db.scalars(select(AuditEntry).where(AuditEntry.action == "retention")).one()
    assert run.detail["cases_pseudonymised"] == 1
    assert "Maria" not in str(run.detail)
    per_case = db.scalars(
        select(AuditEntry).where(AuditEntry.object_type == "case", AuditEntry.actor == "retention")
    ).one()
    assert per_case.object_id == str(case.id)
    assert "summary" in per_case.fields
    assert retention_job(app)["cases_pseudonymised"] == 0  # once

    # The case page still opens, with the codes and without what was removed.
    login(client, make_user(roles=("coordinator",)).email)
    page = client.get(f"/cases/{case.reference}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert case.reference in html
    assert "Maria" not in html
    assert "765 4321" not in html


def test_a_case_reopened_and_closed_again_counts_from_its_last_closing(
    app: Flask, sender: Sender, db: Session, clock: FrozenClock, make_user: Any
) -> None:
    coordinator = make_user(roles=("coordinator",))
    case = open_case(sender, db, "NV-2")
    to_closed(db, case, clock.now())
    later = clock.now() + timedelta(days=200)
    change_status(db, case, CaseStatus.IN_CONTACT, actor=coordinator, now=later)
    move(db, case, CaseStatus.REFERRED, CaseStatus.CLOSED, at=later)

    clock.set(clock.now() + timedelta(days=750))  # past 24 months from the first closing
    assert retention_job(app)["cases_pseudonymised"] == 0
    clock.set(later + timedelta(days=735))
    assert retention_job(app)["cases_pseudonymised"] == 1


def test_open_cases_are_never_touched(
    app: Flask, sender: Sender, db: Session, clock: FrozenClock
) -> None:
    case = open_case(sender, db, "NV-3")
    move(db, case, CaseStatus.ACCEPTED, CaseStatus.IN_CONTACT, at=clock.now())
    clock.advance(timedelta(days=5 * 365))
    assert retention_job(app) == {
        "cases_pseudonymised": 0,
        "not_pertinent_tombstoned": 0,
        "caseless_callers_forgotten": 0,
        "raw_texts_emptied": 0,
        "recordings_deleted": 0,
    }
    db.expire_all()
    assert db.get(Case, case.id).summary == SUMMARY  # type: ignore[union-attr]
    assert db.scalar(select(func.count()).where(AuditEntry.action == "retention")) == 0


def test_a_months_report_is_the_same_before_and_after_pseudonymisation(
    app: Flask, sender: Sender, db: Session, clock: FrozenClock
) -> None:
    made = [
        open_case(sender, db, "R-1"),
        open_case(
            sender, db, "R-2", municipality="Lodi", urgency="ordinary", exploitation=["labour"]
        ),
        open_case(
            sender,
            db,
            "R-3",
            municipality="Pavia",
            urgency="urgent",
            reporter_type="ngo",
            exploitation=["begging"],
            person={"gender": "male", "age_band": "14-17", "minor": "yes"},
        ),
        open_case(sender, db, "R-4", municipality="Crema", exploitation=["unknown"]),
    ]
    to_closed(db, made[0], clock.now())
    move(db, made[1], CaseStatus.ACCEPTED, CaseStatus.NOT_PERTINENT, at=clock.now())
    move(
        db, made[2], CaseStatus.ACCEPTED, CaseStatus.UNREACHABLE, CaseStatus.CLOSED, at=clock.now()
    )
    # made[3] stays open.
    before = report_rows(db)
    figures_before = figures(db)
    report_before = funders_report(app, db, clock.now())

    clock.advance(timedelta(days=3 * 365))
    counts = retention_job(app)
    assert (counts["cases_pseudonymised"], counts["not_pertinent_tombstoned"]) == (2, 1)
    assert report_rows(db) == before
    assert figures(db) == figures_before
    assert funders_report(app, db, made[0].created_at) == report_before
    db.expire_all()
    assert db.get(Case, made[3].id).summary == SUMMARY  # type: ignore[union-attr]


def funders_report(app: Flask, db: Session, at: datetime) -> str:
    """The month's report as `ali report` writes it (CSV), every measure."""
    with app.app_context():
        month = month_of(at)
        report = report_for(db, month, get_settings().provinces)
    assert report.rows
    return to_csv(report)


def figures(db: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Counts by province, urgency, status and month, as a report's GROUP BY computes them."""
    month = func.count()
    return {
        column: [
            tuple(row)
            for row in db.execute(
                select(getattr(Case, column), month)
                .group_by(getattr(Case, column))
                .order_by(getattr(Case, column))
            )
        ]
        for column in ("province", "urgency", "status", "reporter_type", "person_gender", "channel")
    }


# --- non-pertinent hand-offs -------------------------------------------------------------------


def test_a_non_pertinent_handoff_keeps_a_tombstone_after_90_days_across_the_clock_change(
    app: Flask, sender: Sender, db: Session, clock: FrozenClock, standin: TwilioStandIn
) -> None:
    # Not pertinent on 1 October (summer time); 90 days later is 30 December (winter time).
    decided = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)  # 10:00 in Rome
    clock.set(decided - timedelta(hours=1))
    case = open_case(sender, db, "NV-NP-7")
    move(db, case, CaseStatus.ACCEPTED, CaseStatus.NOT_PERTINENT, at=decided)
    before = report_rows(db)

    clock.set(decided + timedelta(days=90) - timedelta(minutes=1))  # 09:59 Rome, 29 Dec
    assert retention_job(app)["not_pertinent_tombstoned"] == 0
    clock.set(decided + timedelta(days=90) + timedelta(minutes=1))
    assert retention_job(app)["not_pertinent_tombstoned"] == 1
    assert_pseudonymised(db, case)
    assert report_rows(db) == before
    handoff = db.scalars(select(Handoff)).one()
    assert "NV-NP-7" not in handoff.external_id
    assert handoff.received_at == decided - timedelta(hours=1)  # the tombstone's dates

    # Exactly once still holds: the same hand-off again is the same case, no new one.
    replay = sender.post(body("NV-NP-7"))
    assert replay.status_code == 200, replay.get_json()
    assert replay.get_json()["case"] == case.reference
    assert db.scalar(select(func.count()).select_from(Case)) == 1
    assert db.scalar(select(func.count()).select_from(Handoff)) == 1
    looked_up = sender.get("/api/v1/handoffs/NV-NP-7")
    assert looked_up.status_code == 200
    assert looked_up.get_json()["case"] == case.reference
    # Another id still opens a case.
    assert sender.post(body("NV-NP-8")).status_code == 201


def test_a_non_pertinent_case_closed_and_closed_again_with_another_outcome_is_not_tombstoned(
    app: Flask, sender: Sender, db: Session, clock: FrozenClock, make_user: Any
) -> None:
    coordinator = make_user(roles=("coordinator",))
    case = open_case(sender, db, "NV-9")
    move(db, case, CaseStatus.ACCEPTED, CaseStatus.NOT_PERTINENT, CaseStatus.CLOSED, at=clock.now())
    change_status(db, case, CaseStatus.IN_CONTACT, actor=coordinator, now=clock.now())
    move(db, case, CaseStatus.PLACED, at=clock.now())
    clock.advance(timedelta(days=100))
    assert retention_job(app)["not_pertinent_tombstoned"] == 0


def test_a_call_that_ended_in_the_menu_loses_its_number_after_the_non_pertinent_period(
    app: Flask, db: Session, clock: FrozenClock
) -> None:
    db.add(
        PartnerCall(
            call_sid="CA" + "3" * 32,
            started_at=clock.now(),
            updated_at=clock.now(),
            caller_phone="+393331234567",
            outcome=CallOutcome.ENDED_IN_MENU,
        )
    )
    db.commit()
    clock.advance(timedelta(days=90) - timedelta(minutes=1))
    assert retention_job(app)["caseless_callers_forgotten"] == 0
    clock.advance(timedelta(minutes=2))
    assert retention_job(app)["caseless_callers_forgotten"] == 1
    db.expire_all()
    call = db.scalars(select(PartnerCall)).one()
    assert (call.caller_phone, call.outcome) == (None, "ended_in_menu")


# --- the command -------------------------------------------------------------------------------


def snapshot(db: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables retention touches, as stored (ciphertexts included)."""
    return {
        table: [
            tuple(row)
            for row in db.execute(text(f"SELECT * FROM {table} ORDER BY id"))  # noqa: S608 -- fixed names
        ]
        for table in ("cases", "handoffs", "partner_calls", "inbound_texts", "audit_entries")
    }


def test_the_command_dry_run_changes_nothing_then_the_run_does_everything_once(
    app: Flask,
    runner: FlaskCliRunner,
    sender: Sender,
    db: Session,
    clock: FrozenClock,
    twilio: TwilioStandIn,
) -> None:
    closed = open_case(sender, db, "C-1")
    to_closed(db, closed, clock.now())
    not_pertinent = open_case(sender, db, "C-2")
    move(db, not_pertinent, CaseStatus.ACCEPTED, CaseStatus.NOT_PERTINENT, at=clock.now())
    recording = twilio.add_recording("CA" + "2" * 32)
    db.add_all(
        [
            PartnerCall(
                call_sid="CA" + "2" * 32,
                started_at=clock.now(),
                updated_at=clock.now(),
                caller_phone="+393331234567",
                outcome=CallOutcome.RECORDED,
                case_id=not_pertinent.id,
                recording_sid=recording.sid,
            ),
            InboundText(case_id=closed.id, sender="e" * 32, body="aiuto", received_at=clock.now()),
        ]
    )
    db.commit()
    clock.advance(timedelta(days=3 * 365))
    before = snapshot(db)

    dry = runner.invoke(args=["retention", "run", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "nothing changed" in dry.output
    assert "     1  closed cases pseudonymised (would be)" in dry.output
    assert "     1  non-pertinent hand-offs reduced to a tombstone (would be)" in dry.output
    assert "     1  raw SMS texts emptied (would be)" in dry.output
    assert "     1  partner-line recordings deleted at Twilio (would be)" in dry.output
    assert snapshot(db) == before
    assert not any(r.method == "DELETE" for r in twilio.requests)

    done = runner.invoke(args=["retention", "run"])
    assert done.exit_code == 0, done.output
    assert "     1  closed cases pseudonymised" in done.output
    assert "     1  partner-line recordings deleted at Twilio" in done.output
    assert all(r.deleted for r in twilio.recordings)
    assert_pseudonymised(db, closed)
    assert_pseudonymised(db, not_pertinent)
    run = db.scalars(select(AuditEntry).where(AuditEntry.action == "retention")).one()
    assert (run.actor, run.detail["raw_texts_emptied"], run.detail["recordings_deleted"]) == (
        "cli",
        1,
        1,
    )

    again = runner.invoke(args=["retention", "run"])
    assert "     0  closed cases pseudonymised" in again.output
    assert db.scalar(select(func.count()).where(AuditEntry.action == "retention")) == 2


# --- settings ----------------------------------------------------------------------------------


def test_the_retention_periods_are_settings(app: Flask, tmp_path: Path, database_url: str) -> None:
    settings = get_settings(app)
    assert (settings.retention_case_months, settings.retention_not_pertinent_days) == (24, 90)
    environ = ali_environ(
        database_url,
        tmp_path,
        ALI_RETENTION_CASE_MONTHS="36",
        ALI_RETENTION_NOT_PERTINENT_DAYS="30",
    )
    loaded = load_settings(environ)
    assert (loaded.retention_case_months, loaded.retention_not_pertinent_days) == (36, 30)
    for name in ("ALI_RETENTION_CASE_MONTHS", "ALI_RETENTION_NOT_PERTINENT_DAYS"):
        with pytest.raises(SettingsError, match=name):
            load_settings(ali_environ(database_url, tmp_path, **{name: "0"}))


@pytest.mark.parametrize(
    ("now", "months", "expected"),
    [
        # 31 March (summer time) → 29 February (winter time) of a leap year, same Rome hour.
        (datetime(2028, 3, 31, 10, 0, tzinfo=UTC), 1, datetime(2028, 2, 29, 12, 0, tzinfo=ROME)),
        # Winter time now, summer time then: the wall clock is kept, not the UTC hour.
        (datetime(2028, 1, 1, 9, 0, tzinfo=UTC), 18, datetime(2026, 7, 1, 10, 0, tzinfo=ROME)),
        (datetime(2028, 1, 15, 9, 0, tzinfo=UTC), 13, datetime(2026, 12, 15, 10, 0, tzinfo=ROME)),
    ],
)
def test_months_are_counted_on_the_rome_calendar(
    now: datetime, months: int, expected: datetime
) -> None:
    assert months_before(now, months) == expected
