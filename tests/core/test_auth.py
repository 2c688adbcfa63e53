"""Login, lockout, CSRF, cookies, idle timeout, redirects, who sees and edits which province,
and the users CLI."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.app import create_app
from core.auth import (
    IP_FAILURES_PER_WINDOW,
    can_edit_rota,
    can_see_province,
    editable_rotas,
    visible_provinces,
)
from core.clock import FrozenClock
from core.config import Settings
from core.models import AuditEntry, User
from tests.conftest import PASSWORD, UserFactory, csrf_token, login


def _post_login(client: FlaskClient, email: str, password: str, next_url: str = "") -> int:
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login" + (f"?next={next_url}" if next_url else ""),
        data={"email": email, "password": password, "csrf_token": token},
    )
    return response.status_code


def test_login_page_is_italian_with_security_headers(client: FlaskClient) -> None:
    response = client.get("/login")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'lang="it"' in html
    assert "Accedi" in html
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_pages_require_login(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_correct_password_logs_in_and_is_audited(
    client: FlaskClient, make_user: UserFactory, db: Session
) -> None:
    user = make_user(email="op@ali.example", name="Giulia")
    login(client, "op@ali.example")
    assert "Giulia" in client.get("/").get_data(as_text=True)
    cookie = client.get_cookie("ali_session")
    assert cookie is not None
    assert cookie.http_only
    assert cookie.secure
    assert cookie.same_site == "Lax"
    actions = db.scalars(select(AuditEntry.action).where(AuditEntry.actor_id == user.id)).all()
    assert actions == ["login"]


def test_wrong_password_is_refused_audited_and_logged_without_personal_data(
    client: FlaskClient, make_user: UserFactory, db: Session, caplog: pytest.LogCaptureFixture
) -> None:
    make_user(email="op@ali.example")
    status = _post_login(client, "op@ali.example", "wrong password!!")
    assert status == 401
    assert client.get("/").status_code == 302
    entries = db.scalars(select(AuditEntry).where(AuditEntry.action == "login_failed")).all()
    assert len(entries) == 1
    assert "op@ali.example" not in str(entries[0].detail)
    assert "op@ali.example" not in caplog.text


def test_unknown_email_gets_the_same_answer(client: FlaskClient) -> None:
    assert _post_login(client, "nobody@ali.example", "whatever password") == 401


def test_repeated_failures_delay_this_address_and_never_lock_the_account(
    client: FlaskClient, make_user: UserFactory, db: Session, clock: FrozenClock
) -> None:
    user = make_user(email="op@ali.example")
    for _ in range(5):
        assert _post_login(client, "op@ali.example", "wrong password!!") == 401
    # Throttled from here: even the right password waits (429) a minute, not a lockout.
    assert _post_login(client, "op@ali.example", PASSWORD) == 429
    db.refresh(user)
    assert user.locked_until is None
    clock.advance(timedelta(minutes=1))
    assert _post_login(client, "op@ali.example", PASSWORD) == 302


def test_login_without_csrf_token_is_refused(client: FlaskClient, make_user: UserFactory) -> None:
    make_user(email="op@ali.example")
    response = client.post("/login", data={"email": "op@ali.example", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_tampered_session_cookie_is_not_trusted(
    client: FlaskClient, make_user: UserFactory
) -> None:
    make_user(email="op@ali.example")
    login(client, "op@ali.example")
    cookie = client.get_cookie("ali_session")
    assert cookie is not None
    client.set_cookie("ali_session", cookie.value[:-3] + "AAA", domain=cookie.domain)
    assert client.get("/").status_code == 302
    # A form posted with the forged cookie has no valid CSRF session either.
    response = client.post("/logout")
    assert response.status_code == 400


def test_next_redirect_only_to_this_site(client: FlaskClient, make_user: UserFactory) -> None:
    make_user(email="op@ali.example")
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login?next=//evil.example/x",
        data={"email": "op@ali.example", "password": PASSWORD, "csrf_token": token},
    )
    assert response.headers["Location"] == "/"


def test_idle_session_expires(
    client: FlaskClient, make_user: UserFactory, clock: FrozenClock
) -> None:
    make_user(email="op@ali.example")
    login(client, "op@ali.example")
    clock.advance(timedelta(minutes=29))
    assert client.get("/").status_code == 200
    clock.advance(timedelta(minutes=31))
    assert client.get("/").status_code == 302


def test_logout_needs_post(client: FlaskClient, make_user: UserFactory) -> None:
    make_user(email="op@ali.example")
    login(client, "op@ali.example")
    assert client.get("/logout").status_code == 405
    token = csrf_token(client.get("/").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_users_create_generates_a_password_that_works(
    runner: FlaskCliRunner, client: FlaskClient, db: Session
) -> None:
    result = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "Rota@Ali.example",
            "--name",
            "Rota BS",
            "--role",
            "rota_manager",
            "--province",
            "bs",
            "--phone",
            "030 123 4567",
            "--generate-password",
        ]
    )
    assert result.exit_code == 0, result.output
    password = result.output.split("password: ")[1].strip()
    user = db.scalar(select(User).where(User.email == "rota@ali.example"))
    assert user is not None
    assert user.provinces == ["BS"]
    assert user.phone == "+390301234567"
    assert user.password_hash is not None
    assert password not in user.password_hash
    login(client, "rota@ali.example", password)


def test_users_create_prompts_and_rejects_bad_input(runner: FlaskCliRunner) -> None:
    short = runner.invoke(
        args=["users", "create", "--email", "a@ali.example", "--name", "A"],
        input="short\nshort\n",
    )
    assert short.exit_code != 0
    assert "12" in short.output
    province = runner.invoke(
        args=["users", "create", "--email", "b@ali.example", "--name", "B", "--province", "RM"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert province.exit_code != 0
    assert "RM" in province.output
    phone = runner.invoke(
        args=["users", "create", "--email", "c@ali.example", "--name", "C", "--phone", "12"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert phone.exit_code != 0
    ok = runner.invoke(
        args=["users", "create", "--email", "d@ali.example", "--name", "D"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert ok.exit_code == 0, ok.output
    assert PASSWORD not in ok.output


def test_login_over_https_works_without_a_referer(
    client: FlaskClient, make_user: UserFactory
) -> None:
    # Referrer-Policy no-referrer means browsers send no Referer; Flask-WTF's strict HTTPS check
    # used to refuse every form posted over HTTPS (behind gunicorn with X-Forwarded-Proto too).
    make_user(email="op@ali.example")
    https = "https://ali.example.org"
    token = csrf_token(client.get("/login", base_url=https).get_data(as_text=True))
    response = client.post(
        "/login",
        base_url=https,
        data={"email": "op@ali.example", "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    assert client.get("/", base_url=https).status_code == 200


def _failures_from(db: Session, address: str, at: datetime) -> None:
    for _ in range(IP_FAILURES_PER_WINDOW):
        db.add(
            AuditEntry(
                at=at,
                actor="system",
                action="login_failed",
                object_type="user",
                remote_addr=address,
            )
        )
    db.commit()


def _login_from(client: FlaskClient, forwarded_for: str) -> int:
    headers = {"X-Forwarded-For": forwarded_for}
    token = csrf_token(client.get("/login", headers=headers).get_data(as_text=True))
    response = client.post(
        "/login",
        headers=headers,
        data={"email": "op@ali.example", "password": PASSWORD, "csrf_token": token},
    )
    return response.status_code


def test_behind_a_trusted_proxy_throttling_counts_each_client_address(
    settings: Settings, engine: Engine, clock: FrozenClock, make_user: UserFactory, db: Session
) -> None:
    app = create_app(replace(settings, trusted_proxies=1), clock=clock, engine=engine)
    make_user(email="op@ali.example")
    _failures_from(db, "203.0.113.7", clock.now())
    assert _login_from(app.test_client(), "203.0.113.7") == 429
    # Everyone else behind the same proxy still signs in.
    assert _login_from(app.test_client(), "198.51.100.2") == 302
    login = db.scalars(select(AuditEntry).where(AuditEntry.action == "login")).one()
    assert login.remote_addr == "198.51.100.2"


def test_without_trusted_proxies_a_forged_forwarded_for_is_ignored(
    client: FlaskClient, make_user: UserFactory, db: Session, clock: FrozenClock
) -> None:
    make_user(email="op@ali.example")
    _failures_from(db, "127.0.0.1", clock.now())
    assert _login_from(client, "198.51.100.2") == 429


def test_a_phone_changing_network_stays_signed_in(
    client: FlaskClient, make_user: UserFactory
) -> None:
    make_user(email="op@ali.example")
    login(client, "op@ali.example")
    moved = client.get("/", environ_overrides={"REMOTE_ADDR": "10.1.2.3"})
    assert moved.status_code == 200


SERVED = ("BG", "BS", "CR")


@pytest.mark.parametrize(
    ("roles", "provinces", "sees", "edits"),
    [
        (("operator",), ("BS",), ["BS"], []),
        (("operator", "rota_manager"), ("BS", "CR"), ["BS", "CR"], ["BS", "CR"]),
        (("rota_manager",), (), [], []),
        (("coordinator",), (), ["BG", "BS", "CR"], ["BG", "BS", "CR"]),
        (("admin",), (), ["BG", "BS", "CR"], ["BG", "BS", "CR"]),
    ],
)
def test_who_sees_and_edits_which_province(
    roles: tuple[str, ...], provinces: tuple[str, ...], sees: list[str], edits: list[str]
) -> None:
    user = User(roles=list(roles), provinces=list(provinces))
    assert visible_provinces(user, SERVED) == sees
    assert [p for p in SERVED if can_see_province(user, p)] == sees
    assert editable_rotas(user, SERVED) == edits
    # The project-wide coordinators' rota is the coordinators' and the admins' alone.
    assert can_edit_rota(user, None) is bool({"coordinator", "admin"} & set(roles))
