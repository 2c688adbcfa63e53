"""The partner registry: the coordinators' /partners page (through the real forms, CSRF
included), `ali partners import` (all lines or none, errors by line number), and a partner
added in the page recognised on its very next text."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from core.clock import FrozenClock
from core.models import AuditEntry
from intake.models import Partner
from intake.partners import partner_for_phone
from tests.alerting import Chain, Phone, reply_text
from tests.conftest import FROM_NUMBER, PUBLIC_URL, UserFactory, csrf_token, login
from tests.intake.test_partner_line import Line, says


def partners(db: Session) -> list[Partner]:
    db.expire_all()
    return list(db.scalars(select(Partner).order_by(Partner.id)))


def post_form(
    client: FlaskClient, path: str, data: dict[str, str], page: str = "/partners"
) -> TestResponse:
    token = csrf_token(client.get(page).get_data(as_text=True))
    return client.post(path, data={**data, "csrf_token": token})


QUESTURA = {
    "name": "Questura di Brescia",
    "kind": "law_enforcement",
    "province": "BS",
    "phones": "030 5550101\n+39 030 5550102",
}


@pytest.fixture
def coordinator(client: FlaskClient, make_user: UserFactory) -> FlaskClient:
    user = make_user(roles=("coordinator",), provinces=())
    login(client, user.email)
    return client


def test_a_coordinator_adds_edits_and_deactivates_a_partner(
    coordinator: FlaskClient, db: Session
) -> None:
    page = coordinator.get("/partners").get_data(as_text=True)
    assert "Ancora nessun partner" in page
    response = post_form(coordinator, "/partners", QUESTURA)
    assert response.status_code == 302
    [made] = partners(db)
    assert (made.name, made.kind, made.province, made.active) == (
        "Questura di Brescia",
        "law_enforcement",
        "BS",
        True,
    )
    assert [p.phone for p in made.phones] == ["+390305550101", "+390305550102"]
    listed = coordinator.get("/partners").get_data(as_text=True)
    assert "Questura di Brescia aggiunto." in listed
    assert "+39 030 555 0101" in listed or "+39 030 5550101" in listed

    edited = {**QUESTURA, "name": "Questura di Brescia - Squadra Mobile", "phones": "0305550103"}
    response = post_form(coordinator, f"/partners/{made.id}", edited, page=f"/partners/{made.id}")
    assert response.status_code == 302
    [made] = partners(db)
    assert made.name == "Questura di Brescia - Squadra Mobile"
    assert [p.phone for p in made.phones] == ["+390305550103"]
    assert partner_for_phone(db, "+390305550101") is None

    response = post_form(coordinator, f"/partners/{made.id}/active", {"active": "0"})
    assert response.status_code == 302
    assert partners(db)[0].active is False
    assert partner_for_phone(db, "+390305550103") is None
    post_form(coordinator, f"/partners/{made.id}/active", {"active": "1"})
    assert partner_for_phone(db, "+390305550103") is not None

    audited = db.scalars(
        select(AuditEntry.action).where(AuditEntry.object_type == "partner").order_by(AuditEntry.id)
    ).all()
    assert audited == ["create", "update", "update", "update"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"phones": "12"}, "Uno dei numeri non è un numero di telefono valido"),
        ({"name": "  "}, "Inserisci il nome dell&#39;ente."),
        ({"province": "MI"}, "Scegli una provincia dall&#39;elenco."),
        ({"kind": "presumed_victim"}, "Scegli un tipo."),
    ],
)
def test_bad_input_is_a_form_message_and_stores_nothing(
    coordinator: FlaskClient, db: Session, change: dict[str, str], message: str
) -> None:
    response = post_form(coordinator, "/partners", QUESTURA | change)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert partners(db) == []


def test_a_number_belongs_to_one_partner_and_never_to_an_operator(
    coordinator: FlaskClient, db: Session, make_user: UserFactory
) -> None:
    post_form(coordinator, "/partners", QUESTURA)
    response = post_form(
        coordinator, "/partners", QUESTURA | {"name": "Carabinieri", "phones": "0305550102"}
    )
    assert "Uno dei numeri appartiene già a un altro partner." in response.get_data(as_text=True)
    operator = make_user()
    response = post_form(
        coordinator, "/partners", QUESTURA | {"name": "Carabinieri", "phones": operator.phone or ""}
    )
    assert "Uno dei numeri è di un operatore" in response.get_data(as_text=True)
    response = post_form(coordinator, "/partners", QUESTURA | {"phones": ""})
    assert "Esiste già un partner con questo nome." in response.get_data(as_text=True)
    assert len(partners(db)) == 1


def test_only_coordinators_and_admins_manage_partners(
    client: FlaskClient, make_user: UserFactory, db: Session
) -> None:
    assert client.get("/partners").status_code == 302  # to the login page
    operator = make_user(roles=("operator", "rota_manager"))
    login(client, operator.email)
    assert client.get("/partners").status_code == 403
    home = client.get("/").get_data(as_text=True)
    token = csrf_token(home)
    assert client.post("/partners", data={**QUESTURA, "csrf_token": token}).status_code == 403
    assert partners(db) == []
    admin = make_user(roles=("admin",), provinces=())
    client.post("/logout", data={"csrf_token": token})
    login(client, admin.email)
    assert client.get("/partners").status_code == 200


def test_a_post_without_the_csrf_token_is_refused(coordinator: FlaskClient, db: Session) -> None:
    assert coordinator.post("/partners", data=QUESTURA).status_code == 400
    assert partners(db) == []


def test_the_nav_links_partners_for_coordinators_only(
    client: FlaskClient, make_user: UserFactory
) -> None:
    operator = make_user()
    login(client, operator.email)
    assert 'href="/partners"' not in client.get("/").get_data(as_text=True)
    coordinator = make_user(roles=("coordinator",), provinces=())
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/").get_data(as_text=True))})
    login(client, coordinator.email)
    assert 'href="/partners"' in client.get("/").get_data(as_text=True)


def test_a_partner_added_in_the_page_is_recognised_on_its_next_text(
    coordinator: FlaskClient, chain: Chain, phone: Phone, db: Session
) -> None:
    post_form(coordinator, "/partners", QUESTURA)
    answer = phone.hooks.inbound_sms(
        f"{PUBLIC_URL}/twilio/sms",
        from_="+390305550102",
        to=FROM_NUMBER,
        body="Ragazza in questura",
    )
    assert reply_text(answer).startswith("Segnalazione ricevuta, rif. BS-2026-0001.")
    assert len(phone.sms_to(chain.primary)) == 1


def test_a_partner_added_in_the_page_skips_the_menu_on_its_next_call(
    coordinator: FlaskClient, chain: Chain, phone: Phone
) -> None:
    post_form(coordinator, "/partners", QUESTURA)
    greeting = Line(phone.hooks, "+390305550102").call()
    gather = greeting.find("Gather")
    assert gather is not None
    assert gather.get("numDigits") == "1"  # only 9, for English: no province menu
    spoken = " ".join(text for text, _voice in says(gather))
    assert "provincia di Brescia" in spoken
    assert "prema" not in spoken  # the menu says "Per Bergamo prema 1."


# --- ali partners import ---------------------------------------------------------------------

GOOD_CSV = """name,kind,province,phones
Questura di Brescia,law_enforcement,BS,+390305550101;030 5550102
Servizi sociali Bergamo,social_services,bg,
CAS Cremona,RECEPTION_CENTRE,,+390372555010
"""


def test_import_creates_then_updates_partners(
    runner: FlaskCliRunner, tmp_path: Path, db: Session
) -> None:
    file = tmp_path / "partners.csv"
    file.write_text(GOOD_CSV)
    result = runner.invoke(args=["partners", "import", str(file)])
    assert result.exit_code == 0, result.output
    assert "partners: 3 created, 0 updated, 0 already up to date" in result.output
    found = {p.name: p for p in partners(db)}
    assert [p.phone for p in found["Questura di Brescia"].phones] == [
        "+390305550101",
        "+390305550102",
    ]
    assert (found["Servizi sociali Bergamo"].province, found["CAS Cremona"].province) == (
        "BG",
        None,
    )
    assert found["CAS Cremona"].kind == "reception_centre"

    file.write_text(GOOD_CSV.replace("BS,+390305550101;", "BS,"))
    result = runner.invoke(args=["partners", "import", str(file)])
    assert result.exit_code == 0, result.output
    assert "0 created, 1 updated, 2 already up to date" in result.output
    assert partner_for_phone(db, "+390305550101") is None


def test_import_with_bad_lines_imports_nothing_and_names_each_line(
    runner: FlaskCliRunner, tmp_path: Path, db: Session, clock: FrozenClock
) -> None:
    file = tmp_path / "partners.csv"
    file.write_text(
        "name;kind;province;phones\n"
        "Questura di Brescia;law_enforcement;BS;+390305550101\n"
        "Vittima;presumed_victim;BS;\n"
        "\n"
        "Caritas;ngo;MI;\n"
        "CAS Lodi;reception_centre;LO;12\n"
        "Questura di Brescia;law_enforcement;BS;\n"
        "Ospedale;health_services;PV;+390305550101\n"
    )
    result = runner.invoke(args=["partners", "import", str(file)])
    assert result.exit_code == 1
    errors = result.output
    assert "line 3: kind 'presumed_victim' is not one of law_enforcement" in errors
    assert "line 5: MI is not a province served by this project" in errors
    assert "line 6: '12' is not a valid phone number" in errors
    assert "line 7: Questura di Brescia is already on line 2" in errors
    assert "line 8: the number ending 101 is already on line 2" in errors
    assert "nothing imported: 5 problem(s)" in errors
    assert partners(db) == []


def test_import_refuses_a_number_of_another_partner_in_the_registry(
    runner: FlaskCliRunner, tmp_path: Path, db: Session
) -> None:
    file = tmp_path / "partners.csv"
    file.write_text(GOOD_CSV)
    runner.invoke(args=["partners", "import", str(file)])
    file.write_text("name,kind,province,phones\nNuovo,ngo,BS,+390372555010\nAltro,ngo,BS,\n")
    result = runner.invoke(args=["partners", "import", str(file)])
    assert result.exit_code == 1
    assert "line 2: the number ending 010 belongs to another partner" in result.output
    assert len(partners(db)) == 3


def test_editing_refuses_bad_input_and_keeps_the_partner(
    coordinator: FlaskClient, db: Session
) -> None:
    post_form(coordinator, "/partners", QUESTURA)
    post_form(coordinator, "/partners", QUESTURA | {"name": "Carabinieri", "phones": ""})
    first = partners(db)[0]
    response = post_form(
        coordinator,
        f"/partners/{first.id}",
        QUESTURA | {"name": "carabinieri"},
        page=f"/partners/{first.id}",
    )
    assert response.status_code == 200
    assert "Esiste già un partner con questo nome." in response.get_data(as_text=True)
    assert partners(db)[0].name == "Questura di Brescia"
    name_with_nul = QUESTURA | {"name": "Questura\x00"}
    response = post_form(coordinator, f"/partners/{first.id}", name_with_nul)
    assert response.status_code == 400  # refused before any view, for every form (core.errors)
    assert "Il modulo contiene caratteri di controllo" in response.get_data(as_text=True)
    assert coordinator.get("/partners/999").status_code == 404
