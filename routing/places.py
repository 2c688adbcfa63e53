"""Which province a case belongs to: comuni (ISTAT), landline area codes and the §5 rules."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

import phonenumbers

from core.provinces import lookup_province, normalise_name, reference_rows

log = logging.getLogger(__name__)

# The geocoder still names a few towns that have since merged into a new comune; these map
# its (normalised) description to the comune's current ISTAT name. "Repubblica di San Marino"
# and "Città del Vaticano" are not Italian comuni and rightly resolve to nothing.
GEOCODER_TOWNS: Mapping[str, str] = MappingProxyType(
    {
        "porretta terme": "Alto Reno Terme",  # 0534, merged in 2016 (BO)
        "rossano": "Corigliano-Rossano",  # 0983, merged in 2018 (CS)
    }
)

_SLASH = re.compile(r"\s*/\s*")


@dataclass(frozen=True)
class Municipality:
    istat_code: str  # six digits, e.g. "098047"
    name: str  # the Italian name
    province: str  # sigla
    other_name: str | None = None  # official name in a minority language ("Bozen")


class MatchKind(StrEnum):
    FOUND = "found"
    AMBIGUOUS = "ambiguous"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class MunicipalityMatch:
    kind: MatchKind
    candidates: tuple[Municipality, ...] = ()

    @property
    def provinces(self) -> tuple[str, ...]:
        """The distinct siglas of the candidates, sorted: one when found, two or more when not."""
        return tuple(sorted({municipality.province for municipality in self.candidates}))

    @property
    def sigla(self) -> str | None:
        return self.provinces[0] if self.kind is MatchKind.FOUND else None


UNKNOWN = MunicipalityMatch(MatchKind.UNKNOWN)


def _names(municipality: Municipality) -> set[str]:
    """Every spelling a comune is found by: Italian, other language, and both as ISTAT joins them.

    ISTAT writes "Bolzano/Bozen" for Alto Adige and "Duino Aurisina-Devin Nabrežina" elsewhere.
    """
    names = {municipality.name}
    if municipality.other_name:
        names |= {
            municipality.other_name,
            f"{municipality.name}/{municipality.other_name}",
            f"{municipality.name}-{municipality.other_name}",
        }
    return {normalise_name(name) for name in names}


@functools.cache
def municipalities_by_name() -> Mapping[str, tuple[Municipality, ...]]:
    """Comuni by normalised name; a key with comuni in several provinces is ambiguous."""
    index: dict[str, list[Municipality]] = {}
    for row in reference_rows("routing.data", "comuni.csv"):
        municipality = Municipality(
            istat_code=row["istat_code"],
            name=row["name"],
            province=row["province"],
            other_name=row["other_name"] or None,
        )
        for key in _names(municipality):
            index.setdefault(key, []).append(municipality)
    return MappingProxyType({key: tuple(found) for key, found in index.items()})


def _match(candidates: tuple[Municipality, ...]) -> MunicipalityMatch:
    if not candidates:
        return UNKNOWN
    if len({municipality.province for municipality in candidates}) == 1:
        return MunicipalityMatch(MatchKind.FOUND, candidates)
    return MunicipalityMatch(MatchKind.AMBIGUOUS, candidates)


def resolve_municipality(text: str) -> MunicipalityMatch:
    """The comune a name designates: found (one province), ambiguous (several) or unknown.

    Matching ignores case, accents, apostrophes, hyphens and dots ("SANT’ANGELO LODIGIANO",
    "sant angelo lodigiano"); a name shared by comuni in different provinces ("Castro", BG and
    LE) is ambiguous unless a sigla in brackets says which ("Castro (BG)"). Never raises.
    """
    by_name = municipalities_by_name()
    key = _SLASH.sub("/", normalise_name(text))
    if key in by_name:
        return _match(by_name[key])
    qualified = _split_sigla(text)
    if qualified:
        name, sigla = qualified
        name_key = _SLASH.sub("/", normalise_name(name))
        return _match(tuple(m for m in by_name.get(name_key, ()) if m.province == sigla))
    return UNKNOWN


def _split_sigla(text: str) -> tuple[str, str] | None:
    """("Castro", "BG") from "Castro (BG)", the usual way to say which same-named comune.

    Plain string operations rather than a regular expression: the text comes from outside and
    a backtracking pattern would be quadratic on long runs of spaces.
    """
    stripped = text.strip()
    if not stripped.endswith(")") or "(" not in stripped:
        return None
    opening = stripped.rfind("(")
    sigla = stripped[opening + 1 : -1].strip()
    if len(sigla) != 2 or not (sigla.isascii() and sigla.isalpha()):
        return None
    return stripped[:opening], sigla.upper()


def province_for_phone(number: str) -> str | None:
    """The province of an Italian landline's area code (geocoder town -> comune), else None.

    Mobiles carry no place, and foreign, unparseable or non-geographic numbers give None, as
    does a town the comuni list cannot place in exactly one province. An area code is a
    telephone district, not a province: 0363 (Treviglio, BG) also serves some comuni of CR and
    MI, 039 (Monza, MB) some of LC; this rule ranks below the explicit field and the comune.
    """
    try:
        parsed = phonenumbers.parse(number, "IT")
    except phonenumbers.NumberParseException:
        return None
    # +39 also covers the Vatican (06 698); San Marino's 0549 is IT but its town is no comune.
    if phonenumbers.region_code_for_number(parsed) != "IT":
        return None
    if phonenumbers.number_type(parsed) != phonenumbers.PhoneNumberType.FIXED_LINE:
        return None
    return province_for_town(area_town(parsed))


# The geocoder's prefixes are 4 to 7 digits long, country code included.
_PREFIX_LENGTHS = range(7, 3, -1)


@functools.cache
def _area_towns() -> Mapping[str, str]:
    """The geocoder's Italian prefixes (routing/data/area_codes.csv): importing
    phonenumbers.geocoder would hold every country's place names, ~110 MB per process."""
    rows = reference_rows("routing.data", "area_codes.csv")
    return MappingProxyType({row["prefix"]: row["town"] for row in rows})


def area_town(parsed: phonenumbers.PhoneNumber) -> str:
    """What `phonenumbers.geocoder.description_for_number(parsed, "it")` says of an Italian
    number: the town of its longest known prefix, "" when none."""
    key = f"{parsed.country_code}{phonenumbers.national_significant_number(parsed)}"
    towns = _area_towns()
    for length in _PREFIX_LENGTHS:
        town = towns.get(key[:length])
        if town is not None:
            return town
    return ""


def province_for_town(town: str) -> str | None:
    """The province of a town as the geocoder names it, if exactly one comune has that name."""
    if not town:
        return None
    return resolve_municipality(GEOCODER_TOWNS.get(normalise_name(town), town)).sigla


class ProvinceSource(StrEnum):
    """How a case's province was found (design §3); the values are stored and sent out."""

    EXPLICIT = "explicit"
    MUNICIPALITY = "municipality"
    AREA_CODE = "area_code"
    PARTNER = "partner"
    MANUAL = "manual"
    UNRESOLVED = "unresolved"
    OUT_OF_AREA = "out_of_area"


@dataclass(frozen=True)
class ProvinceResolution:
    sigla: str | None
    source: ProvinceSource


class InvalidProvinceError(ValueError):
    """The explicit province is neither a sigla, a province name nor an ISTAT code."""

    def __init__(self, value: str) -> None:
        super().__init__(f"not an Italian province: {value!r}")
        self.value = value


def resolve_province(
    *,
    served: Collection[str],
    province: str | None = None,
    municipality: str | None = None,
    caller_phone: str | None = None,
    partner_province: str | None = None,
) -> ProvinceResolution:
    """A case's province by design §5: explicit field, comune, landline area code, partner.

    The first rule that finds a province decides: if that province is in `served` the source is
    the rule, otherwise (sigla, out_of_area). An ambiguous comune or area-code town finds
    nothing, so the next rule runs (never guess). Nothing found -> (None, unresolved).

    Blank values count as absent. A non-blank explicit `province` that `lookup_province` cannot
    read raises `InvalidProvinceError` (a `ValueError`): it is the sender's mistake, reported as
    a validation error rather than silently routed by the other fields. A `partner_province`
    that is no province comes from Ali's own registry, so it is logged and skipped instead.
    """
    served_siglas = {sigla.strip().upper() for sigla in served}

    def decided(sigla: str, source: ProvinceSource) -> ProvinceResolution:
        if sigla in served_siglas:
            return ProvinceResolution(sigla, source)
        return ProvinceResolution(sigla, ProvinceSource.OUT_OF_AREA)

    if province is not None and province.strip():
        found = lookup_province(province)
        if found is None:
            raise InvalidProvinceError(province)
        return decided(found.sigla, ProvinceSource.EXPLICIT)
    if municipality is not None and municipality.strip():
        sigla = resolve_municipality(municipality).sigla
        if sigla is not None:
            return decided(sigla, ProvinceSource.MUNICIPALITY)
    if caller_phone is not None and caller_phone.strip():
        sigla = province_for_phone(caller_phone)
        if sigla is not None:
            return decided(sigla, ProvinceSource.AREA_CODE)
    if partner_province is not None and partner_province.strip():
        partner = lookup_province(partner_province)
        if partner is not None:
            return decided(partner.sigla, ProvinceSource.PARTNER)
        log.warning("partner province %r is not a province; ignored", partner_province)
    return ProvinceResolution(None, ProvinceSource.UNRESOLVED)
