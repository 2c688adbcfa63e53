"""Validation of a hand-off body (design §4): every problem found is reported, all at once.

Strict on types and codes, tolerant of fields it does not know: the body is another system's
contract, and a sender adding a field of its own must not lose a case. `null` means absent.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from babel import Locale

from core.phones import InvalidPhone, normalise_phone
from intake.models import AgeBand, Exploitation, Gender, Minor, Need, ReporterType
from routing.models import ContactSafe, Urgency
from routing.places import InvalidProvinceError, ProvinceResolution, resolve_province

MAX_BODY_BYTES = 64 * 1024
MAX_EXTERNAL_ID = 128
MAX_SUMMARY = 2000
MAX_PLACE = 100  # the longest comune name has 60 characters
MAX_PHONE = 40
MAX_ITEMS = 20
# A sender's clock may run a little ahead of Ali's; beyond this, `received_at` is an error.
CLOCK_SKEW = timedelta(minutes=5)
UNKNOWN = "unknown"
# Codes CLDR lists among territories that are not countries a person is a national of.
_NOT_NATIONALITIES = frozenset(
    {"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "XA", "XB", "ZZ"}
)
E = TypeVar("E", bound=StrEnum)


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class ValidationFailed(ValueError):
    """The body breaks the contract; `errors` lists every problem."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(f"{len(errors)} validation error(s)")
        self.errors = errors


@dataclass(frozen=True)
class Person:
    gender: Gender | None = None
    age_band: AgeBand | None = None
    minor: Minor | None = None
    nationality: str | None = None  # ISO 3166-1 alpha-2, upper case, or "unknown"
    languages: tuple[str, ...] = ()  # ISO 639-1 / 639-3, lower case


@dataclass(frozen=True)
class CaseFields:
    """What a channel knows of a new case, validated: phone numbers in E.164, the province
    already resolved. Every channel (webhook, partner SMS and call, manual entry) fills one."""

    resolution: ProvinceResolution
    received_at: datetime | None = None
    municipality: str | None = None
    caller_phone: str | None = None
    callback_phone: str | None = None
    urgency: Urgency = Urgency.ORDINARY
    reporter_type: ReporterType | None = None
    exploitation: tuple[Exploitation, ...] = ()
    person: Person = field(default_factory=Person)
    needs: tuple[Need, ...] = ()
    summary: str | None = None
    contact_safe: ContactSafe = ContactSafe.UNKNOWN

    @property
    def personal_fields(self) -> list[str]:
        """Names of the personal-data fields present, for the audit entry (never values)."""
        present = {
            "municipality": self.municipality,
            "caller_phone": self.caller_phone,
            "callback_phone": self.callback_phone,
            "summary": self.summary,
            "person": self.person != Person() or None,
        }
        return [name for name, value in present.items() if value]


@dataclass(frozen=True, kw_only=True)
class HandoffInput(CaseFields):
    """A valid hand-off of the webhook: the case's fields and the sender's id for it."""

    external_id: str


@functools.cache
def nationality_codes() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes (CLDR's territories, Kosovo's XK included)."""
    codes = (str(code) for code in Locale("en").territories)
    return frozenset(
        code
        for code in codes
        if len(code) == 2 and code.isalpha() and code not in _NOT_NATIONALITIES
    )


@functools.cache
def two_letter_languages() -> frozenset[str]:
    """ISO 639-1 codes as CLDR knows them; three-letter (639-3) codes are checked for shape."""
    return frozenset(code for code in map(str, Locale("en").languages) if len(code) == 2)


def parse_body(raw: bytes) -> object:
    """The JSON value of a body; a body that is not UTF-8 JSON is one error on `body`."""
    try:
        text = raw.decode("utf-8")
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        # UnicodeDecodeError and JSONDecodeError are ValueErrors, and so is an integer too long
        # to convert; a deeply nested array ends in RecursionError.
        raise ValidationFailed([FieldError("body", "is not a JSON document")]) from None


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


class _Checker:
    """Collects errors while reading fields, so one pass reports them all."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def error(self, name: str, message: str) -> None:
        self.errors.append(FieldError(name, message))

    def text(
        self, name: str, value: object, *, max_length: int, multiline: bool = False
    ) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            self.error(name, "must be a string")
            return None
        if len(value) > max_length:
            self.error(name, f"must be at most {max_length} characters long")
            return None
        if not _is_text(value, multiline=multiline):
            self.error(name, "contains characters that are not text")
            return None
        return value if value.strip() else None

    def choice(self, name: str, value: object, enum: type[E], *, optional: bool = True) -> E | None:
        if value is None and optional:
            return None
        if isinstance(value, str):
            try:
                return enum(value)
            except ValueError:
                pass
        allowed = ", ".join(member.value for member in enum)
        self.error(name, f"must be one of: {allowed}")
        return None

    def items(self, name: str, value: object) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(name, "must be a list")
            return []
        if len(value) > MAX_ITEMS:
            self.error(name, f"must have at most {MAX_ITEMS} items")
            return []
        return value

    def choices(self, name: str, value: object, enum: type[E]) -> tuple[E, ...]:
        found = [
            self.choice(f"{name}[{i}]", item, enum, optional=False)
            for i, item in enumerate(self.items(name, value))
        ]
        return tuple(dict.fromkeys(item for item in found if item is not None))

    def phone(self, name: str, value: object) -> str | None:
        raw = self.text(name, value, max_length=MAX_PHONE)
        if raw is None:
            return None
        try:
            return normalise_phone(raw)
        except InvalidPhone:
            self.error(name, "is not a phone number (an Italian number, or + and the country code)")
            return None

    def instant(self, name: str, value: object, now: datetime) -> datetime | None:
        raw = self.text(name, value, max_length=40)
        if raw is None:
            return None
        try:
            parsed = datetime.fromisoformat(raw)
            if parsed.tzinfo is None:
                self.error(name, "needs a UTC offset (e.g. 2026-11-24T10:00:00+01:00)")
                return None
            at = parsed.astimezone(UTC)
        except (ValueError, OverflowError):
            self.error(name, "is not an ISO 8601 date and time")
            return None
        if at > now + CLOCK_SKEW:
            self.error(name, "is in the future")
            return None
        return at


def printable(value: str, *, max_length: int = MAX_SUMMARY) -> str:
    """`value` without control characters (newlines and tabs kept) or lone surrogates, trimmed:
    for free text that must be kept whatever it holds (a partner's SMS), never refused."""
    kept = "".join(
        c
        for c in value
        if c in "\n\t" or not (ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF)
    )
    return kept.strip()[:max_length]


def _is_text(value: str, *, multiline: bool) -> bool:
    """No control characters (newlines and tabs allowed in multi-line text), no lone surrogates."""
    allowed = "\n\r\t" if multiline else ""
    if any((ord(c) < 32 or ord(c) == 127) and c not in allowed for c in value):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def validate_handoff(data: object, *, now: datetime, served: Collection[str]) -> HandoffInput:
    """A `HandoffInput` from the parsed body, or `ValidationFailed` with every problem."""
    if not isinstance(data, dict):
        raise ValidationFailed([FieldError("body", "must be a JSON object")])
    check = _Checker()

    external_id = None
    if data.get("external_id") is None:
        check.error("external_id", "is required")
    else:
        known = len(check.errors)
        external_id = check.text("external_id", data["external_id"], max_length=MAX_EXTERNAL_ID)
        if external_id is None and len(check.errors) == known:
            check.error("external_id", "must not be blank")

    received_at = check.instant("received_at", data.get("received_at"), now)
    province = check.text("province", data.get("province"), max_length=MAX_PLACE)
    municipality = check.text("municipality", data.get("municipality"), max_length=MAX_PLACE)
    caller_phone = check.phone("caller_phone", data.get("caller_phone"))
    callback_phone = check.phone("callback_phone", data.get("callback_phone"))
    urgency = check.choice("urgency", data.get("urgency"), Urgency) or Urgency.ORDINARY
    reporter_type = check.choice("reporter_type", data.get("reporter_type"), ReporterType)
    exploitation = check.choices("exploitation", data.get("exploitation"), Exploitation)
    person = _person(check, data.get("person"))
    needs = check.choices("needs", data.get("needs"), Need)
    summary = check.text("summary", data.get("summary"), max_length=MAX_SUMMARY, multiline=True)

    resolution = None
    try:
        resolution = resolve_province(
            served=served, province=province, municipality=municipality, caller_phone=caller_phone
        )
    except InvalidProvinceError:
        check.error("province", "is not an Italian province (a sigla, a name or an ISTAT code)")

    if check.errors or external_id is None or resolution is None:
        raise ValidationFailed(check.errors)
    return HandoffInput(
        external_id=external_id,
        resolution=resolution,
        received_at=received_at,
        municipality=municipality,
        caller_phone=caller_phone,
        callback_phone=callback_phone,
        urgency=urgency,
        reporter_type=reporter_type,
        exploitation=exploitation,
        person=person,
        needs=needs,
        summary=summary,
    )


def _person(check: _Checker, value: object) -> Person:
    if value is None:
        return Person()
    if not isinstance(value, Mapping):
        check.error("person", "must be an object")
        return Person()
    nationality = check.text(
        "person.nationality", value.get("nationality"), max_length=len(UNKNOWN)
    )
    if nationality is not None:
        if nationality.lower() == UNKNOWN:
            nationality = UNKNOWN
        elif nationality.upper() in nationality_codes():
            nationality = nationality.upper()
        else:
            check.error(
                "person.nationality", "must be an ISO 3166-1 alpha-2 country code or unknown"
            )
            nationality = None
    languages: list[str] = []
    for i, item in enumerate(check.items("person.languages", value.get("languages"))):
        name = f"person.languages[{i}]"
        if not isinstance(item, str):
            check.error(name, "must be a string")
            continue
        code = item.lower()
        if not (code.isascii() and code.isalpha() and len(code) in (2, 3)) or (
            len(code) == 2 and code not in two_letter_languages()
        ):
            check.error(name, "must be an ISO 639-1 or ISO 639-3 language code")
            continue
        languages.append(code)
    return Person(
        gender=check.choice("person.gender", value.get("gender"), Gender),
        age_band=check.choice("person.age_band", value.get("age_band"), AgeBand),
        minor=check.choice("person.minor", value.get("minor"), Minor),
        nationality=nationality,
        languages=tuple(dict.fromkeys(languages)),
    )
