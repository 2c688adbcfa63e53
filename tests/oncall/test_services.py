"""The rota from the database: rules resolved (oncall.chain), validated and audited changes."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import AuditEntry, User
from oncall import schedule as sched
from oncall.chain import (
    all_gaps,
    on_call_chain,
    province_schedule,
    rostered_users,
    upcoming_shifts,
)
from oncall.editing import (
    RotaError,
    add_override,
    add_shift,
    create_rotation,
    delete_override,
    delete_rotation,
    delete_shift,
    draft_rule,
    update_rotation,
)
from oncall.models import Override, RotaShift, Rotation
from oncall.rules import MAX_ASSIGNMENT
from oncall.schedule import ROME, Source, Tier
from tests.conftest import UserFactory
from tests.oncall.normal_form import normalize

SERVED = ("BG", "BS", "CR", "LO", "LC", "MN", "PV")
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ROME)


def daily(
    db: Session,
    users: list[User],
    *,
    province: str | None = "BS",
    tier: Tier = Tier.PRIMARY,
    start: date = date(2026, 11, 1),
    end: date | None = None,
    handover: time = time(8, 0),
    period_days: int = 1,
    actor: User | None = None,
) -> Rotation:
    return create_rotation(
        db,
        actor=actor,
        now=NOW,
        province=province,
        tier=tier,
        operator_ids=[u.id for u in users],
        handover=handover,
        period_days=period_days,
        start_date=start,
        end_date=end,
        served=SERVED,
    )


def audits(db: Session, object_type: str) -> list[AuditEntry]:
    return list(
        db.scalars(
            select(AuditEntry).where(AuditEntry.object_type == object_type).order_by(AuditEntry.id)
        )
    )


def test_rotation_resolves_from_the_database(db: Session, make_user: UserFactory) -> None:
    anna, bruno = make_user(), make_user()
    rotation = daily(db, [anna, bruno])
    found = province_schedule(
        db,
        province="BS",
        tier=Tier.PRIMARY,
        start=local(2026, 11, 2, 0, 0),
        end=local(2026, 11, 4, 0, 0),
    )
    assert [(s.operator_id, s.start, s.end) for s in found] == [
        (anna.id, local(2026, 11, 2, 0, 0), local(2026, 11, 2, 8, 0)),
        (bruno.id, local(2026, 11, 2, 8, 0), local(2026, 11, 3, 8, 0)),
        (anna.id, local(2026, 11, 3, 8, 0), local(2026, 11, 4, 0, 0)),
    ]
    assert {s.rule_id for s in found} == {rotation.id}
    assert rotation.operator_ids == (anna.id, bruno.id)
    # Other provinces and tiers see nothing of it.
    assert not province_schedule(
        db, province="BG", tier=Tier.PRIMARY, start=local(2026, 11, 2), end=local(2026, 11, 4)
    )
    assert not province_schedule(
        db, province="BS", tier=Tier.BACKUP, start=local(2026, 11, 2), end=local(2026, 11, 4)
    )


def test_override_and_explicit_shift_win(db: Session, make_user: UserFactory) -> None:
    anna, bruno, carla = make_user(), make_user(), make_user()
    daily(db, [anna])
    shift = add_shift(
        db,
        actor=None,
        now=NOW,
        province="BS",
        tier=Tier.PRIMARY,
        user_id=bruno.id,
        start=local(2026, 11, 10, 8),
        end=local(2026, 11, 11, 8),
        served=SERVED,
    )
    override = add_override(
        db,
        actor=None,
        now=NOW,
        province="BS",
        tier=Tier.PRIMARY,
        user_id=carla.id,
        start=local(2026, 11, 10, 20),
        end=local(2026, 11, 11, 2),
        reason="swap",
        served=SERVED,
    )
    found = province_schedule(
        db,
        province="BS",
        tier=Tier.PRIMARY,
        start=local(2026, 11, 10, 0),
        end=local(2026, 11, 12, 0),
    )
    assert [(s.operator_id, s.source, s.start.astimezone(ROME).hour) for s in found] == [
        (anna.id, Source.ROTATION, 0),
        (bruno.id, Source.SHIFT, 8),
        (carla.id, Source.OVERRIDE, 20),
        (bruno.id, Source.SHIFT, 2),
        (anna.id, Source.ROTATION, 8),
    ]
    assert on_call_chain(db, province="BS", at=local(2026, 11, 10, 23)).primary == carla
    delete_override(db, override, actor=None, now=NOW)
    assert on_call_chain(db, province="BS", at=local(2026, 11, 10, 23)).primary == bruno
    delete_shift(db, shift, actor=None, now=NOW)
    assert on_call_chain(db, province="BS", at=local(2026, 11, 10, 23)).primary == anna


def test_chain_has_primary_backup_and_the_coordinator_on_call(
    db: Session, make_user: UserFactory
) -> None:
    anna, bruno = make_user(), make_user()
    carla = make_user(roles=("coordinator",), provinces=())
    dario = make_user(roles=("coordinator",), provinces=())
    daily(db, [anna])
    daily(db, [bruno], tier=Tier.BACKUP)
    at = local(2026, 11, 20, 3)
    chain = on_call_chain(db, province="BS", at=at)
    assert (chain.primary, chain.backup) == (anna, bruno)
    # Nobody on the coordinator tier: every active coordinator is the last resort.
    assert chain.coordinators == [carla, dario]
    assert chain.at == at.astimezone(UTC)
    daily(db, [dario], province=None, tier=Tier.COORDINATOR)
    chain = on_call_chain(db, province="BS", at=at)
    assert chain.coordinators == [dario]
    coordinators = province_schedule(
        db, province=None, tier=Tier.COORDINATOR, start=at, end=at + timedelta(hours=1)
    )
    assert [s.operator_id for s in coordinators] == [dario.id]
    # Another province has a coordinator but no operators.
    other = on_call_chain(db, province="BG", at=at)
    assert (other.primary, other.backup, other.coordinators) == (None, None, [dario])


def test_deactivated_operator_leaves_a_gap(db: Session, make_user: UserFactory) -> None:
    anna, bruno = make_user(), make_user()
    daily(db, [anna, bruno])
    start, end = local(2026, 11, 2, 8), local(2026, 11, 4, 8)
    assert all_gaps(db, provinces=["BS"], start=start, end=end) == {"BS": []}
    bruno.active = False
    db.commit()
    assert all_gaps(db, provinces=["BS"], start=start, end=end) == {
        "BS": [(local(2026, 11, 2, 8).astimezone(UTC), local(2026, 11, 3, 8).astimezone(UTC))]
    }
    assert on_call_chain(db, province="BS", at=local(2026, 11, 2, 12)).primary is None


def test_gaps_per_province(db: Session, make_user: UserFactory) -> None:
    anna = make_user(provinces=("BS", "BG"))
    daily(db, [anna], start=date(2026, 11, 1), end=date(2026, 11, 10))
    daily(db, [anna], province="BG", start=date(2026, 11, 1))
    start, end = local(2026, 11, 5, 8), local(2026, 11, 15, 8)
    found = all_gaps(db, provinces=["BS", "BG", "CR"], start=start, end=end)
    assert found == {
        "BS": [(local(2026, 11, 10, 8).astimezone(UTC), end.astimezone(UTC))],
        "BG": [],
        "CR": [(start.astimezone(UTC), end.astimezone(UTC))],
    }
    assert all_gaps(db, provinces=["BS"], start=start, end=end) == {"BS": found["BS"]}


def test_preview_with_a_draft_rotation_fills_the_gap(db: Session, make_user: UserFactory) -> None:
    anna, bruno = make_user(), make_user()
    rotation = daily(db, [anna], end=date(2026, 11, 10))
    start, end = local(2026, 11, 9, 8), local(2026, 11, 12, 8)
    draft = draft_rule(
        tier=Tier.PRIMARY,
        operator_ids=[bruno.id],
        handover=time(8),
        period_days=7,
        start_date=date(2026, 11, 10),
    )
    preview = province_schedule(
        db, province="BS", tier=Tier.PRIMARY, start=start, end=end, with_rotation=draft
    )
    assert sched.gaps(preview, start, end) == []
    assert [s.operator_id for s in preview] == [anna.id, bruno.id]
    # Editing: the draft replaces the stored rotation with its id.
    edit = draft_rule(
        tier=Tier.PRIMARY,
        operator_ids=[bruno.id],
        handover=time(8),
        period_days=1,
        start_date=date(2026, 11, 1),
        rotation_id=rotation.id,
    )
    edited = province_schedule(
        db, province="BS", tier=Tier.PRIMARY, start=start, end=end, with_rotation=edit
    )
    assert {s.operator_id for s in edited} == {bruno.id}
    with pytest.raises(RotaError):
        draft_rule(
            tier=Tier.PRIMARY,
            operator_ids=[],
            handover=time(8),
            period_days=1,
            start_date=date(2026, 11, 1),
        )


def test_upcoming_shifts_of_an_operator(db: Session, make_user: UserFactory) -> None:
    anna = make_user(provinces=("BS", "BG"))
    bruno = make_user(provinces=("BS", "BG"))
    daily(db, [anna, bruno])
    daily(db, [bruno], province="BG", tier=Tier.BACKUP, period_days=7)
    add_override(
        db,
        actor=None,
        now=NOW,
        province="BS",
        tier=Tier.PRIMARY,
        user_id=bruno.id,
        start=local(2026, 11, 3, 20),
        end=local(2026, 11, 4, 8),
        served=SERVED,
    )
    start, end = local(2026, 11, 3, 8), local(2026, 11, 7, 8)
    mine = upcoming_shifts(db, user_id=anna.id, start=start, end=end)
    assert [(p, s.start, s.end) for p, s in mine] == [
        ("BS", local(2026, 11, 3, 8).astimezone(UTC), local(2026, 11, 3, 20).astimezone(UTC)),
        ("BS", local(2026, 11, 5, 8).astimezone(UTC), local(2026, 11, 6, 8).astimezone(UTC)),
    ]
    bruno_shifts = upcoming_shifts(db, user_id=bruno.id, start=start, end=end)
    assert {(p, s.tier) for p, s in bruno_shifts} == {("BS", Tier.PRIMARY), ("BG", Tier.BACKUP)}
    assert upcoming_shifts(db, user_id=make_user().id, start=start, end=end) == []


def test_rostered_users_lists_every_tier(db: Session, make_user: UserFactory) -> None:
    anna, bruno = make_user(), make_user(provinces=("BG",))
    carla = make_user(roles=("coordinator",), provinces=())
    daily(db, [anna])
    daily(db, [bruno], province="BG", tier=Tier.BACKUP)
    daily(db, [carla], province=None, tier=Tier.COORDINATOR)
    start, end = local(2026, 11, 2, 8), local(2026, 11, 3, 8)
    everyone = rostered_users(db, provinces=["BS", "BG"], start=start, end=end)
    assert {(u.id, p, s.tier) for u, p, s in everyone} == {
        (anna.id, "BS", Tier.PRIMARY),
        (bruno.id, "BG", Tier.BACKUP),
        (carla.id, None, Tier.COORDINATOR),
    }
    only_bs = rostered_users(db, provinces=["BS"], start=start, end=end)
    assert {(u.id, p) for u, p, _ in only_bs} == {(anna.id, "BS"), (carla.id, None)}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"period_days": 3}, r"every day \(1\) or every week \(7\)"),
        ({"end_date": date(2026, 10, 1)}, "end date must be after"),
        ({"province": "MI"}, "not a province served"),
        ({"province": None}, "Choose a province"),
        ({"tier": "boss"}, "Unknown tier"),
        ({"operator_ids": []}, "at least one operator"),
        ({"handover": time(8, tzinfo=UTC)}, "wall-clock time"),
    ],
)
def test_rotation_validation(
    db: Session, make_user: UserFactory, change: dict[str, object], message: str
) -> None:
    anna = make_user()
    arguments: dict[str, object] = {
        "province": "BS",
        "tier": Tier.PRIMARY,
        "operator_ids": [anna.id],
        "handover": time(8),
        "period_days": 1,
        "start_date": date(2026, 11, 1),
        "end_date": None,
    }
    arguments.update(change)
    with pytest.raises(RotaError, match=message):
        create_rotation(db, actor=None, now=NOW, served=SERVED, **arguments)  # type: ignore[arg-type]
    assert db.scalar(select(Rotation)) is None


def test_operators_must_be_active_operators_of_the_province(
    db: Session, make_user: UserFactory
) -> None:
    elsewhere = make_user(provinces=("BG",))
    manager = make_user(roles=("rota_manager",))
    gone = make_user()
    gone.active = False
    db.commit()
    coordinator = make_user(roles=("coordinator",), provinces=())
    for user, message in [
        (elsewhere, "does not cover the province BS"),
        (manager, "does not have the operator role"),
        (gone, "is not active"),
    ]:
        with pytest.raises(RotaError, match=message) as info:
            daily(db, [user])
        assert info.value.field == "operator_ids"
    with pytest.raises(RotaError, match="no user with id"):
        add_override(
            db,
            actor=None,
            now=NOW,
            province="BS",
            tier=Tier.PRIMARY,
            user_id=999_999,
            start=NOW,
            end=NOW + timedelta(hours=1),
            served=SERVED,
        )
    # The coordinator tier takes coordinators and no province.
    daily(db, [coordinator], province=None, tier=Tier.COORDINATOR)
    with pytest.raises(RotaError, match="does not have the coordinator role"):
        daily(db, [make_user()], province=None, tier=Tier.COORDINATOR)
    with pytest.raises(RotaError, match="project-wide"):
        daily(db, [coordinator], province="BS", tier=Tier.COORDINATOR)


def test_intervals_must_be_aware_ordered_and_bounded(db: Session, make_user: UserFactory) -> None:
    anna = make_user()

    def override(start: datetime, end: datetime) -> Override:
        return add_override(
            db,
            actor=None,
            now=NOW,
            province="BS",
            tier=Tier.PRIMARY,
            user_id=anna.id,
            start=start,
            end=end,
            served=SERVED,
        )

    with pytest.raises(RotaError, match="after the start"):
        override(NOW, NOW)
    with pytest.raises(RotaError, match="a zone"):
        override(NOW.replace(tzinfo=None), NOW + timedelta(hours=1))
    with pytest.raises(RotaError, match="at most 92 days"):
        override(NOW, NOW + MAX_ASSIGNMENT + timedelta(minutes=1))
    override(NOW, NOW + MAX_ASSIGNMENT)


def test_served_provinces_come_from_the_app_settings(app: Flask, make_user: UserFactory) -> None:
    anna = make_user(provinces=("BS", "MI"))
    from core.db import get_session  # noqa: PLC0415 -- only this test needs the app's session

    with app.app_context():
        session = get_session()
        with pytest.raises(RotaError, match="MI is not a province served"):
            create_rotation(
                session,
                actor=None,
                now=NOW,
                province="MI",
                tier=Tier.PRIMARY,
                operator_ids=[anna.id],
                handover=time(8),
                period_days=1,
                start_date=date(2026, 11, 1),
            )
        session.rollback()


def test_rotation_changes_are_audited_with_before_and_after(
    db: Session, make_user: UserFactory
) -> None:
    manager = make_user(roles=("rota_manager",))
    anna, bruno = make_user(phone="+393331112222"), make_user()
    rotation = daily(db, [anna], actor=manager)
    update_rotation(
        db,
        rotation,
        actor=manager,
        now=NOW,
        served=SERVED,
        operator_ids=[bruno.id, anna.id],
        handover=time(9, 30),
    )
    assert rotation.operator_ids == (bruno.id, anna.id)
    # Members shrink and grow in place; the database agrees with the object.
    update_rotation(db, rotation, actor=manager, now=NOW, served=SERVED, operator_ids=[bruno.id])
    update_rotation(
        db,
        rotation,
        actor=manager,
        now=NOW,
        served=SERVED,
        operator_ids=[bruno.id, anna.id],
    )
    db.expire_all()
    assert db.get(Rotation, rotation.id).operator_ids == (bruno.id, anna.id)  # type: ignore[union-attr]
    # An update that changes nothing leaves no entry.
    update_rotation(db, rotation, actor=manager, now=NOW, served=SERVED, name="")
    rotation_id = rotation.id
    delete_rotation(db, rotation, actor=manager, now=NOW)
    created, updated, _, _, deleted = audits(db, "rotation")
    assert (created.action, updated.action, deleted.action) == ("create", "update", "delete")
    assert {e.actor_id for e in (created, updated, deleted)} == {manager.id}
    assert {e.object_id for e in (created, updated, deleted)} == {str(rotation_id)}
    assert created.detail["before"] is None
    assert created.detail["after"]["operator_ids"] == [anna.id]
    assert updated.detail["before"]["handover"] == "08:00"
    assert updated.detail["after"]["handover"] == "09:30"
    assert updated.detail["after"]["operator_ids"] == [bruno.id, anna.id]
    assert updated.fields == ["handover", "operator_ids"]
    assert deleted.detail == {"before": updated.detail["after"], "after": None}
    assert db.get(Rotation, rotation_id) is None
    for entry in (created, updated, deleted):
        assert "3331112222" not in repr(entry.detail)
    with pytest.raises(TypeError, match="colour"):
        update_rotation(db, daily(db, [anna]), actor=None, now=NOW, colour="red")


def test_override_and_shift_changes_are_audited(db: Session, make_user: UserFactory) -> None:
    anna = make_user()
    start, end = local(2026, 12, 24, 20), local(2026, 12, 25, 8)
    override = add_override(
        db,
        actor=anna,
        now=NOW,
        province="BS",
        tier=Tier.PRIMARY,
        user_id=anna.id,
        start=start,
        end=end,
        reason="covering for a sick colleague",
        served=SERVED,
    )
    shift = add_shift(
        db,
        actor="cli",
        now=NOW,
        province="BS",
        tier=Tier.BACKUP,
        user_id=anna.id,
        start=start,
        end=end,
        served=SERVED,
    )
    delete_override(db, override, actor=anna, now=NOW)
    created, deleted = audits(db, "override")
    assert created.detail["after"] == {
        "province": "BS",
        "tier": "primary",
        "user_id": anna.id,
        "start": "2026-12-24T19:00:00+00:00",
        "end": "2026-12-25T07:00:00+00:00",
    }
    assert created.fields == ["reason"]
    assert "sick" not in repr(created.detail)
    assert deleted.detail == {"before": created.detail["after"], "after": None}
    (shift_entry,) = audits(db, "shift")
    assert (shift_entry.actor, shift_entry.object_id) == ("cli", str(shift.id))
    assert db.scalar(select(RotaShift.user_id)) == anna.id


def test_a_month_is_its_days(db: Session, make_user: UserFactory) -> None:
    """The indexed loading never misses a rule: a month resolved at once equals its days
    resolved one by one, with long and short shifts and overrides in the way."""
    rng = random.Random(4)
    users = [make_user() for _ in range(4)]
    daily(db, users[:3], start=date(2026, 9, 20), end=date(2026, 10, 19))
    daily(db, users[1:], start=date(2026, 10, 12), handover=time(2, 30), period_days=7)
    for _ in range(25):
        start = local(2026, 10, 1) + timedelta(hours=rng.randrange(0, 24 * 40))
        length = timedelta(hours=rng.choice([1, 5, 12, 25, 24 * 9, 24 * 60]))
        maker = add_override if rng.random() < 0.5 else add_shift
        maker(
            db,
            actor=None,
            now=NOW,
            province="BS",
            tier=Tier.PRIMARY,
            user_id=rng.choice(users).id,
            start=start,
            end=start + length,
            served=SERVED,
        )
    start, end = local(2026, 10, 1), local(2026, 11, 1)
    month = province_schedule(db, province="BS", tier=Tier.PRIMARY, start=start, end=end)
    days: list[sched.Shift] = []
    day = start
    while day < end:
        following = (day + timedelta(days=1, hours=2)).replace(hour=0)
        days += province_schedule(db, province="BS", tier=Tier.PRIMARY, start=day, end=following)
        day = following
    assert normalize(days) == month
    for _ in range(40):
        at = start + timedelta(minutes=rng.randrange(0, 31 * 24 * 60))
        holder = next((s.operator_id for s in month if s.holds(at)), None)
        chain = on_call_chain(db, province="BS", at=at)
        assert (chain.primary.id if chain.primary else None) == holder
