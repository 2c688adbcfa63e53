"""Alerts end to end: a signed hand-off, the real twilio client against the stand-in, Twilio's
signed callbacks back into Ali, the clock moved by hand. Nothing here sleeps."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from routing.models import Case, CaseEvent, DispatchState
from tests.alerting import (
    Chain,
    Phone,
    dispatch_of,
    events,
    on_shift,
    pages,
    reply_text,
    spoken,
    the_case,
)
from tests.conftest import UserFactory
from tests.intake.signed import Sender

EMERGENCY = {
    "external_id": "NV-1",
    "province": "BS",
    "urgency": "emergency",
    "summary": "Maria, 19 anni, chiede aiuto in via Roma",
    "callback_phone": "+393337654321",
}


def test_a_handoff_pages_the_primary_by_sms_and_call_right_after_the_commit(
    sender: Sender, chain: Chain, phone: Phone, db: Session
) -> None:
    response = sender.post(EMERGENCY)
    assert response.status_code == 201
    assert response.get_json()["status"] == "dispatched"
    # No scheduler runs in the tests: these were sent after the answer, not at a tick.
    [sms] = phone.sms_to(chain.primary)
    assert sms.startswith("ALI BS-2026-0001 EMERGENZA")
    assert "Rispondi 1 per accettare, 2 per rifiutare" in sms
    assert sms.endswith("https://ali.example.org/cases/BS-2026-0001")
    for private in ("Maria", "19", "via Roma", "3337654321"):
        assert private not in sms.replace("2026-0001", "")
    [call] = phone.calls_to(chain.primary)
    assert call.url == f"https://ali.example.org/twilio/alert/{pages(db)[1].id}"
    assert call.machine_detection == "DetectMessageEnd"
    assert call.async_amd == "true"
    assert call.status_callback == "https://ali.example.org/twilio/status"
    assert call.timeout == "18"
    assert phone.sms_to(chain.backup) == []
    assert phone.calls_to(chain.backup) == []
    assert events(db)[:5] == ["created", "routed", "dispatched", "step", "page_sent"]


def test_pressing_1_on_the_alert_call_accepts(
    sender: Sender, chain: Chain, phone: Phone, db: Session
) -> None:
    sender.post(EMERGENCY)
    [call] = phone.calls_to(chain.primary)
    menu = phone.answer(call.sid)
    assert 'language="it-IT"' in menu.get_data(as_text=True)
    assert "Premi 1 per accettare, 2 per rifiutare" in spoken(menu)
    answer = phone.press(call.sid, "1")
    assert "accettato" in spoken(answer).lower()
    case = the_case(db, "BS-2026-0001")
    assert (case.status, case.accepted_by_id) == ("accepted", chain.primary.id)
    status = sender.get("/api/v1/handoffs/NV-1").get_json()
    assert (status["accepted"], status["accepted_by"]) == (True, "Paola Primaria")
    assert status["accepted_at"] is not None
    assert dispatch_of(db, "BS-2026-0001").state == DispatchState.ACCEPTED
    # Nothing more happens: the clock moves past every step and nobody else is paged.
    phone.tick(minutes=30)
    assert phone.sms_to(chain.backup) == []
    assert phone.sms_to(chain.coordinator) == []


def test_another_key_repeats_the_menu_and_no_key_twice_is_not_reached(
    sender: Sender, chain: Chain, phone: Phone, db: Session
) -> None:
    sender.post(EMERGENCY)
    [call] = phone.calls_to(chain.primary)
    again = phone.press(call.sid, "7")
    assert "Premi 1" in spoken(again)
    assert the_case(db, "BS-2026-0001").status == "dispatched"
    first = phone.answer(call.sid).get_data(as_text=True)
    assert "attempt=2" in first
    second = phone.hooks.signed_post(
        "https://ali.example.org/twilio/alert/2?attempt=2", {"CallSid": call.sid}
    )
    assert "/noinput" in second.get_data(as_text=True)
    gone = phone.hooks.signed_post(
        "https://ali.example.org/twilio/alert/2/noinput", {"CallSid": call.sid}
    )
    assert "<Hangup" in gone.get_data(as_text=True)
    # Not reached on the call: the next step (primary and backup) fires at once.
    assert len(phone.calls_to(chain.backup)) == 1
    assert "not_reached" in events(db)


def test_replying_ok_by_sms_accepts_and_confirms_naming_the_case(
    sender: Sender, chain: Chain, phone: Phone, db: Session
) -> None:
    sender.post(EMERGENCY)
    answer = reply_text(phone.text(chain.primary, "ok"))
    assert answer.startswith("ALI BS-2026-0001: accettato")
    case = the_case(db, "BS-2026-0001")
    assert (case.status, case.accepted_by_id) == ("accepted", chain.primary.id)
    # The ringing alert call is ended.
    [call] = phone.calls_to(chain.primary)
    assert phone.twilio.call(call.sid).updates[-1]["Status"] == ["completed"]


def test_replying_no_pages_the_backup_at_once(
    sender: Sender, chain: Chain, phone: Phone, db: Session
) -> None:
    sender.post(EMERGENCY)
    answer = reply_text(phone.text(chain.primary, "NO"))
    assert "BS-2026-0001" in answer
    assert "rifiutato" in answer
    # Backup paged without waiting out the step; the primary who declined is not paged again.
    assert len(phone.sms_to(chain.backup)) == 1
    assert len(phone.calls_to(chain.backup)) == 1
    assert len(phone.sms_to(chain.primary)) == 1
    assert len(phone.calls_to(chain.primary)) == 1
    assert dispatch_of(db, "BS-2026-0001").steps_fired == 2


def test_a_voicemail_answer_pages_the_next_tier_at_once(
    sender: Sender, chain: Chain, phone: Phone, db: Session
) -> None:
    sender.post(EMERGENCY)
    [call] = phone.calls_to(chain.primary)
    phone.machine(call.sid)
    assert len(phone.calls_to(chain.backup)) == 1
    # The machine hears one short sentence, no menu, and the case is not accepted.
    redirected = phone.twilio.call(call.sid).url or ""
    assert redirected.endswith("/machine")
    sentence = phone.hooks.signed_post(redirected, {"CallSid": call.sid})
    assert "Premi" not in spoken(sentence)
    assert the_case(db, "BS-2026-0001").status == "dispatched"
    assert "machine_answered" in events(db)


def test_a_synchronous_machine_answer_hears_no_menu(
    sender: Sender, chain: Chain, phone: Phone, db: Session
) -> None:
    sender.post(EMERGENCY)
    [call] = phone.calls_to(chain.primary)
    fetched = phone.hooks.call_answered(call.url, call.sid, answered_by="machine_start")
    assert "<Gather" not in fetched.get_data(as_text=True)
    assert len(phone.calls_to(chain.backup)) == 1


def test_a_busy_or_unanswered_call_moves_on_at_once(
    sender: Sender, chain: Chain, phone: Phone, db: Session
) -> None:
    sender.post(EMERGENCY)
    [call] = phone.calls_to(chain.primary)
    phone.call_status(call.sid, "no-answer")
    assert len(phone.calls_to(chain.backup)) == 1


def test_an_unanswered_emergency_reaches_the_coordinators_on_schedule(
    sender: Sender, chain: Chain, phone: Phone, db: Session
) -> None:
    sender.post(EMERGENCY)
    phone.tick(minutes=2.9)
    assert phone.sms_to(chain.backup) == []
    phone.tick(minutes=0.1)  # 3 minutes: primary again, and the backup
    assert len(phone.sms_to(chain.backup)) == 1
    assert len(phone.sms_to(chain.primary)) == 2
    phone.tick(minutes=2.9)
    assert phone.sms_to(chain.coordinator) == []
    phone.tick(minutes=0.1)  # 6 minutes: the coordinators
    assert len(phone.sms_to(chain.coordinator)) == 1
    assert len(phone.calls_to(chain.coordinator)) == 1
    for _repeat in range(3):  # the last step again, three times, 5 minutes apart
        phone.tick(minutes=5)
    assert len(phone.sms_to(chain.coordinator)) == 4
    assert dispatch_of(db, "BS-2026-0001").state == DispatchState.OPEN
    phone.tick(minutes=5)  # every step used up: unanswered, a final alert
    assert dispatch_of(db, "BS-2026-0001").state == DispatchState.EXHAUSTED
    final = phone.sms_to(chain.coordinator)[-1]
    assert "NESSUNO" in final
    assert "unanswered" in events(db)
    phone.tick(minutes=60)
    assert len(phone.sms_to(chain.coordinator)) == 5


def test_a_tier_with_nobody_on_call_is_skipped_with_an_event(
    sender: Sender, make_user: UserFactory, phone: Phone, db: Session
) -> None:
    coordinator = make_user(roles=("coordinator",), provinces=())
    sender.post(EMERGENCY)  # nobody on the BS rota at all
    assert len(phone.sms_to(coordinator)) == 1
    skipped = db.scalars(select(CaseEvent).where(CaseEvent.kind == "nobody_on_call")).all()
    assert [e.data["tier"] for e in skipped] == ["primary", "primary", "backup"]
    assert {e.data["reason"] for e in skipped} == {"nobody_on_call"}


def test_an_operator_without_a_verified_phone_is_not_paged(
    sender: Sender, make_user: UserFactory, chain: Chain, phone: Phone, db: Session
) -> None:
    chain.primary.phone_verified_at = None
    db.commit()
    sender.post(EMERGENCY)
    assert phone.sms_to(chain.primary) == []
    assert len(phone.sms_to(chain.backup)) == 1
    reasons = db.scalars(select(CaseEvent).where(CaseEvent.kind == "nobody_on_call")).all()
    assert reasons[0].data["reason"] == "no_verified_phone"


def test_unresolved_and_out_of_area_cases_go_to_the_coordinators(
    sender: Sender, chain: Chain, phone: Phone
) -> None:
    sender.post({"external_id": "NV-x", "urgency": "urgent"})
    sender.post({"external_id": "NV-mi", "province": "MI", "urgency": "urgent"})
    assert len(phone.sms_to(chain.coordinator)) == 2
    assert phone.sms_to(chain.primary) == []


def test_a_bare_reply_with_two_open_pages_takes_the_latest_and_says_so(
    sender: Sender, chain: Chain, phone: Phone, db: Session, clock: FrozenClock
) -> None:
    sender.post(EMERGENCY)
    phone.tick(minutes=1)
    sender.post(EMERGENCY | {"external_id": "NV-2"})
    answer = reply_text(phone.text(chain.primary, "1"))
    assert answer.startswith("ALI BS-2026-0002: accettato")
    assert "1" in answer.split("BS-2026-0002", 1)[1]  # one more open alert
    assert the_case(db, "BS-2026-0002").status == "accepted"
    assert the_case(db, "BS-2026-0001").status == "dispatched"
    named = reply_text(phone.text(chain.primary, "OK BS-1"))
    assert named.startswith("ALI BS-2026-0001: accettato")
    assert the_case(db, "BS-2026-0001").status == "accepted"


def test_on_accept_the_others_paged_are_told_once_who_has_it(
    sender: Sender, chain: Chain, phone: Phone, db: Session
) -> None:
    sender.post(EMERGENCY)
    phone.tick(minutes=3)  # primary and backup paged
    [_first, second_call] = phone.calls_to(chain.primary)
    answer = reply_text(phone.text(chain.backup, "SÌ"))
    assert "accettato" in answer
    taken = [text for text in phone.sms_to(chain.primary) if "preso in carico" in text]
    assert taken == ["ALI BS-2026-0001: preso in carico da Bruno Backup."]
    assert phone.twilio.call(second_call.sid).updates[-1]["Status"] == ["completed"]
    late = reply_text(phone.text(chain.primary, "OK"))
    assert late == "ALI BS-2026-0001 è già stato preso in carico da Bruno Backup."
    assert the_case(db, "BS-2026-0001").accepted_by_id == chain.backup.id
    # A call picked up after that hears who has it, with no menu; a late key is told too.
    assert "già stato preso in carico da Bruno Backup" in spoken(phone.answer(second_call.sid))
    late_key = phone.hooks.gather(
        f"{second_call.url}/key", second_call.sid, "1", to=chain.primary.phone or ""
    )
    assert "Bruno Backup" in spoken(late_key)
    assert the_case(db, "BS-2026-0001").accepted_by_id == chain.backup.id


def test_gibberish_gets_help_at_most_five_times_an_hour(
    chain: Chain, phone: Phone, db: Session
) -> None:
    answers = [reply_text(phone.text(chain.primary, "pronto?")) for _ in range(6)]
    assert all("1" in text and "OK" in text for text in answers[:5])
    assert answers[5] == ""
    phone.tick(minutes=61)
    assert reply_text(phone.text(chain.primary, "pronto?")) != ""


def test_a_text_with_nothing_open_says_so(chain: Chain, phone: Phone) -> None:
    assert reply_text(phone.text(chain.primary, "OK")) == "ALI: nessun avviso aperto per te."


def test_an_english_speaking_operator_gets_english(
    sender: Sender, make_user: UserFactory, db: Session, phone: Phone, clock: FrozenClock
) -> None:
    operator = make_user(locale="en", provinces=("BS",))
    on_shift(db, operator, at=clock.now())
    sender.post(EMERGENCY)
    [sms] = phone.sms_to(operator)
    assert sms.startswith("ALI BS-2026-0001 EMERGENCY")
    [call] = phone.calls_to(operator)
    assert 'language="en-GB"' in phone.answer(call.sid).get_data(as_text=True)


def test_delivery_statuses_are_monotonic_and_duplicates_harmless(
    sender: Sender, chain: Chain, phone: Phone, db: Session
) -> None:
    sender.post(EMERGENCY)
    sms_page = pages(db)[0]
    assert sms_page.provider_sid is not None
    phone.message_status(sms_page.provider_sid, "delivered")
    phone.message_status(sms_page.provider_sid, "sent")  # late
    phone.message_status(sms_page.provider_sid, "delivered")  # again
    assert pages(db)[0].status == "delivered"
    assert phone.sms_to(chain.backup) == []  # a delivered SMS waits for an answer


def test_a_failed_sms_is_followed_by_a_call_at_once(
    sender: Sender, chain: Chain, phone: Phone, db: Session
) -> None:
    sender.post(EMERGENCY | {"urgency": "ordinary"})  # ordinary: the first step is SMS only
    assert phone.calls_to(chain.primary) == []
    [sms_page] = pages(db)
    phone.message_status(sms_page.provider_sid or "", "undelivered", error_code=30003)
    assert len(phone.calls_to(chain.primary)) == 1
    assert phone.sms_to(chain.backup) == []


def test_a_text_from_an_unknown_number_opens_an_urgent_case_with_a_neutral_reply(
    chain: Chain, phone: Phone, db: Session
) -> None:
    answer = phone.hooks.inbound_sms(
        "https://ali.example.org/twilio/sms",
        from_="+393471234567",
        to="+390212345678",
        body="aiuto\x00 sono alla stazione",
    )
    text = reply_text(answer)
    assert text == "Messaggio ricevuto, rif. XX-2026-0001"
    case = the_case(db, "XX-2026-0001")
    assert (case.channel, case.urgency) == ("sms", "urgent")
    assert case.summary == "aiuto sono alla stazione"
    assert len(phone.sms_to(chain.coordinator)) == 1


def test_a_former_operators_late_reply_is_a_reply_and_anything_else_a_case(
    chain: Chain, phone: Phone, db: Session
) -> None:
    chain.backup.active = False
    db.commit()
    assert reply_text(phone.text(chain.backup, "OK")) == "ALI: nessun avviso aperto per te."
    assert db.scalars(select(CaseEvent)).all() == []
    # The number may be someone else's now: a message is never dropped.
    phone.text(chain.backup, "C'è una ragazza in pericolo alla stazione")
    case = db.scalars(select(Case)).one()
    assert (case.channel, case.urgency) == ("sms", "urgent")


def test_when_the_coordinator_on_call_cannot_be_paged_every_coordinator_is(
    sender: Sender, chain: Chain, make_user: UserFactory, phone: Phone, db: Session
) -> None:
    on_duty = make_user(roles=("coordinator",), provinces=(), verified=False)
    on_shift(db, on_duty, at=phone.clock.now(), tier="coordinator", province=None)
    sender.post({"external_id": "NV-c", "urgency": "emergency"})  # unresolved: coordinators
    assert phone.sms_to(on_duty) == []
    assert len(phone.sms_to(chain.coordinator)) == 1


def test_more_texts_from_the_same_number_join_its_case_without_more_alerts(
    chain: Chain, phone: Phone, db: Session
) -> None:
    def text(body: str) -> str:
        return reply_text(
            phone.hooks.inbound_sms(
                "https://ali.example.org/twilio/sms",
                from_="+393471234567",
                to="+390212345678",
                body=body,
            )
        )

    assert text("aiuto") == "Messaggio ricevuto, rif. XX-2026-0001"
    assert text("sono alla stazione") == ""  # an auto-responder gets nothing to answer
    assert text("Messaggio ricevuto") == ""
    assert len(phone.sms_to(chain.coordinator)) == 1
    case = the_case(db, "XX-2026-0001")
    assert case.summary == "aiuto\nsono alla stazione\nMessaggio ricevuto"
    assert len(db.scalars(select(Case)).all()) == 1
    phone.tick(minutes=61)
    assert text("ancora io") == "Messaggio ricevuto, rif. XX-2026-0002"
