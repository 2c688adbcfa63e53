"""`ali sources`: the systems allowed to call the hand-off API, and their secrets;
`ali partners`: the organisations that call or text the project's number;
`ali retention run`: personal data removed once their time is up;
`ali report`: the funder's monthly report."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from core import audit
from core.clock import now as clock_now
from core.config import get_settings
from core.db import get_session
from core.telephony import get_telephony
from intake.models import DEFAULT_RATE_LIMIT, Source
from intake.partners import import_partners
from intake.reports import BadReportRequest, report_for, to_csv, to_json
from intake.retention import run_retention
from intake.services import (
    IssuedSecret,
    SourceError,
    create_source,
    list_sources,
    retire_source_secret,
    rotate_source_secret,
)
from intake.shelters import import_shelters
from oncall.cli import import_csv


@click.group("sources", help="Systems that may call the hand-off API (e.g. numero-verde).")
def sources_group() -> None:
    pass


def _print_secret(issued: IssuedSecret, as_json: bool) -> None:
    # Printed to the terminal once and never logged: Ali keeps only an encrypted copy.
    if as_json:
        click.echo(
            json.dumps({"source": issued.source, "key_id": issued.key_id, "secret": issued.secret})
        )
        return
    click.echo(f"source: {issued.source}")
    click.echo(f"key id: {issued.key_id}")
    click.echo(f"secret: {issued.secret}")
    click.echo("The secret is shown only now: give it to the sender over a safe channel.")


@sources_group.command("add", help="Create a source; prints its key id and secret once.")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the key as JSON.")
@click.option(
    "--rate-limit",
    type=click.IntRange(min=1),
    default=DEFAULT_RATE_LIMIT,
    show_default=True,
    help="Requests a minute this source may make.",
)
@with_appcontext
def add(name: str, as_json: bool, rate_limit: int) -> None:
    session = get_session()
    try:
        issued = create_source(session, name=name, now=clock_now(), rate_limit=rate_limit)
    except SourceError as exc:
        raise click.ClickException(str(exc)) from None
    session.commit()
    _print_secret(issued, as_json)


@sources_group.command("rotate", help="Add a new secret; the old one works until retired.")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the key as JSON.")
@with_appcontext
def rotate(name: str, as_json: bool) -> None:
    session = get_session()
    try:
        issued = rotate_source_secret(session, name=name, now=clock_now())
    except SourceError as exc:
        raise click.ClickException(str(exc)) from None
    session.commit()
    _print_secret(issued, as_json)
    if not as_json:
        click.echo(f"When the sender uses it: ali sources retire-secret {issued.source}")


@sources_group.command("retire-secret", help="Retire a secret (default: the oldest active).")
@click.argument("name")
@click.argument("key_id", required=False)
@with_appcontext
def retire_secret(name: str, key_id: str | None) -> None:
    session = get_session()
    try:
        retired = retire_source_secret(session, name=name, now=clock_now(), key_id=key_id)
    except SourceError as exc:
        raise click.ClickException(str(exc)) from None
    session.commit()
    click.echo(f"retired key id {retired.key_id}")


@sources_group.command("list", help="Sources and their key ids (never the secrets).")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@with_appcontext
def list_(as_json: bool) -> None:
    sources = list_sources(get_session())
    if as_json:
        click.echo(json.dumps([_source_row(source) for source in sources]))
        return
    if not sources:
        click.echo("no sources yet: ali sources add NAME")
    for source in sources:
        state = "active" if source.active else "inactive"
        click.echo(f"{source.name} ({state}, {source.rate_limit}/min)")
        for secret in source.secrets:
            retired = f" retired {secret.retired_at.isoformat()}" if secret.retired_at else ""
            click.echo(f"  {secret.key_id} created {secret.created_at.isoformat()}{retired}")


def _source_row(source: Source) -> dict[str, object]:
    return {
        "name": source.name,
        "active": source.active,
        "rate_limit": source.rate_limit,
        "created_at": source.created_at.isoformat(),
        "key_ids": [
            {
                "key_id": secret.key_id,
                "created_at": secret.created_at.isoformat(),
                "retired_at": secret.retired_at.isoformat() if secret.retired_at else None,
            }
            for secret in source.secrets
        ],
    }


@click.group("partners", help="Partners: organisations that call or text the project's number.")
def partners_group() -> None:
    pass


@partners_group.command("import", help="Create or update partners from a CSV file.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def partners_import(file: Path) -> None:
    """Columns name,kind,province,phones (phones split by ';'); partners are matched by name.

    Nothing is imported when any line is bad; the problems are listed by line number.
    """
    import_csv(file, import_partners, "partners")


@click.group("shelters", help="Shelters (strutture) of the pronta accoglienza log.")
def shelters_group() -> None:
    pass


@shelters_group.command("import", help="Create or update shelters from a CSV file.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def shelters_import(file: Path) -> None:
    """Columns code,name,province,kind,target_groups,capacity,address (target groups split by
    ';'); shelters are matched by code. Nothing is imported when any line is bad."""
    import_csv(file, import_shelters, "shelters")


@click.group("retention", help="Personal data removed once their retention period is over.")
def retention_group() -> None:
    pass


RETENTION_LINES = (
    ("cases_pseudonymised", "closed cases pseudonymised"),
    ("not_pertinent_tombstoned", "non-pertinent hand-offs reduced to a tombstone"),
    ("caseless_callers_forgotten", "caller numbers of calls that opened no case removed"),
    ("raw_texts_emptied", "raw SMS texts emptied"),
    ("recordings_deleted", "partner-line recordings deleted at Twilio"),
)


@retention_group.command("run", help="Pseudonymise and purge what is past its retention period.")
@click.option("--dry-run", is_flag=True, help="Print what would be done; change nothing.")
@with_appcontext
def retention_run(dry_run: bool) -> None:
    counts = run_retention(get_session(), get_telephony(), now=clock_now(), dry_run=dry_run)
    figures = counts.as_dict()
    click.echo("dry run: nothing changed" if dry_run else "retention run done (audited)")
    for key, label in RETENTION_LINES:
        click.echo(f"{figures[key]:>6}  {label}" + (" (would be)" if dry_run else ""))


@click.command("report", help="The month's figures by province, small counts suppressed.")
@click.option("--month", required=True, help="A Europe/Rome month, YYYY-MM.")
@click.option("--province", default=None, help="One province's rows (a sigla, OTHER or ALL).")
@click.option(
    "--format", "output", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@with_appcontext
def report(month: str, province: str | None, output: str) -> None:
    session = get_session()
    try:
        made = report_for(session, month, get_settings().provinces, province)
    except BadReportRequest as exc:
        raise click.BadParameter(
            f"{exc}: give the month as YYYY-MM and a served province's sigla"
        ) from exc
    audit.record(
        session,
        now=clock_now(),
        action="export",
        object_type="report",
        object_id=made.period.label,
        actor="cli",
        detail={"province": province, "format": output, "rows": len(made.rows)},
    )
    session.commit()
    click.echo(to_csv(made) if output == "csv" else to_json(made), nl=output == "json")


def init_app(app: Flask) -> None:
    app.cli.add_command(report)
    app.cli.add_command(sources_group)
    app.cli.add_command(partners_group)
    app.cli.add_command(shelters_group)
    app.cli.add_command(retention_group)
