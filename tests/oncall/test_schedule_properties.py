"""Properties of the rota resolver over random rotations, explicit shifts and overrides."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import TypeVar
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from oncall.schedule import (
    ExplicitShift,
    Override,
    RotationRule,
    Shift,
    Source,
    Tier,
    final_schedule,
    gaps,
    rotation_shifts,
)
from tests.oncall.normal_form import normalize

ROME = ZoneInfo("Europe/Rome")
PRIMARY = Tier.PRIMARY
TICK = timedelta(microseconds=1)
CHANGES = [date(2026, 3, 29), date(2026, 10, 25), date(2027, 3, 28), date(2027, 10, 31)]
# Hand-over times before, inside and after the hour that DST removes or repeats.
DST_HOURS = [time(0), time(1), time(1, 59), time(2), time(2, 30), time(2, 59), time(3), time(8)]
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)

Holder = tuple[int, Source, int]
T = TypeVar("T", ExplicitShift, Override)


@dataclass(frozen=True)
class Scenario:
    rotations: list[RotationRule]
    shifts: list[ExplicitShift]
    overrides: list[Override]
    start: datetime  # local midnight of the first day of a calendar month, in UTC
    end: datetime
    days: list[datetime]  # local midnights from start to end, in UTC

    def resolve(self, start: datetime, end: datetime) -> list[Shift]:
        return final_schedule(
            rotations=self.rotations,
            shifts=self.shifts,
            overrides=self.overrides,
            tier=PRIMARY,
            start=start,
            end=end,
        )


def local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ROME).astimezone(UTC)


handovers = st.one_of(
    st.sampled_from(DST_HOURS),
    st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45])),
)


@st.composite
def rotation_rules(draw: st.DrawFn, rule_id: int, change: date) -> RotationRule:
    period = draw(st.sampled_from([1, 7]))
    start = change + timedelta(days=draw(st.integers(-40, 12)))
    length = draw(st.none() | st.integers(1, 45))
    return RotationRule(
        id=rule_id,
        tier=draw(st.sampled_from([PRIMARY, PRIMARY, PRIMARY, Tier.BACKUP])),
        operator_ids=tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))),
        handover=draw(handovers),
        period_days=period,
        start=start,
        end=None if length is None else start + timedelta(days=length),
        priority=draw(st.integers(0, 1)),
    )


@st.composite
def intervals(draw: st.DrawFn, change: date) -> tuple[datetime, datetime]:
    # Half-hour steps make starts and ends land exactly on hand-overs and DST instants often.
    base = local_midnight(change)
    start = base + timedelta(minutes=30 * draw(st.integers(-48 * 35, 48 * 12)))
    end = start + timedelta(minutes=30 * draw(st.integers(1, 48 * 4)))
    if draw(st.booleans()):  # the same instants given in local time, fold included
        return start.astimezone(ROME), end.astimezone(ROME)
    return start, end


@st.composite
def assignments(draw: st.DrawFn, kind: type[T], change: date) -> T:
    start, end = draw(intervals(change))
    return kind(
        operator_id=draw(st.integers(1, 6)),
        tier=draw(st.sampled_from([PRIMARY, PRIMARY, PRIMARY, Tier.BACKUP])),
        start=start,
        end=end,
        id=draw(st.integers(1, 4)),  # repeated ids exercise the list-order tie-break
    )


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    change = draw(st.sampled_from(CHANGES))
    # The calendar month holding the change (March, October) or the one before it.
    month_start = change.replace(day=1)
    if draw(st.booleans()):
        month_start = (month_start - timedelta(days=1)).replace(day=1)
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    count = draw(st.integers(1, 3))
    rotations = [draw(rotation_rules(rule_id, change)) for rule_id in range(1, count + 1)]
    days = [
        local_midnight(month_start + timedelta(days=n))
        for n in range((next_month - month_start).days + 1)
    ]
    return Scenario(
        rotations=rotations,
        shifts=draw(st.lists(assignments(ExplicitShift, change), max_size=3)),
        overrides=draw(st.lists(assignments(Override, change), max_size=4)),
        start=days[0],
        end=days[-1],
        days=days,
    )


def oracle(scenario: Scenario, at: datetime) -> Holder | None:
    """Who holds the primary tier at ``at``, by brute force straight from the rules."""
    for source, items in ((Source.OVERRIDE, scenario.overrides), (Source.SHIFT, scenario.shifts)):
        containing = [
            (item.id, position, item)
            for position, item in enumerate(items)
            if item.tier == PRIMARY and item.start <= at < item.end
        ]
        if containing:
            winner = max(containing, key=lambda entry: entry[:2])[2]
            return (winner.operator_id, source, winner.id)
    ranked = sorted(
        (
            (rule.priority, rule.start, rule.id, position, rule)
            for position, rule in enumerate(scenario.rotations)
            if rule.tier == PRIMARY
        ),
        key=lambda entry: entry[:4],
        reverse=True,
    )
    for *_, rule in ranked:
        index = 0
        while rule.end is None or rule.start + timedelta(days=index * rule.period_days) < rule.end:
            day = rule.start + timedelta(days=index * rule.period_days)
            shift_start = datetime.combine(day, rule.handover, tzinfo=ROME).astimezone(UTC)
            next_day = day + timedelta(days=rule.period_days)
            shift_end = datetime.combine(next_day, rule.handover, tzinfo=ROME).astimezone(UTC)
            if shift_start > at:
                break
            if at < shift_end:
                return (rule.operator_for(index), Source.ROTATION, rule.id)
            index += 1
    return None


def holder_in(schedule: list[Shift], at: datetime) -> Shift | None:
    position = bisect.bisect_right([segment.start for segment in schedule], at) - 1
    if position >= 0 and at < schedule[position].end:
        return schedule[position]
    return None


def holder_of(segment: Shift | None) -> Holder | None:
    return None if segment is None else (segment.operator_id, segment.source, segment.rule_id)


def sample_instants(scenario: Scenario, schedule: list[Shift]) -> list[datetime]:
    """Every boundary that could matter, the instant before it, and midpoints."""
    points = {scenario.start, scenario.end - TICK}
    for segment in schedule:
        points |= {segment.start, segment.end, segment.start + (segment.end - segment.start) / 2}
    for item in [*scenario.shifts, *scenario.overrides]:
        points |= {item.start, item.end, item.start + (item.end - item.start) / 2}
    for rule in scenario.rotations:
        for shift in rotation_shifts(rule, scenario.start, scenario.end):
            points |= {shift.start, shift.start + (shift.end - shift.start) / 2}
    points |= {point - TICK for point in list(points)}
    return sorted(point for point in points if scenario.start <= point < scenario.end)


@PROPERTY_SETTINGS
@given(scenarios())
def test_schedule_never_overlaps_and_matches_the_rules(scenario: Scenario) -> None:
    schedule = scenario.resolve(scenario.start, scenario.end)

    for segment in schedule:
        assert segment.start.tzinfo is UTC
        assert segment.end.tzinfo is UTC
        assert scenario.start <= segment.start < segment.end <= scenario.end
        assert segment.tier == PRIMARY
    for before, after in pairwise(schedule):
        assert before.end <= after.start  # at most one operator per instant
        if before.end == after.start:  # normal form: no two touching pieces of one holder
            assert holder_of(before) != holder_of(after)
    for at in sample_instants(scenario, schedule):
        assert holder_of(holder_in(schedule, at)) == oracle(scenario, at)


@PROPERTY_SETTINGS
@given(scenarios())
def test_overrides_always_hold_their_instants(scenario: Scenario) -> None:
    schedule = scenario.resolve(scenario.start, scenario.end)

    for override in scenario.overrides:
        if override.tier != PRIMARY:
            continue
        inside = [override.start, override.start + (override.end - override.start) / 2]
        inside += [override.end - TICK]
        for at in inside:
            if not scenario.start <= at < scenario.end:
                continue
            segment = holder_in(schedule, at)
            assert segment is not None
            assert segment.source == Source.OVERRIDE
            winner = max(
                (
                    (item.id, position, item)
                    for position, item in enumerate(scenario.overrides)
                    if item.tier == PRIMARY and item.start <= at < item.end
                ),
                key=lambda entry: entry[:2],
            )[2]
            assert (segment.operator_id, segment.rule_id) == (winner.operator_id, winner.id)


@PROPERTY_SETTINGS
@given(scenarios(), st.data())
def test_month_equals_its_days_and_any_split(scenario: Scenario, data: st.DataObject) -> None:
    month = scenario.resolve(scenario.start, scenario.end)

    by_day = [
        segment
        for day_start, day_end in pairwise(scenario.days)
        for segment in scenario.resolve(day_start, day_end)
    ]
    assert normalize(by_day) == month

    split = scenario.start + timedelta(
        minutes=30 * data.draw(st.integers(0, len(scenario.days) * 48), label="split")
    )
    split = min(split, scenario.end)
    halves = scenario.resolve(scenario.start, split) + scenario.resolve(split, scenario.end)
    assert normalize(halves) == month


@PROPERTY_SETTINGS
@given(scenarios())
def test_an_instant_resolved_alone_has_the_holder_of_the_month(scenario: Scenario) -> None:
    """What the chain asks: resolving [t, t + 1 us) gives the holder of t in the month."""
    schedule = scenario.resolve(scenario.start, scenario.end)

    for at in sample_instants(scenario, schedule)[::3]:
        for when in (at, at.astimezone(ROME)):
            # The end in UTC: a microsecond added to a Rome time is wall-clock arithmetic.
            alone = scenario.resolve(when, at + TICK)
            segment = holder_in(schedule, at)
            assert holder_of(alone[0] if alone else None) == holder_of(segment)
            assert len(alone) <= 1
            if alone:
                assert (alone[0].start, alone[0].end) == (at, at + TICK)


@PROPERTY_SETTINGS
@given(
    change=st.sampled_from(CHANGES),
    handover=handovers,
    period=st.sampled_from([1, 7]),
    operators=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    lead_days=st.integers(1, 400),
    window_days=st.integers(1, 40),
    window_offset=st.integers(-20 * 48, 0),
)
def test_lone_rotation_tiles_time_exactly(
    *,
    change: date,
    handover: time,
    period: int,
    operators: list[int],
    lead_days: int,
    window_days: int,
    window_offset: int,
) -> None:
    rule = RotationRule(
        1, PRIMARY, tuple(operators), handover, period, change - timedelta(lead_days)
    )
    start = local_midnight(change) + timedelta(minutes=30 * window_offset)
    start = max(start, rule.boundary(0))  # the rotation covers the whole range
    end = start + timedelta(days=window_days)

    schedule = final_schedule(rotations=[rule], tier=PRIMARY, start=start, end=end)
    shifts = rotation_shifts(rule, start, end)

    assert gaps(schedule, start, end) == []
    assert schedule[0].start == start
    assert schedule[-1].end == end
    assert sum((segment.duration for segment in schedule), timedelta()) == end - start
    assert shifts[0].start <= start
    assert shifts[-1].end >= end
    for before, after in pairwise(shifts):
        assert before.end == after.start  # exact instants: no gap, no overlap
    allowed = {timedelta(days=period) + timedelta(hours=hours) for hours in (-1, 0, 1)}
    for shift in shifts:
        assert shift.duration in allowed
        wall = shift.start.astimezone(ROME)
        naive = datetime.combine(wall.date(), handover)
        exists = (
            naive.replace(tzinfo=ROME).astimezone(UTC).astimezone(ROME).replace(tzinfo=None)
            == naive
        )
        # A hand-over in the missing hour moves one hour later; otherwise it is on time.
        expected = naive if exists else naive + timedelta(hours=1)
        assert wall.replace(tzinfo=None) == expected
