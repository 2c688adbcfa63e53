"""Routes of the call back through Ali: the case page's "Call back" button and the
Twilio-signed TwiML steps of the call (Twilio's URLs name the call back's id, never a number).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Flask, Response, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response as WerkzeugResponse

from core.auth import login_required
from core.clock import now as clock_now
from core.config import get_settings
from core.db import get_session
from core.models import User
from core.telephony import get_telephony
from core.twilio import dial_one, gather_one_digit, hang_up, say_and_hang_up, twilio_signed
from intake import callback
from routing.models import Case
from routing.services import can_see_case

web = Blueprint("callback", __name__, url_prefix="/cases")
hooks = Blueprint("callback_twilio", __name__, url_prefix="/twilio/callback")
REFERENCE = re.compile(r"[A-Z]{2}-\d{4}-\d{4,6}")


def _visible_case(reference: str, user: User) -> Case:
    """The case, or 404 (also when the user may not see it: the same answer as the page)."""
    if not REFERENCE.fullmatch(reference):
        abort(404)
    session = get_session()
    case = session.scalars(select(Case).where(Case.reference == reference)).first()
    if case is None or not can_see_case(session, user, case):
        abort(404)
    return case


def _refusal_message(code: str) -> str:
    messages: dict[str, str] = {
        "no_verified_phone": _("Your phone is not verified: verify it in your profile first."),
        "no_number": _("This case has no number to call back."),
        "confirm": _(
            "It is not known to be safe to call this number: tick the box to confirm you "
            "checked, then try again."
        ),
    }
    return messages.get(code) or _("The call back could not start.")


@web.post("/<reference>/callback")
@login_required
def call_back(reference: str) -> WerkzeugResponse:
    user: User = current_user
    case = _visible_case(reference, user)
    session = get_session()
    now = clock_now()
    back = redirect(url_for("cases.case_page", reference=case.reference) + "#callback")
    try:
        row = callback.start_callback(
            session, case, user, confirmed=request.form.get("confirm") == "1", now=now
        )
    except callback.CallbackRefused as exc:
        session.rollback()
        flash(_refusal_message(exc.code), "error")
        return back
    session.commit()
    placed = callback.place_callback(
        session,
        get_telephony(),
        row,
        to=user.phone or "",
        public_url=get_settings().public_url,
        now=now,
    )
    session.commit()
    if placed:
        flash(_("Ali is calling your phone: answer and press 1 to be connected."), "success")
    else:
        flash(_("The call could not be placed. Try again in a minute."), "error")
    return back


def _callback_or_404(callback_id: int) -> tuple[Any, Case, User]:
    found = callback.get_callback(get_session(), callback_id)
    if found is None:
        abort(404)
    return found


@hooks.post("/<int:callback_id>/answer")
@twilio_signed
def answer(callback_id: int) -> Response:
    """The operator picked up: say which case, wait for 1 before dialling anyone."""
    row, case, operator = _callback_or_404(callback_id)
    said = callback.prompts(operator, case.reference)
    if row.ended_at is not None:
        return say_and_hang_up(said.ended, language=said.language)
    connect_url = url_for("callback_twilio.connect", callback_id=row.id)
    return gather_one_digit(
        said.intro,
        language=said.language,
        action=get_settings().public_url + connect_url,
        after=get_settings().public_url + connect_url,
    )


@hooks.post("/<int:callback_id>/connect")
@twilio_signed
def connect(callback_id: int) -> Response:
    """1 pressed: dial the person with the project's number as caller ID."""
    row, case, operator = _callback_or_404(callback_id)
    said = callback.prompts(operator, case.reference)
    if request.form.get("Digits") != "1":
        return say_and_hang_up(said.cancelled, language=said.language)
    session = get_session()
    number = callback.connect(session, row, case, now=clock_now())
    session.commit()
    if number is None:
        return say_and_hang_up(said.ended, language=said.language)
    settings = get_settings()
    return dial_one(
        number,
        action=settings.public_url + url_for("callback_twilio.done", callback_id=row.id),
        timeout_seconds=callback.DIAL_TIMEOUT_SECONDS,
        caller_id=settings.twilio_from_number,
    )


@hooks.post("/<int:callback_id>/done")
@twilio_signed
def done(callback_id: int) -> Response:
    """The Dial ended: its status and duration become the case event."""
    row, _case, _operator = _callback_or_404(callback_id)
    session = get_session()
    callback.finish_callback(
        session,
        row,
        status=request.form.get("DialCallStatus", ""),
        duration=_seconds(request.form.get("DialCallDuration")),
        leg="person",
        now=clock_now(),
    )
    session.commit()
    return hang_up()


@hooks.post("/<int:callback_id>/status")
@twilio_signed
def status(callback_id: int) -> Response:
    """The operator's call ended; if nothing was dialled, that is the call back's end."""
    row, _case, _operator = _callback_or_404(callback_id)
    session = get_session()
    call_status = request.form.get("CallStatus", "")
    if row.status == "dialling":
        return Response("", status=204)  # the Dial's own result records this call back
    callback.finish_callback(
        session,
        row,
        # Answered but no 1 pressed: the operator's call completed, the person's never began.
        status="canceled" if call_status == "completed" else call_status,
        duration=0,
        leg="operator",
        now=clock_now(),
    )
    session.commit()
    return Response("", status=204)


def _seconds(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def callback_panel(case: Case) -> dict[str, Any]:
    """What the case page's call back block shows (a template global, so the page's own view
    needs no change)."""
    user: User = current_user
    return {
        "available": callback.callback_number(case) is not None,
        "can_call": callback.can_call_back(user, case),
        "needs_confirmation": callback.needs_confirmation(case),
        "history": callback.case_callbacks(get_session(), case),
    }


def init_app(app: Flask) -> None:
    from core.app import csrf  # noqa: PLC0415 -- the app's CSRF protection, built by core

    app.register_blueprint(web)
    app.register_blueprint(hooks)
    csrf.exempt(hooks)
    app.add_template_global(callback_panel, "callback_panel")
