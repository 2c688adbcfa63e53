"""One pass of shelters and placements in a browser on PostgreSQL (the other flows run on
SQLite, tests/intake/test_shelters_browser.py)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from tests.browser import (  # noqa: F401 -- fixtures, used by name
    PageFactory,
    axe_violations,
    browser_fixture,
    live_server_fixture,
    new_page_fixture,
    sign_in,
)
from tests.conftest import DATABASES, UserFactory
from tests.intake.cases import new_case
from tests.intake.shelters import new_shelter

pytestmark = pytest.mark.parametrize(
    "database_url", [name for name in DATABASES if name == "postgresql"], indirect=True
)


def test_a_placement_takes_the_last_bed_on_postgresql(
    new_page: PageFactory, make_user: UserFactory, db: Session, clock: FrozenClock
) -> None:
    now = clock.now()
    operator = make_user(provinces=("BS",))
    new_shelter(db, now=now, capacity=1)
    case = new_case(db, now=now, by=operator, province="BS")
    opened = new_page(phone=True)
    page = opened.page
    sign_in(page, operator.email)
    page.goto(f"/cases/{case.reference}")
    page.get_by_role("button", name="Richiedi il posto").click()
    page.get_by_role("button", name="Conferma: la struttura ha detto sì").click()
    expect(page.locator(".free-beds")).to_contain_text("0 posti letto liberi in pronta accoglienza")
    page.goto("/shelters")
    expect(page.locator("table.shelters")).to_contain_text("0 / 1")
    assert axe_violations(page) == []
    assert opened.console_errors == []
