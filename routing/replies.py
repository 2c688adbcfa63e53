"""An operator's SMS reply to an alert: accept or decline, with or without the reference.

Grammar (design §5): `1`, `OK`, `SI`, `SÌ`, `ACK` accept; `2`, `NO` decline; optionally
followed by the case reference, full (`OK BS-2026-0042`) or short (`OK BS-42`: province and
number of the current year). A bare reply applies to the latest alert sent to that phone.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from core.formatting import local_date
from core.models import SentNotification, User
from routing import alerts
from routing.dispatch import CANCELED, PENDING, Answer, FollowUp, answer_alert
from routing.lifecycle import record_event
from routing.models import (
    CaseEventKind,
    Dispatch,
    DispatchState,
    Page,
    PageBundle,
    PageChannel,
    PagePurpose,
)

ACCEPT_WORDS = frozenset({"1", "OK", "SI", "SÌ", "SÍ", "ACK"})
DECLINE_WORDS = frozenset({"2", "NO"})
_REFERENCE = re.compile(r"([A-Z]{2})-(?:(\d{4})-)?0*(\d{1,6})")
# A reply names its latest alert; one much older than this is no alert any more.
ALERT_MEMORY = timedelta(hours=24)
HELP_PER_HOUR = 5
HELP_KIND = "sms_help"


@dataclass(frozen=True)
class Reply:
    accept: bool
    reference: str | None  # full form, BS-2026-0042


def parse_reply(body: str, *, now: datetime) -> Reply | None:
    """The reply an SMS body means, or None when it is not one (it then gets the help)."""
    words = body.strip().upper().replace(",", " ").replace(".", " ").split()
    if not words or len(words) > 2:
        return None
    verb = words[0]
    if verb not in ACCEPT_WORDS and verb not in DECLINE_WORDS:
        return None
    reference = None
    if len(words) == 2:
        found = _REFERENCE.fullmatch(words[1])
        if found is None:
            return None
        sigla, year, number = found.groups()
        reference = f"{sigla}-{year or local_date(now).year}-{int(number):04d}"
    return Reply(accept=verb in ACCEPT_WORDS, reference=reference)


def answer_sms(
    session: Session, user: User, body: str, now: datetime
) -> tuple[str | None, FollowUp]:
    """The confirmation to text back (None: say nothing) and the work for after the commit."""
    reply = parse_reply(body, now=now)
    if reply is None:
        return (alerts.help_reply(user) if _may_send_help(session, user, now) else None), FollowUp()
    page = _target_page(session, user, reply.reference, now) if user.active else None
    if page is None:
        return alerts.no_open_alert_reply(user), FollowUp()
    dispatch = page.dispatch
    record_event(
        session,
        case_id=dispatch.case_id,
        kind=CaseEventKind.SMS_REPLY,
        actor=user,
        now=now,
        data={"operator_id": user.id, "page_id": page.id, "accept": reply.accept},
    )
    answer: Answer = answer_alert(
        session, dispatch, user, accepting=reply.accept, via="sms", now=now, page=page
    )
    others = _other_open(session, user, dispatch.id, now)
    if answer.taken_by is not None:
        text = alerts.taken_reply(
            user,
            reference=answer.reference,
            taker=answer.taken_by.display_name,
            yours=answer.taken_by.id == user.id,
        )
    elif answer.accepted:
        text = alerts.accepted_reply(user, reference=answer.reference, others=others)
    else:
        text = alerts.declined_reply(user, reference=answer.reference, others=others)
    return text, answer.follow_up


def _alert_pages(user: User, now: datetime) -> Select[Page]:
    """Alerts that reached (or are reaching) this operator's phone, latest sent first (a
    page past the hourly cap when its bundle went out, one of its own when it did)."""
    return (
        select(Page)
        .join(Dispatch, Dispatch.id == Page.dispatch_id)
        .outerjoin(PageBundle, PageBundle.id == Page.bundle_id)
        .where(
            Page.operator_id == user.id,
            Page.channel == PageChannel.SMS,  # the text this reply answers
            Page.purpose.in_([PagePurpose.ALERT, PagePurpose.UNANSWERED]),
            # Sent, or on its way: a reply can beat the provider's id to the database.
            Page.status.not_in([PENDING, CANCELED]),
            Page.created_at >= now - ALERT_MEMORY,
        )
        .order_by(
            func.coalesce(PageBundle.sent_at, Page.sent_at, Page.created_at).desc(),
            Page.id.desc(),
        )
    )


def _target_page(session: Session, user: User, reference: str | None, now: datetime) -> Page | None:
    """The page a reply answers: the latest alert to this operator (for that case, if named)."""
    query = _alert_pages(user, now)
    if reference is not None:
        query = query.where(Dispatch.reference == reference)
    else:
        # A bare reply answers a text the phone got: not a page still waiting in its bundle
        # (the bundle names the references; a reply naming one still finds it).
        query = query.where(or_(Page.bundle_id.is_(None), PageBundle.sent_at.is_not(None)))
    return session.scalars(query.limit(1)).first()


def _other_open(session: Session, user: User, dispatch_id: int, now: datetime) -> int:
    """Other open alerts this operator was paged for (the confirmation mentions them)."""
    found = session.scalars(
        _alert_pages(user, now).where(
            Dispatch.state == DispatchState.OPEN, Dispatch.id != dispatch_id
        )
    )
    return len({page.dispatch_id for page in found})


def _may_send_help(session: Session, user: User, now: datetime) -> bool:
    """At most HELP_PER_HOUR help replies per operator in any hour: a phone stuck in a loop
    with an auto-responder must not ping-pong with Ali. Each one is logged as sent."""
    recent = session.scalar(
        select(func.count())
        .select_from(SentNotification)
        .where(
            SentNotification.kind == HELP_KIND,
            SentNotification.user_id == user.id,
            SentNotification.sent_at > now - timedelta(hours=1),
        )
    )
    if (recent or 0) >= HELP_PER_HOUR:
        return False
    key = f"{HELP_KIND}:{user.id}:{now.isoformat()}:{secrets.token_hex(4)}"
    session.add(SentNotification(key=key, kind=HELP_KIND, user_id=user.id, sent_at=now))
    return True
