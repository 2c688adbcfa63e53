"""Shell pages: login, logout, language, home, health checks and the sandbox outbox."""

from __future__ import annotations

import logging
from datetime import datetime

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response as WerkzeugResponse

from core.auth import (
    LoginRefused,
    LoginThrottled,
    authenticate,
    login_required,
    roles_required,
    safe_next,
)
from core.clock import now as clock_now
from core.config import Settings
from core.db import get_session
from core.forms import LanguageForm, LoginForm
from core.i18n import LANGUAGES
from core.models import OutboxMessage, Role, User, WorkerHeartbeat
from core.scheduler import HEARTBEAT_FRESH

log = logging.getLogger(__name__)
bp = Blueprint("core", __name__)


@bp.get("/")
@login_required
def home() -> str:
    return render_template("core/home.html")


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | WerkzeugResponse | tuple[str, int]:
    form = LoginForm()
    next_url = request.args.get("next")
    if current_user.is_authenticated:
        return redirect(safe_next(next_url, url_for("core.home")))
    if form.validate_on_submit():
        db = get_session()
        settings: Settings = current_app.extensions["ali.settings"]
        try:
            user = authenticate(
                db,
                settings=settings,
                email=form.email.data,
                password=form.password.data,
                now=clock_now(),
                remote_addr=request.remote_addr,
            )
        except LoginThrottled:
            db.commit()
            flash(_("Too many attempts. Wait a few minutes and try again."), "error")
            return render_template("core/login.html", form=form), 429
        except LoginRefused:
            db.commit()
            flash(_("Wrong email or password, or the account is locked."), "error")
            return render_template("core/login.html", form=form), 401
        db.commit()
        session.clear()  # a fresh session on login: no fixation
        login_user(user)
        session.permanent = True
        session["seen"] = int(clock_now().timestamp())
        return redirect(safe_next(next_url, url_for("core.home")))
    status = 400 if request.method == "POST" else 200
    return render_template("core/login.html", form=form), status


@bp.post("/logout")
@login_required
def logout() -> WerkzeugResponse:
    logout_user()
    session.clear()
    return redirect(url_for("core.login"))


@bp.post("/language")
def language() -> WerkzeugResponse:
    form = LanguageForm()
    if form.validate_on_submit() and form.lang.data in LANGUAGES:
        session["lang"] = form.lang.data
        if current_user.is_authenticated:
            user: User = current_user
            user.locale = form.lang.data
            get_session().commit()
    target = request.form.get("next")
    return redirect(safe_next(target, url_for("core.home")))


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready when the database answers and some scheduler beat recently."""
    now = clock_now()
    checks: dict[str, object] = {}
    ok = True
    try:
        db = get_session()
        db.execute(text("SELECT 1"))
        last: datetime | None = db.scalar(select(func.max(WorkerHeartbeat.beat_at)))
        checks["database"] = "ok"
    except SQLAlchemyError:
        log.exception("readiness: database unreachable")
        checks["database"] = "unreachable"
        return jsonify(status="unavailable", checks=checks), 503
    if last is None:
        checks["worker"] = {"status": "never_seen"}
        ok = False
    else:
        age = (now - last).total_seconds()
        fresh = now - last <= HEARTBEAT_FRESH
        checks["worker"] = {
            "status": "ok" if fresh else "stale",
            "last_heartbeat": last.isoformat(),
            "age_seconds": round(age, 1),
        }
        ok = ok and fresh
    return jsonify(status="ok" if ok else "unavailable", checks=checks), 200 if ok else 503


@bp.get("/sandbox")
@roles_required(Role.ADMIN)
def sandbox() -> str:
    settings: Settings = current_app.extensions["ali.settings"]
    if settings.telephony_backend != "sandbox":
        abort(404)
    messages = get_session().scalars(
        select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(200)
    )
    return render_template("core/sandbox.html", messages=list(messages))
