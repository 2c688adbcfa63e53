"""Provider status callbacks folded into one monotonic status per message or call."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flask import Flask
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.models import DeliveryStatus

# Twilio may deliver callbacks late and out of order; a late "sent" must never
# overwrite "delivered", so each status has a rank and only a higher rank moves forward.
_MESSAGE_RANK = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "read": 5,
    "undelivered": 4,
    "failed": 4,
    "canceled": 4,
}
_CALL_RANK = {
    "queued": 1,
    "initiated": 2,
    "ringing": 3,
    "in-progress": 4,
    "answered": 4,
    "completed": 5,
    "busy": 5,
    "no-answer": 5,
    "canceled": 5,
    "failed": 5,
}
TERMINAL_FAILURES = frozenset({"undelivered", "failed", "busy", "no-answer", "canceled"})


class UnknownStatus(ValueError):
    """A status value Twilio does not document."""


def kind_of(sid: str) -> str:
    return "call" if sid.startswith("CA") else "sms"


def record_status(
    session: Session,
    *,
    sid: str,
    status: str,
    now: datetime,
    error_code: int | None = None,
    answered_by: str | None = None,
) -> DeliveryStatus:
    """Apply one callback; returns the row with the status that now holds."""
    kind = kind_of(sid)
    ranks = _CALL_RANK if kind == "call" else _MESSAGE_RANK
    status = status.strip().lower()
    if status not in ranks:
        raise UnknownStatus(status)
    row = session.get(DeliveryStatus, sid, with_for_update=True)
    event = {"status": status, "at": now.isoformat()}
    if row is None:
        first = DeliveryStatus(
            sid=sid,
            kind=kind,
            status=status,
            error_code=error_code,
            answered_by=answered_by,
            history=[event],
            updated_at=now,
        )
        try:
            with session.begin_nested():
                session.add(first)
        except IntegrityError:
            # Twilio sent two callbacks for a new sid at once and the other one inserted
            # first (PostgreSQL: FOR UPDATE cannot lock a row that does not exist yet).
            row = session.get(DeliveryStatus, sid, with_for_update=True, populate_existing=True)
            if row is None:
                raise
        else:
            return first
    row.history = [*row.history, event]
    if ranks[status] > ranks.get(row.status, -1):
        row.status = status
        row.updated_at = now
        if error_code is not None:
            row.error_code = error_code
    if answered_by:
        row.answered_by = answered_by
    return row


# A feature that sent something learns its outcome through a listener, called in the
# callback's transaction: core never imports the features (routing registers its pages).
StatusListener = Callable[[Session, DeliveryStatus, datetime], None]


def add_status_listener(app: Flask, listener: StatusListener) -> None:
    app.extensions.setdefault("ali.status_listeners", []).append(listener)


def notify_listeners(app: Flask, session: Session, row: DeliveryStatus, now: datetime) -> None:
    for listener in app.extensions.get("ali.status_listeners", []):
        listener(session, row, now)
