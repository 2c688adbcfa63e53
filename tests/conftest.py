"""Shared fixtures: both databases, the app with an injected clock, the Twilio stand-in."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from core.app import FEATURES, create_app
from core.auth import hash_password, use_password_hasher
from core.cli import alembic_config
from core.clock import FrozenClock
from core.config import Settings, load_settings
from core.db import Base, make_engine
from core.models import User
from tests.pg import Cluster, PostgresUnavailable, start_cluster
from tests.twilio_standin import TwilioStandIn

pytest_plugins = ["tests.alerting"]

for _name in ("core", *FEATURES):
    try:
        importlib.import_module(f"{_name}.models")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"{_name}.models":
            raise

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f" * 32
OLD_AUTH_TOKEN = "e" * 32
FROM_NUMBER = "+390212345678"
PUBLIC_URL = "https://ali.example.org"
ENCRYPTION_KEY = "3q2-7wEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
PASSWORD = "correct horse battery staple"
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)

# `ALI_TEST_DATABASES=sqlite` narrows a local run; `make test` always runs both.
use_password_hasher(PasswordHasher.from_parameters(CHEAPEST))

DATABASES = tuple(os.environ.get("ALI_TEST_DATABASES", "sqlite,postgresql").split(","))


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    try:
        cluster = start_cluster()
    except PostgresUnavailable as exc:
        pytest.fail(f"PostgreSQL could not start, so the suite cannot run on it: {exc}")
    yield cluster
    cluster.stop()


def migrate(url: str) -> None:
    command.upgrade(alembic_config(url), "head")


@pytest.fixture(scope="session", params=DATABASES)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """Every database test runs on SQLite and on PostgreSQL; the schema comes from Alembic."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'ali.sqlite3'}"
    else:
        cluster: Cluster = request.getfixturevalue("pg_cluster")
        url = cluster.create_database("ali_test")
    migrate(url)
    return url


@pytest.fixture(scope="session")
def engine_cache() -> Iterator[dict[str, Engine]]:
    engines: dict[str, Engine] = {}
    yield engines
    for engine in engines.values():
        engine.dispose()


@pytest.fixture
def engine(database_url: str, engine_cache: dict[str, Engine]) -> Iterator[Engine]:
    if database_url not in engine_cache:
        engine_cache[database_url] = make_engine(database_url)
    engine = engine_cache[database_url]
    yield engine
    _empty_tables(engine)


def _empty_tables(engine: Engine) -> None:
    """Tests commit for real (live servers, concurrency), so each one ends with empty tables."""
    tables = [t.name for t in Base.metadata.sorted_tables]
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            # The audit table refuses DELETE (append-only triggers, migration 0013): lift the
            # triggers for the cleanup only, and put back exactly what the migration created.
            triggers = conn.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
            ).all()
            for name, _sql in triggers:
                conn.execute(text(f'DROP TRIGGER "{name}"'))
            for name in reversed(tables):
                conn.execute(text(f"DELETE FROM {name}"))  # noqa: S608 -- table names from metadata
            for _name, sql in triggers:
                conn.execute(text(sql))


@pytest.fixture(scope="session")
def standin() -> Iterator[TwilioStandIn]:
    with TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN) as server:
        yield server


@pytest.fixture
def twilio(standin: TwilioStandIn) -> TwilioStandIn:
    standin.reset()
    return standin


def ali_environ(database_url: str, tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {
        "ALI_DATABASE_URL": database_url,
        "ALI_SECRET_KEY": "test-secret-key-" + "x" * 32,
        "ALI_PUBLIC_URL": PUBLIC_URL,
        "ALI_ENCRYPTION_KEYS": ENCRYPTION_KEY,
        "ALI_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "ALI_TWILIO_AUTH_TOKEN": f"{AUTH_TOKEN},{OLD_AUTH_TOKEN}",
        "ALI_TWILIO_FROM_NUMBER": FROM_NUMBER,
        "ALI_SCHEDULER": "off",
        "ALI_INSTANCE_PATH": str(tmp_path / "instance"),
    }
    env.update(overrides)
    return env


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def settings(database_url: str, tmp_path: Path, twilio: TwilioStandIn) -> Settings:
    return load_settings(
        ali_environ(database_url, tmp_path, ALI_TWILIO_API_BASE=twilio.base_url)
    )


@pytest.fixture
def app(settings: Settings, engine: Engine, clock: FrozenClock) -> Flask:
    application = create_app(settings, clock=clock, engine=engine)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session for arranging and checking rows. Autocommit: it never holds a lock or an old
    snapshot while the app works; call `db.refresh(obj)` to see what a request changed."""
    session = Session(bind=engine.execution_options(isolation_level="AUTOCOMMIT"))
    yield session
    session.close()


UserFactory = Callable[..., User]


@pytest.fixture
def make_user(db: Session, clock: FrozenClock) -> UserFactory:
    counter = iter(range(1, 10_000))

    def factory(
        *,
        roles: tuple[str, ...] = ("operator",),
        provinces: tuple[str, ...] = ("BS",),
        email: str | None = None,
        name: str | None = None,
        phone: str | None = None,
        verified: bool = True,
        password: str = PASSWORD,
        locale: str = "it",
    ) -> User:
        n = next(counter)
        user = User(
            email=email or f"user{n}@ali.example",
            display_name=name or f"Utente {n}",
            roles=list(roles),
            provinces=list(provinces),
            phone=phone or f"+39333100{n:04d}",
            phone_verified_at=clock.now() if verified else None,
            languages=["it"],
            locale=locale,
            password_hash=hash_password(password),
            created_at=clock.now(),
        )
        db.add(user)
        db.commit()
        return user

    return factory


def login(client: FlaskClient, email: str, password: str = PASSWORD) -> None:
    """Sign in through the real form, CSRF token included."""
    page = client.get("/login")
    token = csrf_token(page.get_data(as_text=True))
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def csrf_token(html: str) -> str:
    marker = 'name="csrf_token" type="hidden" value="'
    if marker not in html:
        marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]
