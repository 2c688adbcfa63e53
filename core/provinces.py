"""The 107 Italian provinces (ISTAT reference data) and parsing of a sigla, name or ISTAT code."""

from __future__ import annotations

import csv
import functools
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

# ISTAT numbers a metropolitan city 200 + the code of the province it replaced in 2015
# (Milano 015 -> 215); older systems still send the old code, and it is unambiguous.
METROPOLITAN_OFFSET = 200

# Other names people use for a province, beyond ISTAT's own (normalised keys). Only names
# that cannot mean another province are listed: a bare comune name such as "Forlì" or
# "Pesaro" is not, since the explicit field is a province and a miss falls to the comune rules.
ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "reggio emilia": "RE",
        "reggio di calabria": "RC",
        "monza": "MB",
        "monza brianza": "MB",
        "monza e brianza": "MB",
        "pesaro urbino": "PU",
        "aosta": "AO",
    }
)

# How people write "the province of X" (normalised: apostrophes are spaces), and what the
# preposition leaves of the name's article ("della Spezia" is "La Spezia"). Stripped only when
# what follows is a province on its own, so nothing is guessed.
_PREFIXES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "provincia di ": ("",),
        "provincia del ": ("",),
        "provincia della ": ("", "la "),
        "provincia dell ": ("", "l "),
        "citta metropolitana di ": ("",),
    }
)

# Apostrophes (straight, typographic, modifier letter, backtick), hyphens and dashes, dots.
_SEPARATORS = re.compile(r"['\u2018\u2019\u201b\u02bc\u02b9`\u00b4\-\u2010-\u2015\u2212.]")


@dataclass(frozen=True)
class Province:
    sigla: str
    istat_code: str  # three digits, ISTAT's current code (metropolitan cities 201-292)
    name: str  # as ISTAT writes it, bilingual where official ("Bolzano/Bozen")
    region: str


def normalise_name(text: str) -> str:
    """Fold a place name for comparison: no accents or case; apostrophes, hyphens, dots -> space.

    The one normaliser for provinces and comuni, so that "Forlì-Cesena", "forli cesena" and
    "FORLI'-CESENA" meet, and so do "Sant'Angelo" and "SANT’ANGELO". Idempotent.
    """
    # Case-folding can yield composed characters (and NFKD can yield upper case ones, e.g.
    # from "ℌ"), so both steps run until nothing changes; this takes one or two rounds.
    folded = text
    while True:
        decomposed = unicodedata.normalize("NFKD", folded)
        stripped = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
        if stripped == folded:
            break
        folded = stripped
    return " ".join(_SEPARATORS.sub(" ", folded).split())


def reference_rows(package: str, filename: str) -> Iterator[dict[str, str]]:
    """Rows of a CSV shipped in `package`; lines starting with "#" (the attribution) are skipped."""
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    lines = (line for line in text.splitlines() if not line.startswith("#"))
    yield from csv.DictReader(lines)


@functools.cache
def all_provinces() -> Mapping[str, Province]:
    """All provinces by sigla, read from the shipped CSV on first use."""
    provinces = (Province(**row) for row in reference_rows("core.data", "provinces.csv"))
    return MappingProxyType({province.sigla: province for province in provinces})


@functools.cache
def _by_name() -> Mapping[str, str]:
    index: dict[str, str] = dict(ALIASES)
    for province in all_provinces().values():
        # Bilingual names ("Bolzano/Bozen") match whole or by either half.
        for name in (province.name, *province.name.split("/")):
            index[normalise_name(name)] = province.sigla
    return MappingProxyType(index)


@functools.cache
def _by_code() -> Mapping[int, str]:
    index: dict[int, str] = {}
    for province in all_provinces().values():
        code = int(province.istat_code)
        index[code] = province.sigla
        if code > METROPOLITAN_OFFSET:
            index[code - METROPOLITAN_OFFSET] = province.sigla
    return MappingProxyType(index)


def lookup_province(text: str) -> Province | None:
    """The province a sigla, name or ISTAT code designates, or None when it designates none.

    Accepts "BS"/" bs ", "Brescia"/"BRESCIA", "Forli-Cesena"/"Forlì-Cesena", "Reggio Emilia",
    "Bolzano"/"Bozen", "Provincia di Brescia", "Città metropolitana di Milano", and ISTAT
    codes "017"/"17" (metropolitan cities by their current code, "215", or by their pre-2015
    province code, "015"). Never raises on any string.
    """
    stripped = text.strip()
    # isdigit() alone would accept "²" or Arabic-Indic digits, which int() then mishandles.
    if stripped.isascii() and stripped.isdigit():
        sigla = _by_code().get(int(stripped)) if len(stripped) <= 3 else None
        return all_provinces()[sigla] if sigla else None
    key = normalise_name(stripped)
    if len(key) == 2 and key.upper() in all_provinces():
        return all_provinces()[key.upper()]
    sigla = _by_name().get(key)
    if sigla is None:
        sigla = _after_prefix(key)
    return all_provinces()[sigla] if sigla else None


def _after_prefix(key: str) -> str | None:
    """The sigla of "provincia di brescia" or "provincia di bs" (a normalised key), if any."""
    for prefix, articles in _PREFIXES.items():
        if key.startswith(prefix):
            rest = key[len(prefix) :]
            if rest.upper() in all_provinces():
                return rest.upper()
            for article in articles:
                if (sigla := _by_name().get(article + rest)) is not None:
                    return sigla
    return None
