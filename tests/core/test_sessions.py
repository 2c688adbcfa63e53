"""Login throttling that cannot lock an operator out, sessions that end on the server, HSTS,
private SQLite files and passwords that cannot be guessed."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from core.app import create_app
from core.auth import IP_FAILURES_PER_WINDOW, login_delay
from core.clock import FrozenClock
from core.config import Settings
from core.db import make_engine
from core.models import AuditEntry
from core.passwords import Weakness, weakness
from core.users import reset_password, set_active
from tests.conftest import PASSWORD, UserFactory, csrf_token, login

ATTACKER = "203.0.113.9"
OFFICE = "198.51.100.20"


def _try(client: FlaskClient, email: str, password: str, address: str = "127.0.0.1") -> int:
    env = {"REMOTE_ADDR": address}
    page = client.get("/login", environ_overrides=env)
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(page.text)},
        environ_overrides=env,
    )
    return response.status_code


def test_delays_grow_from_the_max_failures_up_to_the_lockout_minutes(settings: Settings) -> None:
    minutes = [login_delay(n, settings) / timedelta(minutes=1) for n in range(12)]
    assert settings.login_max_failures == 5
    assert minutes == [0, 0, 0, 0, 0, 1, 2, 4, 8, 15, 15, 15]
    custom = replace(settings, login_max_failures=2, login_lockout_minutes=60)
    assert [login_delay(n, custom) / timedelta(minutes=1) for n in (1, 2, 3, 8, 9)] == [
        0,
        1,
        2,
        60,
        60,
    ]


def test_guessing_an_operators_password_neither_locks_them_out_nor_ends_their_session(
    app_client_pair: tuple[FlaskClient, FlaskClient],
    make_user: UserFactory,
    db: Session,
    clock: FrozenClock,
) -> None:
    operator, attacker = app_client_pair
    user = make_user(email="op@ali.example")
    login(operator, user.email)
    for _ in range(5):
        assert _try(attacker, user.email, "wrong password!!", ATTACKER) == 401
    # The sixth try from that address waits a minute, even with the right password.
    assert _try(attacker, user.email, PASSWORD, ATTACKER) == 429
    # The operator's open session goes on, and they sign in anew from their own address.
    assert operator.get("/").status_code == 200
    assert _try(operator.application.test_client(), user.email, PASSWORD, OFFICE) == 302
    db.refresh(user)
    assert user.active
    # A minute later one more try; a wrong one doubles the wait.
    clock.advance(timedelta(minutes=1))
    assert _try(attacker, user.email, "wrong again!!!", ATTACKER) == 401
    clock.advance(timedelta(seconds=90))
    assert _try(attacker, user.email, PASSWORD, ATTACKER) == 429
    clock.advance(timedelta(seconds=30))
    assert _try(attacker, user.email, PASSWORD, ATTACKER) == 302
    reasons = db.scalars(select(AuditEntry.detail).where(AuditEntry.action == "login_failed")).all()
    assert [r["reason"] for r in reasons] == ["bad_credentials"] * 5 + [
        "throttled",
        "bad_credentials",
        "throttled",
    ]
    # Signed in from there: the count starts again.
    assert _try(app_client(attacker), user.email, "wrong password!!", ATTACKER) == 401


def app_client(client: FlaskClient) -> FlaskClient:
    return client.application.test_client()


@pytest.fixture
def app_client_pair(client: FlaskClient) -> tuple[FlaskClient, FlaskClient]:
    return client, client.application.test_client()


def _spray(db: Session, address: str, at_: FrozenClock) -> None:
    for _ in range(IP_FAILURES_PER_WINDOW):
        db.add(
            AuditEntry(
                at=at_.now(),
                actor="system",
                action="login_failed",
                object_type="user",
                remote_addr=address,
                detail={"reason": "bad_credentials"},
            )
        )
    db.commit()


def test_a_shared_address_under_attack_still_lets_its_own_people_in(
    client: FlaskClient, make_user: UserFactory, db: Session, clock: FrozenClock
) -> None:
    regular = make_user(email="regular@ali.example")
    newcomer = make_user(email="new@ali.example")
    assert _try(client, regular.email, PASSWORD, OFFICE) == 302
    clock.advance(timedelta(days=3))
    _spray(db, OFFICE, clock)  # someone behind the office NAT guesses e-mails
    # An account that signed in from this address lately passes with its right password...
    assert _try(app_client(client), regular.email, PASSWORD, OFFICE) == 302
    # ...but a wrong one is refused like any other, and it is counted for that account only.
    assert _try(app_client(client), regular.email, "wrong password!!", OFFICE) == 401
    # An account never seen at this address waits, as does every unknown e-mail.
    assert _try(app_client(client), newcomer.email, PASSWORD, OFFICE) == 429
    assert _try(app_client(client), "who@ali.example", PASSWORD, OFFICE) == 429
    # Failures on one account alone never throttle the whole address.
    clock.advance(timedelta(minutes=20))
    for _ in range(IP_FAILURES_PER_WINDOW + 2):
        db.add(
            AuditEntry(
                at=clock.now(),
                actor="system",
                action="login_failed",
                object_type="user",
                object_id=str(regular.id),
                remote_addr=ATTACKER,
                detail={"reason": "throttled"},
            )
        )
    db.commit()
    assert _try(app_client(client), newcomer.email, PASSWORD, ATTACKER) == 302


def test_logging_out_ends_the_session_for_every_copy_of_the_cookie(
    client: FlaskClient, make_user: UserFactory, db: Session
) -> None:
    user = make_user(email="op@ali.example")
    login(client, user.email)
    cookie = client.get_cookie("ali_session")
    assert cookie is not None
    copy = app_client(client)
    copy.set_cookie("ali_session", cookie.value, domain=cookie.domain)
    assert copy.get("/").status_code == 200
    token = csrf_token(client.get("/").text)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert copy.get("/").status_code == 302
    assert client.get("/").status_code == 302
    login(client, user.email)  # and the next login works
    assert client.get("/").status_code == 200


def test_changing_ones_password_ends_the_other_sessions_and_keeps_this_one(
    client: FlaskClient, make_user: UserFactory
) -> None:
    user = make_user(email="op@ali.example", name="Giulia Bianchi")
    login(client, user.email)
    other = app_client(client)
    login(other, user.email)
    page = client.get("/account/password")
    new = "tre gatti verdi sul tetto"
    response = client.post(
        "/account/password",
        data={
            "current": PASSWORD,
            "password": new,
            "confirm": new,
            "csrf_token": csrf_token(page.text),
        },
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    assert other.get("/").status_code == 302


def test_deactivation_ends_the_session(
    client: FlaskClient, make_user: UserFactory, db: Session, clock: FrozenClock
) -> None:
    user = make_user(email="op@ali.example")
    login(client, user.email)
    with client.application.app_context():
        set_active(db, user, active=False, actor="cli", now=clock.now())
    db.commit()
    assert client.get("/").status_code == 302
    # Reactivated, the old cookie still opens nothing: its token is gone.
    set_active(db, user, active=True, actor="cli", now=clock.now())
    db.commit()
    assert client.get("/").status_code == 302


def test_hsts_only_when_served_over_https(
    settings: Settings, engine: Engine, clock: FrozenClock
) -> None:
    https = create_app(
        replace(settings, public_url="https://ali.example.org"), clock=clock, engine=engine
    )
    answer = https.test_client().get("/login", base_url="https://ali.example.org")
    assert answer.headers["Strict-Transport-Security"] == "max-age=31536000"
    plain = create_app(
        replace(settings, public_url="http://127.0.0.1:5000"), clock=clock, engine=engine
    )
    assert "Strict-Transport-Security" not in plain.test_client().get("/login").headers


def test_the_sqlite_database_and_its_wal_and_shm_are_private(tmp_path: Path) -> None:
    path = tmp_path / "ali.db"
    old = os.umask(0o022)
    try:
        engine = make_engine(f"sqlite:///{path}")
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
            for suffix in ("", "-wal", "-shm"):
                mode = stat.S_IMODE(os.stat(f"{path}{suffix}").st_mode)
                assert mode == 0o600, (suffix, oct(mode))
        engine.dispose()
        # A database made earlier, world-readable, is tightened on the next connection.
        loose = tmp_path / "old.db"
        loose.touch(mode=0o644)
        os.chmod(loose, 0o644)
        engine = make_engine(f"sqlite:///{loose}")
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        assert stat.S_IMODE(os.stat(loose).st_mode) == 0o600
        engine.dispose()
    finally:
        os.umask(old)


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("            ", Weakness.BLANK),
        ("\t \n", Weakness.BLANK),
        ("short pass", Weakness.SHORT),
        ("password1234", Weakness.GUESSABLE),
        ("qwertyuiop12", Weakness.GUESSABLE),
        ("aaaaaaaaaaaaaaaa", Weakness.GUESSABLE),
        ("giulia.bianchi1", Weakness.GUESSABLE),  # the person's own name
        ("hotline123456", Weakness.GUESSABLE),
        (PASSWORD, None),
        ("tre gatti verdi sul tetto", None),
    ],
)
def test_guessable_passwords_are_refused(password: str, expected: Weakness | None) -> None:
    assert weakness(password, personal=("giulia.bianchi@ali.example", "Giulia Bianchi")) == expected


def test_every_place_a_password_is_typed_refuses_a_guessable_one(
    runner: FlaskCliRunner, client: FlaskClient, make_user: UserFactory, db: Session
) -> None:
    created = runner.invoke(
        args=["users", "create", "--email", "a@ali.example", "--name", "Anna"],
        input="password1234\npassword1234\n",
    )
    assert created.exit_code != 0
    assert "too easy to guess" in created.output
    blank = runner.invoke(
        args=["users", "create", "--email", "a@ali.example", "--name", "Anna"],
        input=" " * 14 + "\n" + " " * 14 + "\n",
    )
    assert blank.exit_code != 0
    assert "spaces" in blank.output
    user = make_user(email="giulia.bianchi@ali.example", name="Giulia Bianchi")
    set_password = runner.invoke(
        args=["operators", "set-password", user.email], input="giulia.bianchi1\ngiulia.bianchi1\n"
    )
    assert set_password.exit_code != 0
    assert "too easy to guess" in set_password.output
    login(client, user.email)
    page = client.get("/account/password")
    response = client.post(
        "/account/password",
        data={
            "current": PASSWORD,
            "password": "qwertyuiop12",
            "confirm": "qwertyuiop12",
            "csrf_token": csrf_token(page.text),
        },
    )
    assert response.status_code == 400
    assert "troppo facile da indovinare" in response.text
    db.refresh(user)
    login(app_client(client), user.email)  # the old password still works


def test_a_new_password_starts_the_delays_again(
    client: FlaskClient, make_user: UserFactory, db: Session, clock: FrozenClock
) -> None:
    user = make_user(email="op@ali.example")
    for _ in range(6):
        _try(client, user.email, "wrong password!!", ATTACKER)
    assert _try(client, user.email, PASSWORD, ATTACKER) == 429
    with client.application.app_context():
        password = reset_password(db, user, actor="cli", now=clock.now())
    db.commit()
    assert _try(client, user.email, password, ATTACKER) == 302
