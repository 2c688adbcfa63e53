"""Local time for people: the parser of typed times and the formatters, in both languages."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from flask import Flask, render_template_string
from hypothesis import given
from hypothesis import strategies as st

from core.clock import ROME
from core.formatting import (
    LocalTimeError,
    NonexistentLocalTime,
    format_clock,
    format_day,
    format_duration,
    format_phone,
    format_stamp,
    format_when,
    from_local,
    is_ambiguous,
    local_date,
    local_midnight,
    parse_instant,
    parse_local_time,
)

# The autumn change of 2026: 03:00 CEST becomes 02:00 CET, so 02:30 happens twice.
FIRST_0230 = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
SECOND_0230 = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET


# --- parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["2026-11-24T11:00", "2026-11-24 11:00", "24/11/2026 11:00", " 2026-11-24T11:00:00 "],
)
def test_a_typed_time_is_rome_wall_clock_time(text: str) -> None:
    assert parse_instant(text) == datetime(2026, 11, 24, 10, tzinfo=UTC)


def test_24_00_is_the_midnight_that_ends_the_day() -> None:
    assert parse_instant("2026-11-24 24:00") == datetime(2026, 11, 24, 23, tzinfo=UTC)


def test_a_time_of_the_repeated_hour_has_two_instants_unless_an_offset_says_which() -> None:
    local = parse_local_time("2026-10-25T02:30")
    assert local.ambiguous
    assert local.occurrences == (FIRST_0230, SECOND_0230)
    assert parse_instant("2026-10-25T02:30+02:00") == FIRST_0230
    assert parse_instant("2026-10-25T02:30+01:00") == SECOND_0230
    with pytest.raises(LocalTimeError, match=r"2026-10-25T02:30\+02:00 for the first"):
        parse_instant("2026-10-25T02:30")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2027-03-28 02:30", "does not exist in Europe/Rome"),
        ("2026-10-25T02:30+05:00", "is not the offset of Europe/Rome"),
        ("2026-02-30 10:00", "is not a real date and time"),
        ("0001-01-01T00:30", "the year must be between 2000 and 2100"),
        ("tomorrow", "write it as 2026-10-25 14:30"),
    ],
)
def test_a_time_that_names_no_instant_says_what_to_write(text: str, message: str) -> None:
    with pytest.raises(LocalTimeError, match=message):
        parse_instant(text)


def test_a_form_time_in_the_repeated_hour_is_the_first_and_a_skipped_one_is_refused() -> None:
    assert from_local(datetime(2026, 10, 25, 2, 30)) == FIRST_0230  # noqa: DTZ001
    with pytest.raises(NonexistentLocalTime):
        from_local(datetime(2027, 3, 28, 2, 30))  # noqa: DTZ001


instants = st.datetimes(
    min_value=datetime(2000, 1, 2),  # noqa: DTZ001 -- bounds of a naive strategy
    max_value=datetime(2100, 12, 30),  # noqa: DTZ001
    timezones=st.just(UTC),
).map(lambda at: at.replace(microsecond=0))


@given(instants)
def test_what_is_written_with_its_offset_reads_back_as_the_same_instant(at: datetime) -> None:
    local = at.astimezone(ROME)
    assert parse_instant(local.isoformat()) == at
    if not is_ambiguous(at):
        assert parse_instant(local.replace(tzinfo=None).isoformat()) == at


# --- formatting -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "italian", "english"),
    [
        (24, "24 h", "24 h"),
        (24.5, "24,5 h", "24.5 h"),
        (25, "25 h", "25 h"),
        (26 + 53 / 60, "26,9 h", "26.9 h"),  # a gap from "now": one decimal is enough
    ],
)
def test_durations_use_the_decimal_mark_of_the_language(
    hours: float, italian: str, english: str
) -> None:
    assert format_duration(timedelta(hours=hours), "it") == italian
    assert format_duration(timedelta(hours=hours), "en") == english


def test_days_and_times_are_in_the_language_and_in_rome() -> None:
    at = datetime(2026, 10, 24, 6, tzinfo=UTC)  # 08:00 CEST
    assert format_when(at, locale="it") == "sab 24 ott 08:00"
    assert format_when(at, locale="en") == "Sat 24 Oct 08:00"
    assert format_when(at, "dd/MM", locale="it") == "24/10 08:00"
    assert format_day(date(2026, 10, 1), "LLLL yyyy", locale="it") == "ottobre 2026"
    assert format_clock(time(8, 0), locale="it") == "08:00"


def test_the_repeated_hour_carries_its_zone_and_the_end_of_a_day_reads_24_00() -> None:
    assert format_clock(FIRST_0230, locale="it") == "02:30 CEST"
    assert format_clock(SECOND_0230, locale="en") == "02:30 CET"
    day = date(2026, 11, 24)
    assert format_clock(local_midnight(day + timedelta(days=1)), day, locale="it") == "24:00"
    assert local_date(local_midnight(day)) == day
    assert format_stamp(SECOND_0230) == "2026-10-25 02:30 CET"


def test_phones_are_grouped_for_reading() -> None:
    assert format_phone("+393331000002") == "+39 333 100 0002"
    assert format_phone("not a phone") == "not a phone"


def test_templates_have_the_formatters_as_filters(app: Flask) -> None:
    with app.test_request_context():
        html = render_template_string(
            "{{ at|when }} · {{ length|duration }} · {{ phone|phone }} · {{ day|day('EEE') }}",
            at=datetime(2026, 10, 24, 6, tzinfo=UTC),
            length=timedelta(hours=24.5),
            phone="+393331000002",
            day=date(2026, 10, 24),
        )
    assert html == "sab 24 ott 08:00 · 24,5 h · +39 333 100 0002 · sab"
