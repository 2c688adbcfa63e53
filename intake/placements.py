"""The pronta accoglienza log: placements of a case's person in a shelter, as append-only
entries (request, confirm, check in, planned end, check out, cancel, no-show, correction),
where each placement stands and the beds it takes — occupancy is derived here, never typed.

A bed is taken by a confirmed placement and by a checked-in one until check-out; a request
takes none (design §5). Taking beds locks the shelter's row first, so two operators taking the
last bed at once take turns and the second finds it gone (SQLite serialises writers with
BEGIN IMMEDIATE). Services never commit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, selectinload

from core import audit
from core.models import User
from intake.models import (
    ExitReason,
    Placement,
    PlacementAction,
    PlacementEntry,
    PlacementReason,
    Shelter,
)
from routing.lifecycle import record_event
from routing.models import Case, CaseEventKind

MAX_BEDS = 12
MAX_REASON = 500


class PlacementStatus(StrEnum):
    REQUESTED = "requested"
    CONFIRMED = "confirmed"
    CHECKED_IN = "checked_in"
    CHECKED_OUT = "checked_out"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


class Override(StrEnum):
    """Why an entry needed an explicit override: it is flagged in the log."""

    FULL = "full"  # beds taken past the shelter's free beds (or a closed shelter)
    MINOR = "minor"  # a minor placed where minors are not taken


TAKES_BEDS = frozenset({PlacementStatus.CONFIRMED, PlacementStatus.CHECKED_IN})
ENDED = frozenset({PlacementStatus.CHECKED_OUT, PlacementStatus.CANCELLED, PlacementStatus.NO_SHOW})
_TERMINAL_ACTIONS = (
    PlacementAction.CHECKED_OUT,
    PlacementAction.CANCELLED,
    PlacementAction.NO_SHOW,
)
# Which log action moves a placement from which statuses to which.
_MOVES: dict[PlacementAction, tuple[frozenset[PlacementStatus], PlacementStatus]] = {
    PlacementAction.CONFIRMED: (frozenset({PlacementStatus.REQUESTED}), PlacementStatus.CONFIRMED),
    PlacementAction.CHECKED_IN: (
        frozenset({PlacementStatus.REQUESTED, PlacementStatus.CONFIRMED}),
        PlacementStatus.CHECKED_IN,
    ),
    PlacementAction.CHECKED_OUT: (
        frozenset({PlacementStatus.CHECKED_IN}),
        PlacementStatus.CHECKED_OUT,
    ),
    PlacementAction.CANCELLED: (
        frozenset({PlacementStatus.REQUESTED, PlacementStatus.CONFIRMED}),
        PlacementStatus.CANCELLED,
    ),
    PlacementAction.NO_SHOW: (frozenset({PlacementStatus.CONFIRMED}), PlacementStatus.NO_SHOW),
}


class PlacementRefused(ValueError):
    """A log entry that cannot be written; `code` says why (the page translates it)."""

    def __init__(self, message: str, *, code: str, free: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.free = free


@dataclass
class PlacementState:
    """A placement as its entries leave it, corrections applied."""

    placement: Placement
    status: PlacementStatus = PlacementStatus.REQUESTED
    beds: int = 1
    requested_at: datetime | None = None
    confirmed_at: datetime | None = None
    checked_in_at: datetime | None = None
    planned_end_on: date | None = None
    checked_out_at: datetime | None = None
    ended_at: datetime | None = None  # check-out, cancellation or no-show
    exit_reason: ExitReason | None = None
    overrides: list[str] = field(default_factory=list)

    @property
    def takes_beds(self) -> bool:
        return self.status in TAKES_BEDS


@dataclass
class _Values:
    action: PlacementAction
    at: datetime
    beds: int | None
    planned_end_on: date | None
    exit_reason: ExitReason | None


def placement_state(  # noqa: PLR0912 -- one fold over the log's actions, read top to bottom
    placement: Placement, entries: Sequence[PlacementEntry] | None = None
) -> PlacementState:
    """Fold the log: each correction replaces the values of the entry it points at."""
    ordered = sorted(entries if entries is not None else placement.entries, key=lambda e: e.id)
    values: dict[int, _Values] = {}
    for entry in ordered:
        if entry.action == PlacementAction.CORRECTION:
            target = values.get(entry.corrects_id or 0)
            if target is not None:
                target.at = entry.at
                target.beds = entry.beds if entry.beds is not None else target.beds
                target.planned_end_on = entry.planned_end_on or target.planned_end_on
                target.exit_reason = entry.exit_reason or target.exit_reason
        else:
            values[entry.id] = _Values(
                entry.action, entry.at, entry.beds, entry.planned_end_on, entry.exit_reason
            )
    state = PlacementState(placement)
    for entry in ordered:
        if entry.override and entry.override not in state.overrides:
            state.overrides.append(entry.override)
        value = values.get(entry.id)
        if value is None:
            continue
        if value.beds is not None:
            state.beds = value.beds
        if value.action == PlacementAction.REQUESTED:
            state.requested_at = value.at
        elif value.action == PlacementAction.PLANNED_END:
            state.planned_end_on = value.planned_end_on
        else:
            state.status = _MOVES[value.action][1]
            if value.action == PlacementAction.CONFIRMED:
                state.confirmed_at = value.at
            elif value.action == PlacementAction.CHECKED_IN:
                state.checked_in_at = value.at
            elif value.action == PlacementAction.CHECKED_OUT:
                state.checked_out_at = value.at
                state.exit_reason = value.exit_reason
            if state.status in ENDED:
                state.ended_at = value.at
    return state


def beds_taken(session: Session, shelter_ids: Sequence[int]) -> dict[int, int]:
    """Beds taken now per shelter, from the log: placements not yet ended, folded."""
    if not shelter_ids:
        return {}
    ended = exists().where(
        PlacementEntry.placement_id == Placement.id,
        PlacementEntry.action.in_([a.value for a in _TERMINAL_ACTIONS]),
    )
    placements = session.scalars(
        select(Placement)
        .where(Placement.shelter_id.in_(shelter_ids), ~ended)
        .options(selectinload(Placement.entries))
    )
    taken: dict[int, int] = defaultdict(int)
    for placement in placements:
        state = placement_state(placement)
        if state.takes_beds:
            taken[placement.shelter_id] += state.beds
    return dict(taken)


def placements_of_case(session: Session, case: Case) -> list[PlacementState]:
    placements = session.scalars(
        select(Placement)
        .where(Placement.case_id == case.id)
        .order_by(Placement.id.desc())
        .options(selectinload(Placement.entries).selectinload(PlacementEntry.reason))
    )
    return [placement_state(placement) for placement in placements]


def _is_minor(case: Case) -> bool:
    return case.person_minor in {"yes", "presumed"}


def _reason_text(reason: str | None) -> str | None:
    text = (reason or "").strip()
    if not text:
        return None
    if len(text) > MAX_REASON:
        raise PlacementRefused(f"the reason is longer than {MAX_REASON}", code="reason_long")
    return text


def _check_beds(beds: int) -> None:
    if not 1 <= beds <= MAX_BEDS:
        raise PlacementRefused(f"beds must be from 1 to {MAX_BEDS}", code="beds")


def _write(
    session: Session,
    placement: Placement,
    action: PlacementAction,
    *,
    actor: User,
    now: datetime,
    at: datetime | None = None,
    beds: int | None = None,
    planned_end_on: date | None = None,
    exit_reason: ExitReason | None = None,
    override: Override | None = None,
    reason: str | None = None,
    corrects: PlacementEntry | None = None,
) -> PlacementEntry:
    entry = PlacementEntry(
        placement_id=placement.id,
        action=action,
        at=at or now,
        recorded_at=now,
        actor_id=actor.id,
        beds=beds,
        planned_end_on=planned_end_on,
        exit_reason=exit_reason,
        override=override.value if override else None,
        corrects_id=corrects.id if corrects else None,
    )
    session.add(entry)
    session.flush()
    if reason:
        session.add(PlacementReason(entry_id=entry.id, text=reason))
    data: dict[str, object] = {"action": action.value, "placement_id": placement.id}
    if override:
        data["override"] = override.value
    if exit_reason:
        data["exit_reason"] = exit_reason.value
    if corrects:
        data["corrects"] = corrects.action.value
    record_event(
        session,
        case_id=placement.case_id,
        kind=CaseEventKind.PLACEMENT,
        actor=actor,
        now=now,
        data=data,
    )
    touched = [
        name
        for name, value in (
            ("at", at),
            ("beds", beds),
            ("planned_end", planned_end_on),
            ("exit_reason", exit_reason),
            ("override", override),
            ("reason", reason),
        )
        if value is not None
    ]
    audit.record(
        session,
        now=now,
        action="create",
        object_type="placement",
        object_id=placement.id,
        actor=actor,
        fields=[action.value, *touched],
        detail={"case_id": placement.case_id, "entry_id": entry.id},
    )
    return entry


def _locked_free(session: Session, shelter: Shelter) -> int:
    """Free beds of the shelter, its row locked until the transaction ends: whoever takes a
    bed next waits and counts again."""
    session.refresh(shelter, with_for_update=True)
    if not shelter.open:
        return 0
    return shelter.capacity - beds_taken(session, [shelter.id]).get(shelter.id, 0)


def request_placement(
    session: Session,
    case: Case,
    shelter: Shelter,
    *,
    beds: int,
    actor: User,
    now: datetime,
    override_reason: str | None = None,
) -> Placement:
    """A request to a shelter: takes no bed yet. A minor in a shelter that does not take
    minors needs an override with a reason."""
    _check_beds(beds)
    reason = _reason_text(override_reason)
    override = None
    if _is_minor(case) and not shelter.takes_minors:
        if reason is None:
            raise PlacementRefused("this shelter does not take minors", code="minor")
        override = Override.MINOR
    placement = Placement(
        case_id=case.id, shelter_id=shelter.id, created_at=now, created_by_id=actor.id
    )
    session.add(placement)
    session.flush()
    _write(
        session,
        placement,
        PlacementAction.REQUESTED,
        actor=actor,
        now=now,
        beds=beds,
        override=override,
        reason=reason,
    )
    return placement


def _move(
    session: Session,
    placement: Placement,
    action: PlacementAction,
    *,
    actor: User,
    now: datetime,
    at: datetime | None = None,
    exit_reason: ExitReason | None = None,
    override_reason: str | None = None,
) -> PlacementEntry:
    state = placement_state(placement, _entries(session, placement))
    allowed, to = _MOVES[action]
    if state.status not in allowed:
        raise PlacementRefused(
            f"a {state.status.value} placement cannot be {action.value}", code="state"
        )
    if at is not None and at > now:
        raise PlacementRefused("that time is in the future", code="future")
    reason = _reason_text(override_reason)
    override = None
    if to in TAKES_BEDS and not state.takes_beds:
        free = _locked_free(session, placement.shelter)
        if free < state.beds:
            if reason is None:
                raise PlacementRefused(
                    f"{max(free, 0)} bed(s) free, {state.beds} needed", code="full", free=free
                )
            override = Override.FULL
    return _write(
        session,
        placement,
        action,
        actor=actor,
        now=now,
        at=at,
        exit_reason=exit_reason,
        override=override,
        reason=reason if override else None,
    )


def _entries(session: Session, placement: Placement) -> list[PlacementEntry]:
    return list(
        session.scalars(
            select(PlacementEntry)
            .where(PlacementEntry.placement_id == placement.id)
            .order_by(PlacementEntry.id)
        )
    )


def confirm_placement(
    session: Session,
    placement: Placement,
    *,
    actor: User,
    now: datetime,
    override_reason: str | None = None,
) -> PlacementEntry:
    """The shelter said yes: the beds are taken from now (a full shelter needs an override)."""
    return _move(
        session,
        placement,
        PlacementAction.CONFIRMED,
        actor=actor,
        now=now,
        override_reason=override_reason,
    )


def check_in(
    session: Session,
    placement: Placement,
    *,
    at: datetime,
    actor: User,
    now: datetime,
    override_reason: str | None = None,
) -> PlacementEntry:
    """The person arrived, at `at` (not in the future)."""
    return _move(
        session,
        placement,
        PlacementAction.CHECKED_IN,
        actor=actor,
        now=now,
        at=at,
        override_reason=override_reason,
    )


def check_out(
    session: Session,
    placement: Placement,
    *,
    at: datetime,
    exit_reason: ExitReason,
    actor: User,
    now: datetime,
) -> PlacementEntry:
    state = placement_state(placement, _entries(session, placement))
    if state.checked_in_at is not None and at < state.checked_in_at:
        raise PlacementRefused("the check-out is before the check-in", code="before_check_in")
    return _move(
        session,
        placement,
        PlacementAction.CHECKED_OUT,
        actor=actor,
        now=now,
        at=at,
        exit_reason=exit_reason,
    )


def cancel_placement(
    session: Session, placement: Placement, *, actor: User, now: datetime
) -> PlacementEntry:
    return _move(session, placement, PlacementAction.CANCELLED, actor=actor, now=now)


def record_no_show(
    session: Session, placement: Placement, *, actor: User, now: datetime
) -> PlacementEntry:
    return _move(session, placement, PlacementAction.NO_SHOW, actor=actor, now=now)


def set_planned_end(
    session: Session, placement: Placement, planned_end_on: date, *, actor: User, now: datetime
) -> PlacementEntry:
    state = placement_state(placement, _entries(session, placement))
    if state.status in ENDED:
        raise PlacementRefused("the placement has ended", code="state")
    return _write(
        session,
        placement,
        PlacementAction.PLANNED_END,
        actor=actor,
        now=now,
        planned_end_on=planned_end_on,
    )


def correct_entry(
    session: Session,
    entry: PlacementEntry,
    *,
    reason: str,
    actor: User,
    now: datetime,
    at: datetime | None = None,
    beds: int | None = None,
    planned_end_on: date | None = None,
    exit_reason: ExitReason | None = None,
) -> PlacementEntry:
    """A correction: a new entry pointing at `entry`, with a reason; `entry` stays as it was."""
    if entry.action == PlacementAction.CORRECTION:
        raise PlacementRefused("correct the original entry, not a correction", code="state")
    text = _reason_text(reason)
    if text is None:
        raise PlacementRefused("a correction needs a reason", code="reason")
    if at is not None and at > now:
        raise PlacementRefused("that time is in the future", code="future")
    if beds is not None:
        _check_beds(beds)
        # More beds on a placement that holds its beds takes them now: no correction fills
        # a shelter past its capacity (an override is for the placement itself).
        state = placement_state(entry.placement, _entries(session, entry.placement))
        extra = beds - state.beds
        if state.takes_beds and extra > 0:
            free = _locked_free(session, entry.placement.shelter)
            if free < extra:
                raise PlacementRefused(
                    f"{max(free, 0)} bed(s) free", code="full_correction", free=free
                )
    return _write(
        session,
        entry.placement,
        PlacementAction.CORRECTION,
        actor=actor,
        now=now,
        at=at or entry.at,
        beds=beds,
        planned_end_on=planned_end_on,
        exit_reason=exit_reason,
        reason=text,
        corrects=entry,
    )


def placement_states(session: Session, *, province: str | None = None) -> list[PlacementState]:
    """Every placement as its log leaves it (corrections applied), oldest first, for reports:
    placements per month (`requested_at`/`checked_in_at`), length of stay (`checked_in_at` to
    `checked_out_at`), occupancy (beds × nights between them) and exits by `exit_reason`.
    `province` is the shelter's."""
    query = (
        select(Placement)
        .order_by(Placement.id)
        .options(selectinload(Placement.entries), selectinload(Placement.shelter))
    )
    if province is not None:
        query = query.join(Shelter, Shelter.id == Placement.shelter_id).where(
            Shelter.province == province
        )
    return [placement_state(placement) for placement in session.scalars(query)]
