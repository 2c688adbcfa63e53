"""The audit log: one helper every package uses to record reads and writes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from flask import has_request_context, request
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
