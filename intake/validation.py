"""Reading a hand-off body (design §4): only an unusable body is refused, never a case for
what it says.

A body is unusable when it is not a JSON object or has no `external_id` Ali can store. Anything
else is kept as well as it can be understood, and each thing that was not understood becomes a
warning (for the sender's answer and the case's timeline): an emergency must not be lost to a
typo, nor to a retry that fails the same way. Fields Ali does not know are ignored silently (a
sender may add its own); `null` means absent.

`parse_case` is the one reading of a case's fields for every channel that sends them as a
body (the webhook, manual entry); `parse_handoff` adds the webhook's `external_id`.
"""

from __future__ import annotations

import functools
import json
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from babel import Locale

from core.phones import InvalidPhone, PhoneHasLetters, parse_phone
from core.provinces import lookup_province
from core.text import LINE_BREAKS_AND_TABS, has_control, remove_controls
from intake.models import AgeBand, Exploitation, Gender, Minor, Need, ReporterType
from routing.models import ContactSafe, Urgency
from routing.places import MatchKind, ProvinceResolution, resolve_municipality, resolve_province

MAX_BODY_BYTES = 64 * 1024
MAX_EXTERNAL_ID = 128
# What a partner's SMS thread keeps; a hand-off's summary is kept whole (the body limit bounds it).
MAX_SUMMARY = 2000
MAX_PLACE = 100  # the longest comune name has 60 characters: longer is no place Ali knows
MAX_PHONE = 40
MAX_ITEMS = 20  # the codes of a list, documented; repeated codes count once
MAX_WARNINGS = 50  # a body full of mistakes gets this many, and one saying there were more
# A sender's clock may run a little ahead of Ali's; beyond this, `received_at` is not used.
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
    """The body is unusable (not a JSON object, no usable `external_id`); `errors` says why."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(f"{len(errors)} validation error(s)")
        self.errors = errors


class WarningCode(StrEnum):
    """What was wrong with a field that was not understood; the value is stored in the case's
    timeline, the message goes to the sender. Neither repeats what was sent (personal data)."""

    NOT_TEXT = "not_text"
    NOT_LIST = "not_list"
    NOT_OBJECT = "not_object"
    SINGLE_ITEM = "single_item"
    CONTROL_CHARACTERS = "control_characters"
    URGENCY_UNKNOWN = "urgency_unknown"
    CODE_STORED_AS_OTHER = "code_stored_as_other"
    CODE_STORED_AS_UNKNOWN = "code_stored_as_unknown"
    CODE_LEFT_OUT = "code_left_out"
    PROVINCE_UNKNOWN = "province_unknown"
    MUNICIPALITY_UNKNOWN = "municipality_unknown"
    MUNICIPALITY_AMBIGUOUS = "municipality_ambiguous"
    PHONE_LETTERS = "phone_letters"
    PHONE_INVALID = "phone_invalid"
    TIME_INVALID = "time_invalid"
    TIME_IN_FUTURE = "time_in_future"
    MORE_WARNINGS = "more_warnings"


WARNING_MESSAGES: Mapping[WarningCode, str] = {
    WarningCode.NOT_TEXT: "is not a string: ignored",
    WarningCode.NOT_LIST: "is not a list: ignored",
    WarningCode.NOT_OBJECT: "is not an object: ignored",
    WarningCode.SINGLE_ITEM: "is a single value, not a list: read as a list of one",
    WarningCode.CONTROL_CHARACTERS: "had control characters or broken characters: removed",
    WarningCode.URGENCY_UNKNOWN: "is not one of emergency, urgent, ordinary: treated as emergency",
    WarningCode.CODE_STORED_AS_OTHER: "is not one of the codes: stored as other",
    WarningCode.CODE_STORED_AS_UNKNOWN: "is not one of the codes: stored as unknown",
    WarningCode.CODE_LEFT_OUT: "is not one of the codes: left out",
    WarningCode.PROVINCE_UNKNOWN: "is not an Italian province (a sigla, a name or an ISTAT "
    "code): not used to route the case",
    WarningCode.MUNICIPALITY_UNKNOWN: "is not an Italian comune: not used to route the case",
    WarningCode.MUNICIPALITY_AMBIGUOUS: "names comuni in more than one province: not used to "
    "route the case (add the sigla, e.g. Castro (BG))",
    WarningCode.PHONE_LETTERS: "has letters: not usable as a phone number, left out",
    WarningCode.PHONE_INVALID: "is not a phone number (an Italian number, or + and the "
    "country code): left out",
    WarningCode.TIME_INVALID: "is not an ISO 8601 date and time with a UTC offset: "
    "the time Ali received the hand-off is used",
    WarningCode.TIME_IN_FUTURE: "is in the future: the time Ali received the hand-off is used",
    WarningCode.MORE_WARNINGS: "more fields were not understood; they are not listed",
}


@dataclass(frozen=True)
class FieldWarning:
    """A field that was not understood, and what Ali did instead (`message`, in English)."""

    field: str  # dotted path: `person.age_band`, `needs[1]`
    code: WarningCode

    @property
    def message(self) -> str:
        return WARNING_MESSAGES[self.code]

    def as_json(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


@dataclass(frozen=True)
class Person:
    gender: Gender | None = None
    age_band: AgeBand | None = None
    minor: Minor | None = None
    nationality: str | None = None  # ISO 3166-1 alpha-2, upper case, or "unknown"
    languages: tuple[str, ...] = ()  # ISO 639-1 / 639-3, lower case


@dataclass(frozen=True)
class CaseFields:
    """What a channel knows of a new case, validated: phone numbers in E.164 (an extension
    after `;ext=`), the province already resolved. Every channel (webhook, partner SMS and
    call, manual entry) fills one."""

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
    """A hand-off of the webhook: the case's fields and the sender's id for it."""

    external_id: str


@dataclass(frozen=True)
class ParsedCase:
    """A case's fields as far as they were understood, and what was not."""

    fields: CaseFields
    warnings: tuple[FieldWarning, ...] = ()


@dataclass(frozen=True)
class ParsedHandoff:
    """A hand-off as far as it was understood, and what was not."""

    fields: HandoffInput
    warnings: tuple[FieldWarning, ...] = ()


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


# --- characters -------------------------------------------------------------------------------


# Controls that are whitespace: trimmed from codes and places without a warning.
_WHITESPACE = "\t\n\r\x0b\x0c"


def without_controls(value: str, *, multiline: bool = False) -> tuple[str, bool]:
    """`value` without control characters (newlines and tabs kept in multi-line text) and
    whether any were removed. PostgreSQL refuses NUL in text: nothing with it goes further."""
    kept = remove_controls(value, LINE_BREAKS_AND_TABS if multiline else "")
    return kept, len(kept) != len(value)


def printable(value: str, *, max_length: int = MAX_SUMMARY) -> str:
    """`value` without control characters (newlines and tabs kept) or lone surrogates, trimmed:
    for free text that must be kept whatever it holds (a partner's SMS), never refused."""
    return without_controls(value, multiline=True)[0].replace("\r", "").strip()[:max_length]


def _key(value: str) -> str:
    """A value as codes and places are looked up: no controls or invisible format characters
    (zero-width space, BOM), odd whitespace (no-break, ideographic) trimmed and single."""
    visible = "".join(c for c in remove_controls(value) if unicodedata.category(c) != "Cf")
    return " ".join(visible.split())


@functools.cache
def _codes_of(enum: type[StrEnum]) -> Mapping[str, StrEnum]:
    """Each code by the ways a person writes it: any case, `_` as a space or a hyphen."""
    index: dict[str, StrEnum] = {}
    for member in enum:
        for spelling in (
            member.value,
            member.value.replace("_", " "),
            member.value.replace("_", "-"),
        ):
            index[spelling.casefold()] = member
    return index


# --- reading the fields -----------------------------------------------------------------------


class _Reader:
    """Reads fields leniently, collecting a warning for each thing it could not understand."""

    def __init__(self) -> None:
        self.warnings: list[FieldWarning] = []

    def warn(self, name: str, code: WarningCode) -> None:
        self.warnings.append(FieldWarning(name, code))

    def string(self, name: str, value: object) -> str | None:
        """A string value; anything else is ignored with a warning."""
        if value is None:
            return None
        if not isinstance(value, str):
            self.warn(name, WarningCode.NOT_TEXT)
            return None
        return value

    def free_text(self, name: str, value: object, *, multiline: bool = False) -> str | None:
        """Text kept as written (trimmed), control characters removed with a warning (line
        breaks and tabs are kept in multi-line text, spaces in one-line text)."""
        raw = self.string(name, value)
        if raw is None:
            return None
        if not multiline:
            # A line break or tab in a one-line field ("Chiari\tBS") separates words.
            raw = "".join(" " if c in _WHITESPACE else c for c in raw)
        kept, removed = without_controls(raw, multiline=multiline)
        if removed:
            self.warn(name, WarningCode.CONTROL_CHARACTERS)
        return kept.strip() or None

    def lookup(self, name: str, value: object) -> str | None:
        """A code, place or number to look up, as `_key` reads it; blank is absent."""
        raw = self.string(name, value)
        if raw is None:
            return None
        if has_control(raw, _WHITESPACE):
            self.warn(name, WarningCode.CONTROL_CHARACTERS)
        return _key(raw) or None

    def choice(self, name: str, value: object, enum: type[E]) -> E | None:
        """The code `value` names; an unknown one is stored as `other` or `unknown` where the
        enumeration has them, else left out, with a warning."""
        key = self.lookup(name, value)
        if key is None:
            return None
        found = _codes_of(enum).get(key.casefold())
        if found is not None:
            return enum(found.value)
        codes = {member.value for member in enum}
        if "other" in codes:
            self.warn(name, WarningCode.CODE_STORED_AS_OTHER)
            return enum("other")
        if UNKNOWN in codes:
            self.warn(name, WarningCode.CODE_STORED_AS_UNKNOWN)
            return enum(UNKNOWN)
        self.warn(name, WarningCode.CODE_LEFT_OUT)
        return None

    def items(self, name: str, value: object) -> list[Any]:
        if value is None:
            return []
        if isinstance(value, str):
            # One code where a list of codes was expected: still what the sender meant.
            self.warn(name, WarningCode.SINGLE_ITEM)
            return [value]
        if not isinstance(value, list):
            self.warn(name, WarningCode.NOT_LIST)
            return []
        return value

    def choices(self, name: str, value: object, enum: type[E]) -> tuple[E, ...]:
        values = self.items(name, value)
        single = isinstance(value, str)
        found = [
            self.choice(name if single else f"{name}[{i}]", item, enum)
            for i, item in enumerate(values)
        ]
        return tuple(dict.fromkeys(item for item in found if item is not None))

    def phone(self, name: str, value: object) -> str | None:
        """E.164 (with `;ext=` and an extension if it has one), or None with a warning."""
        raw = self.lookup(name, value)
        if raw is None:
            return None
        try:
            if len(raw) > MAX_PHONE:
                raise InvalidPhone("too long")
            return parse_phone(raw).stored
        except PhoneHasLetters:
            self.warn(name, WarningCode.PHONE_LETTERS)
        except InvalidPhone:
            self.warn(name, WarningCode.PHONE_INVALID)
        return None

    def instant(self, name: str, value: object, now: datetime) -> datetime | None:
        raw = self.lookup(name, value)
        if raw is None:
            return None
        try:
            parsed = datetime.fromisoformat(raw)
            if parsed.tzinfo is None:
                raise ValueError("no UTC offset")
            at = parsed.astimezone(UTC)
        except (ValueError, OverflowError):
            self.warn(name, WarningCode.TIME_INVALID)
            return None
        if at > now + CLOCK_SKEW:
            self.warn(name, WarningCode.TIME_IN_FUTURE)
            return None
        return at


# --- the body ---------------------------------------------------------------------------------


def parse_case(data: object, *, now: datetime, served: Collection[str]) -> ParsedCase:
    """A case's fields from a body shaped like the hand-off's (design §4), however wrong its
    fields are: each thing not understood is a warning. Raises ValidationFailed only when
    `data` is not a JSON object. `external_id`, if present, is not read here."""
    body = _object(data)
    read = _Reader()
    received_at = read.instant("received_at", body.get("received_at"), now)
    urgency = _urgency(read, body.get("urgency"))
    resolution, municipality, caller_phone = _place(read, body, served)
    fields = CaseFields(
        resolution=resolution,
        received_at=received_at,
        municipality=municipality,
        caller_phone=caller_phone,
        callback_phone=read.phone("callback_phone", body.get("callback_phone")),
        urgency=urgency,
        reporter_type=read.choice("reporter_type", body.get("reporter_type"), ReporterType),
        exploitation=read.choices("exploitation", body.get("exploitation"), Exploitation),
        person=_person(read, body.get("person")),
        needs=read.choices("needs", body.get("needs"), Need),
        # Kept whole, however long: the body's size limit bounds it, and a long account of a
        # person's situation is not a reason to lose its end.
        summary=read.free_text("summary", body.get("summary"), multiline=True),
        contact_safe=read.choice("contact_safe", body.get("contact_safe"), ContactSafe)
        or ContactSafe.UNKNOWN,
    )
    warnings = read.warnings
    if len(warnings) > MAX_WARNINGS:
        warnings = [*warnings[:MAX_WARNINGS], FieldWarning("body", WarningCode.MORE_WARNINGS)]
    return ParsedCase(fields, tuple(warnings))


def parse_handoff(data: object, *, now: datetime, served: Collection[str]) -> ParsedHandoff:
    """A webhook hand-off: `parse_case` and the sender's `external_id`. Raises
    ValidationFailed only for an unusable body: not an object, or an `external_id` that is
    missing, not a string, blank, too long to store or holding control characters."""
    external_id = _external_id(_object(data))
    parsed = parse_case(data, now=now, served=served)
    fields = HandoffInput(external_id=external_id, **_field_values(parsed.fields))
    return ParsedHandoff(fields, parsed.warnings)


def _field_values(fields: CaseFields) -> dict[str, Any]:
    # Shallow on purpose (dataclasses.asdict would turn `person` into a dict).
    return {name: getattr(fields, name) for name in CaseFields.__dataclass_fields__}


def _object(data: object) -> Mapping[str, Any]:
    if not isinstance(data, dict):
        raise ValidationFailed([FieldError("body", "must be a JSON object")])
    return data


def _external_id(body: Mapping[str, Any]) -> str:
    value = body.get("external_id")
    if not isinstance(value, str):
        problem = "is required" if value is None else "must be a string"
    elif has_control(value):
        problem = "must not contain control characters"
    elif not value.strip():
        problem = "must not be blank"
    elif len(value) > MAX_EXTERNAL_ID:
        problem = f"must be at most {MAX_EXTERNAL_ID} characters long"
    else:
        return value
    raise ValidationFailed([FieldError("external_id", problem)])


def _urgency(read: _Reader, value: object) -> Urgency:
    """The urgency; one that is there but not understood counts as emergency (over-alerting
    is the safe side: a typo must not make an emergency wait)."""
    if value is None or (isinstance(value, str) and read.lookup("urgency", value) is None):
        return Urgency.ORDINARY
    key = _key(value).casefold() if isinstance(value, str) else ""
    found = _codes_of(Urgency).get(key)
    if found is not None:
        return Urgency(found.value)
    read.warn("urgency", WarningCode.URGENCY_UNKNOWN)
    return Urgency.EMERGENCY


def _place(
    read: _Reader, body: Mapping[str, Any], served: Collection[str]
) -> tuple[ProvinceResolution, str | None, str | None]:
    """The province by design §5 and the municipality and caller phone to store. A province,
    comune or phone Ali cannot read is left out of routing (never guessed), with a warning:
    the other rules still run, and with nothing left the case is unresolved (coordinators)."""
    province = read.lookup("province", body.get("province"))
    if province is not None and (len(province) > MAX_PLACE or lookup_province(province) is None):
        read.warn("province", WarningCode.PROVINCE_UNKNOWN)
        province = None
    municipality = read.free_text("municipality", body.get("municipality"))
    place = _key(municipality) if municipality is not None else ""
    if province is None and place:
        match = resolve_municipality(place) if len(place) <= MAX_PLACE else None
        if match is None or match.kind is MatchKind.UNKNOWN:
            read.warn("municipality", WarningCode.MUNICIPALITY_UNKNOWN)
        elif match.kind is MatchKind.AMBIGUOUS:
            read.warn("municipality", WarningCode.MUNICIPALITY_AMBIGUOUS)
    caller_phone = read.phone("caller_phone", body.get("caller_phone"))
    resolution = resolve_province(
        served=served,
        province=province,
        municipality=place if len(place) <= MAX_PLACE else None,
        caller_phone=caller_phone,
    )
    return resolution, municipality, caller_phone


def _person(read: _Reader, value: object) -> Person:
    if value is None:
        return Person()
    if not isinstance(value, Mapping):
        read.warn("person", WarningCode.NOT_OBJECT)
        return Person()
    nationality = read.lookup("person.nationality", value.get("nationality"))
    if nationality is not None:
        if nationality.upper() in nationality_codes():
            nationality = nationality.upper()
        else:
            if nationality.casefold() != UNKNOWN:
                read.warn("person.nationality", WarningCode.CODE_STORED_AS_UNKNOWN)
            nationality = UNKNOWN
    languages: list[str] = []
    for i, item in enumerate(read.items("person.languages", value.get("languages"))):
        name = f"person.languages[{i}]"
        code = read.lookup(name, item)
        if code is None:
            continue
        code = code.lower()
        if not (code.isascii() and code.isalpha() and len(code) in {2, 3}) or (
            len(code) == 2 and code not in two_letter_languages()
        ):
            read.warn(name, WarningCode.CODE_LEFT_OUT)
            continue
        languages.append(code)
    return Person(
        gender=read.choice("person.gender", value.get("gender"), Gender),
        age_band=read.choice("person.age_band", value.get("age_band"), AgeBand),
        minor=read.choice("person.minor", value.get("minor"), Minor),
        nationality=nationality,
        languages=tuple(dict.fromkeys(languages)),
    )
