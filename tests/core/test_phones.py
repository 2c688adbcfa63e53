"""Phone numbers: letters make a number unusable; an extension is kept for cases, refused for
the numbers Ali dials (operators)."""

from __future__ import annotations

import pytest

from core.phones import InvalidPhone, PhoneHasLetters, PhoneNumber, normalise_phone, parse_phone


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        ("030 712 3456", PhoneNumber("+390307123456")),
        ("+39 333 123 4567", PhoneNumber("+393331234567")),
        ("+39 030 712 3456 int. 12", PhoneNumber("+390307123456", "12")),
        ("+39 030 712 3456 ext 12", PhoneNumber("+390307123456", "12")),
        ("030 7123456 x 7", PhoneNumber("+390307123456", "7")),
        ("+390307123456;ext=12", PhoneNumber("+390307123456", "12")),
        ("+44 20 7946 0958", PhoneNumber("+442079460958")),
    ],
)
def test_parse_phone_keeps_the_extension(raw: str, number: PhoneNumber) -> None:
    assert parse_phone(raw) == number
    # What a case stores reads back as the same number (the case page formats it).
    assert parse_phone(number.stored) == number


@pytest.mark.parametrize(
    "raw", ["+39 333 CALL ME", "333 HELP 123", "tel 3331234567", "+39 333 1234567 Maria"]
)
def test_letters_make_a_number_unusable_instead_of_keypad_digits(raw: str) -> None:
    with pytest.raises(PhoneHasLetters):
        parse_phone(raw)
    with pytest.raises(InvalidPhone):
        normalise_phone(raw)


@pytest.mark.parametrize("raw", ["12", "", "+", "9" * 65, " " * 500 + "1"])
def test_what_is_no_number_is_invalid(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        parse_phone(raw)


def test_a_number_ali_dials_has_no_extension() -> None:
    assert normalise_phone(" +39 333 123 4567 ") == "+393331234567"
    with pytest.raises(InvalidPhone, match="extension"):
        normalise_phone("+39 030 712 3456 int. 12")
