"""The sandbox outbox as a phone: a hand-off's alerts land there, and answering them on /sandbox
goes through Ali's real signed webhooks — replies, keypresses, voicemail, calls that ring out."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from core.config import Settings, load_settings
from core.models import DeliveryStatus, OutboxMessage, User
from core.sandbox import Outgoing, SandboxError, SandboxPhone
from core.telephony import SandboxTelephony
from tests.alerting import Chain, the_case
from tests.browser import (  # noqa: F401 -- fixtures, used by name
    PageFactory,
    axe_violations,
    browser_fixture,
    horizontal_overflow,
    live_server_fixture,
    new_page_fixture,
    sign_in,
)
from tests.conftest import (
    AUTH_TOKEN,
    FROM_NUMBER,
    PUBLIC_URL,
    UserFactory,
    ali_environ,
    csrf_token,
    login,
)
from tests.intake.signed import Sender

EMERGENCY = {
    "external_id": "NV-SANDBOX-1",
    "province": "BS",
    "urgency": "emergency",
    "summary": "Caso di prova",
}


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """The embedded mode: no Twilio account, so telephony is the sandbox outbox. The auth token
    stays set: it is what the sandbox signs its simulated webhooks with."""
    return load_settings(ali_environ(database_url, tmp_path, ALI_TWILIO_ACCOUNT_SID=""))


@pytest.fixture
def admin(make_user: UserFactory) -> User:
    return make_user(
        roles=("admin",), provinces=(), email="admin@ali.example", phone="+393339999999"
    )


def outbox(db: Session) -> list[OutboxMessage]:
    db.expire_all()
    return list(db.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def to(db: Session, user: User, kind: str) -> list[OutboxMessage]:
    return [m for m in outbox(db) if m.to == user.phone and m.kind == kind]


def hand_over(sender: Sender, external_id: str | None = None) -> None:
    body = EMERGENCY if external_id is None else EMERGENCY | {"external_id": external_id}
    response = sender.post(body)
    assert response.status_code == 201, response.get_data(as_text=True)


def sandbox_post(client: FlaskClient, path: str, data: dict[str, str]) -> TestResponse:
    token = csrf_token(client.get("/sandbox").get_data(as_text=True))
    return client.post(path, data={**data, "csrf_token": token}, follow_redirects=True)


def flashes(response: TestResponse) -> list[str]:
    html = response.get_data(as_text=True)
    return re.findall(r'<p class="flash flash-\w+" role="alert">(.*?)</p>', html, re.S)


def test_the_app_uses_the_sandbox_and_a_handoff_lands_in_the_outbox(
    app: Flask, sender: Sender, chain: Chain, db: Session
) -> None:
    assert isinstance(app.extensions["ali.telephony"], SandboxTelephony)
    hand_over(sender)
    [sms] = to(db, chain.primary, "sms")
    [call] = to(db, chain.primary, "call")
    assert sms.body is not None
    assert sms.body.startswith("ALI BS-2026-0001 EMERGENZA")
    assert sms.from_ == FROM_NUMBER
    assert call.url is not None
    assert call.url.startswith(f"{PUBLIC_URL}/twilio/alert/")


def test_replying_ok_through_the_sandbox_page_accepts_the_case(
    client: FlaskClient, sender: Sender, chain: Chain, admin: User, db: Session
) -> None:
    hand_over(sender)
    [sms] = to(db, chain.primary, "sms")
    login(client, admin.email)
    page = client.get("/sandbox").get_data(as_text=True)
    assert "Rispondi come questo telefono" in page
    assert f'id="reply-{sms.id}"' in page
    assert 'value="1"' in page

    response = sandbox_post(client, f"/sandbox/{sms.id}/reply", {"body": "OK"})

    assert response.status_code == 200
    [said] = flashes(response)
    assert said.startswith("Ali ha risposto: ALI BS-2026-0001")
    assert "accettato" in said
    case = the_case(db, "BS-2026-0001")
    assert (case.status, case.accepted_by_id) == ("accepted", chain.primary.id)
    [row] = [m for m in outbox(db) if m.id == sms.id]
    [exchange] = row.options["sandbox"]
    assert (exchange["action"], exchange["sent"]) == ("reply", "OK")
    assert "Ha risposto “OK”" in response.get_data(as_text=True)
    # The link in the SMS: the case page says who has it.
    assert 'href="/cases/BS-2026-0001"' in response.get_data(as_text=True)
    # An admin as such does not read cases; the demo's admin is a coordinator too.
    assert client.get("/cases/BS-2026-0001").status_code == 404
    admin.roles = ["admin", "coordinator"]
    db.commit()
    case_page = client.get("/cases/BS-2026-0001").get_data(as_text=True)
    assert "<strong>accettato</strong>" in case_page
    assert chain.primary.display_name in case_page


def test_pressing_1_on_a_sandbox_call_accepts_the_case(
    client: FlaskClient, sender: Sender, chain: Chain, admin: User, db: Session
) -> None:
    hand_over(sender)
    [call] = to(db, chain.primary, "call")
    login(client, admin.email)

    response = sandbox_post(client, f"/sandbox/{call.id}/call", {"action": "press-1"})

    [said] = flashes(response)
    assert said == "Ali ha detto: Caso accettato, è tuo. Grazie."
    case = the_case(db, "BS-2026-0001")
    assert (case.status, case.accepted_by_id) == ("accepted", chain.primary.id)
    status = db.get(DeliveryStatus, call.sid)
    assert status is not None
    assert status.status == "completed"
    html = response.get_data(as_text=True)
    assert "Ha risposto e premuto 1" in html
    # The call is over: no buttons for it any more.
    assert f"/sandbox/{call.id}/call" not in html
    assert to(db, chain.backup, "sms") == []


def test_pressing_2_declines_and_pages_the_backup_at_once(
    client: FlaskClient, sender: Sender, chain: Chain, admin: User, db: Session
) -> None:
    hand_over(sender)
    [call] = to(db, chain.primary, "call")
    login(client, admin.email)
    sandbox_post(client, f"/sandbox/{call.id}/call", {"action": "press-2"})
    assert the_case(db, "BS-2026-0001").status == "dispatched"
    assert len(to(db, chain.backup, "sms")) == 1


def test_voicemail_answering_a_sandbox_call_pages_the_next_tier(
    client: FlaskClient, sender: Sender, chain: Chain, admin: User, db: Session
) -> None:
    hand_over(sender)
    [call] = to(db, chain.primary, "call")
    assert to(db, chain.backup, "sms") == []
    login(client, admin.email)

    response = sandbox_post(client, f"/sandbox/{call.id}/call", {"action": "voicemail"})

    assert flashes(response) == [
        "Ha risposto la segreteria: per Ali la persona non è stata raggiunta."
    ]
    [backup_sms] = to(db, chain.backup, "sms")
    assert backup_sms.body is not None
    assert backup_sms.body.startswith("ALI BS-2026-0001")
    assert len(to(db, chain.backup, "call")) == 1
    assert the_case(db, "BS-2026-0001").status == "dispatched"
    # The newest first: the backup's alerts are above the call voicemail took.
    html = response.get_data(as_text=True)
    assert html.index(f'id="outbox-{backup_sms.id}"') < html.index(f'id="outbox-{call.id}"')
    assert "Ha risposto la segreteria" in html


def test_a_sandbox_call_that_rings_out_is_a_no_answer_callback(
    client: FlaskClient, sender: Sender, chain: Chain, admin: User, db: Session
) -> None:
    hand_over(sender)
    [call] = to(db, chain.primary, "call")
    login(client, admin.email)
    response = sandbox_post(client, f"/sandbox/{call.id}/call", {"action": "no-answer"})
    assert flashes(response) == ["La chiamata ha squillato senza risposta: Ali lo sa (no-answer)."]
    status = db.get(DeliveryStatus, call.sid)
    assert status is not None
    assert status.status == "no-answer"
    assert [h["status"] for h in status.history] == ["ringing", "no-answer"]
    assert len(to(db, chain.backup, "sms")) == 1


def test_a_reply_from_an_operator_with_no_open_alert_is_answered_too(
    client: FlaskClient, sender: Sender, chain: Chain, admin: User, db: Session
) -> None:
    hand_over(sender)
    [sms] = to(db, chain.primary, "sms")
    login(client, admin.email)
    sandbox_post(client, f"/sandbox/{sms.id}/reply", {"body": "1"})
    again = sandbox_post(client, f"/sandbox/{sms.id}/reply", {"body": "1"})
    [said] = flashes(again)
    assert said.startswith("Ali ha risposto: ")
    assert len(outbox(db)[0].options["sandbox"]) == 2


def test_an_empty_reply_is_refused_with_a_message(
    client: FlaskClient, sender: Sender, chain: Chain, admin: User, db: Session
) -> None:
    hand_over(sender)
    [sms] = to(db, chain.primary, "sms")
    login(client, admin.email)
    response = sandbox_post(client, f"/sandbox/{sms.id}/reply", {"body": "   "})
    assert flashes(response) == ["Scrivi una risposta di al massimo 1600 caratteri."]
    assert the_case(db, "BS-2026-0001").status == "dispatched"


def test_the_sandbox_actions_need_an_admin_and_a_csrf_token(
    client: FlaskClient, sender: Sender, chain: Chain, admin: User, db: Session
) -> None:
    hand_over(sender)
    [sms] = to(db, chain.primary, "sms")
    [call] = to(db, chain.primary, "call")
    login(client, chain.primary.email)
    token = csrf_token(client.get("/").get_data(as_text=True))
    refused = client.post(f"/sandbox/{sms.id}/reply", data={"body": "1", "csrf_token": token})
    assert refused.status_code == 403

    client.post("/logout", data={"csrf_token": token})
    login(client, admin.email)
    assert client.post(f"/sandbox/{sms.id}/reply", data={"body": "1"}).status_code == 400
    token = csrf_token(client.get("/sandbox").get_data(as_text=True))
    wrong_kind = client.post(
        f"/sandbox/{sms.id}/call", data={"action": "press-1", "csrf_token": token}
    )
    assert wrong_kind.status_code == 404
    unknown = client.post(
        f"/sandbox/{call.id}/call", data={"action": "press-9", "csrf_token": token}
    )
    assert unknown.status_code == 400
    assert the_case(db, "BS-2026-0001").status == "dispatched"


def test_the_simulated_requests_meet_the_real_signature_check(
    app: Flask, sender: Sender, chain: Chain, db: Session
) -> None:
    """Signed with a token Ali does not accept, a simulated reply is refused like a forgery."""
    hand_over(sender)
    [sms] = to(db, chain.primary, "sms")
    settings: Settings = app.extensions["ali.settings"]
    forger = SandboxPhone(app, replace(settings, twilio_auth_tokens=("0" * 32,)))
    with pytest.raises(SandboxError, match="HTTP 403 on /twilio/sms"):
        forger.reply(Outgoing.of(sms), "1")
    assert the_case(db, "BS-2026-0001").status == "dispatched"
    with pytest.raises(SandboxError, match="no Twilio auth token"):
        SandboxPhone(app, replace(settings, twilio_auth_tokens=()))


def test_the_sandbox_is_not_there_when_twilio_is_configured(
    database_url: str, engine: object, tmp_path: Path, admin: User
) -> None:
    from core.app import create_app  # noqa: PLC0415

    app = create_app(load_settings(ali_environ(database_url, tmp_path)), engine=engine)  # type: ignore[arg-type]
    client = app.test_client()
    login(client, admin.email)
    assert client.get("/sandbox").status_code == 404
    token = csrf_token(client.get("/").get_data(as_text=True))
    assert (
        client.post("/sandbox/1/reply", data={"body": "1", "csrf_token": token}).status_code == 404
    )


# --- the development auth token ------------------------------------------------------------------


def test_development_without_twilio_generates_a_sandbox_auth_token_once(tmp_path: Path) -> None:
    first = load_settings({}, tmp_path)
    second = load_settings({}, tmp_path)
    assert first.telephony_backend == "sandbox"
    assert len(first.twilio_auth_tokens) == 1
    assert first.twilio_auth_tokens == second.twilio_auth_tokens
    assert (tmp_path / "dev-twilio-auth-token").stat().st_mode & 0o777 == 0o600


def test_a_given_token_or_a_twilio_account_means_no_generated_token(tmp_path: Path) -> None:
    given = load_settings({"ALI_TWILIO_AUTH_TOKEN": AUTH_TOKEN}, tmp_path / "given")
    assert given.twilio_auth_tokens == (AUTH_TOKEN,)
    twilio = load_settings({"ALI_TWILIO_ACCOUNT_SID": "AC" + "1" * 32}, tmp_path / "twilio")
    assert twilio.twilio_auth_tokens == ()
    for folder in ("given", "twilio"):
        assert not (tmp_path / folder / "dev-twilio-auth-token").exists()


def test_production_never_generates_a_sandbox_token(tmp_path: Path) -> None:
    env = {
        "ALI_ENV": "production",
        "ALI_DATABASE_URL": "sqlite:///x.sqlite3",
        "ALI_SECRET_KEY": "k" * 48,
        "ALI_PUBLIC_URL": "https://ali.example.org",
        "ALI_ENCRYPTION_KEYS": "3q2-7wEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "ALI_TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "ALI_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "ALI_TWILIO_FROM_NUMBER": FROM_NUMBER,
    }
    settings = load_settings(env, tmp_path)
    assert settings.twilio_auth_tokens == (AUTH_TOKEN,)
    assert not (tmp_path / "dev-twilio-auth-token").exists()


# --- in a browser ------------------------------------------------------------------------------


def test_the_sandbox_page_in_a_browser_on_a_desktop_and_a_phone(
    new_page: PageFactory, sender: Sender, chain: Chain, admin: User, db: Session
) -> None:
    hand_over(sender)
    [sms] = to(db, chain.primary, "sms")
    desktop = new_page()
    page = desktop.page
    sign_in(page, admin.email)
    page.goto("/sandbox")
    expect(page.locator("h1")).to_have_text("Posta in uscita (sandbox)")
    card = page.locator(f"#outbox-{sms.id}")
    expect(card.get_by_label("Rispondi come questo telefono")).to_have_value("1")
    assert axe_violations(page) == []
    desktop.screenshot("sandbox-desktop")

    card.get_by_label("Rispondi come questo telefono").fill("OK")
    card.get_by_role("button", name="Invia").click()
    expect(page.locator(".flash-success")).to_contain_text("accettato")
    expect(page.locator(f"#outbox-{sms.id} .badge")).to_have_text("Ha risposto")
    assert the_case(db, "BS-2026-0001").status == "accepted"
    assert axe_violations(page) == []
    desktop.screenshot("sandbox-desktop-replied")
    assert desktop.console_errors == []

    # Accepted by SMS: Ali ended the ringing alert call, and the page no longer offers it.
    [call] = to(db, chain.primary, "call")
    page.goto("/sandbox")
    expect(page.locator(f"#outbox-{call.id} .badge")).to_contain_text("completed")
    expect(page.get_by_role("button", name="Rispondi e premi 1")).to_have_count(0)

    hand_over(sender, external_id="NV-sandbox-2")
    phone = new_page(phone=True)
    sign_in(phone.page, admin.email)
    phone.page.goto("/sandbox")
    expect(phone.page.get_by_role("button", name="Rispondi e premi 1")).to_be_visible()
    assert horizontal_overflow(phone.page) <= 0
    button = phone.page.get_by_role("button", name="Nessuna risposta")
    box = button.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= 390
    assert axe_violations(phone.page) == []
    phone.screenshot("sandbox-phone")
    assert phone.console_errors == []
