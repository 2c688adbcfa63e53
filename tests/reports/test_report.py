"""The report of a known month checked figure by figure, on both databases: March 2026, whose
first hour is CET and last hour CEST (months are Europe/Rome months)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

from flask.testing import FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import ROME, FrozenClock
from core.models import AuditEntry, User
from intake.manual import manual_case_fields
from intake.models import ExitReason, Shelter, Source
from intake.placements import (
    cancel_placement,
    check_in,
    check_out,
    confirm_placement,
    correct_entry,
    request_placement,
)
from intake.reports import ALL, EXIT_REASONS, OTHER, SHELTER_KINDS
from intake.services import BroughtBy, open_case
from oncall.models import RotaShift
from routing.models import Case, Channel
from tests.conftest import UserFactory
from tests.intake.cases import SERVED, accept, new_case
from tests.intake.shelters import new_shelter
from tests.intake.signed import make_source

MARCH_FIRST = datetime(2026, 2, 28, 23, 0, tzinfo=UTC)  # 1 March 00:00 in Rome (CET)
APRIL_FIRST = datetime(2026, 3, 31, 22, 0, tzinfo=UTC)  # 1 April 00:00 in Rome (CEST)


def rostered(db: Session, user: User, province: str) -> None:
    db.add(
        RotaShift(
            province=province,
            tier="primary",
            user_id=user.id,
            start_at=MARCH_FIRST - timedelta(days=3),
            end_at=APRIL_FIRST + timedelta(days=3),
            created_at=MARCH_FIRST - timedelta(days=3),
        )
    )
    db.commit()


def from_source(db: Session, source_id: int, *, now: datetime, **body: object) -> Case:
    fields = manual_case_fields(body, now=now, served=SERVED).fields
    opened = open_case(
        db,
        channel=Channel.WEBHOOK,
        brought_by=BroughtBy(actor="source:numero-verde", source_id=source_id),
        fields=fields,
        now=now,
    )
    db.commit()
    return db.scalars(select(Case).where(Case.id == opened.case_id)).one()


def build_month(db: Session, make_user: UserFactory, clock: FrozenClock) -> None:
    """BS: 5 cases (3 from numero-verde), 4 accepted after 2, 4, 6 and 10 minutes; BG: 4,
    3 accepted after 1, 3 and 30; CR: 1, nobody on call (unanswered); 1 unresolved
    (unanswered: no coordinator); one case just before the month and one just after."""
    bs = make_user(provinces=("BS",))
    bg = make_user(provinces=("BG",))
    rostered(db, bs, "BS")
    rostered(db, bg, "BG")
    make_source(db, clock)

    source_id = db.scalars(select(Source.id)).one()
    t = MARCH_FIRST
    waits = iter([2, 4, 6, 10])
    for i, (exploitation, reporter) in enumerate(
        [
            (["sexual"], "law_enforcement"),
            (["sexual", "labour"], "law_enforcement"),
            (["sexual"], "law_enforcement"),
            (["sexual"], "ngo"),
            (["labour"], "ngo"),
        ]
    ):
        at = t + timedelta(days=i, hours=1)
        if i < 3:
            case = from_source(
                db,
                source_id,
                now=at,
                province="BS",
                exploitation=exploitation,
                reporter_type=reporter,
            )
        else:
            case = new_case(
                db,
                now=at,
                by=bs,
                province="BS",
                exploitation=exploitation,
                reporter_type=reporter,
            )
        if i < 4:
            accept(db, case, bs, now=at + timedelta(minutes=next(waits)))
    # BG: the first at the month's first instant, the last at its last minute (CEST).
    bg_times = [
        MARCH_FIRST,
        t + timedelta(days=10),
        t + timedelta(days=20),
        APRIL_FIRST - timedelta(minutes=1),
    ]
    for at, wait in zip(bg_times, [1, 3, 30, None], strict=True):
        case = new_case(
            db, now=at, by=bg, province="BG", exploitation=["labour"], reporter_type="citizen"
        )
        if wait is not None:
            accept(db, case, bg, now=at + timedelta(minutes=wait))
    new_case(
        db,
        now=t + timedelta(days=5),
        by=bs,
        province="CR",
        exploitation=["sexual"],
        reporter_type="ngo",
    )
    new_case(db, now=t + timedelta(days=6), by=bs, reporter_type="citizen")
    # Outside the month, by a minute each way.
    new_case(db, now=MARCH_FIRST - timedelta(minutes=1), by=bs, province="BS")
    new_case(db, now=APRIL_FIRST, by=bs, province="BS")
    build_placements(db, bs, bg)


def rome(month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=ROME).astimezone(UTC)


def stay(
    db: Session,
    shelter: Shelter,
    by: User,
    *,
    arrived: datetime,
    left: datetime | None = None,
    reason: ExitReason = ExitReason.OTHER,
    beds: int = 1,
) -> tuple[object, object]:
    """A placement checked in at `arrived` (and out at `left`); its check-in and check-out
    entries, for corrections."""
    case = new_case(db, now=rome(2, 10), by=by, province=shelter.province)
    placement = request_placement(
        db, case, shelter, beds=beds, actor=by, now=arrived - timedelta(hours=1)
    )
    entered = check_in(db, placement, at=arrived, actor=by, now=arrived + timedelta(minutes=1))
    exited = None
    if left is not None:
        exited = check_out(
            db, placement, at=left, exit_reason=reason, actor=by, now=left + timedelta(minutes=1)
        )
    db.commit()
    return entered, exited


def build_placements(db: Session, bs: User, bg: User) -> None:
    """Stays in two BS shelters and one BG shelter (no semi-autonomy shelter), their cases
    opened in February. Nights are Rome calendar days; the clocks go forward on 29 March.

    BS pronta accoglienza (4 beds): in 25 Feb, out 3 Mar (6 nights, 2 in March, returned
    home); in 5 Mar (logged as 27 Feb, corrected), still in (27 March nights); in 10 Mar 20:00,
    out 15 Mar (5, left voluntarily); in 20 Mar 10:00, out 29 Mar 10:00 CEST (9 nights though
    8 days 23 hours, logged `other`, corrected to asylum system); a mother with two children
    (3 beds) in 27 Mar 22:00 CET, out 2 Apr (5 March nights × 3 beds); one confirmed and
    cancelled (no stay). BS residential (2 beds): in 2 Mar, out 12 Mar (10, to semi-autonomy).
    BG pronta accoglienza (2 beds): in at the month's first instant, out at its last minute
    (30 nights, to residential)."""
    before = rome(2, 18)
    pronta = new_shelter(db, now=before, capacity=4)
    residential = new_shelter(
        db, now=before, code="BS-RES-1", name="Casa Betulla", kind="residential", capacity=2
    )
    bergamo = new_shelter(db, now=before, code="BG-PA-1", name="Casa Cedro", province="BG")
    stay(db, pronta, bs, arrived=rome(2, 25), left=rome(3, 3, 10), reason=ExitReason.RETURNED_HOME)
    late, _ = stay(db, pronta, bs, arrived=rome(2, 27))
    correct_entry(
        db,
        late,
        reason="Arrived on the 5th",
        actor=bs,
        now=rome(3, 6),
        at=rome(3, 5),  # type: ignore[arg-type]
    )
    stay(
        db,
        pronta,
        bs,
        arrived=rome(3, 10, 20),
        left=rome(3, 15, 9),
        reason=ExitReason.LEFT_VOLUNTARILY,
    )
    _, out = stay(db, pronta, bs, arrived=rome(3, 20, 10), left=rome(3, 29, 10))
    correct_entry(
        db,
        out,  # type: ignore[arg-type]
        reason="Went to the asylum system",
        actor=bs,
        now=rome(3, 30),
        exit_reason=ExitReason.ASYLUM_SYSTEM,
    )
    stay(db, pronta, bs, arrived=rome(3, 27, 22), left=rome(4, 2), beds=3)
    case = new_case(db, now=rome(2, 10), by=bs, province="BS")
    never = request_placement(db, case, pronta, beds=1, actor=bs, now=rome(3, 7))
    confirm_placement(db, never, actor=bs, now=rome(3, 7, 13))
    cancel_placement(db, never, actor=bs, now=rome(3, 8))
    db.commit()
    stay(
        db,
        residential,
        bs,
        arrived=rome(3, 2),
        left=rome(3, 12),
        reason=ExitReason.MOVED_SEMI_AUTONOMY,
    )
    stay(
        db,
        bergamo,
        bg,
        arrived=MARCH_FIRST,
        left=APRIL_FIRST - timedelta(minutes=1),
        reason=ExitReason.MOVED_RESIDENTIAL,
    )


def expected() -> dict[tuple[str, str, str], float]:
    """Every figure of the month, worked out by hand from `build_month`."""
    zero_rows = (*SERVED, OTHER, ALL)
    figures: dict[tuple[str, str, str], float] = {}

    def put(measure: str, category: str, by_province: dict[str, int]) -> None:
        for p in zero_rows:
            if p != ALL:
                figures[(p, measure, category)] = by_province.get(p, 0)
        figures[(ALL, measure, category)] = sum(by_province.values())

    put("cases", "total", {"BS": 5, "BG": 4, "CR": 1, OTHER: 1})
    put("handoffs_by_channel", "webhook", {"BS": 3})
    put("handoffs_by_channel", "manual", {"BS": 2, "BG": 4, "CR": 1, OTHER: 1})
    for channel in ("phone", "sms"):
        put("handoffs_by_channel", channel, {})
    put("handoffs_by_source", "numero-verde", {"BS": 3})
    put("handoffs_by_source", "none", {"BS": 2, "BG": 4, "CR": 1, OTHER: 1})
    put("cases_by_reporter_type", "law_enforcement", {"BS": 3})
    put("cases_by_reporter_type", "ngo", {"BS": 2, "CR": 1})
    put("cases_by_reporter_type", "citizen", {"BG": 4, OTHER: 1})
    for code in (
        "presumed_victim",
        "client",
        "social_services",
        "health_services",
        "commissione_territoriale",
        "reception_centre",
        "other",
        "unknown",
    ):
        put("cases_by_reporter_type", code, {})
    put("cases_by_exploitation", "sexual", {"BS": 4, "CR": 1})
    put("cases_by_exploitation", "labour", {"BS": 2, "BG": 4})
    put("cases_by_exploitation", "unknown", {OTHER: 1})
    for code in ("begging", "illegal_economies", "forced_marriage", "other"):
        put("cases_by_exploitation", code, {})
    put("unanswered", "total", {"CR": 1, OTHER: 1})
    figures[("BS", "time_to_acceptance", "median_minutes")] = 5
    figures[("BS", "time_to_acceptance", "p90_minutes")] = 10
    figures[("BG", "time_to_acceptance", "median_minutes")] = 3
    figures[("BG", "time_to_acceptance", "p90_minutes")] = 30
    figures[(ALL, "time_to_acceptance", "median_minutes")] = 4
    figures[(ALL, "time_to_acceptance", "p90_minutes")] = 30
    # Placements by check-in in March; the cancelled one and the February arrivals are not.
    put("placements", "pronta_accoglienza", {"BS": 4, "BG": 1})
    put("placements", "residential", {"BS": 1})
    put("placements", "semi_autonomy", {})
    put("placements", "total", {"BS": 5, "BG": 1})
    # Check-outs in March (the 2 April one is April's).
    put("exits_by_reason", "returned_home", {"BS": 1})
    put("exits_by_reason", "left_voluntarily", {"BS": 1})
    put("exits_by_reason", "asylum_system", {"BS": 1})
    put("exits_by_reason", "moved_semi_autonomy", {"BS": 1})
    put("exits_by_reason", "moved_residential", {"BG": 1})
    for code in ("transferred_other_project", "other"):
        put("exits_by_reason", code, {})
    put("exits_by_reason", "total", {"BS": 4, "BG": 1})
    # Nights of the stays that ended in March: BS 6, 5, 9, 10; BG 30 (one stay: `<3`).
    figures[("BS", "length_of_stay", "median_days")] = 7.5
    figures[("BS", "length_of_stay", "p90_days")] = 10
    figures[("BG", "length_of_stay", "median_days")] = SMALL_STAY
    figures[("BG", "length_of_stay", "p90_days")] = SMALL_STAY
    figures[(ALL, "length_of_stay", "median_days")] = 9
    figures[(ALL, "length_of_stay", "p90_days")] = 30
    # Bed-nights taken / available: BS pronta (2 + 27 + 5 + 9 + 5 × 3) / (4 × 31) from 5
    # stays; ALL pronta adds BG's 30 of 2 × 31; one stay each elsewhere: `<3`.
    figures[("BS", "occupancy", "pronta_accoglienza_percent")] = 46.8
    figures[("BS", "occupancy", "residential_percent")] = SMALL_STAY
    figures[("BG", "occupancy", "pronta_accoglienza_percent")] = SMALL_STAY
    figures[(ALL, "occupancy", "pronta_accoglienza_percent")] = 47.3
    figures[(ALL, "occupancy", "residential_percent")] = SMALL_STAY
    return figures


SMALL_STAY = -1.0  # a statistic of fewer than 3 stays, written `<3`
STATISTICS = {"time_to_acceptance", "length_of_stay", "occupancy"}


def test_every_figure_of_a_month_across_the_clock_change(
    db: Session, make_user: UserFactory, clock: FrozenClock, runner: FlaskCliRunner
) -> None:
    build_month(db, make_user, clock)
    result = runner.invoke(args=["report", "--month", "2026-03"])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.output)))
    assert rows[0] == ["month", "province", "measure", "category", "value"]
    got = {(p, m, c): v for month, p, m, c, v in rows[1:] if month == "2026-03"}
    assert len(got) == len(rows) - 1
    want = expected()
    assert set(got) == set(want)
    for cell, value in want.items():
        shown = got[cell]
        if cell[1] in STATISTICS:
            assert shown == ("<3" if value == SMALL_STAY else f"{value:g}"), cell
        elif 0 < value < 3:
            assert shown == "<3", cell
        elif shown != "x":  # hidden so that a `<3` cannot be worked out
            assert shown == str(int(value)), cell
    # The month's big figures stay published.
    assert got[(ALL, "cases", "total")] == "11"
    assert got[(ALL, "placements", "total")] == "6"
    # BS's one residential placement is `<3`: its 4 pronta accoglienza ones would give it away
    # from BS's total of 5.
    assert got[("BS", "placements", "residential")] == "<3"
    assert "x" in {
        got[("BS", "placements", "pronta_accoglienza")],
        got[("BS", "placements", "total")],
    }
    assert got[("BS", "occupancy", "pronta_accoglienza_percent")] == "46.8"
    assert {c for _p, m, c in got if m == "placements"} == {*SHELTER_KINDS, "total"}
    assert {c for _p, m, c in got if m == "exits_by_reason"} == {*EXIT_REASONS, "total"}
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "export")).one()
    assert (entry.object_type, entry.object_id) == ("report", "2026-03")


def test_a_group_under_three_cases_has_no_median_and_json_says_small_counts_as_strings(
    db: Session, make_user: UserFactory, clock: FrozenClock, runner: FlaskCliRunner
) -> None:
    build_month(db, make_user, clock)
    result = runner.invoke(
        args=["report", "--month", "2026-03", "--province", "CR", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    values = {(r["measure"], r["category"]): r["value"] for r in body["rows"]}
    assert {r["province"] for r in body["rows"]} == {"CR"}
    assert values[("cases", "total")] == "<3"
    assert values[("unanswered", "total")] == "<3"
    assert values[("cases_by_reporter_type", "citizen")] == 0
    assert ("time_to_acceptance", "median_minutes") not in values  # none accepted in CR


def test_a_bad_month_or_province_is_refused_with_a_message(runner: FlaskCliRunner) -> None:
    for args in (
        ["--month", "2026-13"],
        ["--month", "march"],
        ["--month", "2026-03", "--province", "XX"],
    ):
        result = runner.invoke(args=["report", *args])
        assert result.exit_code == 2
        assert "YYYY-MM" in result.output


def test_no_hidden_count_of_the_month_falls_to_a_subtraction(
    db: Session, make_user: UserFactory, clock: FrozenClock, runner: FlaskCliRunner
) -> None:
    """The attack on the CSV itself: in every sum the report holds (a province's categories
    and its total; the provinces and ALL), never exactly one value is hidden."""
    build_month(db, make_user, clock)
    result = runner.invoke(args=["report", "--month", "2026-03"])
    got = {(p, m, c): v for _month, p, m, c, v in list(csv.reader(io.StringIO(result.output)))[1:]}
    counts = {cell: v for cell, v in got.items() if cell[1] not in STATISTICS}
    hidden = {cell for cell, v in counts.items() if not v.isdigit()}
    assert hidden  # the month has small counts to protect
    lines = []
    for measure, category in {(m, c) for _p, m, c in counts}:
        lines.append([(p, measure, category) for p in (*SERVED, OTHER, ALL)])
    for measure in ("handoffs_by_channel", "handoffs_by_source", "cases_by_reporter_type"):
        for province in (*SERVED, OTHER, ALL):
            parts = [cell for cell in counts if cell[0] == province and cell[1] == measure]
            lines.append([*parts, (province, "cases", "total")])
    for measure in ("placements", "exits_by_reason"):
        for province in (*SERVED, OTHER, ALL):
            parts = [c for c in counts if c[:2] == (province, measure) and c[2] != "total"]
            lines.append([*parts, (province, measure, "total")])
    for line in lines:
        assert len(hidden & set(line)) != 1, line
        shown = [int(counts[cell]) for cell in line if cell not in hidden]
        # Nor two `<3` whose sum the rest gives away as 2 (both 1) or 4 (both 2).
        small = [cell for cell in line if counts[cell] == "<3"]
        if len(small) == len(hidden & set(line)) == 2:
            total_cell = line[-1]
            if total_cell not in hidden:
                rest = int(counts[total_cell]) * 2 - sum(shown)
                assert rest not in {2, 4}, line


def test_occupancy_of_the_month_under_way_counts_the_nights_up_to_tonight(
    db: Session, make_user: UserFactory, clock: FrozenClock, runner: FlaskCliRunner
) -> None:
    """On 24 November (the clock), three people in since the 21st of a 4-bed semi-autonomy
    shelter open since the 1st: 3 × 4 nights of 4 × 24 (12.5%), not 3 × 10 of 4 × 30."""
    worker = make_user(provinces=("BS",))
    shelter = new_shelter(
        db, now=rome(11, 1), code="BS-SA-1", kind="semi_autonomy", groups="women", capacity=4
    )
    for _ in range(3):
        stay(db, shelter, worker, arrived=rome(11, 21, 18))
    result = runner.invoke(
        args=["report", "--month", "2026-11", "--province", "BS", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    values = {(r["measure"], r["category"]): r["value"] for r in json.loads(result.output)["rows"]}
    assert values[("occupancy", "semi_autonomy_percent")] == 12.5
    assert values[("placements", "semi_autonomy")] == 3
    assert ("length_of_stay", "median_days") not in values  # nobody has left
    assert values[("exits_by_reason", "total")] == 0
