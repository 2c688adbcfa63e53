"""`on_call_chain`, the one lookup of who is on call, agrees with the resolver.

The chain reads only the rules around an instant (bounded, indexed SQL); the expected holder
here comes from `final_schedule` over every rule in the tables, read without bounds.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from core.models import Role, User
from oncall import schedule as sched
from oncall.chain import on_call_chain
from oncall.models import Override, RotaShift, Rotation, RotationMember
from oncall.schedule import ROME, Shift, Tier
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


def _resolved(db: Session, province: str | None, tier: Tier) -> list[Shift]:
    """The final schedule of a scope over the whole test span, from every row of the tables
    (no date bounds), without the segments of inactive operators."""
    scope = Rotation.province.is_(None) if province is None else Rotation.province == province
    rotations = [
        sched.RotationRule(
            id=row.id,
            tier=Tier(row.tier),
            operator_ids=row.operator_ids,
            handover=row.handover,
            period_days=row.period_days,
            start=row.start_date,
            end=row.end_date,
            priority=row.priority,
        )
        for row in db.scalars(select(Rotation).where(scope, Rotation.tier == tier.value))
    ]
    assignments: dict[type[RotaShift] | type[Override], list[tuple[int, datetime, datetime, int]]]
    assignments = {}
    for model in (RotaShift, Override):
        where = model.province.is_(None) if province is None else model.province == province
        assignments[model] = [
            (row.user_id, row.start_at, row.end_at, row.id)
            for row in db.scalars(select(model).where(where, model.tier == tier.value))
        ]
    schedule = sched.final_schedule(
        rotations=rotations,
        shifts=[sched.ExplicitShift(u, tier, s, e, id=i) for u, s, e, i in assignments[RotaShift]],
        overrides=[sched.Override(u, tier, s, e, id=i) for u, s, e, i in assignments[Override]],
        tier=tier,
        start=FIRST - timedelta(days=30),
        end=FIRST + SPAN + timedelta(days=62),
    )
    active = {user.id for user in db.scalars(select(User).where(User.active.is_(True)))}
    return [segment for segment in schedule if segment.operator_id in active]


def _holder(schedule: list[Shift], at: datetime) -> int | None:
    return next((s.operator_id for s in schedule if s.holds(at)), None)


def _id(user: User | None) -> int | None:
    return None if user is None else user.id


@pytest.mark.parametrize("seed", range(12))
def test_the_chain_is_the_final_schedule_at_that_instant(
    db: Session, make_user: UserFactory, seed: int
) -> None:
    rng = random.Random(seed)
    users = [
        make_user(roles=(Role.OPERATOR,), provinces=PROVINCES, email=f"op{i}@example.org")
        for i in range(4)
    ]
    everyone_else = make_user(roles=(Role.COORDINATOR,), provinces=(), email="co@example.org")
    if rng.random() < 0.5:
        users[0].active = False  # an inactive holder is nobody: a gap, not the next rule
        db.flush()
    edges = _random_rota(db, rng, users)
    schedules = {
        (province, tier): _resolved(db, province, tier) for province in PROVINCES for tier in TIERS
    }
    coordinators = _resolved(db, None, Tier.COORDINATOR)
    tick = timedelta(microseconds=1)
    instants = [_instant(rng) for _ in range(25)]
    instants += [e + d for e in edges for d in (-tick, timedelta(0), tick)]
    somebody = 0
    for at in instants:
        for province in PROVINCES:
            chain = on_call_chain(db, province=province, at=at)
            expected = _holder(schedules[(province, Tier.PRIMARY)], at)
            assert _id(chain.primary) == expected, (province, at)
            assert _id(chain.backup) == _holder(schedules[(province, Tier.BACKUP)], at)
            coordinator = _holder(coordinators, at)
            assert [u.id for u in chain.coordinators] == (
                [everyone_else.id] if coordinator is None else [coordinator]
            )
            somebody += expected is not None
    assert somebody > len(instants) // 2  # the comparison is not all None == None


def test_a_rota_change_is_seen_at_once(db: Session, make_user: UserFactory) -> None:
    anna = make_user(roles=(Role.OPERATOR,), provinces=("BS",), email="anna@example.org")
    at = datetime(2026, 11, 24, 10, tzinfo=UTC)
    assert on_call_chain(db, province="BS", at=at).primary is None
    db.add(
        RotaShift(
            province="BS",
            tier=Tier.PRIMARY.value,
            user_id=anna.id,
            start_at=at - timedelta(hours=1),
            end_at=at + timedelta(hours=1),
        )
    )
    db.flush()  # not committed: the chain reads what this session has pending
    assert on_call_chain(db, province="BS", at=at).primary == anna
    assert on_call_chain(db, province="BG", at=at).primary is None
    assert on_call_chain(db, province="BS", at=at + timedelta(hours=1)).primary is None


def test_the_chain_costs_two_queries(db: Session, make_user: UserFactory) -> None:
    """The router asks at every escalation step: the rules of the three tiers in one query,
    their holders in a second."""
    anna = make_user(roles=(Role.OPERATOR,), provinces=("BS",), email="anna@example.org")
    carla = make_user(roles=(Role.COORDINATOR,), provinces=(), email="carla@example.org")
    at = datetime(2026, 11, 24, 10, tzinfo=UTC)
    for province, tier, user in (("BS", Tier.PRIMARY, anna), (None, Tier.COORDINATOR, carla)):
        db.add(
            Override(
                province=province,
                tier=tier.value,
                user_id=user.id,
                start_at=at - timedelta(hours=1),
                end_at=at + timedelta(hours=1),
            )
        )
    db.commit()
    db.expire_all()
    statements: list[str] = []
    engine = db.get_bind()

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        chain = on_call_chain(db, province="BS", at=at)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert (_id(chain.primary), chain.backup, [u.id for u in chain.coordinators]) == (
        anna.id,
        None,
        [carla.id],
    )
    assert len(statements) == 2, statements
