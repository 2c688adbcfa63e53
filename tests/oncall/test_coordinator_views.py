"""The coordinators' rota page: the project-wide tier, edited like a province's."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from html import unescape

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import AuditEntry, User
from oncall import editing
from oncall.models import Override, Rotation
from tests.conftest import UserFactory, login
from tests.oncall.test_views import SERVED, cell, get, make_rotation, post_form, previewed, text


@pytest.fixture
def coordinators(make_user: UserFactory) -> list[User]:
    return [
        make_user(
            roles=("coordinator",), provinces=(), name="Zoe Coordinatrice", email="zoe@ali.example"
        ),
        make_user(
            roles=("coordinator",), provinces=(), name="Ugo Coordinatore", email="ugo@ali.example"
        ),
    ]


def coordinator_rotation_data(coordinators: list[User], **changes: str) -> dict[str, str]:
    return {
        "tier": "coordinator",
        "operators-0": str(coordinators[0].id),
        "operators-1": str(coordinators[1].id),
        "handover": "09:00",
        "period_days": "7",
        "start_date": "2026-12-07",
        "end_date": "",
        "name": "",
        **changes,
    }


def test_every_logged_in_user_reads_the_coordinators_rota_but_only_coordinators_edit_it(
    client: FlaskClient, make_user: UserFactory, coordinators: list[User]
) -> None:
    operator = make_user(provinces=("BS",), email="op@ali.example")
    login(client, operator.email)
    status, html = get(client, "/rota/coordinators?month=2026-11")
    assert status == 200
    assert "Turni dei coordinatori" in html
    # Nobody rostered is no primary gap: every active coordinator is alerted.
    assert "vengono allertati tutti i coordinatori attivi" in cell(
        html, "2026-11-10", "coordinator"
    )
    assert "gap-summary" not in html
    assert "Zoe Coordinatrice" in html
    assert "/rota/coordinators/rotations/new" not in html
    assert "/rota/coordinators/overrides/new" not in html


@pytest.mark.parametrize("roles", [("operator",), ("rota_manager", "operator")])
def test_operators_and_rota_managers_get_403_when_editing_the_coordinators_rota(
    client: FlaskClient,
    make_user: UserFactory,
    coordinators: list[User],
    db: Session,
    roles: tuple[str, ...],
) -> None:
    rotation = make_rotation(db, coordinators, province="", tier="coordinator")
    user = make_user(roles=roles, provinces=("BS",), email="someone@ali.example")
    login(client, user.email)
    assert client.get("/rota/coordinators/rotations/new").status_code == 403
    assert client.get(f"/rota/coordinators/rotations/{rotation.id}").status_code == 403
    assert client.get("/rota/coordinators/overrides/new").status_code == 403
    response = post_form(
        client,
        "/rota/coordinators/overrides/new",
        {
            "tier": "coordinator",
            "user_id": str(coordinators[0].id),
            "start": "2026-12-03T00:00",
            "end": "2026-12-04T00:00",
        },
        page="/rota/coordinators",
    )
    assert response.status_code == 403
    assert db.scalars(select(Override)).all() == []


def test_a_coordinator_rotation_is_previewed_then_saved_and_audited(
    client: FlaskClient, coordinators: list[User], db: Session
) -> None:
    login(client, coordinators[0].email)
    url = "/rota/coordinators/rotations/new"
    status, html = get(client, url)
    assert status == 200
    assert '<option selected value="coordinator">' in html
    assert 'value="primary"' not in html
    response = post_form(client, url, {**coordinator_rotation_data(coordinators)})
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html
    preview = html[html.index('id="preview"') :]
    rows = re.findall(r"<tr[^>]*>\s*<td>(.*?)</tr>", preview, re.S)
    assert len(rows) == 10
    assert "Zoe Coordinatrice" in rows[0]
    assert "Ugo Coordinatore" in rows[1]
    assert "lun 7 dic 09:00" in text(rows[0])
    assert "preview-gaps" not in preview
    assert db.scalars(select(Rotation)).all() == []

    data = coordinator_rotation_data(coordinators)
    response = post_form(client, url, previewed(client, url, data))
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/rota/coordinators?month=2026-12")
    rotation = db.scalars(select(Rotation)).one()
    assert (rotation.province, rotation.tier) == (None, "coordinator")
    assert rotation.operator_ids == (coordinators[0].id, coordinators[1].id)
    entry = db.scalars(select(AuditEntry).where(AuditEntry.object_type == "rotation")).one()
    assert (entry.action, entry.actor_id) == ("create", coordinators[0].id)

    _, html = get(client, "/rota/coordinators?month=2026-12")
    assert "Zoe Coordinatrice" in cell(html, "2026-12-08", "coordinator")
    assert f"/rota/coordinators/rotations/{rotation.id}" in html
    status, html = get(client, f"/rota/coordinators/rotations/{rotation.id}")
    assert status == 200
    # The rotation is the coordinators': a province's URL does not reach it.
    assert client.get(f"/rota/BS/rotations/{rotation.id}").status_code == 404


def test_an_operator_cannot_be_slipped_into_a_coordinator_rotation(
    client: FlaskClient, make_user: UserFactory, coordinators: list[User], db: Session
) -> None:
    operator = make_user(provinces=("BS",), email="op@ali.example")
    login(client, coordinators[0].email)
    data = coordinator_rotation_data(coordinators, **{"operators-1": str(operator.id)})
    response = post_form(client, "/rota/coordinators/rotations/new", data)
    assert response.status_code == 400
    assert db.scalars(select(Rotation)).all() == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"handover": "25:99"},
            "Inserisci l'ora del cambio in ore e minuti, per esempio 08:00.",
        ),
        ({"start_date": "domani"}, "Inserisci una data valida."),
        # A province tier is no choice here.
        ({"tier": "primary"}, None),
    ],
)
def test_bad_coordinator_rotation_input_is_a_form_message(
    client: FlaskClient,
    coordinators: list[User],
    db: Session,
    changes: dict[str, str],
    message: str | None,
) -> None:
    login(client, coordinators[0].email)
    data = coordinator_rotation_data(coordinators, **changes)
    response = post_form(client, "/rota/coordinators/rotations/new", data)
    page = unescape(response.get_data(as_text=True))
    assert response.status_code == 400, page
    if message is not None:
        assert message in page
    assert db.scalars(select(Rotation)).all() == []


def test_a_coordinator_swap_is_added_and_deleted_with_audit(
    client: FlaskClient, coordinators: list[User], db: Session
) -> None:
    make_rotation(
        db, coordinators[:1], province="", tier="coordinator", start_date=date(2026, 12, 1)
    )
    login(client, coordinators[0].email)
    status, html = get(client, "/rota/coordinators/overrides/new?day=2026-12-03&tier=coordinator")
    assert status == 200
    assert 'value="2026-12-03T08:00"' in html
    response = post_form(
        client,
        "/rota/coordinators/overrides/new",
        {
            "tier": "coordinator",
            "user_id": str(coordinators[1].id),
            "start": "2026-12-03T08:00",
            "end": "2026-12-04T08:00",
            "reason": "ferie",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/rota/coordinators?month=2026-12")
    override = db.scalars(select(Override)).one()
    assert (override.province, override.tier, override.user_id) == (
        None,
        "coordinator",
        coordinators[1].id,
    )
    _, html = get(client, "/rota/coordinators?month=2026-12")
    assert "Ugo Coordinatore" in cell(html, "2026-12-03", "coordinator")
    assert f'id="override-{override.id}"' in html
    # The swap is the coordinators': a province's URL cannot delete it.
    override_id = override.id
    response = post_form(client, f"/rota/BS/overrides/{override_id}/delete", {}, page="/rota/BS")
    assert response.status_code == 404

    response = post_form(
        client,
        f"/rota/coordinators/overrides/{override_id}/delete",
        {},
        page="/rota/coordinators",
    )
    assert response.status_code == 302
    db.expunge_all()
    assert db.get(Override, override_id) is None
    actions = db.scalars(
        select(AuditEntry.action)
        .where(AuditEntry.object_type == "override", AuditEntry.actor_id == coordinators[0].id)
        .order_by(AuditEntry.id)
    ).all()
    assert actions == ["create", "delete"]


def test_a_province_swap_cannot_be_deleted_through_the_coordinators_page(
    client: FlaskClient, make_user: UserFactory, coordinators: list[User], db: Session
) -> None:
    operator = make_user(provinces=("BS",), email="op@ali.example")
    override = editing.add_override(
        db,
        actor="test",
        now=datetime(2026, 11, 1, tzinfo=UTC),
        province="BS",
        tier="primary",
        user_id=operator.id,
        start=datetime(2026, 11, 25, 8, tzinfo=UTC),
        end=datetime(2026, 11, 26, 8, tzinfo=UTC),
        served=SERVED,
    )
    db.commit()
    login(client, coordinators[0].email)
    response = post_form(
        client,
        f"/rota/coordinators/overrides/{override.id}/delete",
        {},
        page="/rota/coordinators",
    )
    assert response.status_code == 404
    db.expunge_all()
    assert db.get(Override, override.id) is not None


def test_bad_coordinator_swap_input_is_a_form_message(
    client: FlaskClient, coordinators: list[User], db: Session
) -> None:
    login(client, coordinators[0].email)
    response = post_form(
        client,
        "/rota/coordinators/overrides/new",
        {
            "tier": "coordinator",
            "user_id": str(coordinators[0].id),
            "start": "2026-12-04T08:00",
            "end": "2026-12-03T08:00",
        },
    )
    page = unescape(response.get_data(as_text=True))
    assert response.status_code == 400, page
    assert "La fine deve essere dopo l'inizio" in page
    assert db.scalars(select(Override)).all() == []


def test_the_coordinators_month_of_the_autumn_change_renders_its_25_hour_day(
    client: FlaskClient, make_user: UserFactory, coordinators: list[User], db: Session
) -> None:
    make_rotation(
        db,
        coordinators,
        province="",
        tier="coordinator",
        handover=time(8, 0),
        period_days=1,
        start_date=date(2026, 10, 1),
    )
    operator = make_user(provinces=("BS",), email="op@ali.example")
    login(client, operator.email)
    status, html = get(client, "/rota/coordinators?month=2026-10")
    assert status == 200
    day = cell(html, "2026-10-25", "coordinator")
    assert "25 h" in text(day)
    assert "vengono allertati" not in day
    assert "vengono allertati" in cell(html, "2026-10-01", "coordinator")


def test_the_coordinators_rota_is_linked_from_the_index_and_the_province_month(
    client: FlaskClient, coordinators: list[User], db: Session
) -> None:
    login(client, coordinators[0].email)
    _, html = get(client, "/rota/")
    assert 'href="/rota/coordinators"' in html
    _, html = get(client, "/rota/BS?month=2026-11")
    assert 'href="/rota/coordinators?month=2026-11"' in html
    make_rotation(db, coordinators, province="", tier="coordinator", start_date=date(2026, 11, 1))
    _, html = get(client, "/rota/BS?month=2026-11")
    header = html[html.index("<thead>") : html.index("</thead>")]
    assert 'href="/rota/coordinators?month=2026-11"' in header
