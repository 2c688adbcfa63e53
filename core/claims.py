"""Claims on keys: a message (an SMS, a call) goes out once, whatever the restarts."""

# How "never twice, never skipped" is kept:
#
# * Every message has a key (``reminder:day_before:<user>:<province>:<tier>:<start>``,
#   ``gaps:<province>:<local date>:<recipient>``...) unique in ``sent_notifications``.
#   A sender first claims the key (INSERT in a savepoint; a concurrent claim on PostgreSQL
#   waits for the first one and then fails on the unique constraint), commits the claim,
#   and only then sends: a restarted worker or a second worker finds the key and skips.
# * The claim is committed before the request to Twilio because a transaction must not
#   stay open across it: on SQLite it holds the write lock, and the sandbox telephony writes
#   its outbox through another connection (it would wait for us forever).
# * A retryable failure (Twilio down, throttled, no connection) deletes the claim, so the
#   next tick tries again; a refusal (e.g. a bad number) keeps it, with no provider id.
#   Only a crash during the request itself leaves a claim without a provider id: then the
#   message is not sent again, because Twilio has no idempotency key and twice is worse.

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.models import SentNotification
from core.telephony import TelephonyError

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    SENT = "sent"
    ALREADY = "already"  # the key was claimed before (by us earlier, or by another worker)
    RETRY = "retry"  # a retryable failure: the key is free again
    REFUSED = "refused"  # a permanent failure: the key stays claimed, no provider id


def send_once(
    session: Session,
    *,
    key: str,
    kind: str,
    user_id: int | None,
    now: datetime,
    send: Callable[[], str],
) -> Outcome:
    """Call ``send`` (which sends and returns the provider id, or raises TelephonyError)
    unless the key was claimed already. COMMITS the session (see above): call it with
    nothing pending that must not be committed.
    """
    if session.scalar(select(SentNotification.id).where(SentNotification.key == key)):
        return Outcome.ALREADY
    claim = SentNotification(key=key, kind=kind, user_id=user_id, sent_at=now)
    try:
        with session.begin_nested():
            session.add(claim)
    except IntegrityError:
        # Another worker claimed it between our SELECT and INSERT.
        return Outcome.ALREADY
    session.commit()
    try:
        sid = send()
    except TelephonyError as exc:
        if exc.retryable:
            session.delete(claim)
            session.commit()
            log.warning("%s %s not sent, will retry: status=%s", kind, claim.id, exc.status)
            return Outcome.RETRY
        session.commit()
        log.warning("%s %s refused: code=%s status=%s", kind, claim.id, exc.code, exc.status)
        return Outcome.REFUSED
    claim.provider_id = sid
    session.commit()
    log.info("%s %s sent as %s", kind, claim.id, sid)
    return Outcome.SENT
