"""The alert page in a real browser, on a phone at night and on a desktop: read, accept."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from routing.models import Case
from tests.alerting import Chain, Phone
from tests.browser import (  # noqa: F401 -- fixtures, used by name
    PageFactory,
    axe_violations,
    browser_fixture,
    browser_page_fixture,
    horizontal_overflow,
    live_server_fixture,
    new_page_fixture,
    sign_in,
)
from tests.intake.signed import Sender

HANDOFF = {
    "external_id": "NV-b",
    "province": "BS",
    "urgency": "emergency",
    "reporter_type": "law_enforcement",
    "exploitation": ["sexual"],
    "person": {"gender": "female", "age_band": "18-24", "minor": "presumed", "languages": ["en"]},
    "needs": ["pronta_accoglienza", "interpreter"],
    "summary": "Giovane donna accompagnata dai Carabinieri, chiede un posto per stanotte. " * 3,
    "callback_phone": "+393337654321",
}


def test_the_primary_accepts_from_the_alert_page_on_a_phone(
    new_page: PageFactory, sender: Sender, chain: Chain, phone: Phone, db: Session
) -> None:
    sender.post(HANDOFF)
    mobile = new_page(phone=True)
    page = mobile.page
    sign_in(page, chain.primary.email)
    page.goto("/cases/BS-2026-0001")
    expect(page.locator("h1")).to_contain_text("BS-2026-0001")
    expect(page.locator(".case-head")).to_contain_text("in allerta")
    expect(page.locator(".case-contact")).to_contain_text("+39 333 765 4321")
    accept = page.get_by_role("button", name="Accetta: lo prendo io")
    box = accept.bounding_box()
    assert box is not None
    assert box["height"] >= 44  # a thumb finds it at 3 a.m.
    assert horizontal_overflow(page) <= 0
    assert axe_violations(page) == []
    mobile.screenshot("case-phone")
    accept.click()
    expect(page.locator(".flash-success")).to_contain_text("BS-2026-0001 è tuo")
    expect(page.locator(".case-head")).to_contain_text("Paola Primaria")
    expect(page.get_by_role("button", name="Accetta: lo prendo io")).to_have_count(0)
    expect(page.locator(".timeline")).to_contain_text("Accettato")
    db.expire_all()
    case = db.scalars(select(Case)).one()
    assert (case.status, case.accepted_by_id) == ("accepted", chain.primary.id)
    assert horizontal_overflow(page) <= 0
    assert axe_violations(page) == []
    mobile.screenshot("case-phone-accepted")
    assert mobile.console_errors == []


def test_a_coordinator_reads_an_unanswered_case_on_a_desktop(
    new_page: PageFactory, sender: Sender, chain: Chain, phone: Phone
) -> None:
    sender.post(HANDOFF)
    for minutes in (3, 3, 5, 5, 5, 5):
        phone.tick(minutes=minutes)
    desktop = new_page()
    page = desktop.page
    sign_in(page, chain.coordinator.email)
    page.goto("/cases/BS-2026-0001")
    expect(page.locator(".case-head.unanswered")).to_contain_text("Senza risposta")
    expect(page.locator(".timeline")).to_contain_text("Senza risposta: coordinatori allertati")
    expect(page.get_by_role("button", name="Accetta: lo prendo io")).to_have_count(1)
    assert axe_violations(page) == []
    desktop.screenshot("case-desktop-unanswered")
    assert desktop.console_errors == []
