"""Demo data of the infrastructure: an admin, a coordinator and two operators per province."""

from __future__ import annotations

import secrets

import click
from flask import Flask
from sqlalchemy import select

from core.auth import hash_password
from core.config import get_settings
from core.db import session_scope
from core.models import User

# Fictional numbers in a mobile range; the sandbox outbox is the only place they go.
DEMO_PHONE_PREFIX = "+39333000"


def demo_users(provinces: tuple[str, ...]) -> list[dict[str, object]]:
    people: list[dict[str, object]] = [
        {
            "email": "admin@ali.example",
            "name": "Amministratrice Demo",
            "roles": ["admin", "coordinator"],
            "provinces": [],
        },
        {
            "email": "coordinatrice@ali.example",
            "name": "Chiara Coordinatrice",
            "roles": ["coordinator"],
            "provinces": [],
            # The last tier of every escalation: without a phone the demo's would page nobody.
            "phone": f"{DEMO_PHONE_PREFIX}990",
        },
    ]
    for index, sigla in enumerate(provinces):
        for n in (1, 2):
            people.append(
                {
                    "email": f"operatore{n}.{sigla.lower()}@ali.example",
                    "name": f"Operatore {n} {sigla}",
                    "roles": ["operator", "rota_manager"] if n == 1 else ["operator"],
                    "provinces": [sigla],
                    "phone": f"{DEMO_PHONE_PREFIX}{index:02d}{n}",
                }
            )
    return people


def seed_core(app: Flask) -> None:
    settings = get_settings(app)
    now = app.extensions["ali.clock"].now()
    created: list[tuple[str, str]] = []
    # Written beside each password, so whoever opens the file knows whom to log in as.
    roles = {
        str(p["email"]): ",".join(p["roles"])  # type: ignore[arg-type]
        for p in demo_users(settings.provinces)
    }
    with session_scope(app) as db:
        for person in demo_users(settings.provinces):
            email = str(person["email"])
            if db.scalar(select(User).where(User.email == email)) is not None:
                continue
            password = secrets.token_urlsafe(12)
            phone = person.get("phone")
            db.add(
                User(
                    email=email,
                    display_name=str(person["name"]),
                    roles=list(person["roles"]),  # type: ignore[call-overload]
                    provinces=list(person["provinces"]),  # type: ignore[call-overload]
                    phone=str(phone) if phone else None,
                    phone_verified_at=now if phone else None,
                    languages=["it", "en"],
                    created_at=now,
                    password_hash=hash_password(password),
                )
            )
            created.append((email, password))
    if not created:
        click.echo("demo users already exist (credentials were printed when they were created,")
        click.echo(f"and kept in {settings.instance_path / 'demo-credentials.txt'})")
        return
    path = settings.instance_path / "demo-credentials.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        for email, password in created:
            out.write(f"{email} {password} {roles[email]}\n")
    path.chmod(0o600)
    click.echo("Demo users (shown once; also saved to instance/demo-credentials.txt):")
    for email, password in created:
        click.echo(f"  {email:32} {password}  {roles[email]}")
    click.echo("Role of each: admin, coordinator, operators (operatore1.* is also rota manager)")
