"""Calling a person back through Ali: Ali calls the operator's verified phone, the operator
presses 1, and Ali dials the case's number with the project's number as caller ID — neither
side sees the other's private number. Every call back is a case event with its duration.

Safe contact (design §5): the case's `contact_safe` is shown first, and a call back to a
number not known to be safe needs the operator's explicit confirmation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from flask_babel import force_locale, gettext
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.models import User
from core.telephony import Telephony, TelephonyError
from intake.models import CaseCallback
from routing.alerts import locale_of
from routing.lifecycle import record_event, record_read
from routing.models import Case, CaseEventKind, ContactSafe

log = logging.getLogger(__name__)

# The operator's phone rings this long; a voicemail answering it hears the prompt and, with
# no key pressed, nothing is dialled.
OPERATOR_RING_SECONDS = 25
# The person's phone rings this long once the operator is on the line.
DIAL_TIMEOUT_SECONDS = 30
DIAL_STATUSES = frozenset({"completed", "answered", "busy", "no-answer", "failed", "canceled"})


class CallbackRefused(Exception):
    """A call back that cannot start; `code` says why (the page translates it)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def callback_number(case: Case) -> str | None:
    """The number to call back: the one given for it, else the one the report came from."""
    return case.callback_phone or case.caller_phone


def can_call_back(user: User, case: Case) -> bool:
    """Whether the page offers "Call back": the operator has a verified phone and the case a
    number (who may see the case at all is checked before)."""
    return user.can_be_paged and callback_number(case) is not None


def needs_confirmation(case: Case) -> bool:
    return ContactSafe(case.contact_safe) is not ContactSafe.YES


def start_callback(
    session: Session, case: Case, user: User, *, confirmed: bool, now: datetime
) -> CaseCallback:
    """Record a call back about to be placed (its id names Twilio's URLs); raises
    CallbackRefused when the operator or the case cannot be called, or the call needs a
    confirmation it did not get."""
    if not user.can_be_paged:
        raise CallbackRefused("no_verified_phone")
    if callback_number(case) is None:
        raise CallbackRefused("no_number")
    if needs_confirmation(case) and not confirmed:
        raise CallbackRefused("confirm")
    callback = CaseCallback(
        case_id=case.id,
        operator_id=user.id,
        contact_safe=ContactSafe(case.contact_safe).value,
        confirmed=confirmed and needs_confirmation(case),
        status="started",
        created_at=now,
    )
    session.add(callback)
    session.flush()
    record_event(
        session,
        case_id=case.id,
        kind=CaseEventKind.CALLBACK_STARTED,
        actor=user,
        now=now,
        data={
            "operator_id": user.id,
            "callback_id": callback.id,
            "contact_safe": callback.contact_safe,
            "confirmed": callback.confirmed,
        },
    )
    record_read(session, case, actor=user, fields=["callback_phone", "contact_safe"], now=now)
    audit.record(
        session,
        now=now,
        action="create",
        object_type="case_callback",
        object_id=callback.id,
        actor=user,
        detail={"case_id": case.id},
    )
    return callback


def place_callback(
    session: Session,
    telephony: Telephony,
    callback: CaseCallback,
    *,
    to: str,
    public_url: str,
    now: datetime,
) -> bool:
    """Ring the operator (after the row is committed: Twilio may fetch the TwiML at once).
    False when Twilio refused: the call back is then recorded as failed."""
    base = f"{public_url}/twilio/callback/{callback.id}"
    try:
        callback.call_sid = telephony.place_call(
            to=to,
            url=f"{base}/answer",
            status_callback=f"{base}/status",
            status_events=("completed",),
            # The operator presses 1 before anything is dialled: a voicemail never bridges.
            machine_detection=False,
            timeout_seconds=OPERATOR_RING_SECONDS,
        )
    except TelephonyError as exc:
        log.warning("call back %s could not be placed: %s", callback.id, exc)
        finish_callback(session, callback, status="failed", duration=0, leg="operator", now=now)
        return False
    callback.status = "ringing"
    log.info("call back %s: calling operator %s", callback.id, callback.operator_id)
    return True


def get_callback(session: Session, callback_id: int) -> tuple[CaseCallback, Case, User] | None:
    row = session.execute(
        select(CaseCallback, Case, User)
        .join(Case, Case.id == CaseCallback.case_id)
        .join(User, User.id == CaseCallback.operator_id)
        .where(CaseCallback.id == callback_id)
    ).first()
    return None if row is None else (row[0], row[1], row[2])


def connect(session: Session, callback: CaseCallback, case: Case, *, now: datetime) -> str | None:
    """The operator pressed 1: the number to dial (its reading audited), or None when the
    call back is over already."""
    number = callback_number(case)
    if callback.ended_at is not None or number is None:
        return None
    callback.status = "dialling"
    record_read(session, case, actor="twilio:callback", fields=["callback_phone"], now=now)
    return number


def finish_callback(
    session: Session,
    callback: CaseCallback,
    *,
    status: str,
    duration: int,
    leg: str,
    now: datetime,
) -> bool:
    """The call back ended (Twilio's Dial result, or the operator's call never connected): one
    case event with the status and the talk time. A repeated callback changes nothing."""
    if callback.ended_at is not None:
        return False
    callback.status = status if status in DIAL_STATUSES else "failed"
    callback.duration_seconds = max(0, duration)
    callback.ended_at = now
    record_event(
        session,
        case_id=callback.case_id,
        kind=CaseEventKind.CALLBACK,
        actor="twilio:callback",
        now=now,
        data={
            "operator_id": callback.operator_id,
            "callback_id": callback.id,
            "status": callback.status,
            "leg": leg,
            "duration_seconds": callback.duration_seconds,
        },
    )
    log.info(
        "call back %s ended: %s, %d s (%s)",
        callback.id,
        callback.status,
        callback.duration_seconds,
        leg,
    )
    return True


def case_callbacks(session: Session, case: Case) -> list[CaseCallback]:
    return list(
        session.scalars(
            select(CaseCallback)
            .where(CaseCallback.case_id == case.id)
            .order_by(CaseCallback.id.desc())
        )
    )


@dataclass(frozen=True)
class Prompts:
    """What the operator hears, in their language."""

    language: str
    intro: str
    cancelled: str
    ended: str


def prompts(user: User, reference: str) -> Prompts:
    locale = locale_of(user)
    with force_locale(locale):
        return Prompts(
            language="en-GB" if locale == "en" else "it-IT",
            intro=str(
                gettext(
                    "This is Ali: the call back for case %(reference)s. "
                    "Press 1 to be connected. The person will see the project's number.",
                    # Spoken one character at a time, as the alert call says it.
                    reference=" ".join(c for c in reference if c != "-"),
                )
            ),
            cancelled=str(gettext("No key pressed: nobody is called. Goodbye.")),
            ended=str(gettext("This call back is over. Goodbye.")),
        )
