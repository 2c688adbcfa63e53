"""The profile page: phone verification by SMS code, language, and who may see it."""

from __future__ import annotations

import re
from datetime import date, time, timedelta

from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from core.models import AuditEntry, User
from oncall import editing
from oncall.models import PhoneVerification
from oncall.verification import MAX_ATTEMPTS
from tests.conftest import PUBLIC_URL, UserFactory, csrf_token, login
from tests.twilio_standin import TwilioStandIn

CODE = re.compile(r"\b(\d{6})\b")


def post(client: FlaskClient, path: str, **data: str) -> tuple[int, str]:
    token = csrf_token(client.get("/profile/").get_data(as_text=True))
    response = client.post(path, data={"csrf_token": token, **data}, follow_redirects=True)
    return response.status_code, response.get_data(as_text=True)


def last_code(twilio: TwilioStandIn) -> str:
    found = CODE.search(twilio.messages[-1].body or "")
    assert found is not None
    return found.group(1)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_the_profile_needs_a_login(client: FlaskClient) -> None:
    response = client.get("/profile/")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_changing_the_phone_sends_a_code_that_verifies_it(
    client: FlaskClient, db: Session, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    anna = make_user(email="anna@ali.example", phone="+393331000001")
    login(client, "anna@ali.example")
    page = client.get("/profile/").get_data(as_text=True)
    assert "+393331000001" in page
    assert "verificato" in page

    status, page = post(client, "/profile/phone", phone="333 100 0002")
    assert status == 200
    assert "Ti abbiamo inviato un codice via SMS" in page
    db.refresh(anna)
    assert anna.phone == "+393331000002"
    assert anna.phone_verified_at is None
    [message] = twilio.messages
    assert message.to == "+393331000002"
    assert message.status_callback == f"{PUBLIC_URL}/twilio/status"
    code = last_code(twilio)
    assert message.body == f"Ali: il tuo codice di verifica è {code}. Scade tra 10 minuti."
    row = db.scalar(select(PhoneVerification))
    assert row is not None
    assert code not in row.code_hash

    status, page = post(client, "/profile/phone/verify", code=code)
    assert status == 200
    assert "Il tuo telefono è verificato." in page
    db.refresh(anna)
    assert anna.phone_verified_at is not None
    fields = [
        entry.fields
        for entry in db.scalars(
            select(AuditEntry).where(
                AuditEntry.object_type == "user", AuditEntry.action == "update"
            )
        )
    ]
    assert fields == [["phone", "phone_verified_at"], ["phone_verified_at"]]


def test_a_wrong_code_counts_an_attempt_and_five_use_the_code_up(
    client: FlaskClient, db: Session, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    anna = make_user(email="anna@ali.example", verified=False)
    login(client, "anna@ali.example")
    post(client, "/profile/phone/code")
    code = last_code(twilio)
    status, page = post(client, "/profile/phone/verify", code=wrong(code))
    assert status == 400
    assert "Tentativi rimasti: 4." in page
    for _ in range(MAX_ATTEMPTS - 1):
        status, page = post(client, "/profile/phone/verify", code=wrong(code))
    assert "non restano tentativi" in page
    # Even the right code is refused now.
    status, page = post(client, "/profile/phone/verify", code=code)
    assert status == 400
    assert "Chiedi un nuovo codice" in page
    db.refresh(anna)
    assert anna.phone_verified_at is None
    row = db.scalar(select(PhoneVerification))
    assert row is not None
    assert row.attempts == MAX_ATTEMPTS


def test_a_code_expires_after_ten_minutes(
    client: FlaskClient,
    db: Session,
    clock: FrozenClock,
    twilio: TwilioStandIn,
    make_user: UserFactory,
) -> None:
    anna = make_user(email="anna@ali.example", verified=False)
    login(client, "anna@ali.example")
    post(client, "/profile/phone/code")
    code = last_code(twilio)
    clock.advance(timedelta(minutes=10))
    status, page = post(client, "/profile/phone/verify", code=code)
    assert status == 400
    assert "scaduto" in page
    db.refresh(anna)
    assert anna.phone_verified_at is None


def test_only_the_last_code_for_the_current_phone_counts(
    client: FlaskClient, db: Session, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    anna = make_user(email="anna@ali.example", verified=False, phone="+393331000001")
    login(client, "anna@ali.example")
    post(client, "/profile/phone/code")
    old_code = last_code(twilio)
    # The phone changes before the code is typed: the code sent to the old one is void.
    post(client, "/profile/phone", phone="+393331000002")
    new_code = last_code(twilio)
    if old_code != new_code:
        status, _ = post(client, "/profile/phone/verify", code=old_code)
        assert status == 400
    status, _ = post(client, "/profile/phone/verify", code=new_code)
    assert status == 200
    db.refresh(anna)
    assert anna.phone == "+393331000002"
    assert anna.phone_verified_at is not None


def test_no_more_than_three_codes_an_hour(
    client: FlaskClient,
    db: Session,
    clock: FrozenClock,
    twilio: TwilioStandIn,
    make_user: UserFactory,
) -> None:
    make_user(email="anna@ali.example", verified=False)
    login(client, "anna@ali.example")
    for _ in range(3):
        post(client, "/profile/phone/code")
    status, page = post(client, "/profile/phone/code")
    assert status == 200
    assert "Troppi codici" in page
    assert len(twilio.messages) == 3
    assert db.scalar(select(func.count(PhoneVerification.id))) == 3
    clock.advance(timedelta(hours=1, seconds=1))
    login(client, "anna@ali.example")  # the idle timeout signed her out meanwhile
    post(client, "/profile/phone/code")
    assert len(twilio.messages) == 4


def test_a_code_twilio_could_not_send_does_not_count(
    client: FlaskClient, db: Session, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    make_user(email="anna@ali.example", verified=False)
    login(client, "anna@ali.example")
    twilio.fail_next(1, 503)
    _, page = post(client, "/profile/phone/code")
    assert "Non è stato possibile inviare il codice" in page
    assert db.scalar(select(func.count(PhoneVerification.id))) == 0
    post(client, "/profile/phone/code")
    assert len(twilio.messages) == 1
    assert db.scalar(select(func.count(PhoneVerification.id))) == 1


def test_an_invalid_number_is_refused_and_nothing_changes(
    client: FlaskClient, db: Session, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    anna = make_user(email="anna@ali.example", phone="+393331000001")
    login(client, "anna@ali.example")
    status, page = post(client, "/profile/phone", phone="12")
    assert status == 400
    assert "non è un numero di cellulare valido" in page
    db.refresh(anna)
    assert anna.phone == "+393331000001"
    assert anna.phone_verified_at is not None
    assert twilio.messages == []


def test_the_same_number_keeps_its_verification(
    client: FlaskClient, db: Session, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    anna = make_user(email="anna@ali.example", phone="+393331000001")
    login(client, "anna@ali.example")
    post(client, "/profile/phone", phone="333 1000001")
    db.refresh(anna)
    assert anna.phone_verified_at is not None
    assert twilio.messages == []


def test_the_code_sms_speaks_english_to_an_english_operator(
    client: FlaskClient, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    make_user(email="anna@ali.example", verified=False, locale="en")
    login(client, "anna@ali.example")
    post(client, "/profile/phone/code")
    code = last_code(twilio)
    assert twilio.messages[0].body == (
        f"Ali: your verification code is {code}. It expires in 10 minutes."
    )


def test_the_language_preference_is_saved_and_audited(
    client: FlaskClient, db: Session, make_user: UserFactory
) -> None:
    anna = make_user(email="anna@ali.example")
    login(client, "anna@ali.example")
    status, page = post(client, "/profile/language", locale="en")
    assert status == 200
    assert "Language saved." in page
    db.refresh(anna)
    assert anna.locale == "en"
    updates = db.scalars(select(AuditEntry).where(AuditEntry.action == "update")).all()
    assert [(e.object_id, e.fields) for e in updates] == [(str(anna.id), ["locale"])]


def test_a_rostered_operator_without_a_verified_phone_is_warned_on_the_profile(
    client: FlaskClient, db: Session, make_user: UserFactory
) -> None:
    anna = make_user(email="anna@ali.example", verified=False)
    editing.create_rotation(
        db,
        actor="test",
        now=anna.created_at,
        province="BS",
        tier="primary",
        operator_ids=[anna.id],
        handover=time(8),
        period_days=7,
        start_date=date(2026, 11, 30),
    )
    db.commit()
    login(client, "anna@ali.example")
    page = client.get("/profile/").get_data(as_text=True)
    assert "Ali non può raggiungerti" in page


def test_the_profile_is_in_the_menu_of_everyone(
    client: FlaskClient, make_user: UserFactory
) -> None:
    make_user(email="anna@ali.example")
    login(client, "anna@ali.example")
    assert 'href="/profile/"' in client.get("/").get_data(as_text=True)


def test_a_user_cannot_verify_with_someone_elses_code(
    client: FlaskClient, db: Session, twilio: TwilioStandIn, make_user: UserFactory
) -> None:
    make_user(email="anna@ali.example", verified=False, phone="+393331000001")
    bruno = make_user(email="bruno@ali.example", verified=False, phone="+393331000002")
    login(client, "anna@ali.example")
    post(client, "/profile/phone/code")
    anna_code = last_code(twilio)
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/").get_data(as_text=True))})
    login(client, "bruno@ali.example")
    status, _ = post(client, "/profile/phone/verify", code=anna_code)
    assert status == 400
    assert db.get(User, bruno.id) is not None
    db.refresh(bruno)
    assert bruno.phone_verified_at is None
