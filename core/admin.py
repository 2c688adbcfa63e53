"""The admins' pages: users (create, change, deactivate, reset password) and the audit log
(search by user, object and date, CSV export). Thin: the rules live in core.users and
core.audit."""

from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.wrappers import Response as WerkzeugResponse

from core import audit, twofactor, users
from core.auth import roles_required
from core.clock import now as clock_now
from core.config import get_settings
from core.db import get_session
from core.formatting import local_date, local_midnight
from core.forms import UserForm
from core.models import Role, User
from core.nav import NavItem, register_nav
from core.text import small_int

bp = Blueprint("admin", __name__, url_prefix="/admin")
PER_PAGE = 50

ROLE_LABELS = {
    Role.OPERATOR.value: _l("Operator"),
    Role.ROTA_MANAGER.value: _l("Rota manager"),
    Role.COORDINATOR.value: _l("Coordinator"),
    Role.ADMIN.value: _l("Admin"),
}


def _me() -> User:
    user: User = current_user
    return user


def _user_or_404(user_id: int) -> User:
    user = get_session().get(User, user_id)
    if user is None:
        abort(404)
    return user


def _user_form(user: User | None = None) -> UserForm:
    form = UserForm(obj=user) if request.method == "GET" and user else UserForm()
    form.roles.choices = [(code, str(label)) for code, label in ROLE_LABELS.items()]
    form.provinces.choices = [(sigla, sigla) for sigla in get_settings().provinces]
    if request.method == "GET" and user is None:
        form.roles.data = [Role.OPERATOR.value]
    return form


def _details(form: UserForm) -> users.UserDetails:
    return users.UserDetails(
        display_name=form.display_name.data or "",
        roles=form.roles.data or [],
        provinces=form.provinces.data or [],
        phone=form.phone.data,
        locale=form.locale.data or "it",
    )


def _show_error(form: UserForm, exc: users.UserError) -> None:
    """A service refusal as a message on the field it concerns, in the user's language."""
    messages = {
        "email": _("Enter an e-mail address that no other user has."),
        "display_name": _("Enter a name of 1 to 120 characters."),
        "roles": _("Choose at least one role (you cannot remove your own admin role)."),
        "provinces": _("Choose provinces this project serves."),
        "phone": _("This is not a valid phone number."),
        "locale": _("Choose Italian or English."),
    }
    field = getattr(form, exc.field or "", None)
    if field is not None and exc.field in messages:
        field.errors = [*field.errors, messages[exc.field]]
    else:
        flash(_("The change was refused: %(reason)s", reason=str(exc)), "error")


# ---------------------------------------------------------------------------------------
# Users


@bp.get("/users")
@roles_required(Role.ADMIN)
def user_list() -> str:
    return render_template(
        "core/admin_users.html",
        users=users.all_users(get_session()),
        role_labels=ROLE_LABELS,
    )


@bp.route("/users/new", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def user_new() -> str | tuple[str, int]:
    form = _user_form()
    if form.validate_on_submit():
        db = get_session()
        password = users.generate_password()
        try:
            user = users.create_user(
                db,
                email=form.email.data or "",
                details=_details(form),
                password=password,
                served=get_settings().provinces,
                actor=_me(),
                now=clock_now(),
                must_change_password=True,
            )
        except users.UserError as exc:
            db.rollback()
            _show_error(form, exc)
            return render_template("core/admin_user_form.html", form=form, user=None), 400
        db.commit()
        return render_template("core/admin_password.html", user=user, password=password, new=True)
    status = 400 if request.method == "POST" else 200
    return render_template("core/admin_user_form.html", form=form, user=None), status


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def user_edit(user_id: int) -> str | WerkzeugResponse | tuple[str, int]:
    user = _user_or_404(user_id)
    form = _user_form(user)
    if form.validate_on_submit():
        db = get_session()
        try:
            changed = users.update_user(
                db,
                user,
                details=_details(form),
                served=get_settings().provinces,
                actor=_me(),
                now=clock_now(),
            )
        except users.UserError as exc:
            db.rollback()
            _show_error(form, exc)
            return render_template("core/admin_user_form.html", form=form, user=user), 400
        db.commit()
        if changed:
            flash(_("Saved."), "success")
        return redirect(url_for("admin.user_edit", user_id=user.id))
    status = 400 if request.method == "POST" else 200
    return render_template("core/admin_user_form.html", form=form, user=user), status


@bp.post("/users/<int:user_id>/password")
@roles_required(Role.ADMIN)
def user_reset_password(user_id: int) -> str:
    user = _user_or_404(user_id)
    db = get_session()
    password = users.reset_password(db, user, actor=_me(), now=clock_now())
    db.commit()
    # Shown in this answer only: never flashed or logged (the session cookie is not secret).
    return render_template("core/admin_password.html", user=user, password=password, new=False)


@bp.route("/users/<int:user_id>/deactivate", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def user_deactivate(user_id: int) -> str | WerkzeugResponse | tuple[str, int]:
    user = _user_or_404(user_id)
    db = get_session()
    if request.method == "POST":
        try:
            users.set_active(db, user, active=False, actor=_me(), now=clock_now())
        except users.UserError:
            db.rollback()
            flash(_("You cannot deactivate yourself."), "error")
            return redirect(url_for("admin.user_edit", user_id=user.id))
        db.commit()
        flash(_("%(name)s is deactivated.", name=user.display_name), "success")
        return redirect(url_for("admin.user_list"))
    consequences = users.deactivation_consequences(db, user, clock_now())
    return render_template("core/admin_deactivate.html", user=user, consequences=consequences)


@bp.post("/users/<int:user_id>/reactivate")
@roles_required(Role.ADMIN)
def user_reactivate(user_id: int) -> WerkzeugResponse:
    user = _user_or_404(user_id)
    db = get_session()
    users.set_active(db, user, active=True, actor=_me(), now=clock_now())
    db.commit()
    flash(_("%(name)s is active again.", name=user.display_name), "success")
    return redirect(url_for("admin.user_edit", user_id=user.id))


@bp.post("/users/<int:user_id>/two-factor/reset")
@roles_required(Role.ADMIN)
def user_reset_two_factor(user_id: int) -> WerkzeugResponse:
    """For a lost phone with no recovery code left: the user enrols again at the next login."""
    user = _user_or_404(user_id)
    db = get_session()
    twofactor.disable(db, user, actor=_me(), now=clock_now())
    db.commit()
    flash(_("Two-factor login of %(name)s is reset.", name=user.display_name), "success")
    return redirect(url_for("admin.user_edit", user_id=user.id))


# ---------------------------------------------------------------------------------------
# Audit log


class _FilterError(ValueError):
    pass


def _parse_day(field: str) -> date | None:
    raw = (request.values.get(field) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _FilterError(field) from None


def _read_filter() -> tuple[audit.AuditFilter, dict[str, str]]:
    """The viewer's filter from the query (or the export form): Rome calendar days in,
    UTC instants out, the end day included."""
    values = {
        key: (request.values.get(key) or "").strip()
        for key in ("user", "object_type", "object_id", "action", "from", "to")
    }
    actor_id: int | None = None
    if values["user"]:
        actor_id = small_int(values["user"])
        if actor_id is None:
            raise _FilterError("user")
    start_day, end_day = _parse_day("from"), _parse_day("to")
    if start_day and end_day and end_day < start_day:
        raise _FilterError("to")
    for key in ("object_type", "object_id", "action"):
        if len(values[key]) > 80 or any(ord(c) < 32 for c in values[key]):
            raise _FilterError(key)
    wanted = audit.AuditFilter(
        actor_id=actor_id,
        object_type=values["object_type"] or None,
        object_id=values["object_id"] or None,
        action=values["action"] or None,
        start=None if start_day is None else local_midnight(start_day),
        end=None if end_day is None else local_midnight(end_day + timedelta(days=1)),
    )
    return wanted, values


@bp.get("/audit")
@roles_required(Role.ADMIN)
def audit_log() -> tuple[str, int]:
    db = get_session()
    types, actions = audit.known_values(db)
    people = users.all_users(db)
    status = 200
    error: str | None = None
    try:
        wanted, values = _read_filter()
    except _FilterError:
        wanted, values = audit.AuditFilter(actor_id=-1), {}
        error = _(
            "Check the filters: dates are like 2026-11-24 and the end is not before the start."
        )
        status = 400
    page = request.args.get("page", "1")
    page_number = max(1, small_int(page, digits=6) or 1)
    entries, total = audit.search(db, wanted, page=page_number, per_page=PER_PAGE)
    names = {person.id: person.display_name for person in people}
    last_page = max(1, -(-total // PER_PAGE))
    query = {k: v for k, v in values.items() if v}
    return render_template(
        "core/admin_audit.html",
        entries=entries,
        total=total,
        page=page_number,
        last_page=last_page,
        values=values,
        types=types,
        actions=actions,
        people=people,
        names=names,
        labels=audit.object_labels(db, entries),
        error=error,
        previous_url=_page_url(query, page_number - 1) if page_number > 1 else None,
        next_url=_page_url(query, page_number + 1) if page_number < last_page else None,
        today=local_date(clock_now()).isoformat(),
    ), status


def _page_url(query: dict[str, str], page: int) -> str:
    return url_for("admin.audit_log") + "?" + urlencode({**query, "page": page})


@bp.post("/audit/export")
@roles_required(Role.ADMIN)
def audit_export() -> Response | WerkzeugResponse:
    try:
        wanted, _values = _read_filter()
    except _FilterError:
        flash(_("Check the filters before exporting."), "error")
        return redirect(url_for("admin.audit_log"))
    db = get_session()
    now = clock_now()
    body, _count = audit.export_csv(db, wanted, actor=_me(), now=now)
    db.commit()
    filename = f"ali-audit-{local_date(now).isoformat()}.csv"
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    register_nav(app, NavItem("admin.user_list", _l("Users"), (Role.ADMIN,)))
    register_nav(app, NavItem("admin.audit_log", _l("Audit log"), (Role.ADMIN,)))
