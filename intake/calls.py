"""What the partner line does: the province of a call, who is rung for it, and the case it
opens — accepted by the operator who took it, or urgent with the message left.

Plain functions taking a Session; they never commit (the voice webhooks do).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Role, User, users_by_id, users_with_role
from core.text import small_int
from intake.models import CallOutcome, Partner, PartnerCall
from intake.partners import partner_for_phone
from intake.services import BroughtBy, OpenedCase, open_case
from intake.validation import CaseFields
from oncall.chain import on_call_chain
from routing.dispatch import FollowUp, answer_alert
from routing.lifecycle import record_event
from routing.models import CaseEventKind, Channel, ContactSafe, Dispatch, Urgency
from routing.places import ProvinceResolution, ProvinceSource, resolve_province
from routing.services import chain_for, has_rota

log = logging.getLogger(__name__)

ACTOR = "phone"
# A menu said this many times without a usable key: the call goes on without a province.
MENU_TRIES = 3
# The keys of the greeting and menu: 9 (alone) switches to English.
ENGLISH_KEY = "9"
# Past this many served provinces, the menu takes two digits and # (01, 02, ... 10, 11).
ONE_DIGIT_MENU = 8


# --- the call's row ----------------------------------------------------------------------------


def start_call(
    session: Session,
    *,
    call_sid: str,
    caller: str | None,
    served: Sequence[str],
    now: datetime,
) -> PartnerCall:
    """The row of a new call (or the one Twilio already told us about: a retried webhook).

    A registered partner's call has its province already (the partner's default), so it
    skips the menu.
    """
    existing = session.scalar(select(PartnerCall).where(PartnerCall.call_sid == call_sid))
    if existing is not None:
        return existing
    partner = partner_for_phone(session, caller)
    call = PartnerCall(
        call_sid=call_sid,
        started_at=now,
        updated_at=now,
        caller_phone=caller,
        partner_id=partner.id if partner is not None else None,
        language="it",
        outcome=CallOutcome.MENU,
        chain=[],
        attempt=0,
        menu_attempts=0,
    )
    if partner is not None and partner.province:
        _decide(call, resolve_province(served=served, partner_province=partner.province))
    session.add(call)
    session.flush()
    log.info("partner line: call %s started (partner %s)", call.id, call.partner_id)
    return call


def locked_call(session: Session, call_id: int) -> PartnerCall | None:
    """The call's row, locked for this transaction: Twilio's requests for one call may cross
    (a recording callback racing the record action)."""
    if not 0 < call_id < 2**31:
        return None
    return session.get(PartnerCall, call_id, with_for_update=True)


def _decide(call: PartnerCall, resolution: ProvinceResolution) -> None:
    call.province = resolution.sigla
    call.province_source = resolution.source.value


def resolution_of(call: PartnerCall) -> ProvinceResolution:
    return ProvinceResolution(
        call.province, ProvinceSource(call.province_source or ProvinceSource.UNRESOLVED.value)
    )


def partner_of(session: Session, call: PartnerCall) -> Partner | None:
    return session.get(Partner, call.partner_id) if call.partner_id is not None else None


# --- the menu ----------------------------------------------------------------------------------


def menu_code(index: int, served: Sequence[str]) -> str:
    """The keys of the `index`-th served province (0-based): "3", or "03" past eight."""
    return str(index + 1) if len(served) <= ONE_DIGIT_MENU else f"{index + 1:02d}"


def province_of_keys(digits: str, served: Sequence[str]) -> str | None:
    """The served province these keys choose, or None for keys that choose none."""
    number = small_int(digits, digits=len(menu_code(len(served) - 1, served)))
    if number is None:
        return None
    return served[number - 1] if 1 <= number <= len(served) else None


def choose_province(call: PartnerCall, sigla: str, served: Sequence[str], now: datetime) -> None:
    _decide(call, resolve_province(served=served, province=sigla))
    call.updated_at = now


def menu_missed(call: PartnerCall, now: datetime) -> bool:
    """One more menu without a usable key; True when the menu has been said enough times
    and the call must go on without a province."""
    call.menu_attempts += 1
    call.updated_at = now
    return call.menu_attempts >= MENU_TRIES


# --- forwarding --------------------------------------------------------------------------------


def start_forwarding(
    session: Session, call: PartnerCall, served: Sequence[str], now: datetime
) -> list[User]:
    """Who is rung for this call, in order, one at a time: the province's primary and backup,
    then the coordinators — only people Ali may page (active, verified phone).

    A call without a province (no key in the menu) is routed as design §5 says: the caller's
    landline area code if it names a served province, else the coordinators.
    """
    if call.province_source is None:
        _decide(call, resolve_province(served=served, caller_phone=call.caller_phone))
    resolution = resolution_of(call)
    chain = chain_for(session, resolution=resolution, at=now)
    if chain is None:
        chain = on_call_chain(session, province="", at=now)
    candidates: list[User | None] = []
    if has_rota(resolution):
        candidates += [chain.primary, chain.backup]
    coordinators = [user for user in chain.coordinators if user.can_be_paged]
    if not coordinators:
        # The coordinator on call cannot be paged: every coordinator who can, rather than
        # nobody (the last tier must reach a human while there is one).
        coordinators = [u for u in users_with_role(session, Role.COORDINATOR) if u.can_be_paged]
    candidates += coordinators
    people: list[User] = []
    for user in candidates:
        if user is not None and user.can_be_paged and user not in people:
            people.append(user)
    call.chain = [user.id for user in people]
    call.attempt = 0
    call.outcome = CallOutcome.FORWARDING
    call.updated_at = now
    return people


def rung(session: Session, call: PartnerCall, attempt: int) -> User | None:
    """The person rung at `attempt` (None past the end of the chain)."""
    if not 0 <= attempt < len(call.chain):
        return None
    return users_by_id(session, [call.chain[attempt]]).get(call.chain[attempt])


def reachable_person(session: Session, call: PartnerCall, now: datetime) -> User | None:
    """The person to ring at the call's attempt, moving the attempt past anyone with no phone
    (or no longer a user): one of them must not end the chain. None past its end."""
    while 0 <= call.attempt < len(call.chain):
        person = rung(session, call, call.attempt)
        if person is not None and person.phone:
            return person
        call.attempt += 1
        call.updated_at = now
    return None


# --- outcomes ----------------------------------------------------------------------------------


def _fields(session: Session, call: PartnerCall) -> CaseFields:
    partner = partner_of(session, call)
    return CaseFields(
        resolution=resolution_of(call),
        caller_phone=call.caller_phone,
        # Calling back goes to the number that called (through Ali's number).
        callback_phone=call.caller_phone,
        urgency=Urgency.URGENT,
        reporter_type=partner.kind if partner is not None else None,
        # A registered partner's office line is theirs; anyone else's phone may be held by
        # an exploiter (design §5, safe contact).
        contact_safe=ContactSafe.YES if partner is not None else ContactSafe.UNKNOWN,
    )


def _call_event(
    session: Session,
    call: PartnerCall,
    now: datetime,
    outcome: str,
    actor: User | str = ACTOR,
    **extra: Any,
) -> None:
    if call.case_id is None:
        return
    record_event(
        session,
        case_id=call.case_id,
        kind=CaseEventKind.PARTNER_CALL,
        actor=actor,
        now=now,
        data={
            "call_id": call.id,
            "outcome": outcome,
            "province": call.province,
            "channel": "voice",
            **extra,
        },
    )


def operator_took_call(
    session: Session, call: PartnerCall, operator: User, now: datetime
) -> OpenedCase | None:
    """`operator` pressed 1 on the whisper: the call is theirs, and so is its case — opened
    now and accepted by them in the same transaction, so nobody else is paged for it (its
    first step is not fired: `open_case(taken=True)`).

    None when the call was already taken or is no longer ringing this person.
    """
    if call.outcome != CallOutcome.FORWARDING or call.connected_to_id is not None:
        return None
    call.connected_to_id = operator.id
    call.connected_at = now
    call.outcome = CallOutcome.CONNECTED
    call.updated_at = now
    opened = open_case(
        session,
        channel=Channel.PHONE,
        brought_by=BroughtBy(actor=ACTOR),
        fields=_fields(session, call),
        now=now,
        taken=True,
    )
    call.case_id = opened.case_id
    dispatch = session.get(Dispatch, opened.dispatch_id) if opened.dispatch_id else None
    if dispatch is not None:
        answer_alert(session, dispatch, operator, accepting=True, via="phone", now=now)
    _call_event(
        session,
        call,
        now,
        "connected",
        actor=operator,
        operator_id=operator.id,
        attempt=call.attempt,
    )
    log.info("partner line: call %s taken by operator %s", call.id, operator.id)
    return opened


def connected_call_ended(
    session: Session, call: PartnerCall, duration: int | None, now: datetime
) -> None:
    if call.ended_at is not None:
        return
    call.ended_at = now
    call.duration_seconds = duration
    call.updated_at = now
    _call_event(
        session,
        call,
        now,
        "ended",
        operator_id=call.connected_to_id,
        duration_seconds=duration,
    )


def start_recording(call: PartnerCall, now: datetime) -> None:
    call.outcome = CallOutcome.RECORDING
    call.updated_at = now


def attach_recording(
    call: PartnerCall, *, sid: str | None, url: str | None, seconds: int | None, now: datetime
) -> None:
    if sid and call.recording_sid is None:
        call.recording_sid = sid
    if url and call.recording_sid == sid:
        call.recording_url = url
    if seconds is not None and call.recording_sid == sid:
        call.recording_seconds = seconds
    call.updated_at = now


# A call still forwarding or recording with no word from Twilio for this long has lost its
# callbacks (the longest step, a 3-minute message, is well within it): nothing else would
# ever open its case.
STALLED_AFTER = timedelta(minutes=10)
STALLED = (CallOutcome.FORWARDING, CallOutcome.RECORDING)


def stalled_calls(session: Session, now: datetime) -> list[int]:
    """Ids of the calls Twilio left forwarding or recording without a case."""
    return list(
        session.scalars(
            select(PartnerCall.id)
            .where(
                PartnerCall.outcome.in_(STALLED),
                PartnerCall.case_id.is_(None),
                PartnerCall.updated_at < now - STALLED_AFTER,
            )
            .order_by(PartnerCall.id)
        )
    )


def recover_stalled_call(session: Session, call_id: int, now: datetime) -> FollowUp:
    """A stalled call becomes the urgent missed-call case it would have been (with its
    message, if one was attached), paged like any other. A callback that came in meanwhile
    wins: the row is locked and checked again."""
    call = locked_call(session, call_id)
    if (
        call is None
        or call.outcome not in STALLED
        or call.case_id is not None
        or call.updated_at >= now - STALLED_AFTER
    ):
        return FollowUp()
    log.warning(
        "partner line: call %s had no callback for %s, opening its case",
        call.id,
        now - call.updated_at,
    )
    return nobody_took_call(session, call, now)


def nobody_took_call(session: Session, call: PartnerCall, now: datetime) -> FollowUp:
    """Nobody accepted the call: an urgent case with the caller's number and the message
    (if one was left), escalated by the alert engine. Once per call."""
    if call.case_id is not None:
        return FollowUp()
    call.outcome = CallOutcome.RECORDED if call.recording_sid else CallOutcome.MISSED
    call.ended_at = call.ended_at or now
    call.updated_at = now
    opened = open_case(
        session,
        channel=Channel.PHONE,
        brought_by=BroughtBy(actor=ACTOR),
        fields=_fields(session, call),
        now=now,
    )
    call.case_id = opened.case_id
    _call_event(
        session,
        call,
        now,
        call.outcome.value,
        recording=call.recording_sid is not None,
        recording_seconds=call.recording_seconds,
        rung=len(call.chain),
    )
    log.info("partner line: call %s unanswered, case %s opened", call.id, opened.reference)
    if opened.dispatch_id is None:
        return FollowUp()
    return FollowUp(to_send={opened.dispatch_id})


def call_over(
    session: Session, call: PartnerCall, now: datetime, duration: int | None = None
) -> FollowUp:
    """Twilio says the call has ended. In the menu: logged, no case (nobody chose anything
    and nothing was said). After the menu, before anyone took it: a missed call from a
    known number is an urgent case — fail toward a human."""
    if call.outcome == CallOutcome.MENU:
        call.outcome = CallOutcome.ENDED_IN_MENU
        call.ended_at = now
        call.updated_at = now
        log.info("partner line: call %s ended in the menu", call.id)
        return FollowUp()
    if call.outcome in {CallOutcome.FORWARDING, CallOutcome.RECORDING}:
        return nobody_took_call(session, call, now)
    if call.outcome == CallOutcome.CONNECTED:
        # The caller hung up first: the <Dial> action may never come. The call's own
        # duration counts the greeting too; the talk began at the keypress.
        if call.connected_at is not None:
            duration = max(0, round((now - call.connected_at).total_seconds()))
        connected_call_ended(session, call, duration, now)
    return FollowUp()


@dataclass(frozen=True)
class Recording:
    """A call's recording as the case page offers it."""

    call_id: int
    seconds: int | None


def recording_of_case(session: Session, case_id: int) -> Recording | None:
    call = session.scalar(
        select(PartnerCall)
        .where(
            PartnerCall.case_id == case_id,
            PartnerCall.recording_sid.is_not(None),
            PartnerCall.recording_deleted_at.is_(None),
        )
        .order_by(PartnerCall.id.desc())
        .limit(1)
    )
    return Recording(call.id, call.recording_seconds) if call is not None else None
