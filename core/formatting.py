"""Local time for people: the one parser of wall-clock times and the formatters of dates,
times, durations and phone numbers (also the Jinja filters of every template)."""

# Every instant is UTC until it meets a person: a page, an SMS, a terminal, a typed form or
# CSV cell. Those edges convert here, in Europe/Rome, where every user of Ali lives. Words
# and numbers follow the UI language through Babel ("sab 24 ott", "24,5 h"); zone names are
# the zone's own abbreviations (CET, CEST) in every language, since they label the hour that
# happens twice on the last Sunday of October.

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any

import phonenumbers
from babel import dates as babel_dates
from babel import numbers as babel_numbers

from core.clock import ROME
from core.i18n import current_locale

# Years a rota, a swap or a typed date may name: the zone database and the holiday
# calendar have no meaning for year 1 or 9999, and arithmetic on them overflows.
FIRST_YEAR, LAST_YEAR = 2000, 2100
HOUR = timedelta(hours=1)

# ---------------------------------------------------------------------------------------
# Parsing


class LocalTimeError(ValueError):
    """A date and time that cannot name one instant; the message says what to write."""


class NonexistentLocalTime(LocalTimeError):
    """A wall-clock time skipped when the clocks go forward (02:00-03:00 on spring's day)."""


@dataclass(frozen=True)
class LocalTime:
    """A wall-clock time read in a zone, with every instant it can mean.

    ``occurrences`` has two instants (UTC, first one first) when the wall-clock time happens
    twice at the autumn change and no offset was given, one otherwise.
    """

    wall: datetime
    occurrences: tuple[datetime, ...]

    @property
    def ambiguous(self) -> bool:
        return len(self.occurrences) > 1

    @property
    def instant(self) -> datetime:
        """The first occurrence, the one PEP 495 calls fold=0."""
        return self.occurrences[0]


_OFFSET = r"(?P<offset>Z|[+-]\d{2}:?\d{2})?"
_TIME = r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?"
_ISO = re.compile(
    rf"^(?P<year>\d{{4}})-(?P<month>\d{{1,2}})-(?P<day>\d{{1,2}})(?:T|\s+){_TIME}\s*{_OFFSET}$"
)
_ITALIAN = re.compile(
    rf"^(?P<day>\d{{1,2}})/(?P<month>\d{{1,2}})/(?P<year>\d{{4}})(?:T|\s+){_TIME}\s*{_OFFSET}$"
)


def _offset_of(text: str) -> tzinfo:
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def _format_offset(delta: timedelta | None) -> str:
    minutes = int((delta or timedelta()).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def local_time(wall: datetime, tz: Any = ROME) -> LocalTime:
    """Every instant a naive wall-clock reading names in ``tz``: two on the night the clocks
    go back; NonexistentLocalTime for a reading skipped when they go forward."""
    naive = wall.replace(tzinfo=None, fold=0)
    first = naive.replace(tzinfo=tz, fold=0)
    second = naive.replace(tzinfo=tz, fold=1)
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        raise NonexistentLocalTime(
            f"{naive.isoformat(sep=' ', timespec='minutes')} does not exist in Europe/Rome: "
            "the clocks jump forward that night (02:00 becomes 03:00); write 03:00 or the "
            "time you mean"
        )
    if first.utcoffset() != second.utcoffset():
        return LocalTime(wall=naive, occurrences=(first.astimezone(UTC), second.astimezone(UTC)))
    return LocalTime(wall=naive, occurrences=(first.astimezone(UTC),))


def from_local(naive: datetime, tz: Any = ROME) -> datetime:
    """A naive local datetime typed in a form, as a UTC instant.

    A time in the hour that happens twice (autumn) is its first occurrence, as for rotation
    hand-overs; a time that does not exist (spring) raises NonexistentLocalTime, since any
    guess would start or end a swap an hour away from what was typed.
    """
    return local_time(naive, tz).instant


def parse_local_time(text: str, tz: Any = ROME) -> LocalTime:
    """Read ``2026-10-25T02:30``, ``2026-10-25 02:30``, ``25/10/2026 02:30`` (+ offset).

    Without an offset the time is wall-clock time in ``tz``: a time skipped by the spring
    change raises LocalTimeError; one repeated by the autumn change comes back with both
    occurrences. An offset must be one ``tz`` uses at that wall-clock time (``+01:00`` or
    ``+02:00`` in Rome), which is how the second 02:30 is written; ``Z`` is plain UTC.
    ``24:00`` is the midnight that ends a day.
    """
    stripped = text.strip()
    match = _ISO.match(stripped) or _ITALIAN.match(stripped)
    if match is None:
        raise LocalTimeError(
            f"{stripped!r} is not a date and time; write it as 2026-10-25 14:30 "
            "(or 25/10/2026 14:30)"
        )
    parts = {k: int(v) for k, v in match.groupdict().items() if k != "offset" and v is not None}
    next_day = parts["hour"] == 24 and parts["minute"] == 0 and parts.get("second", 0) == 0
    try:
        wall = datetime(  # noqa: DTZ001 -- a wall-clock reading, the zone is applied below
            parts["year"],
            parts["month"],
            parts["day"],
            0 if next_day else parts["hour"],
            parts["minute"],
            parts.get("second", 0),
        )
    except ValueError:
        raise LocalTimeError(f"{stripped!r} is not a real date and time") from None
    # Year 1 or 9999 cannot even be moved to UTC (OverflowError); no rota lives there.
    if not FIRST_YEAR <= wall.year <= LAST_YEAR:
        raise LocalTimeError(f"{stripped!r}: the year must be between {FIRST_YEAR} and {LAST_YEAR}")
    if next_day:
        wall += timedelta(days=1)
    offset = match.group("offset")
    if offset is None:
        try:
            return local_time(wall, tz)
        except NonexistentLocalTime:
            raise NonexistentLocalTime(
                f"{stripped!r} does not exist in Europe/Rome: the clocks jump forward that "
                "night (02:00 becomes 03:00); write 03:00 or the time you mean"
            ) from None
    instant = wall.replace(tzinfo=_offset_of(offset))
    if offset != "Z" and instant.astimezone(tz).replace(tzinfo=None) != wall:
        used = {_format_offset(wall.replace(tzinfo=tz, fold=fold).utcoffset()) for fold in (0, 1)}
        raise LocalTimeError(
            f"{stripped!r}: {_format_offset(instant.utcoffset())} is not the offset of "
            f"Europe/Rome at that time (it is {' or '.join(sorted(used))})"
        )
    return LocalTime(wall=wall, occurrences=(instant.astimezone(UTC),))


def parse_instant(text: str, tz: Any = ROME) -> datetime:
    """One instant, or LocalTimeError when the wall-clock time happens twice."""
    local = parse_local_time(text, tz)
    if local.ambiguous:
        first, second = (_format_offset(o.astimezone(tz).utcoffset()) for o in local.occurrences)
        stamp = local.wall.isoformat(timespec="minutes")
        raise LocalTimeError(
            f"{text.strip()!r} happens twice in Europe/Rome (the clocks go back that night): "
            f"write {stamp}{first} for the first time or {stamp}{second} for the second"
        )
    return local.instant


# ---------------------------------------------------------------------------------------
# Local days


def local_date(instant: datetime) -> date:
    """The Rome calendar day an instant falls on."""
    return instant.astimezone(ROME).date()


def local_midnight(day: date) -> datetime:
    """The UTC instant at which a Rome calendar day starts (midnight always exists there)."""
    return datetime.combine(day, time(0), tzinfo=ROME).astimezone(UTC)


def is_ambiguous(instant: datetime) -> bool:
    """Whether the local wall-clock reading of an instant also names another instant."""
    local = instant.astimezone(ROME)
    return local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset()


# ---------------------------------------------------------------------------------------
# Formatting


# Pages format hundreds of dates (a busy month has ~200 segments, each with a title):
# Babel's work is cached by value and locale.


@lru_cache(maxsize=8192)
def _babel_date(day: date, pattern: str, locale: str) -> str:
    return babel_dates.format_date(day, pattern, locale=locale)


@lru_cache(maxsize=8192)
def _babel_time(wall: time, locale: str) -> str:
    return babel_dates.format_time(wall, "HH:mm", locale=locale)


def format_day(day: date, pattern: str = "EEE d MMM", locale: str | None = None) -> str:
    """A calendar day in the UI language, e.g. "sab 24 ott" (``pattern`` is Babel's:
    "LLLL yyyy" gives "ottobre 2026")."""
    return _babel_date(day, pattern, locale or current_locale())


def format_clock(value: datetime | time, day: date | None = None, locale: str | None = None) -> str:
    """HH:MM of an instant in Rome (or of a wall-clock ``time``). With ``day``, the midnight
    that ends that day reads 24:00. A reading that happens twice on the autumn change carries
    its zone: 02:30 CEST, then 02:30 CET."""
    language = locale or current_locale()
    if isinstance(value, time):
        return _babel_time(value.replace(tzinfo=None), language)
    local = value.astimezone(ROME)
    if day is not None and local.date() > day:
        return "24:00"
    text = _babel_time(local.time(), language)
    if is_ambiguous(value):
        text += " " + (local.tzname() or "")
    return text


def format_when(
    instant: datetime, date_pattern: str = "EEE d MMM", locale: str | None = None
) -> str:
    """Day and time in Rome, e.g. "sab 24 ott 08:00" (or "24/10 08:00" with "dd/MM")."""
    language = locale or current_locale()
    day = format_day(local_date(instant), date_pattern, language)
    return f"{day} {format_clock(instant, locale=language)}"


def format_duration(length: timedelta, locale: str | None = None) -> str:
    """A length in hours with at most one decimal, in the UI language: "24,5 h", "25 h"."""
    hours = length / HOUR
    number = babel_numbers.format_decimal(hours, "#,##0.#", locale=locale or current_locale())
    return f"{number} h"


def format_stamp(instant: datetime) -> str:
    """An instant as Rome wall-clock time with its zone, "2026-10-25 02:30 CET": for terminal
    output and import errors, the same in every language."""
    local = instant.astimezone(ROME)
    text = babel_dates.format_datetime(local, "yyyy-MM-dd HH:mm", locale="en")
    return f"{text} {local.tzname()}"


def format_phone(e164: str) -> str:
    """+39 333 100 0002: readable at night; a tel: link keeps the E.164 form."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


# Registered on the Jinja environment by core.i18n: {{ shift.start|when }}, {{ day|day('EEE') }},
# {{ piece.start|clock(row.day) }}, {{ shift.duration|duration }}, {{ user.phone|phone }}.
JINJA_FILTERS: dict[str, Callable[..., Any]] = {
    "day": format_day,
    "clock": format_clock,
    "when": format_when,
    "duration": format_duration,
    "phone": format_phone,
    "local_date": local_date,
}
