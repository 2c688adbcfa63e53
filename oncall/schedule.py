"""Pure resolver of rotations, explicit shifts and overrides into one final on-call schedule."""

# Conventions (the contract every caller relies on):
#
# * Instants are aware datetimes; everything this module returns is in UTC. Naive datetimes
#   are rejected with ValueError, because guessing their zone is how hand-overs go missing.
#   Compare results in UTC: under PEP 495 a datetime in the repeated hour never equals one
#   of another zone, and two datetimes of one ZoneInfo subtract as wall clocks.
# * Rotations are local wall-clock rules, turned into UTC with zoneinfo at resolution time.
#   Shift k of a rotation runs from local date ``start + k * period_days`` at ``handover`` to
#   local date ``start + (k + 1) * period_days`` at ``handover``. Each boundary is a function
#   of its local date only, so the end of one shift is the very same instant as the start of
#   the next: a daily shift lasts 23 h across the last Sunday of March and 25 h across the
#   last Sunday of October, with no gap and no overlap.
# * Hand-over times in the DST hours follow PEP 495 with fold=0: a hand-over in the hour that
#   does not exist (02:30 on 2026-03-29) uses the offset in force before the change, so it
#   happens at 03:30 CEST (01:30Z); a hand-over in the hour that happens twice (02:30 on
#   2026-10-25) happens at its first occurrence (02:30 CEST, 00:30Z).
# * Precedence, highest first: overrides, then explicit shifts, then rotations.
#   Overrides and explicit shifts: higher ``id`` wins (ids grow with creation, so the latest
#   created wins); on equal ids the one later in the argument list wins.
#   Rotations: higher ``priority`` wins, then the later ``start`` date (a new rotation takes
#   over from the one it replaces), then the higher ``id``, then the later list position.
#   A rule of lower precedence shows through wherever the higher ones have no shift.
# * Normal form of a schedule: the instants of [start, end) that somebody holds, cut into
#   maximal segments over which the holder (operator, source, rule id) does not change.
#   Adjacent segments with the same holder are therefore always merged, including two
#   consecutive shifts of one rotation given to the same operator. Because the holder of an
#   instant does not depend on the range asked for, resolving [a, c) equals resolving [a, b)
#   and [b, c) and merging the touching segments of one holder where b cut them.

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from itertools import pairwise
from typing import TypeVar
from zoneinfo import ZoneInfo

from core.clock import ROME

__all__ = [
    "ROME",
    "ExplicitShift",
    "Override",
    "RotationRule",
    "Shift",
    "Source",
    "Tier",
    "final_schedule",
    "gaps",
    "preview_rotation",
    "rotation_shifts",
    "to_utc",
]


class Tier(StrEnum):
    PRIMARY = "primary"
    BACKUP = "backup"
    COORDINATOR = "coordinator"


class Source(StrEnum):
    """Which kind of rule produced a segment of the final schedule."""

    ROTATION = "rotation"
    SHIFT = "shift"
    OVERRIDE = "override"


def to_utc(value: datetime, name: str) -> datetime:
    """The instant in UTC; a naive datetime (whose zone would be a guess) raises ValueError."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got naive {value.isoformat()}")
    # Comparing two datetimes that share one ZoneInfo compares wall clocks and ignores fold,
    # so everything is moved to UTC before any comparison or subtraction.
    return value.astimezone(UTC)


def _range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    start_utc, end_utc = to_utc(start, "start"), to_utc(end, "end")
    if end_utc < start_utc:
        raise ValueError(f"end {end_utc.isoformat()} is before start {start_utc.isoformat()}")
    return start_utc, end_utc


@dataclass(frozen=True, slots=True)
class RotationRule:
    """Consecutive shifts of ``period_days`` days handed over at a local wall-clock time.

    Shift k belongs to ``operator_ids[k % len(operator_ids)]`` and starts on local date
    ``start + k * period_days`` at ``handover`` (fold=0, see the module notes for the DST
    hours). ``end`` is exclusive: no shift starts on or after that date, and the last shift
    runs its full length. The design uses periods of 1 and 7 days; any positive length works.
    """

    id: int
    tier: Tier
    operator_ids: tuple[int, ...]
    handover: time
    period_days: int
    start: date
    end: date | None = None
    priority: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "tier", Tier(self.tier))
        object.__setattr__(self, "operator_ids", tuple(self.operator_ids))
        if not self.operator_ids:
            raise ValueError("a rotation needs at least one operator")
        if self.period_days < 1:
            raise ValueError(f"period_days must be positive, got {self.period_days}")
        if self.handover.tzinfo is not None:
            raise ValueError("handover is a local wall-clock time; the zone comes at resolution")
        # fold is meaningless for a rule repeated every day; fold=0 keeps boundaries canonical.
        object.__setattr__(self, "handover", self.handover.replace(fold=0))
        if isinstance(self.start, datetime) or isinstance(self.end, datetime):
            raise TypeError("rotation start and end are local dates, not datetimes")
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"rotation end {self.end} must be after its start {self.start}")

    @property
    def shift_count(self) -> int | None:
        """How many shifts the rotation has, or None when it has no end."""
        if self.end is None:
            return None
        return -(-(self.end - self.start).days // self.period_days)

    def boundary(self, index: int, tz: ZoneInfo = ROME) -> datetime:
        """The UTC instant at which shift ``index`` starts (and shift ``index - 1`` ends)."""
        day = self.start + timedelta(days=index * self.period_days)
        return datetime.combine(day, self.handover, tzinfo=tz).astimezone(UTC)

    def operator_for(self, index: int) -> int:
        return self.operator_ids[index % len(self.operator_ids)]


@dataclass(frozen=True, slots=True)
class _Assignment:
    operator_id: int
    tier: Tier
    start: datetime
    end: datetime
    id: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "tier", Tier(self.tier))
        start, end = to_utc(self.start, "start"), to_utc(self.end, "end")
        if end <= start:
            raise ValueError(f"end {end.isoformat()} must be after start {start.isoformat()}")
        # Stored in UTC so that every later comparison is between real instants.
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)


@dataclass(frozen=True, slots=True)
class ExplicitShift(_Assignment):
    """An operator on call for [start, end), e.g. a row of an imported rota; beats rotations."""


@dataclass(frozen=True, slots=True)
class Override(_Assignment):
    """A swap or a cover for [start, end); beats everything, the highest id among overrides."""


@dataclass(frozen=True, slots=True)
class Shift:
    """One segment of a resolved schedule, in UTC.

    ``rule_id`` is the id of the rotation, explicit shift or override that produced it.
    """

    operator_id: int
    tier: Tier
    start: datetime
    end: datetime
    source: Source
    rule_id: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", to_utc(self.start, "start"))
        object.__setattr__(self, "end", to_utc(self.end, "end"))

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def holds(self, at: datetime) -> bool:
        return self.start <= to_utc(at, "at") < self.end


_Holder = tuple[int, Source, int]
_A = TypeVar("_A", bound=_Assignment)


def _shift_indices(
    rule: RotationRule, start: datetime, end: datetime, tz: ZoneInfo
) -> Iterator[tuple[int, datetime, datetime]]:
    """(index, start, end) of the rule's shifts overlapping [start, end), both UTC."""
    count = rule.shift_count
    local_day = start.astimezone(tz).date()
    # Jump arithmetically to a shift that begins at least one full local day before ``start``
    # (the extra day absorbs a boundary moved by a DST gap), then walk forward: a few steps
    # at most, however many years the rotation has already run.
    index = max(0, ((local_day - rule.start).days - 1) // rule.period_days - 1)
    shift_end = rule.boundary(index + 1, tz)
    while shift_end <= start and (count is None or index < count):
        index += 1
        shift_end = rule.boundary(index + 1, tz)
    shift_start = rule.boundary(index, tz)
    while (count is None or index < count) and shift_start < end:
        # Only a zone that skips a whole day could make a shift empty; it is then skipped.
        if shift_start < shift_end:
            yield index, shift_start, shift_end
        index += 1
        shift_start, shift_end = shift_end, rule.boundary(index + 1, tz)


def rotation_shifts(
    rule: RotationRule, start: datetime, end: datetime, tz: ZoneInfo = ROME
) -> list[Shift]:
    """Every shift of one rotation that overlaps [start, end), whole (not clipped or merged).

    Useful where the hand-overs themselves matter (reminders at the start of a shift).
    """
    range_start, range_end = _range(start, end)
    return [
        Shift(rule.operator_for(index), rule.tier, shift_start, shift_end, Source.ROTATION, rule.id)
        for index, shift_start, shift_end in _shift_indices(rule, range_start, range_end, tz)
    ]


def _ranked_rotations(rotations: Iterable[RotationRule], tier: Tier) -> list[RotationRule]:
    """Rotations of the tier, highest precedence first."""
    ranked = [
        (rule.priority, rule.start, rule.id, position, rule)
        for position, rule in enumerate(rotations)
        if rule.tier == tier
    ]
    ranked.sort(key=lambda item: item[:4], reverse=True)
    return [item[4] for item in ranked]


def _ranked_assignments(
    assignments: Iterable[_A], tier: Tier, start: datetime, end: datetime
) -> list[_A]:
    """Explicit shifts or overrides of the tier overlapping [start, end), best first."""
    # Filtering before sorting keeps a month cheap even when years of overrides are passed;
    # the list position still breaks ties on equal ids because filtering keeps the order.
    ranked = [
        (item.id, position, item)
        for position, item in enumerate(assignments)
        if item.tier == tier and item.start < end and item.end > start
    ]
    ranked.sort(key=lambda entry: entry[:2], reverse=True)
    return [entry[2] for entry in ranked]


def final_schedule(
    *,
    rotations: Iterable[RotationRule] = (),
    shifts: Iterable[ExplicitShift] = (),
    overrides: Iterable[Override] = (),
    tier: Tier | str,
    start: datetime,
    end: datetime,
    tz: ZoneInfo = ROME,
) -> list[Shift]:
    """The resolved schedule of one tier within [start, end), in normal form.

    Segments are clipped to the range, sorted, never overlap, and adjacent segments with the
    same holder are merged (see the module notes). Rules of other tiers are ignored, so a
    caller may pass everything it loaded for a province.
    """
    range_start, range_end = _range(start, end)
    tier = Tier(tier)
    if range_start == range_end:
        return []
    return _resolve(
        overrides=_ranked_assignments(overrides, tier, range_start, range_end),
        shifts=_ranked_assignments(shifts, tier, range_start, range_end),
        rotations=_ranked_rotations(rotations, tier),
        tier=tier,
        start=range_start,
        end=range_end,
        tz=tz,
    )


def _resolve(
    *,
    overrides: list[Override],
    shifts: list[ExplicitShift],
    rotations: list[RotationRule],
    tier: Tier,
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
) -> list[Shift]:
    """Resolve rules already filtered to the tier and ranked, within a non-empty UTC range."""
    # Pieces are (start, end, holder), clipped, listed in decreasing precedence so that the
    # list position doubles as the rank in the sweep.
    pieces: list[tuple[datetime, datetime, _Holder]] = []
    for source, assignments in (
        (Source.OVERRIDE, overrides),
        (Source.SHIFT, shifts),
    ):
        for item in assignments:
            if item.start < end and item.end > start:
                pieces.append(
                    (
                        max(item.start, start),
                        min(item.end, end),
                        (item.operator_id, source, item.id),
                    )
                )
    for rule in rotations:
        for index, shift_start, shift_end in _shift_indices(rule, start, end, tz):
            pieces.append(
                (
                    max(shift_start, start),
                    min(shift_end, end),
                    (rule.operator_for(index), Source.ROTATION, rule.id),
                )
            )
    return _sweep(pieces, tier)


def _sweep(pieces: list[tuple[datetime, datetime, _Holder]], tier: Tier) -> list[Shift]:
    """Cut the pieces at every boundary and keep the highest-ranked piece of each stretch."""
    starting: dict[datetime, list[int]] = {}
    for rank, (piece_start, _, _) in enumerate(pieces):
        starting.setdefault(piece_start, []).append(rank)
    points = sorted({point for piece in pieces for point in piece[:2]})

    segments: list[tuple[datetime, datetime, _Holder]] = []
    active: list[int] = []  # heap of ranks; the smallest rank is the highest precedence
    for point, next_point in pairwise(points):
        for rank in starting.get(point, ()):
            heapq.heappush(active, rank)
        # Lazy deletion: a piece that has ended only matters once it reaches the top.
        while active and pieces[active[0]][1] <= point:
            heapq.heappop(active)
        if not active:
            continue
        holder = pieces[active[0]][2]
        if segments and segments[-1][1] == point and segments[-1][2] == holder:
            segments[-1] = (segments[-1][0], next_point, holder)
        else:
            segments.append((point, next_point, holder))
    return [
        Shift(holder[0], tier, seg_start, seg_end, holder[1], holder[2])
        for seg_start, seg_end, holder in segments
    ]


def preview_rotation(
    rule: RotationRule, start: datetime, end: datetime, tz: ZoneInfo = ROME
) -> list[Shift]:
    """The schedule a rotation would produce on its own in [start, end), before saving it.

    Same normal form as ``final_schedule``, so the preview looks like the month view.
    """
    return final_schedule(rotations=(rule,), tier=rule.tier, start=start, end=end, tz=tz)


def gaps(
    schedule: Sequence[Shift], start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """The maximal intervals of [start, end) that no segment of the schedule covers, in UTC."""
    range_start, range_end = _range(start, end)
    found: list[tuple[datetime, datetime]] = []
    cursor = range_start
    for segment in sorted(schedule, key=lambda item: item.start):
        if segment.start >= range_end:
            break
        if segment.end <= cursor:
            continue
        if segment.start > cursor:
            found.append((cursor, segment.start))
        cursor = segment.end
    if cursor < range_end:
        found.append((cursor, range_end))
    return found


@dataclass(frozen=True, slots=True)
class Conflict:
    """One operator holding the primary and the backup tier at once: when the primary does
    not answer, the escalation pages the same phone again and nobody else."""

    operator_id: int
    start: datetime
    end: datetime


def conflicts(primary: Sequence[Shift], backup: Sequence[Shift]) -> list[Conflict]:
    """The maximal intervals where the same operator holds both tiers, by start, in UTC."""
    found: list[Conflict] = []
    seconds = sorted(backup, key=lambda item: item.start)
    for first in sorted(primary, key=lambda item: item.start):
        for second in seconds:
            if first.operator_id != second.operator_id:
                continue
            start, end = max(first.start, second.start), min(first.end, second.end)
            if start >= end:
                continue
            last = found[-1] if found else None
            if last is not None and last.operator_id == first.operator_id and last.end == start:
                found[-1] = Conflict(first.operator_id, last.start, end)
            else:
                found.append(Conflict(first.operator_id, start, end))
    return sorted(found, key=lambda item: (item.start, item.operator_id))
