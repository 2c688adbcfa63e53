"""The signed-in user's own security: a new password (forced after an admin's reset) and
two-factor login (enrolment with a QR code, recovery codes shown once)."""

from __future__ import annotations

from flask import (
    Blueprint,
    Flask,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user
from werkzeug.wrappers import Response as WerkzeugResponse

from core import twofactor, users
from core.auth import login_required, password_matches
from core.clock import now as clock_now
from core.config import get_settings
from core.db import get_session
from core.forms import CodeForm, PasswordChangeForm
from core.models import Role, User
from core.nav import NavItem, register_nav
from core.passwords import Weakness, WeakPassword

bp = Blueprint("account", __name__, url_prefix="/account")

# What a user who must first change their password or enrol may still open.
_ALWAYS_OPEN = {
    "static",
    "core.logout",
    "core.language",
    "account.password",
    "account.two_factor",
}


def _me() -> User:
    # The object itself, not Flask-Login's proxy: login_user() must not be handed the proxy.
    user: User = current_user._get_current_object()
    return user


def _required_step() -> WerkzeugResponse | None:
    """Before any page: a reset password is replaced first, then (where required) two-factor
    login is set up; nothing else opens until then."""
    if not current_user.is_authenticated or request.endpoint in _ALWAYS_OPEN:
        return None
    user = _me()
    if user.must_change_password:
        return redirect(url_for("account.password"))
    if twofactor.must_enrol(user, get_settings()):
        return redirect(url_for("account.two_factor"))
    return None


@bp.route("/password", methods=["GET", "POST"])
@login_required
def password() -> str | WerkzeugResponse | tuple[str, int]:
    user = _me()
    form = PasswordChangeForm()
    if form.validate_on_submit():
        # After a reset the one-time password was typed a moment ago at the login; otherwise
        # the current password proves it is the user and not someone at an unlocked screen.
        if not user.must_change_password and not password_matches(user, form.current.data or ""):
            form.current.errors = [_("This is not your current password.")]
            return render_template("core/password.html", form=form, user=user), 400
        db = get_session()
        try:
            users.change_own_password(db, user, password=form.password.data, now=clock_now())
        except WeakPassword as exc:
            form.password.errors = [_weakness_message(exc.weakness)]
            return render_template("core/password.html", form=form, user=user), 400
        except users.UserError:
            form.password.errors = [_("The password cannot hold control characters.")]
            return render_template("core/password.html", form=form, user=user), 400
        db.commit()
        login_user(user)  # the session token changed: keep this session, end the others
        flash(_("Your new password is saved."), "success")
        return redirect(url_for("core.home"))
    status = 400 if request.method == "POST" else 200
    return render_template("core/password.html", form=form, user=user), status


def _weakness_message(weakness: Weakness) -> str:
    if weakness is Weakness.BLANK:
        return str(_("The password cannot be only spaces."))
    if weakness is Weakness.SHORT:
        return str(_("The password needs at least 12 characters."))
    return str(
        _(
            "This password is too easy to guess (a common password, a name, a date or a keyboard "
            "pattern). Choose a longer one, for example a few unrelated words."
        )
    )


@bp.route("/two-factor", methods=["GET", "POST"])
@login_required
def two_factor() -> str | WerkzeugResponse | tuple[str, int]:
    user = _me()
    settings = get_settings()
    db = get_session()
    form = CodeForm()
    if twofactor.is_enrolled(user):
        if request.method == "POST":
            if not twofactor.may_turn_off(user, settings):
                flash(_("Two-factor login is required for your role."), "error")
                return redirect(url_for("account.two_factor"))
            twofactor.disable(db, user, actor=user, now=clock_now())
            db.commit()
            flash(_("Two-factor login is off."), "success")
            return redirect(url_for("account.two_factor"))
        return render_template(
            "core/two_factor.html",
            user=user,
            enrolled=True,
            may_turn_off=twofactor.may_turn_off(user, settings),
        )
    secret = twofactor.pending_secret(user)
    db.commit()  # the same secret (encrypted) when the page is reloaded
    status = 200
    if form.validate_on_submit():
        try:
            codes = twofactor.enable(db, user, code=form.code.data, now=clock_now())
        except twofactor.CodeRefused:
            form.code.errors = [_("This code does not match. Type the 6 digits the app shows now.")]
            status = 400
        else:
            db.commit()
            # Shown once, in this answer only (never flashed: the session cookie is not secret).
            return render_template("core/recovery_codes.html", codes=codes)
    elif request.method == "POST":
        status = 400
    uri = twofactor.provisioning_uri(user, secret)
    return render_template(
        "core/two_factor.html",
        user=user,
        enrolled=False,
        form=form,
        secret=secret,
        qr=twofactor.qr_data_uri(uri),
        required=twofactor.must_enrol(user, settings),
    ), status


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.before_request(_required_step)
    register_nav(app, NavItem("account.two_factor", _l("Two-factor login"), (Role.COORDINATOR,)))
