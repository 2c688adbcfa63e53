"""Reminders about cases in hand: the follow-up SMS two hours after an acceptance with no
contact, and the open cases an outgoing operator leaves to the next one on call."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.claims import Outcome, send_once
from core.models import User
from core.telephony import Telephony
from oncall.notifications import status_callback_url
from routing import alerts
from routing.models import Case, CaseStatus

FOLLOW_UP_AFTER = timedelta(hours=2)
# A worker down for longer than this does not nudge about acceptances that old: by then
# the case is in the next shift's hand-over.
FOLLOW_UP_LOOK_BACK = timedelta(days=1)


def follow_up_key(case_id: int, accepted_at: datetime) -> str:
    # The acceptance instant is in the key: a case accepted again (a new dispatch some day)
    # gets its own reminder, this one never twice.
    return f"case_followup:{case_id}:{accepted_at.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def remind_unworked_cases(session: Session, telephony: Telephony, now: datetime) -> dict[str, int]:
    """Job: every case accepted two hours ago or more and still not `in_contact` reminds the
    operator who took it, once, by SMS (the reference and a link: no personal data)."""
    due = session.execute(
        select(Case.id, Case.reference, Case.accepted_at, Case.accepted_by_id)
        .where(
            Case.status == CaseStatus.ACCEPTED,
            Case.accepted_at <= now - FOLLOW_UP_AFTER,
            Case.accepted_at > now - FOLLOW_UP_AFTER - FOLLOW_UP_LOOK_BACK,
            Case.accepted_by_id.is_not(None),
        )
        .order_by(Case.accepted_at, Case.id)
    ).all()
    counts = {outcome.value: 0 for outcome in Outcome} | {"unreachable": 0}
    for case_id, reference, accepted_at, user_id in due:
        user = session.get(User, user_id)
        if accepted_at is None or user is None or not user.can_be_paged or user.phone is None:
            counts["unreachable"] += 1
            continue
        outcome = send_once(
            session,
            key=follow_up_key(case_id, accepted_at),
            kind="case_followup",
            user_id=user_id,
            now=now,
            send=_sms(telephony, user.phone, alerts.follow_up_sms(user, reference=reference)),
        )
        counts[outcome.value] += 1
        if outcome is Outcome.RETRY:
            break  # Twilio is down or throttling: the next tick tries them all again
    return counts


def _sms(telephony: Telephony, to: str, body: str) -> Callable[[], str]:
    return lambda: telephony.send_sms(to=to, body=body, status_callback=status_callback_url())


def open_cases_left(session: Session, province: str, operator_id: int, _now: datetime) -> list[str]:
    """References of the cases of `province` the operator accepted and nobody closed yet:
    what the next operator on call hears about in the start-of-shift reminder."""
    return list(
        session.scalars(
            select(Case.reference)
            .where(
                Case.province == province,
                Case.accepted_by_id == operator_id,
                Case.status != CaseStatus.CLOSED,
            )
            .order_by(Case.reference)
        )
    )
