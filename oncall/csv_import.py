"""Imports of operators and rotas from spreadsheet CSV files: all lines or none."""

# What a rota manager's export looks like, and what is done about it:
# * Excel adds a UTF-8 byte order mark, or saves in Windows-1252 ("CSV (delimitato dal
#   separatore di elenco)"), or UTF-16 ("Testo Unicode", tab-separated): all three are read.
# * Italian Excel separates fields with ";" (the comma is the decimal mark): the separator is
#   whichever of "," ";" and tab makes the header the expected one. List cells (provinces,
#   roles, languages) are split on ";" as the contract says, and on "," too, so a list works
#   in a ";"-separated file once quoted, or written with commas.
# * Blank lines and rows of empty cells (";;;;" left by Excel) are skipped anywhere; trailing
#   empty cells are ignored; columns beyond the contract are ignored and named in the output.
# * Dates as ISO ("2026-10-25T02:30", "2026-10-25 02:30") or as Italians type them
#   ("25/10/2026 02:30"), in Europe/Rome wall-clock time; "24:00" is the midnight that ends a
#   day. A wall-clock time that does not exist (spring forward) or happens twice (fall back)
#   is an error naming the line, unless an offset says which instant is meant ("+02:00");
#   core.formatting's parser reads them, the same that reads `ali rota who --at`.
# Every problem is reported as "line N: ..." with the physical line of the file, and the
# caller imports nothing when there is any.

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import audit
from core.formatting import LocalTimeError, format_stamp, parse_instant
from core.models import Role, User
from core.phones import InvalidPhone, normalise_phone
from core.provinces import lookup_province
from core.text import has_control
from oncall.editing import RotaError, add_shift, why_not_on_rota
from oncall.models import RotaShift
from oncall.rules import scopes_of_operator
from oncall.schedule import Tier

OPERATOR_COLUMNS = ("name", "email", "phone", "provinces", "roles", "languages")
ROTA_COLUMNS = ("province", "tier", "operator_email", "start", "end")
# Admins are made with `ali users create`; a spreadsheet must not grant or revoke that power.
IMPORTABLE_ROLES = (Role.OPERATOR.value, Role.ROTA_MANAGER.value, Role.COORDINATOR.value)

_DELIMITERS = (",", ";", "\t")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


# ---------------------------------------------------------------------------------------
# Reading a spreadsheet export


@dataclass
class CsvTable:
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


def decode(data: bytes) -> str:
    """Text of a file as Excel and LibreOffice write it (UTF-8 with or without BOM, UTF-16,
    or Windows-1252)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _column_name(cell: str) -> str:
    return cell.strip().strip("\ufeff").strip().lower().replace(" ", "_")


def _clean(cell: str) -> str:
    return cell.replace("\u00a0", " ").strip()


def read_csv(data: bytes | str, columns: Sequence[str]) -> CsvTable:
    """The rows of a CSV with the given columns (in any order), keyed by column name, with
    their physical line numbers; problems of the file itself in ``errors``."""
    text = decode(data) if isinstance(data, bytes) else data.lstrip("\ufeff")
    table = CsvTable()
    lines = text.splitlines()
    header_index = next((i for i, line in enumerate(lines) if line.strip(" ,;\t")), None)
    if header_index is None:
        table.errors.append("line 1: the file is empty; its first line must name the columns")
        return table
    header_line = lines[header_index]
    delimiter, names = None, [_column_name(c) for c in next(csv.reader([header_line]))]
    for candidate in _DELIMITERS:
        candidate_names = [
            _column_name(c) for c in next(csv.reader([header_line], delimiter=candidate))
        ]
        if set(columns) <= set(candidate_names):
            delimiter, names = candidate, candidate_names
            break
    if delimiter is None:
        missing = [c for c in columns if c not in names]
        table.errors.append(
            f"line {header_index + 1}: the first line must name the columns "
            f"{','.join(columns)} (missing: {', '.join(missing)})"
        )
        return table
    duplicated = sorted({n for n in names if n in columns and names.count(n) > 1})
    if duplicated:
        table.errors.append(
            f"line {header_index + 1}: the column {', '.join(duplicated)} appears twice"
        )
        return table
    table.ignored_columns = [n for n in names if n and n not in columns]
    width = max(i for i, n in enumerate(names) if n) + 1
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    previous_end = 0
    records = iter(reader)
    while True:
        line = previous_end + 1
        try:
            record = next(records)
        except StopIteration:
            break
        except csv.Error as exc:
            # A quote opened and never closed swallows the rest of the file into one cell
            # until it exceeds the csv module's limit: name where that cell began.
            table.errors.append(
                f"line {line}: the file cannot be read from here ({exc}); "
                "is a value's closing quote (\") missing?"
            )
            break
        previous_end = reader.line_num
        if line <= header_index + 1:
            continue
        cells = [_clean(c) for c in record]
        if not any(cells):
            continue
        if any(cells[width:]):
            table.errors.append(
                f"line {line}: {len(cells)} fields where the header has {width} "
                f"(is a value containing {delimiter!r} missing its quotes?)"
            )
            continue
        cells += [""] * (width - len(cells))
        holding = [n for i, n in enumerate(names[:width]) if n in columns and has_control(cells[i])]
        if holding:
            # NUL would fail on PostgreSQL, and no control character is part of a name or date.
            table.errors.append(
                f"line {line}: {', '.join(holding)} contains control characters (invisible "
                "characters that are not text); remove them"
            )
            continue
        table.rows.append(
            (line, {name: cells[i] for i, name in enumerate(names[:width]) if name in columns})
        )
    return table


def split_list(cell: str) -> list[str]:
    return [part.strip() for part in re.split(r"[;,]", cell) if part.strip()]


@dataclass
class ImportReport:
    errors: list[str] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    notes: list[str] = field(default_factory=list)
    # What the import did to each person, one line each ("a@b.it: roles operator -> ...").
    changes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class Importer(Protocol):
    """import_operators and import_rota: flush the file's rows, report, never commit."""

    def __call__(
        self,
        session: Session,
        data: bytes | str,
        *,
        now: datetime,
        actor: User | str | None,
        served: Collection[str],
    ) -> ImportReport: ...


def _start_import(data: bytes | str, columns: Sequence[str]) -> tuple[ImportReport, CsvTable]:
    """The file's rows, and a report that already holds the problems of the file itself."""
    report = ImportReport()
    table = read_csv(data, columns)
    report.errors.extend(table.errors)
    if table.ignored_columns:
        report.notes.append(f"ignored columns: {', '.join(table.ignored_columns)}")
    return report, table


# ---------------------------------------------------------------------------------------
# Operators


@dataclass
class _OperatorRow:
    line: int
    name: str
    email: str
    phone: str | None
    provinces: list[str]
    roles: list[str]
    languages: list[str]


def _parse_provinces(cell: str, served: Collection[str]) -> tuple[list[str], list[str]]:
    provinces: list[str] = []
    problems: list[str] = []
    for item in split_list(cell):
        province = lookup_province(item)
        if province is None:
            problems.append(f"{item!r} is not a province")
        elif province.sigla not in served:
            problems.append(f"{province.sigla} is not a province served by this project")
        elif province.sigla not in provinces:
            provinces.append(province.sigla)
    return provinces, problems


def _parse_roles(cell: str) -> tuple[list[str], list[str]]:
    roles = list(dict.fromkeys(r.lower() for r in split_list(cell))) or [Role.OPERATOR.value]
    problems: list[str] = []
    for role in roles:
        if role == Role.ADMIN.value:
            problems.append("the admin role is given with `ali users create`, not by import")
        elif role not in IMPORTABLE_ROLES:
            problems.append(f"{role!r} is not a role (use {', '.join(IMPORTABLE_ROLES)})")
    return roles, problems


def _parse_operator(
    line: int, row: dict[str, str], served: Collection[str]
) -> tuple[_OperatorRow | None, list[str]]:
    problems: list[str] = []
    name = row["name"]
    if not name:
        problems.append("the name is empty")
    elif len(name) > 120:
        problems.append("the name is longer than 120 characters")
    email = row["email"].lower()
    if not _EMAIL.match(email) or len(email) > 254:
        problems.append(f"{row['email']!r} is not an e-mail address")
    phone: str | None = None
    if row["phone"]:
        try:
            phone = normalise_phone(row["phone"])
        except InvalidPhone as exc:
            problems.append(f"phone: {exc}")
    provinces, province_problems = _parse_provinces(row["provinces"], served)
    roles, role_problems = _parse_roles(row["roles"])
    problems += province_problems + role_problems
    if not row["provinces"] and Role.COORDINATOR.value not in roles:
        problems.append("provinces is empty (an operator needs at least one province)")
    languages = list(dict.fromkeys(code.lower() for code in split_list(row["languages"])))
    bad_languages = [code for code in languages if not _LANGUAGE.match(code)]
    if bad_languages:
        problems.append(
            f"{', '.join(bad_languages)}: languages are ISO codes such as it, en, fr, ro"
        )
    if problems:
        return None, problems
    return _OperatorRow(line, name, email, phone, provinces, roles, languages), []


def import_operators(
    session: Session,
    data: bytes | str,
    *,
    now: datetime,
    actor: User | str | None,
    served: Collection[str],
) -> ImportReport:
    """Create or update users from an operators CSV. Flushes, never commits: the caller
    commits only when ``report.ok`` (any bad line means nothing is imported).

    Updating replaces name, provinces, roles (admin is kept, never granted) and languages; an
    empty phone cell keeps the stored phone; a new phone must be verified again. Users are
    matched by e-mail, ignoring case.
    """
    report, table = _start_import(data, OPERATOR_COLUMNS)
    parsed: list[_OperatorRow] = []
    first_line: dict[str, int] = {}
    for line, row in table.rows:
        operator, problems = _parse_operator(line, row, served)
        report.errors.extend(f"line {line}: {problem}" for problem in problems)
        email = row["email"].lower()
        if email in first_line:
            report.errors.append(f"line {line}: {email} is already on line {first_line[email]}")
        else:
            first_line[email] = line
        if operator is not None:
            parsed.append(operator)
    if not table.rows and not report.errors:
        report.errors.append("the file has no operators after its header line")
    if report.errors:
        return report
    existing = {
        user.email.lower(): user
        for user in session.scalars(
            select(User).where(func.lower(User.email).in_([o.email for o in parsed]))
        )
    }
    no_phone = 0
    for operator in parsed:
        user = _store_operator(
            session, existing.get(operator.email), operator, now=now, actor=actor, report=report
        )
        report.errors.extend(
            f"line {operator.line}: {problem}" for problem in _rotas_refusing(session, user, now)
        )
        if user.phone is None:
            no_phone += 1
    if report.errors:
        report.changes.clear()
        return report
    if no_phone:
        report.notes.append(f"{no_phone} operator(s) have no phone number and cannot be paged")
    return report


def _store_operator(
    session: Session,
    user: User | None,
    operator: _OperatorRow,
    *,
    now: datetime,
    actor: User | str | None,
    report: ImportReport,
) -> User:
    detail = {"via": "operators import", "line": operator.line}
    if user is None:
        user = User(
            email=operator.email,
            display_name=operator.name,
            phone=operator.phone,
            roles=operator.roles,
            provinces=operator.provinces,
            languages=operator.languages,
            created_at=now,
        )
        session.add(user)
        session.flush()
        report.created += 1
        report.changes.append(
            f"{user.email}: created, roles {','.join(user.roles)}, "
            f"provinces {','.join(user.provinces) or '-'}"
        )
        audit.record(
            session,
            now=now,
            action="create",
            object_type="user",
            object_id=user.id,
            actor=actor,
            fields=["display_name", "email", "phone", "provinces", "roles", "languages"],
            detail=detail,
        )
        return user
    before: dict[str, list[str]] = {
        "roles": list(user.roles),
        "provinces": list(user.provinces),
        "languages": list(user.languages),
    }
    changed = _update_user(user, operator)
    if changed:
        report.updated += 1
        report.changes.append(_describe(user, before, changed))
        audit.record(
            session,
            now=now,
            action="update",
            object_type="user",
            object_id=user.id,
            actor=actor,
            fields=changed,
            detail=detail,
        )
    else:
        report.unchanged += 1
    if not user.active:
        report.notes.append(f"line {operator.line}: {operator.email} is deactivated and stays so")
    return user


# Far enough ahead for every rota rule that will ever hold an instant (rotations without an
# end date are found whatever the horizon).
_ROTA_HORIZON = timedelta(days=3660)


def _rotas_refusing(session: Session, user: User, now: datetime) -> list[str]:
    """The rota tiers, from now on, that the user's new roles or provinces no longer allow:
    leaving them there would keep them in the chain the router pages while the rota pages
    refuse them. Taking someone off a rota is an explicit rota edit, never a side effect."""
    if not user.active or user.id is None:
        return []
    problems = []
    for province, tier in scopes_of_operator(session, user.id, now, now + _ROTA_HORIZON):
        reason = why_not_on_rota(user, province, tier)
        if reason is not None:
            rota = (
                "the coordinators' rota" if province is None else f"the {tier} rota of {province}"
            )
            problems.append(
                f"{user.display_name} <{user.email}> is on {rota}, which the new roles or "
                f"provinces no longer allow ({reason.rstrip('.')}): take them off that rota "
                "first, then import again"
            )
    return problems


def _describe(user: User, before: dict[str, list[str]], changed: list[str]) -> str:
    """One line of the import's output: field names and, where they are no secret, values
    (never the phone number itself)."""
    parts = []
    for name in changed:
        if name in {"roles", "provinces", "languages"}:
            old = ",".join(sorted(before[name])) or "-"
            new = ",".join(sorted(getattr(user, name))) or "-"
            parts.append(f"{name} {old} -> {new}")
        elif name == "phone":
            parts.append("phone changed (to be verified again)")
        elif name == "display_name":
            parts.append("name changed")
    return f"{user.email}: " + "; ".join(parts)


def _update_user(user: User, operator: _OperatorRow) -> list[str]:
    changed: list[str] = []
    if user.display_name != operator.name:
        user.display_name = operator.name
        changed.append("display_name")
    if operator.phone is not None and operator.phone != user.phone:
        user.phone = operator.phone
        # A number nobody has proved to be theirs must not receive pages as if verified.
        user.phone_verified_at = None
        changed.extend(["phone", "phone_verified_at"])
        if user.sms_opted_out_at is not None:  # the STOP came from the old number
            user.sms_opted_out_at = None
            changed.append("sms_opted_out_at")
    if sorted(user.provinces) != sorted(operator.provinces):
        user.provinces = operator.provinces
        changed.append("provinces")
    roles = operator.roles + ([Role.ADMIN.value] if Role.ADMIN.value in user.roles else [])
    if sorted(user.roles) != sorted(roles):
        user.roles = roles
        changed.append("roles")
    if user.languages != operator.languages:
        user.languages = operator.languages
        changed.append("languages")
    return changed


# ---------------------------------------------------------------------------------------
# Rota


@dataclass
class _ShiftRow:
    line: int
    province: str | None
    tier: Tier
    email: str
    start: datetime
    end: datetime


def _parse_shift(line: int, row: dict[str, str]) -> tuple[_ShiftRow | None, list[str]]:
    problems: list[str] = []
    tier: Tier | None = None
    try:
        tier = Tier(row["tier"].lower())
    except ValueError:
        problems.append(f"tier {row['tier']!r} is not primary, backup or coordinator")
    province: str | None = row["province"].upper() or None
    if province is not None:
        found = lookup_province(province)
        province = found.sigla if found is not None else province
    if tier is not None and tier is not Tier.COORDINATOR and province is None:
        problems.append("the province is empty")
    email = row["operator_email"].lower()
    if not email:
        problems.append("operator_email is empty")
    instants: dict[str, datetime] = {}
    for column in ("start", "end"):
        if not row[column]:
            problems.append(f"{column} is empty")
            continue
        try:
            instants[column] = parse_instant(row[column])
        except LocalTimeError as exc:
            problems.append(f"{column}: {exc}")
    if len(instants) == 2 and instants["end"] <= instants["start"]:
        problems.append("end is not after start")
    if problems or tier is None:
        return None, problems
    return _ShiftRow(line, province, tier, email, instants["start"], instants["end"]), []


def import_rota(
    session: Session,
    data: bytes | str,
    *,
    now: datetime,
    actor: User | str | None,
    served: Collection[str],
) -> ImportReport:
    """Explicit shifts from a rota CSV. Flushes, never commits: the caller commits only when
    ``report.ok``. A row identical to a stored shift is skipped (re-importing a file is
    harmless); rows of one province and tier must not overlap each other."""
    report, table = _start_import(data, ROTA_COLUMNS)
    parsed: list[_ShiftRow] = []
    for line, row in table.rows:
        shift, problems = _parse_shift(line, row)
        report.errors.extend(f"line {line}: {problem}" for problem in problems)
        if shift is not None:
            parsed.append(shift)
    if not table.rows and not report.errors:
        report.errors.append("the file has no shifts after its header line")
    _report_overlaps(parsed, report)
    users = {
        user.email.lower(): user
        for user in session.scalars(
            select(User).where(func.lower(User.email).in_({s.email for s in parsed}))
        )
    }
    to_add: list[tuple[_ShiftRow, User]] = []
    for shift in parsed:
        user = users.get(shift.email)
        if user is None:
            report.errors.append(
                f"line {shift.line}: no user has the e-mail {shift.email} "
                "(import it with `ali operators import` first)"
            )
        else:
            to_add.append((shift, user))
    # Rows are added even when some line is bad, so that every problem is reported at once
    # (the operator checks happen in add_shift); the caller then rolls everything back.
    for shift, user in to_add:
        if report.ok and _already_stored(session, shift, user):
            report.unchanged += 1
            continue
        try:
            add_shift(
                session,
                actor=actor,
                now=now,
                province=shift.province,
                tier=shift.tier,
                user_id=user.id,
                start=shift.start,
                end=shift.end,
                served=served,
            )
        except RotaError as exc:
            report.errors.append(f"line {shift.line}: {exc.message}")
        else:
            report.created += 1
    report.errors.sort(key=_line_number)
    return report


def _report_overlaps(parsed: Sequence[_ShiftRow], report: ImportReport) -> None:
    by_scope: dict[tuple[str | None, Tier], list[_ShiftRow]] = {}
    for shift in parsed:
        scope = (None if shift.tier is Tier.COORDINATOR else shift.province, shift.tier)
        by_scope.setdefault(scope, []).append(shift)
    for (province, tier), shifts in by_scope.items():
        shifts.sort(key=lambda s: (s.start, s.line))
        latest = shifts[0]
        for shift in shifts[1:]:
            if shift.start < latest.end:
                where = f"{province} {tier.value}" if province else tier.value
                report.errors.append(
                    f"line {shift.line}: overlaps line {latest.line} ({where} until "
                    f"{format_stamp(latest.end)})"
                )
            if shift.end > latest.end:
                latest = shift


def _line_number(message: str) -> int:
    match = re.match(r"line (\d+):", message)
    return int(match.group(1)) if match else 0


def _already_stored(session: Session, shift: _ShiftRow, user: User) -> bool:
    province_clause = (
        RotaShift.province.is_(None)
        if shift.province is None
        else RotaShift.province == shift.province
    )
    return (
        session.scalar(
            select(RotaShift.id).where(
                province_clause,
                RotaShift.tier == shift.tier.value,
                RotaShift.user_id == user.id,
                RotaShift.start_at == shift.start,
                RotaShift.end_at == shift.end,
            )
        )
        is not None
    )
