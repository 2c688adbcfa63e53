"""Shelters and placements in a real browser, on a desktop and on a 390 px phone, each page
checked with axe-core: the last bed taken drops the count to zero and the next placement needs
the override; a coordinator reads the address, an operator never sees it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from intake.models import PlacementEntry
from tests.browser import (  # noqa: F401 -- fixtures, used by name
    PageFactory,
    axe_violations,
    browser_fixture,
    horizontal_overflow,
    live_server_fixture,
    new_page_fixture,
    sign_in,
)
from tests.conftest import UserFactory
from tests.intake.cases import new_case
from tests.intake.shelters import new_shelter

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _sqlite_only(database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("browser tests run on SQLite (one PostgreSQL pass below)")


def _place(page: object, reference: str) -> None:
    """Request the first shelter of the list for one bed, from the case page."""
    from playwright.sync_api import Page  # noqa: PLC0415 -- for the type only

    assert isinstance(page, Page)
    page.goto(f"/cases/{reference}")
    page.get_by_role("button", name="Richiedi il posto").click()
    expect(page.locator(".flash-success")).to_contain_text("Inserimento richiesto presso")


@pytest.mark.parametrize("on_phone", [False, True], ids=["desktop", "phone"])
def test_the_last_bed_drops_the_count_to_zero_and_the_next_needs_an_override(
    new_page: PageFactory,
    make_user: UserFactory,
    db: Session,
    clock: FrozenClock,
    on_phone: bool,
) -> None:
    now = clock.now()
    operator = make_user(provinces=("BS",), name="Operatrice Notte")
    new_shelter(db, now=now, capacity=1)
    first = new_case(db, now=now, by=operator, province="BS")
    second = new_case(db, now=now, by=operator, province="BS")
    suffix = "phone" if on_phone else "desktop"
    opened = new_page(phone=on_phone)
    page = opened.page
    sign_in(page, operator.email)

    _place(page, first.reference)
    expect(page.locator(".free-beds")).to_contain_text("1 posto letto libero in pronta accoglienza")
    page.get_by_role("button", name="Conferma: la struttura ha detto sì").click()
    expect(page.locator(".flash-success")).to_contain_text("Inserimento confermato")
    expect(page.locator(".free-beds")).to_contain_text("0 posti letto liberi in pronta accoglienza")
    page.get_by_role("button", name="Registra l'ingresso").click()
    expect(page.locator(".placement h3")).to_contain_text("entrata")
    assert axe_violations(page) == []
    assert horizontal_overflow(page) <= 0
    opened.screenshot(f"case-placement-{suffix}")

    _place(page, second.reference)
    page.get_by_role("button", name="Conferma: la struttura ha detto sì").click()
    expect(page.locator(".flash-error")).to_contain_text("La struttura ha 0 posti liberi")
    assert axe_violations(page) == []
    page.get_by_label("Motivo della deroga (solo se la struttura è piena)", exact=True).fill(
        "Pericolo immediato: nessun altro posto stanotte"
    )
    page.get_by_role("button", name="Conferma: la struttura ha detto sì").click()
    expect(page.locator(".flash-success")).to_contain_text("Inserimento confermato")
    expect(page.locator(".placement h3 .badge-warn")).to_contain_text("struttura piena")
    page.locator(".placement summary").click()
    expect(page.locator(".placement-log")).to_contain_text("Pericolo immediato")
    assert axe_violations(page) == []
    assert horizontal_overflow(page) <= 0
    opened.screenshot(f"case-placement-override-{suffix}")

    page.get_by_role("navigation").get_by_role("link", name="Strutture", exact=True).click()
    expect(page.locator("h1")).to_have_text("Strutture")
    expect(page.locator("table.shelters")).to_contain_text("0 / 1")
    expect(page.locator("table.shelters")).to_contain_text("1 oltre la capienza")
    expect(page.locator("main")).not_to_contain_text("Via Segreta")
    assert page.get_by_role("link", name="Modifica e indirizzo Casa Aurora").count() == 0
    assert axe_violations(page) == []
    assert horizontal_overflow(page) <= 0
    opened.screenshot(f"shelters-operator-{suffix}")
    assert opened.console_errors == []
    db.expire_all()
    overrides = db.scalars(
        select(PlacementEntry.override).where(PlacementEntry.override.is_not(None))
    )
    assert list(overrides) == ["full"]


@pytest.mark.parametrize("on_phone", [False, True], ids=["desktop", "phone"])
def test_a_coordinator_adds_a_shelter_and_reads_its_address(
    new_page: PageFactory, make_user: UserFactory, db: Session, on_phone: bool
) -> None:
    coordinator = make_user(roles=("coordinator",), provinces=())
    opened = new_page(phone=on_phone)
    page = opened.page
    sign_in(page, coordinator.email)
    page.goto("/shelters")
    page.fill("#code", "BS-PA-9")
    page.fill("#name", "Casa Stella")
    page.select_option("#province", "BS")
    page.select_option("#kind", "pronta_accoglienza")
    page.get_by_label("donne").check()
    page.fill("#capacity", "4")
    page.fill("#address", "Via Nascosta 7, Brescia")
    page.get_by_role("button", name="Aggiungi struttura").click()
    expect(page.locator(".flash-success")).to_contain_text("Casa Stella")
    expect(page.locator("table.shelters")).to_contain_text("4 / 4")
    expect(page.locator("table.province-beds")).to_contain_text("4")
    expect(page.locator("main")).not_to_contain_text("Via Nascosta")
    assert axe_violations(page) == []
    assert horizontal_overflow(page) <= 0
    opened.screenshot(f"shelters-coordinator-{'phone' if on_phone else 'desktop'}")
    page.get_by_role("link", name="Modifica e indirizzo Casa Stella").click()
    expect(page.locator("#address")).to_have_value("Via Nascosta 7, Brescia")
    assert axe_violations(page) == []
    assert horizontal_overflow(page) <= 0
    opened.screenshot(f"shelter-address-{'phone' if on_phone else 'desktop'}")
    assert opened.console_errors == []
