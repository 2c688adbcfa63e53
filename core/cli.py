"""The `ali` command: a Flask CLI group; features add their own groups in init_app."""

from __future__ import annotations

import logging
import secrets
import sys
from collections.abc import Callable, Collection
from pathlib import Path

import click
from alembic import command
from alembic.config import Config
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from werkzeug.serving import run_simple

from core import scheduler, users
from core.clock import now as clock_now
from core.config import SettingsError, get_settings
from core.crypto import DecryptionError
from core.db import get_session
from core.models import Role
from core.passwords import WeakPassword, check_new_password

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

DemoSeeder = Callable[[Flask], None]


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


@click.group("db", help="Database schema.")
def db_group() -> None:
    pass


@db_group.command("upgrade", help="Apply every pending migration.")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    command.upgrade(alembic_config(get_settings().database_url), revision)
    click.echo("database is up to date")


def ask_password(*, generate: bool, personal: Collection[str] = ()) -> str:
    """A generated password (random: strong by construction), or one typed twice at a hidden
    prompt (never an argument) and refused when blank, short or guessable from ``personal``
    (the person's e-mail and name)."""
    if generate:
        return secrets.token_urlsafe(15)
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        check_new_password(password, personal=personal)
    except WeakPassword as exc:
        raise click.ClickException(str(exc)) from None
    return password


@click.group("users", help="People who log in.")
def users_group() -> None:
    pass


@users_group.command("create", help="Create a user; the password is prompted or generated.")
@click.option("--email", required=True)
@click.option("--name", "display_name", required=True)
@click.option(
    "--role",
    "roles",
    multiple=True,
    type=click.Choice([r.value for r in Role]),
    default=["operator"],
    show_default=True,
)
@click.option("--province", "provinces", multiple=True, help="Sigla, repeatable (e.g. BS).")
@click.option("--phone", default=None, help="E.164 or Italian number.")
@click.option("--locale", type=click.Choice(["it", "en"]), default="it", show_default=True)
@click.option("--generate-password", is_flag=True, help="Generate a password and print it once.")
@with_appcontext
def users_create(
    email: str,
    display_name: str,
    roles: tuple[str, ...],
    provinces: tuple[str, ...],
    phone: str | None,
    locale: str,
    generate_password: bool,
) -> None:
    db = get_session()
    details = users.UserDetails(
        display_name=display_name, roles=roles, provinces=provinces, phone=phone, locale=locale
    )
    served = get_settings().provinces
    try:
        # Refused before the password prompt: nobody types a password twice for nothing.
        users.check_new_user(db, email=email, details=details, served=served)
        password = ask_password(generate=generate_password, personal=(email, display_name))
        user = users.create_user(
            db,
            email=email,
            details=details,
            password=password,
            served=served,
            actor="cli",
            now=clock_now(),
        )
    except users.UserError as exc:
        raise click.ClickException(str(exc)) from None
    db.commit()
    click.echo(f"created user {user.id} <{user.email}> roles={','.join(user.roles)}")
    if generate_password:
        # Printed to the terminal once, never logged.
        click.echo(f"password: {password}")


@click.group("keys", help="The encryption keys of personal data (ALI_ENCRYPTION_KEYS).")
def keys_group() -> None:
    pass


@keys_group.command(
    "reencrypt", help="Rewrite all personal data under the first key; safe to stop and re-run."
)
@with_appcontext
def keys_reencrypt() -> None:
    from core.keys import reencrypt_all  # noqa: PLC0415 -- needs every feature's models loaded

    try:
        done = reencrypt_all(get_session(), progress=click.echo)
    except DecryptionError:
        # Ids only: which table, never what it holds. The batches before are kept.
        raise click.ClickException(
            "some data cannot be read with ALI_ENCRYPTION_KEYS: put back the key that "
            "encrypted it (after the new one) and run again"
        ) from None
    click.echo(
        f"done: {done.total} values rewritten under the first key, "
        f"{done.already_current} already under it; the other keys can now be removed"
    )


@click.command("worker", help="Run the scheduled jobs (one process per deployment).")
@with_appcontext
def worker() -> None:
    scheduler.run_blocking(current_app._get_current_object())  # type: ignore[attr-defined]


@click.command("demo", help="Seed demo data: provinces' users, sources, rotas. Safe to re-run.")
@with_appcontext
def demo() -> None:
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    if get_settings(app).production:
        # Demo users are admins with passwords printed on a terminal: never in production.
        raise click.ClickException("ali demo refuses to run with ALI_ENV=production")
    seeders: list[DemoSeeder] = app.extensions.get("ali.demo_seeders", [])
    for seed in seeders:
        seed(app)


@click.command("run", help="Serve Ali for development, with the in-process scheduler.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@with_appcontext
def run(host: str, port: int) -> None:
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    if get_settings(app).scheduler == "inprocess":
        scheduler.start_background(app)
    # Werkzeug's reloader would fork a second scheduler; the embedded mode runs without it.
    # run_simple, not app.run(): Flask ignores app.run() inside its own CLI.
    run_simple(host, port, app, use_reloader=False, use_debugger=False, threaded=True)


def add_demo_seeder(app: Flask, seeder: DemoSeeder) -> None:
    app.extensions.setdefault("ali.demo_seeders", []).append(seeder)


def init_app(app: Flask) -> None:
    app.cli.add_command(db_group)
    app.cli.add_command(users_group)
    app.cli.add_command(keys_group)
    app.cli.add_command(worker)
    app.cli.add_command(demo)
    app.cli.add_command(run)
    from core.demo import seed_core  # noqa: PLC0415 -- avoids a cycle with core.app

    add_demo_seeder(app, seed_core)


def _create_app() -> Flask:
    from core.app import create_app  # noqa: PLC0415 -- the CLI builds the app lazily

    try:
        return create_app()
    except SettingsError as exc:
        # One line saying what to set, not a traceback, for whoever starts Ali at 3 a.m.
        raise click.ClickException(str(exc)) from None


# Ali's own version (Flask's option would print Flask's and Python's).
@click.group(
    cls=FlaskGroup, create_app=_create_app, add_default_commands=False, add_version_option=False
)
@click.version_option(package_name="ali", prog_name="Ali", message="%(prog)s %(version)s")
def main() -> None:
    """Ali: intake and on-call dispatch for the anti-trafficking network."""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
