"""Phone verification: an SMS code the operator types in their profile page."""

# A code is 6 digits, valid CODE_TTL, good for MAX_ATTEMPTS guesses, and only for the phone
# it was sent to. At most SENDS_PER_HOUR codes leave per user and hour (each costs an SMS and
# could annoy whoever owns a mistyped number). Codes are stored as an HMAC keyed with the
# app's secret: a million possible codes would fall to a plain hash at once.

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import datetime, timedelta

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import audit
from core.models import User
from core.telephony import Telephony, TelephonyError
from oncall.models import PhoneVerification
from oncall.notifications import status_callback_url

log = logging.getLogger(__name__)

CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5
SENDS_PER_HOUR = 3


class VerificationError(Exception):
    """The code was not accepted or not sent; the subclass says why."""


class NoPhone(VerificationError):
    pass


class TooManySends(VerificationError):
    pass


class SendFailed(VerificationError):
    pass


class NoPendingCode(VerificationError):
    """No code was sent to the current phone, or the last one expired or was used up."""


class WrongCode(VerificationError):
    def __init__(self, remaining: int) -> None:
        super().__init__(f"wrong code, {remaining} attempts left")
        self.remaining = remaining


def _digest(secret_key: str, verification_user: int, phone: str, code: str) -> str:
    message = f"{verification_user}:{phone}:{code}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def _record_own_update(session: Session, *, user: User, fields: list[str], now: datetime) -> None:
    """Audit a change users made to their own profile (field names only)."""
    audit.record(
        session,
        now=now,
        action="update",
        object_type="user",
        object_id=user.id,
        actor=user,
        fields=fields,
    )


def set_phone(session: Session, *, user: User, phone: str | None, now: datetime) -> bool:
    """Change (or remove) the user's phone; a new number is unverified. True if it changed."""
    if phone == user.phone:
        return False
    user.phone = phone
    user.phone_verified_at = None
    fields = ["phone", "phone_verified_at"]
    if user.sms_opted_out_at is not None:
        user.sms_opted_out_at = None  # the STOP was sent from the old number
        fields.append("sms_opted_out_at")
    _record_own_update(session, user=user, fields=fields, now=now)
    return True


def sends_last_hour(session: Session, *, user: User, now: datetime) -> int:
    return (
        session.scalar(
            select(func.count(PhoneVerification.id)).where(
                PhoneVerification.user_id == user.id,
                PhoneVerification.created_at > now - timedelta(hours=1),
            )
        )
        or 0
    )


def send_code(
    session: Session, telephony: Telephony, *, user: User, secret_key: str, now: datetime
) -> PhoneVerification:
    """Text a new code to the user's phone. COMMITS the session: the code is stored (and
    counts against the hourly limit) before the SMS leaves, and no transaction stays open
    across the request to Twilio. A failed send does not count."""
    if not user.phone:
        raise NoPhone
    if sends_last_hour(session, user=user, now=now) >= SENDS_PER_HOUR:
        raise TooManySends
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    row = PhoneVerification(
        user_id=user.id,
        phone=user.phone,
        code_hash=_digest(secret_key, user.id, user.phone, code),
        created_at=now,
        expires_at=now + CODE_TTL,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        now=now,
        action="create",
        object_type="phone_verification",
        object_id=row.id,
        actor=user,
        fields=["phone"],
    )
    session.commit()
    with force_locale(user.locale):
        body = _("Ali: your verification code is %(code)s. It expires in 10 minutes.", code=code)
    try:
        telephony.send_sms(to=row.phone, body=body, status_callback=status_callback_url())
    except TelephonyError as exc:
        log.warning("verification code %s not sent: status=%s", row.id, exc.status)
        session.delete(row)
        session.commit()
        raise SendFailed from None
    return row


def pending(session: Session, *, user: User, now: datetime) -> PhoneVerification | None:
    """The last code sent to the user's current phone, if it can still be typed."""
    if not user.phone:
        return None
    row = session.scalar(
        select(PhoneVerification)
        .where(PhoneVerification.user_id == user.id, PhoneVerification.phone == user.phone)
        .order_by(PhoneVerification.id.desc())
        .limit(1)
    )
    if (
        row is None
        or row.verified_at is not None
        or row.expires_at <= now
        or row.attempts >= MAX_ATTEMPTS
    ):
        return None
    return row


def verify_code(session: Session, *, user: User, code: str, secret_key: str, now: datetime) -> None:
    """Check a typed code against the last one sent; on success the phone is verified.

    Raises NoPendingCode or WrongCode; the caller commits either way (attempts count).
    """
    row = pending(session, user=user, now=now)
    if row is None or user.phone is None:
        raise NoPendingCode
    row.attempts += 1
    typed = "".join(ch for ch in code if ch.isdigit())
    if not hmac.compare_digest(row.code_hash, _digest(secret_key, user.id, user.phone, typed)):
        raise WrongCode(MAX_ATTEMPTS - row.attempts)
    row.verified_at = now
    user.phone_verified_at = now
    fields = ["phone_verified_at"]
    if user.sms_opted_out_at is not None:
        # The code arrived by SMS, so SMS reach this number again (they texted START).
        user.sms_opted_out_at = None
        fields.append("sms_opted_out_at")
    _record_own_update(session, user=user, fields=fields, now=now)
