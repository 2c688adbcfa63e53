"""The alert page an SMS links to: who sees it, what it shows, accepting from the web."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import AuditEntry
from routing.models import Case
from tests.alerting import Chain, Phone
from tests.conftest import UserFactory, csrf_token, login
from tests.intake.signed import Sender

HANDOFF = {
    "external_id": "NV-page",
    "province": "BS",
    "urgency": "emergency",
    "summary": "Donna di 20 anni alla stazione",
    "callback_phone": "+393337654321",
}


def test_the_paged_operator_sees_the_case_and_accepts_it_from_the_page(
    client: FlaskClient, sender: Sender, chain: Chain, phone: Phone, db: Session
) -> None:
    sender.post(HANDOFF)
    login(client, chain.primary.email)
    page = client.get("/cases/BS-2026-0001")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Donna di 20 anni alla stazione" in html
    # No one-tap call: the phone may be in an exploiter's hands (contact safety comes first).
    assert "+39 333 765 4321" in html
    assert 'href="tel:+393337654321"' not in html
    assert "Accetta" in html
    read = db.scalars(
        select(AuditEntry).where(AuditEntry.action == "read", AuditEntry.object_type == "case")
    ).all()
    assert [entry.actor_id for entry in read] == [chain.primary.id]
    assert "summary" in read[0].fields
    assert "Donna" not in str(read[0].detail)

    answer = client.post("/cases/BS-2026-0001/accept", data={"csrf_token": csrf_token(html)})
    assert answer.status_code == 302
    answer.close()
    db.expire_all()
    case = db.scalars(select(Case)).one()
    assert (case.status, case.accepted_by_id) == ("accepted", chain.primary.id)
    # The ringing alert call ends; the page now says whose it is and has no buttons.
    [call] = phone.calls_to(chain.primary)
    assert phone.twilio.call(call.sid).updates[-1]["Status"] == ["completed"]
    after = client.get("/cases/BS-2026-0001").get_data(as_text=True)
    assert "Paola Primaria" in after
    assert "/accept" not in after


def test_an_operator_of_another_province_gets_a_404(
    client: FlaskClient, sender: Sender, chain: Chain, make_user: UserFactory
) -> None:
    sender.post(HANDOFF)
    stranger = make_user(provinces=("BG",))
    login(client, stranger.email)
    assert client.get("/cases/BS-2026-0001").status_code == 404
    assert client.get("/cases/BS-2026-9999").status_code == 404
    assert client.get("/cases/not-a-reference").status_code == 404
    assert client.post("/cases/BS-2026-0001/accept").status_code in {400, 404}


def test_coordinators_see_every_case_and_a_paged_operator_sees_an_unresolved_one(
    client: FlaskClient, sender: Sender, chain: Chain, db: Session
) -> None:
    sender.post({"external_id": "NV-x"})
    login(client, chain.coordinator.email)
    assert client.get("/cases/XX-2026-0001").status_code == 200


def test_the_page_needs_a_login(client: FlaskClient, sender: Sender, chain: Chain) -> None:
    sender.post(HANDOFF)
    response = client.get("/cases/BS-2026-0001")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_admins_and_rota_managers_as_such_do_not_read_cases(
    client: FlaskClient, sender: Sender, chain: Chain, make_user: UserFactory
) -> None:
    sender.post(HANDOFF)
    admin = make_user(roles=("admin",), provinces=())
    manager = make_user(roles=("rota_manager",), provinces=("BS",))
    for user in (admin, manager):
        login(client, user.email)
        assert client.get("/cases/BS-2026-0001").status_code == 404
        client.post(
            "/logout", data={"csrf_token": csrf_token(client.get("/").get_data(as_text=True))}
        )


def test_declining_from_the_page_is_audited_and_pages_the_backup(
    client: FlaskClient, sender: Sender, chain: Chain, phone: Phone, db: Session
) -> None:
    sender.post(HANDOFF)
    login(client, chain.primary.email)
    html = client.get("/cases/BS-2026-0001").get_data(as_text=True)
    answer = client.post("/cases/BS-2026-0001/decline", data={"csrf_token": csrf_token(html)})
    answer.close()
    assert len(phone.sms_to(chain.backup)) == 1
    updates = db.scalars(select(AuditEntry).where(AuditEntry.action == "update")).all()
    [entry] = [e for e in updates if e.fields == ["dispatch"]]
    assert (entry.actor_id, entry.detail) == (chain.primary.id, {"declined": True, "via": "web"})
