"""The placement measures of the funder's report, counted from the pronta accoglienza log as
`placement_states` leaves it (corrections applied), in the shelter's province.

- `placements`: placements checked in during the month (the person arrived: a request or a
  confirmation that never led to a stay is not a placement), by the shelter's kind.
- `length_of_stay`: nights from check-in to check-out of the stays checked out in the month —
  Europe/Rome calendar days between the two dates, so a night is a night across the clock
  change; median and p90 (nearest rank) from 3 stays up.
- `occupancy`: bed-nights taken / bed-nights available in the month, per shelter kind, as a
  percentage with one decimal. The night of day D is taken by a stay checked in on or before D
  and not checked out by D (beds × nights: a mother with two children takes three); it is
  available in every shelter that existed on D (added to Ali, or with a stay logged, by D), at
  its capacity; a placement by override past capacity can take it over 100%. Nights from
  tomorrow on are not counted yet, so the current month is measured up to tonight. The basis is
  the number of stays that took a night: fewer than 3 (none included) is `<3`, since the figure
  would tell how long one or two people stayed. The log does not keep past capacities or
  closures, so a shelter counts at its current capacity.
- `exits_by_reason`: check-outs in the month by exit reason.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from statistics import median

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import now as clock_now
from core.formatting import local_date
from intake.models import Shelter
from intake.placements import PlacementState, PlacementStatus, placement_states
from intake.reports import (
    ALL,
    OTHER,
    TOTAL,
    Figures,
    Period,
    Statistic,
    Tally,
    percentile,
    provide_measure,
)


def _where(shelter: Shelter, provinces: Sequence[str]) -> str:
    return shelter.province if shelter.province in provinces else OTHER


def _in(period: Period, at: datetime | None) -> bool:
    return at is not None and period.start <= at < period.end


def _tallies(counted: Counter[tuple[str, str]]) -> Figures:
    return Figures(tallies=[Tally(p, c, n) for (p, c), n in sorted(counted.items())])


def placements(session: Session, period: Period, provinces: Sequence[str]) -> Figures:
    counted: Counter[tuple[str, str]] = Counter()
    for state in placement_states(session):
        if _in(period, state.checked_in_at):
            where = _where(state.placement.shelter, provinces)
            counted[(where, state.placement.shelter.kind.value)] += 1
            counted[(where, TOTAL)] += 1
    return _tallies(counted)


def _checked_out(session: Session, period: Period) -> list[PlacementState]:
    return [
        state
        for state in placement_states(session)
        if state.status == PlacementStatus.CHECKED_OUT and _in(period, state.checked_out_at)
    ]


def _nights(arrived: datetime, left: datetime) -> int:
    """Rome calendar days between the two: a night is a night whatever the clocks do."""
    return (local_date(left) - local_date(arrived)).days


def length_of_stay(session: Session, period: Period, provinces: Sequence[str]) -> Figures:
    nights: dict[str, list[float]] = defaultdict(list)
    for state in _checked_out(session, period):
        if state.checked_in_at is None or state.checked_out_at is None:
            continue
        stayed = _nights(state.checked_in_at, state.checked_out_at)
        nights[_where(state.placement.shelter, provinces)].append(stayed)
        nights[ALL].append(stayed)
    statistics = []
    for where, values in nights.items():
        statistics.append(Statistic(where, "median_days", median(values), len(values)))
        statistics.append(Statistic(where, "p90_days", percentile(values, 0.9), len(values)))
    return Figures(statistics=statistics)


def _overlap(first: date, stop: date, start: date, end: date) -> int:
    """Nights D with first <= D < stop that fall in [start, end)."""
    return max(0, (min(stop, end) - max(first, start)).days)


def occupancy(session: Session, period: Period, provinces: Sequence[str]) -> Figures:
    start = period.month
    # Nights up to tonight's: the month's end, or tomorrow for the month under way.
    end = min(local_date(period.end), local_date(clock_now()) + timedelta(days=1))
    states = [
        (state, local_date(state.checked_in_at))
        for state in placement_states(session)
        if state.checked_in_at is not None
    ]
    # A shelter is there from the day it was added to Ali, or from its first logged stay if
    # the log was entered after the fact.
    since: dict[int, date] = {}
    for state, arrived in states:
        shelter_id = state.placement.shelter_id
        since[shelter_id] = min(since.get(shelter_id, arrived), arrived)
    available: Counter[tuple[str, str]] = Counter()
    for shelter in session.scalars(select(Shelter)):
        opened = min(local_date(shelter.created_at), since.get(shelter.id, date.max))
        nights = _overlap(opened, end, start, end)
        for where in (_where(shelter, provinces), ALL):
            available[(where, shelter.kind.value)] += shelter.capacity * nights
    taken: Counter[tuple[str, str]] = Counter()
    stays: Counter[tuple[str, str]] = Counter()
    for state, first in states:
        stop = local_date(state.checked_out_at) if state.checked_out_at else end
        nights = _overlap(first, stop, start, end)
        if nights == 0:
            continue
        shelter = state.placement.shelter
        for where in (_where(shelter, provinces), ALL):
            taken[(where, shelter.kind.value)] += state.beds * nights
            stays[(where, shelter.kind.value)] += 1
    statistics = []
    for (where, kind), beds in sorted(available.items()):
        if beds:
            share = 100 * taken[(where, kind)] / beds
            statistics.append(Statistic(where, f"{kind}_percent", share, stays[(where, kind)]))
    return Figures(statistics=statistics)


def exits_by_reason(session: Session, period: Period, provinces: Sequence[str]) -> Figures:
    counted: Counter[tuple[str, str]] = Counter()
    for state in _checked_out(session, period):
        where = _where(state.placement.shelter, provinces)
        reason = state.exit_reason.value if state.exit_reason else "other"
        counted[(where, reason)] += 1
        counted[(where, TOTAL)] += 1
    return _tallies(counted)


def init_app(app: Flask) -> None:
    provide_measure(app, "placements", placements)
    provide_measure(app, "length_of_stay", length_of_stay)
    provide_measure(app, "occupancy", occupancy)
    provide_measure(app, "exits_by_reason", exits_by_reason)
