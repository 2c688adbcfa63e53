"""Twilio-signed endpoint of the project's number for texts: operators' replies to alerts,
and anybody else's text as a new case.

A text from a registered operator's number is only ever read as a reply, never as a new case
(design §5).
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import Blueprint, Flask, Response, after_this_request, current_app, request
from sqlalchemy import select

from core.clock import now as clock_now
from core.config import get_settings
from core.db import get_session, session_scope
from core.models import User
from core.phones import InvalidPhone, normalise_phone
from core.twilio import message_reply, twilio_signed
from intake.sms import receive_text, tell_the_taker
from intake.validation import printable
from oncall.notifications import (
    OPT_IN_WORDS,
    OPT_OUT_WORDS,
    clear_sms_opt_out,
    mark_sms_opted_out,
)
from routing.dispatch import FollowUp
from routing.followup import after_response
from routing.replies import answer_sms, parse_reply

log = logging.getLogger(__name__)
bp = Blueprint("intake_twilio", __name__, url_prefix="/twilio")
MAX_SMS_BODY = 1600  # Twilio's own limit for a concatenated message


@bp.post("/sms")
@twilio_signed
def inbound_sms() -> Response:
    session = get_session()
    now = clock_now()
    body = request.form.get("Body", "")[:MAX_SMS_BODY]
    try:
        sender = normalise_phone(request.form.get("From", ""))
    except InvalidPhone:
        sender = None
    operator = (
        session.scalars(
            # A former operator's late reply is still a reply: it gets 'no open alert'.
            select(User).where(User.phone == sender).order_by(User.active.desc(), User.id)
        ).first()
        if sender
        else None
    )
    if operator is None or (not operator.active and parse_reply(body, now=now) is None):
        # A former operator's number that sends something other than a reply (`OK`, `2`...)
        # may be anyone's now: read as a new case, never dropped.
        return _new_case_by_sms(sender, request.form.get("From", ""), body, now)
    keyword = body.strip().upper()
    if keyword in OPT_IN_WORDS | OPT_OUT_WORDS:
        # Twilio itself stops (or resumes) every SMS to the number and answers the keyword;
        # Ali follows: calls instead of SMS until START. Nothing more to say.
        if keyword in OPT_IN_WORDS:
            clear_sms_opt_out(session, operator, now, via="sms_start", actor=operator)
        else:
            mark_sms_opted_out(session, operator, now, via="sms_stop", actor=operator)
        session.commit()
        return message_reply(None)
    text, follow_up = answer_sms(session, operator, body, now)
    session.commit()
    after_response(follow_up)
    log.info("SMS reply from operator %s answered", operator.id)
    return message_reply(text)


def _new_case_by_sms(sender: str | None, raw_from: str, body: str, now: datetime) -> Response:
    """A text from anyone else: a partner's report or a stranger's message (intake.sms)."""
    session = get_session()
    settings = get_settings()
    received = receive_text(
        session,
        sender=sender,
        raw_from=raw_from,
        body=body,
        text=printable(body),
        served=settings.provinces,
        pepper=settings.secret_key,
        now=now,
    )
    session.commit()
    opened = received.opened
    if opened is not None and opened.pages_queued and opened.dispatch_id is not None:
        after_response(FollowUp(to_send={opened.dispatch_id}))
    if received.taker_to_tell is not None:
        _tell_the_taker_after_response(received.taker_to_tell)
    return message_reply(received.reply)


def _tell_the_taker_after_response(inbound_text_id: int) -> None:
    """Like `after_response`: the SMS to the case's taker never holds up Twilio's webhook."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]

    def _send() -> None:
        try:
            with app.app_context(), session_scope(app) as session:
                now = app.extensions["ali.clock"].now()
                tell_the_taker(session, app.extensions["ali.telephony"], inbound_text_id, now)
        except Exception:
            log.exception("the SMS to the taker of a case with a new text failed")

    @after_this_request
    def _register(response: Response) -> Response:
        response.call_on_close(_send)
        return response
