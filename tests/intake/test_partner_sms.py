"""The SMS line end to end: signed texts from partners and strangers through /twilio/sms, the
cases they open or join, the replies they get, the alerts that go out (real twilio client,
stand-in), and the raw text emptied after the retention period. The clock is moved by hand."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from core.clock import FrozenClock
from core.config import get_settings, load_settings
from core.scheduler import run_job
from intake.models import InboundText, Partner
from intake.partners import create_partner, read_fields
from intake.sms import STRANGER_CASES_PER_DAY, looks_english, place_in_text
from routing.models import Case, CaseEvent
from routing.places import ProvinceSource
from tests.alerting import Chain, Phone, reply_text, the_case
from tests.conftest import FROM_NUMBER, PUBLIC_URL, ali_environ
from tests.intake.signed import Sender

SMS_URL = f"{PUBLIC_URL}/twilio/sms"
STRANGER = "+393471234567"
QUESTURA = "+390305550101"
# Words a reply to a stranger must never carry: the phone may be an exploiter's.
GIVEAWAYS = ("tratta", "trafficking", "ali", "mettiamo", "progetto", "project", "numero verde")


def text_from(phone: Phone, sender: str, body: str) -> TestResponse:
    return phone.hooks.inbound_sms(SMS_URL, from_=sender, to=FROM_NUMBER, body=body)


def partner(
    db: Session,
    clock: FrozenClock,
    *,
    name: str = "Questura di Brescia",
    kind: str = "law_enforcement",
    province: str = "BS",
    phones: str = QUESTURA,
) -> Partner:
    fields = read_fields(
        name=name, kind=kind, province=province, phones=phones, served=("BS", "BG", "CR")
    )
    made = create_partner(db, fields, now=clock.now(), actor="test")
    db.commit()
    return made


def cases(db: Session) -> list[Case]:
    db.expire_all()
    return list(db.scalars(select(Case).order_by(Case.id)))


def assert_neutral(reply: str) -> None:
    spaced = " " + " ".join(reply.lower().replace(",", " ").replace(".", " ").split()) + " "
    for giveaway in GIVEAWAYS:
        assert f" {giveaway} " not in spaced, reply


# --- partners ------------------------------------------------------------------------------


def test_a_partners_text_goes_to_its_province_with_a_full_reply(
    chain: Chain, phone: Phone, db: Session, clock: FrozenClock
) -> None:
    partner(db, clock)
    reply = reply_text(text_from(phone, QUESTURA, "Ragazza in questura, serve un posto stanotte"))
    assert reply == (
        "Segnalazione ricevuta, rif. BS-2026-0001. Il reperibile della provincia BS è stato "
        "avvisato. Per aggiungere dettagli scrivete entro 30 minuti."
    )
    case = the_case(db, "BS-2026-0001")
    assert (case.channel, case.urgency, case.province) == ("sms", "urgent", "BS")
    assert case.province_source == ProvinceSource.PARTNER
    assert case.reporter_type == "law_enforcement"
    assert case.summary == "Ragazza in questura, serve un posto stanotte"
    [alert] = phone.sms_to(chain.primary)
    assert alert.startswith("ALI BS-2026-0001 URGENTE")
    assert phone.sms_to(chain.coordinator) == []


def test_a_partner_writing_english_gets_english(
    chain: Chain, phone: Phone, db: Session, clock: FrozenClock
) -> None:
    partner(db, clock)
    reply = reply_text(
        text_from(phone, QUESTURA, "Hello, we have a young woman here who needs help tonight")
    )
    assert reply == (
        "Report received, ref. BS-2026-0001. The on-call operator for BS has been alerted. "
        "Text again within 30 minutes to add details."
    )


def test_a_partner_without_a_province_is_routed_by_the_text_or_triaged(
    chain: Chain, phone: Phone, db: Session, clock: FrozenClock
) -> None:
    partner(db, clock, name="Caritas", kind="ngo", province="", phones="+393405550199")
    reply = reply_text(text_from(phone, "+393405550199", "Donna sola alla stazione di Chiari"))
    assert reply.startswith("Segnalazione ricevuta, rif. BS-2026-0001.")
    case = the_case(db, "BS-2026-0001")
    assert (case.province_source, case.reporter_type) == ("municipality", "ngo")
    clock.advance(timedelta(hours=1))
    reply = reply_text(text_from(phone, "+393405550199", "Un'altra persona chiede aiuto"))
    assert reply == (
        "Segnalazione ricevuta, rif. XX-2026-0001. Il coordinamento è stato avvisato. "
        "Per aggiungere dettagli scrivete entro 30 minuti."
    )
    assert len(phone.sms_to(chain.coordinator)) == 1


def test_a_deactivated_partners_number_is_a_strangers_again(
    chain: Chain, phone: Phone, db: Session, clock: FrozenClock
) -> None:
    made = partner(db, clock)
    made.active = False
    db.commit()
    reply = reply_text(text_from(phone, QUESTURA, "Segnalazione"))
    assert reply == "Messaggio ricevuto, rif. BS-2026-0001"  # neutral; routed by its area code
    case = the_case(db, "BS-2026-0001")
    assert (case.reporter_type, case.province_source) == (None, "area_code")


# --- strangers -----------------------------------------------------------------------------


def test_a_strangers_text_is_triaged_with_a_neutral_reply(
    chain: Chain, phone: Phone, db: Session
) -> None:
    reply = reply_text(text_from(phone, STRANGER, "aiuto non posso uscire"))
    assert reply == "Messaggio ricevuto, rif. XX-2026-0001"
    assert_neutral(reply)
    case = the_case(db, "XX-2026-0001")
    assert (case.urgency, case.province_source, case.reporter_type) == (
        "urgent",
        "unresolved",
        None,
    )
    assert len(phone.sms_to(chain.coordinator)) == 1
    assert phone.sms_to(chain.primary) == []


def test_a_stranger_writing_english_gets_the_neutral_reply_in_english(
    chain: Chain, phone: Phone
) -> None:
    reply = reply_text(text_from(phone, STRANGER, "please help me I am locked in"))
    assert reply == "Message received, ref. XX-2026-0001"
    assert_neutral(reply)


def test_a_stranger_naming_a_comune_goes_to_its_province(
    chain: Chain, phone: Phone, db: Session
) -> None:
    reply = reply_text(text_from(phone, STRANGER, "sono a Chiari vicino alla stazione"))
    assert reply == "Messaggio ricevuto, rif. BS-2026-0001"
    assert the_case(db, "BS-2026-0001").province_source == "municipality"
    assert len(phone.sms_to(chain.primary)) == 1


def test_a_flood_from_one_number_opens_one_case_and_gets_one_reply(
    chain: Chain, phone: Phone, db: Session, clock: FrozenClock
) -> None:
    replies = []
    for n in range(40):
        replies.append(reply_text(text_from(phone, STRANGER, f"messaggio {n}")))
        clock.advance(timedelta(seconds=20))
    assert replies[0] == "Messaggio ricevuto, rif. XX-2026-0001"
    assert set(replies[1:]) == {""}
    [case] = cases(db)
    assert case.summary is not None
    assert case.summary.endswith("messaggio 39")
    assert len(phone.sms_to(chain.coordinator)) == 1  # one alert, not forty
    notes = db.scalars(select(CaseEvent).where(CaseEvent.kind == "note")).all()
    assert len(notes) == 39
    assert db.scalar(select(func.count()).select_from(InboundText)) == 40


def test_a_flood_from_a_sender_id_that_is_no_number_opens_one_case_and_gets_no_reply(
    chain: Chain, phone: Phone, db: Session, clock: FrozenClock
) -> None:
    replies = []
    for n in range(10):
        replies.append(reply_text(text_from(phone, "PROMO", f"offerta {n}")))
        clock.advance(timedelta(minutes=1))
    assert set(replies) == {""}  # nothing can be texted back to a sender ID
    [case] = cases(db)
    assert case.caller_phone is None
    assert len(phone.sms_to(chain.coordinator)) == 1


def test_texts_within_30_minutes_join_later_ones_open_a_new_case(
    chain: Chain, phone: Phone, db: Session, clock: FrozenClock
) -> None:
    assert (
        reply_text(text_from(phone, STRANGER, "primo")) == "Messaggio ricevuto, rif. XX-2026-0001"
    )
    clock.advance(timedelta(minutes=29))
    assert reply_text(text_from(phone, STRANGER, "secondo")) == ""
    clock.advance(timedelta(minutes=29))  # 58 min after the first, 29 after the last
    assert reply_text(text_from(phone, STRANGER, "terzo")) == ""
    assert the_case(db, "XX-2026-0001").summary == "primo\nsecondo\nterzo"
    clock.advance(timedelta(minutes=31))
    assert reply_text(text_from(phone, STRANGER, "quarto")) == (
        "Messaggio ricevuto, rif. XX-2026-0002"
    )
    assert the_case(db, "XX-2026-0002").summary == "quarto"
    assert len(phone.sms_to(chain.coordinator)) == 2


def test_a_text_joining_an_accepted_case_reaches_its_taker_once(
    chain: Chain, phone: Phone, db: Session, clock: FrozenClock
) -> None:
    partner(db, clock)
    text_from(phone, QUESTURA, "Ragazza in questura")
    assert reply_text(phone.text(chain.primary, "1")).startswith("ALI BS-2026-0001")
    before = len(phone.sms_to(chain.primary))
    clock.advance(timedelta(minutes=10))
    assert reply_text(text_from(phone, QUESTURA, "è tornato lui, aiuto")) == ""
    news = phone.sms_to(chain.primary)[before:]
    link = f"{PUBLIC_URL}/cases/BS-2026-0001"
    assert news == [f"ALI BS-2026-0001: nuovo messaggio sul caso {link}"]
    assert phone.sms_to(chain.backup) == []  # it went to the taker only, nobody else
    chain.primary.locale = "en"
    db.commit()
    clock.advance(timedelta(minutes=10))
    text_from(phone, QUESTURA, "again")
    assert phone.sms_to(chain.primary)[before + 1 :] == [
        f"ALI BS-2026-0001: new message on the case {link}"
    ]
    assert the_case(db, "BS-2026-0001").summary.endswith("aiuto\nagain")


def test_a_text_joining_a_case_nobody_accepted_is_left_to_the_dispatch(
    chain: Chain, phone: Phone, db: Session, clock: FrozenClock
) -> None:
    partner(db, clock)
    text_from(phone, QUESTURA, "Ragazza in questura")
    paged = len(phone.sms_to(chain.primary))
    clock.advance(timedelta(minutes=1))
    text_from(phone, QUESTURA, "altro")
    assert len(phone.sms_to(chain.primary)) == paged


def test_the_half_hour_is_real_time_across_the_autumn_change(
    chain: Chain, phone: Phone, db: Session, clock: FrozenClock
) -> None:
    # 02:55 CEST, then 02:05 CET: the wall clock goes back, ten real minutes have passed.
    clock.set(datetime(2026, 10, 25, 0, 55, tzinfo=UTC))
    assert reply_text(text_from(phone, STRANGER, "prima")).startswith("Messaggio ricevuto")
    clock.advance(timedelta(minutes=10))
    assert reply_text(text_from(phone, STRANGER, "dopo")) == ""
    # 02:40 CET, 35 real minutes after the last text: a new case.
    clock.advance(timedelta(minutes=35))
    assert reply_text(text_from(phone, STRANGER, "ancora")) == (
        "Messaggio ricevuto, rif. XX-2026-0002"
    )


def test_a_closed_case_is_not_joined(
    chain: Chain, phone: Phone, db: Session, clock: FrozenClock
) -> None:
    text_from(phone, STRANGER, "primo")
    db.execute(text("UPDATE cases SET status = 'closed'"))
    clock.advance(timedelta(minutes=5))
    assert reply_text(text_from(phone, STRANGER, "ancora")) == (
        "Messaggio ricevuto, rif. XX-2026-0002"
    )


def test_a_slow_drip_from_a_stranger_opens_few_cases_and_few_replies(
    chain: Chain, phone: Phone, db: Session, clock: FrozenClock
) -> None:
    replies = []
    for n in range(10):
        replies.append(reply_text(text_from(phone, STRANGER, f"ciao {n}")))
        clock.advance(timedelta(minutes=31))
    assert len([r for r in replies if r]) == STRANGER_CASES_PER_DAY
    assert len(cases(db)) == STRANGER_CASES_PER_DAY
    assert len(phone.sms_to(chain.coordinator)) == STRANGER_CASES_PER_DAY
    assert cases(db)[-1].summary == "\n".join(f"ciao {n}" for n in range(2, 10))
    clock.advance(timedelta(hours=24))
    assert reply_text(text_from(phone, STRANGER, "domani")) == (
        "Messaggio ricevuto, rif. XX-2026-0004"
    )


# --- operators and strangers' requests -------------------------------------------------------


def test_an_operators_late_ok_is_a_reply_and_never_a_case(
    sender: Sender, chain: Chain, phone: Phone, db: Session
) -> None:
    sender.post({"external_id": "NV-1", "province": "BS", "urgency": "emergency"})
    phone.tick(minutes=3)  # the backup is paged too
    assert len(phone.sms_to(chain.backup)) == 1
    assert reply_text(phone.text(chain.primary, "OK")).startswith("ALI BS-2026-0001")
    late = reply_text(phone.text(chain.backup, "OK"))
    assert late.startswith("ALI")
    assert "Paola Primaria" in late
    assert "Messaggio ricevuto" not in late
    assert [case.reference for case in cases(db)] == ["BS-2026-0001"]
    assert db.scalar(select(func.count()).select_from(InboundText)) == 0


def test_an_unsigned_or_forged_text_is_refused(chain: Chain, phone: Phone, db: Session) -> None:
    params = {"From": STRANGER, "To": FROM_NUMBER, "Body": "aiuto"}
    assert phone.hooks.post(SMS_URL, params).status_code == 403
    assert phone.hooks.post(SMS_URL, params, signature="bm90IGEgc2lnbmF0dXJl").status_code == 403
    assert cases(db) == []


def test_no_phone_number_or_text_reaches_the_logs(
    chain: Chain, phone: Phone, db: Session, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    partner(db, clock)
    text_from(phone, STRANGER, "segreto 1234")
    text_from(phone, QUESTURA, "riservato")
    logged = caplog.text
    for secret in (STRANGER, STRANGER[3:], QUESTURA[3:], "segreto", "riservato"):
        assert secret not in logged


# --- the raw text --------------------------------------------------------------------------


def test_the_raw_text_is_encrypted_and_emptied_after_the_retention_period(
    app: Flask, chain: Chain, phone: Phone, db: Session, clock: FrozenClock
) -> None:
    text_from(phone, STRANGER, "aiuto\x00 sono qui")
    stored = db.scalars(select(InboundText)).one()
    assert stored.body == "aiuto\x00 sono qui"  # exactly as received
    raw = db.execute(text("SELECT body FROM inbound_texts")).scalar_one()
    assert "aiuto" not in raw
    job = app.extensions["ali.jobs"]["intake.purge_raw_texts"]

    clock.advance(timedelta(days=29, hours=23))
    assert run_job(app, job) == 0
    clock.advance(timedelta(hours=2))
    assert run_job(app, job) == 1
    db.expire_all()
    stored = db.scalars(select(InboundText)).one()
    assert (stored.body, stored.purged_at) == (None, clock.now())
    assert the_case(db, "XX-2026-0001").summary == "aiuto sono qui"  # the case keeps its own
    assert run_job(app, job) == 0


# --- what a text says (no database) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "sigla"),
    [
        ("sono a Chiari", "BS"),
        ("SIAMO A SANT'ANGELO LODIGIANO", "LO"),
        ("ragazza in provincia di Cremona", "CR"),
        ("near Bergamo station", "BG"),
        ("via Roma 3, Castro (BG)", "BG"),
        ("sono a Chiari, provincia di Brescia", "BS"),
        ("sono a Castro", None),  # BG or LE: never guessed
        ("da Brescia a Bergamo", None),  # two provinces: never guessed
        ("sono in nave", None),  # an everyday word, not the comune of Nave
        ("aiuto", None),
        ("", None),
    ],
)
def test_the_place_a_text_names(body: str, sigla: str | None) -> None:
    found = place_in_text(body)
    assert (found.sigla if found else None) == sigla


@pytest.mark.parametrize(
    ("body", "english"),
    [
        ("please help me", True),
        ("Hello, I am at the station with my friend", True),
        ("aiuto sono alla stazione", False),
        ("help", True),
        ("ok", False),
        ("", False),
    ],
)
def test_english_is_recognised_and_italian_is_the_default(body: str, english: bool) -> None:
    assert looks_english(body) is english


def test_the_retention_period_is_a_setting(app: Flask, tmp_path: Path, database_url: str) -> None:
    assert get_settings(app).raw_text_retention_days == 30
    environ = ali_environ(database_url, tmp_path, ALI_RAW_TEXT_RETENTION_DAYS="7")
    assert load_settings(environ).raw_text_retention_days == 7


def test_the_demo_adds_partners_once(runner: FlaskCliRunner, db: Session) -> None:
    assert runner.invoke(args=["demo"]).exit_code == 0
    names = set(db.scalars(select(Partner.name)))
    assert "Questura di Brescia - Squadra Mobile (demo)" in names
    assert runner.invoke(args=["demo"]).exit_code == 0
    assert db.scalar(select(func.count()).select_from(Partner)) == len(names)
