"""The rota page in a real browser: create → preview → save → swap closes a gap; a phone."""

from __future__ import annotations

import re
from datetime import date, time

import pytest
from playwright.sync_api import Locator, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import User
from oncall.models import Override, Rotation
from tests.browser import (  # noqa: F401 -- fixtures, used by name
    BrowserPage,
    PageFactory,
    browser_fixture,
    browser_page_fixture,
    horizontal_overflow,
    live_server_fixture,
    new_page_fixture,
    sign_in,
)
from tests.conftest import UserFactory
from tests.oncall.test_views import make_rotation

GAP = re.compile(r"\bgap\b")


@pytest.fixture
def manager(make_user: UserFactory) -> User:
    return make_user(
        roles=("rota_manager", "operator"), provinces=("BS",), email="manager@ali.example"
    )


@pytest.fixture
def team(make_user: UserFactory) -> list[User]:
    return [
        make_user(provinces=("BS",), name="Anna Rossi"),
        make_user(provinces=("BS",), name="Bruno Bianchi"),
        make_user(provinces=("BS",), name="Carla Verdi", verified=False),
    ]


def primary(page: BrowserPage, day: str) -> Locator:
    return page.page.locator(f"#day-{day} td.tier-primary")


def test_a_rota_manager_creates_a_rotation_then_closes_a_gap_with_a_swap(
    browser_page: BrowserPage, manager: User, team: list[User], db: Session
) -> None:
    page = browser_page.page
    sign_in(page, manager.email)
    page.goto("/rota/BS?month=2026-12")
    expect(page.locator("h1")).to_contain_text("BS")
    page.get_by_role("link", name="Nuova rotazione").click()

    # The form starts with one operator slot; the button adds another without a round trip.
    page.locator("select[name='operators-0']").select_option(label="Anna Rossi")
    page.get_by_role("button", name="Aggiungi un operatore").click()
    page.locator("select[name='operators-1']").select_option(label="Bruno Bianchi")
    page.fill("#handover", "09:00")
    page.select_option("#period_days", "7")
    page.fill("#start_date", "2026-12-07")
    page.get_by_role("button", name="Anteprima", exact=True).click()

    preview = page.locator("#preview")
    expect(preview.locator("tbody tr")).to_have_count(10)
    expect(preview.locator("tbody tr").nth(0)).to_contain_text("Anna Rossi")
    expect(preview.locator("tbody tr").nth(0)).to_contain_text("lun 7 dic 09:00")
    expect(preview.locator("tbody tr").nth(1)).to_contain_text("Bruno Bianchi")
    expect(preview.locator("li.gap")).to_contain_text("lun 7 dic 09:00")
    assert db.scalars(select(Rotation)).all() == []
    browser_page.screenshot("rotation-preview")
    preview.get_by_role("button", name="Salva la rotazione").click()

    page.wait_for_url(re.compile(r"/rota/BS\?month=2026-12$"))
    expect(page.locator(".flash-success")).to_contain_text("Rotazione salvata")
    rotation = db.scalars(select(Rotation)).one()
    assert rotation.operator_ids == (team[0].id, team[1].id)
    # The rotation starts on Monday the 7th at 09:00: the days before it are red.
    expect(page.locator("td.tier-primary.gap")).to_have_count(6)
    expect(primary(browser_page, "2026-12-03")).to_have_class(GAP)
    expect(primary(browser_page, "2026-12-07").locator(".piece.gap")).to_contain_text("00:00–09:00")
    expect(primary(browser_page, "2026-12-08")).not_to_have_class(GAP)
    expect(primary(browser_page, "2026-12-08")).to_contain_text("Anna Rossi")
    expect(page.locator("#day-2026-12-08")).to_have_class(re.compile(r"\bholiday\b"))
    browser_page.screenshot("month-desktop")

    # Two clicks: the day's swap link, then save with the operator chosen.
    primary(browser_page, "2026-12-03").get_by_role("link").click()
    # The gap is pre-filled: from the day (it began before the month's rota) to 7 December
    # 09:00, when the rotation starts; here the manager covers one day only.
    expect(page.locator("#start")).to_have_value("2026-12-03T00:00")
    expect(page.locator("#end")).to_have_value("2026-12-07T09:00")
    page.fill("#end", "2026-12-04T00:00")
    page.select_option("#user_id", label="Carla Verdi")
    page.get_by_role("button", name="Salva il cambio").click()

    page.wait_for_url(re.compile(r"/rota/BS\?month=2026-12$"))
    expect(primary(browser_page, "2026-12-03")).not_to_have_class(GAP)
    expect(primary(browser_page, "2026-12-03")).to_contain_text("Carla Verdi")
    expect(primary(browser_page, "2026-12-03").locator(".badge-warn")).to_have_count(1)
    expect(primary(browser_page, "2026-12-02")).to_have_class(GAP)
    expect(page.locator("td.tier-primary.gap")).to_have_count(5)
    override = db.scalars(select(Override)).one()
    assert (override.user_id, override.tier) == (team[2].id, "primary")
    assert browser_page.console_errors == []


def test_the_month_page_is_usable_on_a_phone(
    new_page: PageFactory, manager: User, team: list[User], db: Session
) -> None:
    make_rotation(db, team[:2], start_date=date(2026, 10, 1), handover=time(8, 0))
    make_rotation(db, [team[2]], tier="backup", start_date=date(2026, 10, 10))
    phone = new_page(phone=True)
    page = phone.page
    sign_in(page, manager.email)
    page.goto("/rota/BS?month=2026-10")
    phone.screenshot("month-phone-top", full_page=False)
    expect(page.locator("#day-2026-10-25 th.day")).to_contain_text("25 h")
    # The body never scrolls sideways; the table may, inside its own wrapper.
    assert horizontal_overflow(page) <= 0
    wrapper = page.locator(".table-wrap").first
    assert wrapper.evaluate("e => getComputedStyle(e).overflowX") == "auto"
    # The swap link of a day can be tapped: it is inside the viewport once scrolled to.
    link = primary(phone, "2026-10-25").get_by_role("link")
    link.scroll_into_view_if_needed()
    box = link.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= 390
    phone.screenshot("month-phone", full_page=False)
    link.tap()
    expect(page.locator("#start")).to_have_value("2026-10-25T08:00")
    assert horizontal_overflow(page) <= 0

    page.goto("/rota/now")
    expect(page.locator("#province-BS")).to_contain_text("Anna Rossi")
    assert horizontal_overflow(page) <= 0
    phone.screenshot("now-phone")
    assert phone.console_errors == []


def test_an_operator_of_another_province_gets_403(
    browser_page: BrowserPage, make_user: UserFactory
) -> None:
    make_user(provinces=("BG",), email="bg@ali.example")
    page = browser_page.page
    sign_in(page, "bg@ali.example")
    response = page.goto("/rota/BS?month=2026-12")
    assert response is not None
    assert response.status == 403
    expect(page.locator("main")).to_contain_text("403")
    response = page.goto("/rota/BG")
    assert response is not None
    assert response.status == 200
