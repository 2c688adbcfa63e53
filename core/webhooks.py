"""Twilio-signed endpoints of the infrastructure: message and call status callbacks."""

from __future__ import annotations

import logging
import re

from flask import Blueprint, Response, current_app, request

from core.accesslog import logged_path
from core.clock import now as clock_now
from core.db import get_session
from core.delivery import UnknownStatus, notify_listeners, record_status
from core.twilio import twilio_signed

log = logging.getLogger(__name__)
bp = Blueprint("twilio_core", __name__, url_prefix="/twilio")

# Twilio's ids are two letters and 32 hex digits; anything else would not fit the column.
TWILIO_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")
ANSWERED_BY = frozenset(
    {
        "human",
        "machine_start",
        "machine_end_beep",
        "machine_end_silence",
        "machine_end_other",
        "fax",
        "unknown",
    }
)


def _error_code(value: str | None) -> int | None:
    """Twilio's error codes are five-digit numbers; anything else is dropped, never a 500."""
    try:
        code = int(value) if value else None
    except ValueError:
        return None
    return code if code is not None and 0 <= code < 1_000_000 else None


@bp.post("/status")
@twilio_signed
def status() -> tuple[Response | str, int]:
    """Message and call status callbacks; idempotent and order-tolerant."""
    sid = request.form.get("MessageSid") or request.form.get("CallSid") or ""
    value = request.form.get("MessageStatus") or request.form.get("CallStatus") or ""
    if not sid or not value:
        return "missing MessageSid/CallSid or status", 400
    if not TWILIO_SID.fullmatch(sid):
        log.warning("status callback with a malformed sid on %s", logged_path())
        return "malformed MessageSid/CallSid", 400
    answered_by = request.form.get("AnsweredBy")
    db = get_session()
    now = clock_now()
    try:
        row = record_status(
            db,
            sid=sid,
            status=value,
            now=now,
            error_code=_error_code(request.form.get("ErrorCode")),
            answered_by=answered_by if answered_by in ANSWERED_BY else None,
        )
    except UnknownStatus:
        log.warning("unknown status %r for %s", value, sid)
        return "unknown status", 400
    notify_listeners(current_app, db, row, now)
    db.commit()
    log.info("status %s for %s (now %s)", value, sid, row.status)
    return "", 204
