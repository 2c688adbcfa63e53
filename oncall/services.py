"""The rota as a service: rules loaded from the database, resolved, changed with an audit."""

# Contract for callers (views, jobs, feeds, the router, the CLI):
#
# * Plain functions taking a Session; they flush (to get ids) but never commit.
# * Instants in and out are aware datetimes; results are in UTC (see oncall.schedule).
# * Validation errors raise RotaError, whose message is an English sentence meant for the
#   user (views translate it); ``RotaError.field`` names the form field when there is one.
# * The served provinces come from the ``served`` parameter of the changing functions; when
#   it is None they come from the current app's settings (``settings.provinces``). Outside an
#   app context with ``served=None`` only the shape of the sigla is checked.
# * Holders who are no longer active are dropped from every resolved schedule: a deactivated
#   operator cannot be paged, so their shifts are gaps (and are reported as such).
# * Explicit shifts and overrides last at most MAX_ASSIGNMENT; this bound is what lets a
#   lookup touch only the few rows around an instant instead of years of them.

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import groupby
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    Executable,
    String,
    and_,
    bindparam,
    cast,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from core import audit
from core.db import UTCDateTime
from core.models import Role, User
from oncall import schedule as sched
from oncall.models import Override, RotaShift, Rotation, RotationMember
from oncall.schedule import ROME, ExplicitShift, RotationRule, Shift, Tier

__all__ = [
    "MAX_ASSIGNMENT",
    "NEW_ROTATION_ID",
    "PERIODS",
    "OnCallChain",
    "RotaError",
    "active_coordinators",
    "add_override",
    "add_shift",
    "all_gaps",
    "coordinator_schedule",
    "create_rotation",
    "delete_override",
    "delete_rotation",
    "delete_shift",
    "draft_rule",
    "explicit_shift_of",
    "on_call_chain",
    "override_of",
    "primary_on_call",
    "province_gaps",
    "province_schedule",
    "rostered_users",
    "rotation_snapshot",
    "rule_of",
    "upcoming_shifts",
    "update_rotation",
    "users_by_id",
]

PERIODS = (1, 7)
# A quarter: long enough for any cover or swap; longer arrangements belong in a rotation.
MAX_ASSIGNMENT = timedelta(days=92)
# Id given to a rotation that is not saved yet (previews): above any real id, so a draft
# wins ties the way the saved rotation will (the newest rotation takes over).
NEW_ROTATION_ID = 2**31 - 1
_TICK = timedelta(microseconds=1)
_UPDATABLE = frozenset(
    {
        "province",
        "tier",
        "operator_ids",
        "handover",
        "period_days",
        "start_date",
        "end_date",
        "name",
        "priority",
    }
)


class RotaError(ValueError):
    """A rota change that cannot be made; the message says why, in English, for the user."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


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


# ---------------------------------------------------------------------------------------
# Model -> pure rule converters


def rule_of(rotation: Rotation) -> RotationRule:
    """The pure rule of a stored rotation."""
    return RotationRule(
        id=rotation.id,
        tier=Tier(rotation.tier),
        operator_ids=rotation.operator_ids,
        handover=rotation.handover,
        period_days=rotation.period_days,
        start=rotation.start_date,
        end=rotation.end_date,
        priority=rotation.priority,
    )


def explicit_shift_of(row: RotaShift) -> ExplicitShift:
    return ExplicitShift(
        operator_id=row.user_id, tier=Tier(row.tier), start=row.start_at, end=row.end_at, id=row.id
    )


def override_of(row: Override) -> sched.Override:
    return sched.Override(
        operator_id=row.user_id, tier=Tier(row.tier), start=row.start_at, end=row.end_at, id=row.id
    )


def draft_rule(
    *,
    tier: Tier | str,
    operator_ids: Sequence[int],
    handover: time,
    period_days: int,
    start_date: date,
    end_date: date | None = None,
    rotation_id: int | None = None,
    priority: int = 0,
) -> RotationRule:
    """A rule for a rotation being edited (``rotation_id``) or created (None), for previews.

    Raises RotaError for what the pure rule refuses (no operators, end before start...).
    """
    try:
        return RotationRule(
            id=NEW_ROTATION_ID if rotation_id is None else rotation_id,
            tier=Tier(tier),
            operator_ids=tuple(operator_ids),
            handover=handover,
            period_days=period_days,
            start=start_date,
            end=end_date,
            priority=priority,
        )
    except (TypeError, ValueError) as exc:
        raise RotaError(str(exc)) from None


# ---------------------------------------------------------------------------------------
# Loading rules


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime")
    return value.astimezone(UTC)


def _scope_clause(model: type[Rotation] | type[RotaShift] | type[Override]) -> ColumnElement[bool]:
    """Rows of the asked provinces and tiers, and the coordinator tier (rows without a
    province) when asked. Provinces x tiers may fetch a few rows nobody asked for (e.g. BS
    backup when BS primary and BG backup were asked); the caller drops them."""
    return or_(
        and_(
            model.province.in_(bindparam("provinces", expanding=True)),
            model.tier.in_(bindparam("tiers", expanding=True)),
        ),
        and_(
            model.province.is_(None),
            model.tier == Tier.COORDINATOR.value,
            bindparam("coordinators", type_=Boolean),
        ),
    )


@functools.cache
def _rules_statements() -> tuple[Executable, Executable]:
    """The two queries that load rules, built once with bound parameters: the router asks
    who is on call at every escalation step, and building the expressions anew each time
    costs more than running them."""
    # Plain columns, not ORM objects: entities (with their users joined) cost more still.
    rotations = (
        select(
            Rotation.id,
            Rotation.province,
            Rotation.tier,
            Rotation.handover,
            Rotation.period_days,
            Rotation.start_date,
            Rotation.end_date,
            Rotation.priority,
            RotationMember.user_id,
        )
        .join(RotationMember, RotationMember.rotation_id == Rotation.id)
        .where(
            _scope_clause(Rotation),
            Rotation.start_date <= bindparam("last_day", type_=Date),
            or_(
                Rotation.end_date.is_(None), Rotation.end_date > bindparam("first_day", type_=Date)
            ),
        )
        .order_by(Rotation.id, RotationMember.position)
    )
    # Explicit shifts and overrides in one round trip. The lower bound on start_at keeps the
    # index range short (see MAX_ASSIGNMENT).
    assignments = union_all(
        *(
            select(
                literal(kind),
                model.id,
                model.province,
                model.tier,
                model.user_id,
                model.start_at,
                model.end_at,
            ).where(
                _scope_clause(model),
                model.start_at < bindparam("end", type_=UTCDateTime()),
                model.start_at >= bindparam("earliest", type_=UTCDateTime()),
                model.end_at > bindparam("start", type_=UTCDateTime()),
            )
            for kind, model in (("shift", RotaShift), ("override", Override))
        )
    )
    return rotations, assignments


@dataclass
class _Rules:
    rotations: list[RotationRule]
    shifts: list[ExplicitShift]
    overrides: list[sched.Override]


def _load_rules(
    session: Session,
    scopes: Sequence[tuple[str | None, Tier]],
    start: datetime,
    end: datetime,
) -> dict[tuple[str | None, Tier], _Rules]:
    """Rules of each (province, tier) that can hold an instant of [start, end): two queries."""
    found: dict[tuple[str | None, Tier], _Rules] = {
        _key(p, t): _Rules([], [], []) for p, t in scopes
    }
    if not scopes or end <= start:
        return found
    rotations_query, assignments_query = _rules_statements()
    asked = [(p, t) for p, t in found if t is not Tier.COORDINATOR and p is not None]
    params = {
        "provinces": sorted({p for p, _ in asked if p is not None}),
        "tiers": sorted({t.value for _, t in asked}),
        "coordinators": (None, Tier.COORDINATOR) in found,
    }
    # A rotation's last shift starts before its end date and lasts at most a period, so one
    # ending more than a period (plus a day for the zone) before the range cannot reach it.
    first_day = start.astimezone(ROME).date() - timedelta(days=max(PERIODS) + 1)
    last_day = end.astimezone(ROME).date()
    members = session.execute(
        rotations_query, {**params, "first_day": first_day, "last_day": last_day}
    ).all()
    for rotation_id, group in groupby(members, key=lambda row: row[0]):
        rows = list(group)
        _, province, tier, handover, period_days, start_date, end_date, priority, _ = rows[0]
        rules = found.get(_key(province, Tier(tier)))
        if rules is None:
            continue
        rules.rotations.append(
            RotationRule(
                id=rotation_id,
                tier=Tier(tier),
                operator_ids=tuple(row[-1] for row in rows),
                handover=handover,
                period_days=period_days,
                start=start_date,
                end=end_date,
                priority=priority,
            )
        )
    assignments = session.execute(
        assignments_query,
        {**params, "start": start, "end": end, "earliest": start - MAX_ASSIGNMENT},
    )
    for kind, row_id, province, tier, user_id, start_at, end_at in assignments:
        rules = found.get(_key(province, Tier(tier)))
        if rules is None:
            continue
        if kind == "shift":
            rules.shifts.append(
                ExplicitShift(
                    operator_id=user_id, tier=Tier(tier), start=start_at, end=end_at, id=row_id
                )
            )
        else:
            rules.overrides.append(
                sched.Override(
                    operator_id=user_id, tier=Tier(tier), start=start_at, end=end_at, id=row_id
                )
            )
    return found


def _key(province: str | None, tier: Tier) -> tuple[str | None, Tier]:
    return (None, tier) if tier is Tier.COORDINATOR else (province, tier)


def _inactive_ids(session: Session, operator_ids: Iterable[int]) -> set[int]:
    ids = set(operator_ids)
    if not ids:
        return set()
    return set(session.scalars(select(User.id).where(User.id.in_(ids), User.active.is_(False))))


def _resolve(
    session: Session, rules: _Rules, tier: Tier, start: datetime, end: datetime
) -> list[Shift]:
    resolved = sched.final_schedule(
        rotations=rules.rotations,
        shifts=rules.shifts,
        overrides=rules.overrides,
        tier=tier,
        start=start,
        end=end,
        tz=ROME,
    )
    inactive = _inactive_ids(session, (s.operator_id for s in resolved))
    return [s for s in resolved if s.operator_id not in inactive]


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
    start, end = _utc(start, "start"), _utc(end, "end")
    if end <= start:
        return []
    key = _key(province, tier)
    rules = _load_rules(session, [key], start, end)[key]
    if with_rotation is not None:
        rules.rotations = [r for r in rules.rotations if r.id != with_rotation.id]
        if with_rotation.tier is tier:
            rules.rotations.append(with_rotation)
    return _resolve(session, rules, tier, start, end)


def coordinator_schedule(session: Session, *, start: datetime, end: datetime) -> list[Shift]:
    """The project-wide coordinator tier within [start, end)."""
    return province_schedule(session, province=None, tier=Tier.COORDINATOR, start=start, end=end)


def on_call_chain(session: Session, *, province: str, at: datetime) -> OnCallChain:
    """Primary, backup and coordinators of a province at an instant (three indexed queries)."""
    instant = _utc(at, "at")
    until = instant + _TICK
    scopes = [
        (province, Tier.PRIMARY),
        (province, Tier.BACKUP),
        (None, Tier.COORDINATOR),
    ]
    loaded = _load_rules(session, scopes, instant, until)
    holder_ids: dict[Tier, int] = {}
    for key in scopes:
        tier = key[1]
        rules = loaded[key]
        segment = sched.final_schedule(
            rotations=rules.rotations,
            shifts=rules.shifts,
            overrides=rules.overrides,
            tier=tier,
            start=instant,
            end=until,
            tz=ROME,
        )
        if segment:
            holder_ids[tier] = segment[0].operator_id
    users = users_by_id(session, holder_ids.values())
    holders: dict[Tier, User | None] = {}
    for tier in (Tier.PRIMARY, Tier.BACKUP, Tier.COORDINATOR):
        user = users.get(holder_ids[tier]) if tier in holder_ids else None
        holders[tier] = user if user is not None and user.active else None
    coordinator = holders[Tier.COORDINATOR]
    coordinators = [coordinator] if coordinator is not None else active_coordinators(session)
    return OnCallChain(
        province=province,
        at=instant,
        primary=holders[Tier.PRIMARY],
        backup=holders[Tier.BACKUP],
        coordinators=coordinators,
    )


def users_by_id(session: Session, ids: Iterable[int]) -> dict[int, User]:
    """The users with these ids (one query), by id; ids with no user are left out."""
    wanted = set(ids)
    if not wanted:
        return {}
    return {user.id: user for user in session.scalars(select(User).where(User.id.in_(wanted)))}


def active_coordinators(session: Session) -> list[User]:
    """Everybody the last escalation step reaches when nobody holds the coordinator tier,
    by id (the order the router pages them in)."""
    users = session.scalars(select(User).where(User.active.is_(True)).order_by(User.id))
    return [user for user in users if user.has_role(Role.COORDINATOR)]


def province_gaps(
    session: Session, *, province: str, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """Intervals of [start, end) with no primary in the province (UTC)."""
    start, end = _utc(start, "start"), _utc(end, "end")
    if end <= start:
        return []
    resolved = province_schedule(
        session, province=province, tier=Tier.PRIMARY, start=start, end=end
    )
    return sched.gaps(resolved, start, end)


def all_gaps(
    session: Session, *, provinces: Sequence[str], start: datetime, end: datetime
) -> dict[str, list[tuple[datetime, datetime]]]:
    """Gaps of the primary tier of each province (every province is a key, even gapless)."""
    start, end = _utc(start, "start"), _utc(end, "end")
    if end <= start:
        return {p: [] for p in provinces}
    scopes = [(p, Tier.PRIMARY) for p in provinces]
    loaded = _load_rules(session, scopes, start, end)
    return {
        p: sched.gaps(
            _resolve(session, loaded[(p, Tier.PRIMARY)], Tier.PRIMARY, start, end), start, end
        )
        for p in provinces
    }


def upcoming_shifts(
    session: Session, *, user_id: int, start: datetime, end: datetime
) -> list[tuple[str | None, Shift]]:
    """An operator's own segments of every final schedule within [start, end), by start.

    Only time the operator really holds is listed: where an override gives their turn to
    somebody else, that part is not theirs. The province is None for the coordinator tier.
    """
    start, end = _utc(start, "start"), _utc(end, "end")
    if end <= start:
        return []
    scopes = _scopes_of_user(session, user_id, start, end)
    loaded = _load_rules(session, scopes, start, end)
    found: list[tuple[str | None, Shift]] = []
    for province, tier in scopes:
        for segment in _resolve(session, loaded[(province, tier)], tier, start, end):
            if segment.operator_id == user_id:
                found.append((province, segment))
    found.sort(key=lambda item: (item[1].start, item[1].tier, item[0] or ""))
    return found


def _scopes_of_user(
    session: Session, user_id: int, start: datetime, end: datetime
) -> list[tuple[str | None, Tier]]:
    """Every (province, tier) where the user has a rule that may matter in [start, end)."""
    scopes: set[tuple[str | None, Tier]] = set()
    last_day = end.astimezone(ROME).date()
    first_day = start.astimezone(ROME).date() - timedelta(days=max(PERIODS) + 1)
    for province, tier in session.execute(
        select(Rotation.province, Rotation.tier)
        .join(RotationMember, RotationMember.rotation_id == Rotation.id)
        .where(
            RotationMember.user_id == user_id,
            Rotation.start_date <= last_day,
            or_(Rotation.end_date.is_(None), Rotation.end_date > first_day),
        )
        .distinct()
    ):
        scopes.add(_key(province, Tier(tier)))
    earliest = start - MAX_ASSIGNMENT
    for model in (RotaShift, Override):
        for province, tier in session.execute(
            select(model.province, model.tier)
            .where(
                model.user_id == user_id,
                model.start_at < end,
                model.start_at >= earliest,
                model.end_at > start,
            )
            .distinct()
        ):
            scopes.add(_key(province, Tier(tier)))
    return sorted(scopes, key=lambda s: (s[0] or "", s[1].value))


def _all_scopes(
    session: Session, provinces: Collection[str] | None
) -> list[tuple[str | None, Tier]]:
    """Scopes to look at: the given provinces (both tiers), or every province with rules."""
    scopes: set[tuple[str | None, Tier]] = set()
    if provinces is None:
        for model in (Rotation, RotaShift, Override):
            for province, tier in session.execute(select(model.province, model.tier).distinct()):
                scopes.add(_key(province, Tier(tier)))
        scopes.add((None, Tier.COORDINATOR))
    else:
        for province in provinces:
            scopes.add((province, Tier.PRIMARY))
            scopes.add((province, Tier.BACKUP))
    return sorted(scopes, key=lambda s: (s[0] or "", s[1].value))


def rostered_users(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    provinces: Collection[str] | None = None,
) -> list[tuple[User, str | None, Shift]]:
    """Every segment of every final schedule in [start, end), with its (active) holder.

    ``provinces=None`` covers every province that has rules plus the coordinator tier;
    a collection of siglas covers their primary and backup tiers only. Sorted by start.
    """
    start, end = _utc(start, "start"), _utc(end, "end")
    if end <= start:
        return []
    scopes = _all_scopes(session, provinces)
    loaded = _load_rules(session, scopes, start, end)
    found: list[tuple[User, str | None, Shift]] = []
    for province, tier in scopes:
        for segment in _resolve(session, loaded[(province, tier)], tier, start, end):
            user = session.get(User, segment.operator_id)
            if user is not None:
                found.append((user, province, segment))
    found.sort(key=lambda item: (item[2].start, item[1] or "", item[2].tier.value))
    return found


# ---------------------------------------------------------------------------------------
# Validation


def _served(served: Collection[str] | None) -> Collection[str] | None:
    if served is not None:
        return served
    if has_app_context():
        provinces: Collection[str] = current_app.extensions["ali.settings"].provinces
        return provinces
    return None


def _check_scope(
    province: str | None, tier: Tier | str, served: Collection[str] | None
) -> tuple[str | None, Tier]:
    try:
        tier = Tier(tier)
    except ValueError:
        raise RotaError(
            f"Unknown tier {tier!r}: use primary, backup or coordinator.", field="tier"
        ) from None
    if tier is Tier.COORDINATOR:
        if province:
            raise RotaError(
                "The coordinator tier is project-wide: leave the province empty.",
                field="province",
            )
        return None, tier
    if not province:
        raise RotaError("Choose a province for the primary and backup tiers.", field="province")
    sigla = province.strip().upper()
    allowed = _served(served)
    if allowed is not None and sigla not in allowed:
        raise RotaError(
            f"{sigla} is not a province served by this project "
            f"(served: {', '.join(sorted(allowed))}).",
            field="province",
        )
    if allowed is None and (len(sigla) != 2 or not sigla.isalpha()):
        raise RotaError(f"{province!r} is not a province sigla.", field="province")
    return sigla, tier


def _check_operator(session: Session, user_id: int, province: str | None, tier: Tier) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise RotaError(f"There is no user with id {user_id}.", field="operator_ids")
    if not user.active:
        raise RotaError(
            f"{user.display_name} is not active and cannot be on call.", field="operator_ids"
        )
    needed = Role.COORDINATOR if tier is Tier.COORDINATOR else Role.OPERATOR
    if not user.has_role(needed):
        raise RotaError(
            f"{user.display_name} does not have the {needed.value} role.", field="operator_ids"
        )
    if province is not None and province not in user.provinces:
        raise RotaError(
            f"{user.display_name} does not cover the province {province}.", field="operator_ids"
        )
    return user


def _check_rotation(
    session: Session,
    *,
    province: str | None,
    tier: Tier,
    operator_ids: Sequence[int],
    handover: time,
    period_days: int,
    start_date: date,
    end_date: date | None,
    check_operators: bool = True,
) -> None:
    if not operator_ids:
        raise RotaError("A rotation needs at least one operator.", field="operator_ids")
    if check_operators:
        for user_id in operator_ids:
            _check_operator(session, user_id, province, tier)
    if period_days not in PERIODS:
        raise RotaError(
            "A rotation hands over every day (1) or every week (7).", field="period_days"
        )
    if not isinstance(handover, time) or handover.tzinfo is not None:
        raise RotaError("The hand-over is a local wall-clock time such as 08:00.", field="handover")
    if isinstance(start_date, datetime) or not isinstance(start_date, date):
        raise RotaError("The start is a date.", field="start_date")
    if end_date is not None:
        if isinstance(end_date, datetime) or not isinstance(end_date, date):
            raise RotaError("The end is a date.", field="end_date")
        if end_date <= start_date:
            raise RotaError("The end date must be after the start date.", field="end_date")


def _check_interval(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    for value, name in ((start, "start"), (end, "end")):
        if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
            raise RotaError(f"The {name} needs a date, a time and a zone.", field=name)
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        raise RotaError("The end must be after the start.", field="end")
    if end - start > MAX_ASSIGNMENT:
        raise RotaError(
            f"A single shift or override lasts at most {MAX_ASSIGNMENT.days} days; "
            "use a rotation for longer arrangements.",
            field="end",
        )
    return start, end


# ---------------------------------------------------------------------------------------
# Changes (audited)

Actor = User | str | None


def rotation_snapshot(rotation: Rotation) -> dict[str, Any]:
    """What the audit log keeps of a rotation: ids, dates and times, no personal data."""
    return {
        "province": rotation.province,
        "tier": rotation.tier,
        "name": rotation.name,
        "operator_ids": list(rotation.operator_ids),
        "handover": rotation.handover.strftime("%H:%M"),
        "period_days": rotation.period_days,
        "start_date": rotation.start_date.isoformat(),
        "end_date": rotation.end_date.isoformat() if rotation.end_date else None,
        "priority": rotation.priority,
    }


def _assignment_snapshot(row: RotaShift | Override) -> dict[str, Any]:
    return {
        "province": row.province,
        "tier": row.tier,
        "user_id": row.user_id,
        "start": row.start_at.astimezone(UTC).isoformat(),
        "end": row.end_at.astimezone(UTC).isoformat(),
    }


def _actor_id(actor: Actor) -> int | None:
    return actor.id if isinstance(actor, User) else None


def create_rotation(
    session: Session,
    *,
    actor: Actor,
    now: datetime,
    province: str | None,
    tier: Tier | str,
    operator_ids: Sequence[int],
    handover: time,
    period_days: int,
    start_date: date,
    end_date: date | None = None,
    name: str = "",
    priority: int = 0,
    served: Collection[str] | None = None,
) -> Rotation:
    """Add a rotation; it takes over from older rotations of the tier from its start date."""
    province, tier = _check_scope(province, tier, served)
    _check_rotation(
        session,
        province=province,
        tier=tier,
        operator_ids=operator_ids,
        handover=handover,
        period_days=period_days,
        start_date=start_date,
        end_date=end_date,
    )
    rotation = Rotation(
        province=province,
        tier=tier.value,
        name=name.strip(),
        handover=handover.replace(fold=0),
        period_days=period_days,
        start_date=start_date,
        end_date=end_date,
        priority=priority,
        created_at=now,
        created_by_id=_actor_id(actor),
        members=[
            RotationMember(position=position, user_id=user_id)
            for position, user_id in enumerate(operator_ids)
        ],
    )
    session.add(rotation)
    session.flush()
    audit.record(
        session,
        now=now,
        action="create",
        object_type="rotation",
        object_id=rotation.id,
        actor=actor,
        detail={"before": None, "after": rotation_snapshot(rotation)},
    )
    return rotation


def update_rotation(
    session: Session,
    rotation: Rotation,
    *,
    actor: Actor,
    now: datetime,
    served: Collection[str] | None = None,
    **changes: Any,
) -> Rotation:
    """Change some of ``province, tier, operator_ids, handover, period_days, start_date,
    end_date, name, priority``; the whole result is validated as on creation."""
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise TypeError(f"update_rotation() got unknown fields: {', '.join(sorted(unknown))}")
    before = rotation_snapshot(rotation)
    merged = {**before, **changes}
    merged["operator_ids"] = list(changes.get("operator_ids", rotation.operator_ids))
    merged["handover"] = changes.get("handover", rotation.handover)
    merged["start_date"] = changes.get("start_date", rotation.start_date)
    merged["end_date"] = changes.get("end_date", rotation.end_date)
    province, tier = _check_scope(merged["province"], merged["tier"], served)
    # The members are checked only when who is on it, or where, changes: a rotation whose
    # operator has since left or been deactivated must still be ended or renamed.
    same_roster = (merged["operator_ids"], province, tier.value) == (
        before["operator_ids"],
        before["province"],
        before["tier"],
    )
    _check_rotation(
        session,
        province=province,
        tier=tier,
        operator_ids=merged["operator_ids"],
        handover=merged["handover"],
        period_days=merged["period_days"],
        start_date=merged["start_date"],
        end_date=merged["end_date"],
        check_operators=not same_roster,
    )
    rotation.province = province
    rotation.tier = tier.value
    rotation.name = str(merged["name"]).strip()
    rotation.handover = merged["handover"].replace(fold=0)
    rotation.period_days = merged["period_days"]
    rotation.start_date = merged["start_date"]
    rotation.end_date = merged["end_date"]
    rotation.priority = int(merged["priority"])
    _set_members(rotation, merged["operator_ids"])
    session.flush()
    after = rotation_snapshot(rotation)
    if after != before:
        audit.record(
            session,
            now=now,
            action="update",
            object_type="rotation",
            object_id=rotation.id,
            actor=actor,
            fields=[name for name in after if after[name] != before[name]],
            detail={"before": before, "after": after},
        )
    return rotation


def _set_members(rotation: Rotation, operator_ids: Sequence[int]) -> None:
    # Rows are reused by position: deleting and re-adding the same primary key in one flush
    # is a needless round of DELETE + INSERT.
    members = rotation.members
    for position, user_id in enumerate(operator_ids):
        if position < len(members):
            members[position].user_id = user_id
        else:
            members.append(RotationMember(position=position, user_id=user_id))
    del members[len(operator_ids) :]


def delete_rotation(session: Session, rotation: Rotation, *, actor: Actor, now: datetime) -> None:
    before = rotation_snapshot(rotation)
    audit.record(
        session,
        now=now,
        action="delete",
        object_type="rotation",
        object_id=rotation.id,
        actor=actor,
        detail={"before": before, "after": None},
    )
    session.delete(rotation)
    session.flush()


def add_override(
    session: Session,
    *,
    actor: Actor,
    now: datetime,
    province: str | None,
    tier: Tier | str,
    user_id: int,
    start: datetime,
    end: datetime,
    reason: str = "",
    served: Collection[str] | None = None,
) -> Override:
    """One operator for [start, end); wins over everything (the newest override on top).

    The reason is free text and stays out of the audit detail (it may say why somebody is
    away); the audit names the field.
    """
    province, tier = _check_scope(province, tier, served)
    start, end = _check_interval(start, end)
    _check_operator(session, user_id, province, tier)
    row = Override(
        province=province,
        tier=tier.value,
        user_id=user_id,
        start_at=start,
        end_at=end,
        reason=reason.strip()[:200],
        created_at=now,
        created_by_id=_actor_id(actor),
    )
    _create_assignment(
        session, row, "override", actor=actor, now=now, fields=["reason"] if row.reason else []
    )
    return row


def delete_override(session: Session, override: Override, *, actor: Actor, now: datetime) -> None:
    _delete_assignment(session, override, "override", actor=actor, now=now)


def _create_assignment(
    session: Session,
    row: Override | RotaShift,
    kind: str,
    *,
    actor: Actor,
    now: datetime,
    fields: Sequence[str] = (),
) -> None:
    session.add(row)
    session.flush()
    audit.record(
        session,
        now=now,
        action="create",
        object_type=kind,
        object_id=row.id,
        actor=actor,
        fields=fields,
        detail={"before": None, "after": _assignment_snapshot(row)},
    )


def _delete_assignment(
    session: Session, row: Override | RotaShift, kind: str, *, actor: Actor, now: datetime
) -> None:
    audit.record(
        session,
        now=now,
        action="delete",
        object_type=kind,
        object_id=row.id,
        actor=actor,
        detail={"before": _assignment_snapshot(row), "after": None},
    )
    session.delete(row)
    session.flush()


def add_shift(
    session: Session,
    *,
    actor: Actor,
    now: datetime,
    province: str | None,
    tier: Tier | str,
    user_id: int,
    start: datetime,
    end: datetime,
    served: Collection[str] | None = None,
) -> RotaShift:
    """An explicit shift (e.g. a row of an imported rota); wins over rotations."""
    province, tier = _check_scope(province, tier, served)
    start, end = _check_interval(start, end)
    _check_operator(session, user_id, province, tier)
    row = RotaShift(
        province=province,
        tier=tier.value,
        user_id=user_id,
        start_at=start,
        end_at=end,
        created_at=now,
        created_by_id=_actor_id(actor),
    )
    _create_assignment(session, row, "shift", actor=actor, now=now)
    return row


def delete_shift(session: Session, shift: RotaShift, *, actor: Actor, now: datetime) -> None:
    _delete_assignment(session, shift, "shift", actor=actor, now=now)


# ---------------------------------------------------------------------------------------
# The primary on call, for the intake's hot path


@functools.cache
def _primary_rules_statement() -> Executable:
    """The rules of one province's primary tier that can hold an instant, in ONE round trip:
    the same rows `_load_rules` reads for (province, primary) with its two queries (same
    bounds), as one UNION ALL. Rotation rows come one per member, in member order."""
    province = bindparam("province", type_=String)
    tier = Tier.PRIMARY.value
    no_instant = cast(null(), UTCDateTime())
    rotations = (
        select(
            literal("rotation").label("kind"),
            Rotation.id.label("id"),
            RotationMember.position.label("position"),
            RotationMember.user_id.label("user_id"),
            Rotation.handover.label("handover"),
            Rotation.period_days.label("period_days"),
            Rotation.start_date.label("start_date"),
            Rotation.end_date.label("end_date"),
            Rotation.priority.label("priority"),
            no_instant.label("start_at"),
            no_instant.label("end_at"),
        )
        .join(RotationMember, RotationMember.rotation_id == Rotation.id)
        .where(
            Rotation.province == province,
            Rotation.tier == tier,
            Rotation.start_date <= bindparam("last_day", type_=Date),
            or_(
                Rotation.end_date.is_(None), Rotation.end_date > bindparam("first_day", type_=Date)
            ),
        )
    )
    assignments = [
        select(
            literal(kind),
            model.id,
            null(),
            model.user_id,
            null(),
            null(),
            null(),
            null(),
            null(),
            model.start_at,
            model.end_at,
        ).where(
            model.province == province,
            model.tier == tier,
            model.start_at < bindparam("end", type_=UTCDateTime()),
            model.start_at >= bindparam("earliest", type_=UTCDateTime()),
            model.end_at > bindparam("start", type_=UTCDateTime()),
        )
        for kind, model in (("shift", RotaShift), ("override", Override))
    ]
    union = union_all(rotations, *assignments).subquery()
    return select(union).order_by(union.c.kind, union.c.id, union.c.position)


def primary_on_call(session: Session, *, province: str, at: datetime) -> User | None:
    """The primary on call for a province at an instant: `on_call_chain(...).primary`, with
    the same rules and resolution, read in one query (plus the holder's row, if any).

    For the intake's hot path, which needs the primary only (not the backup, nor the
    coordinators). Nothing is cached: a rota change is seen by the next call.
    """
    instant = _utc(at, "at")
    until = instant + _TICK
    # The same bounds as `_load_rules` for [instant, until).
    first_day = instant.astimezone(ROME).date() - timedelta(days=max(PERIODS) + 1)
    last_day = until.astimezone(ROME).date()
    if session.autoflush:
        session.flush()  # what session.execute would do: rota changes pending here count
    # On the connection: plain rows, without the ORM's execution path (this is per hand-off).
    rows = (
        session.connection()
        .execute(
            _primary_rules_statement(),
            {
                "province": province,
                "first_day": first_day,
                "last_day": last_day,
                "start": instant,
                "end": until,
                "earliest": instant - MAX_ASSIGNMENT,
            },
        )
        .all()
    )
    if not rows:
        return None
    rotations: list[RotationRule] = []
    shifts: list[ExplicitShift] = []
    overrides: list[sched.Override] = []
    for (kind, row_id), group in groupby(rows, key=lambda row: (row.kind, row.id)):
        members = list(group)
        first = members[0]
        if kind == "rotation":
            rotations.append(
                RotationRule(
                    id=row_id,
                    tier=Tier.PRIMARY,
                    operator_ids=tuple(row.user_id for row in members),
                    handover=first.handover,
                    period_days=first.period_days,
                    start=first.start_date,
                    end=first.end_date,
                    priority=first.priority,
                )
            )
        elif kind == "shift":
            shifts.append(
                ExplicitShift(
                    operator_id=first.user_id,
                    tier=Tier.PRIMARY,
                    start=first.start_at,
                    end=first.end_at,
                    id=row_id,
                )
            )
        else:
            overrides.append(
                sched.Override(
                    operator_id=first.user_id,
                    tier=Tier.PRIMARY,
                    start=first.start_at,
                    end=first.end_at,
                    id=row_id,
                )
            )
    segment = sched.final_schedule(
        rotations=rotations,
        shifts=shifts,
        overrides=overrides,
        tier=Tier.PRIMARY,
        start=instant,
        end=until,
        tz=ROME,
    )
    if not segment:
        return None
    user = session.get(User, segment[0].operator_id)
    return user if user is not None and user.active else None
