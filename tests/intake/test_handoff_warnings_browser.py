"""The warnings of a mistaken hand-off on the case page, in a real browser (phone and desktop)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

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

MISTAKEN = {
    "external_id": "NV-typo",
    "urgency": "EMERGENZA!!",
    "province": "Bresica",
    "person": {"age_band": "circa 20", "languages": ["english"]},
    "callback_phone": "+39 333 CALL ME",
    "summary": "Chiede un posto per stanotte.\u0000",
}


@pytest.mark.parametrize("on_phone", [True, False], ids=["phone", "desktop"])
def test_the_coordinator_sees_what_was_not_understood(
    new_page: PageFactory, sender: Sender, chain: Chain, phone: Phone, on_phone: bool
) -> None:
    assert sender.post(MISTAKEN).status_code == 201
    browser = new_page(phone=on_phone)
    page = browser.page
    sign_in(page, chain.coordinator.email)
    page.goto("/cases/XX-2026-0001")
    expect(page.locator(".case-head")).to_contain_text("Emergenza")
    warning = page.locator(".timeline .event-warning")
    expect(warning).to_contain_text("Segnalazione non del tutto compresa")
    items = warning.locator(".warnings li")
    expect(items).to_have_count(6)
    expect(items.first).to_contain_text("urgency: urgenza non compresa: trattata come emergenza")
    expect(warning).to_contain_text("callback_phone: lettere nel numero di telefono: tralasciato")
    expect(warning).not_to_contain_text("Bresica")
    assert horizontal_overflow(page) <= 0
    assert axe_violations(page) == []
    browser.screenshot(f"case-warnings-{'phone' if on_phone else 'desktop'}")
    assert browser.console_errors == []
