"""The own-password page refuses a guessable password in a real browser, desktop and phone,
with axe; logging out there ends the session for a copy of the cookie too."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser import (  # noqa: F401 -- fixtures, used by name
    PageFactory,
    axe_violations,
    browser_fixture,
    horizontal_overflow,
    live_server_fixture,
    new_page_fixture,
    sign_in,
)
from tests.conftest import PASSWORD, UserFactory


@pytest.fixture(autouse=True)
def _sqlite_only(database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("browser tests run on SQLite")


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_a_guessable_password_is_refused_with_a_reason(
    new_page: PageFactory, make_user: UserFactory, phone: bool
) -> None:
    user = make_user(email="giulia.bianchi@ali.example", name="Giulia Bianchi")
    opened = new_page(phone=phone)
    page = opened.page
    sign_in(page, user.email)
    page.goto("/account/password")
    page.fill("#current", PASSWORD)
    page.fill("#password", "giulia.bianchi1")
    page.fill("#confirm", "giulia.bianchi1")
    page.get_by_role("button", name="Salva").click()
    expect(page.locator(".field-error")).to_contain_text("troppo facile da indovinare")
    assert horizontal_overflow(page) <= 0
    assert axe_violations(page) == []
    opened.screenshot(f"password-guessable-{'phone' if phone else 'desktop'}")

    cookies = page.context.cookies()
    page.get_by_role("button", name="Esci").click()
    expect(page).to_have_url(re.compile(r"/login"))
    # The cookie as it was before logging out opens nothing any more.
    page.context.add_cookies(cookies)  # type: ignore[arg-type]
    page.goto("/")
    assert "/login" in page.url
