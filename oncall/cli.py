"""`ali operators` and `ali rota` commands."""

# Exit statuses: 0 done; 1 the command ran and found something wrong (a bad CSV line, a gap:
# monitoring scripts rely on it); 2 the command line itself is wrong (click's usage errors).

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta
from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext
from sqlalchemy import func, select

from core import audit
from core.auth import hash_password
from core.cli import ask_password
from core.clock import now as clock_now
from core.config import get_settings
from core.db import get_session
from core.formatting import (
    LocalTime,
    LocalTimeError,
    format_clock,
    format_duration,
    format_stamp,
    parse_local_time,
)
from core.models import User, users_by_id
from oncall.chain import OnCallChain, all_conflicts, all_gaps, on_call_chain
from oncall.csv_import import Importer, ImportReport, import_operators, import_rota

CLI_ACTOR = "cli"
# The terminal speaks English (the operators' messages are in the CSV's and the users' own).
CLI_LOCALE = "en"


def _province_option(value: str | None) -> str | None:
    if value is None:
        return None
    sigla = value.strip().upper()
    served = get_settings().provinces
    if sigla not in served:
        raise click.BadParameter(
            f"{sigla} is not a served province (served: {', '.join(served)})",
            param_hint="--province",
        )
    return sigla


def import_csv(file: Path, importer: Importer, what: str) -> ImportReport:
    """Import a CSV file; commit when every line is good, otherwise roll back, list the
    lines and exit 1."""
    session = get_session()
    report = importer(
        session,
        file.read_bytes(),
        now=clock_now(),
        actor=CLI_ACTOR,
        served=get_settings().provinces,
    )
    for note in report.notes:
        click.echo(f"note: {note}")
    if not report.ok:
        session.rollback()
        for error in report.errors:
            click.echo(error, err=True)
        click.echo(
            f"nothing imported: {len(report.errors)} problem(s); fix them and import again",
            err=True,
        )
        raise click.exceptions.Exit(1)
    session.commit()
    for change in report.changes:
        click.echo(change)
    click.echo(
        f"{what}: {report.created} created, {report.updated} updated, "
        f"{report.unchanged} already up to date"
    )
    return report


# ---------------------------------------------------------------------------------------
# ali operators


@click.group("operators", help="Operators: import them from a spreadsheet.")
def operators_group() -> None:
    pass


@operators_group.command("import", help="Create or update users from a CSV file.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def operators_import(file: Path) -> None:
    """Columns name,email,phone,provinces,roles,languages (lists split by ';').

    Nothing is imported when any line is bad. Imported users have no password: give them
    one with `ali operators set-password EMAIL`.
    """
    if import_csv(file, import_operators, "operators").created:
        click.echo(
            "new users have no password and cannot log in yet: "
            "set one with `ali operators set-password EMAIL`"
        )


@operators_group.command("set-password", help="Set a user's password (prompted or generated).")
@click.argument("email")
@click.option("--generate-password", is_flag=True, help="Generate one and print it once.")
@with_appcontext
def operators_set_password(email: str, generate_password: bool) -> None:
    session = get_session()
    user = session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    if user is None:
        raise click.ClickException(f"no user has the e-mail {email.strip().lower()}")
    password = ask_password(generate=generate_password, personal=(user.email, user.display_name))
    user.password_hash = hash_password(password)
    # Every session opened with the old password ends.
    user.new_session_token()
    audit.record(
        session,
        now=clock_now(),
        action="update",
        object_type="user",
        object_id=user.id,
        actor=CLI_ACTOR,
        fields=["password_hash"],
    )
    session.commit()
    click.echo(f"password set for user {user.id} <{user.email}>")
    if generate_password:
        click.echo(f"password: {password}")


# ---------------------------------------------------------------------------------------
# ali rota


@click.group("rota", help="The on-call rota: import shifts, who is on call, gaps.")
def rota_group() -> None:
    pass


@rota_group.command("import", help="Add explicit shifts from a CSV file.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def rota_import(file: Path) -> None:
    """Columns province,tier,operator_email,start,end; times in Europe/Rome local time.

    A time repeated by the autumn change needs its offset (2026-10-25T02:30+02:00 is the
    first, +01:00 the second); nothing is imported when any line is bad.
    """
    import_csv(file, import_rota, "shifts")


def _person(user: User | None) -> str:
    if user is None:
        return "nobody"
    if user.phone is None:
        phone = "no phone number"
    elif user.phone_verified_at is None:
        phone = f"{user.phone} (not verified)"
    else:
        phone = user.phone
    return f"{user.display_name}  {phone}"


def _print_chain(chain: OnCallChain) -> None:
    click.echo(f"{chain.province} on call at {format_stamp(chain.at)}:")
    click.echo(f"  primary:     {_person(chain.primary)}")
    click.echo(f"  backup:      {_person(chain.backup)}")
    if not chain.coordinators:
        click.echo(f"  coordinator: {_person(None)}")
    for coordinator in chain.coordinators:
        click.echo(f"  coordinator: {_person(coordinator)}")


def _parse_at(value: str | None) -> LocalTime | None:
    if value is None:
        return None
    try:
        return parse_local_time(value)
    except LocalTimeError as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from None


@rota_group.command("who", help="Who is on call in a province: primary, backup, coordinators.")
@click.option("--province", required=True, help="Sigla of a served province, e.g. BS.")
@click.option(
    "--at",
    "at_text",
    default=None,
    help="Local time in Europe/Rome (2026-10-25T02:30) or with an offset (+01:00); "
    "default now. A time that happens twice shows the first, then the second.",
)
@with_appcontext
def rota_who(province: str, at_text: str | None) -> None:
    sigla = _province_option(province)
    assert sigla is not None  # noqa: S101 -- the option is required
    local = _parse_at(at_text)
    session = get_session()
    instants = [clock_now()] if local is None else list(local.occurrences)
    if local is not None and local.ambiguous:
        first, second = (format_stamp(o) for o in local.occurrences)
        stamp = format_clock(local.wall.time(), locale=CLI_LOCALE)
        click.echo(
            f"{stamp} occurs twice on {local.wall.date().isoformat()}: first {first}, "
            f"then {second}; showing both (use +02:00 or +01:00 to ask for one)"
        )
    for index, instant in enumerate(instants):
        if index:
            click.echo("")
        _print_chain(on_call_chain(session, province=sigla, at=instant))
    # Phone numbers were shown: an access to personal data, so it is on the record.
    audit.record(
        session,
        now=clock_now(),
        action="read",
        object_type="on_call_chain",
        object_id=sigla,
        actor=CLI_ACTOR,
        fields=["display_name", "phone"],
        detail={"at": [i.isoformat() for i in instants]},
    )
    session.commit()


@rota_group.command(
    "gaps",
    help="Times with no primary on call, and conflicts (one person primary and backup at "
    "once); exit status 1 when any.",
)
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 366))
@click.option("--province", default=None, help="Only this served province (default: all).")
@with_appcontext
def rota_gaps(days: int, province: str | None) -> None:
    sigla = _province_option(province)
    provinces: Collection[str] = [sigla] if sigla else get_settings().provinces
    start = clock_now()
    end = start + timedelta(days=days)
    session = get_session()
    found = all_gaps(session, provinces=list(provinces), start=start, end=end)
    clashes = all_conflicts(session, provinces=list(provinces), start=start, end=end)
    users = users_by_id(session, {c.operator_id for cs in clashes.values() for c in cs})
    session.rollback()
    total = 0
    for name in provinces:
        intervals = found[name]
        total += len(intervals) + len(clashes[name])
        if not intervals:
            click.echo(f"{name}: no gaps until {format_stamp(end)}")
        else:
            click.echo(f"{name}: {len(intervals)} gap(s)")
        for gap_start, gap_end in intervals:
            length = format_duration(gap_end - gap_start, CLI_LOCALE)
            click.echo(f"  {format_stamp(gap_start)} -> {format_stamp(gap_end)}  ({length})")
        if clashes[name]:
            click.echo(f"{name}: {len(clashes[name])} conflict(s): primary and backup at once")
        for clash in clashes[name]:
            user = users.get(clash.operator_id)
            who = user.display_name if user is not None else f"user {clash.operator_id}"
            click.echo(f"  {format_stamp(clash.start)} -> {format_stamp(clash.end)}  {who}")
    if total:
        raise click.exceptions.Exit(1)


def init_app(app: Flask) -> None:
    """Registers the command groups."""
    app.cli.add_command(operators_group)
    app.cli.add_command(rota_group)
