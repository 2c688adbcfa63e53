"""Twilio-signed endpoints of an alert call: its TwiML, the key pressed, machine detection.

Only a human keypress accepts: 1 accepts, 2 declines, any other key repeats the menu; no
key repeats it once, then the call ends as not reached. A machine (voicemail, fax) hears
one short sentence without the menu and the escalation moves on at once.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, request
from sqlalchemy.orm import Session

from core.clock import now as clock_now
from core.config import get_settings
from core.db import get_session
from core.twilio import gather_one_digit, say_and_hang_up, twilio_signed
from routing import alerts
from routing.dispatch import (
    MACHINE,
    answer_alert,
    call_not_answered,
    machine_answered,
)
from routing.followup import after_response
from routing.lifecycle import record_event
from routing.models import CaseEventKind, DispatchState, Page, PageChannel

log = logging.getLogger(__name__)
bp = Blueprint("routing_twilio", __name__, url_prefix="/twilio/alert")


def _page(session: Session, page_id: int) -> Page:
    page = session.get(Page, page_id) if 0 < page_id < 2**31 else None
    if page is None or page.channel != PageChannel.VOICE:
        abort(404)
    call_sid = request.form.get("CallSid")
    if page.provider_sid and call_sid and call_sid != page.provider_sid:
        log.warning("alert call %s fetched with another call's sid", page_id)
        abort(404)
    return page


def _url(page: Page, action: str = "") -> str:
    return f"{get_settings().public_url}/twilio/alert/{page.id}{action}"


def _menu(page: Page, *, after: str) -> Response:
    dispatch = page.dispatch
    return gather_one_digit(
        alerts.alert_prompt(
            page.operator,
            reference=dispatch.reference,
            urgency=dispatch.urgency,
            province=dispatch.province,
        ),
        language=alerts.voice_language(page.operator),
        action=_url(page, "/key"),
        after=after,
    )


def _taken(page: Page) -> Response | None:
    dispatch = page.dispatch
    if dispatch.state != DispatchState.ACCEPTED or dispatch.accepted_by is None:
        return None
    if dispatch.accepted_by_id == page.operator_id:
        text = alerts.accepted_sentence(page.operator)
    else:
        text = alerts.taken_sentence(page.operator, taker=dispatch.accepted_by.display_name)
    return say_and_hang_up(text, language=alerts.voice_language(page.operator))


@bp.post("/<int:page_id>")
@twilio_signed
def alert_call(page_id: int) -> Response:
    """The TwiML of an alert call: the menu (again, on the second attempt)."""
    session = get_session()
    page = _page(session, page_id)
    answered_by = request.form.get("AnsweredBy", "")
    if answered_by in MACHINE:  # synchronous detection tells us with the fetch
        now = clock_now()
        follow_up = machine_answered(session, page, answered_by, now)
        follow_up.calls_to_redirect.clear()  # this answer is the machine's sentence already
        session.commit()
        after_response(follow_up)
        return say_and_hang_up(
            alerts.machine_sentence(page.operator), language=alerts.voice_language(page.operator)
        )
    taken = _taken(page)
    if taken is not None:
        return taken
    second = request.args.get("attempt") == "2"
    return _menu(page, after=_url(page, "/noinput" if second else "?attempt=2"))


@bp.post("/<int:page_id>/key")
@twilio_signed
def key_pressed(page_id: int) -> Response:
    session = get_session()
    page = _page(session, page_id)
    now = clock_now()
    digits = request.form.get("Digits", "")[:1]
    language = alerts.voice_language(page.operator)
    if digits not in {"1", "2"}:
        return _menu(page, after=_url(page, "?attempt=2"))
    record_event(
        session,
        case_id=page.dispatch.case_id,
        kind=CaseEventKind.KEY_PRESSED,
        actor=page.operator,
        now=now,
        data={"page_id": page.id, "operator_id": page.operator_id, "key": digits},
    )
    answer = answer_alert(
        session,
        page.dispatch,
        page.operator,
        accepting=digits == "1",
        via="voice",
        now=now,
        page=page,
    )
    session.commit()
    after_response(answer.follow_up)
    if answer.taken_by is not None and answer.taken_by.id != page.operator_id:
        text = alerts.taken_sentence(page.operator, taker=answer.taken_by.display_name)
    elif answer.declined:
        text = alerts.declined_sentence(page.operator)
    else:
        text = alerts.accepted_sentence(page.operator)
    return say_and_hang_up(text, language=language)


@bp.post("/<int:page_id>/noinput")
@twilio_signed
def no_input(page_id: int) -> Response:
    """The menu was said twice and no key came: not reached, the escalation moves on."""
    session = get_session()
    page = _page(session, page_id)
    follow_up = call_not_answered(session, page, clock_now())
    session.commit()
    after_response(follow_up)
    return say_and_hang_up(
        alerts.no_key_sentence(page.operator), language=alerts.voice_language(page.operator)
    )


@bp.post("/<int:page_id>/amd")
@twilio_signed
def machine_detection(page_id: int) -> tuple[str, int]:
    """Asynchronous answering machine detection's verdict."""
    session = get_session()
    page = _page(session, page_id)
    answered_by = request.form.get("AnsweredBy", "")[:30]
    if answered_by in MACHINE:
        follow_up = machine_answered(session, page, answered_by, clock_now())
        session.commit()
        after_response(follow_up)
    elif answered_by:
        page.answered_by = answered_by
        session.commit()
    return "", 204


@bp.post("/<int:page_id>/machine")
@twilio_signed
def machine_message(page_id: int) -> Response:
    """Where a call answered by a machine is sent: one sentence, no menu."""
    page = _page(get_session(), page_id)
    return say_and_hang_up(
        alerts.machine_sentence(page.operator), language=alerts.voice_language(page.operator)
    )
