"""The audit viewer: filters by user, object and Rome calendar day, pages, CSV export that is
itself audited."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.models import AuditEntry, User
from routing.models import Case
from tests.conftest import UserFactory, csrf_token, login
from tests.intake.signed import Sender


def _entries(db: Session, reader: User, writer: User) -> None:
    # 23:30 UTC on 24 November is already the 25th in Rome (UTC+1).
    for at, actor, action, object_id in (
        (datetime(2026, 11, 24, 10, 0, tzinfo=UTC), reader, "read", "1"),
        (datetime(2026, 11, 24, 23, 30, tzinfo=UTC), writer, "update", "1"),
        (datetime(2026, 11, 25, 9, 0, tzinfo=UTC), reader, "read", "2"),
    ):
        audit.record(
            db,
            now=at,
            action=action,
            object_type="case",
            object_id=object_id,
            actor=actor,
            fields=["summary"],
        )
    audit.record(
        db,
        now=datetime(2026, 11, 25, 9, 5, tzinfo=UTC),
        action="update",
        object_type="rotation",
        object_id="3",
        actor=writer,
        fields=["operator_ids"],
    )
    db.commit()


def _rows(html: str) -> int:
    return html.count("<tr>") - 1  # the header row


def test_filters_by_user_object_and_rome_day(
    client: FlaskClient, make_user: UserFactory, db: Session
) -> None:
    admin = make_user(roles=("admin",), provinces=())
    reader = make_user(name="Rita Reader")
    writer = make_user(name="Walter Writer")
    _entries(db, reader, writer)
    login(client, admin.email)  # adds one login entry
    everything = client.get("/admin/audit")
    assert everything.status_code == 200
    assert _rows(everything.text) == 5
    assert _rows(client.get(f"/admin/audit?user={reader.id}").text) == 2
    case_1 = client.get("/admin/audit?object_type=case&object_id=1").text
    assert _rows(case_1) == 2
    assert "Rita Reader" in case_1
    assert "Walter Writer" in case_1
    # The Rome day of 25 November holds the 23:30 UTC entry of the 24th, and not the 10:00.
    day = client.get("/admin/audit?object_type=case&from=2026-11-25&to=2026-11-25").text
    assert _rows(day) == 2
    assert _rows(client.get("/admin/audit?object_type=rotation").text) == 1


def test_bad_filters_are_a_message_not_an_error(
    client: FlaskClient, make_user: UserFactory
) -> None:
    admin = make_user(roles=("admin",), provinces=())
    login(client, admin.email)
    for query in ("from=yesterday", "user=abc", "from=2026-11-25&to=2026-11-01", "object_id=a%00b"):
        response = client.get(f"/admin/audit?{query}")
        assert response.status_code == 400, query
        if "%00" in query:  # refused before the page reads it (core.errors)
            assert "caratteri di controllo" in response.text
        else:
            assert 'role="alert"' in response.text


def test_pages_of_fifty(client: FlaskClient, make_user: UserFactory, db: Session) -> None:
    admin = make_user(roles=("admin",), provinces=())
    for n in range(120):
        audit.record(
            db,
            now=datetime(2026, 11, 1, tzinfo=UTC),
            action="read",
            object_type="case",
            object_id=str(n),
            actor="cli",
        )
    db.commit()
    login(client, admin.email)
    first = client.get("/admin/audit?object_type=case")
    assert _rows(first.text) == 50
    assert "page=2" in first.text
    third = client.get("/admin/audit?object_type=case&page=3")
    assert _rows(third.text) == 20
    assert "page=4" not in third.text


def test_the_csv_export_holds_the_filtered_entries_and_is_audited(
    client: FlaskClient, make_user: UserFactory, db: Session
) -> None:
    admin = make_user(roles=("admin",), provinces=())
    reader = make_user(name="Rita Reader")
    writer = make_user(name="Walter Writer")
    _entries(db, reader, writer)
    audit.record(
        db,
        now=datetime(2026, 11, 25, 10, tzinfo=UTC),
        action="read",
        object_type="case",
        object_id='=HYPERLINK("x")',
        actor="cli",
    )
    db.commit()
    login(client, admin.email)
    page = client.get("/admin/audit?object_type=case")
    response = client.post(
        "/admin/audit/export",
        data={"object_type": "case", "csrf_token": csrf_token(page.text)},
    )
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["object_id"] for r in rows] == ["1", "1", "2", '\'=HYPERLINK("x")']
    assert rows[1]["at"] == "2026-11-24T23:30:00+00:00"
    assert rows[0]["actor_id"] == str(reader.id)
    assert rows[0]["fields"] == "summary"
    export = db.scalars(select(AuditEntry).where(AuditEntry.action == "export")).one()
    assert export.actor_id == admin.id
    assert export.detail["rows"] == 4
    assert export.detail["filter"]["object_type"] == "case"


def test_export_needs_the_csrf_token(client: FlaskClient, make_user: UserFactory) -> None:
    admin = make_user(roles=("admin",), provinces=())
    login(client, admin.email)
    assert client.post("/admin/audit/export", data={}).status_code == 400


def test_a_rome_day_of_25_hours_is_searched_whole(
    client: FlaskClient, make_user: UserFactory, db: Session
) -> None:
    # 25 October 2026: clocks go back at 03:00, the Rome day runs 22:00 UTC to 23:00 UTC.
    admin = make_user(roles=("admin",), provinces=())
    for n, at in enumerate(
        (
            datetime(2026, 10, 24, 21, 59, tzinfo=UTC),  # 23:59 on the 24th in Rome
            datetime(2026, 10, 24, 22, 0, tzinfo=UTC),  # 00:00 on the 25th
            datetime(2026, 10, 25, 22, 59, tzinfo=UTC),  # 23:59 on the 25th
            datetime(2026, 10, 25, 23, 0, tzinfo=UTC),  # 00:00 on the 26th
        )
    ):
        audit.record(db, now=at, action="read", object_type="case", object_id=str(n), actor="cli")
    db.commit()
    login(client, admin.email)
    day = client.get("/admin/audit?object_type=case&from=2026-10-25&to=2026-10-25").text
    assert _rows(day) == 2
    assert ">case 1<" in day
    assert ">case 2<" in day


def test_a_case_is_shown_by_its_reference(
    client: FlaskClient, make_user: UserFactory, db: Session, sender: Sender
) -> None:
    assert sender.post({"external_id": "NV-9", "province": "BS"}).status_code == 201
    case_id = db.scalars(select(Case.id)).one()
    admin = make_user(roles=("admin",), provinces=())
    audit.record(
        db,
        now=datetime(2026, 11, 24, tzinfo=UTC),
        action="read",
        object_type="case",
        object_id=case_id,
        actor=admin,
    )
    db.commit()
    login(client, admin.email)
    page = client.get(f"/admin/audit?object_type=case&object_id={case_id}").text
    assert "(BS-2026-0001)" in page


def test_odd_digits_in_the_audit_filters_are_a_message_not_an_error(
    client: FlaskClient, make_user: UserFactory
) -> None:
    admin = make_user(roles=("admin",), provinces=())
    login(client, admin.email)
    for odd in ("²", "٣", "99999999999999999999"):
        assert client.get(f"/admin/audit?user={odd}").status_code == 400
        assert client.get(f"/admin/audit?page={odd}").status_code == 200
