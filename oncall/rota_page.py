"""What the rota pages show: a province's month as days × tiers, hand-overs, holidays, gaps."""

# Days are Europe/Rome calendar days: each row runs from one local midnight to the next, so
# the last Sundays of March and October are 23- and 25-hour rows. Every instant is kept in
# UTC until a template formats it; the resolution itself is oncall.chain's (the same
# final schedule the router and the gap check use).

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise

import holidays
from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from core.formatting import FIRST_YEAR, HOUR, LAST_YEAR, local_midnight
from core.models import Role, User, users_by_id, users_with_role
from oncall.chain import on_call_chain, province_schedule
from oncall.models import Override, Rotation
from oncall.schedule import Conflict, Shift, Tier, conflicts, gaps

PROVINCE_TIERS = (Tier.PRIMARY, Tier.BACKUP)
# The holidays package names its languages with a territory.
_HOLIDAY_LANGUAGES = {"it": "it_IT", "en": "en_US"}


class BadMonth(ValueError):
    """A `month` parameter that is not YYYY-MM within the supported years."""


def parse_month(text: str | None, today: date) -> date:
    """The first day of the month named ``YYYY-MM``, or of today's month when absent."""
    if not text:
        return today.replace(day=1)
    year_text, sep, month_text = text.partition("-")
    if not sep or not (year_text.isdigit() and month_text.isdigit()):
        raise BadMonth(text)
    year, month = int(year_text), int(month_text)
    if not (FIRST_YEAR <= year <= LAST_YEAR and 1 <= month <= 12):
        raise BadMonth(text)
    return date(year, month, 1)


def month_param(day: date) -> str:
    """The ``YYYY-MM`` that ``parse_month`` reads back, for the month of ``day``."""
    return day.isoformat()[:7]


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def in_supported_range(day: date) -> bool:
    return FIRST_YEAR <= day.year <= LAST_YEAR


@lru_cache(maxsize=16)
def _holiday_calendar(year: int, language: str) -> dict[date, str]:
    calendar = holidays.country_holidays("IT", years=year, language=language)
    return dict(calendar.items())


def holidays_of(year: int, locale: str) -> dict[date, str]:
    """Italian national public holidays of a year, named in the UI language."""
    return _holiday_calendar(year, _HOLIDAY_LANGUAGES.get(locale, "it_IT"))


@dataclass(frozen=True)
class Piece:
    """The part of one segment of the final schedule (or of one gap) that falls in a day.

    ``start``/``end`` are clipped to the day; ``whole_start``/``whole_end`` are the whole
    segment or gap, so a page can say that a shift lasted 25 hours.
    """

    start: datetime
    end: datetime
    shift: Shift | None
    whole_start: datetime
    whole_end: datetime

    @property
    def is_gap(self) -> bool:
        return self.shift is None

    @property
    def operator_id(self) -> int | None:
        return None if self.shift is None else self.shift.operator_id

    @property
    def whole_hours(self) -> float:
        return (self.whole_end - self.whole_start) / HOUR


@dataclass(frozen=True)
class DayRow:
    day: date
    start: datetime
    end: datetime
    holiday: str | None
    is_today: bool
    cells: dict[Tier, list[Piece]]

    @property
    def hours(self) -> int:
        return round((self.end - self.start) / HOUR)

    @property
    def is_clock_change(self) -> bool:
        return self.hours != 24

    @property
    def is_weekend(self) -> bool:
        return self.day.weekday() >= 5

    def has_gap(self, tier: Tier) -> bool:
        return any(piece.is_gap for piece in self.cells[tier])

    def whole_gap(self, tier: Tier) -> bool:
        return all(piece.is_gap for piece in self.cells[tier])


@dataclass(frozen=True)
class MonthView:
    province: str | None  # None: the project-wide coordinators' rota
    month: date
    today: date
    days: list[DayRow]
    users: dict[int, User]
    gaps: list[tuple[datetime, datetime]]
    has_coordinator_rota: bool
    coordinators: list[User]
    overrides: list[Override]
    rotations: list[Rotation]
    # One person primary and backup at once: the escalation would page them twice.
    conflicts: list[Conflict] = field(default_factory=list)

    @property
    def previous(self) -> date | None:
        earlier = add_months(self.month, -1)
        return earlier if in_supported_range(earlier) else None

    @property
    def next(self) -> date | None:
        later = add_months(self.month, 1)
        return later if in_supported_range(later) else None


def _timeline(
    schedule: Sequence[Shift], start: datetime, end: datetime
) -> list[tuple[datetime, datetime, Shift | None]]:
    """The schedule and its gaps as one sorted, gapless list covering [start, end)."""
    items: list[tuple[datetime, datetime, Shift | None]] = [
        (shift.start, shift.end, shift) for shift in schedule
    ]
    items.extend((gap_start, gap_end, None) for gap_start, gap_end in gaps(schedule, start, end))
    items.sort(key=lambda item: item[0])
    return items


def _pieces_by_day(
    timeline: list[tuple[datetime, datetime, Shift | None]],
    bounds: list[tuple[date, datetime, datetime]],
) -> dict[date, list[Piece]]:
    found: dict[date, list[Piece]] = {day: [] for day, _, _ in bounds}
    cursor = 0
    for day, day_start, day_end in bounds:
        # Items are sorted and do not overlap: skip those that ended, keep the rest.
        while cursor < len(timeline) and timeline[cursor][1] <= day_start:
            cursor += 1
        index = cursor
        while index < len(timeline) and timeline[index][0] < day_end:
            item_start, item_end, shift = timeline[index]
            found[day].append(
                Piece(
                    start=max(item_start, day_start),
                    end=min(item_end, day_end),
                    shift=shift,
                    whole_start=item_start,
                    whole_end=item_end,
                )
            )
            index += 1
    return found


def province_operators(session: Session, province: str | None) -> list[User]:
    """Who may be rostered in a province: active operators covering it, by name; for the
    coordinators' rota (None), active coordinators."""
    role = Role.COORDINATOR if province is None else Role.OPERATOR
    eligible = [
        user
        for user in users_with_role(session, role)
        if province is None or province in user.provinces
    ]
    return sorted(eligible, key=lambda user: (user.display_name, user.id))


def _in_scope(model: type[Rotation] | type[Override], province: str | None) -> ColumnElement[bool]:
    if province is None:
        return and_(model.province.is_(None), model.tier == Tier.COORDINATOR.value)
    return model.province == province


def province_rotations(session: Session, province: str | None) -> list[Rotation]:
    return list(
        session.scalars(
            select(Rotation)
            .where(_in_scope(Rotation, province))
            .order_by(Rotation.tier.desc(), Rotation.start_date, Rotation.id)
        )
    )


def overrides_between(
    session: Session, province: str | None, start: datetime, end: datetime
) -> list[Override]:
    return list(
        session.scalars(
            select(Override)
            .where(
                _in_scope(Override, province),
                Override.start_at < end,
                Override.end_at > start,
            )
            .order_by(Override.start_at, Override.id)
        )
    )


def build_month(
    session: Session, *, province: str | None, month: date, today: date, locale: str
) -> MonthView:
    """Everything the month page shows for a province (or, with None, for the coordinators'
    rota alone): one resolution per tier. Gaps counted are the province's primary ones only."""
    first = month.replace(day=1)
    following = add_months(first, 1)
    day_count = (following - first).days
    days = [first + timedelta(days=offset) for offset in range(day_count + 1)]
    bounds = [(day, local_midnight(day), local_midnight(after)) for day, after in pairwise(days)]
    start, end = bounds[0][1], bounds[-1][2]

    schedules: dict[Tier, list[Shift]] = {
        tier: province_schedule(session, province=province, tier=tier, start=start, end=end)
        for tier in (PROVINCE_TIERS if province is not None else ())
    }
    schedules[Tier.COORDINATOR] = province_schedule(
        session, province=None, tier=Tier.COORDINATOR, start=start, end=end
    )
    cells = {
        tier: _pieces_by_day(_timeline(schedule, start, end), bounds)
        for tier, schedule in schedules.items()
    }
    calendar = holidays_of(first.year, locale)
    rows = [
        DayRow(
            day=day,
            start=day_start,
            end=day_end,
            holiday=calendar.get(day),
            is_today=day == today,
            cells={tier: cells[tier][day] for tier in cells},
        )
        for day, day_start, day_end in bounds
    ]
    operator_ids = {shift.operator_id for schedule in schedules.values() for shift in schedule}
    has_coordinator_rota = bool(schedules[Tier.COORDINATOR])
    return MonthView(
        province=province,
        month=first,
        today=today,
        days=rows,
        users=users_by_id(session, operator_ids),
        # Nobody on the coordinators' rota is no gap: every active coordinator is alerted.
        gaps=gaps(schedules[Tier.PRIMARY], start, end) if province is not None else [],
        has_coordinator_rota=has_coordinator_rota,
        coordinators=[] if has_coordinator_rota else users_with_role(session, Role.COORDINATOR),
        overrides=overrides_between(session, province, start, end),
        rotations=province_rotations(session, province),
        conflicts=(
            conflicts(schedules[Tier.PRIMARY], schedules[Tier.BACKUP])
            if province is not None
            else []
        ),
    )


def handover_for(rotations: Sequence[Rotation], tier: Tier, day: date) -> time:
    """The hand-over time a swap on ``day`` should start at: that of the tier's rotation in
    force that day (the newest one, as the resolver ranks them), else midnight."""
    in_force = [
        rotation
        for rotation in rotations
        if rotation.tier == tier.value
        and rotation.members
        and rotation.start_date <= day
        and (rotation.end_date is None or day < rotation.end_date)
    ]
    if not in_force:
        return time(0)
    best = max(in_force, key=lambda r: (r.priority, r.start_date, r.id))
    return best.handover


@dataclass(frozen=True)
class ChainRow:
    """One province in "who is on call now"."""

    province: str
    primary: User | None
    primary_until: datetime | None
    backup: User | None
    backup_until: datetime | None
    next_gap: tuple[datetime, datetime] | None
    # Who takes over from each holder, and when (None: nobody within the resolved month).
    primary_next: User | None = None
    primary_next_at: datetime | None = None
    backup_next: User | None = None
    backup_next_at: datetime | None = None


LOOKAHEAD = timedelta(days=7)
RESOLVED_AHEAD = timedelta(days=31)


def _holder_until(schedule: Sequence[Shift], now: datetime) -> datetime | None:
    for shift in schedule:
        if shift.start <= now < shift.end:
            return shift.end
    return None


def _next_holder(
    schedule: Sequence[Shift], now: datetime, holder: User | None
) -> tuple[int, datetime] | None:
    """Who holds the tier after whoever holds it now hands over (or after the gap now), and
    from when: the same person again when a gap comes between."""
    current = holder.id if holder is not None else None
    until = now
    for shift in sorted(schedule, key=lambda item: item.start):
        if shift.end <= until:
            continue
        if shift.start <= until and shift.operator_id == current:
            until = shift.end  # the current holder goes on (another rule, the next turn)
            continue
        if shift.start >= until:
            return shift.operator_id, shift.start
    return None


def on_call_now(session: Session, *, provinces: Sequence[str], now: datetime) -> list[ChainRow]:
    """The chain of each province now, with when each holder hands over (within a week)."""
    rows = []
    horizon = now + LOOKAHEAD
    # Resolved further than shown, so "until" and a gap's end are not cut at the horizon.
    window = now + RESOLVED_AHEAD
    for province in provinces:
        chain = on_call_chain(session, province=province, at=now)
        primary = province_schedule(
            session, province=province, tier=Tier.PRIMARY, start=now, end=window
        )
        backup = province_schedule(
            session, province=province, tier=Tier.BACKUP, start=now, end=window
        )
        holes = [hole for hole in gaps(primary, now, window) if hole[0] < horizon]
        next_primary = _next_holder(primary, now, chain.primary)
        next_backup = _next_holder(backup, now, chain.backup)
        following = users_by_id(
            session, [found[0] for found in (next_primary, next_backup) if found is not None]
        )
        rows.append(
            ChainRow(
                province=province,
                primary=chain.primary,
                primary_until=_holder_until(primary, now) if chain.primary else None,
                backup=chain.backup,
                backup_until=_holder_until(backup, now) if chain.backup else None,
                next_gap=holes[0] if holes else None,
                primary_next=following.get(next_primary[0]) if next_primary else None,
                primary_next_at=next_primary[1] if next_primary else None,
                backup_next=following.get(next_backup[0]) if next_backup else None,
                backup_next_at=next_backup[1] if next_backup else None,
            )
        )
    return rows
