"""Retention (design §6): closed cases pseudonymised, non-pertinent hand-offs tombstoned, raw
partner texts and recordings purged — one service the worker's job and `ali retention run` call.

What a case keeps is what the reports count: urgency, province, exploitation, reporter type,
gender, age band, minor, needs, channel, dates, status and its timeline of codes. What goes is
what says who the person is: free text (summary, municipality), phone numbers (the case's, the
partner call's, the SMS sender's digest), nationality and languages, the raw hand-off payload
and the sender's external id (kept as a keyed digest, so a replay is still a duplicate).
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, func, select, update
from sqlalchemy.orm import Session

from core import audit
from core.clock import ROME
from core.config import get_settings
from core.telephony import Telephony
from intake.calls import STALLED
from intake.models import (
    Handoff,
    InboundText,
    PartnerCall,
    Placement,
    PlacementEntry,
    PlacementReason,
)
from intake.recordings import count_expired_recordings, delete_recordings_batch
from intake.services import TOMBSTONE_PREFIX, tombstone_id
from intake.sms import purge_raw_texts
from routing.models import Case, CaseEvent, CaseEventKind, CaseStatus

log = logging.getLogger(__name__)

# What an SMS sender's digest becomes: texts of a pseudonymised case thread with nothing.
FORGOTTEN_SENDER = "pseudonymised"
OUTCOMES = (
    CaseStatus.PLACED,
    CaseStatus.REFERRED,
    CaseStatus.NOT_PERTINENT,
    CaseStatus.OUT_OF_AREA,
    CaseStatus.UNREACHABLE,
)
# The case fields retention empties, named in the audit (names only, never values).
REMOVED_FIELDS = (
    "summary",
    "municipality",
    "caller_phone",
    "callback_phone",
    "person_nationality",
    "person_languages",
    "handoff_payload",
    "handoff_external_id",
    "partner_call_phone",
    "sms_body",
    "sms_sender",
    "placement_reasons",
    "notes",
)


@dataclass(frozen=True)
class RetentionCounts:
    """What one run did (or, dry, would do): counts only, which is all the audit keeps."""

    cases_pseudonymised: int = 0
    not_pertinent_tombstoned: int = 0
    caseless_callers_forgotten: int = 0
    raw_texts_emptied: int = 0
    recordings_deleted: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def months_before(now: datetime, months: int) -> datetime:
    """The same Rome wall-clock time `months` calendar months earlier (31 March → 28/29
    February), as a UTC instant: "24 months after it was closed" as a person counts them."""
    local = now.astimezone(ROME)
    index = local.year * 12 + local.month - 1 - months
    year, month = divmod(index, 12)
    day = min(local.day, calendar.monthrange(year, month + 1)[1])
    return local.replace(year=year, month=month + 1, day=day).astimezone(UTC)


def _status_reached(status: CaseStatus) -> ColumnElement[bool]:
    """A timeline entry saying the case became `status`."""
    became: ColumnElement[str] = CaseEvent.data["to"].as_string()
    return and_(CaseEvent.kind == CaseEventKind.STATUS_CHANGED.value, became == status.value)


def closed_cases_due(session: Session, *, now: datetime, months: int) -> list[Case]:
    """Closed cases, not yet pseudonymised, last closed more than `months` months ago
    (the timeline's status change says when: a reopened case counts from its last closing)."""
    closed_at = (
        select(CaseEvent.case_id, func.max(CaseEvent.at).label("at"))
        .where(_status_reached(CaseStatus.CLOSED))
        .group_by(CaseEvent.case_id)
        .subquery()
    )
    return list(
        session.scalars(
            select(Case)
            .join(closed_at, closed_at.c.case_id == Case.id)
            .where(
                Case.status == CaseStatus.CLOSED,
                Case.pseudonymised_at.is_(None),
                closed_at.c.at < months_before(now, months),
            )
            .order_by(Case.id)
        )
    )


def not_pertinent_cases_due(session: Session, *, now: datetime, days: int) -> list[Case]:
    """Cases whose outcome is not_pertinent (closed since or not), reached more than `days`
    days ago in real time (24-hour days, like the raw texts' retention), not yet emptied. A
    case reopened and given another outcome since is no longer non-pertinent."""
    cutoff = now - timedelta(days=days)
    candidates = list(
        session.scalars(
            select(Case)
            .where(
                Case.status.in_([CaseStatus.NOT_PERTINENT, CaseStatus.CLOSED]),
                Case.pseudonymised_at.is_(None),
                Case.id.in_(
                    select(CaseEvent.case_id).where(
                        _status_reached(CaseStatus.NOT_PERTINENT),
                        CaseEvent.at < cutoff,
                    )
                ),
            )
            .order_by(Case.id)
        )
    )
    if not candidates:
        return []
    outcome_of: dict[int, tuple[datetime, str]] = {}
    for case_id, at, to in session.execute(
        select(CaseEvent.case_id, CaseEvent.at, CaseEvent.data["to"].as_string())
        .where(
            CaseEvent.case_id.in_([case.id for case in candidates]),
            CaseEvent.kind == CaseEventKind.STATUS_CHANGED.value,
            CaseEvent.data["to"].as_string().in_([o.value for o in OUTCOMES]),
        )
        .order_by(CaseEvent.at, CaseEvent.id)
    ):
        outcome_of[case_id] = (at, to)  # the last one wins: the case's present outcome
    return [
        case
        for case in candidates
        if case.id in outcome_of
        and outcome_of[case.id][1] == CaseStatus.NOT_PERTINENT.value
        and outcome_of[case.id][0] < cutoff
    ]


def pseudonymise_cases(
    session: Session, cases: Iterable[Case], *, now: datetime, pepper: str, reason: str
) -> int:
    """Remove what identifies the person from these cases and the rows that follow them
    (hand-off, partner calls, SMS); each case's change is audited by field name."""
    done = 0
    for case in cases:
        case.summary = None
        case.municipality = None
        case.caller_phone = None
        case.callback_phone = None
        case.person_nationality = None
        case.person_languages = []
        case.pseudonymised_at = now
        for handoff in session.scalars(select(Handoff).where(Handoff.case_id == case.id)):
            handoff.payload = None
            if not handoff.external_id.startswith(TOMBSTONE_PREFIX):
                handoff.external_id = tombstone_id(handoff.external_id, pepper)
        session.execute(
            update(PartnerCall)
            .where(PartnerCall.case_id == case.id)
            .values(caller_phone=None)
            .execution_options(synchronize_session=False)
        )
        session.execute(
            update(InboundText)
            .where(InboundText.case_id == case.id)
            .values(
                body=None,
                sender=FORGOTTEN_SENDER,
                purged_at=func.coalesce(InboundText.purged_at, now),
            )
            .execution_options(synchronize_session=False)
        )
        # The timeline is append-only for people; retention is the one exception, and only
        # the operators' free text goes (a Core UPDATE: the ORM guard refuses changes).
        session.execute(
            update(CaseEvent)
            .where(CaseEvent.case_id == case.id, CaseEvent.note.is_not(None))
            .values(note=None)
            .execution_options(synchronize_session=False)
        )
        # The placement log stays whole for the reports (shelter, dates, beds, exit reason,
        # override flags: no person in them); only the reasons' free text goes.
        session.execute(
            delete(PlacementReason)
            .where(
                PlacementReason.entry_id.in_(
                    select(PlacementEntry.id)
                    .join(Placement, Placement.id == PlacementEntry.placement_id)
                    .where(Placement.case_id == case.id)
                )
            )
            .execution_options(synchronize_session=False)
        )
        audit.record(
            session,
            now=now,
            action="update",
            object_type="case",
            object_id=case.id,
            actor="retention",
            fields=REMOVED_FIELDS,
            detail={"retention": reason},
        )
        done += 1
    return done


def forget_caseless_callers(
    session: Session, *, now: datetime, days: int, dry_run: bool = False
) -> int:
    """Calls that ended in the menu opened no case, so no case's fate covers them: their
    caller's number goes with the non-pertinent hand-offs' period."""
    due = (
        PartnerCall.case_id.is_(None),
        PartnerCall.caller_phone.is_not(None),
        PartnerCall.started_at < now - timedelta(days=days),
        # A call stalled in forwarding or recording still owes its caller a case (the
        # stalled-calls job opens it): its number is never forgotten before that.
        PartnerCall.outcome.not_in(STALLED),
    )
    if dry_run:
        return session.scalar(select(func.count()).where(*due)) or 0
    result = session.execute(
        update(PartnerCall)
        .where(*due)
        .values(caller_phone=None)
        .execution_options(synchronize_session=False)
    )
    forgotten: int = result.rowcount  # type: ignore[attr-defined]
    return forgotten


def retain_cases(session: Session, *, now: datetime, dry_run: bool = False) -> RetentionCounts:
    """The case part of retention, run by the worker's job: non-pertinent cases first (their
    shorter period), then closed cases past ALI_RETENTION_CASE_MONTHS. Never commits."""
    settings = get_settings()
    not_pertinent = not_pertinent_cases_due(
        session, now=now, days=settings.retention_not_pertinent_days
    )
    skip = {case.id for case in not_pertinent}
    closed = [
        case
        for case in closed_cases_due(session, now=now, months=settings.retention_case_months)
        if case.id not in skip
    ]
    callers = forget_caseless_callers(
        session, now=now, days=settings.retention_not_pertinent_days, dry_run=dry_run
    )
    if dry_run:
        return RetentionCounts(
            cases_pseudonymised=len(closed),
            not_pertinent_tombstoned=len(not_pertinent),
            caseless_callers_forgotten=callers,
        )
    pepper = settings.secret_key
    return RetentionCounts(
        not_pertinent_tombstoned=pseudonymise_cases(
            session, not_pertinent, now=now, pepper=pepper, reason="not_pertinent"
        ),
        cases_pseudonymised=pseudonymise_cases(
            session, closed, now=now, pepper=pepper, reason="closed"
        ),
        caseless_callers_forgotten=callers,
    )


def record_run(session: Session, counts: RetentionCounts, *, now: datetime, actor: str) -> None:
    """One audit entry per run, with its counts (never which cases or what they said)."""
    settings = get_settings()
    audit.record(
        session,
        now=now,
        action="retention",
        object_type="retention",
        actor=actor,
        detail={
            **counts.as_dict(),
            "case_months": settings.retention_case_months,
            "not_pertinent_days": settings.retention_not_pertinent_days,
            "raw_text_days": settings.raw_text_retention_days,
        },
    )


def run_retention(
    session: Session, telephony: Telephony, *, now: datetime, dry_run: bool = False
) -> RetentionCounts:
    """Everything retention does, for `ali retention run`: cases, raw texts and recordings,
    each through its own service. COMMITS (the recordings are deleted at Twilio one by one,
    each committed as it goes). A dry run counts and changes nothing, not even the audit."""
    settings = get_settings()
    # Raw texts first: a case pseudonymised now empties its texts too, and a dry run must
    # count them where the real run will.
    texts = purge_raw_texts(
        session, now=now, retention_days=settings.raw_text_retention_days, dry_run=dry_run
    )
    cases = retain_cases(session, now=now, dry_run=dry_run)
    if dry_run:
        recordings = count_expired_recordings(session, now)
        session.rollback()
    else:
        session.commit()
        recordings = 0
        while True:
            # Failed ones are left out of the next batch: go on while batches are full.
            batch = delete_recordings_batch(session, telephony, now)
            recordings += batch.deleted
            if not batch.full:
                break
    counts = RetentionCounts(
        cases_pseudonymised=cases.cases_pseudonymised,
        not_pertinent_tombstoned=cases.not_pertinent_tombstoned,
        caseless_callers_forgotten=cases.caseless_callers_forgotten,
        raw_texts_emptied=texts,
        recordings_deleted=recordings,
    )
    if not dry_run:
        record_run(session, counts, now=now, actor="cli")
        session.commit()
        log.info("retention run: %s", counts.as_dict())
    return counts
