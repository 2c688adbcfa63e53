"""Text from outside Ali: which characters are control characters, refused or removed at the
edges (PostgreSQL refuses NUL in text, and none of them is anything a person typed)."""

from __future__ import annotations

import functools
import re

# Controls that are line breaks and tabs: free text may keep them.
LINE_BREAKS_AND_TABS = "\n\r\t"
# C0 and C1 controls, DEL, and lone surrogates (not text: no database can store them).
_CONTROL_RANGES = ((0, 31), (127, 159), (0xD800, 0xDFFF))


@functools.cache
def _pattern(allowed: str) -> re.Pattern[str]:
    """The control characters but `allowed`, as one character class (the scan runs in C)."""
    codes = [
        code
        for low, high in _CONTROL_RANGES
        for code in range(low, high + 1)
        if chr(code) not in allowed
    ]
    ranges: list[tuple[int, int]] = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return re.compile("[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in ranges) + "]")


def has_control(value: str, allowed: str = "") -> bool:
    return _pattern(allowed).search(value) is not None


def remove_controls(value: str, allowed: str = "") -> str:
    return _pattern(allowed).sub("", value)


def small_int(value: str | None, digits: int = 9) -> int | None:
    """`value` as a non-negative int of at most `digits` ASCII digits, else None.

    `str.isdigit()` accepts "²" (int() then raises) and any length (a DataError on
    PostgreSQL's integer columns); nine digits always fit one.
    """
    if value is None or not re.fullmatch(rf"[0-9]{{1,{digits}}}", value):
        return None
    return int(value)
