"""Who is on call: the chain of a province at an instant, final schedules, gaps, rosters."""

# Contract for callers (the router, pages, iCal, gap checks, jobs, the CLI):
#
# * Plain functions taking a Session; they only read.
# * Instants in are aware datetimes (naive ones raise ValueError); results are in UTC.
# * Everything resolves the rules of oncall.rules with oncall.schedule.final_schedule, so
#   the chain at t is the segment of the month view that holds t.
# * Holders who are no longer active are dropped from every resolved schedule: a deactivated
#   operator cannot be paged, so their shifts are gaps (and are reported as such).

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Role, User, users_by_id, users_with_role
from oncall.rules import Rules, Scope, load_rules, scope_of, scopes_of_operator
from oncall.schedule import Conflict, RotationRule, Shift, Tier, conflicts, gaps, to_utc

Gap = tuple[datetime, datetime]

_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class OnCallChain:
    """Who answers for a province at an instant: the chain the router escalates along.

    ``coordinators`` is the coordinator on call (coordinator tier) when there is one, else
    every active coordinator, so the last step of an escalation always reaches somebody
    while the project has coordinators at all.
    """

    province: str
    at: datetime
    primary: User | None
    backup: User | None
    coordinators: list[User]


def on_call_chain(session: Session, *, province: str, at: datetime) -> OnCallChain:
    """Primary, backup and coordinators of a province at an instant: the rules of the three
    tiers in one query, their holders in a second (and every active coordinator in a third
    when nobody holds the coordinator tier)."""
    instant = to_utc(at, "at")
    until = instant + _TICK
    scopes: list[Scope] = [
        (province, Tier.PRIMARY),
        (province, Tier.BACKUP),
        (None, Tier.COORDINATOR),
    ]
    holder_ids: dict[Tier, int] = {}
    for (_, tier), rules in load_rules(session, scopes, instant, until).items():
        segment = rules.schedule(instant, until)
        if segment:
            holder_ids[tier] = segment[0].operator_id
    users = users_by_id(session, holder_ids.values())
    holders = {tier: users.get(user_id) for tier, user_id in holder_ids.items()}
    for tier, user in holders.items():
        if user is not None and not user.active:
            holders[tier] = None
    coordinator = holders.get(Tier.COORDINATOR)
    return OnCallChain(
        province=province,
        at=instant,
        primary=holders.get(Tier.PRIMARY),
        backup=holders.get(Tier.BACKUP),
        coordinators=(
            [coordinator] if coordinator is not None else users_with_role(session, Role.COORDINATOR)
        ),
    )


def coordinators_to_page(
    session: Session, chain: OnCallChain, *, declined: Collection[int] = ()
) -> tuple[list[User], list[User]]:
    """The coordinators the last tier of ``chain`` pages, as (considered, pageable): the
    chain's coordinators; when none of them can be paged (no verified phone, or they
    declined), every active coordinator, rather than nobody: the last tier must reach a
    human while there is one. The router and ``GET /api/v1/oncall`` both ask here."""
    considered = list(chain.coordinators)
    pageable = [u for u in considered if u.can_be_paged and u.id not in declined]
    if not pageable:
        considered = users_with_role(session, Role.COORDINATOR)
        pageable = [u for u in considered if u.can_be_paged and u.id not in declined]
    return considered, pageable


def province_schedule(
    session: Session,
    *,
    province: str | None,
    tier: Tier | str,
    start: datetime,
    end: datetime,
    with_rotation: RotationRule | None = None,
) -> list[Shift]:
    """The final schedule of a province's tier within [start, end), UTC, in normal form.

    The coordinator tier is project-wide: ``province`` is then ignored. ``with_rotation``
    resolves as if that rule were saved (replacing the stored rotation with its id, if any):
    the preview of a rotation being created or edited, gaps included.
    """
    tier = Tier(tier)
    start, end = to_utc(start, "start"), to_utc(end, "end")
    if end <= start:
        return []
    scope = scope_of(province, tier)
    loaded = load_rules(session, [scope], start, end)
    if with_rotation is not None:
        loaded[scope].add_rotation(with_rotation)
    return _resolve(session, loaded, start, end)[scope]


def all_gaps(
    session: Session, *, provinces: Collection[str], start: datetime, end: datetime
) -> dict[str, list[Gap]]:
    """Gaps of the primary tier of each province (every province is a key, even gapless)."""
    start, end = to_utc(start, "start"), to_utc(end, "end")
    if end <= start:
        return {p: [] for p in provinces}
    loaded = load_rules(session, [(p, Tier.PRIMARY) for p in provinces], start, end)
    resolved = _resolve(session, loaded, start, end)
    return {p: gaps(resolved[(p, Tier.PRIMARY)], start, end) for p in provinces}


def all_conflicts(
    session: Session, *, provinces: Collection[str], start: datetime, end: datetime
) -> dict[str, list[Conflict]]:
    """Where one operator is primary and backup of a province at once (every province is a
    key, even without any)."""
    start, end = to_utc(start, "start"), to_utc(end, "end")
    if end <= start:
        return {p: [] for p in provinces}
    scopes = [(p, tier) for p in provinces for tier in (Tier.PRIMARY, Tier.BACKUP)]
    resolved = _resolve(session, load_rules(session, scopes, start, end), start, end)
    return {
        p: conflicts(resolved[(p, Tier.PRIMARY)], resolved[(p, Tier.BACKUP)]) for p in provinces
    }


def upcoming_shifts(
    session: Session, *, user_id: int, start: datetime, end: datetime
) -> list[tuple[str | None, Shift]]:
    """An operator's own segments of every final schedule within [start, end), by start.

    Only time the operator really holds is listed: where an override gives their turn to
    somebody else, that part is not theirs. The province is None for the coordinator tier.
    """
    start, end = to_utc(start, "start"), to_utc(end, "end")
    if end <= start:
        return []
    loaded = load_rules(session, scopes_of_operator(session, user_id, start, end), start, end)
    found = [
        (province, segment)
        for (province, _tier), schedule in _resolve(session, loaded, start, end).items()
        for segment in schedule
        if segment.operator_id == user_id
    ]
    found.sort(key=lambda item: (item[1].start, item[1].tier, item[0] or ""))
    return found


def rostered_users(
    session: Session, *, provinces: Collection[str], start: datetime, end: datetime
) -> list[tuple[User, str | None, Shift]]:
    """Every segment in [start, end) of the primary and backup tiers of these provinces and
    of the coordinator tier (province None), with its holder; sorted by start."""
    start, end = to_utc(start, "start"), to_utc(end, "end")
    if end <= start:
        return []
    scopes: list[Scope] = [(p, t) for p in provinces for t in (Tier.PRIMARY, Tier.BACKUP)]
    scopes.append((None, Tier.COORDINATOR))
    schedules = [
        (province, segment)
        for (province, _tier), rules in load_rules(session, scopes, start, end).items()
        for segment in rules.schedule(start, end)
    ]
    users = users_by_id(session, (segment.operator_id for _, segment in schedules))
    found = [
        (user, province, segment)
        for province, segment in schedules
        if (user := users[segment.operator_id]).active
    ]
    found.sort(key=lambda item: (item[2].start, item[1] or "", item[2].tier.value))
    return found


def _resolve(
    session: Session, loaded: dict[Scope, Rules], start: datetime, end: datetime
) -> dict[Scope, list[Shift]]:
    """Each scope's final schedule within [start, end), without the segments of operators
    who are no longer active (see the module notes)."""
    resolved = {scope: rules.schedule(start, end) for scope, rules in loaded.items()}
    holders = {segment.operator_id for schedule in resolved.values() for segment in schedule}
    if not holders:
        return resolved
    inactive = set(
        session.scalars(select(User.id).where(User.id.in_(holders), User.active.is_(False)))
    )
    return {
        scope: [segment for segment in schedule if segment.operator_id not in inactive]
        for scope, schedule in resolved.items()
    }
