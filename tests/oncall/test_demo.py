"""`ali demo`: a rota for every served province, one deliberate gap, safe to run twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.clock import ROME, FrozenClock
from oncall.chain import all_conflicts, all_gaps, on_call_chain, province_schedule
from oncall.models import Rotation
from oncall.schedule import gaps as gaps_of

EIGHT_WEEKS = timedelta(weeks=8)


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 11, 24, 10, 0, tzinfo=UTC),  # a Tuesday
        datetime(2026, 11, 23, 6, 0, tzinfo=UTC),  # Monday 07:00, before the hand-over
        datetime(2026, 11, 29, 22, 0, tzinfo=UTC),  # Sunday 23:00
        datetime(2026, 10, 24, 12, 0, tzinfo=UTC),  # the day before the clocks go back
    ],
)
def test_demo_gives_every_province_a_rota_with_exactly_one_gap(
    now: datetime,
    app: Flask,
    runner: FlaskCliRunner,
    db: Session,
    clock: FrozenClock,
) -> None:
    clock.set(now)
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    provinces = app.extensions["ali.settings"].provinces

    gaps = all_gaps(db, provinces=provinces, start=now, end=now + EIGHT_WEEKS)
    found = [(province, gap) for province, province_gaps in gaps.items() for gap in province_gaps]
    assert len(found) == 1
    province, (start, end) = found[0]
    assert province == provinces[0]
    assert end - start == timedelta(days=2)
    # Next week, Monday 09:00 to Wednesday 09:00 in Rome.
    local_start, local_end = start.astimezone(ROME), end.astimezone(ROME)
    assert (local_start.weekday(), local_start.hour) == (0, 9)
    assert (local_end.weekday(), local_end.hour) == (2, 9)
    assert 0 < (local_start.date() - now.astimezone(ROME).date()).days <= 7

    for sigla in provinces:
        chain = on_call_chain(db, province=sigla, at=now)
        assert chain.primary is not None
        assert chain.backup is not None
        assert chain.primary.id != chain.backup.id
        assert [c.email for c in chain.coordinators] == ["coordinatrice@ali.example"]
        backups = province_schedule(
            db, province=sigla, tier="backup", start=now, end=now + EIGHT_WEEKS
        )
        assert gaps_of(backups, now, now + EIGHT_WEEKS) == []
    # Nobody is primary and backup at once anywhere.
    clashes = all_conflicts(db, provinces=provinces, start=now, end=now + EIGHT_WEEKS)
    assert clashes == {sigla: [] for sigla in provinces}


def test_running_the_demo_again_adds_nothing(
    runner: FlaskCliRunner, db: Session, clock: FrozenClock
) -> None:
    assert runner.invoke(args=["demo"]).exit_code == 0
    count = db.scalar(select(func.count(Rotation.id)))
    # 7 primary + 1 replacing the first province's after the gap + 7 backup + 2 changing
    # the first province's backup on Wednesdays after the gap + coordinators
    assert count == 18
    clock.advance(timedelta(days=9))
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0, second.output
    assert "demo rotas already exist" in second.output
    assert db.scalar(select(func.count(Rotation.id))) == count
