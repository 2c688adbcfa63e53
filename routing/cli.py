"""`ali policies`: show, set and preview the escalation policies (design §4 JSON)."""

# Exit statuses as in oncall.cli: 0 done; 1 the file is wrong and nothing changed; 2 usage.

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

import click
from flask import Flask
from flask.cli import with_appcontext
from flask_babel import force_locale

from core.clock import now as clock_now
from core.config import get_settings
from core.db import get_session
from core.formatting import format_stamp
from routing.models import Urgency
from routing.policies import (
    PoliciesInvalid,
    current_policies,
    preview_escalation,
    replace_policies,
    validate_policies,
)

CLI_ACTOR = "cli"
# The terminal speaks English, as the other command groups do.
CLI_LOCALE = "en"


def _read_policies(file: Path) -> Any:
    """The file's JSON, or exit 1 saying where it is not JSON."""
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        click.echo(f"{file}: not UTF-8 text; nothing changed", err=True)
    except json.JSONDecodeError as exc:
        click.echo(
            f"{file}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); nothing changed",
            err=True,
        )
    raise click.exceptions.Exit(1)


def _refuse(exc: PoliciesInvalid) -> NoReturn:
    for problem in exc.problems:
        click.echo(str(problem), err=True)
    click.echo(f"nothing changed: {len(exc.problems)} problem(s)", err=True)
    raise click.exceptions.Exit(1)


@click.group("policies", help="Escalation policies per urgency.")
def policies_group() -> None:
    pass


@policies_group.command("show", help="Print the policies as JSON (what `set` takes).")
@with_appcontext
def policies_show() -> None:
    click.echo(json.dumps(current_policies(get_session()), indent=2, ensure_ascii=False))


@policies_group.command("set", help="Validate FILE.json, then replace every policy with it.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def policies_set(file: Path) -> None:
    """All or nothing: a file with any problem changes nothing and each problem is listed.
    Dispatches already open keep the policy they started with."""
    raw = _read_policies(file)
    session = get_session()
    try:
        with force_locale(CLI_LOCALE):
            replace_policies(session, raw, actor=CLI_ACTOR, now=clock_now())
    except PoliciesInvalid as exc:
        session.rollback()
        _refuse(exc)
    session.commit()
    click.echo("policies replaced; open dispatches keep the policy they started with")


@policies_group.command("preview", help="What an unanswered case opened now would go through.")
@click.option("--province", required=True, help="A served province's sigla (e.g. BS).")
@click.option(
    "--urgency",
    type=click.Choice([u.value for u in Urgency]),
    default=Urgency.EMERGENCY.value,
    show_default=True,
)
@click.option(
    "--file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Preview the policies of this file instead of the stored ones.",
)
@with_appcontext
def policies_preview(province: str, urgency: str, file: Path | None) -> None:
    sigla = province.strip().upper()
    if sigla not in get_settings().provinces:
        raise click.BadParameter(f"{sigla} is not a served province", param_hint="--province")
    session = get_session()
    if file is None:
        policies = current_policies(session)
    else:
        try:
            with force_locale(CLI_LOCALE):
                policies = validate_policies(_read_policies(file))
        except PoliciesInvalid as exc:
            _refuse(exc)
    preview = preview_escalation(session, policies[urgency], province=sigla, now=clock_now())
    for step in preview.steps:
        who = "; ".join(
            f"{tier.target.value}: {', '.join(tier.names) or 'nobody reachable (skipped)'}"
            for tier in step.tiers
        )
        channels = "+".join(c.value for c in step.channels)
        click.echo(f"{format_stamp(step.at)}  step {step.number} ({channels})  {who}")
    click.echo(f"{format_stamp(preview.unanswered_at)}  unanswered: coordinators alerted")


def init_app(app: Flask) -> None:
    app.cli.add_command(policies_group)
