"""Demo intake: a `numero-verde` source and a shell snippet that posts a signed hand-off,
three weeks of cases in every state for the case list, and shelters with four months of
placements."""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import click
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.config import get_settings
from core.db import session_scope
from core.models import User
from intake.manual import manual_case_fields
from intake.models import ExitReason, Partner, Shelter, Source
from intake.partners import create_partner, read_fields
from intake.placements import (
    check_in,
    check_out,
    confirm_placement,
    request_placement,
    set_planned_end,
)
from intake.services import BroughtBy, create_source, open_case
from intake.shelters import create_shelter
from intake.shelters import read_fields as read_shelter_fields
from routing.dispatch import answer_alert
from routing.lifecycle import add_note, change_status, close_with_outcome
from routing.models import Case, CaseEvent, CaseStatus, Channel, Dispatch

DEMO_SOURCE = "numero-verde"
SNIPPET_FILE = "demo-handoff.sh"
DEMO_BODY = {
    "external_id": "demo-0001",
    "municipality": "Chiari",
    "urgency": "emergency",
    "reporter_type": "law_enforcement",
    "exploitation": ["sexual"],
    "person": {
        "gender": "female",
        "age_band": "18-24",
        "minor": "no",
        "nationality": "NG",
        "languages": ["en", "pcm"],
    },
    "needs": ["pronta_accoglienza", "interpreter"],
    "summary": "Caso dimostrativo: nessun dato reale.",
}


def handoff_snippet(*, url: str, key_id: str, secret: str, body: str) -> str:
    """Shell lines that sign `body` at paste time (a signature is valid for 300 s) and post it."""
    return "\n".join(
        [
            f"KEY={shlex.quote(key_id)}",
            f"SECRET={shlex.quote(secret)}",
            f"BODY={shlex.quote(body)}",
            "TS=$(date +%s)",
            'SIG=$(printf \'%s.%s\' "$TS" "$BODY" | openssl dgst -sha256 -hmac "$SECRET"'
            " | sed 's/^.* //')",
            f"curl -sS -X POST {shlex.quote(url)} -H 'Content-Type: application/json' \\",
            '  -H "X-Ali-Key: $KEY" -H "X-Ali-Timestamp: $TS" -H "X-Ali-Signature: v1=$SIG" \\',
            '  --data-binary "$BODY"; echo',
        ]
    )


def seed_intake(app: Flask) -> None:
    """Create the demo source once and print the snippet (kept in instance/ for re-runs)."""
    settings = get_settings(app)
    now = app.extensions["ali.clock"].now()
    path = settings.instance_path / SNIPPET_FILE
    with session_scope(app) as db:
        if db.scalar(select(Source.id).where(Source.name == DEMO_SOURCE)) is not None:
            issued = None
        else:
            issued = create_source(db, name=DEMO_SOURCE, now=now)
    next_step = (
        f"Then open {settings.public_url}/sandbox as admin@ali.example: the alert SMS and call "
        "to whoever is on call are there; reply 1 or press 1 for them to accept the case."
        if settings.telephony_backend == "sandbox"
        else "Its alerts go out through Twilio to whoever is on call."
    )
    if issued is None:
        click.echo(f"demo source {DEMO_SOURCE} already exists; its hand-off snippet is in {path}")
        click.echo(f"(for a new secret: ali sources rotate {DEMO_SOURCE})")
        click.echo(next_step)
        return
    snippet = handoff_snippet(
        url=f"{settings.public_url}/api/v1/handoffs",
        key_id=issued.key_id,
        secret=issued.secret,
        body=json.dumps(DEMO_BODY, ensure_ascii=False, separators=(",", ":")),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    # The file holds the secret: owner-only from its creation, not after a chmod.
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(
            "# A signed demo hand-off for Ali; run it twice to see the duplicate answer.\n"
            + snippet
            + "\n"
        )
    click.echo(f"Demo source {DEMO_SOURCE}: key id {issued.key_id} (secret shown once, below).")
    click.echo("With `ali run` going, paste this into a shell to hand a case over to Ali")
    click.echo(f"(also saved to {path}; run it again to see the duplicate answer):")
    click.echo("")
    click.echo(snippet)
    click.echo("")
    click.echo(next_step)


# Invented organisations with invented numbers (555 exchanges): a partner's text or call from
# one of them shows the registry at work in /sandbox.
DEMO_PARTNERS = (
    ("Questura di Brescia - Squadra Mobile (demo)", "law_enforcement", "BS", "+390305550101"),
    ("Servizi sociali di Bergamo (demo)", "social_services", "BG", "+390355550102"),
    ("CAS Cremona (demo)", "reception_centre", "CR", "+390372555010"),
    ("Commissione Territoriale di Brescia (demo)", "commissione_territoriale", "BS", ""),
    ("Pronto soccorso di Pavia (demo)", "health_services", "PV", "+390382555010"),
)


def seed_partners(app: Flask) -> None:
    """A few partners in the served provinces, once (a name already there is left alone)."""
    settings = get_settings(app)
    now = app.extensions["ali.clock"].now()
    added: list[str] = []
    with session_scope(app) as db:
        existing = set(db.scalars(select(Partner.name)))
        for name, kind, province, phones in DEMO_PARTNERS:
            if name in existing or province not in settings.provinces:
                continue
            fields = read_fields(
                name=name, kind=kind, province=province, phones=phones, served=settings.provinces
            )
            create_partner(db, fields, now=now, actor="demo")
            added.append(f"{name} {phones}".strip())
    if added:
        click.echo("Demo partners (their texts and calls go to their province):")
        for line in added:
            click.echo(f"  {line}")


# --- demo cases --------------------------------------------------------------------------------

DEMO_ACTOR = "demo"


@dataclass(frozen=True)
class DemoCase:
    days_ago: float
    status: CaseStatus  # where the case ends up; DISPATCHED: nobody has taken it
    body: dict[str, Any]
    note: str | None = None
    outcome: CaseStatus | None = None  # closed with this outcome


# Per province: three weeks of work. Free text says it is not real.
DEMO_CASES = (
    DemoCase(
        20,
        CaseStatus.IN_CONTACT,
        {"urgency": "emergency", "needs": ["pronta_accoglienza"]},
        outcome=CaseStatus.PLACED,
    ),
    DemoCase(
        17,
        CaseStatus.ACCEPTED,
        {"urgency": "ordinary", "reporter_type": "ngo"},
        outcome=CaseStatus.NOT_PERTINENT,
    ),
    DemoCase(
        14,
        CaseStatus.PLACED,
        {"urgency": "urgent", "exploitation": ["sexual"], "person": {"gender": "female"}},
        "Demo: posto trovato in pronta accoglienza.",
    ),
    DemoCase(12, CaseStatus.NOT_PERTINENT, {"urgency": "ordinary", "reporter_type": "citizen"}),
    DemoCase(11, CaseStatus.OUT_OF_AREA, {"urgency": "urgent", "municipality": "Milano"}),
    DemoCase(10, CaseStatus.REFERRED, {"urgency": "ordinary", "exploitation": ["labour"]}),
    DemoCase(8, CaseStatus.UNREACHABLE, {"urgency": "urgent", "contact_safe": "no"}),
    DemoCase(
        5,
        CaseStatus.IN_CONTACT,
        {"urgency": "urgent", "person": {"minor": "presumed", "age_band": "14-17"}},
        "Demo: incontro fissato con il mediatore.",
    ),
    DemoCase(2, CaseStatus.IN_CONTACT, {"urgency": "ordinary", "contact_safe": "yes"}),
    DemoCase(0.5, CaseStatus.ACCEPTED, {"urgency": "emergency"}),
)
# Only the first province gets one still waiting for someone: it escalates when the worker
# runs (amber, then red), like a real one, through the sandbox.
WAITING = DemoCase(0.01, CaseStatus.DISPATCHED, {"urgency": "urgent"})
_PATH = {
    CaseStatus.ACCEPTED: (),
    CaseStatus.IN_CONTACT: (CaseStatus.IN_CONTACT,),
    CaseStatus.UNREACHABLE: (CaseStatus.UNREACHABLE,),
    CaseStatus.NOT_PERTINENT: (CaseStatus.NOT_PERTINENT,),
    CaseStatus.OUT_OF_AREA: (CaseStatus.OUT_OF_AREA,),
    CaseStatus.PLACED: (CaseStatus.IN_CONTACT, CaseStatus.PLACED),
    CaseStatus.REFERRED: (CaseStatus.IN_CONTACT, CaseStatus.REFERRED),
}


def seed_cases(app: Flask) -> None:
    """Three weeks of cases in every status in every served province, once (a second
    `ali demo` finds them by their author and adds nothing)."""
    settings = get_settings(app)
    now = app.extensions["ali.clock"].now()
    with session_scope(app) as db:
        if db.scalar(select(CaseEvent.id).where(CaseEvent.actor == DEMO_ACTOR).limit(1)):
            click.echo("demo cases already there")
            return
        users = {user.email: user for user in db.scalars(select(User))}
        count = 0
        for index, sigla in enumerate(settings.provinces):
            operator = users.get(f"operatore1.{sigla.lower()}@ali.example")
            if operator is None:
                continue
            plan = (*DEMO_CASES, WAITING) if index == 0 else DEMO_CASES
            for number, spec in enumerate(plan):
                at = now - timedelta(days=spec.days_ago)
                body = {
                    "external_id": DEMO_ACTOR,
                    "province": sigla,
                    "summary": "Caso dimostrativo: nessun dato reale.",
                    **spec.body,
                }
                fields = manual_case_fields(body, now=at, served=settings.provinces).fields
                opened = open_case(
                    db,
                    channel=Channel.MANUAL if number % 2 else Channel.WEBHOOK,
                    brought_by=BroughtBy(actor=DEMO_ACTOR),
                    fields=fields,
                    now=at,
                )
                count += 1
                if spec.status == CaseStatus.DISPATCHED:
                    continue
                _work(db, opened.dispatch_id, operator, spec, at)
        click.echo(f"demo cases: {count} in {len(settings.provinces)} provinces")


def _work(
    db: Session, dispatch_id: int | None, operator: User, spec: DemoCase, at: datetime
) -> None:
    """Take the case and carry it to `spec.status` through the lifecycle, as an operator would."""
    dispatch = db.get(Dispatch, dispatch_id)
    case = db.get(Case, dispatch.case_id) if dispatch is not None else None
    if dispatch is None or case is None:
        return
    answer_alert(db, dispatch, operator, accepting=True, via="web", now=at + timedelta(minutes=4))
    step = at + timedelta(hours=1)
    if spec.note:
        add_note(db, case, spec.note, actor=operator, now=step)
    for status in _PATH[spec.status]:
        step += timedelta(hours=3)
        change_status(db, case, status, actor=operator, now=step)
    if spec.outcome is not None:
        close_with_outcome(db, case, spec.outcome, actor=operator, now=step + timedelta(days=2))


# --- demo shelters and placements ----------------------------------------------------------

# Per province: (code suffix, name, kind, target groups, capacity). Addresses say they are
# not real; the codes mark what `ali demo` made.
DEMO_SHELTERS = (
    ("PA", "Casa Pronta", "pronta_accoglienza", "women;mothers_with_children", 6),
    ("PAU", "Pronta Accoglienza Uomini", "pronta_accoglienza", "men;trans", 4),
    ("RES", "Casa Seconda Accoglienza", "residential", "women;mothers_with_children", 8),
    ("SA", "Appartamento Semi-autonomia", "semi_autonomy", "women", 3),
)
# (days ago the request came, days stayed or None for still there, beds, exit reason)
DEMO_STAYS = (
    (118, 9, 1, ExitReason.MOVED_RESIDENTIAL),
    (104, 3, 2, ExitReason.LEFT_VOLUNTARILY),
    (90, 14, 1, ExitReason.MOVED_SEMI_AUTONOMY),
    (71, 6, 3, ExitReason.ASYLUM_SYSTEM),
    (58, 12, 1, ExitReason.TRANSFERRED_OTHER_PROJECT),
    (41, 2, 1, ExitReason.RETURNED_HOME),
    (30, 8, 2, ExitReason.MOVED_RESIDENTIAL),
    (9, None, 1, None),
    (3, None, 2, None),
)


def seed_shelters(app: Flask) -> None:
    """Shelters in every served province and four months of placements in its pronta
    accoglienza, once (a second `ali demo` finds the demo shelters and adds nothing)."""
    settings = get_settings(app)
    now = app.extensions["ali.clock"].now()
    with session_scope(app) as db:
        if db.scalar(select(Shelter.id).where(Shelter.code.like("DEMO-%")).limit(1)):
            click.echo("demo shelters already there")
            return
        users = {user.email: user for user in db.scalars(select(User))}
        placed = 0
        for sigla in settings.provinces:
            shelters = [
                create_shelter(
                    db,
                    read_shelter_fields(
                        code=f"DEMO-{sigla}-{suffix}",
                        name=f"{name} {sigla}",
                        province=sigla,
                        kind=kind,
                        target_groups=groups,
                        capacity=str(capacity),
                        address=f"Indirizzo dimostrativo {sigla}, non reale",
                        served=settings.provinces,
                    ),
                    now=now,
                    actor=DEMO_ACTOR,
                )
                for suffix, name, kind, groups, capacity in DEMO_SHELTERS
            ]
            operator = users.get(f"operatore1.{sigla.lower()}@ali.example")
            if operator is not None:
                placed += _demo_stays(db, sigla, shelters[0], operator, now)
        click.echo(f"demo shelters: {len(DEMO_SHELTERS)} per province, {placed} placements")


def _demo_stays(db: Session, sigla: str, shelter: Shelter, operator: User, now: datetime) -> int:
    """Placements of demo cases (each case opened and taken as the demo cases are), from the
    request to the check-out; the last ones are still there tonight."""
    settings = get_settings()
    for days_ago, stayed, beds, exit_reason in DEMO_STAYS:
        at = now - timedelta(days=days_ago)
        body = {
            "external_id": DEMO_ACTOR,
            "province": sigla,
            "urgency": "emergency",
            "needs": ["pronta_accoglienza"],
            "summary": "Caso dimostrativo: nessun dato reale.",
        }
        fields = manual_case_fields(body, now=at, served=settings.provinces).fields
        opened = open_case(
            db,
            channel=Channel.WEBHOOK,
            brought_by=BroughtBy(actor=DEMO_ACTOR),
            fields=fields,
            now=at,
        )
        spec = DemoCase(days_ago, CaseStatus.PLACED, {}, outcome=None)
        _work(db, opened.dispatch_id, operator, spec, at)
        case = db.get(Case, opened.case_id)
        if case is None:
            continue
        placement = request_placement(
            db, case, shelter, beds=beds, actor=operator, now=at + timedelta(hours=1)
        )
        confirm_placement(db, placement, actor=operator, now=at + timedelta(hours=2))
        arrived = at + timedelta(hours=4)
        check_in(db, placement, at=arrived, actor=operator, now=arrived)
        set_planned_end(
            db,
            placement,
            (arrived + timedelta(days=15)).date(),
            actor=operator,
            now=arrived,
        )
        if stayed is not None and exit_reason is not None:
            left = arrived + timedelta(days=stayed)
            check_out(db, placement, at=left, exit_reason=exit_reason, actor=operator, now=left)
    return len(DEMO_STAYS)
