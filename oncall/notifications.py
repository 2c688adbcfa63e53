"""Reminders, phone checks and gap warnings by SMS: each sent once, whatever the restarts."""

# Every message is sent once through core.claims, under a key naming what it is about
# (``reminder:day_before:<user>:<province>:<tier>:<start>``, ``gaps:<province>:<local
# date>:<recipient>``...). Jobs work out what is due from the moments themselves, not from
# "the last run": a worker that was down sends, when it comes back, every reminder whose
# moment has passed and whose shift has not started (the day-before one) or started less
# than START_GRACE ago (the start-of-shift one).

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from flask import Flask, current_app, has_app_context
from flask_babel import force_locale, ngettext, pgettext
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.claims import Outcome, send_once
from core.clock import ROME
from core.config import get_settings
from core.formatting import format_clock, format_when, local_date
from core.models import Role, User, users_with_role
from core.telephony import Telephony
from oncall.chain import Gap, all_gaps, rostered_users
from oncall.schedule import Shift, Tier, gaps

log = logging.getLogger(__name__)

DAY_BEFORE_AT = time(18, 0)
# The start-of-shift reminder still goes out this long after the start (a worker that was
# down); later than that the operator is well into the shift and it would only confuse.
START_GRACE = timedelta(hours=4)
# The daily checks go out from this local time on, not at midnight.
DAILY_AT = time(9, 0)
LOOKAHEAD = timedelta(days=14)
# An SMS stays short: past this many references the hand-over says "and N more".
HANDOVER_MAX = 8

# What an outgoing operator leaves open, by reference: (session, province, outgoing operator's
# id, now) -> references. Cases live in routing, which oncall must not import: routing
# registers the function (`add_handover_source`) and the start-of-shift reminder asks it.
HandoverSource = Callable[[Session, str, int, datetime], list[str]]
# The phone check also makes sure every province can be reached this far ahead: someone on
# call (primary or backup) with a phone Ali may page, at every moment.
REACHABLE_AHEAD = timedelta(hours=24)


@dataclass(frozen=True)
class Duty:
    """A stretch of time one operator holds a tier, whatever rules it is made of."""

    user_id: int
    province: str | None
    tier: Tier
    start: datetime
    end: datetime


def duties(province: str | None, schedule: Iterable[Shift]) -> list[Duty]:
    """Segments of one final schedule merged where the same operator goes on holding it.

    The final schedule cuts where the rule changes (an override by the same operator, the
    next shift of a one-person rotation); for the operator it is all one shift.
    """
    merged: list[Duty] = []
    for segment in sorted(schedule, key=lambda item: item.start):
        last = merged[-1] if merged else None
        if last is not None and last.user_id == segment.operator_id and last.end == segment.start:
            merged[-1] = Duty(last.user_id, province, last.tier, last.start, segment.end)
        else:
            merged.append(
                Duty(segment.operator_id, province, segment.tier, segment.start, segment.end)
            )
    return merged


def status_callback_url() -> str:
    return get_settings().public_url + "/twilio/status"


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H%MZ")


# ---------------------------------------------------------------------------------------
# Reminders


def day_before_moment(start: datetime) -> datetime:
    """18:00 in Rome on the local day before the shift starts, as a UTC instant."""
    local_day = local_date(start) - timedelta(days=1)
    return datetime.combine(local_day, DAY_BEFORE_AT, tzinfo=ROME).astimezone(UTC)


def tier_word(tier: Tier) -> str:
    """The tier as a word inside a sentence (an SMS, a calendar event), in the current
    language: the stored codes are English and must not reach an Italian message."""
    words: dict[Tier, str] = {
        Tier.PRIMARY: pgettext("on-call tier in a sentence", "primary"),
        Tier.BACKUP: pgettext("on-call tier in a sentence", "backup"),
        Tier.COORDINATOR: pgettext("on-call tier in a sentence", "coordinator"),
    }
    return words[tier]


def add_handover_source(app: Flask, source: HandoverSource) -> None:
    app.extensions.setdefault("ali.handover_sources", []).append(source)


def handover_references(
    session: Session, *, province: str, outgoing_id: int, now: datetime
) -> list[str]:
    """The references the outgoing operator of `province` leaves open (every registered
    source asked; none outside an app)."""
    if not has_app_context():
        return []
    sources: list[HandoverSource] = current_app.extensions.get("ali.handover_sources", [])
    found: list[str] = []
    for source in sources:
        found += [ref for ref in source(session, province, outgoing_id, now) if ref not in found]
    return found


def _handover_text(references: Sequence[str]) -> str:
    shown = ", ".join(references[:HANDOVER_MAX])
    more = len(references) - HANDOVER_MAX
    if more > 0:
        return str(
            _(
                "Open cases from the previous shift: %(references)s and %(more)d more.",
                references=shown,
                more=more,
            )
        )
    return str(_("Open cases from the previous shift: %(references)s.", references=shown))


def reminder_text(
    duty: Duty, *, kind: str, now: datetime, locale: str, handover: Sequence[str] = ()
) -> str:
    """The SMS of a reminder, in the operator's language; nothing but their own shift (and,
    at the start of a shift, the references of the cases the previous operator left open)."""
    same_day = local_date(now) == local_date(duty.start)
    text: str
    with force_locale(locale):
        values = {
            "time": format_clock(duty.start),
            "tier": tier_word(duty.tier),
            "province": duty.province,
        }
        if kind == "start":
            if duty.tier is Tier.COORDINATOR:
                text = _("Ali: from %(time)s you are on call as coordinator.", **values)
            else:
                text = _(
                    "Ali: from %(time)s you are on call (%(tier)s) for %(province)s.", **values
                )
        elif duty.tier is Tier.COORDINATOR:
            if same_day:
                text = _("Ali: today from %(time)s you are on call as coordinator.", **values)
            else:
                text = _("Ali: tomorrow from %(time)s you are on call as coordinator.", **values)
        elif same_day:
            text = _(
                "Ali: today from %(time)s you are on call (%(tier)s) for %(province)s.", **values
            )
        else:
            text = _(
                "Ali: tomorrow from %(time)s you are on call (%(tier)s) for %(province)s.", **values
            )
        if kind == "start" and handover:
            text = f"{text} {_handover_text(handover)}"
    return text


def due_reminders(duties_found: Iterable[Duty], *, now: datetime) -> list[tuple[str, Duty]]:
    """(kind, duty) of every reminder whose moment has come and whose shift is still ahead.

    ``duties_found`` must come from a range that began more than START_GRACE + 1 day before
    ``now``: a duty starting at the very beginning of the range may have begun earlier.
    """
    due: list[tuple[str, Duty]] = []
    for duty in duties_found:
        if day_before_moment(duty.start) <= now < duty.start:
            due.append(("day_before", duty))
        if duty.start <= now < min(duty.start + START_GRACE, duty.end):
            due.append(("start", duty))
    return due


def reminder_key(kind: str, duty: Duty) -> str:
    return f"reminder:{kind}:{duty.user_id}:{duty.province or '-'}:{duty.tier}:{_stamp(duty.start)}"


def send_shift_reminders(session: Session, telephony: Telephony, now: datetime) -> dict[str, int]:
    """Job: the day-before (18:00 local) and start-of-shift reminders that are due."""
    window_start = now - START_GRACE - timedelta(days=1)
    window_end = now + timedelta(days=2)
    provinces = get_settings().provinces
    segments: dict[tuple[str | None, Tier], list[Shift]] = {}
    users: dict[int, User] = {}
    for user, province, segment in rostered_users(
        session, provinces=provinces, start=window_start, end=window_end
    ):
        segments.setdefault((province, segment.tier), []).append(segment)
        users[user.id] = user
    scopes = [(p, t) for p in provinces for t in (Tier.PRIMARY, Tier.BACKUP)]
    found = [
        duty
        for province, tier in [*scopes, (None, Tier.COORDINATOR)]
        for duty in duties(province, segments.get((province, tier), []))
    ]
    # A duty cut by the start of the range began earlier: its reminders are long past.
    due = due_reminders((d for d in found if d.start > window_start), now=now)
    # Who held the same tier of the same province right before each duty.
    before = {(d.province, d.tier, d.end): d for d in found}
    counts = {outcome.value: 0 for outcome in Outcome} | {"unreachable": 0}
    for kind, duty in due:
        user = users[duty.user_id]
        if not user.can_be_paged:
            counts["unreachable"] += 1
            continue
        outgoing = before.get((duty.province, duty.tier, duty.start))
        handover: list[str] = []
        if (
            kind == "start"
            and duty.province is not None
            and outgoing is not None
            and outgoing.user_id != duty.user_id
        ):
            handover = handover_references(
                session, province=duty.province, outgoing_id=outgoing.user_id, now=now
            )
        outcome = _send_to(
            session,
            telephony,
            user,
            key=reminder_key(kind, duty),
            kind=f"reminder_{kind}",
            body=reminder_text(duty, kind=kind, now=now, locale=user.locale, handover=handover),
            now=now,
        )
        counts[outcome.value] += 1
        if outcome is Outcome.RETRY:
            # Twilio is down or throttling: the next tick tries them all again.
            break
    return counts


# ---------------------------------------------------------------------------------------
# Who hears about a province's problems


def rota_managers(session: Session, province: str | None) -> list[User]:
    """Reachable rota managers of the province (coordinators for the coordinator tier, or
    when the province has no reachable rota manager), by id."""
    if province is not None:
        managers = [
            user
            for user in users_with_role(session, Role.ROTA_MANAGER)
            if user.can_be_paged and province in user.provinces
        ]
        if managers:
            return managers
    return [user for user in users_with_role(session, Role.COORDINATOR) if user.can_be_paged]


def texting_coordinators(session: Session, *, excluding: int | None = None) -> list[User]:
    """The coordinators an SMS notice can reach (verified phone, no STOP), by id: who hears
    of it when nobody it is meant for can, rather than nobody."""
    return [
        user
        for user in users_with_role(session, Role.COORDINATOR)
        if user.can_be_paged and user.sms_opted_out_at is None and user.id != excluding
    ]


def _daily_due(now: datetime) -> bool:
    return now.astimezone(ROME).time() >= DAILY_AT


# ---------------------------------------------------------------------------------------
# Daily phone check


def operators_without_verified_phone(
    session: Session, *, provinces: Sequence[str], start: datetime, end: datetime
) -> dict[str | None, list[User]]:
    """Operators on some rota in [start, end) who cannot be paged: no phone, or not verified.

    Keys are the siglas of ``provinces`` where somebody is missing one, and None for the
    coordinator tier; each list is sorted by display name.
    """
    found: dict[str | None, dict[int, User]] = {}
    for user, province, _shift in rostered_users(
        session, provinces=provinces, start=start, end=end
    ):
        if not user.can_be_paged:
            found.setdefault(province, {})[user.id] = user
    return {
        province: sorted(users.values(), key=lambda u: u.display_name)
        for province, users in found.items()
    }


def check_rostered_phones(session: Session, telephony: Telephony, now: datetime) -> dict[str, int]:
    """Job: once a day, tell the rota managers how many rostered operators have no verified
    phone in the next 14 days (a count, no names: it travels by SMS), then warn of any
    moment of the next 24 hours when a province has nobody reachable on call."""
    counts = {outcome.value: 0 for outcome in Outcome}
    if not _daily_due(now):
        return counts
    local_day = local_date(now).isoformat()
    missing = operators_without_verified_phone(
        session, provinces=get_settings().provinces, start=now, end=now + LOOKAHEAD
    )
    for province, users in sorted(missing.items(), key=lambda item: item[0] or ""):
        for manager in rota_managers(session, province):
            with force_locale(manager.locale):
                if province is None:
                    body = ngettext(
                        "Ali: %(num)d person on the coordinator rota in the next 14 days has "
                        "no verified phone. Check the rota page.",
                        "Ali: %(num)d people on the coordinator rota in the next 14 days have "
                        "no verified phone. Check the rota page.",
                        len(users),
                    )
                else:
                    body = ngettext(
                        "Ali: %(num)d operator on the %(province)s rota in the next 14 days "
                        "has no verified phone. Check the rota page.",
                        "Ali: %(num)d operators on the %(province)s rota in the next 14 days "
                        "have no verified phone. Check the rota page.",
                        len(users),
                        province=province,
                    )
            outcome = _send_to(
                session,
                telephony,
                manager,
                key=f"phones:{province or '-'}:{local_day}:{manager.id}",
                kind="phone_check",
                body=body,
                now=now,
            )
            counts[outcome.value] += 1
            if outcome is Outcome.RETRY:
                return counts
    return _warn_unreachable(session, telephony, now, counts)


# ---------------------------------------------------------------------------------------
# Daily reachability check


def unreachable_stretches(
    session: Session, *, provinces: Sequence[str], start: datetime, end: datetime
) -> dict[str, list[Gap]]:
    """The stretches of [start, end) when a province has nobody reachable on call: no primary
    or backup, or only ones Ali cannot page (no verified phone). Only provinces with such a
    stretch are keys; stretches are UTC, in order."""
    covered: dict[str, list[Shift]] = {province: [] for province in provinces}
    for user, province, segment in rostered_users(
        session, provinces=provinces, start=start, end=end
    ):
        if province is not None and user.can_be_paged:
            covered[province].append(segment)
    found = {province: gaps(covered[province], start, end) for province in provinces}
    return {province: stretches for province, stretches in found.items() if stretches}


def _unreachable_text(found: dict[str, list[Gap]], locale: str) -> str:
    """One SMS for every province a person hears about: the provinces, and the first stretch."""
    first_province, stretches = min(found.items(), key=lambda item: item[1][0][0])
    start, end = stretches[0]
    text: str
    with force_locale(locale):
        text = ngettext(
            "Ali: in the next 24 hours %(provinces)s has times with nobody reachable on call, "
            "the first from %(start)s to %(end)s. Cases would go to the coordinators: cover "
            "them on the rota page.",
            "Ali: in the next 24 hours %(provinces)s have times with nobody reachable on call, "
            "the first in %(first)s from %(start)s to %(end)s. Cases would go to the "
            "coordinators: cover them on the rota page.",
            len(found),
            provinces=", ".join(sorted(found)),
            first=first_province,
            start=format_when(start, "dd/MM"),
            end=format_when(end, "dd/MM"),
        )
    return text


def _warn_unreachable(
    session: Session, telephony: Telephony, now: datetime, counts: dict[str, int]
) -> dict[str, int]:
    """Each province's rota managers, and the coordinators (the tier every unreachable case
    falls to), hear once a day of the provinces of theirs with nobody reachable at some
    moment of the next 24 hours."""
    found = unreachable_stretches(
        session, provinces=get_settings().provinces, start=now, end=now + REACHABLE_AHEAD
    )
    if not found:
        return counts
    local_day = local_date(now).isoformat()
    told: dict[int, tuple[User, dict[str, list[Gap]]]] = {}
    for province, stretches in found.items():
        for user in rota_managers(session, province):
            told.setdefault(user.id, (user, {}))[1][province] = stretches
    for user in users_with_role(session, Role.COORDINATOR):
        if user.can_be_paged:
            told[user.id] = (user, found)
    for user_id in sorted(told):
        user, theirs = told[user_id]
        outcome = _send_to(
            session,
            telephony,
            user,
            key=f"reachable:{local_day}:{user.id}",
            kind="reachable_daily",
            body=_unreachable_text(theirs, user.locale),
            now=now,
        )
        counts[outcome.value] += 1
        if outcome is Outcome.RETRY:
            break
    return counts


def _send_to(
    session: Session,
    telephony: Telephony,
    user: User,
    *,
    key: str,
    kind: str,
    body: str,
    now: datetime,
) -> Outcome:
    phone = user.phone
    if phone is None:
        return Outcome.REFUSED
    return send_once(
        session,
        key=key,
        kind=kind,
        user_id=user.id,
        now=now,
        send=lambda: telephony.send_sms(to=phone, body=body, status_callback=status_callback_url()),
    )


# ---------------------------------------------------------------------------------------
# Gap warnings


def gap_window(now: datetime) -> tuple[datetime, datetime]:
    """The range gap warnings look at: the next 14 days."""
    return now, now + LOOKAHEAD


def current_gaps(session: Session, *, province: str, now: datetime) -> list[Gap]:
    """The gaps of the province in the next 14 days; take them before a change, then pass
    them to ``warn_new_gaps`` after it."""
    start, end = gap_window(now)
    return all_gaps(session, provinces=[province], start=start, end=end)[province]


def _gap_text(province: str, gaps_found: Sequence[Gap], locale: str) -> str:
    text: str
    with force_locale(locale):
        text = ngettext(
            "Ali: the %(province)s rota has %(num)d gap with no primary in the next 14 days, "
            "from %(start)s. Open the rota page to cover it.",
            "Ali: the %(province)s rota has %(num)d gaps with no primary in the next 14 days, "
            "the first from %(start)s. Open the rota page to cover them.",
            len(gaps_found),
            province=province,
            start=format_when(gaps_found[0][0], "dd/MM"),
        )
    return text


def warn_gaps_daily(session: Session, telephony: Telephony, now: datetime) -> dict[str, int]:
    """Job: once a day, each province's rota managers hear of its gaps in the next 14 days."""
    counts = {outcome.value: 0 for outcome in Outcome}
    if not _daily_due(now):
        return counts
    local_day = local_date(now).isoformat()
    start, end = gap_window(now)
    found = all_gaps(session, provinces=get_settings().provinces, start=start, end=end)
    for province, province_gaps in found.items():
        if not province_gaps:
            continue
        for manager in rota_managers(session, province):
            outcome = _send_to(
                session,
                telephony,
                manager,
                key=f"gaps:{province}:{local_day}:{manager.id}",
                kind="gap_daily",
                body=_gap_text(province, province_gaps, manager.locale),
                now=now,
            )
            counts[outcome.value] += 1
            if outcome is Outcome.RETRY:
                return counts
    return counts


def new_gaps(before: Iterable[Gap], after: Iterable[Gap]) -> list[Gap]:
    """Gaps of ``after`` not already inside a gap of ``before`` (a gap that grew is new)."""
    old = list(before)
    return [
        (start, end)
        for start, end in after
        if not any(old_start <= start and end <= old_end for old_start, old_end in old)
    ]


def warn_new_gaps(
    session: Session,
    telephony: Telephony,
    *,
    province: str,
    before: Sequence[Gap],
    now: datetime,
    exclude_user_id: int | None = None,
) -> list[Gap]:
    """Right after a rota change: warn the province's rota managers of each gap it opened.

    ``before`` is ``current_gaps(...)`` taken before the change, with the same ``now``.
    Call it AFTER committing the change: it commits the session itself (each warning is
    claimed and committed before it is sent). Idempotent per gap and manager; the manager
    who made the change may be left out with ``exclude_user_id``. Returns the new gaps.
    """
    opened = new_gaps(before, current_gaps(session, province=province, now=now))
    for gap_start, gap_end in opened:
        for manager in rota_managers(session, province):
            if manager.id == exclude_user_id:
                continue
            with force_locale(manager.locale):
                body = _(
                    "Ali: after a change the %(province)s rota has no primary from %(start)s "
                    "to %(end)s. Open the rota page to cover it.",
                    province=province,
                    start=format_when(gap_start, "dd/MM"),
                    end=format_when(gap_end, "dd/MM"),
                )
            outcome = _send_to(
                session,
                telephony,
                manager,
                key=f"gap:{province}:{_stamp(gap_start)}:{_stamp(gap_end)}:{manager.id}",
                kind="gap_new",
                body=body,
                now=now,
            )
            if outcome is Outcome.RETRY:
                # The daily warning will still carry it; a page save must not hang on Twilio.
                return opened
    return opened


# ---------------------------------------------------------------------------------------
# SMS opt-outs (the operator texted STOP: Twilio refuses every SMS to them with 21610)

# Twilio's own keywords (Advanced Opt-Out defaults): it stops or resumes delivery itself
# and forwards the text; Ali follows what Twilio will do.
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})
# A notice that could not go out for this long (Twilio down all day) is not chased further.
OPT_OUT_NOTICE_DAYS = 1


def mark_sms_opted_out(
    session: Session, user: User, now: datetime, *, via: str, actor: User | str = "twilio"
) -> bool:
    """The operator cannot get SMS any more: alerts reach them by call, the rota managers
    hear of it (``tell_sms_opt_outs``). True if it is news."""
    if user.sms_opted_out_at is not None:
        return False
    user.sms_opted_out_at = now
    audit.record(
        session,
        now=now,
        action="update",
        object_type="user",
        object_id=user.id,
        actor=actor,
        fields=["sms_opted_out_at"],
        detail={"via": via},
    )
    log.warning("operator %s opted out of SMS (%s): alerts go by call", user.id, via)
    return True


def clear_sms_opt_out(
    session: Session, user: User, now: datetime, *, via: str, actor: User | str = "twilio"
) -> bool:
    """SMS reach the operator again (they texted START, or have a newly verified phone)."""
    if user.sms_opted_out_at is None:
        return False
    user.sms_opted_out_at = None
    audit.record(
        session,
        now=now,
        action="update",
        object_type="user",
        object_id=user.id,
        actor=actor,
        fields=["sms_opted_out_at"],
        detail={"via": via},
    )
    log.info("operator %s gets SMS again (%s)", user.id, via)
    return True


def _opt_out_text(operator: User, manager: User) -> str:
    text: str
    with force_locale(manager.locale):
        text = _(
            "Ali: %(name)s has blocked SMS from Ali (STOP): alerts reach them by call only. "
            "Ask them to text START to this number.",
            name=operator.display_name,
        )
    return text


def tell_sms_opt_outs(session: Session, telephony: Telephony, now: datetime) -> dict[str, int]:
    """The rota managers of each province of an operator who opted out hear of it once per
    opt-out. COMMITS (each notice is claimed before it is sent)."""
    counts = {outcome.value: 0 for outcome in Outcome}
    opted_out = list(
        session.scalars(
            select(User).where(
                User.sms_opted_out_at > now - timedelta(days=OPT_OUT_NOTICE_DAYS),
                User.active.is_(True),
            )
        )
    )
    for operator in opted_out:
        since = operator.sms_opted_out_at
        if since is None:  # pragma: no cover -- selected for it
            continue
        managers: dict[int, User] = {}
        provinces: list[str | None] = list(operator.provinces) or [None]
        for province in provinces:
            for manager in rota_managers(session, province):
                managers.setdefault(manager.id, manager)
        told = [
            user
            for user in managers.values()
            if user.id != operator.id and user.sms_opted_out_at is None
        ] or texting_coordinators(session, excluding=operator.id)
        for manager in told:
            outcome = _send_to(
                session,
                telephony,
                manager,
                key=f"sms_opt_out:{operator.id}:{_stamp(since)}:{manager.id}",
                kind="sms_opt_out",
                body=_opt_out_text(operator, manager),
                now=now,
            )
            counts[outcome.value] += 1
            if outcome is Outcome.RETRY:
                return counts
    return counts
