"""Shell pages: login, logout, language, home, health checks and the sandbox outbox."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

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

from core import dashboard, twofactor
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
from core.forms import CodeForm, LanguageForm, LoginForm
from core.i18n import LANGUAGES
from core.models import DeliveryStatus, OutboxMessage, Role, User, WorkerHeartbeat
from core.phones import InvalidPhone, normalise_phone
from core.readiness import Readiness, readiness_checks
from core.sandbox import (
    CALL_ACTIONS,
    CALL_OVER,
    CALLER_ACTIONS,
    INCOMING_CALL,
    MAX_REPLY,
    OPERATOR_ACTIONS,
    Exchange,
    IncomingCall,
    Outgoing,
    SandboxError,
    SandboxPhone,
    incoming_sms,
    local_link,
    record_exchange,
)
from core.scheduler import HEARTBEAT_FRESH

log = logging.getLogger(__name__)
bp = Blueprint("core", __name__)
# Between a right password and a right code: the user's session token, when, where to go.
PENDING_LOGIN = "pending_login"
PENDING_SECONDS = 300


@bp.get("/")
@login_required
def home() -> str:
    return render_template(
        "core/home.html", panels=_dashboard_panels(), refresh_seconds=dashboard.REFRESH_SECONDS
    )


@bp.get("/dashboard/panels")
@login_required
def dashboard_panels() -> str:
    """The panels alone: the home page fetches them every 30 s instead of reloading."""
    return render_template("core/_panels.html", panels=_dashboard_panels())


def _dashboard_panels() -> list[dashboard.ShownPanel]:
    db = get_session()
    shown = dashboard.panels_for(db, current_user, clock_now())
    db.commit()  # a panel may have written its audit entry
    return shown


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
            flash(_("Wrong email or password, or the account is not active."), "error")
            return render_template("core/login.html", form=form), 401
        db.commit()
        target = safe_next(next_url, url_for("core.home"))
        if twofactor.is_enrolled(user):
            session.clear()
            session[PENDING_LOGIN] = {
                "token": user.session_token,
                "at": int(clock_now().timestamp()),
                "next": target,
            }
            return redirect(url_for("core.login_code"))
        _start_session(user)
        return redirect(target)
    status = 400 if request.method == "POST" else 200
    return render_template("core/login.html", form=form), status


def _start_session(user: User) -> None:
    session.clear()  # a fresh session on login: no fixation
    login_user(user)
    session.permanent = True
    session["seen"] = int(clock_now().timestamp())


@bp.route("/login/code", methods=["GET", "POST"])
def login_code() -> str | WerkzeugResponse | tuple[str, int]:
    """The second step of a login for users enrolled in two-factor login."""
    pending = session.get(PENDING_LOGIN)
    now = clock_now()
    db = get_session()
    user = None
    if isinstance(pending, dict) and now.timestamp() - pending.get("at", 0) <= PENDING_SECONDS:
        user = db.scalar(select(User).where(User.session_token == str(pending.get("token"))))
    if user is None or not isinstance(pending, dict):
        # Expired, or the user's sessions ended meanwhile (its token changed): start again.
        session.pop(PENDING_LOGIN, None)
        flash(_("Sign in again: the code was not entered in time."), "error")
        return redirect(url_for("core.login"))
    form = CodeForm()
    if form.validate_on_submit():
        try:
            method = twofactor.verify_login_code(
                db,
                user,
                code=form.code.data,
                settings=get_settings(),
                now=now,
                remote_addr=request.remote_addr,
            )
        except LoginThrottled:
            db.commit()
            flash(_("Too many attempts. Wait a few minutes and try again."), "error")
            return render_template("core/login_code.html", form=form), 429
        except LoginRefused:
            db.commit()
            if user.session_token != pending.get("token"):
                session.pop(PENDING_LOGIN, None)
                flash(_("Wrong email or password, or the account is not active."), "error")
                return redirect(url_for("core.login"))
            flash(
                _("Wrong code. Type the 6 digits your app shows now, or a recovery code."), "error"
            )
            return render_template("core/login_code.html", form=form), 401
        db.commit()
        _start_session(user)
        if method == "recovery_code":
            flash(
                _(
                    "You signed in with a recovery code; %(num)d are left.",
                    num=len(user.recovery_code_hashes),
                ),
                "success",
            )
        return redirect(safe_next(str(pending.get("next")), url_for("core.home")))
    status = 400 if request.method == "POST" else 200
    return render_template("core/login_code.html", form=form), status


@bp.post("/logout")
@login_required
def logout() -> WerkzeugResponse:
    # The cookie names the user's session token: a new token makes every copy of the cookie
    # worthless (the one mechanism that also ends sessions on a password change, a reset or a
    # deactivation). It ends the user's sessions on their other devices too.
    user: User = current_user._get_current_object()
    db = get_session()
    user.new_session_token()
    db.commit()
    logout_user()
    session.clear()
    return redirect(url_for("core.login"))


@bp.post("/language")
def language() -> WerkzeugResponse:
    form = LanguageForm()
    if form.validate_on_submit() and form.lang.data in LANGUAGES:
        # The pages only: SMS and calls keep the language saved in the profile.
        session["lang"] = form.lang.data
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
        incoming_call=INCOMING_CALL,
        operator_actions=OPERATOR_ACTIONS,
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


# --- calls and texts to Ali's number, simulated ------------------------------------------------

SANDBOX_NUMBER = "+390000000000"
MAX_KEYS = 8


def _sandbox_phone() -> SandboxPhone:
    if get_settings().telephony_backend != "sandbox":
        abort(404)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        return SandboxPhone(app, get_settings())
    except SandboxError:
        abort(404)


def _caller_number(field: str) -> str | None:
    try:
        return normalise_phone(request.form.get(field, ""))
    except InvalidPhone:
        flash(_("Enter the caller's phone number, e.g. +39 030 1234567."), "error")
        return None


@bp.post("/sandbox/incoming-call")
@roles_required(Role.ADMIN)
def sandbox_incoming_call() -> WerkzeugResponse:
    """Somebody calls Ali's number: the Voice webhook, then Ali's first answer."""
    phone = _sandbox_phone()
    caller = _caller_number("caller")
    if caller is None:
        return redirect(url_for("core.sandbox"))
    number = get_settings().twilio_from_number or SANDBOX_NUMBER
    call = IncomingCall(phone, sid="CA" + secrets.token_hex(16), caller=caller, number=number)
    get_session().commit()  # Ali answers in transactions of its own
    try:
        state = call.start()
    except SandboxError as exc:
        flash(_("The sandbox could not do it: %(reason)s", reason=str(exc)), "error")
        return redirect(url_for("core.sandbox"))
    db = get_session()
    message = OutboxMessage(
        sid=call.sid,
        kind=INCOMING_CALL,
        to=number,
        from_=caller,
        created_at=clock_now(),
        options={"state": state, "heard": call.heard},
    )
    db.add(message)
    db.commit()
    log.info("sandbox: incoming call simulated (outbox message %s)", message.id)
    return _back_to_sandbox(message.id)


@bp.post("/sandbox/incoming-call/<int:message_id>")
@roles_required(Role.ADMIN)
def sandbox_incoming_call_step(message_id: int) -> WerkzeugResponse:
    """The next step of a simulated call: the caller's keys, message or hang-up; the rung
    operator's answer; the end of a connected call."""
    phone = _sandbox_phone()
    db = get_session()
    message = db.get(OutboxMessage, message_id)
    if message is None or message.kind != INCOMING_CALL:
        abort(404)
    options = dict(message.options or {})
    state: dict[str, Any] = dict(options.get("state") or {"kind": "over"})
    call = IncomingCall(phone, sid=message.sid, caller=message.from_, number=message.to)
    call.heard = list(options.get("heard") or [])
    db.commit()
    action = request.form.get("action", "")
    keys = request.form.get("keys", "").strip()
    if action == "keys" and not (0 < len(keys) <= MAX_KEYS and set(keys) <= set("0123456789*#")):
        flash(_("Type the keys to press: digits, * or #."), "error")
        return _back_to_sandbox(message_id)
    try:
        if action in CALLER_ACTIONS:
            state = call.caller_acts(state, action, keys.rstrip("#"))
        elif action in OPERATOR_ACTIONS:
            state = call.operator_acts(state, action)
        elif action == "end":
            state = call.end_connected(state)
        else:
            abort(400)
    except SandboxError as exc:
        flash(_("The sandbox could not do it: %(reason)s", reason=str(exc)), "error")
        return _back_to_sandbox(message_id)
    message = db.get(OutboxMessage, message_id)
    if message is not None:
        message.options = {"state": state, "heard": call.heard[-40:]}
        db.commit()
    return _back_to_sandbox(message_id)


@bp.post("/sandbox/incoming-sms")
@roles_required(Role.ADMIN)
def sandbox_incoming_sms() -> WerkzeugResponse:
    """Somebody texts Ali's number: the Messaging webhook; Ali's reply is shown."""
    phone = _sandbox_phone()
    sender = _caller_number("sender")
    body = request.form.get("body", "").strip()
    if sender is None:
        return redirect(url_for("core.sandbox"))
    if not body or len(body) > MAX_REPLY:
        flash(_("Write a text of at most %(count)d characters.", count=MAX_REPLY), "error")
        return redirect(url_for("core.sandbox"))
    number = get_settings().twilio_from_number or SANDBOX_NUMBER
    get_session().commit()
    try:
        exchange = incoming_sms(phone, sender=sender, number=number, body=body)
    except SandboxError as exc:
        flash(_("The sandbox could not do it: %(reason)s", reason=str(exc)), "error")
        return redirect(url_for("core.sandbox"))
    if exchange.answer:
        flash(_("Ali replied: %(text)s", text=exchange.answer), "success")
    else:
        flash(_("Ali sent no answer."), "success")
    return redirect(url_for("core.sandbox"))
