"""The funder's report: figures of a Europe/Rome month by province, small counts suppressed.

Each measure is an entry of a registry: a code, its category codes and a provider, a function
that counts from the database. The case measures are provided here; the placement measures
(`placements`, `length_of_stay`, `occupancy`, `exits_by_reason`) are declared with no provider
and give no rows until the shelters feature registers one with `provide_measure`.
Suppression (`intake.suppression`) runs over every count of the month at once, so a total
shared by several measures is hidden or shown the same everywhere.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from statistics import median
from typing import Literal

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import ROME
from core.formatting import local_midnight
from intake.models import Exploitation, ReporterType, Source
from intake.suppression import SMALL, Equation, suppress
from routing.models import Case, Channel, Dispatch

ALL = "ALL"  # project-wide rows
OTHER = "OTHER"  # cases of no served province: unresolved or out of area
TOTAL = "total"
SMALL_TEXT = "<3"  # a count of 1 or 2
HIDDEN_TEXT = "x"  # a count hidden so that a `<3` cannot be worked out from it
NO_SOURCE = "none"  # cases from the phone line, SMS or manual entry
UNKNOWN = "unknown"
MONTH = re.compile(r"(\d{4})-(\d{2})")
CSV_HEADER = ("month", "province", "measure", "category", "value")

Kind = Literal["count", "statistic"]


class BadReportRequest(ValueError):
    """A month or province the report cannot be made for."""


@dataclass(frozen=True)
class Period:
    """A Europe/Rome calendar month as a half-open UTC range."""

    month: date  # its first day
    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        return f"{self.month:%Y-%m}"


def parse_month(text: str) -> Period:
    matched = MONTH.fullmatch(text.strip())
    if matched is None or not 1 <= int(matched[2]) <= 12 or int(matched[1]) < 2000:
        raise BadReportRequest(text)
    first = date(int(matched[1]), int(matched[2]), 1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return Period(month=first, start=local_midnight(first), end=local_midnight(following))


@dataclass(frozen=True)
class Tally:
    """A provider's count of people or events in one province (a served sigla or OTHER)."""

    province: str
    category: str
    count: int


@dataclass(frozen=True)
class Statistic:
    """A provider's figure that is not a count (a median, a percentage) with the number of
    cases it is drawn from; published only from 3 cases up."""

    province: str  # a served sigla, OTHER or ALL
    category: str
    value: float
    basis: int


@dataclass(frozen=True)
class Figures:
    tallies: list[Tally] = field(default_factory=list)
    statistics: list[Statistic] = field(default_factory=list)


# A provider counts one measure of a month; `provinces` is the served set, in order.
Provider = Callable[[Session, Period, Sequence[str]], Figures]


@dataclass(frozen=True)
class Measure:
    code: str
    categories: tuple[str, ...]  # the fixed codes, always listed (zeros shown); others appended
    kind: Kind = "count"
    # The categories of one case add up to the measure's total of `cases` (one category per
    # case); False for several categories per case (exploitation types).
    partition: bool = False
    total_of: str | None = None  # the measure whose `total` these categories add up to


@dataclass(frozen=True)
class Row:
    month: str
    province: str
    measure: str
    category: str
    value: str  # a number with `.` for decimals, `<3` or `x`

    @property
    def number(self) -> float | None:
        try:
            return float(self.value)
        except ValueError:
            return None


@dataclass(frozen=True)
class Report:
    period: Period
    provinces: tuple[str, ...]  # the province rows, ALL last
    rows: list[Row]

    def measures(self) -> list[str]:
        return list(dict.fromkeys(row.measure for row in self.rows))


# --- the registry ----------------------------------------------------------------------------

CASE_MEASURES = (
    Measure("cases", (TOTAL,)),
    Measure(
        "handoffs_by_channel", tuple(c.value for c in Channel), partition=True, total_of="cases"
    ),
    Measure("handoffs_by_source", (NO_SOURCE,), partition=True, total_of="cases"),
    Measure(
        "cases_by_reporter_type",
        (*(r.value for r in ReporterType), UNKNOWN),
        partition=True,
        total_of="cases",
    ),
    Measure("cases_by_exploitation", tuple(e.value for e in Exploitation)),
    Measure("time_to_acceptance", ("median_minutes", "p90_minutes"), kind="statistic"),
    Measure("unanswered", (TOTAL,)),
)
EXIT_REASONS = (
    "moved_residential",
    "moved_semi_autonomy",
    "transferred_other_project",
    "left_voluntarily",
    "returned_home",
    "asylum_system",
    "other",
)
SHELTER_KINDS = ("pronta_accoglienza", "residential", "semi_autonomy")
PLACEMENT_MEASURES = (
    Measure("placements", (*SHELTER_KINDS, TOTAL), partition=True, total_of="placements"),
    Measure("length_of_stay", ("median_days", "p90_days"), kind="statistic"),
    Measure("occupancy", tuple(f"{kind}_percent" for kind in SHELTER_KINDS), kind="statistic"),
    Measure("exits_by_reason", (*EXIT_REASONS, TOTAL), partition=True, total_of="exits_by_reason"),
)
MEASURES = {m.code: m for m in (*CASE_MEASURES, *PLACEMENT_MEASURES)}
PROVIDERS = "ali.report_providers"


def provide_measure(app: Flask, code: str, provider: Provider) -> None:
    """Plug in the function that counts a declared measure (the shelters feature calls this
    for the placement measures)."""
    if code not in MEASURES:
        raise KeyError(code)
    app.extensions.setdefault(PROVIDERS, {})[code] = provider


def init_app(app: Flask) -> None:
    providers = app.extensions.setdefault(PROVIDERS, {})
    for code, provider in CASE_PROVIDERS.items():
        providers.setdefault(code, provider)


def registered_providers() -> dict[str, Provider]:
    found: dict[str, Provider] = current_app.extensions.get(PROVIDERS, {})
    return found


# --- the case measures -----------------------------------------------------------------------


def _cases_of(session: Session, period: Period) -> list[tuple[Case, str | None, Dispatch | None]]:
    rows = session.execute(
        select(Case, Source.name, Dispatch)
        .outerjoin(Source, Source.id == Case.source_id)
        .outerjoin(Dispatch, Dispatch.case_id == Case.id)
        .where(Case.created_at >= period.start, Case.created_at < period.end)
        .order_by(Case.id)
    ).all()
    return [(case, source, dispatch) for case, source, dispatch in rows]


def _province_row(case: Case, provinces: Sequence[str]) -> str:
    return case.province if case.province and case.province in provinces else OTHER


def _tally(
    session: Session, period: Period, provinces: Sequence[str], key: Callable[..., Iterable[str]]
) -> Figures:
    counted: Counter[tuple[str, str]] = Counter()
    for case, source, dispatch in _cases_of(session, period):
        for category in key(case, source, dispatch):
            counted[(_province_row(case, provinces), category)] += 1
    return Figures(tallies=[Tally(p, c, n) for (p, c), n in sorted(counted.items())])


def _known(value: str | None, codes: Iterable[str]) -> str:
    return value if value in set(codes) else UNKNOWN


def cases_total(session: Session, period: Period, provinces: Sequence[str]) -> Figures:
    return _tally(session, period, provinces, lambda case, source, dispatch: [TOTAL])


def by_channel(session: Session, period: Period, provinces: Sequence[str]) -> Figures:
    return _tally(session, period, provinces, lambda case, source, dispatch: [case.channel.value])


def by_source(session: Session, period: Period, provinces: Sequence[str]) -> Figures:
    return _tally(session, period, provinces, lambda case, source, dispatch: [source or NO_SOURCE])


def by_reporter_type(session: Session, period: Period, provinces: Sequence[str]) -> Figures:
    codes = [r.value for r in ReporterType]
    return _tally(
        session, period, provinces, lambda case, s, d: [_known(case.reporter_type, codes)]
    )


def by_exploitation(session: Session, period: Period, provinces: Sequence[str]) -> Figures:
    # A case may name several types: each is counted once; none named counts as unknown.
    return _tally(
        session,
        period,
        provinces,
        lambda case, s, d: sorted(set(case.exploitation or [Exploitation.UNKNOWN.value])),
    )


def unanswered(session: Session, period: Period, provinces: Sequence[str]) -> Figures:
    """Cases whose escalation used up every step, even if somebody took them later."""
    return _tally(
        session,
        period,
        provinces,
        lambda case, s, dispatch: [TOTAL] if dispatch and dispatch.exhausted_at else [],
    )


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile: the smallest value with `share` of the values at or below."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def time_to_acceptance(session: Session, period: Period, provinces: Sequence[str]) -> Figures:
    """Minutes from the case's opening in Ali to its acceptance, for the month's cases
    accepted by now."""
    minutes: dict[str, list[float]] = defaultdict(list)
    for case, _source, _dispatch in _cases_of(session, period):
        if case.accepted_at is None:
            continue
        waited = (case.accepted_at - case.created_at).total_seconds() / 60
        minutes[_province_row(case, provinces)].append(waited)
        minutes[ALL].append(waited)
    statistics = []
    for province, values in minutes.items():
        statistics.append(Statistic(province, "median_minutes", median(values), len(values)))
        statistics.append(Statistic(province, "p90_minutes", percentile(values, 0.9), len(values)))
    return Figures(statistics=statistics)


CASE_PROVIDERS: dict[str, Provider] = {
    "cases": cases_total,
    "handoffs_by_channel": by_channel,
    "handoffs_by_source": by_source,
    "cases_by_reporter_type": by_reporter_type,
    "cases_by_exploitation": by_exploitation,
    "time_to_acceptance": time_to_acceptance,
    "unanswered": unanswered,
}


# --- assembling and suppressing ---------------------------------------------------------------

Cell = tuple[str, str, str]  # province, measure, category


def _number(value: float) -> str:
    rounded = round(value, 1)
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:.1f}"


def build_report(
    session: Session,
    period: Period,
    served: Sequence[str],
    providers: dict[str, Provider],
    *,
    province: str | None = None,
) -> Report:
    """Every figure of the month, counts suppressed over the whole table, then cut to one
    province if asked (the cut cannot undo the protection of the whole)."""
    provinces = (*served, OTHER)
    counts, statistics, order = _collect(session, period, served, providers)
    equations = _equations(counts, provinces)
    primary, secondary = suppress(counts, equations)  # type: ignore[arg-type]
    shown = (*provinces, ALL) if province is None else (province,)
    rows: list[Row] = []
    for code, categories in order:
        for where in shown:
            for category in categories:
                cell = (where, code, category)
                if MEASURES[code].kind == "statistic":
                    found = statistics.get(cell)
                    if found is None:
                        continue
                    text = _number(found.value) if found.basis >= SMALL else SMALL_TEXT
                elif cell in primary:
                    text = SMALL_TEXT
                elif cell in secondary:
                    text = HIDDEN_TEXT
                else:
                    text = str(counts[cell])
                rows.append(Row(period.label, where, code, category, text))
    return Report(period=period, provinces=shown, rows=rows)


def _collect(
    session: Session, period: Period, served: Sequence[str], providers: dict[str, Provider]
) -> tuple[dict[Cell, int], dict[Cell, Statistic], list[tuple[str, list[str]]]]:
    provinces = (*served, OTHER)
    counts: dict[Cell, int] = {}
    statistics: dict[Cell, Statistic] = {}
    order: list[tuple[str, list[str]]] = []
    for measure in MEASURES.values():
        provider = providers.get(measure.code)
        if provider is None:
            continue  # a declared measure nobody provides yet: no rows
        figures = provider(session, period, served)
        categories = list(measure.categories)
        seen = [t.category for t in figures.tallies] + [s.category for s in figures.statistics]
        categories += sorted(set(seen) - set(categories))
        order.append((measure.code, categories))
        if measure.kind == "statistic":
            for stat in figures.statistics:
                statistics[(stat.province, measure.code, stat.category)] = stat
            continue
        for where in provinces:
            for category in categories:
                counts[(where, measure.code, category)] = 0
        for tally in figures.tallies:
            counts[(tally.province, measure.code, tally.category)] += tally.count
        for category in categories:
            counts[(ALL, measure.code, category)] = sum(
                counts[(p, measure.code, category)] for p in provinces
            )
    return counts, statistics, order


def _equations(counts: dict[Cell, int], provinces: Sequence[str]) -> list[Equation]:
    """What ties the counts: each ALL is the sum of its provinces; the categories of a
    partition add up to their total, in every province and in ALL."""
    found: list[Equation] = []
    by_measure: dict[str, set[str]] = defaultdict(set)
    for _where, code, category in counts:
        by_measure[code].add(category)
    for code, categories in by_measure.items():
        for category in sorted(categories):
            found.append(
                Equation((ALL, code, category), tuple((p, code, category) for p in provinces))
            )
        measure = MEASURES[code]
        if measure.partition and measure.total_of:
            parts = sorted(c for c in categories if not (code == measure.total_of and c == TOTAL))
            for where in (*provinces, ALL):
                total: Hashable = (where, measure.total_of, TOTAL)
                if total in counts:
                    found.append(Equation(total, tuple((where, code, c) for c in parts)))
    return found


def report_for(
    session: Session, month: str, served: Sequence[str], province: str | None = None
) -> Report:
    """The report of the app's registered measures (a view or command calls this)."""
    period = parse_month(month)
    if province is not None:
        province = province.strip().upper()
        if province not in (*served, OTHER, ALL):
            raise BadReportRequest(province)
    return build_report(session, period, served, registered_providers(), province=province)


# --- output ----------------------------------------------------------------------------------


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for row in report.rows:
        writer.writerow((row.month, row.province, row.measure, row.category, row.value))
    return out.getvalue()


def _json_value(text: str) -> int | float | str:
    if text in (SMALL_TEXT, HIDDEN_TEXT):
        return text
    number = float(text)
    return int(number) if number == int(number) else number


def to_json(report: Report) -> str:
    rows = [
        {
            "month": row.month,
            "province": row.province,
            "measure": row.measure,
            "category": row.category,
            "value": _json_value(row.value),
        }
        for row in report.rows
    ]
    return json.dumps({"month": report.period.label, "rows": rows}, ensure_ascii=False, indent=1)


def month_of(instant: datetime) -> str:
    return f"{instant.astimezone(ROME):%Y-%m}"
