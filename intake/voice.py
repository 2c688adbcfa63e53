"""Twilio-signed endpoints of the partner line: `POST /twilio/voice` and the steps it leads to.

A call hears an Italian greeting (9 for English). A registered partner's number goes straight
to its province; anyone else picks the province in a menu (said again on no key, then the
call goes on without one). The on-call chain is rung one person at a time with a ring
timeout shorter than mobile voicemail, and each person first hears a whisper: only their
keypress 1 connects the call (a voicemail never presses it), and only that keypress —
recorded here, not inferred from DialCallStatus — opens the case, accepted by them. When
nobody accepts, the caller leaves a message that becomes an urgent case, escalated by the
alert engine. Nothing said to the caller names the project or what it does (safe contact).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from flask import Blueprint, Response, abort, request
from flask_babel import LazyString, force_locale, gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core.clock import now as clock_now
from core.config import get_settings
from core.db import get_session
from core.models import User
from core.phones import InvalidPhone, normalise_phone
from core.provinces import lookup_province
from core.text import small_int
from core.twilio import (
    Spoken,
    bridge,
    dial_one,
    gather_keys,
    hang_up,
    record_message,
    twilio_signed,
)
from intake import calls
from intake.models import CallOutcome, PartnerCall
from routing import alerts
from routing.followup import after_response

log = logging.getLogger(__name__)
bp = Blueprint("partner_line", __name__, url_prefix="/twilio/voice")

VOICES = alerts.VOICE_LANGUAGE
RECORD_MAX_SECONDS = 180
WHISPER_TIMEOUT_SECONDS = 8
TWILIO_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")
_CALL_ENDED = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


def _(message: str, **values: object) -> str:
    return str(gettext(message, **values))


def _url(call: PartnerCall, step: str) -> str:
    return f"{get_settings().public_url}/twilio/voice/{call.id}/{step}"


def _said(call: PartnerCall, message: LazyString) -> Spoken:
    """`message` in the caller's language, in its voice."""
    with force_locale(call.language):
        return str(message), VOICES[call.language]


def _province_name(sigla: str | None) -> str:
    found = lookup_province(sigla) if sigla else None
    return found.name if found is not None else (sigla or "")


def _form_int(name: str) -> int | None:
    value = request.form.get(name, "")
    return small_int(value, digits=6)


def _call(call_id: int) -> PartnerCall:
    """The call of this request, locked; 404 when it is not the call Twilio is asking about
    (a signed request for another call's id)."""
    call = calls.locked_call(get_session(), call_id)
    sid = request.form.get("ParentCallSid") or request.form.get("CallSid")
    if call is None or sid != call.call_sid:
        abort(404)
    return call


# --- greeting and menu ------------------------------------------------------------------------


@bp.post("")
@twilio_signed
def inbound_call() -> Response:
    """Someone calls the project's number (the Voice webhook set in Twilio's console)."""
    sid = request.form.get("CallSid", "")
    if not TWILIO_SID.fullmatch(sid):
        abort(400)
    try:
        caller: str | None = normalise_phone(request.form.get("From", ""))
    except InvalidPhone:
        caller = None  # withheld or not a number: the menu still reaches a human
    session = get_session()
    settings = get_settings()
    now = clock_now()
    call = calls.start_call(
        session, call_sid=sid, caller=caller, served=settings.provinces, now=now
    )
    session.commit()
    if call.province_source is not None:
        return _known_caller_greeting(call)
    return _menu(call)


def _english_option() -> Spoken:
    # Always in English, in an English voice: it is for those who do not speak Italian.
    return "For English, press 9.", VOICES["en"]


def _known_caller_greeting(call: PartnerCall) -> Response:
    """A registered partner: the province is known; a short pause for 9, then forwarding."""
    return gather_keys(
        [
            _said(
                call,
                _l(
                    "Hello. We are putting you through to the operator on duty for the "
                    "province of %(province)s.",
                    province=_province_name(call.province),
                ),
            ),
            _english_option(),
        ],
        action=_url(call, "language"),
        after=_url(call, "forward"),
        timeout_seconds=3,
    )


def _menu(call: PartnerCall, *, before: Sequence[Spoken] = ()) -> Response:
    served = get_settings().provinces
    two_digits = len(served) > calls.ONE_DIGIT_MENU
    choices = [
        _said(
            call,
            _l(
                "For %(province)s press %(keys)s.",
                province=_province_name(sigla),
                keys=" ".join(calls.menu_code(index, served)),
            ),
        )
        for index, sigla in enumerate(served)
    ]
    intro = (
        _said(call, _l("Hello. Choose the province, then press the hash key."))
        if two_digits
        else _said(call, _l("Hello. Choose the province."))
    )
    prompts = [intro, *choices]
    if call.language == "it":
        prompts.append(_english_option())
    return gather_keys(
        prompts,
        action=_url(call, "choice"),
        after=_url(call, "noinput"),
        num_digits=None if two_digits else 1,
        finish_on_key="#" if two_digits else None,
        timeout_seconds=6,
        before=before,
    )


@bp.post("/<int:call_id>/language")
@twilio_signed
def language(call_id: int) -> Response:
    """A key during a partner's greeting: 9 is English; anything else just goes on."""
    call = _call(call_id)
    if request.form.get("Digits", "") == calls.ENGLISH_KEY:
        call.language = "en"
    get_session().commit()
    return _forward(call)


@bp.post("/<int:call_id>/choice")
@twilio_signed
def choice(call_id: int) -> Response:
    """Keys pressed in the province menu."""
    session = get_session()
    call = _call(call_id)
    now = clock_now()
    served = get_settings().provinces
    digits = request.form.get("Digits", "")[:8]
    if call.outcome != CallOutcome.MENU:
        return hang_up()  # a replayed request of a call that moved on
    if digits == calls.ENGLISH_KEY and call.language == "it":
        call.language = "en"
        session.commit()
        return _menu(call)
    sigla = calls.province_of_keys(digits, served)
    if sigla is None:
        if calls.menu_missed(call, now):
            session.commit()
            return _forward(call)
        session.commit()
        return _menu(call, before=[_said(call, _l("That is not one of the choices."))])
    calls.choose_province(call, sigla, served, now)
    session.commit()
    return _forward(call)


@bp.post("/<int:call_id>/noinput")
@twilio_signed
def no_input(call_id: int) -> Response:
    """The menu ended without a key: say it again, a few times, then go on without a
    province (the coordinators, or the landline's province)."""
    session = get_session()
    call = _call(call_id)
    if call.outcome != CallOutcome.MENU:
        return hang_up()
    if calls.menu_missed(call, clock_now()):
        session.commit()
        return _forward(call)
    session.commit()
    return _menu(call)


# --- forwarding to the on-call chain ----------------------------------------------------------


@bp.post("/<int:call_id>/forward")
@twilio_signed
def forward(call_id: int) -> Response:
    return _forward(_call(call_id))


def _forward(call: PartnerCall) -> Response:
    """Start ringing the chain (once per call; a repeated request rings the current one)."""
    session = get_session()
    settings = get_settings()
    now = clock_now()
    if call.outcome == CallOutcome.MENU:
        people = calls.start_forwarding(session, call, settings.provinces, now)
        session.commit()
        log.info("partner line: call %s forwarded to %d people", call.id, len(people))
    if call.outcome != CallOutcome.FORWARDING:
        return hang_up()
    return _ring(call, before=[_said(call, _l("Please hold: we are connecting you."))])


def _ring(call: PartnerCall, *, before: Sequence[Spoken] = ()) -> Response:
    """Ring the person of the call's current attempt, or ask for a message past the end."""
    session = get_session()
    person = calls.reachable_person(session, call, clock_now())
    if person is None or not person.phone:
        calls.start_recording(call, clock_now())
        session.commit()
        return record_message(
            _said(
                call,
                _l(
                    "Nobody can answer right now. Leave a message after the tone: who you "
                    "are, the province and a number to call you back. Press the hash key "
                    "when you have finished."
                ),
            ),
            action=_url(call, "recorded"),
            recording_status_callback=_url(call, "recording"),
            max_seconds=RECORD_MAX_SECONDS,
            after=_url(call, "recorded"),
        )
    session.commit()  # the attempt may have moved past people without a phone
    settings = get_settings()
    return dial_one(
        person.phone,
        whisper_url=_url(call, f"whisper?attempt={call.attempt}"),
        action=_url(call, f"dialled?attempt={call.attempt}"),
        timeout_seconds=settings.ring_timeout_seconds,
        # The operator sees the project's number, not a stranger's, and knows it is Ali.
        caller_id=settings.twilio_from_number or None,
        before=before,
    )


def _attempt() -> int:
    value = request.args.get("attempt", "")
    number = small_int(value, digits=4)
    if number is None:
        abort(404)
    return number


@bp.post("/<int:call_id>/dialled")
@twilio_signed
def dialled(call_id: int) -> Response:
    """The rung person's leg ended. Connected only if they pressed 1 on the whisper (a
    voicemail's call ends `completed` too); otherwise the next person is rung."""
    session = get_session()
    call = _call(call_id)
    now = clock_now()
    attempt = _attempt()
    status = request.form.get("DialCallStatus", "")
    if call.outcome == CallOutcome.CONNECTED:
        calls.connected_call_ended(session, call, _form_int("DialCallDuration"), now)
        session.commit()
        return hang_up()
    if call.outcome != CallOutcome.FORWARDING or attempt != call.attempt:
        return hang_up()  # a replayed or stale request: the call has moved on
    if request.form.get("CallStatus") in _CALL_ENDED:
        # The caller hung up while it rang: a missed call from a number we can call back.
        follow_up = calls.nobody_took_call(session, call, now)
        session.commit()
        after_response(follow_up)
        return hang_up()
    log.info("partner line: call %s attempt %s ended %s", call.id, attempt, status or "?")
    call.attempt = attempt + 1
    call.updated_at = now
    session.commit()
    return _ring(call)


@bp.post("/<int:call_id>/whisper")
@twilio_signed
def whisper(call_id: int) -> Response:
    """What the rung person hears on picking up, in their language, before being connected."""
    session = get_session()
    call = _call(call_id)
    attempt = _attempt()
    person = calls.rung(session, call, attempt)
    if person is None or call.outcome != CallOutcome.FORWARDING or attempt != call.attempt:
        return hang_up()
    language = alerts.voice_language(person)
    prompt = (_whisper_text(person, call.province), language)
    return gather_keys(
        [prompt, prompt],
        action=_url(call, f"whisper/key?attempt={attempt}"),
        # No key: this leg hangs up and the caller is not connected to a voicemail.
        after=_url(call, f"whisper/none?attempt={attempt}"),
        timeout_seconds=WHISPER_TIMEOUT_SECONDS,
    )


def _whisper_text(person: User, province: str | None) -> str:
    with force_locale(alerts.locale_of(person)):
        if province:
            return _(
                "Call for the province of %(province)s, press 1 to answer.",
                province=_province_name(province),
            )
        return _("Call to the partner line with no province, press 1 to answer.")


@bp.post("/<int:call_id>/whisper/key")
@twilio_signed
def whisper_key(call_id: int) -> Response:
    """The rung person pressed a key: 1 takes the call (and its case); anything else hangs
    up this leg, and the next person is rung."""
    session = get_session()
    call = _call(call_id)
    attempt = _attempt()
    person = calls.rung(session, call, attempt)
    if request.form.get("Digits", "")[:1] != "1" or person is None or attempt != call.attempt:
        return hang_up()
    opened = calls.operator_took_call(session, call, person, clock_now())
    session.commit()
    if opened is None:
        return hang_up()
    return bridge()


@bp.post("/<int:call_id>/whisper/none")
@twilio_signed
def whisper_none(call_id: int) -> Response:
    _call(call_id)
    return hang_up()


# --- the message -------------------------------------------------------------------------------


def _recording_fields(call: PartnerCall) -> None:
    sid = request.form.get("RecordingSid", "")
    url = request.form.get("RecordingUrl", "")
    calls.attach_recording(
        call,
        sid=sid if TWILIO_SID.fullmatch(sid) else None,
        url=url if url.startswith("https://") and len(url) <= 300 else None,
        seconds=_form_int("RecordingDuration"),
        now=clock_now(),
    )


@bp.post("/<int:call_id>/recorded")
@twilio_signed
def recorded(call_id: int) -> Response:
    """The caller finished the message (or left none): an urgent case, escalated."""
    session = get_session()
    call = _call(call_id)
    if call.outcome not in {CallOutcome.RECORDING, CallOutcome.RECORDED, CallOutcome.MISSED}:
        return hang_up()
    _recording_fields(call)
    follow_up = calls.nobody_took_call(session, call, clock_now())
    session.commit()
    after_response(follow_up)
    return hang_up([_said(call, _l("Thank you. We will call you back as soon as possible."))])


@bp.post("/<int:call_id>/recording")
@twilio_signed
def recording_status(call_id: int) -> tuple[str, int]:
    """Twilio stored the recording (its status callback): kept on the call, and the case is
    opened here if the record action never came (the caller hung up)."""
    session = get_session()
    call = _call(call_id)
    if request.form.get("RecordingStatus", "completed") == "completed":
        _recording_fields(call)
    follow_up = (
        calls.nobody_took_call(session, call, clock_now())
        if call.outcome in {CallOutcome.FORWARDING, CallOutcome.RECORDING}
        else None
    )
    session.commit()
    if follow_up:
        after_response(follow_up)
    return "", 204


@bp.post("/status")
@twilio_signed
def call_status() -> tuple[str, int]:
    """The status callback of the project's number: how each call ended. One that ended in
    the menu is logged without a case; one that hung up while ringing is a missed call."""
    session = get_session()
    sid = request.form.get("CallSid", "")
    if request.form.get("CallStatus") not in _CALL_ENDED or not TWILIO_SID.fullmatch(sid):
        return "", 204
    call = session.scalar(select(PartnerCall).where(PartnerCall.call_sid == sid).with_for_update())
    if call is None:
        return "", 204
    follow_up = calls.call_over(session, call, clock_now(), _form_int("CallDuration"))
    session.commit()
    after_response(follow_up)
    return "", 204
