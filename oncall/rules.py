"""The rota's rules read from the database: rotations, explicit shifts, overrides per scope."""

# A scope is a (province, tier); the coordinator tier is project-wide, its province None.
# Everything here reads; oncall.chain resolves what it reads, oncall.editing changes rows.
#
# * One round trip loads the rules of any number of scopes that can hold an instant of a
#   range: rotation members, explicit shifts and overrides in one UNION ALL. The statement
#   is built once per shape (how many provinces, which tiers) with a plain parameter per
#   value: the router asks who is on call at every escalation step, and building the
#   expression, or expanding an IN list into its SQL, costs more than running it.
# * Explicit shifts and overrides last at most MAX_ASSIGNMENT (oncall.editing refuses
#   longer ones): this bound is what lets a lookup read the few rows around an instant
#   through the (province, tier, start_at) index instead of years of them.

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Executable,
    and_,
    bindparam,
    cast,
    false,
    literal,
    null,
    or_,
    select,
    union,
    union_all,
)
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from core.db import UTCDateTime
from oncall.models import Override, RotaShift, Rotation, RotationMember
from oncall.schedule import ROME, ExplicitShift, RotationRule, Shift, Tier, final_schedule
from oncall.schedule import Override as OverrideRule

# Rotations hand over every day or every week.
PERIODS = (1, 7)
# A quarter: long enough for any cover or swap; longer arrangements belong in a rotation.
MAX_ASSIGNMENT = timedelta(days=92)

Scope = tuple[str | None, Tier]


def scope_of(province: str | None, tier: Tier) -> Scope:
    """The scope of a rule: the coordinator tier has no province."""
    return (None, tier) if tier is Tier.COORDINATOR else (province, tier)


@dataclass
class Rules:
    """The rules of one scope that can hold an instant of the range they were loaded for."""

    tier: Tier
    rotations: list[RotationRule] = field(default_factory=list)
    shifts: list[ExplicitShift] = field(default_factory=list)
    overrides: list[OverrideRule] = field(default_factory=list)

    def schedule(self, start: datetime, end: datetime) -> list[Shift]:
        """The final schedule within [start, end) (inside the loaded range)."""
        return final_schedule(
            rotations=self.rotations,
            shifts=self.shifts,
            overrides=self.overrides,
            tier=self.tier,
            start=start,
            end=end,
            tz=ROME,
        )

    def add_rotation(self, rule: RotationRule) -> None:
        """Resolve as if ``rule`` were saved, replacing the stored rotation with its id (the
        preview of a rotation being created or edited)."""
        self.rotations = [r for r in self.rotations if r.id != rule.id]
        if rule.tier is self.tier:
            self.rotations.append(rule)


def _rotation_days(start: datetime, end: datetime) -> tuple[date, date]:
    """Local dates bounding the rotations that can hold an instant of [start, end).

    A rotation's last shift starts before its end date and lasts at most a period, so one
    ending more than a period (plus a day for the zone) before the range cannot reach it.
    """
    first_day = start.astimezone(ROME).date() - timedelta(days=max(PERIODS) + 1)
    return first_day, end.astimezone(ROME).date()


def _scope_clause(
    model: type[Rotation] | type[RotaShift] | type[Override],
    provinces: int,
    tiers: tuple[Tier, ...],
    coordinators: bool,
) -> ColumnElement[bool]:
    """Rows of the provinces ``province_0`` ... and tiers asked, and of the coordinator tier
    when asked. Provinces x tiers may fetch a few rows nobody asked for (BS backup when BS
    primary and BG backup were asked); the loader drops them."""
    clauses = []
    if provinces and tiers:
        clauses.append(
            and_(
                or_(*(model.province == bindparam(f"province_{i}") for i in range(provinces))),
                or_(*(model.tier == tier.value for tier in tiers)),
            )
        )
    if coordinators:
        clauses.append(and_(model.province.is_(None), model.tier == Tier.COORDINATOR.value))
    return or_(false(), *clauses)


@functools.cache
def _rules_statement(provinces: int, tiers: tuple[Tier, ...], coordinators: bool) -> Executable:
    """The one query that loads the rules of a shape of scopes (see the module notes)."""
    no_instant = cast(null(), UTCDateTime())
    rotations = (
        select(
            literal("rotation").label("kind"),
            Rotation.id,
            Rotation.province,
            Rotation.tier,
            RotationMember.user_id,
            RotationMember.position,
            Rotation.handover,
            Rotation.period_days,
            Rotation.start_date,
            Rotation.end_date,
            Rotation.priority,
            no_instant.label("start_at"),
            no_instant.label("end_at"),
        )
        .join(RotationMember, RotationMember.rotation_id == Rotation.id)
        .where(
            _scope_clause(Rotation, provinces, tiers, coordinators),
            Rotation.start_date <= bindparam("last_day", type_=Date),
            or_(
                Rotation.end_date.is_(None), Rotation.end_date > bindparam("first_day", type_=Date)
            ),
        )
    )
    # The lower bound on start_at keeps the index range short (see MAX_ASSIGNMENT).
    assignments = [
        select(
            literal(kind),
            model.id,
            model.province,
            model.tier,
            model.user_id,
            *(null() for _ in range(6)),
            model.start_at,
            model.end_at,
        ).where(
            _scope_clause(model, provinces, tiers, coordinators),
            model.start_at < bindparam("end", type_=UTCDateTime()),
            model.start_at >= bindparam("earliest", type_=UTCDateTime()),
            model.end_at > bindparam("start", type_=UTCDateTime()),
        )
        for kind, model in (("shift", RotaShift), ("override", Override))
    ]
    return union_all(rotations, *assignments)


def load_rules(
    session: Session, scopes: Iterable[Scope], start: datetime, end: datetime
) -> dict[Scope, Rules]:
    """The rules of each scope that can hold an instant of [start, end) (UTC): one query.

    Every asked scope is a key, with empty rules when it has none.
    """
    found = {scope_of(p, t): Rules(t) for p, t in scopes}
    if not found or end <= start:
        return found
    provinces = sorted({p for p, t in found if p is not None})
    tiers = tuple(t for t in (Tier.PRIMARY, Tier.BACKUP) if any(t is u for _, u in found))
    statement = _rules_statement(len(provinces), tiers, (None, Tier.COORDINATOR) in found)
    first_day, last_day = _rotation_days(start, end)
    params: dict[str, object] = {
        "first_day": first_day,
        "last_day": last_day,
        "start": start,
        "end": end,
        "earliest": start - MAX_ASSIGNMENT,
    }
    params.update((f"province_{i}", province) for i, province in enumerate(provinces))
    if session.autoflush:
        session.flush()  # what session.execute would do: changes pending here count
    # On the connection: plain rows, without the ORM's execution path (the router's hot path).
    rows = session.connection().execute(statement, params).all()
    # Rotation rows come one per member: rotation id -> (its rules, its first row, the
    # (position, user) pairs).
    rotations: dict[int, tuple[Rules, Row[Any], list[tuple[int, int]]]] = {}
    for row in rows:
        kind, row_id, province, tier, user_id, position = row[:6]
        # A StrEnum equals and hashes as its code: the row's (province, tier) is the key.
        rules = found.get((province, tier))
        if rules is None:
            continue
        if kind == "rotation":
            rotations.setdefault(row_id, (rules, row, []))[2].append((position, user_id))
        elif kind == "shift":
            rules.shifts.append(ExplicitShift(user_id, rules.tier, row[-2], row[-1], id=row_id))
        else:
            rules.overrides.append(OverrideRule(user_id, rules.tier, row[-2], row[-1], id=row_id))
    for rotation_id, (rules, row, members) in rotations.items():
        handover, period_days, start_date, end_date, priority = row[6:11]
        rules.rotations.append(
            RotationRule(
                id=rotation_id,
                tier=rules.tier,
                operator_ids=tuple(user_id for _, user_id in sorted(members)),
                handover=handover,
                period_days=period_days,
                start=start_date,
                end=end_date,
                priority=priority,
            )
        )
    return found


def scopes_of_operator(
    session: Session, user_id: int, start: datetime, end: datetime
) -> list[Scope]:
    """Every scope where the operator has a rule that may hold an instant of [start, end)."""
    first_day, last_day = _rotation_days(start, end)
    earliest = start - MAX_ASSIGNMENT
    statement = union(
        select(Rotation.province, Rotation.tier)
        .join(RotationMember, RotationMember.rotation_id == Rotation.id)
        .where(
            RotationMember.user_id == user_id,
            Rotation.start_date <= last_day,
            or_(Rotation.end_date.is_(None), Rotation.end_date > first_day),
        ),
        *(
            select(model.province, model.tier).where(
                model.user_id == user_id,
                model.start_at < end,
                model.start_at >= earliest,
                model.end_at > start,
            )
            for model in (RotaShift, Override)
        ),
    )
    scopes = {scope_of(province, Tier(tier)) for province, tier in session.execute(statement)}
    return sorted(scopes, key=lambda s: (s[0] or "", s[1].value))
