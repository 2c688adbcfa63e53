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

from core.clock import FrozenClock
from core.models import AuditEntry, User
from intake.manual import manual_case_fields
from intake.models import Source
from intake.reports import ALL, OTHER
from intake.services import BroughtBy, open_case
from oncall.models import RotaShift
from routing.models import Case, Channel
from tests.conftest import UserFactory
from tests.intake.cases import SERVED, accept, new_case
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
    return figures


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
        if cell[1] == "time_to_acceptance":
            assert shown == str(int(value)), cell
        elif 0 < value < 3:
            assert shown == "<3", cell
        elif shown != "x":  # hidden so that a `<3` cannot be worked out
            assert shown == str(int(value)), cell
    # The month's big figures stay published; no placement rows before shelters exist.
    assert got[(ALL, "cases", "total")] == "11"
    assert not {m for _p, m, _c in got} & {
        "placements",
        "length_of_stay",
        "occupancy",
        "exits_by_reason",
    }
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
    counts = {cell: v for cell, v in got.items() if cell[1] != "time_to_acceptance"}
    hidden = {cell for cell, v in counts.items() if not v.isdigit()}
    assert hidden  # the month has small counts to protect
    lines = []
    for measure, category in {(m, c) for _p, m, c in counts}:
        lines.append([(p, measure, category) for p in (*SERVED, OTHER, ALL)])
    for measure in ("handoffs_by_channel", "handoffs_by_source", "cases_by_reporter_type"):
        for province in (*SERVED, OTHER, ALL):
            parts = [cell for cell in counts if cell[0] == province and cell[1] == measure]
            lines.append([*parts, (province, "cases", "total")])
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
