"""The profile page: phone and its verification, language, calendar links."""

from __future__ import annotations

from flask import Blueprint, Flask, abort, flash, redirect, render_template, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as WerkzeugResponse
from wtforms import SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from core import audit
from core.auth import editable_rotas, login_required
from core.clock import now as clock_now
from core.config import get_settings
from core.db import get_session
from core.i18n import LANGUAGES, set_user_locale
from core.models import User, users_by_id
from core.nav import NavItem, register_nav
from core.phones import InvalidPhone, normalise_phone
from core.telephony import get_telephony
from oncall import verification
from oncall.calendar import (
    TokenKind,
    active_tokens,
    can_revoke,
    create_operator_token,
    create_province_token,
    revoke_token,
)
from oncall.chain import upcoming_shifts
from oncall.models import MAX_ID, CalendarToken
from oncall.notifications import LOOKAHEAD

bp = Blueprint("oncall_profile", __name__, url_prefix="/profile")

LANGUAGE_NAMES = {"it": "Italiano", "en": "English"}


class PhoneForm(FlaskForm):  # type: ignore[misc]
    phone = StringField(_l("Mobile phone"), validators=[Optional(), Length(max=40)])


class CodeForm(FlaskForm):  # type: ignore[misc]
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=12)])


class LocaleForm(FlaskForm):  # type: ignore[misc]
    locale = SelectField(
        _l("Language of the messages Ali sends you"),
        choices=[SelectChoice(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
    )


class ProvinceFeedForm(FlaskForm):  # type: ignore[misc]
    # Checked against the user's provinces in the view, to answer 403 rather than 400.
    province = SelectField(_l("Province"), choices=[], validate_choice=False)


def _me() -> User:
    user: User = current_user
    return user


def _feed_url(kind: TokenKind, raw: str) -> str:
    endpoint = "oncall_feeds.operator" if kind is TokenKind.OPERATOR else "oncall_feeds.province"
    return get_settings().public_url + url_for(endpoint, token=raw)


def _render(
    *,
    phone_form: PhoneForm | None = None,
    code_form: CodeForm | None = None,
    new_feed: tuple[str, str] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    """The whole page; ``new_feed`` is (label, URL) of a link just created, shown once."""
    user = _me()
    db = get_session()
    now = clock_now()
    phone_form = phone_form or PhoneForm(phone=user.phone or "")
    locale_form = LocaleForm(locale=user.locale)
    provinces = editable_rotas(user, get_settings().provinces)
    province_form = ProvinceFeedForm()
    province_form.province.choices = [SelectChoice(p, p) for p in provinces]
    province_tokens = (
        active_tokens(db, kind=TokenKind.PROVINCE, provinces=provinces) if provinces else []
    )
    created_by = (t.created_by_id for t in province_tokens if t.created_by_id is not None)
    creators = {uid: u.display_name for uid, u in users_by_id(db, created_by).items()}
    rostered_soon = bool(upcoming_shifts(db, user_id=user.id, start=now, end=now + LOOKAHEAD))
    context = {
        "pending": verification.pending(db, user=user, now=now),
        "own_tokens": active_tokens(db, kind=TokenKind.OPERATOR, user_id=user.id),
    }
    audit.record(
        db,
        now=now,
        action="read",
        object_type="user",
        object_id=user.id,
        actor=user,
        fields=["phone", "email"],
    )
    # Committed before rendering: nothing below touches the database.
    db.commit()
    return (
        render_template(
            "oncall/profile.html",
            user=user,
            phone_form=phone_form,
            code_form=code_form or CodeForm(),
            locale_form=locale_form,
            province_form=province_form,
            rostered_soon=rostered_soon,
            province_tokens=province_tokens,
            creators=creators,
            new_feed=new_feed,
            **context,
        ),
        status,
    )


@bp.get("/")
@login_required
def profile() -> tuple[str, int]:
    return _render()


def _send_code() -> None:
    user = _me()
    try:
        verification.send_code(
            get_session(),
            get_telephony(),
            user=user,
            secret_key=get_settings().secret_key,
            now=clock_now(),
        )
    except verification.TooManySends:
        flash(_("Too many codes sent in the last hour. Wait a while and try again."), "error")
    except verification.SendFailed:
        flash(_("The code could not be sent just now. Try again in a few minutes."), "error")
    except verification.NoPhone:
        flash(_("Enter your mobile phone number first."), "error")
    else:
        flash(_("We sent a code by SMS to your phone. Type it below."), "success")


@bp.post("/phone")
@login_required
def phone() -> tuple[str, int] | WerkzeugResponse:
    form = PhoneForm()
    if not form.validate_on_submit():
        return _render(phone_form=form, status=400)
    user = _me()
    raw = (form.phone.data or "").strip()
    try:
        number = normalise_phone(raw) if raw else None
    except InvalidPhone:
        form.phone.errors = [
            _("This is not a valid mobile number. Write it with the country code, e.g. +39 …")
        ]
        return _render(phone_form=form, status=400)
    db = get_session()
    changed = verification.set_phone(db, user=user, phone=number, now=clock_now())
    db.commit()
    if number is None:
        flash(_("Your phone number was removed."), "success")
    elif changed:
        _send_code()
    else:
        flash(_("Your phone number did not change."), "success")
    return redirect(url_for("oncall_profile.profile"))


@bp.post("/phone/code")
@login_required
def send_code() -> WerkzeugResponse:
    if _me().phone_verified_at is None:
        _send_code()
    return redirect(url_for("oncall_profile.profile"))


@bp.post("/phone/verify")
@login_required
def verify() -> tuple[str, int] | WerkzeugResponse:
    form = CodeForm()
    if not form.validate_on_submit():
        return _render(code_form=form, status=400)
    db = get_session()
    try:
        verification.verify_code(
            db,
            user=_me(),
            code=form.code.data,
            secret_key=get_settings().secret_key,
            now=clock_now(),
        )
    except verification.WrongCode as exc:
        db.commit()
        if exc.remaining:
            message = _("That code is not right. Attempts left: %(num)d.", num=exc.remaining)
        else:
            message = _("That code is not right and no attempts are left. Ask for a new code.")
        form.code.errors = [message]
        return _render(code_form=form, status=400)
    except verification.NoPendingCode:
        db.commit()
        form.code.errors = [_("This code has expired or was used up. Ask for a new code.")]
        return _render(code_form=form, status=400)
    db.commit()
    flash(_("Your phone is verified."), "success")
    return redirect(url_for("oncall_profile.profile"))


@bp.post("/language")
@login_required
def language() -> tuple[str, int] | WerkzeugResponse:
    form = LocaleForm()
    if not form.validate_on_submit():
        return _render(status=400)
    db = get_session()
    set_user_locale(db, user=_me(), locale=form.locale.data, now=clock_now())
    db.commit()
    # The pages follow the saved choice at once, over an earlier footer switch.
    session["lang"] = form.locale.data
    flash(_("Language saved."), "success")
    return redirect(url_for("oncall_profile.profile"))


@bp.post("/calendar")
@login_required
def create_own_feed() -> tuple[str, int]:
    db = get_session()
    raw = create_operator_token(db, user=_me(), now=clock_now())
    db.commit()
    # Rendered, not redirected: the URL is shown once and must not travel in a cookie.
    return _render(new_feed=(_("Your shifts"), _feed_url(TokenKind.OPERATOR, raw)))


@bp.post("/calendar/province")
@login_required
def create_province_feed() -> tuple[str, int]:
    user = _me()
    form = ProvinceFeedForm()
    served = get_settings().provinces
    form.province.choices = [SelectChoice(p, p) for p in editable_rotas(user, served)]
    if not form.validate_on_submit():
        abort(400)
    db = get_session()
    try:
        raw = create_province_token(
            db, actor=user, province=form.province.data, served=served, now=clock_now()
        )
    except PermissionError:
        abort(403)
    db.commit()
    label = _("Rota of %(province)s", province=form.province.data)
    return _render(new_feed=(label, _feed_url(TokenKind.PROVINCE, raw)))


@bp.post(f"/calendar/<int(max={MAX_ID}):token_id>/revoke")
@login_required
def revoke_feed(token_id: int) -> WerkzeugResponse:
    db = get_session()
    token = db.get(CalendarToken, token_id)
    user = _me()
    if token is None or not can_revoke(user, token, get_settings().provinces):
        abort(404)
    revoke_token(db, actor=user, token=token, now=clock_now())
    db.commit()
    flash(_("The calendar link was revoked: it no longer works."), "success")
    return redirect(url_for("oncall_profile.profile"))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    register_nav(app, NavItem("oncall_profile.profile", _l("Profile")))
