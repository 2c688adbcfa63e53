"""Phone numbers: parsed with phonenumbers (Italy by default) and stored as E.164."""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

# A trailing extension as people write it: ";ext=12" (RFC 3966), "ext. 12", "int. 12", "x12",
# "#12". Only its marker may hold letters; phonenumbers itself reads the extension.
_EXTENSION = re.compile(r"(?:;\s*ext=|(?:ext|int|x|#)\.?)\s*\d{1,7}\s*$", re.IGNORECASE)
EXTENSION_SEPARATOR = ";ext="
MAX_LENGTH = 64  # longer is no phone number, and the extension pattern stays cheap


class InvalidPhone(ValueError):
    """Not a phone number phonenumbers can make sense of."""


class PhoneHasLetters(InvalidPhone):
    """Letters where digits belong: not a number anyone can dial."""


@dataclass(frozen=True)
class PhoneNumber:
    e164: str
    extension: str | None = None

    @property
    def stored(self) -> str:
        """E.164, and the extension the RFC 3966 way (`+390301234567;ext=12`): phonenumbers
        parses it back, so formatting and the area-code rule keep working."""
        return self.e164 + (EXTENSION_SEPARATOR + self.extension if self.extension else "")


def parse_phone(raw: str, region: str = "IT") -> PhoneNumber:
    """The number `raw` designates, with its extension if it has one.

    Letters make a number unusable: phonenumbers would read `+39 333 CALL ME` as the digits of
    a keypad (a vanity number), which is never what a hotline's caller meant.
    """
    text = raw.strip()
    if len(text) > MAX_LENGTH:
        raise InvalidPhone("not a phone number")
    if any(c.isalpha() for c in _EXTENSION.sub("", text)):
        raise PhoneHasLetters("has letters")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise InvalidPhone("not a phone number") from None
    if not phonenumbers.is_possible_number(number) or not phonenumbers.is_valid_number(number):
        raise InvalidPhone("not a valid phone number")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return PhoneNumber(e164, number.extension or None)


def normalise_phone(raw: str, region: str = "IT") -> str:
    """E.164 form of a number Ali can dial (no letters, no extension); raises InvalidPhone with
    a message fit for the user."""
    number = parse_phone(raw, region)
    if number.extension:
        # An operator's phone is dialled and texted by Twilio: an extension cannot be reached.
        raise InvalidPhone("has an extension: give a number that can be dialled directly")
    return number.e164
