"""The dashboard and the reports page through HTTP: scope, the fragment it refreshes from,
the panel registry, the audited download."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from core.dashboard import Panel, register_panel
from core.models import AuditEntry
from intake.dashboard import LISTED, unaccepted_panel
from routing.models import DispatchState
from tests.alerting import on_shift
from tests.conftest import UserFactory, login
from tests.intake.cases import dispatch_of, new_case


def test_the_dashboard_shows_unaccepted_cases_on_call_and_the_week_scoped_by_province(
    client: FlaskClient, db: Session, make_user: UserFactory, clock: FrozenClock
) -> None:
    operator = make_user(name="Olga Operatrice", provinces=("BS",))
    later = make_user(name="Luca Dopo", provinces=("BS",))
    on_shift(db, operator, at=clock.now())
    on_shift(db, later, at=clock.now() + timedelta(hours=24))
    db.commit()
    mine = new_case(db, now=clock.now(), by=operator, province="BS")
    other = new_case(db, now=clock.now(), by=operator, province="BG")  # not their province
    login(client, operator.email)
    page = client.get("/").get_data(as_text=True)
    assert mine.reference in page
    assert other.reference not in page
    assert "Olga Operatrice" in page
    assert "Luca Dopo" in page
    assert 'id="cover-BS"' in page
    assert 'id="cover-BG"' not in page
    fragment = client.get("/dashboard/panels").get_data(as_text=True)
    assert mine.reference in fragment
    assert "<html" not in fragment
    entry = db.scalars(select(AuditEntry).where(AuditEntry.object_type == "dashboard")).first()
    assert entry is not None
    assert entry.detail["case_ids"] == [mine.id]


def test_a_registered_panel_shows_and_one_with_nothing_does_not(
    app: Flask, client: FlaskClient, make_user: UserFactory
) -> None:
    # A panel with nothing for this user; a template of the project stands in.
    register_panel(app, Panel("empty", "intake/_panel_week.html", lambda s, u, n: None, 35))
    user = make_user(provinces=("BS",))
    login(client, user.email)
    page = client.get("/").get_data(as_text=True)
    assert 'id="panel-empty"' not in page
    assert 'id="panel-free-beds"' in page


def test_reports_are_for_coordinators_and_the_download_is_audited(
    client: FlaskClient, db: Session, make_user: UserFactory, clock: FrozenClock
) -> None:
    operator = make_user(provinces=("BS",))
    coordinator = make_user(roles=("coordinator",), provinces=())
    new_case(db, now=clock.now(), by=operator, province="BS")
    login(client, operator.email)
    assert client.get("/reports").status_code == 403
    client.delete_cookie("ali_session")
    login(client, coordinator.email)
    month = f"{clock.now():%Y-%m}"
    page = client.get(f"/reports?month={month}").get_data(as_text=True)
    assert "<svg" in page
    assert "<title" in page
    assert "&lt;3" in page
    assert client.get("/reports?month=2026-13").status_code == 400
    csv_body = client.get(f"/reports/export?month={month}&format=csv")
    assert csv_body.get_data(as_text=True).startswith("month,province,measure,category,value\n")
    assert f"{month},BS,cases,total,<3" in csv_body.get_data(as_text=True)
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "export")).one()
    assert entry.actor_id == coordinator.id


def test_the_unaccepted_panel_counts_every_late_case_and_lists_the_unanswered_first(
    client: FlaskClient, db: Session, make_user: UserFactory, clock: FrozenClock
) -> None:
    coordinator = make_user(name="Carla Coordinatrice", roles=("coordinator",), provinces=())
    operator = make_user(name="Olga Operatrice", provinces=("BS",))
    opened = []
    for _n in range(30):  # more than a page of the case list
        opened.append(new_case(db, now=clock.now(), by=operator, province="BS"))
        clock.advance(timedelta(minutes=1))
    for case in opened:  # on time: the first step is still running
        dispatch_of(db, case).steps_fired = 1
    red, amber = opened[-2:], opened[-3]  # the newest: past the case list's first page
    for case in red:
        dispatch_of(db, case).state = DispatchState.EXHAUSTED
    dispatch_of(db, amber).state = DispatchState.OPEN
    dispatch_of(db, amber).steps_fired = 2
    db.commit()

    panel = unaccepted_panel(db, coordinator, clock.now())

    assert panel is not None
    assert (panel["total"], panel["red"], panel["amber"]) == (30, 2, 1)
    listed = [item.case.reference for item in panel["cases"]]
    assert listed[:3] == [red[0].reference, red[1].reference, amber.reference]
    assert len(listed) == LISTED
    login(client, coordinator.email)
    page = client.get("/").get_data(as_text=True)
    assert "2 senza risposta" in page or "2 unanswered" in page
    assert red[0].reference in page
