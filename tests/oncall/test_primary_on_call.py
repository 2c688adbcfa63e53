"""`primary_on_call` (the intake's one-query lookup) agrees with `on_call_chain(...).primary`."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy.orm import Session

from core.models import Role, User
from oncall.models import Override, RotaShift, Rotation, RotationMember
from oncall.schedule import ROME, Tier
from oncall.services import on_call_chain, primary_on_call
from tests.conftest import UserFactory

PROVINCES = ("BS", "BG")
TIERS = (Tier.PRIMARY, Tier.BACKUP)
# Around the autumn DST change in Rome (2026-10-25) and well into November.
FIRST = datetime(2026, 10, 15, tzinfo=UTC)
SPAN = timedelta(days=45)


def _instant(rng: random.Random) -> datetime:
    return FIRST + timedelta(seconds=rng.randrange(int(SPAN.total_seconds())))


def _random_rota(db: Session, rng: random.Random, users: list[User]) -> list[datetime]:
    """Rotations, explicit shifts and overrides of random shape in two provinces and two
    tiers (and the coordinator tier); returns their edges, where off-by-one bugs live."""
    # One rotation that surely holds BS primary, so most instants have somebody.
    db.add(
        Rotation(
            province="BS",
            tier=Tier.PRIMARY.value,
            handover=time(8, 0),
            period_days=1,
            start_date=date(2026, 10, 1),
            members=[RotationMember(position=i, user_id=u.id) for i, u in enumerate(users[1:])],
        )
    )
    edges: list[datetime] = []
    for _ in range(rng.randint(0, 4)):
        tier = rng.choice((Tier.PRIMARY, Tier.PRIMARY, Tier.BACKUP, Tier.COORDINATOR))
        start = (FIRST - timedelta(days=rng.randint(0, 20))).astimezone(ROME).date()
        end = start + timedelta(days=rng.randint(1, 60)) if rng.random() < 0.5 else None
        handover = time(rng.choice((0, 2, 3, 8, 20)), rng.choice((0, 30)))
        rotation = Rotation(
            province=None if tier is Tier.COORDINATOR else rng.choice(PROVINCES),
            tier=tier.value,
            handover=handover,
            period_days=rng.choice((1, 7)),
            start_date=start,
            end_date=end,
            priority=rng.randint(0, 2),
            members=[
                RotationMember(position=i, user_id=user.id)
                for i, user in enumerate(rng.sample(users, rng.randint(1, len(users))))
            ],
        )
        db.add(rotation)
        edges.append(datetime.combine(start, handover, tzinfo=ROME))
        if end is not None:
            edges.append(datetime.combine(end, handover, tzinfo=ROME))
    for model in (RotaShift, Override):
        for _ in range(rng.randint(0, 4)):
            tier = rng.choice(TIERS)
            start_at = _instant(rng).replace(second=0)
            end_at = start_at + timedelta(hours=rng.randint(1, 24 * 10))
            db.add(
                model(
                    province=rng.choice(PROVINCES),
                    tier=tier.value,
                    user_id=rng.choice(users).id,
                    start_at=start_at,
                    end_at=end_at,
                )
            )
            edges += [start_at, end_at]
    db.flush()
    db.expire_all()
    return edges


@pytest.mark.parametrize("seed", range(12))
def test_primary_on_call_agrees_with_the_chain(
    db: Session, make_user: UserFactory, seed: int
) -> None:
    rng = random.Random(seed)
    users = [
        make_user(roles=(Role.OPERATOR,), provinces=PROVINCES, email=f"op{i}@example.org")
        for i in range(4)
    ]
    if rng.random() < 0.5:
        users[0].active = False  # an inactive holder is nobody, in both
        db.flush()
    edges = _random_rota(db, rng, users)
    tick = timedelta(microseconds=1)
    instants = [_instant(rng) for _ in range(25)]
    instants += [e + d for e in edges for d in (-tick, timedelta(0), tick)]
    somebody = 0
    for at in instants:
        for province in PROVINCES:
            expected = on_call_chain(db, province=province, at=at).primary
            assert primary_on_call(db, province=province, at=at) == expected, (province, at)
            somebody += expected is not None
    assert somebody > len(instants) // 2  # the comparison is not all None == None


def test_a_rota_change_is_seen_at_once(db: Session, make_user: UserFactory) -> None:
    anna = make_user(roles=(Role.OPERATOR,), provinces=("BS",), email="anna@example.org")
    at = datetime(2026, 11, 24, 10, tzinfo=UTC)
    assert primary_on_call(db, province="BS", at=at) is None
    db.add(
        RotaShift(
            province="BS",
            tier=Tier.PRIMARY.value,
            user_id=anna.id,
            start_at=at - timedelta(hours=1),
            end_at=at + timedelta(hours=1),
        )
    )
    db.flush()
    assert primary_on_call(db, province="BS", at=at) == anna
    assert primary_on_call(db, province="BG", at=at) is None
    assert primary_on_call(db, province="BS", at=at + timedelta(hours=1)) is None
    assert on_call_chain(db, province="BS", at=at).primary == anna
