"""The escalation policies page in a real browser, desktop and phone: edit, preview, errors."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy.orm import Session

from routing.models import EscalationPolicy
from tests.alerting import Chain
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
from tests.routing.test_policies import stored


def test_an_admin_edits_a_step_previews_it_then_saves(
    new_page: PageFactory, make_user: UserFactory, chain: Chain, db: Session
) -> None:
    admin = make_user(roles=("admin",), provinces=(), email="admin@ali.example")
    before = stored(db)
    desktop = new_page()
    page = desktop.page
    sign_in(page, admin.email)
    page.get_by_role("navigation").get_by_role("link", name="Politiche di escalation").click()
    expect(page.locator("h1")).to_have_text("Politiche di escalation")
    page.select_option("#province", "BS")
    page.get_by_role("button", name="Anteprima delle modifiche").click()
    preview = page.locator("#policy-preview")
    expect(preview).to_contain_text("Paola Primaria")
    expect(preview.locator("li").first).to_contain_text("11:00")
    assert axe_violations(page) == []

    # Step 1 of an emergency waits 10 minutes: the preview moves step 2 to 11:10, unsaved.
    page.fill("#emergency-0-wait", "10")
    page.get_by_role("button", name="Anteprima delle modifiche").click()
    expect(preview).to_contain_text("non ancora salvate")
    expect(preview).to_contain_text("11:10")
    expect(preview).to_contain_text("Bruno Backup")

    # The last step without the coordinators is refused, in the form, next to the step.
    last = page.locator("#policy-emergency fieldset.policy-step").nth(2)
    last.get_by_label("Coordinamento").uncheck()
    last.get_by_label("Reperibile", exact=True).check()
    page.get_by_role("button", name="Salva le politiche").click()
    expect(page.locator("#form-problems")).to_contain_text("Non è stato salvato nulla")
    expect(page.locator("#policy-emergency fieldset.policy-step").nth(2)).to_contain_text(
        "l'ultimo passo deve includere i coordinatori"
    )
    expect(page.locator("#emergency-0-wait")).to_have_value("10")
    assert stored(db) == before
    assert axe_violations(page) == []
    desktop.screenshot("policies-error")

    page.locator("#policy-emergency fieldset.policy-step").nth(2).get_by_label(
        "Coordinamento"
    ).check()
    page.get_by_role("button", name="Salva le politiche").click()
    expect(page.locator(".flash-success")).to_contain_text("Politiche salvate")
    db.expire_all()
    saved = db.get(EscalationPolicy, "emergency")
    assert saved is not None
    assert saved.steps[0]["wait_minutes"] == 10
    assert saved.steps[2]["targets"] == ["primary", "coordinators"]
    # The refused save answered 400 (the browser logs it); nothing else: no CSP or script error.
    assert [e for e in desktop.console_errors if "status of 400" not in e] == []


def test_the_policies_page_is_usable_on_a_phone(
    new_page: PageFactory, make_user: UserFactory, chain: Chain
) -> None:
    admin = make_user(roles=("admin",), provinces=(), email="admin@ali.example")
    mobile = new_page(phone=True)
    page = mobile.page
    sign_in(page, admin.email)
    page.goto("/admin/policies?province=BS")
    expect(page.locator("#policy-preview")).to_contain_text("Carla Coordinatrice")
    assert horizontal_overflow(page) <= 0
    box = page.locator("#policy-emergency label.choice").first.bounding_box()
    assert box is not None
    assert box["height"] >= 44
    assert axe_violations(page) == []
    mobile.screenshot("policies-phone")


def test_an_operator_gets_403_and_no_menu_entry(
    new_page: PageFactory, make_user: UserFactory
) -> None:
    operator = make_user(email="op@ali.example")
    desktop = new_page()
    page = desktop.page
    sign_in(page, operator.email)
    expect(page.get_by_role("link", name="Politiche di escalation")).to_have_count(0)  # nor tile
    response = page.goto("/admin/policies")
    assert response is not None
    assert response.status == 403
