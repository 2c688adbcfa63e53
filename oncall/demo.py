"""Demo rotas for every served province (with one deliberate gap)."""

# Every served province gets a weekly primary rotation of its two demo operators and a
# weekly backup rotation of the same two the other way round; the project gets a weekly
# coordinator rotation. Rotations start the Monday before last, so "now" is always covered,
# and run ten weeks, so the next eight are. In the first served province the primary
# rotation stops after this week and a second one picks up on Wednesday of next week:
# Monday 09:00 to Wednesday 09:00 of next week nobody is primary, the one gap the month
# view shows in red and the gap warnings report; its backup changes hands on Wednesdays
# from then on too, so nobody is ever primary and backup at once. Each rotation is found
# by its name, so a second `ali demo` adds nothing.

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time, timedelta

import click
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.cli import add_demo_seeder
from core.config import get_settings
from core.db import session_scope
from core.formatting import local_date
from core.models import User
from oncall.editing import create_rotation
from oncall.models import Rotation
from oncall.schedule import Tier

HANDOVER = time(9, 0)
WEEKS = 10
COORDINATOR_EMAIL = "coordinatrice@ali.example"


@dataclass(frozen=True)
class DemoRotation:
    name: str
    province: str | None
    tier: Tier
    emails: tuple[str, ...]
    start: date
    end: date
    period_days: int = 7


def _operator(n: int, sigla: str) -> str:
    return f"operatore{n}.{sigla.lower()}@ali.example"


def demo_rotations(provinces: tuple[str, ...], today: date) -> list[DemoRotation]:
    """The rotations of the demo, relative to the local date ``today``."""
    this_monday = today - timedelta(days=today.weekday())
    start = this_monday - timedelta(days=7)
    end = start + timedelta(weeks=WEEKS)
    next_monday = this_monday + timedelta(days=7)
    rotations: list[DemoRotation] = []
    for index, sigla in enumerate(provinces):
        one, two = _operator(1, sigla), _operator(2, sigla)
        if index == 0:
            rotations += [
                DemoRotation(
                    f"Demo principale {sigla}", sigla, Tier.PRIMARY, (one, two), start, next_monday
                ),
                DemoRotation(
                    f"Demo principale {sigla} (da mercoledì)",
                    sigla,
                    Tier.PRIMARY,
                    (two, one),
                    next_monday + timedelta(days=2),
                    end,
                ),
            ]
        else:
            rotations.append(
                DemoRotation(
                    f"Demo principale {sigla}", sigla, Tier.PRIMARY, (one, two), start, end
                )
            )
        if index == 0:
            # The backup changes hands when the primary does, on Wednesdays after the gap:
            # otherwise the same person would be primary and backup two days a week.
            wednesday = next_monday + timedelta(days=2)
            rotations += [
                DemoRotation(
                    f"Demo riserva {sigla}", sigla, Tier.BACKUP, (two, one), start, next_monday
                ),
                DemoRotation(
                    f"Demo riserva {sigla} (lunedì e martedì)",
                    sigla,
                    Tier.BACKUP,
                    (two,),
                    next_monday,
                    wednesday,
                    period_days=1,
                ),
                DemoRotation(
                    f"Demo riserva {sigla} (da mercoledì)",
                    sigla,
                    Tier.BACKUP,
                    (one, two),
                    wednesday,
                    end,
                ),
            ]
        else:
            rotations.append(
                DemoRotation(f"Demo riserva {sigla}", sigla, Tier.BACKUP, (two, one), start, end)
            )
    rotations.append(
        DemoRotation("Demo coordinamento", None, Tier.COORDINATOR, (COORDINATOR_EMAIL,), start, end)
    )
    return rotations


# The English names of earlier demos: a database seeded with them gets no second copy.
_FORMER_NAMES = {
    "Demo principale": "Demo primary",
    "Demo riserva": "Demo backup",
    "Demo coordinamento": "Demo coordinators",
    "(da mercoledì)": "(from Wednesday)",
}


def _names(spec: DemoRotation) -> list[str]:
    former = spec.name
    for italian, english in _FORMER_NAMES.items():
        former = former.replace(italian, english)
    return [spec.name, former]


def _exists(db: Session, spec: DemoRotation) -> bool:
    province = (
        Rotation.province.is_(None)
        if spec.province is None
        else (Rotation.province == spec.province)
    )
    found = db.scalar(
        select(Rotation.id).where(
            province, Rotation.tier == spec.tier.value, Rotation.name.in_(_names(spec))
        )
    )
    return found is not None


def seed_rotas(app: Flask) -> None:
    settings = get_settings(app)
    now = app.extensions["ali.clock"].now()
    created = 0
    with session_scope(app) as db:
        users = {u.email: u.id for u in db.scalars(select(User))}
        for spec in demo_rotations(settings.provinces, local_date(now)):
            if _exists(db, spec):
                continue
            missing = [email for email in spec.emails if email not in users]
            if missing:
                click.echo(f"skipped demo rotation {spec.name!r}: no user {', '.join(missing)}")
                continue
            create_rotation(
                db,
                actor="demo",
                now=now,
                province=spec.province,
                tier=spec.tier,
                operator_ids=[users[email] for email in spec.emails],
                handover=HANDOVER,
                period_days=spec.period_days,
                start_date=spec.start,
                end_date=spec.end,
                name=spec.name,
                served=settings.provinces,
            )
            created += 1
    if created:
        click.echo(
            f"Demo rotas: {created} rotations created (one gap next week in "
            f"{settings.provinces[0]}, Monday to Wednesday)."
        )
    else:
        click.echo("demo rotas already exist")


def init_app(app: Flask) -> None:
    """Registers the rota demo seeder."""
    add_demo_seeder(app, seed_rotas)
