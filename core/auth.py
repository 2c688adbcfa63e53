"""Authentication and authorisation: passwords, login throttling, roles, who may see and edit
which province, idle timeout."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import wraps
from typing import ParamSpec, TypeVar
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask, abort, current_app, session
from flask_login import LoginManager, current_user, logout_user
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import audit
from core.clock import now as clock_now
from core.config import Settings, get_settings
from core.db import get_session
from core.models import AuditEntry, Role, User

log = logging.getLogger(__name__)
_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so a miss costs the same time as a hit.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def use_password_hasher(hasher: PasswordHasher) -> None:
    """Swap the argon2 parameters (the test suite uses cheap ones to stay fast)."""
    global _hasher, _DUMMY_HASH  # noqa: PLW0603 -- process-wide hashing parameters
    _hasher = hasher
    _DUMMY_HASH = hasher.hash("not-a-real-password")


IP_FAILURES_PER_WINDOW = 30
MIN_PASSWORD_LENGTH = 12

P = ParamSpec("P")
R = TypeVar("R")


class LoginRefused(Exception):
    """A login attempt did not succeed; `reason` is for logs, users see one generic message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LoginThrottled(LoginRefused):
    """Too many failures from this address; the caller answers 429."""


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def password_matches(user: User, password: str) -> bool:
    """The user's own password, checked again (before they change it)."""
    return _verify(user.password_hash, password)


def check_address(
    db: Session, *, settings: Settings, now: datetime, remote_addr: str | None
) -> None:
    """LoginThrottled when this address failed too often lately (passwords and codes alike)."""
    if not remote_addr:
        return
    window_start = now - timedelta(minutes=settings.login_lockout_minutes)
    recent = db.scalar(
        select(func.count(AuditEntry.id)).where(
            AuditEntry.action == "login_failed",
            AuditEntry.remote_addr == remote_addr,
            AuditEntry.at >= window_start,
        )
    )
    if (recent or 0) >= IP_FAILURES_PER_WINDOW:
        raise LoginThrottled("address throttled")


def is_locked(user: User, now: datetime) -> bool:
    return user.locked_until is not None and user.locked_until > now


def count_failure(
    db: Session, *, settings: Settings, now: datetime, user: User | None, reason: str
) -> None:
    """One more failed attempt (a password or a second-factor code): the account locks after
    ``login_max_failures`` and its sessions end; audited as login_failed."""
    if user is not None:
        user.failed_logins += 1
        if user.failed_logins >= settings.login_max_failures:
            user.locked_until = now + timedelta(minutes=settings.login_lockout_minutes)
            user.failed_logins = 0
            user.new_session_token()
    _failed(db, now, user, reason)


def authenticate(
    db: Session,
    *,
    settings: Settings,
    email: str,
    password: str,
    now: datetime,
    remote_addr: str | None,
) -> User:
    """Check a password with per-account lockout and per-address throttling; audit either way.

    A user enrolled in two-factor login is not logged in yet: the entry says
    ``login_password`` and core.twofactor records the ``login`` once the code is right.
    """
    check_address(db, settings=settings, now=now, remote_addr=remote_addr)
    user = db.scalar(select(User).where(User.email == email.strip().lower()))
    if user is not None and is_locked(user, now):
        _verify(None, password)
        _failed(db, now, user, "locked")
        raise LoginRefused("locked")
    if user is None or not user.active or not _verify(user.password_hash, password):
        reason = "bad_credentials" if user is None or user.active else "inactive"
        count_failure(db, settings=settings, now=now, user=user, reason=reason)
        raise LoginRefused("bad credentials")

    if _hasher.check_needs_rehash(user.password_hash or ""):
        user.password_hash = _hasher.hash(password)
    user.failed_logins = 0
    user.locked_until = None
    if user.totp_enabled_at is not None:
        audit.record(
            db, now=now, action="login_password", object_type="user", object_id=user.id, actor=user
        )
        return user
    user.last_login_at = now
    audit.record(db, now=now, action="login", object_type="user", object_id=user.id, actor=user)
    return user


def record_refusal(db: Session, *, now: datetime, user: User | None, reason: str) -> None:
    """A refused attempt that does not count towards the lockout (the account is already
    locked or inactive): audited as login_failed, which the address throttle counts."""
    _failed(db, now, user, reason)


def _failed(db: Session, now: datetime, user: User | None, reason: str) -> None:
    audit.record(
        db,
        now=now,
        action="login_failed",
        object_type="user",
        object_id=None if user is None else user.id,
        detail={"reason": reason},
    )
    # Ids only: the e-mail typed may be a victim's name pasted by mistake.
    log.warning("login failed: %s (user id %s)", reason, None if user is None else user.id)


def is_safe_next(target: str | None) -> bool:
    """Only same-site relative paths; blocks //evil.example and scheme tricks."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc and "\\" not in target


def safe_next(target: str | None, default: str) -> str:
    """`target` when it is a safe same-site path, else `default`."""
    return target if target is not None and is_safe_next(target) else default


# ---------------------------------------------------------------------------------------
# Who may see and edit what: the rules live here; views and services ask, never decide.


def can_see_province(user: User, sigla: str) -> bool:
    """Coordinators and admins see every province; everyone else the provinces they cover."""
    return user.has_role(Role.COORDINATOR, Role.ADMIN) or sigla in user.provinces


def visible_provinces(user: User, served: Iterable[str]) -> list[str]:
    """The served provinces the user sees, in the order of ``served``."""
    return [sigla for sigla in served if can_see_province(user, sigla)]


def can_edit_rota(user: User, province: str | None) -> bool:
    """Coordinators and admins edit every rota, the coordinators' own (``None``) included;
    rota managers the rotas of the provinces they cover; nobody else any."""
    if user.has_role(Role.COORDINATOR, Role.ADMIN):
        return True
    return province is not None and user.has_role(Role.ROTA_MANAGER) and province in user.provinces


def editable_rotas(user: User, served: Iterable[str]) -> list[str]:
    """The served provinces whose rota the user edits (and whose calendar feeds they manage)."""
    return [sigla for sigla in served if can_edit_rota(user, sigla)]


# ---------------------------------------------------------------------------------------
# View decorators and the session


def login_required(view: Callable[P, R]) -> Callable[P, R]:
    """View decorator: any logged-in user."""

    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        if not current_user.is_authenticated:
            return current_app.login_manager.unauthorized()  # type: ignore[attr-defined,no-any-return]
        return view(*args, **kwargs)

    return wrapped


def roles_required(*roles: Role) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """View decorator: logged in and holding one of `roles` (admin always passes)."""

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
            if not current_user.is_authenticated:
                login_manager: LoginManager = current_app.login_manager  # type: ignore[attr-defined]
                return login_manager.unauthorized()  # type: ignore[no-any-return]
            user: User = current_user
            if not user.has_role(Role.ADMIN, *roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def _load_user(token: str) -> User | None:
    user = get_session().scalar(select(User).where(User.session_token == token))
    if user is None or not user.active:
        return None
    return user


def _enforce_idle_timeout() -> None:
    if not current_user.is_authenticated:
        return
    settings = get_settings()
    now = clock_now()
    last = session.get("seen")
    idle_limit = settings.session_idle_minutes * 60
    if isinstance(last, int | float) and now.timestamp() - last > idle_limit:
        logout_user()
        session.clear()
        return
    session["seen"] = int(now.timestamp())


def init_app(app: Flask) -> None:
    manager = LoginManager()
    manager.login_view = "core.login"
    manager.login_message = None
    # "basic": an operator on a phone switching between Wi-Fi and mobile data changes IP;
    # "strong" would log them out mid-case. Cookies are Secure, HttpOnly and SameSite.
    manager.session_protection = "basic"
    manager.user_loader(_load_user)
    manager.init_app(app)
    app.before_request(_enforce_idle_timeout)
