"""Shell pages: login, logout, language, home, health checks and the sandbox outbox."""

from __future__ import annotations

import logging
from collections.abc import Callable
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
from core.config import get_settings
from core.db import get_session
from core.forms import LanguageForm, LoginForm
from core.i18n import LANGUAGES, set_user_locale
from core.models import DeliveryStatus, OutboxMessage, Role, WorkerHeartbeat
from core.readiness import Readiness, readiness_checks
from core.sandbox import (
    CALL_ACTIONS,
    CALL_OVER,
    MAX_REPLY,
    Exchange,
    Outgoing,
    SandboxError,
    SandboxPhone,
    local_link,
    record_exchange,
)
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
        try:
            user = authenticate(
                db,
                settings=get_settings(),
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
            db = get_session()
            set_user_locale(db, user=current_user, locale=form.lang.data, now=clock_now())
            db.commit()
    target = request.form.get("next")
    return redirect(safe_next(target, url_for("core.home")))


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready when the database answers, some scheduler beat recently and every check the
    features registered passes; a 503 names what fails in `failing`."""
    now = clock_now()
    checks: dict[str, object] = {}
    failing: list[str] = []
    try:
        db = get_session()
        db.execute(text("SELECT 1"))
        last: datetime | None = db.scalar(select(func.max(WorkerHeartbeat.beat_at)))
        checks["database"] = "ok"
    except SQLAlchemyError:
        log.exception("readiness: database unreachable")
        checks["database"] = "unreachable"
        return jsonify(status="unavailable", checks=checks, failing=["database"]), 503
    if last is None:
        checks["worker"] = {"status": "never_seen"}
        failing.append("worker")
    else:
        age = (now - last).total_seconds()
        fresh = now - last <= HEARTBEAT_FRESH
        checks["worker"] = {
            "status": "ok" if fresh else "stale",
            "last_heartbeat": last.isoformat(),
            "age_seconds": round(age, 1),
        }
        if not fresh:
            failing.append("worker")
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    for name, check in readiness_checks(app).items():
        try:
            verdict = check(db, now)
        except SQLAlchemyError:
            log.exception("readiness: check %s failed", name)
            verdict = Readiness("error")
        checks[name] = {"status": verdict.status, **verdict.detail}
        if not verdict.ok:
            failing.append(name)
    if failing:
        return jsonify(status="unavailable", checks=checks, failing=failing), 503
    return jsonify(status="ok", checks=checks, failing=[]), 200


@bp.get("/sandbox")
@roles_required(Role.ADMIN)
def sandbox() -> str:
    """The outbox, newest first, with what each message's phone did and Ali answered."""
    if get_settings().telephony_backend != "sandbox":
        abort(404)
    db = get_session()
    messages = list(db.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(200)))
    sids = [message.sid for message in messages]
    found = db.scalars(select(DeliveryStatus).where(DeliveryStatus.sid.in_(sids)))
    statuses = {row.sid: row for row in found}
    public_url = get_settings().public_url
    links = {message.id: local_link(message.body, public_url) for message in messages}
    return render_template(
        "core/sandbox.html",
        messages=messages,
        statuses=statuses,
        links=links,
        call_over=CALL_OVER,
        max_reply=MAX_REPLY,
    )


@bp.post("/sandbox/<int:message_id>/reply")
@roles_required(Role.ADMIN)
def sandbox_reply(message_id: int) -> WerkzeugResponse:
    """Ali receives a reply to an outbox SMS, as if its phone had texted back."""
    outgoing = _sandbox_outgoing(message_id, "sms")
    body = request.form.get("body", "").strip()
    if not body or len(body) > MAX_REPLY:
        flash(_("Write a reply of at most %(count)d characters.", count=MAX_REPLY), "error")
        return _back_to_sandbox(message_id)
    return _simulate(outgoing, lambda phone: phone.reply(outgoing, body))


@bp.post("/sandbox/<int:message_id>/call")
@roles_required(Role.ADMIN)
def sandbox_call(message_id: int) -> WerkzeugResponse:
    """An outbox call is answered (a key pressed), taken by voicemail or never answered."""
    outgoing = _sandbox_outgoing(message_id, "call")
    action = request.form.get("action", "")
    if action not in CALL_ACTIONS:
        abort(400)
    return _simulate(outgoing, lambda phone: phone.answer_call(outgoing, action))


def _sandbox_outgoing(message_id: int, kind: str) -> Outgoing:
    if get_settings().telephony_backend != "sandbox":
        abort(404)
    db = get_session()
    message = db.get(OutboxMessage, message_id)
    if message is None or message.kind != kind:
        abort(404)
    outgoing = Outgoing.of(message)
    # Ali answers the simulated request in transactions of its own; on SQLite this one
    # would hold the write lock they need.
    db.commit()
    return outgoing


def _simulate(outgoing: Outgoing, act: Callable[[SandboxPhone], Exchange]) -> WerkzeugResponse:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        exchange = act(SandboxPhone(app, get_settings()))
    except SandboxError as exc:
        log.warning("sandbox: simulation on outbox message %s failed", outgoing.id)
        flash(_("The sandbox could not do it: %(reason)s", reason=str(exc)), "error")
        return _back_to_sandbox(outgoing.id)
    db = get_session()
    record_exchange(db, outgoing.id, exchange, clock_now())
    db.commit()
    log.info("sandbox: %s on outbox message %s", exchange.action, outgoing.id)
    if exchange.action == "no-answer":
        flash(_("The call rang out unanswered: Ali was told (no-answer)."), "success")
    elif exchange.action == "voicemail":
        flash(_("Voicemail took the call: Ali counts it as not reached."), "success")
    elif not exchange.answer:
        flash(_("Ali sent no answer."), "success")
    elif exchange.action == "reply":
        flash(_("Ali replied: %(text)s", text=exchange.answer), "success")
    else:
        flash(_("Ali said: %(text)s", text=exchange.answer), "success")
    return _back_to_sandbox(outgoing.id)


def _back_to_sandbox(message_id: int) -> WerkzeugResponse:
    return redirect(url_for("core.sandbox", _anchor=f"outbox-{message_id}"))
