"""Manual entry: a case met by a street unit, at a drop-in or referred in person.

The form becomes the body a hand-off would carry and goes through the webhook's own
validation (design §4), so the same input gives the same fields, warnings and routing.
`manual_case_fields` is the one place that couples the form to the validation module.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from intake.validation import ParsedCase, parse_case

LIST_FIELDS = ("exploitation", "needs")


def handoff_body(form: Mapping[str, str], lists: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The hand-off body the form stands for; blank fields are absent (design §4: `null`)."""

    def given(name: str) -> str | None:
        value = form.get(name, "")
        return value if value.strip() else None

    languages = [item.strip() for item in (form.get("languages") or "").split(",")]
    person = {
        "gender": given("gender"),
        "age_band": given("age_band"),
        "minor": given("minor"),
        "nationality": given("nationality"),
        "languages": [item for item in languages if item] or None,
    }
    body: dict[str, Any] = {
        "province": given("province"),
        "municipality": given("municipality"),
        "callback_phone": given("callback_phone"),
        "urgency": given("urgency"),
        "reporter_type": given("reporter_type"),
        "exploitation": list(lists.get("exploitation", [])) or None,
        "needs": list(lists.get("needs", [])) or None,
        "summary": given("summary"),
        "contact_safe": given("contact_safe"),
        "person": {key: value for key, value in person.items() if value is not None} or None,
    }
    return {key: value for key, value in body.items() if value is not None}


def manual_case_fields(
    body: dict[str, Any], *, now: datetime, served: Collection[str]
) -> ParsedCase:
    """The fields of a manual case as the webhook would read them, and the warnings: what was
    not understood (the form shows them and asks before opening the case as it is)."""
    return parse_case(body, now=now, served=served)
