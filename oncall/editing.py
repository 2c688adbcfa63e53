"""Changing the rota: rotations, explicit shifts and overrides, validated and audited."""

# Contract for callers (views, the CSV import, the CLI, the demo):
#
# * Plain functions taking a Session; they flush (to get ids) but never commit.
# * Validation errors raise RotaError, whose message is an English sentence meant for the
#   user (views translate it); ``RotaError.field`` names the form field when there is one.
# * The served provinces come from the ``served`` parameter; when it is None they come from
#   the current app's settings (``settings.provinces``). Outside an app context with
#   ``served=None`` only the shape of the sigla is checked.
# * Explicit shifts and overrides last at most MAX_ASSIGNMENT (see oncall.rules).

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime, time
from typing import Any

from flask import has_app_context
from sqlalchemy.orm import Session

from core import audit
from core.config import get_settings
from core.models import Role, User
from oncall.models import Override, RotaShift, Rotation, RotationMember
from oncall.rules import MAX_ASSIGNMENT, PERIODS
from oncall.schedule import RotationRule, Tier

# Id given to a rotation that is not saved yet (previews): above any real id, so a draft
# wins ties the way the saved rotation will (the newest rotation takes over).
NEW_ROTATION_ID = 2**31 - 1
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
# Validation


def _served(served: Collection[str] | None) -> Collection[str] | None:
    if served is not None:
        return served
    if has_app_context():
        return get_settings().provinces
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


def why_not_on_rota(user: User, province: str | None, tier: Tier) -> str | None:
    """Why ``user``'s roles and provinces do not allow them in this rota tier, or None: the
    one rule for the rota pages, the rota import and the operators import."""
    needed = Role.COORDINATOR if tier is Tier.COORDINATOR else Role.OPERATOR
    if not user.has_role(needed):
        return f"{user.display_name} does not have the {needed.value} role."
    if province is not None and tier is not Tier.COORDINATOR and province not in user.provinces:
        return f"{user.display_name} does not cover the province {province}."
    return None


def _check_operator(session: Session, user_id: int, province: str | None, tier: Tier) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise RotaError(f"There is no user with id {user_id}.", field="operator_ids")
    if not user.active:
        raise RotaError(
            f"{user.display_name} is not active and cannot be on call.", field="operator_ids"
        )
    problem = why_not_on_rota(user, province, tier)
    if problem is not None:
        raise RotaError(problem, field="operator_ids")
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


def _rotation_snapshot(rotation: Rotation) -> dict[str, Any]:
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
        detail={"before": None, "after": _rotation_snapshot(rotation)},
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
    before = _rotation_snapshot(rotation)
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
    after = _rotation_snapshot(rotation)
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
    before = _rotation_snapshot(rotation)
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
