"""Daylight-saving changes of 2026 and 2027 through the database and the services.

Rules stored in rows, read back (the hand-over as a TIME column, instants as UTC columns) and
resolved must give shifts of their real length across the change: no gap, no overlap.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise

import pytest
from sqlalchemy.orm import Session

from core.models import User
from oncall.chain import all_gaps, on_call_chain, province_schedule
from oncall.editing import add_override, add_shift, create_rotation
from oncall.schedule import ROME, Source, Tier
from tests.conftest import UserFactory

SERVED = ("BS",)
NOW = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

# (the Sunday of the change, how much longer than usual that local day is)
CHANGES = [
    pytest.param(date(2026, 3, 29), -HOUR, id="2026-spring"),
    pytest.param(date(2026, 10, 25), HOUR, id="2026-autumn"),
    pytest.param(date(2027, 3, 28), -HOUR, id="2027-spring"),
    pytest.param(date(2027, 10, 31), HOUR, id="2027-autumn"),
]


def local(day: date, hour: int, minute: int = 0, fold: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ROME, fold=fold)


def utc(at: datetime) -> datetime:
    return at.astimezone(UTC)


def rotation(
    db: Session,
    users: list[User],
    *,
    handover: time,
    period_days: int,
    start: date,
    tier: Tier = Tier.PRIMARY,
) -> None:
    create_rotation(
        db,
        actor=None,
        now=NOW,
        province="BS",
        tier=tier,
        operator_ids=[u.id for u in users],
        handover=handover,
        period_days=period_days,
        start_date=start,
        served=SERVED,
    )


def resolve(db: Session, start: datetime, end: datetime) -> list[tuple[int, datetime, datetime]]:
    found = province_schedule(db, province="BS", tier=Tier.PRIMARY, start=start, end=end)
    return [(s.operator_id, s.start, s.end) for s in found]


def assert_seamless(db: Session, start: datetime, end: datetime) -> None:
    found = province_schedule(db, province="BS", tier=Tier.PRIMARY, start=start, end=end)
    assert found[0].start == utc(start)
    assert found[-1].end == utc(end)
    for before, after in pairwise(found):
        assert before.end == after.start
    assert all_gaps(db, provinces=["BS"], start=start, end=end) == {"BS": []}


@pytest.mark.parametrize(("change", "longer"), CHANGES)
def test_daily_rotation_shift_over_the_change_has_its_real_length(
    db: Session, make_user: UserFactory, change: date, longer: timedelta
) -> None:
    anna, bruno = make_user(), make_user()
    rotation(db, [anna, bruno], handover=time(8), period_days=1, start=change - 10 * DAY)
    start, end = local(change - 2 * DAY, 8), local(change + 2 * DAY, 8)
    found = resolve(db, start, end)
    # Day -2: anna, day -1: bruno (over the night of the change), day 0: anna, day +1: bruno
    assert [operator for operator, _, _ in found] == [anna.id, bruno.id, anna.id, bruno.id]
    assert [s_end - s_start for _, s_start, s_end in found] == [DAY, DAY + longer, DAY, DAY]
    assert found[1][1:] == (utc(local(change - DAY, 8)), utc(local(change, 8)))
    assert_seamless(db, start, end)
    # Whoever holds the night holds every minute of it, the changing hour included.
    at = utc(local(change, 0))
    while at < utc(local(change, 8)):
        assert on_call_chain(db, province="BS", at=at).primary == bruno
        at += timedelta(minutes=15)
    assert on_call_chain(db, province="BS", at=at).primary == anna


@pytest.mark.parametrize(("change", "longer"), CHANGES)
def test_hand_over_inside_the_changing_hour(
    db: Session, make_user: UserFactory, change: date, longer: timedelta
) -> None:
    """02:30 does not exist in spring (the hand-over is at 03:30 CEST) and happens twice in
    autumn (the hand-over is at the first one); the shifts around it still meet exactly."""
    anna, bruno, carla = make_user(), make_user(), make_user()
    rotation(db, [anna, bruno, carla], handover=time(2, 30), period_days=1, start=change - DAY)
    start, end = local(change - DAY, 2, 30), local(change + 2 * DAY, 2, 30)
    found = resolve(db, start, end)
    handover = utc(local(change, 2, 30))
    if longer < timedelta():
        assert handover == datetime(change.year, change.month, change.day, 1, 30, tzinfo=UTC)
        lengths = [DAY, DAY - HOUR, DAY]
    else:
        assert handover == datetime(change.year, change.month, change.day, 0, 30, tzinfo=UTC)
        lengths = [DAY, DAY + HOUR, DAY]
    assert [(op, s_start) for op, s_start, _ in found][:2] == [
        (anna.id, utc(start)),
        (bruno.id, handover),
    ]
    assert [s_end - s_start for _, s_start, s_end in found] == lengths
    assert_seamless(db, start, end)
    assert on_call_chain(db, province="BS", at=handover - timedelta(microseconds=1)).primary == anna
    assert on_call_chain(db, province="BS", at=handover).primary == bruno


@pytest.mark.parametrize(("change", "longer"), CHANGES)
def test_weekly_rotation_week_over_the_change(
    db: Session, make_user: UserFactory, change: date, longer: timedelta
) -> None:
    anna, bruno = make_user(), make_user()
    monday = change - 6 * DAY  # the week of the change: Monday to Monday
    rotation(db, [anna, bruno], handover=time(9), period_days=7, start=monday - 7 * DAY)
    start, end = local(monday - 7 * DAY, 9), local(monday + 14 * DAY, 9)
    found = resolve(db, start, end)
    assert [op for op, _, _ in found] == [anna.id, bruno.id, anna.id]
    assert [s_end - s_start for _, s_start, s_end in found] == [
        7 * DAY,
        7 * DAY + longer,
        7 * DAY,
    ]
    assert_seamless(db, start, end)
    assert on_call_chain(db, province="BS", at=local(change, 2, 30)).primary == bruno


@pytest.mark.parametrize(("change", "longer"), CHANGES)
def test_override_straddling_the_change(
    db: Session, make_user: UserFactory, change: date, longer: timedelta
) -> None:
    anna, bruno = make_user(), make_user()
    rotation(db, [anna], handover=time(8), period_days=1, start=change - 10 * DAY)
    # Saturday 22:00 to Sunday 06:00, local: 8 hours on the clock, 7 or 9 in reality.
    cover_start, cover_end = local(change - DAY, 22), local(change, 6)
    add_override(
        db,
        actor=None,
        now=NOW,
        province="BS",
        tier=Tier.PRIMARY,
        user_id=bruno.id,
        start=cover_start,
        end=cover_end,
        served=SERVED,
    )
    start, end = local(change - DAY, 8), local(change, 8)
    found = province_schedule(db, province="BS", tier=Tier.PRIMARY, start=start, end=end)
    assert [(s.operator_id, s.source) for s in found] == [
        (anna.id, Source.ROTATION),
        (bruno.id, Source.OVERRIDE),
        (anna.id, Source.ROTATION),
    ]
    assert found[1].duration == 8 * HOUR + longer
    assert (found[1].start, found[1].end) == (utc(cover_start), utc(cover_end))
    assert sum((s.duration for s in found), timedelta()) == DAY + longer
    assert_seamless(db, start, end)
    for at, expected in [
        (utc(cover_start) - timedelta(microseconds=1), anna),
        (utc(cover_start), bruno),
        (utc(local(change, 1, 59)), bruno),
        (utc(local(change, 3, 0)), bruno),
        (utc(cover_end) - timedelta(microseconds=1), bruno),
        (utc(cover_end), anna),
    ]:
        assert on_call_chain(db, province="BS", at=at).primary == expected, at


@pytest.mark.parametrize(("change", "longer"), CHANGES)
def test_explicit_midnight_shifts_cover_the_short_and_the_long_day(
    db: Session, make_user: UserFactory, change: date, longer: timedelta
) -> None:
    anna, bruno, carla = make_user(), make_user(), make_user()
    for offset, user in zip((-1, 0, 1), (anna, bruno, carla), strict=True):
        day = change + offset * DAY
        add_shift(
            db,
            actor=None,
            now=NOW,
            province="BS",
            tier=Tier.PRIMARY,
            user_id=user.id,
            start=local(day, 0),
            end=local(day + DAY, 0),
            served=SERVED,
        )
    start, end = local(change - DAY, 0), local(change + 2 * DAY, 0)
    found = resolve(db, start, end)
    assert [(op, s_end - s_start) for op, s_start, s_end in found] == [
        (anna.id, DAY),
        (bruno.id, DAY + longer),
        (carla.id, DAY),
    ]
    assert_seamless(db, start, end)


def test_autumn_repeated_hour_has_two_holders_when_the_hand_over_is_between_them(
    db: Session, make_user: UserFactory
) -> None:
    """Hand-over at 02:45 on 2026-10-25 happens at its first occurrence (00:45Z), between
    the first 02:30 (00:30Z, still Saturday's operator) and the second (01:30Z)."""
    anna, bruno = make_user(), make_user()
    rotation(db, [anna, bruno], handover=time(2, 45), period_days=1, start=date(2026, 10, 24))
    change = date(2026, 10, 25)
    first, second = local(change, 2, 30, fold=0), local(change, 2, 30, fold=1)
    assert utc(second) - utc(first) == HOUR
    assert on_call_chain(db, province="BS", at=first).primary == anna
    assert on_call_chain(db, province="BS", at=second).primary == bruno
    assert_seamless(db, local(change, 0), local(change + DAY, 0))
