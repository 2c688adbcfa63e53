"""The case workspace through HTTP: the list's order, filters, pages and colours; notes,
status changes, closing and reopening; manual entry's validation and routing; the audit."""

from __future__ import annotations

import re
from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from core.models import AuditEntry, User
from intake.workspace import PAGE_SIZE
from routing.models import Case, CaseEvent, Dispatch, DispatchState
from tests.alerting import Chain, Phone
from tests.conftest import UserFactory, csrf_token, login
from tests.intake.cases import accept, new_case

REF = re.compile(r'class="case-ref" href="/cases/([A-Z]{2}-\d{4}-\d+)"')


def listed(client: FlaskClient, query: str = "") -> list[str]:
    return REF.findall(client.get(f"/cases?{query}").get_data(as_text=True))


def signed_in(client: FlaskClient, user: User) -> str:
    login(client, user.email)
    return csrf_token(client.get("/cases").get_data(as_text=True))


def test_the_list_puts_the_most_urgent_first_then_the_oldest(
    client: FlaskClient, db: Session, make_user: UserFactory, clock: FrozenClock
) -> None:
    operator = make_user(provinces=("BS",))
    t = clock.now()
    ordinary_old = new_case(db, now=t - timedelta(hours=5), by=operator, province="BS")
    urgent_new = new_case(
        db, now=t - timedelta(hours=1), by=operator, province="BS", urgency="urgent"
    )
    emergency = new_case(db, now=t, by=operator, province="BS", urgency="emergency")
    urgent_old = new_case(
        db, now=t - timedelta(hours=3), by=operator, province="BS", urgency="urgent"
    )
    signed_in(client, operator)
    assert listed(client) == [
        emergency.reference,
        urgent_old.reference,
        urgent_new.reference,
        ordinary_old.reference,
    ]


def test_the_list_filters_by_province_status_urgency_unaccepted_and_mine(
    client: FlaskClient, db: Session, make_user: UserFactory, clock: FrozenClock
) -> None:
    operator = make_user(provinces=("BS", "BG"))
    colleague = make_user(provinces=("BS",))
    now = clock.now()
    bs = new_case(db, now=now, by=operator, province="BS", urgency="emergency")
    bg = new_case(db, now=now, by=operator, province="BG")
    mine = new_case(db, now=now, by=operator, province="BS")
    accept(db, mine, operator, now=now)
    theirs = new_case(db, now=now, by=operator, province="BS")
    accept(db, theirs, colleague, now=now)
    signed_in(client, operator)
    assert set(listed(client)) == {bs.reference, bg.reference, mine.reference, theirs.reference}
    assert listed(client, "province=BG") == [bg.reference]
    assert listed(client, "province=MN") == listed(client)  # not theirs: no filter
    assert listed(client, "urgency=emergency") == [bs.reference]
    assert set(listed(client, "unaccepted=1")) == {bs.reference, bg.reference}
    assert listed(client, "mine=1") == [mine.reference]
    assert set(listed(client, "status=accepted")) == {mine.reference, theirs.reference}
    assert set(listed(client, "status=nonsense&urgency=x&page=abc")) == set(listed(client))


def test_the_list_comes_in_pages(
    client: FlaskClient, db: Session, make_user: UserFactory, clock: FrozenClock
) -> None:
    operator = make_user(provinces=("BS",))
    for n in range(PAGE_SIZE + 3):
        new_case(db, now=clock.now() + timedelta(seconds=n), by=operator, province="BS")
    signed_in(client, operator)
    first = listed(client)
    second = listed(client, "page=2")
    assert (len(first), len(second)) == (PAGE_SIZE, 3)
    assert not set(first) & set(second)
    assert listed(client, "page=99") == second  # past the end: the last page
    html = client.get("/cases").get_data(as_text=True)
    assert f"{PAGE_SIZE + 3} casi" in html
    assert "Pagina 1 di 2" in html


def test_amber_once_the_first_step_passed_red_when_every_step_is_used(
    client: FlaskClient, db: Session, chain: Chain, phone: Phone, clock: FrozenClock
) -> None:
    case = new_case(db, now=clock.now(), by=chain.coordinator, province="BS", urgency="emergency")
    signed_in(client, chain.primary)
    html = client.get("/cases").get_data(as_text=True)
    assert "case-row amber" not in html
    assert "case-row red" not in html
    phone.tick(minutes=3)
    assert "case-row amber" in client.get("/cases").get_data(as_text=True)
    for minutes in (3, 5, 5, 5, 5):
        phone.tick(minutes=minutes)
    db.expire_all()
    dispatch = db.scalars(select(Dispatch).where(Dispatch.case_id == case.id)).one()
    assert dispatch.state == DispatchState.EXHAUSTED
    html = client.get("/cases").get_data(as_text=True)
    assert "case-row red" in html
    assert "case-row amber" not in html


def test_notes_are_refused_when_empty_too_long_or_not_text(
    client: FlaskClient, db: Session, make_user: UserFactory, clock: FrozenClock
) -> None:
    operator = make_user(provinces=("BS",))
    case = new_case(db, now=clock.now(), by=operator, province="BS")
    token = signed_in(client, operator)
    for text, status, message in (
        ("   ", 200, "La nota è vuota"),
        ("x" * 4001, 200, "La nota è troppo lunga"),
        # Control characters are refused before any view, for every form (core.errors).
        ("ciao\x00", 400, "Il modulo contiene caratteri di controllo"),
        ("ciao\x1b[31m", 400, "Il modulo contiene caratteri di controllo"),
    ):
        answer = client.post(
            f"/cases/{case.reference}/note",
            data={"csrf_token": token, "note": text},
            follow_redirects=True,
        )
        assert answer.status_code == status
        assert message in answer.get_data(as_text=True)
    kinds = set(db.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == case.id)))
    assert "note" not in kinds
    client.post(
        f"/cases/{case.reference}/note", data={"csrf_token": token, "note": "Riga 1\r\nRiga 2"}
    )
    note = db.scalars(select(CaseEvent).where(CaseEvent.kind == "note")).one()
    assert note.note == "Riga 1\nRiga 2"


def test_status_changes_follow_the_lifecycle_and_only_coordinators_reopen(
    app: object, client: FlaskClient, db: Session, make_user: UserFactory, clock: FrozenClock
) -> None:
    operator = make_user(provinces=("BS",))
    coordinator = make_user(roles=("coordinator",), provinces=())
    case = new_case(db, now=clock.now(), by=operator, province="BS")
    token = signed_in(client, operator)

    def post(path: str, **data: str) -> str:
        answer = client.post(
            f"/cases/{case.reference}/{path}",
            data={"csrf_token": token, **data},
            follow_redirects=True,
        )
        assert answer.status_code == 200
        return answer.get_data(as_text=True)

    def status() -> str:
        db.expire_all()
        return db.get(Case, case.id).status  # type: ignore[union-attr]

    assert "non può passare a quello stato" in post("status", to="in_contact")  # not accepted
    assert "non può passare" in post("close", outcome="placed")
    accept(db, case, operator, now=clock.now())
    assert "non può passare" in post("status", to="closed")
    assert "non può passare" in post("status", to="bogus")
    assert "non può passare" in post("close", outcome="placed")  # needs contact first
    post("status", to="in_contact")
    assert status() == "in_contact"
    post("close", outcome="referred")
    assert status() == "closed"
    assert (
        client.post(f"/cases/{case.reference}/reopen", data={"csrf_token": token}).status_code
        == 403
    )
    other = client.application.test_client()
    other_token = signed_in(other, coordinator)
    other.post(f"/cases/{case.reference}/reopen", data={"csrf_token": other_token})
    assert status() == "in_contact"
    changes = db.scalars(
        select(AuditEntry).where(
            AuditEntry.object_id == str(case.id), AuditEntry.action == "update"
        )
    ).all()
    assert [entry.detail.get("to") for entry in changes if "status" in entry.fields] == [
        "accepted",
        "in_contact",
        "referred",
        "closed",
        "in_contact",
    ]


def test_manual_entry_reports_every_field_problem_and_stores_nothing(
    client: FlaskClient, db: Session, make_user: UserFactory
) -> None:
    operator = make_user(provinces=("BS",))
    token = signed_in(client, operator)
    answer = client.post(
        "/cases/new",
        data={
            "csrf_token": token,
            "province": "Atlantide",
            "callback_phone": "abc",
            "nationality": "XYZ",
            "languages": "it, 123",
            "urgency": "subito",
            "exploitation": ["sexual", "boh"],
        },
    )
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    for message in (
        "Non è una provincia italiana",
        "Non è un numero di telefono",
        "codice di paese di due lettere",
        "Codici di lingua separati da virgole",
        "Scegli un&#39;urgenza",
        "Scegli tra i tipi di sfruttamento",
    ):
        assert message in html, message
    assert 'value="Atlantide"' in html  # what was typed stays
    assert db.scalars(select(Case)).all() == []


def test_manual_entry_opens_the_case_as_it_is_when_asked_with_its_warnings_on_the_timeline(
    client: FlaskClient, db: Session, make_user: UserFactory
) -> None:
    """A typo never holds up a case: the person entering it may open it as it is, and the case
    goes to the coordinators like a hand-off with the same problems."""
    operator = make_user(provinces=("BS",))
    token = signed_in(client, operator)
    data = {"csrf_token": token, "province": "Atlantide", "urgency": "subito", "as_it_is": "1"}
    answer = client.post("/cases/new", data=data)
    assert answer.status_code == 302
    case = db.scalars(select(Case)).one()
    assert (case.province, case.province_source, case.urgency) == (None, "unresolved", "emergency")
    warning = db.scalars(
        select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.kind == "warning")
    ).one()
    assert warning.data
    assert "Atlantide" not in str(warning.data)


def test_manual_entry_without_a_province_goes_to_the_coordinators(
    client: FlaskClient, db: Session, chain: Chain, phone: Phone, make_user: UserFactory
) -> None:
    street = make_user(provinces=("BS",))
    token = signed_in(client, street)
    answer = client.post("/cases/new", data={"csrf_token": token, "urgency": "urgent"})
    assert answer.status_code == 302
    # The operator may not see an unresolved case they did not take: back to the list.
    assert answer.headers["Location"].endswith("/cases")
    answer.close()
    case = db.scalars(select(Case)).one()
    assert (case.reference, case.province_source, case.channel) == (
        "XX-2026-0001",
        "unresolved",
        "manual",
    )
    assert phone.sms_to(chain.coordinator)[0].startswith("ALI XX-2026-0001 URGENTE")
    created = db.scalars(select(AuditEntry).where(AuditEntry.action == "create")).one()
    assert created.actor_id == street.id


def test_every_view_of_the_list_and_of_a_case_is_audited_without_values(
    client: FlaskClient, db: Session, make_user: UserFactory, clock: FrozenClock
) -> None:
    operator = make_user(provinces=("BS",))
    case = new_case(db, now=clock.now(), by=operator, province="BS", summary="Nome Cognome")
    signed_in(client, operator)
    client.get(f"/cases/{case.reference}")
    reads = db.scalars(select(AuditEntry).where(AuditEntry.action == "read")).all()
    kinds = [(entry.object_type, entry.actor_id) for entry in reads]
    assert ("case_list", operator.id) in kinds
    assert ("case", operator.id) in kinds
    listed_read = next(entry for entry in reads if entry.object_type == "case_list")
    assert listed_read.detail == {"case_ids": [case.id]}
    assert all("Nome" not in str(entry.detail) for entry in reads)


def test_the_workspace_speaks_english_to_those_who_chose_it(
    client: FlaskClient, db: Session, make_user: UserFactory, clock: FrozenClock
) -> None:
    operator = make_user(provinces=("BS",), locale="en")
    case = new_case(db, now=clock.now(), by=operator, province="BS", callback_phone="+393331234567")
    accept(db, case, operator, now=clock.now())
    signed_in(client, operator)
    listing = client.get("/cases").get_data(as_text=True)
    assert "1 case" in listing
    assert "Not accepted yet" in listing
    page = client.get(f"/cases/{case.reference}").get_data(as_text=True)
    for text in ("Work on the case", "Close with the outcome", "Add a note", "Contact"):
        assert text in page
    assert "not known whether it is safe to call or text back" in page
    assert "New case" in client.get("/cases/new").get_data(as_text=True)
