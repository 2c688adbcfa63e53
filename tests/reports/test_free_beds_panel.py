"""The dashboard's free-beds panel through HTTP: counts per province and kind in the user's
scope, no shelter names or addresses, and one bed fewer once a placement is confirmed."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from intake.placements import confirm_placement, request_placement
from tests.conftest import UserFactory, login
from tests.intake.cases import new_case
from tests.intake.shelters import new_shelter


def free_beds(page: str, province: str) -> dict[str, int]:
    row = re.search(rf'<tr id="beds-{province}">(.*?)</tr>', page, re.S)
    assert row is not None, province
    cells = re.findall(r'data-kind="(\w+)">(\d+)</td>', row[1])
    return {kind: int(count) for kind, count in cells}


def test_the_free_beds_panel_counts_beds_in_scope_and_drops_when_a_placement_is_confirmed(
    app: Flask, client: FlaskClient, db: Session, make_user: UserFactory, clock: FrozenClock
) -> None:
    now = clock.now()
    aurora = new_shelter(db, now=now, capacity=3)
    new_shelter(db, now=now, code="BS-RES-1", name="Casa Betulla", kind="residential", capacity=4)
    new_shelter(db, now=now, code="BG-PA-1", name="Casa Cedro", province="BG", capacity=2)
    operator = make_user(provinces=("BS",))
    coordinator = make_user(roles=("coordinator",))
    login(client, operator.email)
    page = client.get("/").get_data(as_text=True)
    assert free_beds(page, "BS") == {"pronta_accoglienza": 3, "residential": 4, "semi_autonomy": 0}
    assert 'id="beds-BG"' not in page  # not the operator's province
    for secret in ("Casa Aurora", "Casa Betulla", "Via Segreta"):
        assert secret not in page

    case = new_case(db, now=now, by=operator, province="BS")
    placement = request_placement(db, case, aurora, beds=2, actor=operator, now=now)
    db.commit()
    fragment = client.get("/dashboard/panels").get_data(as_text=True)
    assert free_beds(fragment, "BS")["pronta_accoglienza"] == 3  # a request takes no bed
    confirm_placement(db, placement, actor=operator, now=now)
    db.commit()
    fragment = client.get("/dashboard/panels").get_data(as_text=True)
    assert free_beds(fragment, "BS")["pronta_accoglienza"] == 1

    other = app.test_client()
    login(other, coordinator.email)  # coordinators see every province
    page = other.get("/").get_data(as_text=True)
    assert free_beds(page, "BS")["pronta_accoglienza"] == 1
    assert free_beds(page, "BG") == {"pronta_accoglienza": 2, "residential": 0, "semi_autonomy": 0}
    assert "Via Segreta" not in page
