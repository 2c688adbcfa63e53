"""What intake does: sources and secrets, signed requests, hand-offs opening cases exactly once.

Plain functions taking a Session; they never commit (the API handler or CLI command does).
"""

from __future__ import annotations

import functools
import logging
import math
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Executable, insert, select
from sqlalchemy import case as sql_case
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core import audit
from core.clock import ROME
from core.models import User
from intake.models import (
    DEFAULT_RATE_LIMIT,
    Case,
    CaseEvent,
    CaseEventKind,
    CaseSequence,
    CaseStatus,
    Channel,
    Handoff,
    Source,
    SourceRateWindow,
    SourceSecret,
)
from intake.signing import signature_matches, timestamp_is_fresh
from intake.validation import HandoffInput
from routing.places import ProvinceSource
from routing.services import chain_for

log = logging.getLogger(__name__)

SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,59}")
KEY_ID_PREFIX = "ak_"
UNRESOLVED_PREFIX = "XX"
RATE_WINDOW = timedelta(minutes=1)


class SourceError(ValueError):
    """A source command that cannot be done; the message says why."""


class Unauthorised(Exception):
    """A request whose key, timestamp or signature is not right; `reason` is for the log only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RateLimited(Exception):
    """The source sent more requests in this window than it may."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class IssuedSecret:
    """A secret as created: the only moment its plain text leaves Ali."""

    source: str
    key_id: str
    secret: str


@dataclass(frozen=True)
class Caller:
    """The authenticated source of a request (plain values: safe after the session ends)."""

    source_id: int
    name: str
    rate_limit: int

    @property
    def actor(self) -> str:
        return f"source:{self.name}"


@dataclass(frozen=True)
class HandoffOutcome:
    """What the sender is told: the case its hand-off opened (now, or the first time)."""

    case_id: int
    reference: str
    province: str | None
    province_source: str
    status: str
    on_call: User | None  # the primary the case was routed to, if any
    duplicate: bool


# --- sources and secrets ------------------------------------------------------------------


def _issue(source: Source, now: datetime) -> IssuedSecret:
    issued = IssuedSecret(
        source=source.name,
        key_id=KEY_ID_PREFIX + secrets.token_hex(8),
        secret=secrets.token_urlsafe(32),
    )
    source.secrets.append(SourceSecret(key_id=issued.key_id, secret=issued.secret, created_at=now))
    return issued


def create_source(
    session: Session, *, name: str, now: datetime, rate_limit: int = DEFAULT_RATE_LIMIT
) -> IssuedSecret:
    """A new source with its first secret (returned once; Ali keeps it encrypted)."""
    name = name.strip().lower()
    if not SOURCE_NAME.fullmatch(name):
        raise SourceError(
            "a source name has 2 to 60 lower-case letters, digits and hyphens (e.g. numero-verde)"
        )
    if rate_limit < 1:
        raise SourceError("the rate limit must be at least 1 request a minute")
    if session.scalar(select(Source.id).where(Source.name == name)) is not None:
        raise SourceError(f"a source named {name} already exists")
    source = Source(name=name, rate_limit=rate_limit, created_at=now)
    session.add(source)
    issued = _issue(source, now)
    session.flush()
    audit.record(
        session,
        now=now,
        action="create",
        object_type="source",
        object_id=source.id,
        detail={"key_id": issued.key_id},
    )
    return issued


def get_source(session: Session, name: str) -> Source:
    source = session.scalar(select(Source).where(Source.name == name.strip().lower()))
    if source is None:
        raise SourceError(f"no source named {name}")
    return source


def list_sources(session: Session) -> list[Source]:
    return list(session.scalars(select(Source).order_by(Source.name)))


def rotate_source_secret(session: Session, *, name: str, now: datetime) -> IssuedSecret:
    """A second secret with its own key id; the older ones stay valid until retired."""
    source = get_source(session, name)
    issued = _issue(source, now)
    session.flush()
    audit.record(
        session,
        now=now,
        action="update",
        object_type="source",
        object_id=source.id,
        detail={"rotated": True, "key_id": issued.key_id},
    )
    return issued


def retire_source_secret(
    session: Session, *, name: str, now: datetime, key_id: str | None = None
) -> SourceSecret:
    """Retire a secret (by default the oldest active one); the last active one stays."""
    source = get_source(session, name)
    active = source.active_secrets
    if key_id is None:
        if len(active) < 2:
            raise SourceError(f"{source.name} has one active secret: rotate before retiring it")
        target = active[0]
    else:
        found = [secret for secret in active if secret.key_id == key_id]
        if not found:
            raise SourceError(f"{source.name} has no active secret with key id {key_id}")
        if len(active) < 2:
            raise SourceError(f"{key_id} is the last active secret of {source.name}")
        target = found[0]
    target.retired_at = now
    audit.record(
        session,
        now=now,
        action="update",
        object_type="source",
        object_id=source.id,
        detail={"retired_key_id": target.key_id},
    )
    return target


# --- authentication and rate limit -----------------------------------------------------------


def authenticate(
    session: Session,
    *,
    key_id: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: datetime,
) -> Caller:
    """The source that signed a request; any active secret of the key's source is accepted,
    so a sender keeps working while a rotated secret is rolled out.

    One query reads the secrets and the source's rate window. Raises Unauthorised, or
    RateLimited when the window is already full (a cheap refusal before any work or lock).
    """
    if not key_id or not timestamp or not signature:
        raise Unauthorised("missing authentication headers")
    if not timestamp_is_fresh(timestamp, now):
        raise Unauthorised("timestamp outside the allowed window")
    owner = (
        select(SourceSecret.source_id)
        .where(SourceSecret.key_id == key_id, SourceSecret.retired_at.is_(None))
        .scalar_subquery()
    )
    rows = session.execute(
        select(
            Source.id,
            Source.name,
            Source.rate_limit,
            Source.active,
            SourceSecret.secret,
            SourceRateWindow.window_start,
            SourceRateWindow.count,
        )
        .join(SourceSecret, SourceSecret.source_id == Source.id)
        .outerjoin(SourceRateWindow, SourceRateWindow.source_id == Source.id)
        .where(Source.id == owner, SourceSecret.retired_at.is_(None))
    ).all()
    if not rows:
        raise Unauthorised("unknown or retired key id")
    source_id, name, rate_limit, active, _secret, window_start, count = rows[0]
    if not active:
        raise Unauthorised(f"source {name} is not active")
    if not signature_matches(signature, [row[4] for row in rows], timestamp, body):
        raise Unauthorised(f"signature does not match for source {name}")
    start, retry_after = _window(now)
    if window_start == start and count >= rate_limit:
        raise RateLimited(retry_after)
    return Caller(source_id=source_id, name=name, rate_limit=rate_limit)


def _window(now: datetime) -> tuple[datetime, int]:
    start = now.replace(second=0, microsecond=0)
    retry_after = max(1, math.ceil((start + RATE_WINDOW - now).total_seconds()))
    return start, retry_after


def count_request(session: Session, *, caller: Caller, now: datetime) -> None:
    """Count one request in the source's fixed window, shared by every worker through the
    database; raises RateLimited past the limit (the caller rolls back, so it is not counted).

    Call it last in the transaction: on PostgreSQL the upsert locks the source's row until the
    commit, and concurrent requests of the source queue only for that moment.
    """
    start, retry_after = _window(now)
    count = session.execute(
        _statements(session).count_request,
        {"source_id": caller.source_id, "window_start": start, "count": 1},
    ).scalar_one()
    if count > caller.rate_limit:
        raise RateLimited(retry_after)


@dataclass(frozen=True)
class _Statements:
    """The hot path's upserts, built once per dialect (both have INSERT … ON CONFLICT)."""

    count_request: Executable
    next_number: Executable
    claim_handoff: Executable


@functools.cache
def _statements_for(dialect: str) -> _Statements:
    insert_for = postgresql.insert if dialect == "postgresql" else sqlite.insert
    rate = insert_for(SourceRateWindow)
    window = SourceRateWindow.__table__.c
    sequence = insert_for(CaseSequence)
    return _Statements(
        count_request=rate.on_conflict_do_update(
            index_elements=[window.source_id],
            set_={
                "count": sql_case(
                    (window.window_start == rate.excluded.window_start, window.count + 1),
                    else_=1,
                ),
                "window_start": rate.excluded.window_start,
            },
        ).returning(window.count),
        next_number=sequence.on_conflict_do_update(
            index_elements=["province", "year"], set_={"last": CaseSequence.last + 1}
        ).returning(CaseSequence.last),
        claim_handoff=insert_for(Handoff)
        .on_conflict_do_nothing(index_elements=["source_id", "external_id"])
        .returning(Handoff.id),
    )


def _statements(session: Session) -> _Statements:
    return _statements_for(session.get_bind().dialect.name)


# --- hand-offs and cases -------------------------------------------------------------------


def next_reference(session: Session, *, province: str | None, now: datetime) -> str:
    """`BS-2026-0042`: province (XX when unresolved), year in Rome of receipt, sequence.

    The row of (province, year) is upserted in the case's own transaction: PostgreSQL locks it
    until the commit and SQLite serialises writers, so two cases never share a number.
    """
    sigla = province or UNRESOLVED_PREFIX
    year = now.astimezone(ROME).year
    number: int = session.execute(
        _statements(session).next_number, {"province": sigla, "year": year, "last": 1}
    ).scalar_one()
    return f"{sigla}-{year}-{number:04d}"


_INSERT_CASE = insert(Case).returning(Case.id)
_INSERT_EVENT = insert(CaseEvent)


class AlreadyReceived(Exception):
    """This source sent this external_id before: roll back and answer `replayed_handoff`."""


def open_case(
    session: Session, *, caller: Caller, handoff: HandoffInput, payload: str, now: datetime
) -> HandoffOutcome:
    """Open the case of a new hand-off, routed, and store the hand-off pointing at it.

    Exactly once: the hand-off row goes in last with INSERT … ON CONFLICT DO NOTHING on the
    unique (source, external_id). A twin that got there first (committed, or committing:
    PostgreSQL makes this insert wait for it) leaves nothing inserted, and this raises
    AlreadyReceived: the caller rolls the transaction back (case number included) and answers
    with `replayed_handoff`. Plain INSERTs with prebuilt statements, no unit of work: this is
    the hot path of the intake, about ten statements in one transaction.
    """
    resolution = handoff.resolution
    chain = chain_for(session, resolution=resolution, at=now)
    primary = chain.primary if chain is not None else None
    reference = next_reference(session, province=resolution.sigla, now=now)
    person = handoff.person
    case_id: int = session.execute(
        _INSERT_CASE,
        {
            "reference": reference,
            "channel": Channel.WEBHOOK.value,
            "source_id": caller.source_id,
            "status": CaseStatus.NEW.value,
            "province": resolution.sigla,
            "province_source": resolution.source.value,
            "urgency": handoff.urgency.value,
            "reporter_type": handoff.reporter_type.value if handoff.reporter_type else None,
            "exploitation": [item.value for item in handoff.exploitation],
            "person_gender": person.gender.value if person.gender else None,
            "person_age_band": person.age_band.value if person.age_band else None,
            "person_minor": person.minor.value if person.minor else None,
            "person_nationality": person.nationality,
            "person_languages": list(person.languages),
            "needs": [item.value for item in handoff.needs],
            "municipality": handoff.municipality,
            "caller_phone": handoff.caller_phone,
            "callback_phone": handoff.callback_phone,
            "summary": handoff.summary,
            "received_at": handoff.received_at or now,
            "created_at": now,
            "routed_to_id": primary.id if primary is not None else None,
            "accepted_by_id": None,
            "accepted_at": None,
        },
    ).scalar_one()
    handoff_id = session.execute(
        _statements(session).claim_handoff,
        {
            "source_id": caller.source_id,
            "external_id": handoff.external_id,
            "payload": payload,
            "received_at": now,
            "case_id": case_id,
        },
    ).scalar_one_or_none()
    if handoff_id is None:
        raise AlreadyReceived(handoff.external_id)
    session.execute(
        _INSERT_EVENT,
        [
            {
                "case_id": case_id,
                "at": now,
                "kind": CaseEventKind.CREATED.value,
                "actor": caller.actor,
                "data": {
                    "channel": Channel.WEBHOOK.value,
                    "handoff_id": handoff_id,
                    "urgency": handoff.urgency.value,
                },
            },
            {
                "case_id": case_id,
                "at": now,
                "kind": CaseEventKind.ROUTED.value,
                "actor": "system",
                "data": _routed(resolution.sigla, resolution.source, chain is not None, primary),
            },
        ],
    )
    audit.record(
        session,
        now=now,
        action="create",
        object_type="case",
        object_id=case_id,
        actor=caller.actor,
        fields=_written_fields(handoff),
        detail={"reference": reference, "handoff_id": handoff_id},
    )
    log.info(
        "source %s: hand-off %s opened case %s (%s)",
        caller.name,
        handoff_id,
        reference,
        resolution.source.value,
    )
    return HandoffOutcome(
        case_id=case_id,
        reference=reference,
        province=resolution.sigla,
        province_source=resolution.source.value,
        status=CaseStatus.NEW.value,
        on_call=primary,
        duplicate=False,
    )


def replayed_handoff(session: Session, *, caller: Caller, external_id: str) -> HandoffOutcome:
    """The answer to a hand-off sent again: the case the first one opened, as it is now."""
    case = find_case(session, caller=caller, external_id=external_id)
    if case is None:  # pragma: no cover -- a hand-off row is only ever committed with its case
        raise RuntimeError("hand-off stored without a case")
    log.info("source %s: replay of hand-off for case %s", caller.name, case.reference)
    return HandoffOutcome(
        case_id=case.id,
        reference=case.reference,
        province=case.province,
        province_source=case.province_source,
        status=case.status,
        on_call=case.routed_to,
        duplicate=True,
    )


def _routed(
    province: str | None, source: ProvinceSource, has_rota: bool, primary: User | None
) -> dict[str, Any]:
    data: dict[str, Any] = {"province": province, "province_source": source.value}
    if not has_rota:
        # Out of area or unresolved: the coordinators triage it (design §5).
        data.update(operator_id=None, to="coordinators")
    elif primary is None:
        data.update(operator_id=None, note="nobody on call")
    else:
        data.update(operator_id=primary.id, tier="primary")
    return data


def _written_fields(handoff: HandoffInput) -> list[str]:
    fields = ["province", "urgency", *handoff.personal_fields]
    optional: dict[str, Collection[object] | object] = {
        "reporter_type": handoff.reporter_type,
        "exploitation": handoff.exploitation,
        "needs": handoff.needs,
        "received_at": handoff.received_at,
    }
    return fields + [name for name, value in optional.items() if value]


def find_case(session: Session, *, caller: Caller, external_id: str) -> Case | None:
    """The case a source's hand-off opened; a source never sees another source's cases."""
    return session.scalar(
        select(Case)
        .join(Handoff, Handoff.case_id == Case.id)
        .where(Handoff.source_id == caller.source_id, Handoff.external_id == external_id)
    )
