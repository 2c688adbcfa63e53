"""Forms of the rota pages: a rotation with its ordered operators, an override, an end date."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    DateTimeLocalField,
    FieldList,
    SelectField,
    StringField,
    TimeField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional, ValidationError

from core.formatting import FIRST_YEAR, LAST_YEAR, NonexistentLocalTime, from_local
from core.models import User
from oncall.schedule import Tier

# Browsers send datetime-local values as 2026-10-25T02:30 and read back only that shape: the
# field splits them into a naive wall-clock reading, core.formatting.from_local places it.
LOCAL_DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]
MAX_OPERATORS = 30
# A tier's name on its own (a column head, a choice); notifications.tier_word is the word
# inside a sentence.
TIER_LABELS = {
    Tier.PRIMARY: _l("Primary"),
    Tier.BACKUP: _l("Backup"),
    Tier.COORDINATOR: _l("Coordinators"),
}


def tier_choices(tiers: Sequence[Tier] = (Tier.PRIMARY, Tier.BACKUP)) -> list[SelectChoice]:
    """The tiers a page may edit: a province's, or the coordinators' alone."""
    return [SelectChoice(tier.value, TIER_LABELS[tier]) for tier in tiers]


def operator_choices(users: list[User], *, blank: str) -> list[SelectChoice]:
    return [SelectChoice("", blank)] + [
        SelectChoice(str(user.id), user.display_name) for user in users
    ]


def _supported_year(_form: FlaskForm, field: Any) -> None:
    value: date | datetime | None = field.data
    if value is not None and not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValidationError(
            _("Choose a date between %(first)s and %(last)s.", first=FIRST_YEAR, last=LAST_YEAR)
        )


def _exists_in_rome(_form: FlaskForm, field: Any) -> None:
    """A swap cannot start or end at a time the spring change skips: any guess would put it an
    hour away from what was typed. (A time that happens twice is its first occurrence.)"""
    value: datetime | None = field.data
    if value is None or not FIRST_YEAR <= value.year <= LAST_YEAR:
        return
    try:
        from_local(value)
    except NonexistentLocalTime:
        raise ValidationError(
            _(
                "This time does not exist that day: the clocks go forward from 02:00 to 03:00. "
                "Choose 03:00 or later."
            )
        ) from None


def _local_time_field(label: Any, missing: Any) -> DateTimeLocalField:
    """A date and time typed in Italian local time, which must exist in Rome that day."""
    return DateTimeLocalField(
        label,
        format=LOCAL_DATETIME_FORMATS,
        validators=[InputRequired(missing), _supported_year, _exists_in_rome],
        invalid_value_message=_l("Enter a date and a time, e.g. 2026-10-25 08:00."),
    )


class RotationForm(FlaskForm):  # type: ignore[misc]
    name = StringField(_l("Name (optional)"), validators=[Optional(), Length(max=120)])
    tier = SelectField(_l("Tier"), choices=tier_choices)
    operators = FieldList(
        SelectField(_l("Operator"), validate_choice=True),
        min_entries=1,
        max_entries=MAX_OPERATORS,
    )
    handover = TimeField(
        _l("Hand-over time"),
        validators=[InputRequired(_l("Enter the hand-over time, e.g. 08:00."))],
        invalid_value_message=_l("Enter the hand-over time as hours and minutes, e.g. 08:00."),
    )
    period_days = SelectField(
        _l("Each turn lasts"),
        choices=[SelectChoice("1", _l("one day")), SelectChoice("7", _l("one week"))],
    )
    start_date = DateField(
        _l("First day"),
        validators=[InputRequired(_l("Enter the first day of the rotation.")), _supported_year],
        invalid_value_message=_l("Enter a valid date."),
    )
    end_date = DateField(
        _l("End (optional): no turn starts on or after this day"),
        validators=[Optional(), _supported_year],
        invalid_value_message=_l("Enter a valid date."),
    )

    def set_operator_choices(self, users: list[User], former: Sequence[User] = ()) -> None:
        """Choices are the province's operators, plus members of the rotation being edited
        who can no longer be on call there (shown, marked, and refused on preview, so they
        are never dropped silently)."""
        choices = operator_choices(users, blank=_("— nobody —"))
        choices += [
            SelectChoice(
                str(user.id), _("%(name)s (cannot be on call here)", name=user.display_name)
            )
            for user in former
        ]
        for entry in self.operators:
            entry.choices = choices
        self._operator_choices = choices
        self._former_ids = {user.id for user in former}

    def validate_operators(self, field: Any) -> None:
        if not any(entry.data for entry in field):
            raise ValidationError(_("Choose at least one operator."))
        if self._former_ids & set(self.operator_ids()):
            raise ValidationError(_("Replace the operators who cannot be on call here any more."))

    def add_operator_slots(self, count: int) -> None:
        """Empty selects after the chosen operators, so one more can be added without JS."""
        while len(self.operators) < min(count, MAX_OPERATORS):
            entry = self.operators.append_entry("")
            entry.choices = self._operator_choices

    def operator_ids(self) -> list[int]:
        """The chosen operators in order (anything not an id is left to validation)."""
        values = [entry.data or "" for entry in self.operators]
        return [int(value) for value in values if value.isascii() and value.isdigit()]

    def validate_end_date(self, field: Any) -> None:
        start = self.start_date.data
        if field.data is not None and start is not None and field.data <= start:
            raise ValidationError(_("The end must be after the first day."))

    def fingerprint(self) -> str:
        """The values a preview was made of; saving other values asks for a new preview."""
        parts = [
            self.tier.data or "",
            ",".join(str(i) for i in self.operator_ids()),
            self.handover.data.isoformat(timespec="minutes") if self.handover.data else "",
            self.period_days.data or "",
            self.start_date.data.isoformat() if self.start_date.data else "",
            self.end_date.data.isoformat() if self.end_date.data else "",
        ]
        return "|".join(parts)


class OverrideForm(FlaskForm):  # type: ignore[misc]
    tier = SelectField(_l("Tier"), choices=tier_choices)
    user_id = SelectField(
        _l("Operator"),
        validators=[InputRequired(_l("Choose who is on call."))],
        validate_choice=True,
    )
    start = _local_time_field(_l("From"), _l("Enter when the swap starts."))
    end = _local_time_field(_l("Until"), _l("Enter when the swap ends."))
    reason = StringField(_l("Note (optional)"), validators=[Optional(), Length(max=200)])

    def set_operator_choices(self, users: list[User]) -> None:
        self.user_id.choices = operator_choices(users, blank=_("— choose —"))

    def instants(self) -> tuple[datetime, datetime]:
        """From and until as UTC instants (once the form is valid)."""
        return from_local(self.start.data), from_local(self.end.data)


class EndRotationForm(FlaskForm):  # type: ignore[misc]
    end_date = DateField(
        _l("End on"),
        validators=[InputRequired(_l("Enter the end date.")), _supported_year],
        invalid_value_message=_l("Enter a valid date."),
    )
