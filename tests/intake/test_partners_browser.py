"""The partners page and the case page's call back block in a real browser, on a desktop and
on a 390 px phone, each checked with axe-core."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from intake.models import CaseCallback, Partner
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
from tests.conftest import UserFactory
from tests.intake.signed import Sender

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _sqlite_only(database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("browser tests run on SQLite")


@pytest.mark.parametrize("on_phone", [False, True], ids=["desktop", "phone"])
def test_a_coordinator_manages_partners_in_the_page(
    new_page: PageFactory, make_user: UserFactory, db: Session, on_phone: bool
) -> None:
    coordinator = make_user(roles=("coordinator",), provinces=())
    opened = new_page(phone=on_phone)
    page = opened.page
    sign_in(page, coordinator.email)
    page.get_by_role("navigation").get_by_role("link", name="Partner", exact=True).click()
    expect(page.locator("h1")).to_have_text("Partner")
    assert axe_violations(page) == []

    page.fill("#name", "Questura di Brescia")
    page.select_option("#kind", "law_enforcement")
    page.select_option("#province", "BS")
    page.fill("#phones", "030 5550101\n12")
    page.get_by_role("button", name="Aggiungi partner").click()
    expect(page.locator(".field-error")).to_contain_text("non è un numero di telefono valido")
    assert axe_violations(page) == []
    page.fill("#phones", "030 5550101")
    page.get_by_role("button", name="Aggiungi partner").click()
    expect(page.locator(".flash-success")).to_contain_text("Questura di Brescia aggiunto.")
    expect(page.locator("table.partners")).to_contain_text("Questura di Brescia")
    expect(page.locator("table.partners")).to_contain_text("forze dell")
    assert horizontal_overflow(page) <= 0
    assert axe_violations(page) == []
    opened.screenshot(f"partners-{'phone' if on_phone else 'desktop'}")

    page.get_by_role("link", name="Modifica Questura di Brescia").click()
    page.fill("#phones", "030 5550101\n030 5550102")
    page.get_by_role("button", name="Salva").click()
    expect(page.locator(".flash-success")).to_contain_text("Questura di Brescia salvato.")
    page.get_by_role("button", name="Disattiva Questura di Brescia").click()
    expect(page.locator(".flash-success")).to_contain_text("disattivato")
    expect(page.locator("tr.inactive")).to_contain_text("disattivato")
    assert axe_violations(page) == []
    assert opened.console_errors == []
    db.expire_all()
    partner = db.scalars(select(Partner)).one()
    assert partner.active is False
    assert sorted(p.phone for p in partner.phones) == ["+390305550101", "+390305550102"]


@pytest.mark.parametrize("on_phone", [False, True], ids=["desktop", "phone"])
def test_an_operator_calls_back_after_confirming_it_is_safe(
    new_page: PageFactory,
    sender: Sender,
    chain: Chain,
    phone: Phone,
    db: Session,
    on_phone: bool,
) -> None:
    sender.post(
        {
            "external_id": "NV-cb",
            "province": "BS",
            "urgency": "emergency",
            "callback_phone": "+393337654321",
        }
    )
    db.execute(update(Case).values(contact_safe="unknown"))
    opened = new_page(phone=on_phone)
    page = opened.page
    sign_in(page, chain.primary.email)
    page.goto("/cases/BS-2026-0001")
    block = page.locator("#callback")
    expect(block).to_contain_text("non noto")
    call = page.get_by_role("button", name="Richiama")
    box = call.bounding_box()
    assert box is not None
    assert box["height"] >= 44
    assert horizontal_overflow(page) <= 0
    assert axe_violations(page) == []
    opened.screenshot(f"callback-{'phone' if on_phone else 'desktop'}")
    # The box is required: the browser itself holds the form until it is ticked.
    call.click()
    assert db.scalars(select(CaseCallback)).all() == []
    page.get_by_label("Ho verificato: ora è sicuro chiamare questo numero").check()
    call.click()
    expect(page.locator(".flash-success")).to_contain_text("Ali sta chiamando il tuo telefono")
    expect(page.locator(".callbacks")).to_contain_text("squilla")
    assert axe_violations(page) == []
    assert opened.console_errors == []
    db.expire_all()
    [row] = db.scalars(select(CaseCallback)).all()
    assert row.confirmed is True
