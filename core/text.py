"""Text from outside Ali: which characters are control characters, refused or removed at the
edges (PostgreSQL refuses NUL in text, and none of them is anything a person typed)."""

from __future__ import annotations

# Controls that are line breaks and tabs: free text may keep them.
LINE_BREAKS_AND_TABS = "\n\r\t"


def is_control(c: str, allowed: str = "") -> bool:
    """C0 and C1 controls, DEL, and lone surrogates (not text: no database can store them),
    except those in `allowed`."""
    code = ord(c)
    return c not in allowed and (code < 32 or 127 <= code < 160 or 0xD800 <= code <= 0xDFFF)


def has_control(value: str, allowed: str = "") -> bool:
    return any(is_control(c, allowed) for c in value)
