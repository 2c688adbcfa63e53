"""The audit log: one helper every package uses to record reads and writes, and the
admins' search and CSV export of it (the table itself is append-only in the database)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask, current_app, has_request_context, request
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from core.models import AuditEntry, User


def record(
    session: Session,
    *,
    now: datetime,
    action: str,
    object_type: str,
    object_id: str | int | None = None,
    actor: User | str | None = None,
    fields: Iterable[str] = (),
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry. `fields` names what was touched; never pass personal values."""
    entry = AuditEntry(
        **entry_values(
            now=now,
            action=action,
            object_type=object_type,
            object_id=object_id,
            actor=actor,
            fields=fields,
            detail=detail,
        )
    )
    session.add(entry)
    return entry


def entry_values(
    *,
    now: datetime,
    action: str,
    object_type: str,
    object_id: str | int | None = None,
    actor: User | str | None = None,
    fields: Iterable[str] = (),
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The column values of the entry `record` appends, for a hot path that inserts the row
    with a prebuilt statement (no unit of work). Field NAMES only, never personal values."""
    if isinstance(actor, User):
        actor_id: int | None = actor.id
        label = f"user:{actor.id}"
    else:
        actor_id = None
        label = actor or "system"
    return {
        "at": now,
        "actor_id": actor_id,
        "actor": label,
        "action": action,
        "object_type": object_type,
        "object_id": None if object_id is None else str(object_id),
        "fields": sorted(set(fields)),
        "detail": detail or {},
        "remote_addr": request.remote_addr if has_request_context() else None,
    }


# ---------------------------------------------------------------------------------------
# Reading the log back: the admins' audit viewer and its CSV export.


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to show; instants in UTC, ``end`` excluded."""

    actor_id: int | None = None
    object_type: str | None = None
    object_id: str | None = None
    action: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def as_detail(self) -> dict[str, Any]:
        """The filter as recorded in the export's own audit entry (ids and codes only)."""
        return {
            "actor_id": self.actor_id,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "action": self.action,
            "start": None if self.start is None else self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
        }


def _filtered(query: Select[Any], wanted: AuditFilter) -> Select[Any]:
    if wanted.actor_id is not None:
        query = query.where(AuditEntry.actor_id == wanted.actor_id)
    if wanted.object_type:
        query = query.where(AuditEntry.object_type == wanted.object_type)
    if wanted.object_id:
        query = query.where(AuditEntry.object_id == wanted.object_id)
    if wanted.action:
        query = query.where(AuditEntry.action == wanted.action)
    if wanted.start is not None:
        query = query.where(AuditEntry.at >= wanted.start)
    if wanted.end is not None:
        query = query.where(AuditEntry.at < wanted.end)
    return query


def search(
    session: Session, wanted: AuditFilter, *, page: int, per_page: int
) -> tuple[list[AuditEntry], int]:
    """One page of matching entries, newest first, and how many match in all."""
    total = session.scalar(_filtered(select(func.count(AuditEntry.id)), wanted)) or 0
    rows = session.scalars(
        _filtered(select(AuditEntry), wanted)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .offset(max(page - 1, 0) * per_page)
        .limit(per_page)
    )
    return list(rows), total


def known_values(session: Session) -> tuple[list[str], list[str]]:
    """The object types and actions the log holds, for the viewer's choices."""
    types = session.scalars(
        select(AuditEntry.object_type).distinct().order_by(AuditEntry.object_type)
    )
    actions = session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action))
    return list(types), list(actions)


# The viewer shows a case as its reference, not its row id: features above core register how
# to name their objects (core cannot import them). Labels carry no personal data.
ObjectLabeller = Callable[[Session, list[str]], dict[str, str]]
_LABELLERS_KEY = "ali.audit_labellers"


def register_object_labels(app: Flask, object_type: str, labeller: ObjectLabeller) -> None:
    app.extensions.setdefault(_LABELLERS_KEY, {})[object_type] = labeller


def object_labels(session: Session, entries: Iterable[AuditEntry]) -> dict[tuple[str, str], str]:
    """(object type, object id) -> label, for the entries whose type has a labeller."""
    labellers: dict[str, ObjectLabeller] = current_app.extensions.get(_LABELLERS_KEY, {})
    wanted: dict[str, set[str]] = {}
    for entry in entries:
        if entry.object_id is not None and entry.object_type in labellers:
            wanted.setdefault(entry.object_type, set()).add(entry.object_id)
    return {
        (object_type, object_id): label
        for object_type, ids in wanted.items()
        for object_id, label in labellers[object_type](session, sorted(ids)).items()
    }


CSV_COLUMNS = (
    "id",
    "at",
    "actor_id",
    "actor",
    "action",
    "object_type",
    "object_id",
    "fields",
    "detail",
    "remote_addr",
)
# A cell starting with one of these is a formula to a spreadsheet (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def export_csv(
    session: Session, wanted: AuditFilter, *, actor: User, now: datetime
) -> tuple[str, int]:
    """Every matching entry as CSV (UTC ISO instants), and the count; the export is itself
    an audit entry, written after the rows were read so it does not list itself."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for entry in session.scalars(
        _filtered(select(AuditEntry), wanted).order_by(AuditEntry.at, AuditEntry.id)
    ):
        writer.writerow(
            [
                entry.id,
                entry.at.isoformat(),
                _cell(entry.actor_id),
                _cell(entry.actor),
                _cell(entry.action),
                _cell(entry.object_type),
                _cell(entry.object_id),
                _cell(";".join(entry.fields)),
                _cell(json.dumps(entry.detail, sort_keys=True, ensure_ascii=False)),
                _cell(entry.remote_addr),
            ]
        )
        count += 1
    record(
        session,
        now=now,
        action="export",
        object_type="audit_log",
        actor=actor,
        detail={"rows": count, "filter": wanted.as_detail()},
    )
    return out.getvalue(), count
