"""Regenerates area_codes.csv: the Italian landline prefixes of phonenumbers' geocoder (dev tool).

Not imported at run time. Importing `phonenumbers.geocoder` loads the place names of every
country in every language (about 110 MB of RAM in each web and worker process, for the 234
Italian prefixes Ali reads); Ali loads this file instead. Run it by hand after upgrading
phonenumbers, then review the diff (a test compares the file with the geocoder):

    python -m routing.data.build_area_codes
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from phonenumbers.geodata import GEOCODE_DATA

TARGET = Path(__file__).resolve().parent / "area_codes.csv"
HEADER = (
    "# Source: libphonenumber's geocoding data (phonenumbers package), Apache License 2.0; "
    "reduced to +39 by routing/data/build_area_codes.py."
)


def italian_prefixes() -> dict[str, str]:
    """Prefix (country code 39 + national number, leading 0 kept) → town, as the geocoder's
    `description_for_number(number, "it")` gives it (Italian name, else the English one)."""
    return {
        prefix: names.get("it") or names["en"]
        for prefix, names in sorted(GEOCODE_DATA.items())
        if prefix.startswith("39")
    }


def render(prefixes: dict[str, str]) -> str:
    out = io.StringIO()
    out.write(HEADER + "\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["prefix", "town"])
    writer.writerows(prefixes.items())
    return out.getvalue()


def main() -> None:
    TARGET.write_text(render(italian_prefixes()), encoding="utf-8")
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
