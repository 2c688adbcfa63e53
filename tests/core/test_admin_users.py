"""The admins' users page: the same rules and audit as `ali users create`, one-time passwords,
deactivation showing the rota gaps it opens."""

from __future__ import annotations

import re
from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from core.models import AuditEntry, User
from tests.alerting import on_shift
from tests.conftest import PASSWORD, UserFactory, csrf_token, login


def _admin(make_user: UserFactory) -> User:
    return make_user(roles=("admin",), provinces=(), email="admin@ali.example")


def _post(client: FlaskClient, url: str, data: dict[str, object], page: str | None = None):  # type: ignore[no-untyped-def]
    token = csrf_token(client.get(page or url).get_data(as_text=True))
    return client.post(url, data={**data, "csrf_token": token})


def _one_time_password(html: str) -> str:
    found = re.search(r'id="one-time-password">([^<]+)<', html)
    assert found, html
    return found.group(1)


def test_only_admins_open_the_users_page(client: FlaskClient, make_user: UserFactory) -> None:
    assert client.get("/admin/users").status_code == 302  # to the login
    coordinator = make_user(roles=("coordinator",), provinces=())
    login(client, coordinator.email)
    assert client.get("/admin/users").status_code == 403
    assert client.get("/admin/audit").status_code == 403


def test_an_admin_creates_a_user_who_must_change_the_one_time_password(
    client: FlaskClient, make_user: UserFactory, db: Session
) -> None:
    admin = _admin(make_user)
    login(client, admin.email)
    response = _post(
        client,
        "/admin/users/new",
        {
            "email": " Nuova@Ali.Example ",
            "display_name": "Nora Nuova",
            "phone": "333 123 4567",
            "roles": ["operator", "rota_manager"],
            "provinces": ["BS", "BG"],
            "locale": "it",
        },
    )
    assert response.status_code == 200
    password = _one_time_password(response.get_data(as_text=True))
    user = db.scalars(select(User).where(User.email == "nuova@ali.example")).one()
    assert (user.roles, sorted(user.provinces), user.phone) == (
        ["operator", "rota_manager"],
        ["BG", "BS"],
        "+393331234567",
    )
    assert user.must_change_password
    entry = db.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "create", AuditEntry.object_id == str(user.id)
        )
    ).one()
    assert entry.actor_id == admin.id
    assert password not in str(entry.detail)

    # The new user signs in with it and is sent to choose a password before anything else.
    other = client.application.test_client()
    login(other, "nuova@ali.example", password)
    assert other.get("/rota/").headers["Location"].endswith("/account/password")
    changed = _post(
        other,
        "/account/password",
        {"password": "a brand new passphrase", "confirm": "a brand new passphrase"},
    )
    assert changed.status_code == 302
    db.refresh(user)
    assert not user.must_change_password
    assert other.get("/").status_code == 200
    third = client.application.test_client()
    login(third, "nuova@ali.example", "a brand new passphrase")


def test_the_page_refuses_what_the_cli_refuses(
    client: FlaskClient, make_user: UserFactory, db: Session
) -> None:
    admin = make_user(roles=("admin",), provinces=(), locale="en")
    existing = make_user(email="taken@ali.example")
    login(client, admin.email)
    base = {"display_name": "X", "roles": ["operator"], "provinces": ["BS"], "locale": "it"}
    for changes, message in (
        ({"email": existing.email}, "Enter an e-mail address that no other user has."),
        ({"email": "not-an-email"}, "Enter an e-mail address that no other user has."),
        ({"email": "ok@ali.example", "phone": "12"}, "This is not a valid phone number."),
        ({"email": "ok@ali.example", "provinces": ["MI"]}, None),
        ({"email": "ok@ali.example", "roles": []}, "Choose at least one role"),
        ({"email": "ok@ali.example", "display_name": "a\x00b"}, "The form contains control"),
    ):
        response = _post(client, "/admin/users/new", {**base, **changes})
        assert response.status_code == 400, changes
        if message:
            assert message in response.get_data(as_text=True), changes
    assert db.scalar(select(User).where(User.email == "ok@ali.example")) is None


def test_an_admin_edits_roles_provinces_and_phone_and_a_new_phone_must_be_verified(
    client: FlaskClient, make_user: UserFactory, db: Session
) -> None:
    admin = _admin(make_user)
    user = make_user(provinces=("BS",))
    login(client, admin.email)
    url = f"/admin/users/{user.id}"
    response = _post(
        client,
        url,
        {
            "display_name": user.display_name,
            "phone": "+39 333 999 8888",
            "roles": ["operator", "coordinator"],
            "provinces": ["CR"],
            "locale": "en",
        },
    )
    assert response.status_code == 302
    db.refresh(user)
    assert (user.roles, user.provinces, user.phone, user.locale) == (
        ["operator", "coordinator"],
        ["CR"],
        "+393339998888",
        "en",
    )
    assert user.phone_verified_at is None
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "update")).one()
    assert set(entry.fields) == {"roles", "provinces", "phone", "phone_verified_at", "locale"}
    # An admin cannot take away their own admin role.
    own = _post(
        client,
        f"/admin/users/{admin.id}",
        {"display_name": "Admin", "roles": ["operator"], "provinces": [], "locale": "it"},
    )
    assert own.status_code == 400
    db.refresh(admin)
    assert admin.roles == ["admin"]


def test_reset_password_shows_it_once_ends_sessions_and_forces_a_change(
    client: FlaskClient, make_user: UserFactory, db: Session
) -> None:
    admin = _admin(make_user)
    user = make_user()
    theirs = client.application.test_client()
    login(theirs, user.email)
    login(client, admin.email)
    response = _post(client, f"/admin/users/{user.id}/password", {}, page=f"/admin/users/{user.id}")
    password = _one_time_password(response.get_data(as_text=True))
    assert theirs.get("/").status_code == 302  # their old session is over
    again = client.application.test_client()
    page = again.get("/login")
    refused = again.post(
        "/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(page.text)},
    )
    assert refused.status_code == 401
    login(again, user.email, password)
    assert again.get("/").headers["Location"].endswith("/account/password")
    entry = db.scalars(
        select(AuditEntry).where(
            AuditEntry.object_id == str(user.id), AuditEntry.action == "update"
        )
    ).one()
    assert entry.actor_id == admin.id
    assert "password_hash" in entry.fields


def test_deactivating_a_rostered_operator_shows_the_gaps_before_confirming(
    client: FlaskClient, make_user: UserFactory, db: Session, clock: FrozenClock
) -> None:
    admin = _admin(make_user)
    primary = make_user(name="Paola Primaria")
    on_shift(db, primary, at=clock.now() + timedelta(days=2))
    login(client, admin.email)
    page = client.get(f"/admin/users/{primary.id}/deactivate")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Buco in BS" in html or "Gap in BS" in html
    db.refresh(primary)
    assert primary.active  # nothing happens on GET
    done = _post(client, f"/admin/users/{primary.id}/deactivate", {})
    assert done.status_code == 302
    db.refresh(primary)
    assert not primary.active
    # The rota now really has that gap.
    from oncall.chain import all_gaps  # noqa: PLC0415

    gaps = all_gaps(
        db,
        provinces=["BS"],
        start=clock.now() + timedelta(days=2),
        end=clock.now() + timedelta(days=2, hours=1),
    )["BS"]
    assert gaps
    again = client.get(f"/admin/users/{primary.id}")
    assert "Riattiva" in again.get_data(as_text=True) or "Reactivate" in again.get_data(
        as_text=True
    )
    _post(client, f"/admin/users/{primary.id}/reactivate", {}, page=f"/admin/users/{primary.id}")
    db.refresh(primary)
    assert primary.active
    actions = [
        e.detail.get("active")
        for e in db.scalars(select(AuditEntry).where(AuditEntry.object_id == str(primary.id)))
        if "active" in e.fields
    ]
    assert actions == [False, True]


def test_an_admin_cannot_deactivate_themselves(
    client: FlaskClient, make_user: UserFactory, db: Session
) -> None:
    admin = _admin(make_user)
    login(client, admin.email)
    _post(client, f"/admin/users/{admin.id}/deactivate", {})
    db.refresh(admin)
    assert admin.active
