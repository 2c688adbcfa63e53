"""The application factory: builds settings, database, auth, telephony and the features."""

from __future__ import annotations

import importlib
import logging
from datetime import timedelta
from pathlib import Path

from flask import Flask, Response, request
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from core import accesslog, auth, crypto, db, errors, i18n, metrics, nav, scheduler, telephony
from core.clock import Clock, SystemClock
from core.config import Settings, load_settings
from core.models import Role

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Features plug themselves in through their package's `init_app(app)`, in dependency order.
# Named here rather than imported so that core never imports upward.
FEATURES = ("oncall", "routing", "intake")

csrf = CSRFProtect()

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    engine: Engine | None = None,
    telephony_backend: telephony.Telephony | None = None,
) -> Flask:
    settings = settings or load_settings()
    app = Flask(
        "ali",
        root_path=str(PROJECT_ROOT),
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "core" / "static"),
        instance_path=str(settings.instance_path),
    )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="ali_session",
        REMEMBER_COOKIE_DURATION=timedelta(seconds=0),
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.session_idle_minutes),
        WTF_CSRF_TIME_LIMIT=None,  # the session's idle timeout already bounds the token
        # Flask-WTF's HTTPS check wants a same-origin Referer, which Referrer-Policy no-referrer
        # never sends: every form posted over HTTPS would fail. The token and SameSite guard.
        WTF_CSRF_SSL_STRICT=False,
        MAX_CONTENT_LENGTH=1024 * 1024,
        JSON_SORT_KEYS=False,
    )
    app.extensions["ali.settings"] = settings
    if settings.trusted_proxies:
        # Behind nginx or a load balancer every request comes from the proxy: without this,
        # login throttling would count everyone's failures as one address's.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]
    app.extensions["ali.clock"] = clock or SystemClock()
    crypto.configure(settings.encryption_keys)

    db.init_app(app, engine or db.make_engine(settings.database_url))
    app.extensions["ali.telephony"] = telephony_backend or telephony.build_telephony(
        settings, app.extensions["ali.sessionmaker"], app.extensions["ali.clock"]
    )
    auth.init_app(app)
    i18n.init_app(app)
    csrf.init_app(app)
    scheduler.init_app(app)
    nav.init_app(app)
    if settings.telephony_backend == "sandbox":
        nav.register_nav(app, nav.NavItem("core.sandbox", _l("Sandbox outbox"), (Role.ADMIN,)))

    from core import account, admin, cli, views, webhooks  # noqa: PLC0415 -- blueprints need the app

    app.register_blueprint(views.bp)
    app.register_blueprint(webhooks.bp)
    csrf.exempt(webhooks.bp)
    errors.init_app(app)
    cli.init_app(app)
    metrics.init_app(app)
    account.init_app(app)
    admin.init_app(app)

    for name in FEATURES:
        module = importlib.import_module(name)
        init_feature = getattr(module, "init_app", None)
        if init_feature is not None:
            init_feature(app)

    app.after_request(_security_headers)
    if settings.public_url.startswith("https://"):
        # Served over HTTPS: browsers never try plain HTTP again, where a session cookie or a
        # login form could be intercepted (a year; renewed by every answer).
        app.after_request(_strict_transport_security)
    _configure_logging(app)
    return app


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if request.endpoint != "static":
        # Pages show personal data; no shared cache or back-button copy should keep it.
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _strict_transport_security(response: Response) -> Response:
    response.headers["Strict-Transport-Security"] = "max-age=31536000"
    return response


def _configure_logging(app: Flask) -> None:
    accesslog.install()
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, errors.RedactDatabaseValues) for f in handler.filters):
            handler.addFilter(errors.RedactDatabaseValues())
    app.logger.setLevel(logging.INFO)
    # One line per job run every few seconds would drown what matters at 3 a.m.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
