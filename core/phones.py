"""Phone numbers: parsed with phonenumbers (Italy by default) and stored as E.164."""

from __future__ import annotations

import phonenumbers


class InvalidPhone(ValueError):
    """Not a phone number phonenumbers can make sense of."""


def normalise_phone(raw: str, region: str = "IT") -> str:
    """E.164 form of `raw`; raises InvalidPhone with a message fit for the user."""
    try:
        number = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException:
        raise InvalidPhone("not a phone number") from None
    if not phonenumbers.is_possible_number(number) or not phonenumbers.is_valid_number(number):
        raise InvalidPhone("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
