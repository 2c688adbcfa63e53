"""iCal feeds of shifts and the secret, revocable tokens behind them."""

# A feed URL carries a random token (256 bits); only its SHA-256 is stored, so a copy of the
# database hands out no working URL. An unknown token, a revoked one and one whose holder
# lost access all answer the same 404. Feeds carry shifts only: province, tier, times (UTC)
# and, in province feeds, the operators' display names; never a phone number.

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from flask_babel import force_locale
from flask_babel import gettext as _
from icalendar import Calendar, Event
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.auth import editable_rotas
from core.models import User, users_by_id
from oncall.chain import province_schedule, upcoming_shifts
from oncall.models import CalendarToken
from oncall.notifications import Duty, duties, tier_word
from oncall.schedule import Shift, Source, Tier

FEED_PAST = timedelta(days=30)
FEED_FUTURE = timedelta(days=180)
# Shifts are resolved from a little earlier and until a little later than the feed shows,
# so that the first and last events keep their real start and end (and UIDs) instead of
# being cut at boundaries that move every day.
_MARGIN = timedelta(days=8)
# A shift longer than the margin (a one-person coordinator rota, a long override) still
# touches the resolved range's edge: the range widens, doubling, until it does not or
# reaches this reach, so the event keeps its real start and end and its UID (made from
# the start) does not move with the clock.
_REACH = timedelta(days=1100)
PRODID = "-//Mettiamo le ali 2.0//Ali on-call rota//IT"
UID_DOMAIN = "ali.oncall"


class TokenKind(StrEnum):
    OPERATOR = "operator"
    PROVINCE = "province"


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


# ---------------------------------------------------------------------------------------
# Who may hold which token: a province's feed is managed by whoever edits its rota.


def _issue(
    session: Session,
    *,
    actor: User,
    kind: TokenKind,
    now: datetime,
    user_id: int | None = None,
    province: str | None = None,
) -> str:
    """Store a new token's hash; return the raw token, shown once and never stored."""
    raw = secrets.token_urlsafe(32)
    row = CalendarToken(
        token_hash=hash_token(raw),
        kind=kind.value,
        user_id=user_id,
        province=province,
        created_at=now,
        created_by_id=actor.id,
    )
    session.add(row)
    session.flush()
    detail = {"kind": row.kind} | ({"province": province} if province else {"user_id": user_id})
    audit.record(
        session,
        now=now,
        action="create",
        object_type="calendar_token",
        object_id=row.id,
        actor=actor,
        detail=detail,
    )
    return raw


def create_operator_token(session: Session, *, user: User, now: datetime) -> str:
    """A new personal feed token; the previous one stops working. Returns the raw token."""
    for old in active_tokens(session, kind=TokenKind.OPERATOR, user_id=user.id):
        revoke_token(session, actor=user, token=old, now=now)
    return _issue(session, actor=user, kind=TokenKind.OPERATOR, now=now, user_id=user.id)


def create_province_token(
    session: Session, *, actor: User, province: str, served: Sequence[str], now: datetime
) -> str:
    """A new feed of a province's rota; raises PermissionError outside the actor's provinces."""
    if province not in editable_rotas(actor, served):
        raise PermissionError(province)
    return _issue(session, actor=actor, kind=TokenKind.PROVINCE, now=now, province=province)


def can_revoke(user: User, token: CalendarToken, served: Sequence[str]) -> bool:
    if token.kind == TokenKind.OPERATOR:
        return token.user_id == user.id
    return token.created_by_id == user.id or token.province in editable_rotas(user, served)


def revoke_token(session: Session, *, actor: User, token: CalendarToken, now: datetime) -> None:
    if token.revoked_at is not None:
        return
    token.revoked_at = now
    audit.record(
        session,
        now=now,
        action="revoke",
        object_type="calendar_token",
        object_id=token.id,
        actor=actor,
        detail={"kind": token.kind, "province": token.province, "user_id": token.user_id},
    )


def active_tokens(
    session: Session,
    *,
    kind: TokenKind,
    user_id: int | None = None,
    provinces: Iterable[str] | None = None,
) -> list[CalendarToken]:
    query = select(CalendarToken).where(
        CalendarToken.kind == kind.value, CalendarToken.revoked_at.is_(None)
    )
    if user_id is not None:
        query = query.where(CalendarToken.user_id == user_id)
    if provinces is not None:
        query = query.where(CalendarToken.province.in_(list(provinces)))
    return list(session.scalars(query.order_by(CalendarToken.province, CalendarToken.id)))


def token_for_feed(
    session: Session, *, kind: TokenKind, raw: str, served: Sequence[str]
) -> CalendarToken | None:
    """The token behind a feed URL if it still opens the feed, else None (one answer for
    unknown, revoked, and holders who are gone or lost the province)."""
    token = session.scalar(
        select(CalendarToken).where(
            CalendarToken.token_hash == hash_token(raw), CalendarToken.kind == kind.value
        )
    )
    if token is None or token.revoked_at is not None:
        return None
    if kind is TokenKind.OPERATOR:
        owner = session.get(User, token.user_id) if token.user_id is not None else None
        return token if owner is not None and owner.active else None
    creator = session.get(User, token.created_by_id) if token.created_by_id is not None else None
    if creator is None or not creator.active or token.province is None:
        return None
    return token if token.province in editable_rotas(creator, served) else None


# ---------------------------------------------------------------------------------------
# Building feeds


def feed_range(now: datetime) -> tuple[datetime, datetime]:
    """What a feed shows: the past 30 days and the next 180."""
    return now - FEED_PAST, now + FEED_FUTURE


def _uid(duty: Duty) -> str:
    # Stable for as long as the shift itself is: who, which rota, when it starts.
    start = duty.start.strftime("%Y%m%dT%H%M%SZ")
    return f"{duty.province or 'coord'}-{duty.tier}-{duty.user_id}-{start}@{UID_DOMAIN}"


def _title(duty: Duty) -> str:
    if duty.tier is Tier.COORDINATOR:
        return str(_("On call: coordinator"))
    return str(
        _("On call %(province)s (%(tier)s)", province=duty.province, tier=tier_word(duty.tier))
    )


def _calendar(name: str, events: Iterable[tuple[Duty, str]], now: datetime) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    calendar.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", "PT1H")
    for duty, summary in events:
        event = Event()
        event.add("uid", _uid(duty))
        event.add("dtstamp", now)
        event.add("dtstart", duty.start)
        event.add("dtend", duty.end)
        event.add("summary", summary)
        calendar.add_component(event)
    return bytes(calendar.to_ical())


def _name(users: dict[int, User], user_id: int) -> str:
    user = users.get(user_id)
    return "?" if user is None else user.display_name


def _visible(found: Iterable[Duty], start: datetime, end: datetime) -> list[Duty]:
    return sorted(
        (duty for duty in found if duty.end > start and duty.start < end),
        key=lambda duty: (duty.start, duty.province or "", duty.tier.value),
    )


def _whole(
    fetch: Callable[[datetime, datetime], list[Duty]], start: datetime, end: datetime
) -> list[Duty]:
    """The duties seen in [start, end), each with its real start and end.

    `fetch` resolves duties within a range; a duty starting at the range's start or ending
    at its end may be cut there, so that side of the range widens until none is.
    """
    before = after = _MARGIN
    while True:
        low, high = start - before, end + after
        visible = _visible(fetch(low, high), start, end)
        cut_low = before < _REACH and any(duty.start <= low for duty in visible)
        cut_high = after < _REACH and any(duty.end >= high for duty in visible)
        if not (cut_low or cut_high):
            return visible
        before = min(before * 2, _REACH) if cut_low else before
        after = min(after * 2, _REACH) if cut_high else after


def own_duties(
    session: Session, *, user_id: int, start: datetime, end: datetime
) -> list[tuple[Duty, bool]]:
    """An operator's duties in every province and tier that overlap [start, end), whole
    (their real start and end, beyond the range), each with whether a swap is part of it."""
    swaps: set[tuple[str | None, Tier, datetime]] = set()

    def fetch(low: datetime, high: datetime) -> list[Duty]:
        by_scope: dict[tuple[str | None, Tier], list[Shift]] = {}
        for province, segment in upcoming_shifts(session, user_id=user_id, start=low, end=high):
            by_scope.setdefault((province, segment.tier), []).append(segment)
            if segment.source is Source.OVERRIDE:
                swaps.add((province, segment.tier, segment.start))
        found: list[Duty] = []
        for (province, _tier), segments in by_scope.items():
            found.extend(duties(province, segments))
        return found

    found = _whole(fetch, start, end)
    return [
        (
            duty,
            any(
                p == duty.province and tier is duty.tier and duty.start <= at < duty.end
                for p, tier, at in swaps
            ),
        )
        for duty in found
    ]


def operator_feed(session: Session, *, user: User, now: datetime) -> bytes:
    """The operator's own shifts in every province and tier, in their language."""
    start, end = feed_range(now)
    found = own_duties(session, user_id=user.id, start=start, end=end)
    with force_locale(user.locale):
        events = [(duty, _title(duty)) for duty, _swap in found]
        name = _("Ali: my on-call shifts")
    return _calendar(name, events, now)


def province_feed(session: Session, *, province: str, locale: str, now: datetime) -> bytes:
    """Primary and backup shifts of a province, with the operators' names only."""

    def fetch(low: datetime, high: datetime) -> list[Duty]:
        found: list[Duty] = []
        for tier in (Tier.PRIMARY, Tier.BACKUP):
            schedule = province_schedule(session, province=province, tier=tier, start=low, end=high)
            found.extend(duties(province, schedule))
        return found

    visible = _whole(fetch, *feed_range(now))
    users = users_by_id(session, (duty.user_id for duty in visible))
    with force_locale(locale):
        events = [(duty, f"{_title(duty)}: {_name(users, duty.user_id)}") for duty in visible]
        name = _("Ali: on-call rota %(province)s", province=province)
    return _calendar(name, events, now)
