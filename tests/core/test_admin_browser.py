"""The admins' pages and two-factor login in a real browser, desktop and phone, with axe."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.clock import FrozenClock
from core.models import User
from tests.alerting import on_shift
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


@pytest.fixture(autouse=True)
def _sqlite_only(database_url: str) -> None:
    # The pages' SQL is covered on both databases by the HTTP tests; a browser adds nothing
    # database-specific and costs a minute on a 2-core machine.
    if not database_url.startswith("sqlite"):
        pytest.skip("browser tests run on SQLite")


def _checked(page: Page) -> None:
    assert horizontal_overflow(page) <= 0
    assert axe_violations(page) == []


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_an_admin_creates_a_user_and_deactivates_a_rostered_one(
    new_page: PageFactory,
    make_user: UserFactory,
    db: Session,
    clock: FrozenClock,
    phone: bool,
) -> None:
    admin = make_user(roles=("admin",), provinces=(), name="Ada Admin")
    primary = make_user(name="Paola Primaria")
    on_shift(db, primary, at=clock.now() + timedelta(days=3))
    opened = new_page(phone=phone)
    page = opened.page
    sign_in(page, admin.email)
    page.goto("/admin/users")
    expect(page.locator("h1")).to_have_text("Utenti")
    expect(page.locator("table.users")).to_contain_text("Paola Primaria")
    _checked(page)
    opened.screenshot(f"admin-users-{'phone' if phone else 'desktop'}")

    page.get_by_role("link", name="Nuovo utente").click()
    page.fill("#email", "nora@ali.example")
    page.fill("#display_name", "Nora Nuova")
    page.fill("#phone", "333 123 4567")
    page.get_by_label("Responsabile turni").check()
    page.get_by_label("BG", exact=True).check()
    _checked(page)
    page.get_by_role("button", name="Crea utente").click()
    expect(page.locator("h1")).to_contain_text("Nora Nuova è stato creato")
    password = page.locator("#one-time-password").inner_text()
    assert len(password) >= 12
    _checked(page)
    db.expire_all()
    nora = db.scalars(select(User).where(User.email == "nora@ali.example")).one()
    assert sorted(nora.roles) == ["operator", "rota_manager"]
    assert nora.provinces == ["BG"]

    page.goto(f"/admin/users/{primary.id}")
    page.get_by_role("link", name="Disattiva…").click()
    expect(page.locator("#consequences")).to_contain_text("Buco in BS")
    _checked(page)
    opened.screenshot(f"admin-deactivate-{'phone' if phone else 'desktop'}")
    page.get_by_role("button", name="Disattiva", exact=True).click()
    expect(page.locator(".flash-success")).to_contain_text("Paola Primaria è disattivato")
    db.refresh(primary)
    assert not primary.active
    assert opened.console_errors == []


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_an_admin_filters_the_audit_log(
    new_page: PageFactory, make_user: UserFactory, db: Session, clock: FrozenClock, phone: bool
) -> None:
    admin = make_user(roles=("admin",), provinces=())
    reader = make_user(name="Rita Reader")
    for n in range(3):
        audit.record(
            db, now=clock.now(), action="read", object_type="case", object_id=str(n), actor=reader
        )
    audit.record(db, now=clock.now(), action="update", object_type="rotation", object_id="1")
    db.commit()
    opened = new_page(phone=phone)
    page = opened.page
    sign_in(page, admin.email)
    page.goto("/admin/audit")
    expect(page.locator("h1")).to_have_text("Registro delle operazioni")
    _checked(page)
    page.select_option("#f-user", str(reader.id))
    page.select_option("#f-type", "case")
    page.fill("#f-from", clock.now().date().isoformat())
    page.get_by_role("button", name="Cerca").click()
    expect(page.locator("#audit-count")).to_have_text("3 voci")
    expect(page.locator("table.audit tbody tr")).to_have_count(3)
    _checked(page)
    opened.screenshot(f"admin-audit-{'phone' if phone else 'desktop'}")
    with page.expect_download() as download:
        page.get_by_role("button", name="Esporta CSV").click()
    assert download.value.suggested_filename.endswith(".csv")
    assert opened.console_errors == []


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_a_coordinator_enrols_in_two_factor_login_and_signs_in_with_a_code(
    new_page: PageFactory, make_user: UserFactory, db: Session, clock: FrozenClock, phone: bool
) -> None:
    coordinator = make_user(roles=("coordinator",), provinces=())
    opened = new_page(phone=phone)
    page = opened.page
    sign_in(page, coordinator.email)
    page.get_by_role("link", name="Accesso a due fattori").first.click()
    expect(page.locator("img.qr")).to_be_visible()
    _checked(page)
    opened.screenshot(f"two-factor-enrol-{'phone' if phone else 'desktop'}")
    secret = page.locator("#totp-key").inner_text()
    page.fill("#code", pyotp.TOTP(secret).at(clock.now()))
    page.get_by_role("button", name="Attiva").click()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    _checked(page)
    page.get_by_role("button", name="Esci").click()

    clock.advance(timedelta(seconds=30))
    page.goto("/login")
    page.fill("#email", coordinator.email)
    page.fill("#password", "correct horse battery staple")
    page.locator("form button[type=submit].primary").click()
    page.wait_for_url("**/login/code")
    _checked(page)
    opened.screenshot(f"two-factor-code-{'phone' if phone else 'desktop'}")
    page.fill("#code", "123456" if pyotp.TOTP(secret).at(clock.now()) != "123456" else "654321")
    page.locator("form button[type=submit].primary").click()
    expect(page.locator(".flash-error")).to_contain_text("Codice errato")
    page.fill("#code", pyotp.TOTP(secret).at(clock.now()))
    page.locator("form button[type=submit].primary").click()
    page.wait_for_url(lambda url: "/login" not in url)
    expect(page.locator("h1")).to_contain_text("Ciao")
    # The wrong code's 401 answer is the only error the console may show.
    assert [e for e in opened.console_errors if "401 (UNAUTHORIZED)" not in e] == []
