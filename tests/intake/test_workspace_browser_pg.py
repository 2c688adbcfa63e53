"""One pass of the case workspace in a browser on PostgreSQL: manual entry, the list, a note,
a status change (the other flows run on SQLite, tests/intake/test_workspace_browser.py)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from routing.models import Case
from tests.alerting import Chain
from tests.browser import (  # noqa: F401 -- fixtures, used by name
    PageFactory,
    axe_violations,
    browser_fixture,
    live_server_fixture,
    new_page_fixture,
    sign_in,
)
from tests.conftest import DATABASES

pytestmark = pytest.mark.parametrize(
    "database_url", [name for name in DATABASES if name == "postgresql"], indirect=True
)


def test_the_workspace_works_on_postgresql(
    new_page: PageFactory, chain: Chain, db: Session
) -> None:
    opened = new_page(phone=True)
    page = opened.page
    sign_in(page, chain.primary.email)
    page.goto("/cases/new")
    page.get_by_label("Provincia").fill("BS")
    page.get_by_label("Sintesi").fill("Segnalata di persona al drop-in.")
    page.get_by_label("Lo prendo io: è mio, non allertare nessuno").check()
    page.get_by_role("button", name="Apri il caso").click()
    expect(page.locator(".flash-success")).to_contain_text("BS-2026-0001 è aperto ed è tuo")
    page.goto("/cases?mine=1")
    page.get_by_role("link", name="BS-2026-0001").click()
    page.get_by_role("textbox", name="Nota").fill("Appuntamento domani.")
    page.get_by_role("button", name="Aggiungi la nota").click()
    page.select_option("#to", "unreachable")
    page.get_by_role("button", name="Cambia stato").click()
    expect(page.locator(".case-head")).to_contain_text("irraggiungibile")
    expect(page.locator(".timeline")).to_contain_text("Appuntamento domani.")
    assert axe_violations(page) == []
    assert opened.console_errors == []
    db.expire_all()
    case = db.scalars(select(Case)).one()
    assert (case.channel, case.status, case.accepted_by_id) == (
        "manual",
        "unreachable",
        chain.primary.id,
    )
