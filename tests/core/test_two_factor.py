"""Two-factor login: enrolment, a code after the password, no replay, throttling like
passwords, recovery codes once each, required for coordinators and admins when configured."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.app import create_app
from core.clock import FrozenClock
from core.config import load_settings
from core.models import AuditEntry
from tests.conftest import PASSWORD, UserFactory, ali_environ, csrf_token, login
from tests.twilio_standin import TwilioStandIn


def _enrol(client: FlaskClient, clock: FrozenClock) -> tuple[str, list[str]]:
    page = client.get("/account/two-factor")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    secret = re.search(r'id="totp-key" class="key">([A-Z2-7]+)<', html).group(1)  # type: ignore[union-attr]
    assert 'src="data:image/svg+xml' in html
    code = pyotp.TOTP(secret).at(clock.now())
    done = client.post("/account/two-factor", data={"code": code, "csrf_token": csrf_token(html)})
    assert done.status_code == 200
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", done.get_data(as_text=True))
    assert len(codes) == 10
    return secret, codes


def _password_step(client: FlaskClient, email: str) -> None:
    page = client.get("/login")
    response = client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf_token(page.text)}
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/login/code")


def _code_step(client: FlaskClient, code: str) -> int:
    page = client.get("/login/code")
    return client.post(
        "/login/code", data={"code": code, "csrf_token": csrf_token(page.text)}
    ).status_code


def test_enrolment_then_login_asks_for_the_code_after_the_password(
    client: FlaskClient, make_user: UserFactory, db: Session, clock: FrozenClock, app: Flask
) -> None:
    user = make_user(roles=("coordinator",), provinces=())
    login(client, user.email)
    secret, _codes = _enrol(client, clock)
    db.refresh(user)
    assert user.totp_enabled_at == clock.now()
    fresh = app.test_client()
    _password_step(fresh, user.email)
    assert fresh.get("/").status_code == 302  # not signed in yet
    clock.advance(timedelta(seconds=31))
    assert _code_step(fresh, pyotp.TOTP(secret).at(clock.now())) == 302
    assert fresh.get("/").status_code == 200
    actions = [
        (e.action, e.detail.get("second_factor"))
        for e in db.scalars(select(AuditEntry).where(AuditEntry.object_id == str(user.id)))
    ]
    assert ("login_password", None) in actions
    assert ("login", "totp") in actions


def test_the_secret_is_stored_encrypted(
    client: FlaskClient, make_user: UserFactory, engine: Engine, clock: FrozenClock
) -> None:
    user = make_user(roles=("admin",), provinces=())
    login(client, user.email)
    secret, _codes = _enrol(client, clock)
    with engine.connect() as conn:
        from sqlalchemy import text  # noqa: PLC0415

        raw = conn.execute(text("SELECT totp_secret, recovery_code_hashes FROM users")).one()
    assert secret not in raw[0]
    assert all(code.replace("-", "") not in str(raw[1]) for code in _codes)


def test_a_code_cannot_be_used_twice_and_wrong_codes_delay_like_passwords(
    client: FlaskClient, make_user: UserFactory, db: Session, clock: FrozenClock, app: Flask
) -> None:
    user = make_user(roles=("coordinator",), provinces=())
    login(client, user.email)
    secret, _codes = _enrol(client, clock)
    used = pyotp.TOTP(secret).at(clock.now())  # the enrolment's own code
    fresh = app.test_client()
    _password_step(fresh, user.email)
    assert _code_step(fresh, used) == 401  # replayed
    for _attempt in range(3):
        assert _code_step(fresh, "000000") == 401
    assert _code_step(fresh, "111111") == 401
    # Five failures (default ALI_LOGIN_MAX_FAILURES) from this address: the next code waits,
    # even a right one, and so does the password; the account itself is not locked.
    right = pyotp.TOTP(secret).at(clock.now() + timedelta(seconds=30))
    assert _code_step(fresh, right) == 429
    failures = db.scalars(select(AuditEntry).where(AuditEntry.action == "login_failed")).all()
    assert [f.detail["reason"] for f in failures] == ["bad_code"] * 5 + ["throttled"]
    again = app.test_client()
    page = again.get("/login")
    waiting = again.post(
        "/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(page.text)},
    )
    assert waiting.status_code == 429
    db.refresh(user)
    assert user.locked_until is None
    clock.advance(timedelta(minutes=1))
    assert _code_step(fresh, pyotp.TOTP(secret).at(clock.now())) == 302


def test_a_recovery_code_works_once(
    client: FlaskClient, make_user: UserFactory, db: Session, clock: FrozenClock, app: Flask
) -> None:
    user = make_user(roles=("coordinator",), provinces=())
    login(client, user.email)
    _secret, codes = _enrol(client, clock)
    first = app.test_client()
    _password_step(first, user.email)
    assert _code_step(first, codes[0].upper()) == 302
    assert first.get("/").status_code == 200
    second = app.test_client()
    _password_step(second, user.email)
    assert _code_step(second, codes[0]) == 401
    db.refresh(user)
    assert len(user.recovery_code_hashes) == 9
    entry = db.scalars(
        select(AuditEntry).where(AuditEntry.action == "login").order_by(AuditEntry.id.desc())
    ).first()
    assert entry is not None
    assert entry.detail["second_factor"] == "recovery_code"


def test_the_code_step_expires(
    client: FlaskClient, make_user: UserFactory, clock: FrozenClock, app: Flask
) -> None:
    user = make_user(roles=("coordinator",), provinces=())
    login(client, user.email)
    _secret, _codes = _enrol(client, clock)
    fresh = app.test_client()
    _password_step(fresh, user.email)
    clock.advance(timedelta(minutes=6))
    page = fresh.get("/login/code")
    assert page.headers["Location"].endswith("/login")


@pytest.fixture
def production_like(
    database_url: str, tmp_path: Path, twilio: TwilioStandIn, engine: Engine, clock: FrozenClock
) -> Flask:
    settings = load_settings(
        ali_environ(
            database_url, tmp_path, ALI_TWILIO_API_BASE=twilio.base_url, ALI_REQUIRE_2FA="true"
        )
    )
    app = create_app(settings, clock=clock, engine=engine)
    app.config["TESTING"] = True
    return app


def test_when_required_coordinators_must_enrol_before_anything_else(
    production_like: Flask, make_user: UserFactory, clock: FrozenClock
) -> None:
    operator = make_user()
    coordinator = make_user(roles=("coordinator",), provinces=())
    client = production_like.test_client()
    login(client, operator.email)
    assert client.get("/").status_code == 200  # operators are not asked
    client = production_like.test_client()
    login(client, coordinator.email)
    assert client.get("/").headers["Location"].endswith("/account/two-factor")
    assert client.get("/rota/").headers["Location"].endswith("/account/two-factor")
    _enrol(client, clock)
    assert client.get("/").status_code == 200
    # And it cannot be turned off.
    page = client.get("/account/two-factor")
    assert "Turn two-factor login off" not in page.get_data(as_text=True)
    client.post("/account/two-factor", data={"csrf_token": csrf_token(page.text)})
    assert production_like.test_client().get("/").status_code == 302


def test_settings_require_two_factor_in_production_by_default(tmp_path: Path) -> None:
    base = {
        "ALI_INSTANCE_PATH": str(tmp_path),
        "ALI_DATABASE_URL": "sqlite://",
        "ALI_SECRET_KEY": "k" * 40,
        "ALI_PUBLIC_URL": "https://ali.example.org",
        "ALI_ENCRYPTION_KEYS": "3q2-7wEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "ALI_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "ALI_TWILIO_AUTH_TOKEN": "t" * 32,
        "ALI_TWILIO_FROM_NUMBER": "+390212345678",
    }
    assert load_settings({**base, "ALI_ENV": "production"}).require_2fa
    assert not load_settings(base).require_2fa
    assert not load_settings(
        {**base, "ALI_ENV": "production", "ALI_REQUIRE_2FA": "false"}
    ).require_2fa
