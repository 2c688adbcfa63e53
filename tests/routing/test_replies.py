"""The SMS reply grammar of design §5, by example and over arbitrary text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.replies import Reply, parse_reply

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("1", Reply(accept=True, reference=None)),
        ("ok", Reply(accept=True, reference=None)),
        (" Ok. ", Reply(accept=True, reference=None)),
        ("si", Reply(accept=True, reference=None)),
        ("Sì", Reply(accept=True, reference=None)),
        ("ACK", Reply(accept=True, reference=None)),
        ("2", Reply(accept=False, reference=None)),
        ("no", Reply(accept=False, reference=None)),
        ("OK BS-2026-0042", Reply(accept=True, reference="BS-2026-0042")),
        ("ok bs-42", Reply(accept=True, reference="BS-2026-0042")),
        ("NO, PV-7", Reply(accept=False, reference="PV-2026-0007")),
        ("1 XX-2026-10001", Reply(accept=True, reference="XX-2026-10001")),
    ],
)
def test_replies_that_mean_something(body: str, expected: Reply) -> None:
    assert parse_reply(body, now=NOW) == expected


@pytest.mark.parametrize(
    "body", ["", "pronto?", "ok grazie mille", "OK BS", "3", "okay", "OK 42", "sì sì sì"]
)
def test_anything_else_is_not_a_reply(body: str) -> None:
    assert parse_reply(body, now=NOW) is None


def test_a_short_reference_takes_the_year_in_rome() -> None:
    new_year_in_rome = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)  # 00:30 on 1 January 2027
    assert parse_reply("OK BS-1", now=new_year_in_rome) == Reply(True, "BS-2027-0001")


@given(st.text(max_size=200))
def test_no_text_makes_the_parser_fail(body: str) -> None:
    reply = parse_reply(body, now=NOW)
    assert reply is None or isinstance(reply.accept, bool)
