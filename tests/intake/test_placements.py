"""The pronta accoglienza log: beds derived from it, overrides flagged, the log append-only in
the database, and the last bed taken from two sessions at once — on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import Engine, delete, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from core.models import User
from intake.models import (
    ExitReason,
    Placement,
    PlacementEntry,
    PlacementReason,
)
from intake.placements import (
    PlacementRefused,
    check_in,
    check_out,
    confirm_placement,
    correct_entry,
    placement_state,
    placements_of_case,
    record_no_show,
    request_placement,
)
from intake.retention import pseudonymise_cases
from intake.shelters import free_beds_by_kind, shelter_beds
from routing.models import Case, CaseEvent
from tests.conftest import UserFactory
from tests.intake.cases import new_case
from tests.intake.shelters import new_shelter


@pytest.fixture
def operator(app: Flask, make_user: UserFactory) -> User:
    """An operator of BS (the app configures the encryption keys)."""
    return make_user(provinces=("BS",), name="Operatrice")


def _free(db: Session, shelter_id: int) -> int:
    from intake.models import Shelter  # noqa: PLC0415 -- local to the helper

    shelter = db.get(Shelter, shelter_id)
    assert shelter is not None
    db.refresh(shelter)
    return shelter_beds(db, [shelter])[0].free


def test_beds_are_taken_by_confirmed_and_checked_in_placements_until_check_out(
    db: Session, operator: User, clock: FrozenClock
) -> None:
    now = clock.now()
    shelter = new_shelter(db, now=now, capacity=3)
    case = new_case(db, now=now, by=operator, province="BS")
    placement = request_placement(db, case, shelter, beds=2, actor=operator, now=now)
    db.commit()
    assert _free(db, shelter.id) == 3  # a request takes no bed
    confirm_placement(db, placement, actor=operator, now=now)
    db.commit()
    assert _free(db, shelter.id) == 1
    assert free_beds_by_kind(db, "BS") == {
        "pronta_accoglienza": 1,
        "residential": 0,
        "semi_autonomy": 0,
    }
    check_in(db, placement, at=now - timedelta(hours=1), actor=operator, now=now)
    db.commit()
    assert _free(db, shelter.id) == 1
    with pytest.raises(PlacementRefused) as future:
        check_out(
            db,
            placement,
            at=now + timedelta(minutes=5),
            exit_reason=ExitReason.MOVED_RESIDENTIAL,
            actor=operator,
            now=now,
        )
    assert future.value.code == "future"
    db.rollback()
    check_out(
        db, placement, at=now, exit_reason=ExitReason.MOVED_RESIDENTIAL, actor=operator, now=now
    )
    db.commit()
    assert _free(db, shelter.id) == 3
    state = placements_of_case(db, case)[0]
    assert (state.status.value, state.beds, state.exit_reason) == (
        "checked_out",
        2,
        ExitReason.MOVED_RESIDENTIAL,
    )
    kinds = db.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == case.id)).all()
    assert kinds.count("placement") == 4


def test_check_in_in_the_future_is_refused(db: Session, operator: User, clock: FrozenClock) -> None:
    now = clock.now()
    shelter = new_shelter(db, now=now)
    case = new_case(db, now=now, by=operator, province="BS")
    placement = request_placement(db, case, shelter, beds=1, actor=operator, now=now)
    with pytest.raises(PlacementRefused) as refused:
        check_in(db, placement, at=now + timedelta(minutes=1), actor=operator, now=now)
    assert refused.value.code == "future"


def test_a_full_shelter_needs_an_override_with_a_reason_flagged_in_the_log(
    db: Session, operator: User, clock: FrozenClock
) -> None:
    now = clock.now()
    shelter = new_shelter(db, now=now, capacity=1)
    first = new_case(db, now=now, by=operator, province="BS")
    second = new_case(db, now=now, by=operator, province="BS")
    taken = request_placement(db, first, shelter, beds=1, actor=operator, now=now)
    confirm_placement(db, taken, actor=operator, now=now)
    waiting = request_placement(db, second, shelter, beds=1, actor=operator, now=now)
    db.commit()
    with pytest.raises(PlacementRefused) as refused:
        confirm_placement(db, waiting, actor=operator, now=now)
    assert (refused.value.code, refused.value.free) == ("full", 0)
    db.rollback()
    entry = confirm_placement(
        db, waiting, actor=operator, now=now, override_reason="Pericolo immediato, notte"
    )
    db.commit()
    assert entry.override == "full"
    assert db.get(PlacementReason, entry.id) is not None
    beds = shelter_beds(db, [shelter])[0]
    assert (beds.free, beds.over) == (0, 1)


def test_a_minor_in_a_shelter_not_for_minors_needs_an_override(
    db: Session, operator: User, clock: FrozenClock
) -> None:
    now = clock.now()
    shelter = new_shelter(db, now=now)
    case = new_case(db, now=now, by=operator, province="BS", person={"minor": "presumed"})
    with pytest.raises(PlacementRefused) as refused:
        request_placement(db, case, shelter, beds=1, actor=operator, now=now)
    assert refused.value.code == "minor"
    db.rollback()
    placement = request_placement(
        db, case, shelter, beds=1, actor=operator, now=now, override_reason="Solo stanotte"
    )
    db.commit()
    assert placement_state(placement).overrides == ["minor"]


def test_a_correction_is_a_new_entry_and_the_corrected_one_stays(
    db: Session, operator: User, clock: FrozenClock
) -> None:
    now = clock.now()
    shelter = new_shelter(db, now=now, capacity=4)
    case = new_case(db, now=now, by=operator, province="BS")
    placement = request_placement(db, case, shelter, beds=1, actor=operator, now=now)
    arrived = check_in(db, placement, at=now, actor=operator, now=now)
    db.commit()
    earlier = now - timedelta(hours=3)
    with pytest.raises(PlacementRefused):
        correct_entry(db, arrived, reason=" ", actor=operator, now=now, at=earlier)
    fix = correct_entry(
        db, arrived, reason="Arrivata prima, scritto tardi", actor=operator, now=now, at=earlier
    )
    requested = db.scalars(
        select(PlacementEntry).where(
            PlacementEntry.placement_id == placement.id, PlacementEntry.action == "requested"
        )
    ).one()
    correct_entry(db, requested, reason="Con due figli", actor=operator, now=now, beds=3)
    db.commit()
    db.expire_all()
    assert fix.corrects_id == arrived.id
    assert arrived.at == now  # untouched
    state = placement_state(db.get(Placement, placement.id))  # type: ignore[arg-type]
    assert (state.checked_in_at, state.beds) == (earlier, 3)
    assert _free(db, shelter.id) == 1


def test_no_show_frees_the_beds(db: Session, operator: User, clock: FrozenClock) -> None:
    now = clock.now()
    shelter = new_shelter(db, now=now, capacity=1)
    case = new_case(db, now=now, by=operator, province="BS")
    placement = request_placement(db, case, shelter, beds=1, actor=operator, now=now)
    confirm_placement(db, placement, actor=operator, now=now)
    db.commit()
    assert _free(db, shelter.id) == 0
    record_no_show(db, placement, actor=operator, now=now)
    db.commit()
    assert _free(db, shelter.id) == 1


def test_the_placement_log_refuses_update_and_delete_in_the_database(
    db: Session, operator: User, clock: FrozenClock
) -> None:
    now = clock.now()
    shelter = new_shelter(db, now=now)
    case = new_case(db, now=now, by=operator, province="BS")
    request_placement(db, case, shelter, beds=1, actor=operator, now=now)
    db.commit()
    statements = [
        update(PlacementEntry).values(beds=5),
        delete(PlacementEntry),
        update(Placement).values(shelter_id=shelter.id),
        delete(Placement),
        text("UPDATE placement_entries SET action = 'cancelled'"),
    ]
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"):
            db.execute(statement)
        db.rollback()
    assert db.scalar(select(PlacementEntry.beds)) == 1


def test_retention_removes_the_reasons_and_keeps_the_log(
    db: Session, operator: User, clock: FrozenClock
) -> None:
    now = clock.now()
    shelter = new_shelter(db, now=now)
    case = new_case(db, now=now, by=operator, province="BS", person={"minor": "yes"})
    request_placement(db, case, shelter, beds=1, actor=operator, now=now, override_reason="X")
    db.commit()
    pseudonymise_cases(db, [case], now=now, pepper="p", reason="test")
    db.commit()
    assert db.scalars(select(PlacementReason)).all() == []
    assert db.scalar(select(PlacementEntry.override)) == "minor"


def test_the_last_bed_taken_from_two_sessions_at_once_goes_to_one(
    app: Flask, engine: Engine, db: Session, make_user: UserFactory, clock: FrozenClock
) -> None:
    now = clock.now()
    shelter = new_shelter(db, now=now, capacity=1)
    users = [make_user(provinces=("BS",), name=f"Operatore {n}") for n in (1, 2)]
    placements = []
    for user in users:
        case = new_case(db, now=now, by=user, province="BS")
        placements.append(request_placement(db, case, shelter, beds=1, actor=user, now=now).id)
    db.commit()
    # Plain ids: the threads must not touch the test's own session.
    user_ids = [user.id for user in users]
    ready = threading.Barrier(2)
    outcomes: list[str] = []

    def take(index: int) -> None:
        with app.app_context(), Session(engine) as session:
            ready.wait(timeout=30)
            placement = session.get(Placement, placements[index])
            user = session.get(User, user_ids[index])
            assert placement is not None
            assert user is not None
            try:
                confirm_placement(session, placement, actor=user, now=now)
                session.commit()
                outcomes.append("confirmed")
            except PlacementRefused as exc:
                session.rollback()
                outcomes.append(exc.code)

    threads = [threading.Thread(target=take, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["confirmed", "full"]
    assert _free(db, shelter.id) == 0
    confirmed = select(PlacementEntry).where(PlacementEntry.action == "confirmed")
    assert len(db.scalars(confirmed).all()) == 1
    assert db.scalar(select(Case.id).limit(1)) is not None


def test_placement_states_give_the_reports_each_stay_as_corrected(
    db: Session, operator: User, clock: FrozenClock
) -> None:
    from intake.placements import placement_states  # noqa: PLC0415 -- the reports' entry point

    now = clock.now()
    shelter = new_shelter(db, now=now, capacity=4)
    new_shelter(db, now=now, code="BG-1", province="BG")
    case = new_case(db, now=now, by=operator, province="BS")
    placement = request_placement(db, case, shelter, beds=2, actor=operator, now=now)
    arrived = check_in(db, placement, at=now - timedelta(days=5), actor=operator, now=now)
    check_out(db, placement, at=now, exit_reason=ExitReason.ASYLUM_SYSTEM, actor=operator, now=now)
    correct_entry(
        db, arrived, reason="Data sbagliata", actor=operator, now=now, at=now - timedelta(days=4)
    )
    db.commit()
    (state,) = placement_states(db, province="BS")
    assert state.checked_in_at is not None
    assert state.checked_out_at is not None
    assert (state.checked_out_at - state.checked_in_at, state.beds, state.exit_reason) == (
        timedelta(days=4),
        2,
        ExitReason.ASYLUM_SYSTEM,
    )
    assert placement_states(db, province="BG") == []


def test_a_correction_cannot_take_beds_the_shelter_does_not_have(
    db: Session, operator: User, clock: FrozenClock
) -> None:
    now = clock.now()
    shelter = new_shelter(db, now=now, capacity=2)
    case = new_case(db, now=now, by=operator, province="BS")
    placement = request_placement(db, case, shelter, beds=1, actor=operator, now=now)
    confirm_placement(db, placement, actor=operator, now=now)
    db.commit()
    requested = db.scalars(select(PlacementEntry).where(PlacementEntry.action == "requested")).one()
    with pytest.raises(PlacementRefused) as refused:
        correct_entry(db, requested, reason="Tre figli", actor=operator, now=now, beds=3)
    assert refused.value.code == "full_correction"
    db.rollback()
    correct_entry(db, requested, reason="Un figlio", actor=operator, now=now, beds=2)
    db.commit()
    assert _free(db, shelter.id) == 0
