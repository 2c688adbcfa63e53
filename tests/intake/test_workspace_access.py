"""Who may open, list and work a case: every case route × role × own / other province ×
minor / not × assigned / paged / neither. Nothing answers 200 (or works) where it must not,
and the list holds exactly the cases its reader may open."""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import product

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from core.models import User
from routing.models import Case
from tests.alerting import on_shift
from tests.conftest import UserFactory, csrf_token, login
from tests.intake.cases import accept, new_case, page

ROLES = ("operator", "rota_manager", "coordinator", "admin")
PROVINCES = {"own": "BS", "other": "BG"}
MINORS = {"minor": "presumed", "adult": "no"}
RELATIONS = ("assigned", "paged", "neither")


@dataclass(frozen=True)
class Cell:
    role: str
    province: str  # own / other
    minor: str  # minor / adult
    relation: str  # assigned / paged / neither
    case: Case

    def __str__(self) -> str:
        return f"{self.role} {self.province} {self.minor} {self.relation} {self.case.reference}"


def may_see(role: str, province: str, minor: str, relation: str) -> bool:
    """The rule, written out as a table (design §6 and issue 11), not from the code."""
    if role == "coordinator" or relation == "assigned":
        return True
    if minor == "minor":
        return relation == "paged"
    return relation == "paged" or (role == "operator" and province == "own")


def wanted_code(route: str, *, visible: bool, relation: str) -> int:
    """404 for a case one may not see (the same answer as for no case at all)."""
    if not visible:
        return 404
    if route == "POST decline" and relation != "paged":
        return 403  # only an alert one received can be declined
    return 200 if route == "GET page" else 302  # the changes answer with the page again


def _listed(client: FlaskClient) -> tuple[set[str], int]:
    found: set[str] = set()
    number = 1
    total = -1
    while True:
        html = client.get(f"/cases?status=all&page={number}").get_data(as_text=True)
        found |= set(re.findall(r'class="case-ref" href="/cases/([A-Z]{2}-\d{4}-\d+)"', html))
        count = re.search(r'role="status">(\d+) cas', html)
        assert count is not None
        total = int(count.group(1))
        if f"page={number + 1}" not in html:
            return found, total
        number += 1


def test_every_case_route_answers_only_those_who_may_see_the_case(
    app: Flask, db: Session, make_user: UserFactory, clock: FrozenClock
) -> None:
    now = clock.now()
    users: dict[str, User] = {
        role: make_user(roles=(role,), provinces=("BS",), name=f"Test {role}") for role in ROLES
    }
    entering = make_user(roles=("coordinator",), provinces=(), name="Inserisce")
    # A primary on call in both provinces: the alerts stop there and never reach the
    # coordinator under test, whose only relation to a case is the one the table gives.
    for sigla in PROVINCES.values():
        on_shift(db, make_user(provinces=(sigla,)), at=now, province=sigla)
    cells: list[Cell] = []
    # One case per user and combination, so the relation holds for that user alone.
    for role, (where, sigla), (minor, value), relation in product(
        ROLES, PROVINCES.items(), MINORS.items(), RELATIONS
    ):
        case = new_case(db, now=now, by=entering, province=sigla, person={"minor": value})
        if relation == "assigned":
            accept(db, case, users[role], now=now)
        elif relation == "paged":
            page(db, case, users[role], now=now)
        cells.append(Cell(role, where, minor, relation, case))

    unexpected: list[str] = []
    for role, user in users.items():
        client = app.test_client()
        login(client, user.email)
        token = csrf_token(client.get("/cases").get_data(as_text=True))
        expected_refs: set[str] = set()
        for cell in cells:
            # Every user against every case: the relation is the case's to its own user.
            relation = cell.relation if cell.role == role else "neither"
            if cell.role != role and cell.relation == "assigned":
                relation = "assigned-to-another"
            visible = may_see(role, cell.province, cell.minor, relation)
            if visible:
                expected_refs.add(cell.case.reference)
            ref = cell.case.reference
            answers = {
                "GET page": client.get(f"/cases/{ref}").status_code,
                "POST note": client.post(
                    f"/cases/{ref}/note", data={"csrf_token": token, "note": "Visto."}
                ).status_code,
                "POST status": client.post(
                    f"/cases/{ref}/status", data={"csrf_token": token, "to": "in_contact"}
                ).status_code,
                "POST close": client.post(
                    f"/cases/{ref}/close", data={"csrf_token": token, "outcome": "closed"}
                ).status_code,
                "POST reopen": client.post(
                    f"/cases/{ref}/reopen", data={"csrf_token": token}
                ).status_code,
                "POST decline": client.post(
                    f"/cases/{ref}/decline", data={"csrf_token": token}
                ).status_code,
            }
            if not visible:
                # Accepting would make it theirs: only tried where it must be refused.
                answers["POST accept"] = client.post(
                    f"/cases/{ref}/accept", data={"csrf_token": token}
                ).status_code
            for route, code in answers.items():
                wanted = wanted_code(route, visible=visible, relation=relation)
                if code != wanted:
                    unexpected.append(f"{route} {cell} as {role} ({relation}): {code} not {wanted}")
        listed, total = _listed(client)
        if listed != expected_refs or total != len(expected_refs):
            unexpected.append(
                f"list as {role}: extra {sorted(listed - expected_refs)}, "
                f"missing {sorted(expected_refs - listed)}, count {total}"
            )
    assert unexpected == [], "\n".join(unexpected)


def test_a_minor_case_is_hidden_from_those_paged_once_someone_accepted_it(
    client: FlaskClient, db: Session, make_user: UserFactory, clock: FrozenClock
) -> None:
    now = clock.now()
    coordinator = make_user(roles=("coordinator",), provinces=())
    paged = make_user(provinces=("BG",))
    colleague = make_user(provinces=("BS",))
    case = new_case(db, now=now, by=coordinator, province="BS", person={"minor": "yes"})
    page(db, case, paged, now=now)
    login(client, paged.email)
    assert client.get(f"/cases/{case.reference}").status_code == 200
    accept(db, case, coordinator, now=now)
    assert client.get(f"/cases/{case.reference}").status_code == 404
    assert case.reference not in client.get("/cases?status=all").get_data(as_text=True)
    other = FlaskClient(client.application, client.response_wrapper, use_cookies=True)
    login(other, colleague.email)
    assert other.get(f"/cases/{case.reference}").status_code == 404


def test_manual_entry_is_for_operators_and_coordinators(app: Flask, make_user: UserFactory) -> None:
    for roles, code in (
        (("operator",), 200),
        (("coordinator",), 200),
        (("rota_manager",), 403),
        (("admin",), 403),
    ):
        user = make_user(roles=roles)
        client = app.test_client()
        login(client, user.email)
        assert client.get("/cases/new").status_code == code, roles
        token = csrf_token(client.get("/").get_data(as_text=True))
        posted = client.post("/cases/new", data={"csrf_token": token, "province": "BS"})
        assert posted.status_code == (302 if code == 200 else 403), roles


def test_the_case_pages_need_a_login(client: FlaskClient) -> None:
    for path in ("/cases", "/cases/new", "/cases/BS-2026-0001"):
        response = client.get(path)
        assert response.status_code == 302
        assert "/login" in response.headers["Location"]
