"""Examples for the rota resolver: DST changes of 2026 and 2027, precedence, gaps, instants."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from oncall.schedule import (
    ExplicitShift,
    Override,
    RotationRule,
    Shift,
    Source,
    Tier,
    final_schedule,
    gaps,
    preview_rotation,
    rotation_shifts,
)
from tests.oncall.normal_form import normalize

ROME = ZoneInfo("Europe/Rome")
HOUR = timedelta(hours=1)
PRIMARY = Tier.PRIMARY

SPRING = (date(2026, 3, 29), date(2027, 3, 28))  # 02:00 -> 03:00, the hour does not exist
AUTUMN = (date(2026, 10, 25), date(2027, 10, 31))  # 03:00 -> 02:00, the hour happens twice


def local(day: date, at: time = time(0), fold: int = 0) -> datetime:
    return datetime.combine(day, at, tzinfo=ROME).replace(fold=fold)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def real(start: datetime, end: datetime) -> timedelta:
    """Elapsed time; subtracting two datetimes of one ZoneInfo would give wall-clock time."""
    return end.astimezone(UTC) - start.astimezone(UTC)


def hours(shifts: list[Shift]) -> list[float]:
    return [shift.duration / HOUR for shift in shifts]


def assert_tiles(shifts: list[Shift]) -> None:
    """Consecutive shifts: each ends at the very instant the next starts."""
    for before, after in pairwise(shifts):
        assert before.end == after.start


# (handover, period in days, first shift's start relative to the change day, expected lengths
# in real hours of the first three shifts). Nonexistent and repeated hand-overs are read with
# fold=0, so the short or long shift is the one that *starts* on the change day for 00:00,
# 02:00 and 02:30, and the one that *ends* on it for 03:00 and 08:00.
SPRING_CASES = [
    (time(0), 1, -1, [24, 23, 24]),
    (time(2), 1, -1, [24, 23, 24]),
    (time(2, 30), 1, -1, [24, 23, 24]),
    (time(3), 1, -1, [23, 24, 24]),
    (time(8), 1, -1, [23, 24, 24]),
    (time(0), 7, -7, [168, 167, 168]),
    (time(2, 30), 7, -7, [168, 167, 168]),
    (time(8), 7, -7, [167, 168, 168]),
    (time(0), 7, -4, [167, 168, 168]),
    (time(2, 30), 7, -4, [167, 168, 168]),
    (time(8), 7, -4, [167, 168, 168]),
]
AUTUMN_CASES = [
    (time(0), 1, -1, [24, 25, 24]),
    (time(2), 1, -1, [24, 25, 24]),
    (time(2, 30), 1, -1, [24, 25, 24]),
    (time(3), 1, -1, [25, 24, 24]),
    (time(8), 1, -1, [25, 24, 24]),
    (time(0), 7, -7, [168, 169, 168]),
    (time(2, 30), 7, -7, [168, 169, 168]),
    (time(8), 7, -7, [169, 168, 168]),
    (time(0), 7, -4, [169, 168, 168]),
    (time(2, 30), 7, -4, [169, 168, 168]),
    (time(8), 7, -4, [169, 168, 168]),
]


@pytest.mark.parametrize(
    ("change", "handover", "period", "offset", "expected"),
    [(change, *case) for change in SPRING for case in SPRING_CASES]
    + [(change, *case) for change in AUTUMN for case in AUTUMN_CASES],
)
def test_rotation_lengths_across_dst_changes(
    change: date, handover: time, period: int, offset: int, expected: list[int]
) -> None:
    rule = RotationRule(1, PRIMARY, (10, 20), handover, period, change + timedelta(days=offset))
    first, last = rule.boundary(0), rule.boundary(3)

    shifts = rotation_shifts(rule, first, last)

    assert hours(shifts) == expected
    assert [shift.operator_id for shift in shifts] == [10, 20, 10]
    assert_tiles(shifts)
    assert shifts[0].start == first
    assert shifts[-1].end == last
    # The final schedule alternates operators, so it shows every hand-over unmerged.
    schedule = final_schedule(rotations=[rule], tier=PRIMARY, start=first, end=last)
    assert schedule == shifts
    assert gaps(schedule, first, last) == []


@pytest.mark.parametrize("change", SPRING + AUTUMN)
@pytest.mark.parametrize("handover", [time(0), time(2, 30), time(8)])
@pytest.mark.parametrize("period", [1, 7])
def test_boundaries_fall_at_the_local_hand_over(change: date, handover: time, period: int) -> None:
    rule = RotationRule(1, PRIMARY, (1, 2, 3), handover, period, change - timedelta(days=21))
    shifts = rotation_shifts(
        rule, local(change - timedelta(days=14)), local(change + timedelta(days=21))
    )

    assert_tiles(shifts)
    assert len(shifts) >= 35 // period
    nonexistent = change in SPRING and handover == time(2, 30)
    for shift in shifts:
        assert shift.start.tzinfo is UTC
        wall = shift.start.astimezone(ROME)
        if nonexistent and wall.date() == change:
            assert wall.time() == time(3, 30)  # the nonexistent 02:30 is read with CET
        else:
            assert wall.time() == handover


@pytest.mark.parametrize(
    ("change", "expected_start"),
    [
        (date(2026, 3, 29), utc(2026, 3, 29, 1, 30)),
        (date(2027, 3, 28), utc(2027, 3, 28, 1, 30)),
        (date(2026, 10, 25), utc(2026, 10, 25, 0, 30)),
        (date(2027, 10, 31), utc(2027, 10, 31, 0, 30)),
    ],
)
def test_hand_over_in_the_dst_hour_is_read_with_fold_zero(
    change: date, expected_start: datetime
) -> None:
    # Nonexistent 02:30 -> offset before the change (03:30 CEST); repeated 02:30 -> first one.
    rule = RotationRule(1, PRIMARY, (1,), time(2, 30), 1, change)

    assert rule.boundary(0) == expected_start
    assert rotation_shifts(rule, expected_start, expected_start + HOUR)[0].start == expected_start


def test_handover_fold_is_ignored() -> None:
    rule = RotationRule(1, PRIMARY, (1,), time(2, 30, fold=1), 1, date(2026, 10, 25))

    assert rule.handover.fold == 0
    assert rule.boundary(0) == utc(2026, 10, 25, 0, 30)


@pytest.mark.parametrize("change", SPRING + AUTUMN)
def test_lone_rotation_has_no_gap_over_a_dst_month(change: date) -> None:
    rule = RotationRule(1, PRIMARY, (1, 2), time(2, 30), 1, date(2026, 1, 5))
    start, end = local(change - timedelta(days=15)), local(change + timedelta(days=15))

    schedule = final_schedule(rotations=[rule], tier=PRIMARY, start=start, end=end)

    assert gaps(schedule, start, end) == []
    assert schedule[0].start == start.astimezone(UTC)
    assert schedule[-1].end == end.astimezone(UTC)
    assert sum((shift.duration for shift in schedule), timedelta()) == real(start, end)
    assert sorted({shift.duration / HOUR for shift in schedule[1:-1]}) in ([23, 24], [24, 25])


def test_override_straddling_the_autumn_change_lasts_four_real_hours() -> None:
    rule = RotationRule(1, PRIMARY, (1, 2), time(8), 1, date(2026, 10, 19))
    cover = Override(
        9, PRIMARY, local(date(2026, 10, 25), time(1)), local(date(2026, 10, 25), time(4))
    )

    schedule = final_schedule(
        rotations=[rule],
        overrides=[cover],
        tier=PRIMARY,
        start=utc(2026, 10, 24, 12),
        end=utc(2026, 10, 25, 12),
    )

    assert cover.start == utc(2026, 10, 24, 23)
    assert cover.end == utc(2026, 10, 25, 3)
    assert [(s.operator_id, s.source, s.start, s.end) for s in schedule] == [
        (2, Source.ROTATION, utc(2026, 10, 24, 12), utc(2026, 10, 24, 23)),
        (9, Source.OVERRIDE, utc(2026, 10, 24, 23), utc(2026, 10, 25, 3)),
        (2, Source.ROTATION, utc(2026, 10, 25, 3), utc(2026, 10, 25, 7)),
        (1, Source.ROTATION, utc(2026, 10, 25, 7), utc(2026, 10, 25, 12)),
    ]
    assert schedule[1].duration == 4 * HOUR


def test_override_straddling_the_spring_change_lasts_two_real_hours() -> None:
    cover = Override(
        9, PRIMARY, local(date(2026, 3, 29), time(1)), local(date(2026, 3, 29), time(4))
    )

    schedule = final_schedule(
        overrides=[cover], tier=PRIMARY, start=utc(2026, 3, 28), end=utc(2026, 3, 30)
    )

    assert [(s.start, s.end) for s in schedule] == [(utc(2026, 3, 29, 0), utc(2026, 3, 29, 2))]
    assert schedule[0].duration == 2 * HOUR


def test_explicit_shift_wins_over_rotation() -> None:
    rule = RotationRule(1, PRIMARY, (1,), time(8), 1, date(2026, 5, 1))
    explicit = ExplicitShift(5, PRIMARY, utc(2026, 5, 3, 18), utc(2026, 5, 4, 6), id=40)

    schedule = final_schedule(
        rotations=[rule],
        shifts=[explicit],
        tier=PRIMARY,
        start=utc(2026, 5, 3),
        end=utc(2026, 5, 5),
    )

    assert [(s.operator_id, s.source, s.rule_id, s.start, s.end) for s in schedule] == [
        (1, Source.ROTATION, 1, utc(2026, 5, 3), utc(2026, 5, 3, 18)),
        (5, Source.SHIFT, 40, utc(2026, 5, 3, 18), utc(2026, 5, 4, 6)),
        (1, Source.ROTATION, 1, utc(2026, 5, 4, 6), utc(2026, 5, 5)),
    ]


def test_override_wins_over_explicit_shift() -> None:
    explicit = ExplicitShift(5, PRIMARY, utc(2026, 5, 3), utc(2026, 5, 4), id=1)
    cover = Override(7, PRIMARY, utc(2026, 5, 3, 10), utc(2026, 5, 3, 12), id=1)

    schedule = final_schedule(
        shifts=[explicit],
        overrides=[cover],
        tier=PRIMARY,
        start=utc(2026, 5, 3),
        end=utc(2026, 5, 4),
    )

    assert [(s.operator_id, s.source, s.start, s.end) for s in schedule] == [
        (5, Source.SHIFT, utc(2026, 5, 3), utc(2026, 5, 3, 10)),
        (7, Source.OVERRIDE, utc(2026, 5, 3, 10), utc(2026, 5, 3, 12)),
        (5, Source.SHIFT, utc(2026, 5, 3, 12), utc(2026, 5, 4)),
    ]


def test_latest_override_wins_by_id_then_list_order() -> None:
    older = Override(1, PRIMARY, utc(2026, 5, 3, 8), utc(2026, 5, 3, 20), id=10)
    newer = Override(2, PRIMARY, utc(2026, 5, 3, 12), utc(2026, 5, 3, 14), id=11)
    same_id_later = Override(3, PRIMARY, utc(2026, 5, 3, 13), utc(2026, 5, 3, 15), id=11)

    def resolve(*overrides: Override) -> list[Shift]:
        return final_schedule(
            overrides=overrides, tier=PRIMARY, start=utc(2026, 5, 3), end=utc(2026, 5, 4)
        )

    by_id = resolve(newer, older)  # list order does not matter
    by_position = resolve(older, newer, same_id_later)

    assert [(s.operator_id, s.start, s.end) for s in by_id] == [
        (1, utc(2026, 5, 3, 8), utc(2026, 5, 3, 12)),
        (2, utc(2026, 5, 3, 12), utc(2026, 5, 3, 14)),
        (1, utc(2026, 5, 3, 14), utc(2026, 5, 3, 20)),
    ]
    assert [(s.operator_id, s.start, s.end) for s in by_position] == [
        (1, utc(2026, 5, 3, 8), utc(2026, 5, 3, 12)),
        (2, utc(2026, 5, 3, 12), utc(2026, 5, 3, 13)),
        (3, utc(2026, 5, 3, 13), utc(2026, 5, 3, 15)),
        (1, utc(2026, 5, 3, 15), utc(2026, 5, 3, 20)),
    ]


def test_rotation_precedence_priority_then_later_start_then_id() -> None:
    old = RotationRule(1, PRIMARY, (1,), time(8), 1, date(2026, 1, 1))
    new = RotationRule(2, PRIMARY, (2,), time(8), 1, date(2026, 6, 1))
    twin = RotationRule(3, PRIMARY, (3,), time(8), 1, date(2026, 6, 1))
    pinned = RotationRule(4, PRIMARY, (4,), time(8), 1, date(2026, 1, 1), priority=1)
    start, end = utc(2026, 5, 30), utc(2026, 6, 3)
    jun_1 = local(date(2026, 6, 1), time(8)).astimezone(UTC)

    def holders(*rules: RotationRule) -> list[tuple[int, datetime]]:
        schedule = final_schedule(rotations=rules, tier=PRIMARY, start=start, end=end)
        return [(s.operator_id, s.start) for s in schedule]

    assert holders(new, old) == [(1, start), (2, jun_1)]
    assert holders(old, new, twin) == [(1, start), (3, jun_1)]
    assert holders(old, pinned, new) == [(4, start)]


def test_rotation_end_is_exclusive_and_the_last_shift_runs_in_full() -> None:
    rule = RotationRule(1, PRIMARY, (1, 2), time(8), 7, date(2026, 6, 1), end=date(2026, 6, 10))

    shifts = rotation_shifts(rule, utc(2026, 5, 1), utc(2026, 7, 1))

    assert rule.shift_count == 2
    assert [(s.operator_id, s.start.astimezone(ROME).date()) for s in shifts] == [
        (1, date(2026, 6, 1)),
        (2, date(2026, 6, 8)),
    ]
    assert shifts[-1].end == local(date(2026, 6, 15), time(8)).astimezone(UTC)


def test_gaps_when_a_rotation_ends_and_another_starts_later() -> None:
    ending = RotationRule(1, PRIMARY, (1, 2), time(8), 1, date(2026, 6, 1), end=date(2026, 6, 5))
    later = RotationRule(2, PRIMARY, (3,), time(20), 1, date(2026, 6, 7))
    start, end = local(date(2026, 5, 31)), local(date(2026, 6, 9))

    schedule = final_schedule(rotations=[ending, later], tier=PRIMARY, start=start, end=end)

    assert gaps(schedule, start, end) == [
        (start.astimezone(UTC), local(date(2026, 6, 1), time(8)).astimezone(UTC)),
        (
            local(date(2026, 6, 5), time(8)).astimezone(UTC),
            local(date(2026, 6, 7), time(20)).astimezone(UTC),
        ),
    ]


def test_gaps_of_an_empty_schedule_and_of_a_partial_one() -> None:
    start, end = utc(2026, 1, 1), utc(2026, 1, 2)
    middle = Shift(1, PRIMARY, utc(2026, 1, 1, 6), utc(2026, 1, 1, 9), Source.SHIFT, 1)
    outside = Shift(2, PRIMARY, utc(2025, 12, 31), utc(2026, 1, 1, 1), Source.SHIFT, 2)

    assert gaps([], start, end) == [(start, end)]
    assert gaps([middle, outside], start, end) == [
        (utc(2026, 1, 1, 1), utc(2026, 1, 1, 6)),
        (utc(2026, 1, 1, 9), end),
    ]


def holder_at(schedule: list[Shift], at: datetime) -> Shift | None:
    return next((segment for segment in schedule if segment.holds(at)), None)


def test_the_repeated_hour_has_a_holder_in_both_occurrences() -> None:
    rule = RotationRule(1, PRIMARY, (1, 2), time(8), 1, date(2026, 10, 19))
    # 02:00-03:00 of the *second* occurrence (CET), i.e. 01:00Z-02:00Z.
    second_hour = ExplicitShift(
        7,
        PRIMARY,
        local(date(2026, 10, 25), time(2), fold=1),
        local(date(2026, 10, 25), time(3)),
        id=1,
    )
    first = local(date(2026, 10, 25), time(2, 30), fold=0)
    second = local(date(2026, 10, 25), time(2, 30), fold=1)
    assert first.astimezone(UTC) == utc(2026, 10, 25, 0, 30)
    assert second.astimezone(UTC) == utc(2026, 10, 25, 1, 30)
    assert second_hour.end - second_hour.start == HOUR

    schedule = final_schedule(
        rotations=[rule],
        shifts=[second_hour],
        tier=PRIMARY,
        start=local(date(2026, 10, 24)),
        end=local(date(2026, 10, 26)),
    )
    at_first, at_second = holder_at(schedule, first), holder_at(schedule, second)

    assert at_first is not None
    assert (at_first.operator_id, at_first.source) == (2, Source.ROTATION)
    assert at_first.start == local(date(2026, 10, 24), time(8)).astimezone(UTC)
    assert at_first.end == utc(2026, 10, 25, 1)  # displaced by the explicit shift
    assert at_second is not None
    assert (at_second.operator_id, at_second.source, at_second.rule_id) == (7, Source.SHIFT, 1)
    assert (at_second.start, at_second.end) == (utc(2026, 10, 25, 1), utc(2026, 10, 25, 2))


def test_an_instant_in_a_gap_and_with_rules_of_another_tier() -> None:
    backup = RotationRule(1, Tier.BACKUP, (1,), time(8), 1, date(2026, 1, 1))
    cover = Override(2, Tier.BACKUP, utc(2026, 5, 1), utc(2026, 5, 2))
    tick = timedelta(microseconds=1)

    def at(tier: Tier | str, instant: datetime) -> list[Shift]:
        return final_schedule(
            rotations=[backup], overrides=[cover], tier=tier, start=instant, end=instant + tick
        )

    assert at(PRIMARY, utc(2026, 5, 1)) == []
    [found] = at("backup", utc(2026, 5, 1, 5))
    assert (found.operator_id, found.tier, found.source) == (2, Tier.BACKUP, Source.OVERRIDE)


def test_an_instant_is_arithmetic_for_a_rotation_started_long_ago(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the chain asks: the holder at one instant costs a few steps, not one per shift
    since the rotation started."""
    rule = RotationRule(1, PRIMARY, (1, 2, 3), time(8), 1, date(2000, 1, 1))
    calls: list[int] = []
    boundary = RotationRule.boundary

    def counting(self: RotationRule, index: int, tz: ZoneInfo = ROME) -> datetime:
        calls.append(index)
        return boundary(self, index, tz)

    monkeypatch.setattr(RotationRule, "boundary", counting)
    instant = utc(2031, 7, 14, 12)
    [found] = final_schedule(
        rotations=[rule], tier=PRIMARY, start=instant, end=instant + timedelta(microseconds=1)
    )

    assert found.operator_id == (date(2031, 7, 14) - date(2000, 1, 1)).days % 3 + 1
    assert found.rule_id == 1
    assert len(calls) < 20


def test_preview_merges_like_the_month_view() -> None:
    solo = RotationRule(1, PRIMARY, (4,), time(8), 7, date(2026, 3, 2))
    start, end = utc(2026, 3, 1), utc(2026, 4, 1)

    preview = preview_rotation(solo, start, end)

    assert preview == final_schedule(rotations=[solo], tier=PRIMARY, start=start, end=end)
    assert [(s.operator_id, s.start, s.end) for s in preview] == [
        (4, local(date(2026, 3, 2), time(8)).astimezone(UTC), end)
    ]
    assert len(rotation_shifts(solo, start, end)) == 5  # the hand-overs are still there


def test_month_equals_its_local_days() -> None:
    rule = RotationRule(1, PRIMARY, (1, 2, 1), time(2, 30), 1, date(2026, 10, 1))
    cover = Override(9, PRIMARY, utc(2026, 10, 24, 20), utc(2026, 10, 26, 4), id=3)
    days = [local(date(2026, 10, 1) + timedelta(days=n)) for n in range(32)]

    def resolve(start: datetime, end: datetime) -> list[Shift]:
        return final_schedule(
            rotations=[rule], overrides=[cover], tier=PRIMARY, start=start, end=end
        )

    month = resolve(days[0], days[-1])
    pieces = [
        piece for day_start, day_end in pairwise(days) for piece in resolve(day_start, day_end)
    ]

    assert normalize(pieces) == month
    assert real(days[24], days[25]) == 25 * HOUR


def test_naive_datetimes_are_rejected() -> None:
    naive = datetime(2026, 5, 1, 8)  # noqa: DTZ001 - the point of the test
    aware = utc(2026, 5, 1)
    with pytest.raises(ValueError, match="aware"):
        final_schedule(tier=PRIMARY, start=naive, end=aware)
    with pytest.raises(ValueError, match="aware"):
        Shift(1, PRIMARY, aware, aware + HOUR, Source.SHIFT, 1).holds(naive)
    with pytest.raises(ValueError, match="aware"):
        Override(1, PRIMARY, naive, aware)
    with pytest.raises(ValueError, match="aware"):
        ExplicitShift(1, PRIMARY, aware, naive)
    with pytest.raises(ValueError, match="aware"):
        gaps([], aware, naive)
    with pytest.raises(ValueError, match="aware"):
        rotation_shifts(RotationRule(1, PRIMARY, (1,), time(8), 1, date(2026, 1, 1)), naive, aware)


@pytest.mark.parametrize(
    "make",
    [
        lambda: RotationRule(1, PRIMARY, (), time(8), 1, date(2026, 1, 1)),
        lambda: RotationRule(1, PRIMARY, (1,), time(8), 0, date(2026, 1, 1)),
        lambda: RotationRule(1, PRIMARY, (1,), time(8, tzinfo=UTC), 1, date(2026, 1, 1)),
        lambda: RotationRule(1, PRIMARY, (1,), time(8), 1, date(2026, 1, 2), date(2026, 1, 2)),
        lambda: RotationRule(1, "tertiary", (1,), time(8), 1, date(2026, 1, 1)),  # type: ignore[arg-type]
        lambda: Override(1, PRIMARY, utc(2026, 1, 2), utc(2026, 1, 1)),
        lambda: final_schedule(tier=PRIMARY, start=utc(2026, 1, 2), end=utc(2026, 1, 1)),
    ],
)
def test_invalid_input_is_rejected(make: object) -> None:
    assert callable(make)
    with pytest.raises(ValueError, match=r".+"):
        make()


def test_range_ordering_uses_real_instants_not_wall_clocks() -> None:
    # 02:45 first occurrence is before 02:15 second occurrence, though its wall clock is later.
    start = local(date(2026, 10, 25), time(2, 45), fold=0)
    end = local(date(2026, 10, 25), time(2, 15), fold=1)

    cover = Override(1, PRIMARY, start, end)

    assert cover.end - cover.start == timedelta(minutes=30)
    # PEP 495: a datetime in the repeated hour never equals one of another zone, hence UTC.
    schedule = final_schedule(overrides=[cover], tier=PRIMARY, start=start, end=end)
    assert [(s.start, s.end) for s in schedule] == [
        (utc(2026, 10, 25, 0, 45), utc(2026, 10, 25, 1, 15))
    ]
    assert final_schedule(tier=PRIMARY, start=start, end=start) == []
