"""Messages left on the partner line: played only through Ali, deleted at Twilio in time.

A recording stays at Twilio (Ali keeps its id, never the audio). Those who may see the case
hear it through `/cases/<reference>/recording`, streamed with the account's credentials, each
play an audit entry; after `ALI_RAW_TEXT_RETENTION_DAYS` the retention job deletes it at
Twilio.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Blueprint, Flask, Response, abort
from flask_login import current_user
from sqlalchemy import Select, String, cast, exists, func, select
from sqlalchemy.orm import Session

from core import audit
from core.auth import login_required
from core.clock import now as clock_now
from core.config import get_settings
from core.db import get_session
from core.models import AuditEntry, User
from core.scheduler import Job, register_job
from core.telephony import Telephony, TelephonyError, get_telephony
from intake.calls import Recording, recording_of_case
from intake.models import PartnerCall
from routing.lifecycle import record_read
from routing.models import Case
from routing.services import can_see_case

log = logging.getLogger(__name__)
bp = Blueprint("recordings", __name__, url_prefix="/cases")

RETENTION_JOB_SECONDS = 3600
BATCH = 100
# A recording whose deletion failed waits this long before it is tried again.
RETRY_FAILED_AFTER = timedelta(hours=1)
NOT_FOUND = 404
REFERENCE = re.compile(r"[A-Z]{2}-\d{4}-\d{4,6}")


@bp.get("/<reference>/recording")
@login_required
def play(reference: str) -> Response:
    """The message left with a case, for those allowed to see the case (404 for anyone
    else: a reference must not tell a stranger that a case exists)."""
    session = get_session()
    user: User = current_user
    case = (
        session.scalar(select(Case).where(Case.reference == reference))
        if REFERENCE.fullmatch(reference)
        else None
    )
    if case is None or not can_see_case(session, user, case):
        abort(404)
    call = session.scalar(
        select(PartnerCall)
        .where(
            PartnerCall.case_id == case.id,
            PartnerCall.recording_sid.is_not(None),
            PartnerCall.recording_deleted_at.is_(None),
        )
        .order_by(PartnerCall.id.desc())
        .limit(1)
    )
    if call is None or call.recording_sid is None:
        abort(404)
    sid = call.recording_sid
    record_read(session, case, actor=user, fields=["recording"], now=clock_now())
    # Committed before Twilio is asked: the play is on record even if the fetch fails, and
    # no transaction waits on Twilio.
    session.commit()
    try:
        audio = get_telephony().fetch_recording(sid)
    except TelephonyError as exc:
        log.warning("recording of call %s not fetched: status=%s", call.id, exc.status)
        abort(404 if exc.status == NOT_FOUND else 502)
    response = Response(audio.content, mimetype=audio.content_type)
    response.headers["Content-Disposition"] = "inline"
    return response


@bp.app_template_global("case_recording")
def case_recording(case: Case) -> Recording | None:
    """The case's playable message, for the case page's player (None: there is none)."""
    return recording_of_case(get_session(), case.id)


def _expired_recordings(now: datetime, days: int) -> Select[PartnerCall]:
    return select(PartnerCall).where(
        PartnerCall.recording_sid.is_not(None),
        PartnerCall.recording_deleted_at.is_(None),
        PartnerCall.started_at < now - timedelta(days=days),
    )


def count_expired_recordings(session: Session, now: datetime) -> int:
    """How many recordings `delete_expired_recordings` would delete (for a dry run)."""
    days = get_settings().raw_text_retention_days
    due = _expired_recordings(now, days).subquery()
    return session.scalar(select(func.count()).select_from(due)) or 0


def delete_expired_recordings(session: Session, telephony: Telephony, now: datetime) -> int:
    """The retention job: recordings older than ALI_RAW_TEXT_RETENTION_DAYS are deleted at
    Twilio; COMMITS after each, so one failure does not undo the others. A recording
    Twilio no longer has counts as deleted. Returns how many were deleted (at most BATCH)."""
    return delete_recordings_batch(session, telephony, now).deleted


@dataclass(frozen=True)
class BatchDone:
    deleted: int
    full: bool  # BATCH were tried: there may be more to try in this run


def delete_recordings_batch(session: Session, telephony: Telephony, now: datetime) -> BatchDone:
    """One batch of `delete_expired_recordings`. A failed deletion is audited, and the
    recording is left out for RETRY_FAILED_AFTER: a few that keep failing must not take
    every batch's places and keep the later ones from ever being reached."""
    days = get_settings().raw_text_retention_days
    failed_lately = exists().where(
        AuditEntry.object_type == "recording",
        AuditEntry.action == "delete_failed",
        AuditEntry.object_id == cast(PartnerCall.id, String),
        AuditEntry.at > now - RETRY_FAILED_AFTER,
    )
    due = list(
        session.scalars(
            _expired_recordings(now, days)
            .where(~failed_lately)
            .order_by(PartnerCall.id)
            .limit(BATCH)
        )
    )
    session.commit()
    deleted = 0
    for call in due:
        try:
            telephony.delete_recording(call.recording_sid or "")
        except TelephonyError as exc:
            if exc.status != NOT_FOUND:
                log.warning("recording of call %s not deleted: status=%s", call.id, exc.status)
                audit.record(
                    session,
                    now=now,
                    action="delete_failed",
                    object_type="recording",
                    object_id=call.id,
                    fields=["recording"],
                    detail={"status": exc.status, "code": exc.code},
                )
                session.commit()
                continue
        call.recording_deleted_at = now
        call.recording_url = None
        audit.record(
            session,
            now=now,
            action="delete",
            object_type="recording",
            object_id=call.id,
            fields=["recording"],
            detail={"case_id": call.case_id, "retention_days": days},
        )
        session.commit()
        deleted += 1
    if deleted:
        log.info("retention: %d call recordings deleted at Twilio", deleted)
    return BatchDone(deleted=deleted, full=len(due) >= BATCH)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    register_job(
        app,
        Job(
            id="intake.recordings_retention",
            func=delete_expired_recordings,
            seconds=RETENTION_JOB_SECONDS,
        ),
    )
