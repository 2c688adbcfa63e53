"""People who log in: create, change, deactivate and reset them, with the same rules and audit
whether an admin uses the CLI or the users page."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.auth import hash_password
from core.models import Role, User
from core.passwords import WeakPassword, check_new_password
from core.phones import InvalidPhone, normalise_phone

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
Actor = User | str


class UserError(ValueError):
    """A change the rules refuse; ``field`` names the form field, the message says why."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class UserDetails:
    """What an admin sets about a person (the e-mail only at creation)."""

    display_name: str
    roles: Collection[str]
    provinces: Collection[str]
    phone: str | None = None
    locale: str = "it"


def generate_password() -> str:
    """A one-time password for the person to type once and replace (20 URL-safe characters)."""
    return secrets.token_urlsafe(15)


def _clean_details(details: UserDetails, served: Collection[str]) -> UserDetails:
    name = details.display_name.strip()
    if not name or len(name) > 120 or _CONTROL.search(name):
        raise UserError("the name must have 1 to 120 printable characters", field="display_name")
    roles = list(dict.fromkeys(r.strip().lower() for r in details.roles))
    unknown_roles = [r for r in roles if r not in {role.value for role in Role}]
    if unknown_roles:
        raise UserError(f"not a role: {', '.join(unknown_roles)}", field="roles")
    if not roles:
        raise UserError("choose at least one role", field="roles")
    provinces = list(dict.fromkeys(p.strip().upper() for p in details.provinces))
    unknown = [p for p in provinces if p not in served]
    if unknown:
        raise UserError(f"not a served province: {', '.join(unknown)}", field="provinces")
    phone: str | None = None
    if details.phone and details.phone.strip():
        try:
            phone = normalise_phone(details.phone)
        except InvalidPhone as exc:
            raise UserError(str(exc), field="phone") from None
    if details.locale not in {"it", "en"}:
        raise UserError("the language is it or en", field="locale")
    return UserDetails(name, roles, provinces, phone, details.locale)


def check_new_user(
    session: Session, *, email: str, details: UserDetails, served: Collection[str]
) -> tuple[str, UserDetails]:
    """The e-mail and details cleaned, or UserError: checked before asking for a password."""
    email = email.strip().lower()
    if not _EMAIL.match(email) or len(email) > 254 or _CONTROL.search(email):
        raise UserError(f"{email!r} is not an e-mail address", field="email")
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise UserError(f"a user with e-mail {email} already exists", field="email")
    return email, _clean_details(details, served)


def create_user(
    session: Session,
    *,
    email: str,
    details: UserDetails,
    password: str,
    served: Collection[str],
    actor: Actor,
    now: datetime,
    must_change_password: bool = False,
) -> User:
    """A new active user; flushes (the id is known), audits, never commits."""
    email, clean = check_new_user(session, email=email, details=details, served=served)
    try:
        check_new_password(password, personal=(email, clean.display_name))
    except WeakPassword as exc:
        raise UserError(str(exc), field="password") from None
    user = User(
        email=email,
        display_name=clean.display_name,
        roles=list(clean.roles),
        provinces=list(clean.provinces),
        phone=clean.phone,
        locale=clean.locale,
        password_hash=hash_password(password),
        must_change_password=must_change_password,
        created_at=now,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        now=now,
        action="create",
        object_type="user",
        object_id=user.id,
        actor=actor,
        fields=["email", "display_name", "phone", "roles", "provinces", "password_hash"],
    )
    return user


def update_user(
    session: Session,
    user: User,
    *,
    details: UserDetails,
    served: Collection[str],
    actor: Actor,
    now: datetime,
) -> list[str]:
    """Change name, roles, provinces, phone and language; returns the fields changed
    (audited when any). A new phone must be verified again before Ali pages it."""
    clean = _clean_details(details, served)
    if isinstance(actor, User) and actor.id == user.id and Role.ADMIN.value not in clean.roles:
        # The last door out: an admin who drops their own role may leave nobody to undo it.
        raise UserError("you cannot remove your own admin role", field="roles")
    changed: list[str] = []
    if user.display_name != clean.display_name:
        user.display_name = clean.display_name
        changed.append("display_name")
    if sorted(user.roles) != sorted(clean.roles):
        user.roles = list(clean.roles)
        changed.append("roles")
    if sorted(user.provinces) != sorted(clean.provinces):
        user.provinces = list(clean.provinces)
        changed.append("provinces")
    if user.phone != clean.phone:
        user.phone = clean.phone
        user.phone_verified_at = None
        changed.extend(["phone", "phone_verified_at"])
    if user.locale != clean.locale:
        user.locale = clean.locale
        changed.append("locale")
    if changed:
        audit.record(
            session,
            now=now,
            action="update",
            object_type="user",
            object_id=user.id,
            actor=actor,
            fields=changed,
        )
    return changed


def set_active(session: Session, user: User, *, active: bool, actor: Actor, now: datetime) -> bool:
    """Deactivate or reactivate; a deactivated user's sessions end at once. Returns whether
    anything changed."""
    if user.active == active:
        return False
    if not active and isinstance(actor, User) and actor.id == user.id:
        raise UserError("you cannot deactivate yourself")
    user.active = active
    if not active:
        user.new_session_token()
    audit.record(
        session,
        now=now,
        action="update",
        object_type="user",
        object_id=user.id,
        actor=actor,
        fields=["active"],
        detail={"active": active},
    )
    return True


def reset_password(session: Session, user: User, *, actor: Actor, now: datetime) -> str:
    """A one-time password (returned once, to show the admin), to be changed at the next
    login; every session of the user ends and the login delays of the account start again."""
    password = generate_password()
    user.password_hash = hash_password(password)
    user.must_change_password = True
    user.new_session_token()
    audit.record(
        session,
        now=now,
        action="update",
        object_type="user",
        object_id=user.id,
        actor=actor,
        fields=["password_hash", "must_change_password"],
        detail={"reason": "password reset"},
    )
    return password


def change_own_password(session: Session, user: User, *, password: str, now: datetime) -> None:
    """The user's new password (after a reset, or any time); other sessions end.
    WeakPassword when it is blank, short or guessable."""
    if _CONTROL.search(password):
        raise UserError("the password cannot hold control characters", field="password")
    check_new_password(password, personal=(user.email, user.display_name))
    user.password_hash = hash_password(password)
    user.must_change_password = False
    user.new_session_token()
    audit.record(
        session,
        now=now,
        action="update",
        object_type="user",
        object_id=user.id,
        actor=user,
        fields=["password_hash", "must_change_password"],
    )


def all_users(session: Session) -> list[User]:
    """Everyone, active first, by name."""
    return list(session.scalars(select(User).order_by(User.active.desc(), User.display_name)))


# What deactivating a person would break, told to the admin before they confirm. Features
# above core know (oncall: the rota gaps it opens) and register a check; core cannot import
# them. A check returns sentences for the admin, already translated.
DeactivationCheck = Callable[[Session, User, datetime], list[str]]
_CHECKS_KEY = "ali.deactivation_checks"


def register_deactivation_check(app: Flask, check: DeactivationCheck) -> None:
    app.extensions.setdefault(_CHECKS_KEY, []).append(check)


def deactivation_consequences(session: Session, user: User, now: datetime) -> list[str]:
    checks: list[DeactivationCheck] = current_app.extensions.get(_CHECKS_KEY, [])
    return [line for check in checks for line in check(session, user, now)]
