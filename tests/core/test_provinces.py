"""Provinces: the shipped ISTAT list, the shared name normaliser and lookup by sigla/name/code."""

from __future__ import annotations

import subprocess
import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.provinces import Province, all_provinces, lookup_province, normalise_name

SERVED = ("BG", "BS", "CR", "LO", "LC", "MN", "PV")
PROVINCES = sorted(all_provinces().values(), key=lambda province: province.sigla)


def test_all_107_provinces_are_known() -> None:
    provinces = all_provinces()
    assert len(provinces) == 107
    assert len({p.istat_code for p in provinces.values()}) == 107
    assert all(sigla == p.sigla for sigla, p in provinces.items())
    assert provinces["BS"] == Province("BS", "017", "Brescia", "Lombardia")
    assert provinces["MI"] == Province("MI", "215", "Milano", "Lombardia")
    assert {p.region for p in provinces.values()} >= {"Lombardia", "Sicilia", "Sardegna"}
    assert len({p.region for p in provinces.values()}) == 20


def test_served_provinces_are_lombard() -> None:
    assert {all_provinces()[sigla].region for sigla in SERVED} == {"Lombardia"}


def test_nothing_is_read_at_import_time() -> None:
    code = (
        "import core.provinces as p, routing.places as r; "
        "print(p.all_provinces.cache_info().currsize, "
        "r.municipalities_by_name.cache_info().currsize)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["0", "0"]


@pytest.mark.parametrize(
    ("text", "sigla"),
    [
        ("BS", "BS"),
        ("bs", "BS"),
        (" BS ", "BS"),
        ("Brescia", "BS"),
        ("BRESCIA", "BS"),
        ("brescia ", "BS"),
        ("MONZA E DELLA BRIANZA", "MB"),
        ("Monza e Brianza", "MB"),
        ("Forli-Cesena", "FC"),
        ("Forlì-Cesena", "FC"),
        ("forli cesena", "FC"),
        ("FORLI'-CESENA", "FC"),
        ("Reggio nell'Emilia", "RE"),
        ("Reggio nell’Emilia", "RE"),
        ("Reggio Emilia", "RE"),
        ("Reggio Calabria", "RC"),
        ("Reggio di Calabria", "RC"),
        ("Bolzano/Bozen", "BZ"),
        ("Bolzano", "BZ"),
        ("Bozen", "BZ"),
        ("Valle d'Aosta", "AO"),
        ("Vallée d'Aoste", "AO"),
        ("Aosta", "AO"),
        ("Massa Carrara", "MS"),
        ("Barletta-Andria-Trani", "BT"),
        ("Pesaro e Urbino", "PU"),
        ("L'Aquila", "AQ"),
        ("Sud Sardegna", "SU"),
        ("017", "BS"),
        ("17", "BS"),
        (" 098 ", "LO"),
        ("98", "LO"),
        ("215", "MI"),  # metropolitan city, current code
        ("015", "MI"),  # ... and the province code it had until 2015
        ("15", "MI"),
        ("292", "CA"),
        ("092", "CA"),
        ("111", "SU"),
    ],
)
def test_lookup_province(text: str, sigla: str) -> None:
    province = lookup_province(text)
    assert province is not None
    assert province.sigla == sigla


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "XX",
        "B",
        "BSS",
        "000",
        "0",
        "999",
        "1017",
        "104",
        "Lombardia",
        "Forlì",
        "Milano città",
        "²",
        "١٧",
        "B.S",
    ],
)
def test_lookup_province_unknown(text: str) -> None:
    assert lookup_province(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sant'Angelo Lodigiano", "sant angelo lodigiano"),
        ("SANT’ANGELO  LODIGIANO", "sant angelo lodigiano"),
        ("Forlì-Cesena", "forli cesena"),
        ("S. Pellegrino", "s pellegrino"),
        ("  Salò ", "salo"),
        (
            "Appiano sulla strada del vino/Eppan an der Weinstraße",
            "appiano sulla strada del vino/eppan an der weinstrasse",
        ),
        ("Devin Nabrežina", "devin nabrezina"),
        ("ＢＳ", "bs"),  # full-width letters from a phone keyboard
        ("", ""),
    ],
)
def test_normalise_name(text: str, expected: str) -> None:
    assert normalise_name(text) == expected


@given(st.text())
def test_normalise_name_is_idempotent(text: str) -> None:
    once = normalise_name(text)
    assert normalise_name(once) == once


@given(st.text())
def test_normalise_name_output_is_folded(text: str) -> None:
    folded = normalise_name(text)
    assert folded == folded.strip()
    assert "  " not in folded
    assert not any(unicodedata.combining(c) for c in folded)
    assert not set(folded) & set("'’-.")


@given(st.text())
def test_lookup_province_never_raises(text: str) -> None:
    result = lookup_province(text)
    assert result is None or result.sigla in all_provinces()


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


@given(st.sampled_from(PROVINCES), st.data())
def test_every_province_is_found_by_name_sigla_and_code(
    province: Province, data: st.DataObject
) -> None:
    for name in province.name.split("/"):
        assert lookup_province(data.draw(spelled(name))) == province
    assert lookup_province(data.draw(spelled(province.sigla))) == province
    code = province.istat_code
    assert lookup_province(data.draw(st.sampled_from([code, code.lstrip("0")]))) == province


@pytest.mark.parametrize(
    ("text", "sigla"),
    [
        ("Provincia di Brescia", "BS"),
        ("PROVINCIA DI BS", "BS"),
        ("provincia di Bergamo ", "BG"),
        ("Provincia della Spezia", "SP"),
        ("Provincia dell'Aquila", "AQ"),
        ("Provincia del Sud Sardegna", "SU"),
        ("Città metropolitana di Milano", "MI"),
    ],
)
def test_a_leading_provincia_di_is_read_when_a_province_follows(text: str, sigla: str) -> None:
    found = lookup_province(text)
    assert found is not None
    assert found.sigla == sigla


@pytest.mark.parametrize(
    "text", ["Provincia di Bresica", "Provincia di", "provincia di 017", "Provincia di Chiari"]
)
def test_a_leading_provincia_di_guesses_nothing(text: str) -> None:
    assert lookup_province(text) is None
