"""The dashboard and the reports page in a real browser, desktop and a 390 px phone, with
axe-core; the dashboard refreshes itself (the page's clock is driven, not waited for)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from intake.placements import check_in, confirm_placement, request_placement
from tests.alerting import on_shift
from tests.browser import (  # noqa: F401 -- fixtures, used by name
    BrowserPage,
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
from tests.intake.cases import new_case
from tests.intake.shelters import new_shelter

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def checked(opened: BrowserPage, name: str) -> None:
    page = opened.page
    assert horizontal_overflow(page) <= 0
    assert axe_violations(page) == []
    assert opened.console_errors == []
    opened.screenshot(name)


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_the_dashboard_refreshes_itself_with_a_new_case(
    new_page: PageFactory, db: Session, make_user: UserFactory, clock: FrozenClock, phone: bool
) -> None:
    operator = make_user(name="Olga Operatrice", provinces=("BS",))
    on_shift(db, operator, at=clock.now())
    db.commit()
    first = new_case(db, now=clock.now(), by=operator, province="BS")
    shelter = new_shelter(db, now=clock.now(), capacity=3)
    opened = new_page(phone=phone)
    page = opened.page
    page.clock.install()
    sign_in(page, operator.email)
    page.goto("/")
    expect(page.locator("#panel-unaccepted")).to_contain_text(first.reference)
    expect(page.locator("#cover-BS .now")).to_contain_text("Olga Operatrice")
    free = page.locator('#beds-BS [data-kind="pronta_accoglienza"]')
    expect(free).to_have_text("3")
    checked(opened, f"dashboard-{'phone' if phone else 'desktop'}")
    second = new_case(db, now=clock.now(), by=operator, province="BS", urgency="urgent")
    placement = request_placement(db, first, shelter, beds=2, actor=operator, now=clock.now())
    confirm_placement(db, placement, actor=operator, now=clock.now())
    db.commit()
    expect(page.locator("#panel-unaccepted")).not_to_contain_text(second.reference)
    page.evaluate("window.stillThisPage = true")
    page.clock.run_for(31_000)  # past the 30 s refresh: the panels are fetched again
    expect(page.locator("#panel-unaccepted")).to_contain_text(second.reference)
    expect(page.locator("#week-total")).to_have_text("2")
    expect(free).to_have_text("1")  # the confirmed placement took two beds
    assert page.evaluate("window.stillThisPage") is True  # no reload
    checked(opened, f"dashboard-refreshed-{'phone' if phone else 'desktop'}")


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_a_coordinator_reads_the_month_report_with_charts_and_small_counts_hidden(
    new_page: PageFactory, db: Session, make_user: UserFactory, clock: FrozenClock, phone: bool
) -> None:
    operator = make_user(provinces=("BS",))
    coordinator = make_user(roles=("coordinator",), provinces=())
    for _ in range(4):
        new_case(db, now=clock.now(), by=operator, province="BS")
    placed = new_case(db, now=clock.now(), by=operator, province="BG")
    shelter = new_shelter(db, now=clock.now(), code="BG-PA-1", province="BG")
    placement = request_placement(db, placed, shelter, beds=1, actor=operator, now=clock.now())
    check_in(db, placement, at=clock.now(), actor=operator, now=clock.now())
    db.commit()
    opened = new_page(phone=phone)
    page = opened.page
    sign_in(page, coordinator.email)
    page.goto("/reports")
    table = page.locator("#measure-cases table")
    expect(table.locator("tr", has_text="BG")).to_contain_text("<3")
    expect(page.locator("#measure-cases svg title")).to_have_count(1)
    placements = page.locator("#measure-placements table")
    expect(placements.locator("tr", has_text="BG")).to_contain_text("<3")
    checked(opened, f"reports-{'phone' if phone else 'desktop'}")
    page.select_option("#r-province", "BS")
    page.get_by_role("button", name="Mostra").click()
    expect(page.locator("#measure-cases table tbody tr")).to_have_count(1)
