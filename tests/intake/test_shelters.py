"""`/shelters`, the placement routes of the case page, `ali shelters import` and
`GET /api/v1/beds`: who may do what (a table), addresses for coordinators only and each view
audited, counts without names in the API."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from core.models import AuditEntry, User
from intake.models import Placement, PlacementEntry, Shelter
from intake.placements import confirm_placement, request_placement
from tests.conftest import UserFactory, csrf_token, login
from tests.intake.cases import accept, new_case
from tests.intake.shelters import new_shelter
from tests.intake.signed import Sender

ROLES = ("operator", "rota_manager", "coordinator", "admin")
ADDRESS = "Via Segreta 1, Brescia"


def shelter_code(route: str, role: str) -> int:
    """The rule as a table (design §6, issue 12): everyone sees free beds; coordinators manage
    shelters and read addresses; an admin without the coordinator role does not read them."""
    if route == "GET /shelters":
        return 200
    if role == "coordinator":
        return 302 if route.startswith("POST") else 200
    return 403


def placement_code(visible: bool) -> int:
    """Placement routes of a case answer as the case page does: 404 for a case one may not
    see (the same answer as for no case), the case page again (302) otherwise."""
    return 302 if visible else 404


def _client(app: Flask, user: User) -> tuple[FlaskClient, str]:
    client = app.test_client()
    login(client, user.email)
    return client, csrf_token(client.get("/cases").get_data(as_text=True))


def test_every_shelter_route_answers_only_those_who_may_use_it(
    app: Flask, db: Session, make_user: UserFactory, clock: FrozenClock
) -> None:
    shelter = new_shelter(db, now=clock.now())
    unexpected: list[str] = []
    for role in ROLES:
        user = make_user(roles=(role,), provinces=("BS",), name=f"Test {role}")
        client, token = _client(app, user)
        form = {
            "csrf_token": token,
            "code": f"X-{role}",
            "name": "Casa Nuova",
            "province": "BS",
            "kind": "residential",
            "target_groups": ["women"],
            "capacity": "4",
            "address": "Via Nuova 2",
        }
        answers = {
            "GET /shelters": client.get("/shelters"),
            "POST /shelters": client.post("/shelters", data=form),
            "GET /shelters/<id>": client.get(f"/shelters/{shelter.id}"),
            "POST /shelters/<id>": client.post(
                f"/shelters/{shelter.id}", data=form | {"code": shelter.code}
            ),
            "POST /shelters/<id>/open": client.post(
                f"/shelters/{shelter.id}/open", data={"csrf_token": token, "open": "1"}
            ),
        }
        for route, response in answers.items():
            wanted = shelter_code(route, role)
            if response.status_code != wanted:
                unexpected.append(f"{route} as {role}: {response.status_code} not {wanted}")
            if role != "coordinator" and ADDRESS in response.get_data(as_text=True):
                unexpected.append(f"{route} as {role}: the address is shown")
    assert unexpected == [], "\n".join(unexpected)


PLACEMENT_ROUTES = ("confirm", "check-in", "planned-end", "cancel", "no-show", "correct")


def test_every_placement_route_answers_only_those_who_may_see_the_case(
    app: Flask, db: Session, make_user: UserFactory, clock: FrozenClock
) -> None:
    now = clock.now()
    shelter = new_shelter(db, now=now, capacity=50)
    other = new_shelter(db, now=now, code="BG-PA-1", province="BG", capacity=50)
    entering = make_user(roles=("coordinator",), provinces=(), name="Inserisce")
    unexpected: list[str] = []
    for role in ROLES:
        user = make_user(roles=(role,), provinces=("BS",), name=f"Test {role}")
        client, token = _client(app, user)
        # own province adult (an operator of BS sees it), other province (nobody but
        # coordinators), a minor of the own province assigned to the user (they see it).
        cells = {
            "own": (new_case(db, now=now, by=entering, province="BS"), shelter),
            "other": (new_case(db, now=now, by=entering, province="BG"), other),
            "assigned minor": (
                new_case(db, now=now, by=entering, province="BS", person={"minor": "yes"}),
                shelter,
            ),
        }
        accept(db, cells["assigned minor"][0], user, now=now)
        for where, (case, place) in cells.items():
            visible = (
                role == "coordinator"
                or where == "assigned minor"
                or (role == "operator" and where == "own")
            )
            ref = case.reference
            response = client.post(
                f"/cases/{ref}/placements",
                data={
                    "csrf_token": token,
                    "shelter": place.id,
                    "beds": "1",
                    "override_reason": "test",
                },
            )
            if response.status_code != placement_code(visible):
                unexpected.append(f"request {where} as {role}: {response.status_code}")
            # A placement made by the coordinator, so the routes have one to act on.
            placement = request_placement(
                db, case, place, beds=1, actor=entering, now=now, override_reason="test"
            )
            db.commit()
            entry = db.scalars(
                select(PlacementEntry.id).where(PlacementEntry.placement_id == placement.id)
            ).first()
            for action in PLACEMENT_ROUTES:
                data = {
                    "csrf_token": token,
                    "planned_end": "2026-12-31",
                    "entry": str(entry),
                    "reason": "test",
                    "beds": "1",
                }
                code = client.post(
                    f"/cases/{ref}/placements/{placement.id}/{action}", data=data
                ).status_code
                if code != placement_code(visible):
                    unexpected.append(f"{action} {where} as {role}: {code}")
            code = client.post(
                f"/cases/{ref}/placements/{placement.id}/check-out",
                data={"csrf_token": token, "exit_reason": "other"},
            ).status_code
            if code != placement_code(visible):
                unexpected.append(f"check-out {where} as {role}: {code}")
            page = client.get(f"/cases/{ref}")
            if page.status_code != (200 if visible else 404):
                unexpected.append(f"page {where} as {role}: {page.status_code}")
    assert unexpected == [], "\n".join(unexpected)


def test_a_placement_of_another_case_is_not_found_through_this_one(
    app: Flask, db: Session, make_user: UserFactory, clock: FrozenClock
) -> None:
    now = clock.now()
    coordinator = make_user(roles=("coordinator",), provinces=())
    shelter = new_shelter(db, now=now)
    mine = new_case(db, now=now, by=coordinator, province="BS")
    theirs = new_case(db, now=now, by=coordinator, province="BS")
    placement = request_placement(db, theirs, shelter, beds=1, actor=coordinator, now=now)
    db.commit()
    client, token = _client(app, coordinator)
    url = f"/cases/{mine.reference}/placements/{placement.id}/confirm"
    assert client.post(url, data={"csrf_token": token}).status_code == 404


def test_each_view_of_an_address_is_audited_and_the_list_never_shows_it(
    app: Flask, db: Session, make_user: UserFactory, clock: FrozenClock
) -> None:
    shelter = new_shelter(db, now=clock.now())
    coordinator = make_user(roles=("coordinator",), provinces=())
    client, _token = _client(app, coordinator)
    assert ADDRESS not in client.get("/shelters").get_data(as_text=True)
    for _ in range(2):
        assert ADDRESS in client.get(f"/shelters/{shelter.id}").get_data(as_text=True)
    reads = db.scalars(
        select(AuditEntry).where(AuditEntry.object_type == "shelter", AuditEntry.action == "read")
    ).all()
    assert len(reads) == 2
    assert {(r.object_id, r.actor_id, tuple(r.fields)) for r in reads} == {
        (str(shelter.id), coordinator.id, ("address",))
    }
    stored = db.scalar(select(Shelter.address.expression).where(Shelter.id == shelter.id))
    raw = db.connection().exec_driver_sql("SELECT address FROM shelters").scalar()
    assert stored == ADDRESS
    assert ADDRESS not in str(raw)  # encrypted at rest


def test_a_full_shelter_refuses_a_confirmation_in_the_page_until_an_override_reason(
    app: Flask, db: Session, make_user: UserFactory, clock: FrozenClock
) -> None:
    now = clock.now()
    operator = make_user(provinces=("BS",))
    shelter = new_shelter(db, now=now, capacity=1)
    first = new_case(db, now=now, by=operator, province="BS")
    confirm_placement(
        db,
        request_placement(db, first, shelter, beds=1, actor=operator, now=now),
        actor=operator,
        now=now,
    )
    case = new_case(db, now=now, by=operator, province="BS")
    placement = request_placement(db, case, shelter, beds=1, actor=operator, now=now)
    db.commit()
    client, token = _client(app, operator)
    url = f"/cases/{case.reference}/placements/{placement.id}/confirm"
    refused = client.post(url, data={"csrf_token": token}, follow_redirects=True)
    assert "per inserire comunque" in refused.get_data(as_text=True)
    done = client.post(
        url, data={"csrf_token": token, "override_reason": "Pericolo"}, follow_redirects=True
    )
    assert "Inserimento confermato" in done.get_data(as_text=True)
    assert db.scalars(select(Placement)).all()


GOOD_CSV = """code,name,province,kind,target_groups,capacity,address
BS-PA-1,Casa Aurora,BS,pronta_accoglienza,women;mothers_with_children,6,"Via Segreta 1, Brescia"
BG-RES-1,Casa Betania,Bergamo,residential,women,10,Via Altra 3
"""


def test_import_creates_then_updates_shelters(
    runner: FlaskCliRunner, tmp_path: Path, db: Session
) -> None:
    file = tmp_path / "shelters.csv"
    file.write_text(GOOD_CSV)
    result = runner.invoke(args=["shelters", "import", str(file)])
    assert result.exit_code == 0, result.output
    assert "shelters: 2 created, 0 updated, 0 already up to date" in result.output
    found = {s.code: s for s in db.scalars(select(Shelter))}
    assert found["BG-RES-1"].province == "BG"
    assert found["BS-PA-1"].target_groups == ["women", "mothers_with_children"]
    assert found["BS-PA-1"].address == "Via Segreta 1, Brescia"
    file.write_text(GOOD_CSV.replace(",6,", ",8,"))
    result = runner.invoke(args=["shelters", "import", str(file)])
    assert "0 created, 1 updated, 1 already up to date" in result.output


def test_import_with_bad_lines_imports_nothing_and_names_each_line(
    runner: FlaskCliRunner, tmp_path: Path, db: Session
) -> None:
    file = tmp_path / "shelters.csv"
    file.write_text(
        GOOD_CSV
        + "BS-X,Casa X,BS,hotel,women,3,\n"
        + "BS-Y,Casa Y,BS,residential,children,3,\n"
        + "BS-Z,Casa Z,BS,residential,women,-1,\n"
        + "BS-PA-1,Doppia,BS,residential,women,3,\n"
    )
    result = runner.invoke(args=["shelters", "import", str(file)])
    assert result.exit_code == 1
    for line, words in ((4, "kind 'hotel'"), (5, "'children'"), (6, "capacity"), (7, "line 2")):
        assert f"line {line}: " in result.output
        assert words in result.output
    assert db.scalars(select(Shelter)).all() == []


@pytest.fixture
def beds_sender(sender: Sender, db: Session, clock: FrozenClock) -> Sender:
    new_shelter(db, now=clock.now(), capacity=5)
    new_shelter(db, now=clock.now(), code="BS-R", name="Casa R", kind="residential", capacity=3)
    return sender


def test_free_beds_api_gives_counts_per_kind_without_names(
    beds_sender: Sender, db: Session, make_user: UserFactory, clock: FrozenClock
) -> None:
    operator = make_user(provinces=("BS",))
    case = new_case(db, now=clock.now(), by=operator, province="BS")
    shelter = db.scalars(select(Shelter).where(Shelter.code == "BS-PA-1")).one()
    placement = request_placement(db, case, shelter, beds=2, actor=operator, now=clock.now())
    confirm_placement(db, placement, actor=operator, now=clock.now())
    db.commit()
    response = beds_sender.get("/api/v1/beds?province=Brescia")
    assert response.status_code == 200
    body = response.get_json()
    assert body["free_beds"] == {"pronta_accoglienza": 3, "residential": 3, "semi_autonomy": 0}
    assert body["province"] == "BS"
    text = response.get_data(as_text=True)
    assert "Aurora" not in text
    assert "Segreta" not in text
    read = db.scalars(select(AuditEntry).where(AuditEntry.object_type == "beds")).one()
    assert read.object_id == "BS"


@pytest.mark.parametrize(
    ("query", "message"),
    [("", "is required"), ("?province=Atlantide", "not an Italian"), ("?province=RM", "served")],
)
def test_free_beds_api_refuses_a_missing_or_unserved_province(
    beds_sender: Sender, query: str, message: str
) -> None:
    response = beds_sender.get(f"/api/v1/beds{query}")
    assert response.status_code == 422
    assert message in response.get_json()["errors"][0]["message"]


def test_free_beds_api_must_be_signed(client: FlaskClient, beds_sender: Sender) -> None:
    assert client.get("/api/v1/beds?province=BS").status_code == 401
    assert (
        client.get("/api/v1/beds?province=BS", headers=beds_sender.headers(b"{}")).status_code
        == 401
    )


def test_the_beds_api_is_in_the_openapi_document(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["paths"]["/api/v1/beds"]["get"]["operationId"] == "getBeds"
    schema = document["components"]["schemas"]["FreeBeds"]
    assert set(schema["properties"]["free_beds"]["required"]) == {
        "pronta_accoglienza",
        "residential",
        "semi_autonomy",
    }


ODD_NUMBERS = ("²", "1²", "٣", " 1", "-1", "99999999999999999999", "")


@pytest.mark.parametrize("odd", ODD_NUMBERS)
def test_odd_digits_in_the_placement_forms_get_a_form_message(
    app: Flask, db: Session, make_user: UserFactory, clock: FrozenClock, odd: str
) -> None:
    now = clock.now()
    operator = make_user(provinces=("BS",))
    shelter = new_shelter(db, now=now)
    case = new_case(db, now=now, by=operator, province="BS")
    placement = request_placement(db, case, shelter, beds=1, actor=operator, now=now)
    db.commit()
    client, token = _client(app, operator)

    def post(url: str, **data: str) -> str:
        response = client.post(url, data={"csrf_token": token, **data}, follow_redirects=True)
        assert response.status_code == 200
        return response.get_data(as_text=True)

    base = f"/cases/{case.reference}/placements"
    assert "Scegli una struttura aperta" in post(base, shelter=odd, beds="1")
    if odd.strip() not in ("", "1"):  # empty: the default, one bed; spaces are trimmed
        assert "I posti letto devono essere" in post(base, shelter=str(shelter.id), beds=odd)
    corrected = post(f"{base}/{placement.id}/correct", entry=odd, beds="1", reason="x")
    assert "Questo inserimento non può cambiare così adesso" in corrected
    assert db.scalars(select(Placement)).all() == [placement]
