"""The partner line end to end: Twilio's signed requests of a whole call, TwiML read element
by element, the real twilio client sending the alerts to the stand-in."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from core.app import create_app
from core.clock import FrozenClock
from core.config import load_settings
from core.models import AuditEntry, User
from core.scheduler import run_job
from intake import recordings
from intake.models import CallOutcome, Partner, PartnerCall, PartnerPhone, ReporterType
from intake.retention import forget_caseless_callers, run_retention
from routing.models import Case, CaseEvent, Page
from tests.alerting import Chain, Phone, on_shift
from tests.conftest import FROM_NUMBER, PUBLIC_URL, UserFactory, ali_environ, login
from tests.twilio_standin import TwilioStandIn, TwilioWebhooks, new_sid

VOICE = f"{PUBLIC_URL}/twilio/voice"
PARTNER_PHONE = "+390302345678"  # a Brescia landline
STRANGER = "+393471234567"  # a mobile: no province in it


def twiml(response: TestResponse) -> ElementTree.Element:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/xml"
    root = ElementTree.fromstring(response.get_data(as_text=True))  # noqa: S314 -- our TwiML
    assert root.tag == "Response"
    return root


def says(element: ElementTree.Element) -> list[tuple[str, str]]:
    return [(say.text or "", say.get("language", "")) for say in element.iter("Say")]


def tags(root: ElementTree.Element) -> list[str]:
    return [child.tag for child in root]


@dataclass
class Line:
    """A caller on the project's number, as Twilio reports each step of the call."""

    hooks: TwilioWebhooks[TestResponse]
    caller: str
    sid: str = field(default_factory=lambda: new_sid("CA"))

    def call(self) -> ElementTree.Element:
        return twiml(self.hooks.inbound_call(VOICE, self.caller, FROM_NUMBER, call_sid=self.sid))

    def step(self, url: str, **extra: str) -> TestResponse:
        return self.hooks.inbound_step(url, self.sid, self.caller, FROM_NUMBER, **extra)

    def keys(self, root: ElementTree.Element, digits: str) -> ElementTree.Element:
        gather = root.find("Gather")
        assert gather is not None
        return twiml(self.step(gather.get("action") or "", Digits=digits))

    def no_key(self, root: ElementTree.Element) -> ElementTree.Element:
        redirect = root.find("Redirect")
        assert redirect is not None
        assert redirect.get("method") == "POST"
        return twiml(self.step(redirect.text or ""))

    def dial_ended(
        self, root: ElementTree.Element, status: str, duration: int | None = None
    ) -> ElementTree.Element:
        dial = root.find("Dial")
        assert dial is not None
        return twiml(
            self.hooks.dial_action(
                dial.get("action") or "",
                self.sid,
                status,
                from_=self.caller,
                to=FROM_NUMBER,
                duration=duration,
            )
        )

    def whisper(self, root: ElementTree.Element) -> Whisper:
        """The rung person picks up: their leg fetches the whisper."""
        number = root.find("Dial/Number")
        assert number is not None
        child = new_sid("CA")
        response = self.hooks.dialled_leg(
            number.get("url") or "", self.sid, child, from_=FROM_NUMBER, to=number.text or ""
        )
        return Whisper(self, child, number.text or "", twiml(response))


@dataclass
class Whisper:
    line: Line
    child_sid: str
    to: str
    root: ElementTree.Element

    def press(self, digits: str) -> ElementTree.Element:
        gather = self.root.find("Gather")
        assert gather is not None
        response = self.line.hooks.dialled_leg(
            gather.get("action") or "",
            self.line.sid,
            self.child_sid,
            from_=FROM_NUMBER,
            to=self.to,
            digits=digits,
        )
        return twiml(response)

    def no_key(self) -> ElementTree.Element:
        redirect = self.root.find("Redirect")
        assert redirect is not None
        response = self.line.hooks.dialled_leg(
            redirect.text or "", self.line.sid, self.child_sid, from_=FROM_NUMBER, to=self.to
        )
        return twiml(response)


def dialled_number(root: ElementTree.Element) -> str:
    dial = root.find("Dial")
    assert dial is not None
    assert dial.get("timeout") == "18"
    assert dial.get("callerId") == FROM_NUMBER
    assert dial.get("method") == "POST"
    [number] = list(dial)
    assert number.tag == "Number"
    assert number.get("method") == "POST"
    return number.text or ""


@pytest.fixture
def line(phone: Phone) -> Line:
    return Line(phone.hooks, STRANGER)


@pytest.fixture
def partner(db: Session) -> Partner:
    partner = Partner(
        name="Questura di Brescia",
        kind=ReporterType.LAW_ENFORCEMENT,
        province="BS",
        phones=[PartnerPhone(phone=PARTNER_PHONE)],
    )
    db.add(partner)
    db.commit()
    return partner


def cases(db: Session) -> list[Case]:
    db.expire_all()
    return list(db.scalars(select(Case).order_by(Case.id)))


def the_call(db: Session, line: Line) -> PartnerCall:
    db.expire_all()
    return db.scalars(select(PartnerCall).where(PartnerCall.call_sid == line.sid)).one()


def call_events(db: Session, case: Case) -> list[dict[str, object]]:
    query = select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.kind == "partner_call")
    return [event.data for event in db.scalars(query.order_by(CaseEvent.id))]


def test_a_partner_is_forwarded_and_pressing_1_connects_with_the_case_accepted_by_that_operator(
    phone: Phone, chain: Chain, partner: Partner, db: Session, twilio: TwilioStandIn
) -> None:
    line = Line(phone.hooks, PARTNER_PHONE)

    greeting = line.call()

    # Straight to its province: a short greeting, 9 for English, then forwarding.
    assert tags(greeting) == ["Gather", "Redirect"]
    gather = greeting.find("Gather")
    assert gather is not None
    assert gather.get("numDigits") == "1"
    assert says(gather) == [
        (
            "Buongiorno. La stiamo mettendo in contatto con l'operatore di turno per la "
            "provincia di Brescia.",
            "it-IT",
        ),
        ("For English, press 9.", "en-GB"),
    ]
    forwarding = line.no_key(greeting)
    assert tags(forwarding) == ["Say", "Dial"]
    assert dialled_number(forwarding) == chain.primary.phone

    whisper = line.whisper(forwarding)
    assert tags(whisper.root) == ["Gather", "Redirect"]
    assert (
        says(whisper.root)
        == [("Chiamata per la provincia di Brescia, premi 1 per rispondere.", "it-IT")] * 2
    )
    assert cases(db) == []  # nobody has taken it yet

    connected = whisper.press("1")

    assert tags(connected) == []  # an empty answer: the operator is bridged to the caller
    [case] = cases(db)
    assert (case.channel, case.status, case.accepted_by_id) == (
        "phone",
        "accepted",
        chain.primary.id,
    )
    assert (case.province, case.province_source) == ("BS", "partner")
    assert (case.urgency, case.reporter_type) == ("urgent", "law_enforcement")
    assert case.caller_phone == PARTNER_PHONE
    assert case.contact_safe == "yes"
    # Nobody else is paged for a call somebody took: no SMS, no call left Ali.
    assert twilio.messages == []
    assert twilio.calls == []
    assert {page.status for page in db.scalars(select(Page))} <= {"canceled"}

    # The call ends: the answered call never rings the next person.
    ended = line.dial_ended(forwarding, "completed", duration=95)
    assert tags(ended) == ["Hangup"]
    call = the_call(db, line)
    assert (call.outcome, call.connected_to_id, call.duration_seconds) == (
        "connected",
        chain.primary.id,
        95,
    )
    assert [(e["outcome"], e.get("duration_seconds")) for e in call_events(db, case)] == [
        ("connected", None),
        ("ended", 95),
    ]


def test_nobody_accepts_so_the_message_left_becomes_an_urgent_case_that_is_paged(
    line: Line, phone: Phone, chain: Chain, db: Session, twilio: TwilioStandIn
) -> None:
    menu = line.call()
    gather = menu.find("Gather")
    assert gather is not None
    spoken = says(gather)
    assert spoken[0] == ("Buongiorno. Scelga la provincia.", "it-IT")
    assert spoken[1:8] == [
        (f"Per {name} prema {n}.", "it-IT")
        for n, name in enumerate(
            ["Bergamo", "Brescia", "Cremona", "Lodi", "Lecco", "Mantova", "Pavia"], start=1
        )
    ]
    assert spoken[8] == ("For English, press 9.", "en-GB")

    first = line.keys(menu, "2")
    assert dialled_number(first) == chain.primary.phone
    # Voicemail picks up: it hears the whisper, presses nothing, its leg hangs up.
    assert tags(line.whisper(first).no_key()) == ["Hangup"]
    second = line.dial_ended(first, "completed")
    assert dialled_number(second) == chain.backup.phone
    third = line.dial_ended(second, "no-answer")
    assert dialled_number(third) == chain.coordinator.phone
    # The coordinator picks up and presses 2: not taken.
    assert tags(line.whisper(third).press("2")) == ["Hangup"]
    assert cases(db) == []

    asked = line.dial_ended(third, "completed")

    assert tags(asked) == ["Say", "Record", "Redirect"]
    record = asked.find("Record")
    assert record is not None
    assert record.get("maxLength") == "180"
    assert record.get("finishOnKey") == "#"
    assert (record.get("action") or "").endswith("/recorded")
    assert (record.get("recordingStatusCallback") or "").endswith("/recording")

    recording = twilio.add_recording(line.sid, duration=12)
    thanks = twiml(
        line.hooks.record_action(
            record.get("action") or "",
            line.sid,
            recording.sid,
            recording.media_url,
            12,
            from_=line.caller,
            to=FROM_NUMBER,
        )
    )

    assert tags(thanks) == ["Say", "Hangup"]
    [case] = cases(db)
    assert (case.channel, case.status, case.urgency) == ("phone", "dispatched", "urgent")
    assert (case.province, case.province_source) == ("BS", "explicit")
    assert case.caller_phone == STRANGER
    assert case.contact_safe == "unknown"
    # The alert engine took over: the primary is paged through the real client.
    [sms] = phone.sms_to(chain.primary)
    assert sms.startswith(f"ALI {case.reference} URGENTE")
    assert len(phone.calls_to(chain.primary)) == 1
    call = the_call(db, line)
    assert (call.outcome, call.recording_sid, call.case_id) == ("recorded", recording.sid, case.id)
    assert call.chain == [chain.primary.id, chain.backup.id, chain.coordinator.id]
    [event] = call_events(db, case)
    assert (event["outcome"], event["recording"], event["rung"]) == ("recorded", True, 3)

    stored = line.hooks.recording_status(
        record.get("recordingStatusCallback") or "",
        line.sid,
        recording.sid,
        recording.media_url,
        12,
    )
    assert stored.status_code == 204
    assert the_call(db, line).recording_url == recording.media_url
    assert len(cases(db)) == 1  # the callback opened no second case


def test_no_key_and_wrong_keys_repeat_the_menu_then_the_coordinators_are_rung(
    line: Line, chain: Chain, db: Session
) -> None:
    menu = line.call()

    again = line.no_key(menu)
    assert tags(again) == ["Gather", "Redirect"]
    wrong = line.keys(again, "8")  # seven provinces are served
    assert tags(wrong) == ["Say", "Gather", "Redirect"]
    assert says(wrong)[0] == ("Questa scelta non c'è.", "it-IT")
    star = line.keys(wrong, "*")
    assert tags(star) == ["Say", "Dial"]

    # Three menus without a usable key: the call goes on, to the coordinators (a mobile
    # carries no province).
    assert dialled_number(star) == chain.coordinator.phone
    call = the_call(db, line)
    assert (call.menu_attempts, call.province, call.province_source) == (3, None, "unresolved")
    assert call.chain == [chain.coordinator.id]


def test_nine_switches_the_menu_to_english_and_the_whisper_stays_in_the_operators_language(
    line: Line, chain: Chain, db: Session, make_user: UserFactory
) -> None:
    menu = line.call()

    english = line.keys(menu, "9")

    gather = english.find("Gather")
    assert gather is not None
    spoken = says(gather)
    assert spoken[0] == ("Hello. Choose the province.", "en-GB")
    assert spoken[2] == ("For Brescia press 2.", "en-GB")
    assert all(language == "en-GB" for _text, language in spoken)
    assert len(spoken) == 8  # no "press 9" any more
    forwarding = line.keys(english, "2")
    assert says(forwarding)[0] == ("Please hold: we are connecting you.", "en-GB")
    whisper = line.whisper(forwarding)
    assert says(whisper.root)[0][1] == "it-IT"
    assert the_call(db, line).language == "en"


def test_an_english_speaking_operator_hears_the_whisper_in_english(
    line: Line, chain: Chain, db: Session
) -> None:
    chain.primary.locale = "en"
    db.commit()
    forwarding = line.keys(line.call(), "2")

    whisper = line.whisper(forwarding)

    assert says(whisper.root)[0] == (
        "Call for the province of Brescia, press 1 to answer.",
        "en-GB",
    )


def test_a_partner_can_switch_to_english_during_the_greeting(
    phone: Phone, chain: Chain, partner: Partner, db: Session
) -> None:
    line = Line(phone.hooks, PARTNER_PHONE)

    forwarding = line.keys(line.call(), "9")

    assert says(forwarding)[0] == ("Please hold: we are connecting you.", "en-GB")
    assert dialled_number(forwarding) == chain.primary.phone


def test_a_call_that_ends_in_the_menu_is_logged_without_a_case(
    line: Line, db: Session, phone: Phone
) -> None:
    line.call()

    response = phone.hooks.call_status(
        f"{VOICE}/status",
        line.sid,
        "completed",
        from_=line.caller,
        to=FROM_NUMBER,
        direction="inbound",
    )

    assert response.status_code == 204
    call = the_call(db, line)
    assert (call.outcome, call.case_id) == ("ended_in_menu", None)
    assert call.caller_phone == STRANGER
    assert cases(db) == []


def test_a_caller_who_hangs_up_while_it_rings_is_a_missed_call_case(
    line: Line, phone: Phone, chain: Chain, db: Session
) -> None:
    line.keys(line.call(), "2")

    phone.hooks.call_status(
        f"{VOICE}/status",
        line.sid,
        "completed",
        from_=line.caller,
        to=FROM_NUMBER,
        direction="inbound",
    )

    [case] = cases(db)
    assert (case.urgency, case.caller_phone, case.province) == ("urgent", STRANGER, "BS")
    assert the_call(db, line).outcome == CallOutcome.MISSED
    assert len(phone.sms_to(chain.primary)) == 1


def test_an_operator_without_a_phone_is_skipped_and_the_next_one_is_rung(
    line: Line, phone: Phone, chain: Chain, db: Session
) -> None:
    first = line.keys(line.call(), "2")
    assert dialled_number(first) == chain.primary.phone
    # While the primary's phone rings, the backup's number is removed from their account.
    chain.backup.phone = None
    db.commit()

    after = line.dial_ended(first, "no-answer")

    assert tags(after) == ["Dial"]
    assert dialled_number(after) == chain.coordinator.phone
    assert the_call(db, line).attempt == 2
    # The coordinator's leg ends unanswered too: now, and only now, a message is asked for.
    assert "Record" in tags(line.dial_ended(after, "no-answer"))


def test_a_call_whose_callbacks_never_come_becomes_a_paged_missed_call_case(
    line: Line, phone: Phone, chain: Chain, db: Session, clock: FrozenClock, app: Flask
) -> None:
    line.keys(line.call(), "2")  # the primary rings; then Twilio says nothing more
    job = app.extensions["ali.jobs"]["intake.stalled_calls"]
    assert job.seconds == 60

    clock.advance(timedelta(minutes=9))
    assert run_job(app, job) == 0
    assert cases(db) == []
    clock.advance(timedelta(minutes=2))
    assert run_job(app, job) == 1

    [case] = cases(db)
    assert (case.urgency, case.caller_phone, case.province) == ("urgent", STRANGER, "BS")
    assert the_call(db, line).outcome == CallOutcome.MISSED
    assert len(phone.sms_to(chain.primary)) == 1  # paged at once, escalated from there
    assert run_job(app, job) == 0  # once


def test_a_stalled_call_keeps_its_callers_number_past_the_menus_retention(
    line: Line, db: Session, clock: FrozenClock
) -> None:
    line.keys(line.call(), "2")
    clock.advance(timedelta(days=400))
    forgotten = forget_caseless_callers(db, now=clock.now(), days=90)
    db.commit()
    assert forgotten == 0
    assert the_call(db, line).caller_phone == STRANGER


def test_the_caller_number_is_encrypted_at_rest(line: Line, db: Session, engine: Engine) -> None:
    line.call()
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT caller_phone FROM partner_calls").scalar_one()
    assert STRANGER not in stored
    assert the_call(db, line).caller_phone == STRANGER


def test_unsigned_or_forged_requests_are_refused(client: FlaskClient, line: Line) -> None:
    params = {"CallSid": line.sid, "From": STRANGER, "To": FROM_NUMBER}
    assert client.post("/twilio/voice", data=params).status_code == 403
    forged = {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}
    assert client.post("/twilio/voice", data=params, headers=forged).status_code == 403
    line.call()
    for step in ("choice", "dialled?attempt=0", "whisper/key?attempt=0", "recorded", "recording"):
        assert client.post(f"/twilio/voice/1/{step}", data=params).status_code == 403
    assert client.post("/twilio/voice/status", data=params).status_code == 403


def test_a_signed_request_for_another_calls_id_is_not_found(line: Line, phone: Phone) -> None:
    line.call()
    other = Line(phone.hooks, "+393479999999")
    other.call()
    response = other.step(f"{VOICE}/{1}/choice", Digits="2")
    assert response.status_code == 404


def test_more_than_eight_provinces_take_two_digits_and_hash(
    database_url: str,
    tmp_path: Path,
    twilio: TwilioStandIn,
    engine: Engine,
    clock: FrozenClock,
    db: Session,
) -> None:
    served = "BG,BS,CR,LO,LC,MN,PV,MI,CO,VA"
    settings = load_settings(
        ali_environ(
            database_url, tmp_path, ALI_TWILIO_API_BASE=twilio.base_url, ALI_PROVINCES=served
        )
    )
    app: Flask = create_app(settings, clock=clock, engine=engine)
    from tests.twilio_standin import flask_transport  # noqa: PLC0415

    hooks = TwilioWebhooks(
        twilio.auth_token, twilio.account_sid, flask_transport(app.test_client(), PUBLIC_URL)
    )
    line = Line(hooks, STRANGER)

    menu = line.call()

    gather = menu.find("Gather")
    assert gather is not None
    assert gather.get("numDigits") is None
    assert gather.get("finishOnKey") == "#"
    spoken = says(gather)
    assert spoken[0] == (
        "Buongiorno. Scelga la provincia, poi prema il tasto cancelletto.",
        "it-IT",
    )
    assert spoken[9] == ("Per Como prema 0 9.", "it-IT")
    assert spoken[10] == ("Per Varese prema 1 0.", "it-IT")
    line.keys(menu, "09")
    call = the_call(db, line)
    assert (call.province, call.province_source) == ("CO", "explicit")

    english = Line(hooks, "+393475555555")
    assert says(english.keys(english.call(), "9"))[0][1] == "en-GB"


# --- recordings ---------------------------------------------------------------------------------


def leave_a_message(line: Line, twilio: TwilioStandIn) -> str:
    """A call nobody takes (each person rung does not answer) and a message: its sid."""
    asked = line.keys(line.call(), "2")
    while asked.find("Dial") is not None:
        asked = line.dial_ended(asked, "no-answer")
    record = asked.find("Record")
    assert record is not None
    recording = twilio.add_recording(line.sid, duration=9, audio=b"ID3-the-message")
    line.hooks.record_action(
        record.get("action") or "",
        line.sid,
        recording.sid,
        recording.media_url,
        9,
        from_=line.caller,
        to=FROM_NUMBER,
    )
    return recording.sid


def test_the_recording_is_played_through_ali_to_those_who_may_see_the_case_each_play_audited(
    line: Line,
    chain: Chain,
    twilio: TwilioStandIn,
    client: FlaskClient,
    db: Session,
    make_user: UserFactory,
) -> None:
    sid = leave_a_message(line, twilio)
    [case] = cases(db)
    login(client, chain.primary.email)

    response = client.get(f"/cases/{case.reference}/recording")

    assert response.status_code == 200
    assert response.mimetype == "audio/mpeg"
    assert response.data == b"ID3-the-message"
    assert response.headers["Cache-Control"] == "no-store"
    fetches = [r for r in twilio.requests if "/Recordings/" in r.path]
    assert [(r.method, r.path.rsplit("/", 1)[1], r.authorized) for r in fetches] == [
        ("GET", f"{sid}.mp3", True)
    ]
    played = db.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "read",
            AuditEntry.object_id == str(case.id),
            AuditEntry.actor_id == chain.primary.id,
        )
    ).all()
    assert [entry.fields for entry in played] == [["recording"]]

    stranger: User = make_user(provinces=("MI",), email="milano@ali.example")
    other = client.application.test_client()
    login(other, stranger.email)
    assert other.get(f"/cases/{case.reference}/recording").status_code == 404
    assert other.get("/cases/BS-2026-9999/recording").status_code == 404
    assert other.get("/cases/nonsense%00/recording").status_code == 404
    anonymous = client.application.test_client()
    assert anonymous.get(f"/cases/{case.reference}/recording").status_code in {302, 401}


def test_recordings_are_deleted_at_twilio_after_the_retention_period(
    line: Line,
    chain: Chain,
    twilio: TwilioStandIn,
    client: FlaskClient,
    db: Session,
    clock: FrozenClock,
    app: Flask,
) -> None:
    sid = leave_a_message(line, twilio)
    [case] = cases(db)
    job = app.extensions["ali.jobs"]["intake.recordings_retention"]

    clock.advance(timedelta(days=29, hours=23))
    assert run_job(app, job) == 0
    clock.advance(timedelta(hours=2))
    assert run_job(app, job) == 1

    [deleted] = [r for r in twilio.requests if r.method == "DELETE"]
    assert deleted.path.endswith(f"/Recordings/{sid}.json")
    assert deleted.authorized
    assert all(recording.deleted for recording in twilio.recordings)
    call = the_call(db, line)
    assert call.recording_deleted_at == clock.now()
    assert run_job(app, job) == 0  # once
    login(client, chain.primary.email)
    assert client.get(f"/cases/{case.reference}/recording").status_code == 404
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "delete")).one()
    assert (entry.object_type, entry.object_id) == ("recording", str(call.id))


def test_a_recording_already_gone_at_twilio_counts_as_deleted(
    line: Line, twilio: TwilioStandIn, db: Session, clock: FrozenClock, app: Flask
) -> None:
    leave_a_message(line, twilio)
    twilio.reset()  # Twilio no longer has it
    clock.advance(timedelta(days=31))
    assert run_job(app, app.extensions["ali.jobs"]["intake.recordings_retention"]) == 1
    assert the_call(db, line).recording_deleted_at is not None


def test_a_connected_caller_who_hangs_up_first_ends_the_call_on_the_case(
    line: Line, phone: Phone, chain: Chain, db: Session, clock: FrozenClock
) -> None:
    forwarding = line.keys(line.call(), "2")
    line.whisper(forwarding).press("1")
    clock.advance(timedelta(seconds=40))

    phone.hooks.call_status(
        f"{VOICE}/status",
        line.sid,
        "completed",
        duration=75,
        from_=line.caller,
        to=FROM_NUMBER,
        direction="inbound",
    )

    call = the_call(db, line)
    assert (call.outcome, call.duration_seconds) == ("connected", 40)
    [case] = cases(db)
    assert [e["outcome"] for e in call_events(db, case)] == ["connected", "ended"]
    # The <Dial> action coming after it records nothing twice.
    line.dial_ended(forwarding, "completed", duration=40)
    assert len(call_events(db, case)) == 2


def test_the_retention_period_is_counted_in_real_time_across_the_october_clock_change(
    line: Line,
    chain: Chain,
    twilio: TwilioStandIn,
    db: Session,
    clock: FrozenClock,
    app: Flask,
    make_user: UserFactory,
) -> None:
    # 2026-10-10 12:00 in Rome; the clocks go back on 2026-10-25, so 30 days later the wall
    # clock says 11:00: the recording goes 30 × 24 hours after the call, not an hour late.
    clock.set(datetime(2026, 10, 10, 10, 0, tzinfo=UTC))
    on_shift(db, chain.primary, at=clock.now())
    leave_a_message(line, twilio)
    job = app.extensions["ali.jobs"]["intake.recordings_retention"]
    clock.set(datetime(2026, 11, 9, 9, 59, tzinfo=UTC))
    assert run_job(app, job) == 0
    clock.set(datetime(2026, 11, 9, 10, 1, tzinfo=UTC))
    assert run_job(app, job) == 1


def test_odd_digits_in_an_attempt_are_not_found(line: Line, db: Session) -> None:
    line.keys(line.call(), "2")
    call = the_call(db, line)
    for odd in ("%C2%B2", "99999"):  # "²", as Twilio would send it in the URL
        response = line.step(f"{VOICE}/{call.id}/dialled?attempt={odd}", DialCallStatus="busy")
        assert response.status_code == 404


def test_a_recording_whose_deletion_keeps_failing_does_not_block_the_later_ones(
    phone: Phone,
    chain: Chain,
    twilio: TwilioStandIn,
    db: Session,
    clock: FrozenClock,
    app: Flask,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(recordings, "BATCH", 1)  # a batch of one stands for a batch of 100
    first, second = Line(phone.hooks, STRANGER), Line(phone.hooks, PARTNER_PHONE)
    leave_a_message(first, twilio)
    leave_a_message(second, twilio)
    job = app.extensions["ali.jobs"]["intake.recordings_retention"]
    clock.advance(timedelta(days=31))

    twilio.fail_next(1, 500)
    assert run_job(app, job) == 0  # the oldest failed: tried again in an hour, not next run
    assert run_job(app, job) == 1
    assert (
        the_call(db, first).recording_deleted_at,
        the_call(db, second).recording_deleted_at,
    ) == (
        None,
        clock.now(),
    )
    assert run_job(app, job) == 0
    clock.advance(timedelta(minutes=61))
    assert run_job(app, job) == 1
    assert the_call(db, first).recording_deleted_at == clock.now()
    failed = db.scalars(select(AuditEntry).where(AuditEntry.action == "delete_failed")).one()
    assert (failed.object_type, failed.object_id) == ("recording", str(the_call(db, first).id))


def test_the_retention_run_goes_past_batches_that_failed(
    phone: Phone,
    chain: Chain,
    twilio: TwilioStandIn,
    db: Session,
    clock: FrozenClock,
    app: Flask,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(recordings, "BATCH", 1)
    lines = [Line(phone.hooks, STRANGER), Line(phone.hooks, PARTNER_PHONE)]
    for each in lines:
        leave_a_message(each, twilio)
    clock.advance(timedelta(days=31))
    twilio.fail_next(1, 500)
    with app.app_context():
        counts = run_retention(db, app.extensions["ali.telephony"], now=clock.now())
    assert counts.recordings_deleted == 1
    assert [the_call(db, each).recording_deleted_at for each in lines] == [None, clock.now()]
