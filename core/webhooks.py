"""Twilio-signed endpoints of the infrastructure: message and call status callbacks."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, request

from core.clock import now as clock_now
from core.db import get_session
from core.delivery import UnknownStatus, record_status
from core.twilio import twilio_signed

log = logging.getLogger(__name__)
bp = Blueprint("twilio_core", __name__, url_prefix="/twilio")


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


@bp.post("/status")
@twilio_signed
def status() -> tuple[Response | str, int]:
    """Message and call status callbacks; idempotent and order-tolerant."""
    sid = request.form.get("MessageSid") or request.form.get("CallSid") or ""
    value = request.form.get("MessageStatus") or request.form.get("CallStatus") or ""
    if not sid or not value:
        return "missing MessageSid/CallSid or status", 400
    db = get_session()
    try:
        row = record_status(
            db,
            sid=sid,
            status=value,
            now=clock_now(),
            error_code=_int_or_none(request.form.get("ErrorCode")),
            answered_by=request.form.get("AnsweredBy"),
        )
    except UnknownStatus:
        log.warning("unknown status %r for %s", value, sid)
        return "unknown status", 400
    db.commit()
    log.info("status %s for %s (now %s)", value, sid, row.status)
    return "", 204
