"""An operator who texted STOP sees it on their profile, and their rota manager sees it on the
rota: in a real browser, desktop and phone, checked with axe-core."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from core.models import User
from tests.alerting import on_shift
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
from tests.conftest import UserFactory

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def stopped(make_user: UserFactory, db: Session, clock: FrozenClock) -> User:
    user = make_user(name="Paola Primaria", provinces=("BS",), email="paola@ali.example")
    user.sms_opted_out_at = clock.now()
    db.commit()
    on_shift(db, user, at=clock.now())
    return user


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_the_profile_says_sms_are_blocked_and_how_to_undo_it(
    new_page: PageFactory, stopped: User, phone: bool
) -> None:
    opened = new_page(phone=phone)
    page = opened.page
    sign_in(page, stopped.email)
    page.goto("/profile")
    phone_card = page.locator("#phone")
    expect(phone_card.locator(".badge-warn")).to_have_text("SMS bloccati (STOP)")
    expect(phone_card.get_by_role("alert")).to_contain_text("Scrivi START")
    assert axe_violations(page) == []
    assert horizontal_overflow(page) <= 0
    assert opened.console_errors == []


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_the_rota_shows_who_gets_no_sms(
    new_page: PageFactory, stopped: User, make_user: UserFactory, phone: bool
) -> None:
    manager = make_user(roles=("rota_manager",), provinces=("BS",), email="rita@ali.example")
    opened = new_page(phone=phone)
    page = opened.page
    sign_in(page, manager.email)
    page.goto("/rota/now")
    row = page.locator("#province-BS")
    expect(row).to_contain_text("Paola Primaria")
    badge = row.locator(".badge-warn")
    expect(badge).to_have_text("SMS bloccati (STOP)")
    expect(badge).to_have_attribute("title", re.compile("solo con chiamate"))
    assert axe_violations(page) == []
    assert horizontal_overflow(page) <= 0
    assert opened.console_errors == []
