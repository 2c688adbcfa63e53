"""Two-factor login: TOTP enrolment (QR code drawn on the server), codes at login with the
same throttling as passwords, recovery codes shown once and stored hashed."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

import pyotp
import segno
from sqlalchemy.orm import Session

from core import audit
from core.auth import LoginRefused, check_attempt, count_failure, record_refusal
from core.config import Settings
from core.models import Role, User

ISSUER = "Ali"
RECOVERY_CODES = 10
# One step either side: a phone whose clock is 30 s off still logs in.
VALID_WINDOW = 1
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread


class CodeRefused(ValueError):
    """The code typed at enrolment is not the one the app shows."""


def is_enrolled(user: User) -> bool:
    return user.totp_enabled_at is not None


def must_enrol(user: User, settings: Settings) -> bool:
    """Coordinators and admins cannot use Ali before enrolling when the setting asks for it
    (ALI_REQUIRE_2FA, on by default in production)."""
    return (
        settings.require_2fa
        and user.has_role(Role.COORDINATOR, Role.ADMIN)
        and not is_enrolled(user)
    )


def may_turn_off(user: User, settings: Settings) -> bool:
    return not (settings.require_2fa and user.has_role(Role.COORDINATOR, Role.ADMIN))


def pending_secret(user: User) -> str:
    """The secret being enrolled: kept (encrypted) on the user until a code proves the app
    has it, so a reload of the page shows the same QR code."""
    if user.totp_secret is None or is_enrolled(user):
        user.totp_secret = pyotp.random_base32()
    return user.totp_secret


def provisioning_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_data_uri(uri: str) -> str:
    """The QR code as an SVG data: URI for an <img> (drawn here: the secret never leaves
    the server for a QR service, and the page's CSP allows data: images only)."""
    data: str = segno.make(uri, error="m").svg_data_uri(scale=5, border=3)
    return data


def _step_matching(secret: str, code: str, now: datetime) -> int | None:
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _clean_code(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def _hash_recovery(code: str) -> str:
    return hashlib.sha256(_clean_code(code).encode()).hexdigest()


def _new_recovery_codes(user: User) -> list[str]:
    codes = [
        "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        for _ in range(RECOVERY_CODES)
    ]
    user.recovery_code_hashes = [_hash_recovery(code) for code in codes]
    return [f"{code[:5]}-{code[5:]}" for code in codes]


def enable(session: Session, user: User, *, code: str, now: datetime) -> list[str]:
    """Turn two-factor login on once a code from the app matches; returns the recovery codes
    (shown once, stored hashed)."""
    secret = user.totp_secret
    step = None if secret is None else _step_matching(secret, _clean_code(code), now)
    if step is None:
        raise CodeRefused("code")
    user.totp_enabled_at = now
    user.totp_last_step = step
    codes = _new_recovery_codes(user)
    audit.record(
        session,
        now=now,
        action="update",
        object_type="user",
        object_id=user.id,
        actor=user,
        fields=["totp_secret", "totp_enabled_at", "recovery_code_hashes"],
        detail={"two_factor": "enabled"},
    )
    return codes


def disable(session: Session, user: User, *, actor: User | str, now: datetime) -> None:
    """Two-factor login off (the user, where allowed, or an admin for a lost phone)."""
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    user.recovery_code_hashes = []
    audit.record(
        session,
        now=now,
        action="update",
        object_type="user",
        object_id=user.id,
        actor=actor,
        fields=["totp_secret", "totp_enabled_at", "recovery_code_hashes"],
        detail={"two_factor": "disabled"},
    )


def verify_login_code(
    session: Session,
    user: User,
    *,
    code: str,
    settings: Settings,
    now: datetime,
    remote_addr: str | None,
) -> str:
    """The second step of a login: a TOTP code (never the same step twice) or an unused
    recovery code. Failures count towards the same delays and address throttle as wrong
    passwords. Returns how the user got in (``totp`` or ``recovery_code``), audited."""
    if not user.active or user.totp_secret is None:
        record_refusal(session, now=now, user=user, reason="cannot_sign_in")
        raise LoginRefused("cannot sign in")
    check_attempt(session, settings=settings, now=now, user=user, remote_addr=remote_addr)
    cleaned = _clean_code(code)
    method: str | None = None
    step = _step_matching(user.totp_secret, cleaned, now) if cleaned.isdigit() else None
    if step is not None and step > (user.totp_last_step or -1):
        user.totp_last_step = step
        method = "totp"
    elif not cleaned.isdigit() and (hashed := _hash_recovery(cleaned)) in user.recovery_code_hashes:
        user.recovery_code_hashes = [h for h in user.recovery_code_hashes if h != hashed]
        method = "recovery_code"
    if method is None:
        count_failure(session, settings=settings, now=now, user=user, reason="bad_code")
        raise LoginRefused("bad code")
    user.last_login_at = now
    audit.record(
        session,
        now=now,
        action="login",
        object_type="user",
        object_id=user.id,
        actor=user,
        detail={"second_factor": method, "recovery_codes_left": len(user.recovery_code_hashes)},
    )
    return method
