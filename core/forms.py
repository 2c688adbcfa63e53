"""Forms of the shell pages (CSRF comes with every FlaskForm)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget


class LoginForm(FlaskForm):  # type: ignore[misc]
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])


class LanguageForm(FlaskForm):  # type: ignore[misc]
    lang = SelectField(
        _l("Language"), choices=[SelectChoice("it", "Italiano"), SelectChoice("en", "English")]
    )


class MultiCheckboxField(SelectMultipleField):  # type: ignore[misc]
    """A list of checkboxes (roles, provinces): usable on a phone, unlike a multi-select."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class UserForm(FlaskForm):  # type: ignore[misc]
    """An admin's form for a person; the e-mail is set at creation only."""

    email = EmailField(_l("Email"), validators=[Optional(), Length(max=254)])
    display_name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    phone = StringField(_l("Mobile phone"), validators=[Optional(), Length(max=40)])
    roles = MultiCheckboxField(_l("Roles"))
    provinces = MultiCheckboxField(_l("Provinces"))
    locale = SelectField(
        _l("Language"), choices=[SelectChoice("it", "Italiano"), SelectChoice("en", "English")]
    )


class CodeForm(FlaskForm):  # type: ignore[misc]
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=40)])


class PasswordChangeForm(FlaskForm):  # type: ignore[misc]
    current = PasswordField(_l("Current password"), validators=[Optional(), Length(max=1024)])
    password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=1024)])
    confirm = PasswordField(
        _l("New password again"),
        validators=[DataRequired(), EqualTo("password", message=_l("The two passwords differ."))],
    )
