"""What intake does: sources and secrets, signed requests, hand-offs opening cases exactly once.

Plain functions taking a Session; they never commit (the API handler or CLI command does).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import math
import re
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Executable,
    Table,
    bindparam,
    insert,
    select,
)
from sqlalchemy import case as sql_case
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core import audit
from core.config import get_settings
from core.formatting import local_date
from core.models import AuditEntry, User
from intake.models import DEFAULT_RATE_LIMIT, Handoff, Source, SourceRateWindow, SourceSecret
from intake.signing import signature_matches, timestamp_is_fresh
from intake.validation import CaseFields, FieldWarning
from routing.dispatch import start_dispatch
from routing.lifecycle import record_read
from routing.models import (
    Case,
    CaseEvent,
    CaseEventKind,
    CaseSequence,
    CaseStatus,
    Channel,
)
from routing.places import ProvinceSource
from routing.services import chain_for, has_rota

log = logging.getLogger(__name__)

SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,59}")
KEY_ID_PREFIX = "ak_"
UNRESOLVED_PREFIX = "XX"
RATE_WINDOW = timedelta(minutes=1)
# What stands in a tombstoned hand-off's external_id: a keyed digest, never the id itself.
TOMBSTONE_PREFIX = "tombstone:"


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
    method: str = "POST",
    targets: Sequence[str] = (),
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
    if "\x00" in key_id:
        # PostgreSQL refuses NUL in text; it can never be a key id we issued.
        raise Unauthorised("unknown or retired key id")
    rows = session.connection().execute(_statements(session).authenticate, {"key_id": key_id}).all()
    if not rows:
        raise Unauthorised("unknown or retired key id")
    source_id, name, rate_limit, active, _secret, window_start, count = rows[0]
    if not active:
        raise Unauthorised(f"source {name} is not active")
    secrets = [row[4] for row in rows]
    # A v1 signature covers the body alone: good for the POST, whose body is the request,
    # never for a GET (the empty body's v1 would open every GET of the source).
    if not signature_matches(
        signature,
        secrets,
        timestamp,
        body,
        method=method,
        targets=targets,
        allow_v1=method == "POST",
    ):
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
    count = (
        session.connection()
        .execute(
            _statements(session).count_request,
            {"source_id": caller.source_id, "window_start": start, "count": 1},
        )
        .scalar_one()
    )
    if count > caller.rate_limit:
        raise RateLimited(retry_after)


_SEQUENCES = cast(Table, CaseSequence.__table__)
_CASES = cast(Table, Case.__table__)
_HANDOFFS = cast(Table, Handoff.__table__)
_EVENTS = cast(Table, CaseEvent.__table__)
_AUDIT = cast(Table, AuditEntry.__table__)
_RATE = cast(Table, SourceRateWindow.__table__)
_SOURCES = cast(Table, Source.__table__)
_SECRETS = cast(Table, SourceSecret.__table__)


@dataclass(frozen=True)
class _Statements:
    """The hot path's statements, built once per dialect (both have INSERT … ON CONFLICT).

    Core statements on the tables, executed on the session's connection: no unit of work and
    no ORM result processing, which cost more than the database does for these few rows.
    """

    authenticate: Executable
    count_request: Executable
    next_number: Executable
    insert_case: Executable
    claim_handoff: Executable
    insert_event: Executable
    insert_audit: Executable


def _count_update(excluded: Any) -> dict[str, ColumnElement[Any]]:
    """The fixed window's upsert: one more in the same window, else 1 in the new one."""
    window = _RATE.c
    return {
        "count": sql_case(
            (window.window_start == excluded.window_start, window.count + 1), else_=1
        ),
        "window_start": excluded.window_start,
    }


@functools.cache
def _statements_for(dialect: str) -> _Statements:
    insert_for = postgresql.insert if dialect == "postgresql" else sqlite.insert
    rate = insert_for(_RATE)
    owner = (
        select(_SECRETS.c.source_id)
        .where(_SECRETS.c.key_id == bindparam("key_id"), _SECRETS.c.retired_at.is_(None))
        .scalar_subquery()
    )
    sequence = insert_for(_SEQUENCES)
    claim = insert_for(_HANDOFFS)
    return _Statements(
        # The secrets of the key's source and the source's rate window, in one query.
        authenticate=select(
            _SOURCES.c.id,
            _SOURCES.c.name,
            _SOURCES.c.rate_limit,
            _SOURCES.c.active,
            _SECRETS.c.secret,
            _RATE.c.window_start,
            _RATE.c.count,
        )
        .join(_SECRETS, _SECRETS.c.source_id == _SOURCES.c.id)
        .outerjoin(_RATE, _RATE.c.source_id == _SOURCES.c.id)
        .where(_SOURCES.c.id == owner, _SECRETS.c.retired_at.is_(None)),
        count_request=rate.on_conflict_do_update(
            index_elements=[_RATE.c.source_id], set_=_count_update(rate.excluded)
        ).returning(_RATE.c.count),
        next_number=sequence.on_conflict_do_update(
            index_elements=[_SEQUENCES.c.province, _SEQUENCES.c.year],
            set_={"last": _SEQUENCES.c.last + 1},
        ).returning(_SEQUENCES.c.last),
        insert_case=insert(_CASES).returning(_CASES.c.id),
        claim_handoff=claim.on_conflict_do_nothing(
            index_elements=[_HANDOFFS.c.source_id, _HANDOFFS.c.external_id]
        ).returning(_HANDOFFS.c.id),
        insert_event=insert(_EVENTS),
        insert_audit=insert(_AUDIT),
    )


def _statements(session: Session) -> _Statements:
    return _statements_for(session.get_bind().dialect.name)


# --- opening a case --------------------------------------------------------------------------


@dataclass(frozen=True)
class BroughtBy:
    """Who brought a case to Ali: an API source, a partner's phone, or a logged-in user."""

    actor: str  # as events and audit entries name them: source:numero-verde, user:12, phone
    source_id: int | None = None
    user_id: int | None = None

    @classmethod
    def source(cls, caller: Caller) -> BroughtBy:
        return cls(actor=caller.actor, source_id=caller.source_id)

    @classmethod
    def user(cls, user: User) -> BroughtBy:
        return cls(actor=f"user:{user.id}", user_id=user.id)


@dataclass(frozen=True)
class ReceivedHandoff:
    """The hand-off row of a case that came with one: stored once per (source, external_id)."""

    source_id: int
    external_id: str
    payload: str  # the body exactly as received (encrypted at rest)


@dataclass(frozen=True)
class OpenedCase:
    """What the edge tells the sender: the case opened (now, or by the first identical try)."""

    case_id: int
    reference: str
    province: str | None
    province_source: str
    status: str
    on_call: User | None  # the primary the case was routed to, if any
    duplicate: bool
    dispatch_id: int | None = None
    pages_queued: int = 0  # pages of the dispatch to send after the commit


class AlreadyReceived(Exception):
    """This source sent this external_id before: roll back and answer `replayed_handoff`."""


def open_case(
    session: Session,
    *,
    channel: Channel,
    brought_by: BroughtBy,
    fields: CaseFields,
    now: datetime,
    handoff: ReceivedHandoff | None = None,
    warnings: Sequence[FieldWarning] = (),
    taken: bool = False,
) -> OpenedCase:
    """Open a case from any channel: its reference, its hand-off row where there is one, its
    first events and audit entry, and — in the same transaction — its dispatch with the first
    pages pending (the edge sends them after its commit: `routing.followup.after_response`).

    Exactly once per (source, external_id): the hand-off row goes in after the case with
    INSERT … ON CONFLICT DO NOTHING on that unique pair. A twin that got there first
    (committed, or committing: PostgreSQL makes this insert wait for it) leaves nothing
    inserted, and this raises AlreadyReceived: the caller rolls back (the case number too)
    and answers with `replayed_handoff`.

    `warnings` (what `parse_case`/`parse_handoff` did not understand) become one `warning`
    event on the timeline, so whoever works the case sees what was wrong with what was sent.

    `taken`: the caller accepts the case in this same transaction (`answer_alert`), so its
    first step is not fired and nobody is alerted for a case already in hand.

    The case's rows go in as prebuilt Core statements (this is the intake's hot path); the
    dispatch is routing's, through its service.
    """
    resolution = fields.resolution
    chain = chain_for(session, resolution=resolution, at=now)
    primary = chain.primary if chain is not None else None
    statements = _statements(session)
    connection = session.connection()
    sigla = resolution.sigla or UNRESOLVED_PREFIX
    year = local_date(now).year
    number: int = connection.execute(
        statements.next_number, {"province": sigla, "year": year, "last": 1}
    ).scalar_one()
    reference = f"{sigla}-{year}-{number:04d}"
    case_id: int = connection.execute(
        statements.insert_case, _case_row(reference, channel, brought_by, fields, primary, now)
    ).scalar_one()
    created: dict[str, Any] = {"channel": channel.value, "urgency": fields.urgency.value}
    detail: dict[str, Any] = {"reference": reference}
    if handoff is not None:
        if _tombstoned(session, handoff.source_id, handoff.external_id):
            # Retention emptied the first one; exactly once still holds for its sender.
            raise AlreadyReceived(handoff.external_id)
        handoff_id = connection.execute(
            statements.claim_handoff,
            {
                "source_id": handoff.source_id,
                "external_id": handoff.external_id,
                "payload": handoff.payload,
                "received_at": now,
                "case_id": case_id,
            },
        ).scalar_one_or_none()
        if handoff_id is None:
            raise AlreadyReceived(handoff.external_id)
        created["handoff_id"] = detail["handoff_id"] = handoff_id
    events = [
        {
            "case_id": case_id,
            "at": now,
            "kind": CaseEventKind.CREATED.value,
            "actor": brought_by.actor,
            "data": created,
        },
        {
            "case_id": case_id,
            "at": now,
            "kind": CaseEventKind.ROUTED.value,
            "actor": "system",
            "data": _routed(resolution.sigla, resolution.source, chain is not None, primary),
        },
    ]
    if warnings:
        events.append(
            {
                "case_id": case_id,
                "at": now,
                "kind": CaseEventKind.WARNING.value,
                "actor": brought_by.actor,
                # Field names and what was wrong, never what was sent (it may be personal data).
                "data": {"warnings": [_warning_data(warning) for warning in warnings]},
            }
        )
    connection.execute(statements.insert_event, events)
    connection.execute(
        statements.insert_audit,
        audit.entry_values(
            now=now,
            action="create",
            object_type="case",
            object_id=case_id,
            actor=brought_by.actor,
            fields=_written_fields(fields),
            detail=detail,
        )
        | {"actor_id": brought_by.user_id},
    )
    dispatch, queued = start_dispatch(
        session,
        case_id=case_id,
        reference=reference,
        rota_province=resolution.sigla if has_rota(resolution) else None,
        urgency=fields.urgency,
        now=now,
        chain=chain,
        fire_first_step=not taken,
    )
    log.info(
        "case %s opened by %s via %s (%s)",
        reference,
        brought_by.actor,
        channel.value,
        resolution.source.value,
    )
    return OpenedCase(
        case_id=case_id,
        reference=reference,
        province=resolution.sigla,
        province_source=resolution.source.value,
        status=CaseStatus.DISPATCHED.value,
        on_call=primary,
        duplicate=False,
        dispatch_id=dispatch.id,
        pages_queued=queued,
    )


def _warning_data(warning: FieldWarning) -> dict[str, str]:
    return {"field": warning.field, "code": warning.code.value, "message": warning.message}


def _case_row(  # noqa: PLR0917 -- a private row builder, called once
    reference: str,
    channel: Channel,
    brought_by: BroughtBy,
    fields: CaseFields,
    primary: User | None,
    now: datetime,
) -> dict[str, Any]:
    resolution = fields.resolution
    person = fields.person
    return {
        "reference": reference,
        "channel": channel.value,
        "source_id": brought_by.source_id,
        # Born dispatched: its dispatch is created in this same transaction.
        "status": CaseStatus.DISPATCHED.value,
        "province": resolution.sigla,
        "province_source": resolution.source.value,
        "urgency": fields.urgency.value,
        "reporter_type": fields.reporter_type.value if fields.reporter_type else None,
        "exploitation": [item.value for item in fields.exploitation],
        "person_gender": person.gender.value if person.gender else None,
        "person_age_band": person.age_band.value if person.age_band else None,
        "person_minor": person.minor.value if person.minor else None,
        "person_nationality": person.nationality,
        "person_languages": list(person.languages),
        "needs": [item.value for item in fields.needs],
        "municipality": fields.municipality,
        "caller_phone": fields.caller_phone,
        "callback_phone": fields.callback_phone,
        "contact_safe": fields.contact_safe.value,
        "summary": fields.summary,
        "received_at": fields.received_at or now,
        "created_at": now,
        "routed_to_id": primary.id if primary is not None else None,
        "accepted_by_id": None,
        "accepted_at": None,
    }


# What a replay's answer tells the source about its case (design §6: every read is audited).
REPLAY_READ_FIELDS = ("reference", "province", "province_source", "status", "routed_to")


def replayed_handoff(
    session: Session, *, caller: Caller, external_id: str, now: datetime
) -> OpenedCase:
    """The answer to a hand-off sent again: the case the first one opened, as it is now.
    Reading it is audited like `GET /api/v1/handoffs/<external_id>` (field names only)."""
    case = find_case(session, caller=caller, external_id=external_id)
    if case is None:  # pragma: no cover -- a hand-off row is only ever committed with its case
        raise RuntimeError("hand-off stored without a case")
    record_read(session, case, actor=caller.actor, fields=REPLAY_READ_FIELDS, now=now)
    log.info("source %s: replay of hand-off for case %s", caller.name, case.reference)
    return OpenedCase(
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


def _written_fields(case: CaseFields) -> list[str]:
    fields = ["province", "urgency", *case.personal_fields]
    optional: dict[str, Collection[object] | object] = {
        "reporter_type": case.reporter_type,
        "exploitation": case.exploitation,
        "needs": case.needs,
        "received_at": case.received_at,
    }
    return fields + [name for name, value in optional.items() if value]


def find_case(session: Session, *, caller: Caller, external_id: str) -> Case | None:
    """The case a source's hand-off opened, also once retention left only its tombstone; a
    source never sees another source's cases."""
    if "\x00" in external_id:
        return None  # PostgreSQL refuses NUL in text, and no hand-off could have stored it
    return session.scalar(
        select(Case)
        .join(Handoff, Handoff.case_id == Case.id)
        .where(
            Handoff.source_id == caller.source_id,
            Handoff.external_id.in_([external_id, tombstone_id(external_id)]),
        )
        .limit(1)
    )


def tombstone_id(external_id: str, pepper: str | None = None) -> str:
    """The keyed digest a tombstoned hand-off keeps in place of its external id (keyed with
    ALI_SECRET_KEY, like SMS senders: an id cannot be found back by trying candidates)."""
    key = get_settings().secret_key if pepper is None else pepper
    digest = hmac.new(key.encode(), external_id.encode(), hashlib.sha256).hexdigest()
    return TOMBSTONE_PREFIX + digest


def _tombstoned(session: Session, source_id: int, external_id: str) -> bool:
    """Whether retention left a tombstone for this (source, external_id): one lookup on the
    unique index, only when a hand-off opens a case."""
    return (
        session.scalar(
            select(Handoff.id).where(
                Handoff.source_id == source_id, Handoff.external_id == tombstone_id(external_id)
            )
        )
        is not None
    )
