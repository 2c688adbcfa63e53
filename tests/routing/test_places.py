"""Province resolution: comuni, landline area codes and the design §5 order of the rules."""

from __future__ import annotations

import logging
import unicodedata
from collections import Counter

import phonenumbers
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from phonenumbers import geocoder
from phonenumbers.geodata import GEOCODE_DATA

from core.provinces import all_provinces, normalise_name
from routing.data.build_area_codes import TARGET, italian_prefixes, render
from routing.places import (
    InvalidProvinceError,
    MatchKind,
    Municipality,
    ProvinceResolution,
    ProvinceSource,
    area_town,
    municipalities_by_name,
    province_for_phone,
    province_for_town,
    resolve_municipality,
    resolve_province,
)

SERVED = ("BG", "BS", "CR", "LO", "LC", "MN", "PV")
ALL_MUNICIPALITIES = sorted(
    {m for found in municipalities_by_name().values() for m in found},
    key=lambda m: m.istat_code,
)


# --- the data ---------------------------------------------------------------------------


def test_comuni_counts() -> None:
    assert len(ALL_MUNICIPALITIES) == 7896
    assert len({m.istat_code for m in ALL_MUNICIPALITIES}) == 7896
    per_province = Counter(m.province for m in ALL_MUNICIPALITIES)
    assert set(per_province) == set(all_provinces())
    assert {sigla: per_province[sigla] for sigla in SERVED} == {
        "BG": 243,
        "BS": 205,
        "CR": 113,
        "LO": 60,
        "LC": 84,
        "MN": 64,
        "PV": 185,
    }


def test_comune_codes_start_with_their_province_code() -> None:
    # ISTAT builds a comune's code from its province's (pre-2015 for metropolitan cities).
    for m in ALL_MUNICIPALITIES:
        assert int(m.istat_code[:3]) % 200 == int(all_provinces()[m.province].istat_code) % 200


def test_bilingual_comuni() -> None:
    bilingual = [m for m in ALL_MUNICIPALITIES if m.other_name]
    assert len(bilingual) == 124
    bolzano = municipalities_by_name()["bozen"]
    assert bolzano == (Municipality("021008", "Bolzano", "BZ", "Bozen"),)
    # ISTAT's file has no "č" and prints "?": the build restores it.
    assert municipalities_by_name()["sovodnje ob soci"][0].other_name == "Sovodnje ob Soči"
    assert not any("?" in (m.other_name or "") + m.name for m in ALL_MUNICIPALITIES)


def test_ambiguous_names_are_exactly_the_known_ones() -> None:
    ambiguous = {
        key: tuple(sorted({m.province for m in found}))
        for key, found in municipalities_by_name().items()
        if len({m.province for m in found}) > 1
    }
    assert ambiguous == {
        "castro": ("BG", "LE"),
        "livo": ("CO", "TN"),
        "peglio": ("CO", "PU"),
        "samone": ("TN", "TO"),
        "san teodoro": ("ME", "SS"),
        # Accent- and language-insensitive matching makes two more: Paterno PZ and Paternò
        # CT, and Corvara PE and the Ladin name of Corvara in Badia BZ.
        "paterno": ("CT", "PZ"),
        "corvara": ("BZ", "PE"),
    }


def test_keys_are_normalised() -> None:
    assert all(normalise_name(key) == key for key in municipalities_by_name())


# --- comuni -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "sigla"),
    [
        ("Sant'Angelo Lodigiano", "LO"),
        ("sant angelo lodigiano", "LO"),
        ("SANT’ANGELO LODIGIANO", "LO"),
        ("  Sant`Angelo   Lodigiano ", "LO"),
        ("Brescia", "BS"),
        ("Salò", "BS"),
        ("salo", "BS"),
        ("Bergamo", "BG"),
        ("Treviglio", "BG"),
        ("Crema", "CR"),
        ("Codogno", "LO"),
        ("Lecco", "LC"),
        ("Mantova", "MN"),
        ("Voghera", "PV"),
        ("Bari", "BA"),
        ("Bolzano/Bozen", "BZ"),
        ("bolzano / bozen", "BZ"),
        ("Bolzano", "BZ"),
        ("Bozen", "BZ"),
        ("Eppan an der Weinstraße", "BZ"),
        ("EPPAN AN DER WEINSTRASSE", "BZ"),
        ("Duino Aurisina-Devin Nabrežina", "TS"),
        ("Devin Nabrezina", "TS"),
        ("Corvara in Badia", "BZ"),
        ("Castro (BG)", "BG"),
        ("castro ( le )", "LE"),
        ("Sant'Angelo Lodigiano (LO)", "LO"),
    ],
)
def test_resolve_municipality_found(text: str, sigla: str) -> None:
    match = resolve_municipality(text)
    assert match.kind is MatchKind.FOUND
    assert match.sigla == sigla
    assert match.provinces == (sigla,)


@pytest.mark.parametrize(
    ("text", "provinces"),
    [
        ("Castro", ("BG", "LE")),
        ("CASTRO", ("BG", "LE")),
        ("Livo", ("CO", "TN")),
        ("Peglio", ("CO", "PU")),
        ("Samone", ("TN", "TO")),
        ("San Teodoro", ("ME", "SS")),
        ("Paternò", ("CT", "PZ")),
        ("Corvara", ("BZ", "PE")),
    ],
)
def test_resolve_municipality_ambiguous_is_never_guessed(
    text: str, provinces: tuple[str, ...]
) -> None:
    match = resolve_municipality(text)
    assert match.kind is MatchKind.AMBIGUOUS
    assert match.sigla is None
    assert match.provinces == provinces


@pytest.mark.parametrize(
    "text", ["", " ", "Atlantide", "Castro (MI)", "Brescia (BG)", "(BG)", "Milano (XX)", "BS"]
)
def test_resolve_municipality_unknown(text: str) -> None:
    match = resolve_municipality(text)
    assert match.kind is MatchKind.UNKNOWN
    assert match.sigla is None
    assert match.provinces == ()


@st.composite
def spelled(draw: st.DrawFn, text: str) -> str:
    """The same name as a person might type it: any case, accents and apostrophes or not."""
    if draw(st.booleans()):
        text = "".join(
            c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
        )
    text = "".join(c.upper() if draw(st.booleans()) else c.lower() for c in text)
    apostrophe = draw(st.sampled_from(["'", "’", " ", "`"]))
    hyphen = draw(st.sampled_from(["-", " ", " - "]))
    padding = draw(st.sampled_from(["", " ", "\t", "  "]))
    return padding + text.replace("'", apostrophe).replace("-", hyphen) + padding


@given(st.sampled_from(ALL_MUNICIPALITIES), st.data())
def test_any_spelling_of_a_comune_resolves_like_its_name(
    municipality: Municipality, data: st.DataObject
) -> None:
    expected = resolve_municipality(municipality.name)
    assert municipality in expected.candidates
    assert resolve_municipality(data.draw(spelled(municipality.name))) == expected
    if expected.kind is MatchKind.FOUND:
        assert expected.sigla == municipality.province


@given(st.text())
def test_resolve_municipality_never_raises(text: str) -> None:
    match = resolve_municipality(text)
    assert (match.kind is MatchKind.FOUND) == (match.sigla is not None)


# --- landline area codes ----------------------------------------------------------------

# What phonenumbers' geocoder calls each area code of the served provinces (checked with
# phonenumbers 9.0), and the province the comune list gives that town.
SERVED_AREA_CODES = [
    ("035 4121111", "Bergamo", "BG"),
    ("0345 21000", "San Pellegrino Terme", "BG"),
    ("0346 21000", "Clusone", "BG"),
    ("0363 312111", "Treviglio", "BG"),
    ("030 2977111", "Brescia", "BS"),
    ("0364 22000", "Breno", "BS"),
    ("0365 296811", "Salò", "BS"),
    ("0372 4071", "Cremona", "CR"),
    ("0373 8941", "Crema", "CR"),
    ("0374 349411", "Soresina", "CR"),
    ("0375 284411", "Casalmaggiore", "CR"),
    ("0371 4091", "Lodi", "LO"),
    ("0377 3141", "Codogno", "LO"),
    ("0341 481111", "Lecco", "LC"),
    ("0376 3381", "Mantova", "MN"),
    ("0386 61000", "Ostiglia", "MN"),
    ("0382 3991", "Pavia", "PV"),
    ("0381 2991", "Vigevano", "PV"),
    ("0383 3361", "Voghera", "PV"),
    ("0384 256411", "Mortara", "PV"),
    ("0385 249211", "Stradella", "PV"),
]


@pytest.mark.parametrize(("number", "town", "sigla"), SERVED_AREA_CODES)
def test_served_area_codes(number: str, town: str, sigla: str) -> None:
    parsed = phonenumbers.parse(number, "IT")
    assert phonenumbers.is_valid_number(parsed)
    assert geocoder.description_for_number(parsed, "it") == town
    assert province_for_phone(number) == sigla
    assert province_for_phone(phonenumbers.format_number(parsed, 0)) == sigla  # E.164


@pytest.mark.parametrize(
    ("number", "sigla"),
    [
        ("+39 02 12345678", "MI"),
        ("+39 039 2371", "MB"),  # Monza: part of Lecco's province dials 039 too, still MB
        ("+39 06 1234567", "RM"),
        ("+39 080 1234567", "BA"),
        ("+39 0534 12345", "BO"),  # geocoder's "Porretta Terme", now Alto Reno Terme
        ("+39 0983 12345", "CS"),  # geocoder's "Rossano", now Corigliano-Rossano
    ],
)
def test_other_area_codes(number: str, sigla: str) -> None:
    assert province_for_phone(number) == sigla


@pytest.mark.parametrize(
    "number",
    [
        "+39 333 1234567",  # mobile
        "3331234567",
        "+39 347 123 4567",
        "800 123456",  # toll-free
        "+39 06 69812345",  # Vatican City
        "0549 123456",  # San Marino
        "+41 44 668 18 00",  # Zürich
        "+44 20 7946 0000",
        "",
        "not a number",
        "+39",
        "030",
    ],
)
def test_numbers_with_no_province(number: str) -> None:
    assert province_for_phone(number) is None


def test_the_shipped_area_codes_are_the_geocoders() -> None:
    """routing/data/area_codes.csv is what build_area_codes makes of the installed phonenumbers
    (after an upgrade that changes it: run the script and review the diff)."""
    assert TARGET.read_text(encoding="utf-8") == render(italian_prefixes())


@given(st.from_regex(r"0[1-9][0-9]{4,9}", fullmatch=True))
def test_the_area_town_is_the_geocoders(national: str) -> None:
    parsed = phonenumbers.parse(national, "IT")
    # The numbers province_for_phone asks about: Italian landlines.
    assume(phonenumbers.region_code_for_number(parsed) == "IT")
    assume(phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.FIXED_LINE)
    assert area_town(parsed) == geocoder.description_for_number(parsed, "it")


def test_every_italian_geocoder_town_is_placed() -> None:
    """Every description the geocoder has for +39 is one comune, bar the two foreign states."""
    towns = {
        prefix: names.get("it") or names["en"]
        for prefix, names in GEOCODE_DATA.items()
        if prefix.startswith("39")
    }
    unplaced = {prefix: town for prefix, town in towns.items() if province_for_town(town) is None}
    assert unplaced == {"390549": "Repubblica di San Marino", "3906698": "Città del Vaticano"}


# One landline per served province as a caller ID shows it, and a mobile, which carries no
# place (design §5). A stub that answers None fails every line but the last.
CALLER_IDS = [
    ("+39 035 123456", "BG"),
    ("+39 030 123456", "BS"),
    ("+39 0373 123456", "CR"),
    ("+39 0377 123456", "LO"),
    ("+39 0383 123456", "PV"),
    ("+39 0376 123456", "MN"),
    ("+39 0341 123456", "LC"),
    ("+39 333 123 4567", None),
]


@pytest.mark.parametrize(("number", "sigla"), CALLER_IDS)
def test_a_caller_id_gives_the_province_of_its_area_code(number: str, sigla: str | None) -> None:
    assert province_for_phone(number) == sigla


@given(
    st.sampled_from([(n.split()[1], s) for n, s in CALLER_IDS if s is not None]),
    st.from_regex(r"[0-9]{4,7}", fullmatch=True),
)
def test_every_number_of_a_served_area_code_gives_its_province(
    area: tuple[str, str], subscriber: str
) -> None:
    # The geocoder has one town for each of these area codes, whatever digits follow.
    area_code, sigla = area
    number = f"+39 {area_code} {subscriber}"
    assume(phonenumbers.is_valid_number(phonenumbers.parse(number, "IT")))
    assert province_for_phone(number) == sigla


@given(st.text())
def test_province_for_phone_never_raises(text: str) -> None:
    """A no-crash check over any text; what it answers is pinned by the examples above."""
    result = province_for_phone(text)
    assert result is None or result in all_provinces()


# --- the rules in order -----------------------------------------------------------------


def resolve(**fields: str | None) -> ProvinceResolution:
    return resolve_province(served=SERVED, **fields)


def test_explicit_province_wins() -> None:
    assert resolve(
        province="bs", municipality="Lodi", caller_phone="035 4121111", partner_province="PV"
    ) == ProvinceResolution("BS", ProvinceSource.EXPLICIT)


@pytest.mark.parametrize("value", ["BS", "Brescia", "017", "17", " brescia "])
def test_explicit_province_forms(value: str) -> None:
    assert resolve(province=value) == ProvinceResolution("BS", ProvinceSource.EXPLICIT)


def test_explicit_province_outside_the_served_set() -> None:
    assert resolve(province="Bari", municipality="Lodi") == ProvinceResolution(
        "BA", ProvinceSource.OUT_OF_AREA
    )


def test_explicit_province_that_is_no_province_is_a_validation_error() -> None:
    with pytest.raises(InvalidProvinceError) as raised:
        resolve(province="Lombardia", municipality="Lodi")
    assert raised.value.value == "Lombardia"
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_explicit_province_is_absent(blank: str) -> None:
    assert resolve(province=blank, municipality="Lodi") == ProvinceResolution(
        "LO", ProvinceSource.MUNICIPALITY
    )


def test_municipality_comes_second() -> None:
    assert resolve(
        municipality="Sant’Angelo Lodigiano", caller_phone="035 4121111", partner_province="PV"
    ) == ProvinceResolution("LO", ProvinceSource.MUNICIPALITY)


def test_municipality_outside_the_served_set() -> None:
    assert resolve(municipality="Bari", caller_phone="035 4121111") == ProvinceResolution(
        "BA", ProvinceSource.OUT_OF_AREA
    )


def test_ambiguous_municipality_falls_through_to_the_area_code() -> None:
    assert resolve(municipality="Castro", caller_phone="035 4121111") == ProvinceResolution(
        "BG", ProvinceSource.AREA_CODE
    )


def test_ambiguous_municipality_and_nothing_else_is_unresolved() -> None:
    assert resolve(municipality="Castro") == ProvinceResolution(None, ProvinceSource.UNRESOLVED)


def test_unknown_municipality_falls_through() -> None:
    assert resolve(municipality="Atlantide", partner_province="CR") == ProvinceResolution(
        "CR", ProvinceSource.PARTNER
    )


@pytest.mark.parametrize(("number", "town", "sigla"), SERVED_AREA_CODES)
def test_area_code_comes_third(number: str, town: str, sigla: str) -> None:
    assert resolve(caller_phone=number, partner_province="MI") == ProvinceResolution(
        sigla, ProvinceSource.AREA_CODE
    ), town


def test_area_code_outside_the_served_set() -> None:
    assert resolve(caller_phone="+39 02 12345678", partner_province="BS") == ProvinceResolution(
        "MI", ProvinceSource.OUT_OF_AREA
    )


def test_mobile_falls_through_to_the_partner() -> None:
    assert resolve(caller_phone="+39 333 1234567", partner_province="MN") == ProvinceResolution(
        "MN", ProvinceSource.PARTNER
    )


def test_partner_province_outside_the_served_set() -> None:
    assert resolve(partner_province="RM") == ProvinceResolution("RM", ProvinceSource.OUT_OF_AREA)


def test_bad_partner_province_is_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="routing.places"):
        result = resolve(caller_phone="+39 333 1234567", partner_province="Lombardia")
    assert result == ProvinceResolution(None, ProvinceSource.UNRESOLVED)
    assert "Lombardia" in caplog.text


def test_nothing_is_unresolved() -> None:
    assert resolve() == ProvinceResolution(None, ProvinceSource.UNRESOLVED)
    assert resolve(municipality=" ", caller_phone="") == ProvinceResolution(
        None, ProvinceSource.UNRESOLVED
    )


def test_served_set_is_configuration() -> None:
    assert resolve_province(served={"le", " ba "}, municipality="Bari") == ProvinceResolution(
        "BA", ProvinceSource.MUNICIPALITY
    )
    assert resolve_province(served=(), province="BS") == ProvinceResolution(
        "BS", ProvinceSource.OUT_OF_AREA
    )


def test_source_values_are_the_contract() -> None:
    assert [s.value for s in ProvinceSource] == [
        "explicit",
        "municipality",
        "area_code",
        "partner",
        "manual",
        "unresolved",
        "out_of_area",
    ]


optional_text = st.none() | st.text()


@given(optional_text, optional_text, optional_text)
def test_resolve_never_raises_without_an_explicit_province(
    municipality: str | None, caller_phone: str | None, partner_province: str | None
) -> None:
    result = resolve(
        municipality=municipality, caller_phone=caller_phone, partner_province=partner_province
    )
    assert (result.sigla is None) == (result.source is ProvinceSource.UNRESOLVED)


@given(st.text(), optional_text, optional_text, optional_text)
def test_explicit_province_either_resolves_or_is_invalid(
    province: str, municipality: str | None, caller_phone: str | None, partner: str | None
) -> None:
    try:
        result = resolve(
            province=province,
            municipality=municipality,
            caller_phone=caller_phone,
            partner_province=partner,
        )
    except InvalidProvinceError:
        assert province.strip()
        return
    assert (
        result.source in {ProvinceSource.EXPLICIT, ProvinceSource.OUT_OF_AREA}
        or not province.strip()
    )
