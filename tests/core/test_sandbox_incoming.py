"""The sandbox plays a partner calling or texting Ali's number: the real signed webhooks, the
menu walked with keys, the rung operator's whisper and key, a message left."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.config import Settings, load_settings
from core.models import OutboxMessage, User
from intake.models import Partner, PartnerCall, PartnerPhone, ReporterType
from routing.models import Case
from tests.alerting import Chain
from tests.browser import (  # noqa: F401 -- fixtures, used by name
    PageFactory,
    axe_violations,
    browser_fixture,
    horizontal_overflow,
    live_server_fixture,
    new_page_fixture,
    sign_in,
)
from tests.conftest import UserFactory, ali_environ, csrf_token, login

PARTNER_PHONE = "+390302345678"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(ali_environ(database_url, tmp_path, ALI_TWILIO_ACCOUNT_SID=""))


@pytest.fixture
def admin(make_user: UserFactory) -> User:
    return make_user(roles=("admin",), provinces=(), email="admin@ali.example")


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


def post(client: FlaskClient, path: str, data: dict[str, str]) -> str:
    token = csrf_token(client.get("/sandbox").get_data(as_text=True))
    response = client.post(path, data={**data, "csrf_token": token}, follow_redirects=True)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def incoming(db: Session) -> OutboxMessage:
    db.expire_all()
    return db.scalars(select(OutboxMessage).where(OutboxMessage.kind == "incall")).one()


def state(db: Session) -> str:
    return str(incoming(db).options["state"]["kind"])


def cases(db: Session) -> list[Case]:
    db.expire_all()
    return list(db.scalars(select(Case)))


def test_a_simulated_partner_call_is_taken_by_the_operator_who_presses_1(
    client: FlaskClient, admin: User, chain: Chain, partner: Partner, db: Session
) -> None:
    login(client, admin.email)

    post(client, "/sandbox/incoming-call", {"caller": "030 2345678"})

    message = incoming(db)
    assert (message.from_, state(db)) == (PARTNER_PHONE, "gather")
    assert message.options["heard"][0].startswith("Buongiorno. La stiamo mettendo in contatto")
    path = f"/sandbox/incoming-call/{message.id}"
    post(client, path, {"action": "no-key"})
    assert incoming(db).options["state"]["to"] == chain.primary.phone
    page = post(client, path, {"action": "press-1"})
    assert state(db) == "connected"
    assert "In linea con" in page
    [case] = cases(db)
    assert (case.status, case.accepted_by_id, case.channel) == (
        "accepted",
        chain.primary.id,
        "phone",
    )
    assert any("premi 1 per rispondere" in text for text in incoming(db).options["heard"])
    post(client, path, {"action": "end"})
    assert state(db) == "over"
    call = db.scalars(select(PartnerCall)).one()
    assert call.duration_seconds == 60


def test_a_simulated_stranger_walks_the_menu_nobody_answers_and_a_message_is_left(
    client: FlaskClient, admin: User, chain: Chain, db: Session
) -> None:
    login(client, admin.email)
    post(client, "/sandbox/incoming-call", {"caller": "+393471234567"})
    path = f"/sandbox/incoming-call/{incoming(db).id}"

    wrong = post(client, path, {"action": "keys", "keys": "0"})
    assert "Questa scelta non c" in wrong
    post(client, path, {"action": "keys", "keys": "2"})
    post(client, path, {"action": "voicemail"})
    post(client, path, {"action": "no-answer"})
    post(client, path, {"action": "press-2"})
    assert state(db) == "record"
    post(client, path, {"action": "message"})

    assert state(db) == "over"
    [case] = cases(db)
    assert (case.urgency, case.status, case.province) == ("urgent", "dispatched", "BS")
    alerts = db.scalars(
        select(OutboxMessage).where(
            OutboxMessage.kind == "sms", OutboxMessage.to == chain.primary.phone
        )
    ).all()
    assert [m.body[: len(f"ALI {case.reference}")] for m in alerts if m.body] == [
        f"ALI {case.reference}"
    ]
    # The sandbox's recording plays through Ali for those who may see the case.
    operator = client.application.test_client()
    login(operator, chain.primary.email)
    case_page = operator.get(f"/cases/{case.reference}").get_data(as_text=True)
    assert "Messaggio lasciato sulla linea dei partner" in case_page
    assert f'<audio controls preload="none" src="/cases/{case.reference}/recording"' in case_page
    played = operator.get(f"/cases/{case.reference}/recording")
    assert played.status_code == 200
    assert played.mimetype == "audio/wav"
    assert played.data.startswith(b"RIFF")


def test_keys_that_are_not_keys_are_refused_with_a_message(
    client: FlaskClient, admin: User, chain: Chain, db: Session
) -> None:
    login(client, admin.email)
    post(client, "/sandbox/incoming-call", {"caller": "+393471234567"})
    page = post(
        client, f"/sandbox/incoming-call/{incoming(db).id}", {"action": "keys", "keys": "x"}
    )
    assert "Scrivi i tasti da premere" in page
    assert state(db) == "gather"
    bad = post(client, "/sandbox/incoming-call", {"caller": "not a number"})
    assert "Inserisci il numero di chi chiama" in bad


def test_a_simulated_text_to_alis_number_opens_a_case_and_shows_the_reply(
    client: FlaskClient, admin: User, chain: Chain, db: Session
) -> None:
    login(client, admin.email)

    page = post(client, "/sandbox/incoming-sms", {"sender": "+393471234567", "body": "Aiuto"})

    [case] = cases(db)
    assert f"Messaggio ricevuto, rif. {case.reference}" in page
    assert case.channel == "sms"


def test_the_incoming_call_simulation_in_a_browser_on_a_desktop_and_a_phone(
    new_page: PageFactory, admin: User, chain: Chain, partner: Partner, db: Session
) -> None:
    desktop = new_page()
    page = desktop.page
    sign_in(page, admin.email)
    page.goto("/sandbox")
    expect(page.get_by_role("heading", name="Chiama o scrivi al numero di Ali")).to_be_visible()
    assert axe_violations(page) == []
    page.get_by_label("Numero che chiama").fill("+39 347 1234567")
    page.get_by_role("button", name="Chiama", exact=True).click()
    card = page.locator(".sandbox-message").first
    expect(card.locator(".badge")).to_have_text("Ali attende dei tasti")
    card.get_by_label("Tasti premuti da chi chiama").fill("2")
    card.get_by_role("button", name="Premi i tasti").click()
    expect(page.locator(".sandbox-message").first.locator(".badge")).to_contain_text("Squilla")
    assert axe_violations(page) == []
    desktop.screenshot("sandbox-incoming-ringing")
    page.get_by_role("button", name="L'operatore risponde e preme 1").click()
    expect(page.locator(".sandbox-message").first.locator(".badge")).to_contain_text("In linea")
    assert cases(db)[0].accepted_by_id == chain.primary.id
    assert desktop.console_errors == []

    phone = new_page(phone=True)
    sign_in(phone.page, admin.email)
    phone.page.goto("/sandbox")
    phone.page.get_by_label("Numero che scrive").fill("+39 347 7654321")
    phone.page.get_by_label("Testo", exact=True).fill("Aiuto")
    phone.page.get_by_role("button", name="Invia il messaggio").click()
    expect(phone.page.locator(".flash-success")).to_contain_text("Messaggio ricevuto")
    assert horizontal_overflow(phone.page) <= 0
    assert axe_violations(phone.page) == []
    phone.screenshot("sandbox-incoming-phone")
    assert phone.console_errors == []


def test_the_case_page_plays_the_message_in_a_browser_on_a_desktop_and_a_phone(
    new_page: PageFactory, client: FlaskClient, admin: User, chain: Chain, db: Session
) -> None:
    login(client, admin.email)
    post(client, "/sandbox/incoming-call", {"caller": "+393471234567"})
    path = f"/sandbox/incoming-call/{incoming(db).id}"
    post(client, path, {"action": "keys", "keys": "2"})
    for _person in range(3):
        post(client, path, {"action": "no-answer"})
    post(client, path, {"action": "message"})
    [case] = cases(db)
    for phone in (False, True):
        opened = new_page(phone=phone)
        sign_in(opened.page, chain.primary.email)
        opened.page.goto(f"/cases/{case.reference}")
        section = opened.page.locator(".case-recording")
        expect(section.get_by_role("heading")).to_have_text(
            "Messaggio lasciato sulla linea dei partner"
        )
        expect(section.locator("audio")).to_have_attribute(
            "src", f"/cases/{case.reference}/recording"
        )
        assert horizontal_overflow(opened.page) <= 0
        assert axe_violations(opened.page) == []
        opened.screenshot("case-recording-phone" if phone else "case-recording-desktop")
        assert opened.console_errors == []
