"""iCal feeds: created on the profile page, read by calendar apps, revoked for good."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from icalendar import Calendar
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from core.models import AuditEntry, User
from oncall import editing
from oncall.calendar import hash_token
from oncall.models import CalendarToken
from oncall.schedule import Tier
from tests.conftest import PUBLIC_URL, UserFactory, csrf_token, login

FEED_URL = re.compile(r'value="(https://ali\.example\.org/calendar/[a-z]+/[A-Za-z0-9_-]+\.ics)"')


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def rotation(
    db: Session,
    operators: list[User],
    *,
    start: date,
    period_days: int = 1,
    tier: Tier = Tier.PRIMARY,
    province: str = "BS",
) -> None:
    editing.create_rotation(
        db,
        actor="test",
        now=utc(2026, 1, 1),
        province=province,
        tier=tier,
        operator_ids=[u.id for u in operators],
        handover=time(8, 0),
        period_days=period_days,
        start_date=start,
    )
    db.commit()


def post(client: FlaskClient, path: str, **data: str) -> tuple[int, str]:
    token = csrf_token(client.get("/profile/").get_data(as_text=True))
    response = client.post(path, data={"csrf_token": token, **data})
    return response.status_code, response.get_data(as_text=True)


def new_feed(client: FlaskClient, path: str = "/profile/calendar", **data: str) -> str:
    status, html = post(client, path, **data)
    assert status == 200, html
    found = FEED_URL.search(html)
    assert found is not None, html
    return found.group(1)


def fetch(client: FlaskClient, url: str) -> Calendar:
    response = client.get(url.removeprefix(PUBLIC_URL))
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    return Calendar.from_ical(response.get_data())


def events(calendar: Calendar) -> list[tuple[datetime, datetime, str, str]]:
    return sorted(
        (
            event.decoded("dtstart"),
            event.decoded("dtend"),
            str(event.get("summary")),
            str(event.get("uid")),
        )
        for event in calendar.walk("VEVENT")
    )


def test_an_operator_feed_has_their_shifts_at_the_right_instants_across_the_change(
    client: FlaskClient,
    db: Session,
    clock: FrozenClock,
    make_user: UserFactory,
) -> None:
    anna = make_user(email="anna@ali.example", phone="+393331000001")
    bruno = make_user()
    clock.set(utc(2026, 10, 22, 12))
    rotation(db, [anna, bruno], start=date(2026, 10, 20))
    login(client, "anna@ali.example")
    url = new_feed(client)
    assert url.startswith(f"{PUBLIC_URL}/calendar/operator/")

    calendar = fetch(client, url)
    assert str(calendar.get("x-wr-calname")) == "Ali: i miei turni di reperibilità"
    found = events(calendar)
    # Every other day from 20 October (her first is within the past 30 days)...
    assert found[0][:3] == (
        utc(2026, 10, 20, 6),
        utc(2026, 10, 21, 6),
        "Reperibilità BS (principale)",
    )
    # ...the one across the change lasts 25 hours: 08:00 CEST to 08:00 CET...
    assert (utc(2026, 10, 24, 6), utc(2026, 10, 25, 7)) in [e[:2] for e in found]
    # ...and the next one is in winter time.
    assert (utc(2026, 10, 26, 7), utc(2026, 10, 27, 7)) in [e[:2] for e in found]
    assert all(end - start <= timedelta(hours=25) for start, end, _, _ in found)
    # Nothing beyond 180 days, nothing of Bruno's, no phone number anywhere.
    assert found[-1][0] < clock.now() + timedelta(days=180)
    body = client.get(url.removeprefix(PUBLIC_URL)).get_data(as_text=True)
    assert "+39" not in body
    assert all(f"-primary-{anna.id}-" in uid for _, _, _, uid in found)


def test_event_uids_are_stable_from_one_fetch_to_the_next(
    client: FlaskClient, db: Session, clock: FrozenClock, make_user: UserFactory
) -> None:
    anna = make_user(email="anna@ali.example")
    rotation(db, [anna, make_user()], start=date(2026, 11, 2), period_days=7)
    login(client, "anna@ali.example")
    url = new_feed(client)
    first = {e[3]: e[:2] for e in events(fetch(client, url))}
    clock.advance(timedelta(days=1))
    second = {e[3]: e[:2] for e in events(fetch(client, url))}
    assert len(first) == 15  # every other week from 2 November to 180 days ahead
    # The same shifts keep the same UIDs and times; only the window's far end moves.
    assert set(first) <= set(second)
    assert all(first[uid] == second[uid] for uid in first)


def test_a_province_feed_names_the_operators_and_nothing_more(
    client: FlaskClient, db: Session, clock: FrozenClock, make_user: UserFactory
) -> None:
    make_user(email="manager@ali.example", roles=("operator", "rota_manager"), name="Maria Rossi")
    anna = make_user(name="Anna Bianchi", phone="+393331000001")
    bruno = make_user(name="Bruno Verdi", phone="+393331000002")
    rotation(db, [anna, bruno], start=date(2026, 11, 23), period_days=7)
    rotation(db, [bruno, anna], start=date(2026, 11, 23), period_days=7, tier=Tier.BACKUP)
    login(client, "manager@ali.example")
    url = new_feed(client, "/profile/calendar/province", province="BS")
    assert url.startswith(f"{PUBLIC_URL}/calendar/province/")

    found = events(fetch(client, url))
    assert [e[:3] for e in found[:4]] == [
        (utc(2026, 11, 23, 7), utc(2026, 11, 30, 7), "Reperibilità BS (di riserva): Bruno Verdi"),
        (utc(2026, 11, 23, 7), utc(2026, 11, 30, 7), "Reperibilità BS (principale): Anna Bianchi"),
        (utc(2026, 11, 30, 7), utc(2026, 12, 7, 7), "Reperibilità BS (di riserva): Anna Bianchi"),
        (utc(2026, 11, 30, 7), utc(2026, 12, 7, 7), "Reperibilità BS (principale): Bruno Verdi"),
    ]
    body = client.get(url.removeprefix(PUBLIC_URL)).get_data(as_text=True)
    assert "+39" not in body
    assert "@ali.example" not in body.replace("@ali.oncall", "")
    reads = db.scalars(select(AuditEntry).where(AuditEntry.object_type == "calendar_feed")).all()
    assert len(reads) == 2
    assert reads[0].action == "read"


def test_an_operator_cannot_make_a_feed_of_a_province(
    client: FlaskClient, db: Session, make_user: UserFactory
) -> None:
    make_user(email="anna@ali.example")
    make_user(email="other@ali.example", roles=("operator", "rota_manager"), provinces=("BG",))
    login(client, "anna@ali.example")
    assert post(client, "/profile/calendar/province", province="BS")[0] == 403
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/").get_data(as_text=True))})
    login(client, "other@ali.example")
    assert post(client, "/profile/calendar/province", province="BS")[0] == 403
    assert db.scalars(select(CalendarToken)).all() == []


def test_a_revoked_token_answers_404_like_an_unknown_one(
    client: FlaskClient, db: Session, make_user: UserFactory
) -> None:
    anna = make_user(email="anna@ali.example")
    login(client, "anna@ali.example")
    url = new_feed(client)
    path = url.removeprefix(PUBLIC_URL)
    assert client.get(path).status_code == 200
    token = db.scalar(select(CalendarToken))
    assert token is not None
    assert token.token_hash == hash_token(path.rsplit("/", 1)[1].removesuffix(".ics"))
    assert path.rsplit("/", 1)[1].removesuffix(".ics") not in str(token.__dict__)

    status, _ = post(client, f"/profile/calendar/{token.id}/revoke")
    assert status == 302
    revoked = client.get(path)
    unknown = client.get("/calendar/operator/" + "x" * 43 + ".ics")
    assert revoked.status_code == unknown.status_code == 404
    assert revoked.get_data() == unknown.get_data()
    actions = db.scalars(
        select(AuditEntry.action).where(AuditEntry.object_type == "calendar_token")
    ).all()
    assert sorted(actions) == ["create", "revoke"]
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "revoke"))
    assert entry is not None
    assert entry.actor_id == anna.id


def test_a_new_personal_link_retires_the_old_one(
    client: FlaskClient, make_user: UserFactory
) -> None:
    make_user(email="anna@ali.example")
    login(client, "anna@ali.example")
    old = new_feed(client).removeprefix(PUBLIC_URL)
    new = new_feed(client).removeprefix(PUBLIC_URL)
    assert client.get(old).status_code == 404
    assert client.get(new).status_code == 200
    # An operator token does not open a province feed either.
    assert client.get(new.replace("/operator/", "/province/")).status_code == 404


def test_nobody_revokes_someone_elses_personal_link(
    client: FlaskClient, db: Session, make_user: UserFactory
) -> None:
    make_user(email="anna@ali.example")
    make_user(email="coord@ali.example", roles=("coordinator",), provinces=())
    login(client, "anna@ali.example")
    url = new_feed(client).removeprefix(PUBLIC_URL)
    token = db.scalar(select(CalendarToken))
    assert token is not None
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/").get_data(as_text=True))})
    login(client, "coord@ali.example")
    assert post(client, f"/profile/calendar/{token.id}/revoke")[0] == 404
    assert client.get(url).status_code == 200
    db.refresh(token)
    assert token.revoked_at is None


@pytest.mark.parametrize("change", ["deactivate", "move"])
def test_a_province_feed_stops_when_its_creator_loses_the_province(
    change: str, client: FlaskClient, db: Session, make_user: UserFactory
) -> None:
    manager = make_user(email="manager@ali.example", roles=("operator", "rota_manager"))
    login(client, "manager@ali.example")
    path = new_feed(client, "/profile/calendar/province", province="BS").removeprefix(PUBLIC_URL)
    assert client.get(path).status_code == 200
    if change == "deactivate":
        manager.active = False
    else:
        manager.provinces = ["BG"]
    db.commit()
    assert client.get(path).status_code == 404


def test_a_coordinator_revokes_a_province_link_made_by_a_rota_manager(
    app: Flask, client: FlaskClient, db: Session, make_user: UserFactory
) -> None:
    make_user(email="manager@ali.example", roles=("operator", "rota_manager"))
    make_user(email="coord@ali.example", roles=("coordinator",), provinces=())
    login(client, "manager@ali.example")
    path = new_feed(client, "/profile/calendar/province", province="BS").removeprefix(PUBLIC_URL)
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/").get_data(as_text=True))})
    login(client, "coord@ali.example")
    page = client.get("/profile/").get_data(as_text=True)
    assert "Turni delle province" in page
    token = db.scalar(select(CalendarToken))
    assert token is not None
    assert post(client, f"/profile/calendar/{token.id}/revoke")[0] == 302
    assert client.get(path).status_code == 404
    db.refresh(token)
    assert token.revoked_at is not None
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "revoke")).one()
    assert entry.actor_id != token.created_by_id
