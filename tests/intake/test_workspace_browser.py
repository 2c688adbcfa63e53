"""The case workspace in a real browser, on a phone and on a desktop: find a case in the list,
accept it, add a note, reach the person, close it with an outcome; enter a case by hand;
a minor's case out of sight of an operator who was not paged.

The flows run on SQLite; tests/intake/test_workspace_browser_pg.py runs one on PostgreSQL.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import AuditEntry
from routing.models import Case, CaseEvent
from routing.models import Page as AlertPage
from tests.alerting import Chain, Phone
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
from tests.intake.signed import Sender

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

ORDINARY = {"external_id": "NV-1", "province": "BS", "urgency": "ordinary"}
EMERGENCY = {
    "external_id": "NV-2",
    "province": "BS",
    "urgency": "emergency",
    "reporter_type": "law_enforcement",
    "person": {"gender": "female", "age_band": "18-24", "minor": "no"},
    "summary": "Giovane donna alla stazione, chiede aiuto.",
    "callback_phone": "+393337654321",
}


def checked(opened: BrowserPage, name: str, *, status: int | None = None) -> None:
    """The page fits its viewport, passes axe-core, logs no error (but the `status` the page
    was meant to answer with); a screenshot is kept."""
    page = opened.page
    assert horizontal_overflow(page) <= 0
    assert axe_violations(page) == []
    expected = f"status of {status} " if status else None
    assert [e for e in opened.console_errors if not expected or expected not in e] == []
    opened.console_errors.clear()
    opened.screenshot(name)


def rows(page: Page) -> list[str]:
    return page.locator(".case-row .case-ref").all_inner_texts()


def test_an_operator_finds_a_case_accepts_it_works_it_and_closes_it_on_a_phone(
    new_page: PageFactory, sender: Sender, chain: Chain, phone: Phone, db: Session
) -> None:
    sender.post(ORDINARY)
    sender.post(EMERGENCY)
    phone.tick(minutes=3)  # the emergency's first step passed unaccepted: amber
    desktop = new_page()
    sign_in(desktop.page, chain.primary.email)
    desktop.page.goto("/cases")
    # Most urgent first; the escalating one stands out.
    assert rows(desktop.page) == ["BS-2026-0002", "BS-2026-0001"]
    expect(desktop.page.locator(".case-row.amber")).to_contain_text("BS-2026-0002")
    expect(desktop.page.locator(".case-row.amber")).to_contain_text("allerta in corso")
    checked(desktop, "list-desktop")

    mobile = new_page(phone=True)
    page = mobile.page
    sign_in(page, chain.primary.email)
    page.goto("/cases")
    page.get_by_label("Non ancora accettati").check()
    page.get_by_role("button", name="Filtra").click()
    page.wait_for_url(lambda url: "unaccepted=1" in url)
    assert rows(page) == ["BS-2026-0002", "BS-2026-0001"]
    checked(mobile, "list-phone")
    page.get_by_role("link", name="BS-2026-0002").click()
    expect(page.locator("h1")).to_contain_text("BS-2026-0002")
    expect(page.locator(".case-contact")).to_contain_text("+39 333 765 4321")
    expect(page.locator(".case-contact")).to_contain_text("non si sa se è sicuro richiamare")
    checked(mobile, "case-phone-alert")
    page.get_by_role("button", name="Accetta: lo prendo io").click()
    expect(page.locator(".flash-success")).to_contain_text("BS-2026-0002 è tuo")

    note_text = "Richiamata la segnalante: incontro alle 11 in stazione."
    page.get_by_role("textbox", name="Nota").fill(note_text)
    page.get_by_role("button", name="Aggiungi la nota").click()
    expect(page.locator(".flash-success")).to_contain_text("Nota aggiunta")
    expect(page.locator(".timeline")).to_contain_text("incontro alle 11 in stazione")

    page.select_option("#to", "in_contact")
    page.get_by_role("button", name="Cambia stato").click()
    expect(page.locator(".case-head")).to_contain_text("in contatto")
    checked(mobile, "case-phone-in-contact")

    page.select_option("#outcome", "placed")
    page.get_by_role("button", name="Chiudi il caso").click()
    expect(page.locator(".flash-success")).to_contain_text("BS-2026-0002 è chiuso: accolto")
    expect(page.locator(".case-head")).to_contain_text("chiuso")
    # Only a coordinator reopens; the operator is offered no more changes.
    expect(page.get_by_role("button", name="Riapri")).to_have_count(0)
    expect(page.locator("#to")).to_have_count(0)
    checked(mobile, "case-phone-closed")

    db.expire_all()
    case = db.scalars(select(Case).where(Case.reference == "BS-2026-0002")).one()
    assert (case.status, case.accepted_by_id) == ("closed", chain.primary.id)
    changes = db.scalars(
        select(CaseEvent)
        .where(CaseEvent.case_id == case.id, CaseEvent.kind == "status_changed")
        .order_by(CaseEvent.id)
    ).all()
    assert [event.data["to"] for event in changes] == ["accepted", "in_contact", "placed", "closed"]
    [note] = db.scalars(
        select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.kind == "note")
    ).all()
    assert note.note == note_text
    # The note is encrypted at rest, and the audit names the field, never its text.
    raw = (
        db.connection()
        .exec_driver_sql(
            f"SELECT note FROM case_events WHERE id = {note.id}"  # noqa: S608 -- an int id
        )
        .scalar_one()
    )
    assert "Richiamata" not in raw
    audits = db.scalars(select(AuditEntry).where(AuditEntry.object_id == str(case.id))).all()
    assert any(entry.fields == ["note"] for entry in audits)
    assert all("Richiamata" not in str(entry.detail) for entry in audits)
    assert sum(entry.action == "read" for entry in audits) >= 5  # every view of the page

    # The closed case leaves the default list (open cases), and shows under "all".
    page.goto("/cases")
    assert "BS-2026-0002" not in rows(page)
    page.goto("/cases?status=all")
    assert "BS-2026-0002" in rows(page)


def test_a_coordinator_sees_a_red_case_and_reopens_a_closed_one(
    new_page: PageFactory, sender: Sender, chain: Chain, phone: Phone
) -> None:
    sender.post(EMERGENCY)
    for minutes in (3, 3, 5, 5, 5, 5):
        phone.tick(minutes=minutes)
    desktop = new_page()
    page = desktop.page
    sign_in(page, chain.coordinator.email)
    page.goto("/cases")
    expect(page.locator(".case-row.red")).to_contain_text("Senza risposta")
    page.get_by_role("link", name="BS-2026-0001").click()
    page.get_by_role("button", name="Accetta: lo prendo io").click()
    page.select_option("#outcome", "not_pertinent")
    page.get_by_role("button", name="Chiudi il caso").click()
    expect(page.locator(".case-head")).to_contain_text("chiuso")
    page.get_by_role("button", name="Riapri").click()
    expect(page.locator(".flash-success")).to_contain_text("BS-2026-0001 è di nuovo aperto")
    expect(page.locator(".case-head")).to_contain_text("in contatto")
    checked(desktop, "case-desktop-reopened")


def test_a_case_is_entered_by_hand_on_a_phone_and_taken_at_once(
    new_page: PageFactory, chain: Chain, phone: Phone, db: Session, make_user: UserFactory
) -> None:
    street = make_user(name="Sara Strada", provinces=("BS",))
    mobile = new_page(phone=True)
    page = mobile.page
    sign_in(page, street.email)
    page.goto("/cases")
    page.get_by_role("link", name="Nuovo caso").click()
    expect(page.locator("h1")).to_contain_text("Nuovo caso")
    checked(mobile, "new-phone")
    page.get_by_label("Urgente").check()
    page.get_by_label("Provincia").fill("Brescia")
    page.get_by_label("Telefono per richiamare").fill("12")
    page.get_by_label("si può richiamare o scrivere").check()
    page.get_by_label("sessuale").check()
    page.select_option("#minor", "no")
    page.get_by_label("Nazionalità").fill("ng")
    page.get_by_label("Sintesi").fill("Incontrata in via Milano dall'unità di strada.")
    page.get_by_label("Lo prendo io: è mio, non allertare nessuno").check()
    page.get_by_role("button", name="Apri il caso").click()
    # A bad phone number is a form message; nothing else is lost.
    expect(page.locator(".flash-error")).to_contain_text("Alcuni campi non sono stati compresi")
    expect(page.locator("#callback_phone-error")).to_contain_text("Non è un numero di telefono")
    expect(page.get_by_label("Sintesi")).to_have_value(
        "Incontrata in via Milano dall'unità di strada."
    )
    expect(page.get_by_label("sessuale")).to_be_checked()
    checked(mobile, "new-phone-errors", status=422)
    db.expire_all()
    assert db.scalars(select(Case)).all() == []

    page.get_by_label("Telefono per richiamare").fill("333 123 4567")
    page.get_by_role("button", name="Apri il caso", exact=True).click()
    expect(page.locator(".flash-success")).to_contain_text("BS-2026-0001 è aperto ed è tuo")
    expect(page.locator(".case-head")).to_contain_text("Sara Strada")
    expect(page.locator(".case-contact")).to_contain_text("+39 333 123 4567")
    expect(page.locator(".case-contact")).to_contain_text("si può richiamare o scrivere")
    checked(mobile, "new-phone-opened")

    db.expire_all()
    case = db.scalars(select(Case)).one()
    assert (case.channel, case.province, case.province_source) == ("manual", "BS", "explicit")
    assert (case.status, case.accepted_by_id, case.contact_safe) == ("accepted", street.id, "yes")
    assert (case.person_nationality, case.exploitation) == ("NG", ["sexual"])
    # Taken at once: the on-call operator is not disturbed, and the timeline says no one was.
    phone.tick()
    assert phone.sms_to(chain.primary) == []
    assert db.scalars(select(AlertPage)).all() == []
    assert "step" not in set(db.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == case.id)))


def test_a_case_entered_by_hand_is_alerted_like_any_other(
    new_page: PageFactory, chain: Chain, phone: Phone, make_user: UserFactory
) -> None:
    street = make_user(name="Sara Strada", provinces=("BS",))
    desktop = new_page()
    page = desktop.page
    sign_in(page, street.email)
    page.goto("/cases/new")
    page.get_by_label("Emergenza").check()
    page.get_by_label("Provincia").fill("BS")
    page.get_by_role("button", name="Apri il caso").click()
    expect(page.locator(".flash-success")).to_contain_text("stiamo allertando")
    expect(page.locator(".case-head")).to_contain_text("in allerta")
    checked(desktop, "new-desktop-opened")
    phone.tick()
    [sms] = phone.sms_to(chain.primary)
    assert sms.startswith("ALI BS-2026-0001 EMERGENZA")


def test_a_minor_case_is_hidden_from_an_operator_of_the_province_who_was_not_paged(
    new_page: PageFactory,
    sender: Sender,
    chain: Chain,
    phone: Phone,
    make_user: UserFactory,
) -> None:
    colleague = make_user(name="Collega BS", provinces=("BS",))
    sender.post(ORDINARY)
    sender.post({**EMERGENCY, "person": {"minor": "presumed", "age_band": "14-17"}})
    desktop = new_page()
    page = desktop.page
    sign_in(page, colleague.email)
    page.goto("/cases")
    assert rows(page) == ["BS-2026-0001"]
    expect(page.locator("[role=status]")).to_contain_text("1 caso")
    response = page.goto("/cases/BS-2026-0002")
    assert response is not None
    assert response.status == 404
    checked(desktop, "case-desktop-404", status=404)

    paged = new_page(phone=True)
    sign_in(paged.page, chain.primary.email)
    paged.page.goto("/cases")
    assert rows(paged.page) == ["BS-2026-0002", "BS-2026-0001"]
