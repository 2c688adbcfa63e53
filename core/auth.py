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
from sqlalchemy import ColumnElement, Text, cast, func, select
from sqlalchemy.orm import Session

from core import audit
from core.clock import now as clock_now
from core.config import Settings, get_settings
from core.db import get_session
from core.models import AuditEntry, Role, User
from core.passwords import MIN_PASSWORD_LENGTH

log = logging.getLogger(__name__)
_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so a miss costs the same time as a hit.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def use_password_hasher(hasher: PasswordHasher) -> None:
    """Swap the argon2 parameters (the test suite uses cheap ones to stay fast)."""
    global _hasher, _DUMMY_HASH  # noqa: PLW0603 -- process-wide hashing parameters
    _hasher = hasher
    _DUMMY_HASH = hasher.hash("not-a-real-password")


# The address throttle: this many accounts (each unknown e-mail counts as one) failed from
# one address within ALI_LOGIN_LOCKOUT_MINUTES looks like guessing across accounts.
IP_FAILURES_PER_WINDOW = 30
# Failures of one account from one address are remembered this long (or until it signs in
# from there): the growing delays are per (account, address), never a lock of the account.
FAILURE_MEMORY = timedelta(hours=24)
# An account that signed in from an address within this period passes that address's
# throttle: a colleague behind the same office NAT as a guesser still signs in.
KNOWN_ADDRESS_PERIOD = timedelta(days=30)
# The refusals that count towards the delays: a throttled attempt (not even checked) does not.
_COUNTED_REASONS = frozenset({"bad_credentials", "bad_code", "inactive"})

P = ParamSpec("P")
R = TypeVar("R")


class LoginRefused(Exception):
    """A login attempt did not succeed; `reason` is for logs, users see one generic message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LoginThrottled(LoginRefused):
    """Too many failures from this address (for this account); the caller answers 429."""


def hash_password(password: str) -> str:
    """The argon2 hash of a password already accepted by core.passwords.check_password."""
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


def _same_address(remote_addr: str | None) -> ColumnElement[bool]:
    if remote_addr is None:
        return AuditEntry.remote_addr.is_(None)
    return AuditEntry.remote_addr == remote_addr


def _last_login_from(db: Session, user: User, remote_addr: str | None, since: datetime) -> int:
    """The audit id of the user's last sign-in from this address since then (0: none); ids,
    not instants, order a failure and a sign-in made within the same clock tick."""
    last: int | None = db.scalar(
        select(func.max(AuditEntry.id)).where(
            AuditEntry.action == "login",
            AuditEntry.object_type == "user",
            AuditEntry.object_id == str(user.id),
            _same_address(remote_addr),
            AuditEntry.at >= since,
        )
    )
    return last or 0


def _last_password_change(db: Session, user: User, since: datetime) -> int:
    """The audit id of the last time the user's password was set since then (0: none): a
    new password (a reset, the user's own, the CLI) starts every count again."""
    last: int | None = db.scalar(
        select(func.max(AuditEntry.id)).where(
            AuditEntry.action.in_(("update", "create")),
            AuditEntry.object_type == "user",
            AuditEntry.object_id == str(user.id),
            AuditEntry.at >= since,
            cast(AuditEntry.fields, Text).contains('"password_hash"', autoescape=True),
        )
    )
    return last or 0


def check_address(
    db: Session,
    *,
    settings: Settings,
    now: datetime,
    remote_addr: str | None,
    user: User | None,
) -> None:
    """LoginThrottled when this address failed on too many accounts lately (unknown e-mails
    and distinct accounts, passwords and codes alike), unless ``user`` signed in from this
    address within KNOWN_ADDRESS_PERIOD: a shared address under attack keeps its own people.
    Failures on one account alone never throttle the address (the per-account delays do)."""
    if not remote_addr:
        return
    window_start = now - timedelta(minutes=settings.login_lockout_minutes)
    targets = db.execute(
        select(AuditEntry.object_id, func.count(AuditEntry.id))
        .where(
            AuditEntry.action == "login_failed",
            AuditEntry.remote_addr == remote_addr,
            AuditEntry.at >= window_start,
        )
        .group_by(AuditEntry.object_id)
    ).all()
    spread = sum(count if object_id is None else 1 for object_id, count in targets)
    if spread < IP_FAILURES_PER_WINDOW:
        return
    if user is not None and _last_login_from(db, user, remote_addr, now - KNOWN_ADDRESS_PERIOD):
        return
    raise LoginThrottled("address throttled")


def login_delay(failures: int, settings: Settings) -> timedelta:
    """How long to wait after ``failures`` consecutive failures: none up to
    ``login_max_failures``, then 1, 2, 4... minutes, at most ``login_lockout_minutes``."""
    over = failures - settings.login_max_failures
    if over < 0:
        return timedelta(0)
    return timedelta(minutes=min(settings.login_lockout_minutes, 2 ** min(over, 16)))


def retry_after(
    db: Session, *, settings: Settings, now: datetime, user: User, remote_addr: str | None
) -> datetime | None:
    """When this account may try again from this address, or None when it may now.

    Counted per (account, address) from the audit log since the account last signed in from
    there or its password was last set: someone guessing elsewhere never delays the operator
    on their own phone, and no failure anywhere ends a session or locks the account."""
    since = now - FAILURE_MEMORY
    rows = db.execute(
        select(AuditEntry.at, AuditEntry.detail).where(
            AuditEntry.action == "login_failed",
            AuditEntry.object_type == "user",
            AuditEntry.object_id == str(user.id),
            _same_address(remote_addr),
            AuditEntry.at >= since,
            AuditEntry.id
            > max(
                _last_login_from(db, user, remote_addr, since),
                _last_password_change(db, user, since),
            ),
        )
    ).all()
    counted = [at for at, detail in rows if (detail or {}).get("reason") in _COUNTED_REASONS]
    delay = login_delay(len(counted), settings)
    if not counted or not delay:
        return None
    until = max(counted) + delay
    return until if until > now else None


def check_attempt(
    db: Session, *, settings: Settings, now: datetime, user: User | None, remote_addr: str | None
) -> None:
    """Before checking a password or a code: LoginThrottled (audited, not counted) when the
    address or this (account, address) pair must wait."""
    check_address(db, settings=settings, now=now, remote_addr=remote_addr, user=user)
    if user is not None and retry_after(
        db, settings=settings, now=now, user=user, remote_addr=remote_addr
    ):
        record_refusal(db, now=now, user=user, reason="throttled")
        raise LoginThrottled("account throttled from this address")


def count_failure(
    db: Session, *, settings: Settings, now: datetime, user: User | None, reason: str
) -> None:
    """One more failed attempt (a password or a second-factor code), audited as login_failed:
    it counts towards the delays of this (account, address); sessions stay as they are."""
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
    """Check a password with per-(account, address) delays and the address throttle; audit
    either way.

    A user enrolled in two-factor login is not logged in yet: the entry says
    ``login_password`` and core.twofactor records the ``login`` once the code is right.
    """
    user = db.scalar(select(User).where(User.email == email.strip().lower()))
    check_attempt(db, settings=settings, now=now, user=user, remote_addr=remote_addr)
    if user is None or not user.active or not _verify(user.password_hash, password):
        reason = "bad_credentials" if user is None or user.active else "inactive"
        count_failure(db, settings=settings, now=now, user=user, reason=reason)
        raise LoginRefused("bad credentials")

    if _hasher.check_needs_rehash(user.password_hash or ""):
        user.password_hash = _hasher.hash(password)
    if user.totp_enabled_at is not None:
        audit.record(
            db, now=now, action="login_password", object_type="user", object_id=user.id, actor=user
        )
        return user
    user.last_login_at = now
    audit.record(db, now=now, action="login", object_type="user", object_id=user.id, actor=user)
    return user


def record_refusal(db: Session, *, now: datetime, user: User | None, reason: str) -> None:
    """A refused attempt that does not count towards the delays (throttled, or the account
    cannot sign in at all): audited as login_failed, which the address throttle counts."""
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
