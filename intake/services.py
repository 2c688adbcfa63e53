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
from typing import Any, cast

from sqlalchemy import (
    JSON,
    ColumnElement,
    Executable,
    Integer,
    Select,
    Table,
    Text,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    true,
    union_all,
)
from sqlalchemy import case as sql_case
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from core import audit
from core.clock import ROME
from core.models import AuditEntry, User
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
from routing.services import has_rota, primary_for

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
    if "\x00" in key_id:
        # PostgreSQL refuses NUL in text; it can never be a key id we issued.
        raise Unauthorised("unknown or retired key id")
    rows = session.connection().execute(_statements(session).authenticate, {"key_id": key_id}).all()
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
# Columns of a case given by the hand-off (the reference is made from the sequence).
_CASE_COLUMNS = tuple(c for c in _CASES.c if c.name not in {"id", "reference"})
_HANDOFF_COLUMNS = ("source_id", "external_id", "payload", "received_at")
_EVENT_COLUMNS = ("case_id", "at", "kind", "actor", "data")
_EVENT_KINDS = ("created", "routed")  # parameter prefixes of the two events too
_AUDIT_COLUMNS = tuple(c.name for c in _AUDIT.c if c.name != "id")


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
    insert_events: Executable
    insert_audit: Executable
    open_case: Executable | None  # PostgreSQL: all of a new case's writes in one statement


def _count_update(excluded: Any) -> dict[str, ColumnElement[Any]]:
    """The fixed window's upsert: one more in the same window, else 1 in the new one."""
    window = _RATE.c
    return {
        "count": sql_case(
            (window.window_start == excluded.window_start, window.count + 1), else_=1
        ),
        "window_start": excluded.window_start,
    }


def _typed(name: str, column: ColumnElement[Any]) -> ColumnElement[Any]:
    """A bound parameter with the column's type (bind processing, e.g. the encryption of an
    EncryptedText, applies; SQLAlchemy's psycopg dialect renders it as `%(name)s::TYPE`, so
    PostgreSQL knows its type in a SELECT list)."""
    return bindparam(name, type_=column.type)


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
        # Both events of a new case in one multi-row INSERT.
        insert_events=insert(_EVENTS).values(
            [
                {
                    name: bindparam(f"{kind}_{name}", type_=_EVENTS.c[name].type)
                    for name in _EVENT_COLUMNS
                }
                for kind in _EVENT_KINDS
            ]
        ),
        insert_audit=insert(_AUDIT),
        open_case=_open_case_statement() if dialect == "postgresql" else None,
    )


def _open_case_statement() -> Executable:
    """PostgreSQL: a new case's writes in ONE statement of data-modifying CTEs, one round trip
    instead of six. Each CTE reads the rows of the one before, so PostgreSQL runs them in the
    order the other path does: the sequence number, the case, the hand-off claimed with
    ON CONFLICT DO NOTHING (a twin that got there first leaves it empty, and with it every CTE
    after it), the two events and the audit entry, and last the request counted in the
    source's window (that row stays locked until the commit, which comes right after)."""
    # VALUES rather than SELECT lists: the statement stays short enough for psycopg to cache
    # its conversion (MAX_STATEMENT_LENGTH; a test keeps it there).
    number = (
        postgresql.insert(_SEQUENCES)
        .values(
            province=_typed("s_province", _SEQUENCES.c.province),
            year=_typed("s_year", _SEQUENCES.c.year),
            last=literal_column("1", Integer),
        )
        .on_conflict_do_update(
            index_elements=[_SEQUENCES.c.province, _SEQUENCES.c.year],
            set_={"last": _SEQUENCES.c.last + 1},
        )
        .returning(_SEQUENCES.c.last)
        .cte("number")
    )
    digits = sql_cast(number.c.last, Text)
    # `BS-2026-` + the number, zero-padded to four digits (Python's `:04d`).
    reference = bindparam("prefix", type_=Text).op("||")(
        func.lpad(
            digits, func.greatest(literal_column("4"), func.length(digits)), literal_column("'0'")
        )
    )
    new_case = (
        insert(_CASES)
        .values(
            reference=select(reference).scalar_subquery(),
            **{c.name: _typed(f"c_{c.name}", c) for c in _CASE_COLUMNS},
        )
        .returning(_CASES.c.id, _CASES.c.reference)
        .cte("new_case")
    )
    claimed = (
        postgresql.insert(_HANDOFFS)
        .values(
            case_id=select(new_case.c.id).scalar_subquery(),
            **{name: _typed(f"h_{name}", _HANDOFFS.c[name]) for name in _HANDOFF_COLUMNS},
        )
        .on_conflict_do_nothing(index_elements=[_HANDOFFS.c.source_id, _HANDOFFS.c.external_id])
        .returning(_HANDOFFS.c.id)
        .cte("claimed")
    )
    both = new_case.join(claimed, true())

    def key(name: str) -> ColumnElement[Any]:
        return literal_column(f"'{name}'", Text)  # a constant of this module, never input

    def with_handoff_id(name: str) -> ColumnElement[Any]:
        # The object made in Python, plus "handoff_id": the claimed row's id.
        merged = sql_cast(bindparam(name, type_=JSON), JSONB).op("||")(
            func.jsonb_build_object(key("handoff_id"), claimed.c.id)
        )
        return sql_cast(merged, JSON)

    def event(kind: str) -> Select[Any]:
        data = (
            with_handoff_id(f"{kind}_data")
            if kind == "created"
            else _typed(f"{kind}_data", _EVENTS.c.data)
        )
        return select(
            new_case.c.id,
            _typed(f"{kind}_at", _EVENTS.c.at),
            _typed(f"{kind}_kind", _EVENTS.c.kind),
            _typed(f"{kind}_actor", _EVENTS.c.actor),
            data,
        ).select_from(both)

    events = insert(_EVENTS).from_select(
        list(_EVENT_COLUMNS), union_all(*(event(kind) for kind in _EVENT_KINDS))
    )
    audit_values = {
        name: _typed(f"a_{name}", _AUDIT.c[name])
        for name in _AUDIT_COLUMNS
        if name not in {"object_id", "detail"}
    }
    audit_values["object_id"] = sql_cast(new_case.c.id, _AUDIT.c.object_id.type)
    audit_values["detail"] = sql_cast(
        func.jsonb_build_object(
            key("reference"), new_case.c.reference, key("handoff_id"), claimed.c.id
        ),
        JSON,
    )
    audit_entry = insert(_AUDIT).from_select(
        list(audit_values), select(*audit_values.values()).select_from(both)
    )
    rate = postgresql.insert(_RATE)
    counted = (
        rate.from_select(
            ["source_id", "window_start", "count"],
            select(
                _typed("r_source_id", _RATE.c.source_id),
                _typed("r_window_start", _RATE.c.window_start),
                literal_column("1", Integer),
            ).select_from(claimed),
        )
        .on_conflict_do_update(
            index_elements=[_RATE.c.source_id], set_=_count_update(rate.excluded)
        )
        .returning(_RATE.c.count)
        .cte("counted")
    )
    return (
        select(new_case.c.id, new_case.c.reference, claimed.c.id, counted.c.count)
        .select_from(new_case.outerjoin(claimed, true()).outerjoin(counted, true()))
        .add_cte(events.cte("events"), audit_entry.cte("audit_entry"))
    )


def _statements(session: Session) -> _Statements:
    return _statements_for(session.get_bind().dialect.name)


# --- hand-offs and cases -------------------------------------------------------------------


def _reference_parts(province: str | None, now: datetime) -> tuple[str, int]:
    """(sigla, year): XX when unresolved, the year in Rome of receipt."""
    return province or UNRESOLVED_PREFIX, now.astimezone(ROME).year


def next_reference(session: Session, *, province: str | None, now: datetime) -> str:
    """`BS-2026-0042`: province (XX when unresolved), year in Rome of receipt, sequence.

    The row of (province, year) is upserted in the case's own transaction: PostgreSQL locks it
    until the commit and SQLite serialises writers, so two cases never share a number.
    """
    sigla, year = _reference_parts(province, now)
    number: int = (
        session.connection()
        .execute(_statements(session).next_number, {"province": sigla, "year": year, "last": 1})
        .scalar_one()
    )
    return f"{sigla}-{year}-{number:04d}"


class AlreadyReceived(Exception):
    """This source sent this external_id before: roll back and answer `replayed_handoff`."""


def open_case(
    session: Session, *, caller: Caller, handoff: HandoffInput, payload: str, now: datetime
) -> HandoffOutcome:
    """Open the case of a new hand-off, routed, store the hand-off pointing at it, and count
    the request in the source's window (raises RateLimited past the limit: roll back).

    Exactly once: the hand-off row goes in after the case with INSERT … ON CONFLICT DO NOTHING
    on the unique (source, external_id). A twin that got there first (committed, or
    committing: PostgreSQL makes this insert wait for it) leaves nothing inserted, and this
    raises AlreadyReceived: the caller rolls the transaction back (case number included) and
    answers with `replayed_handoff`. Prebuilt Core statements, no unit of work: this is the
    hot path of the intake. On PostgreSQL the writes are one statement (see
    `_open_case_statement`); on SQLite, where statements are calls into the same process and
    writers are serialised anyway, they are five.
    """
    resolution = handoff.resolution
    routed_to_rota = has_rota(resolution)
    primary = primary_for(session, resolution=resolution, at=now)
    statements = _statements(session)
    connection = session.connection()
    sigla, year = _reference_parts(resolution.sigla, now)
    person = handoff.person
    case_row: dict[str, Any] = {
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
    }
    handoff_row = {
        "source_id": caller.source_id,
        "external_id": handoff.external_id,
        "payload": payload,
        "received_at": now,
    }
    created = {"channel": Channel.WEBHOOK.value, "urgency": handoff.urgency.value}
    events = {
        "created": {"at": now, "kind": CaseEventKind.CREATED.value, "actor": caller.actor},
        "routed": {
            "at": now,
            "kind": CaseEventKind.ROUTED.value,
            "actor": "system",
            "data": _routed(resolution.sigla, resolution.source, routed_to_rota, primary),
        },
    }
    entry = audit.entry_values(
        now=now,
        action="create",
        object_type="case",
        actor=caller.actor,
        fields=_written_fields(handoff),
    )
    start, retry_after = _window(now)
    if statements.open_case is not None:
        params: dict[str, Any] = {
            "s_province": sigla,
            "s_year": year,
            "prefix": f"{sigla}-{year}-",
            "r_source_id": caller.source_id,
            "r_window_start": start,
            "created_data": created,
        }
        params.update((f"c_{name}", value) for name, value in case_row.items())
        params.update((f"h_{name}", value) for name, value in handoff_row.items())
        for kind, values in events.items():
            params.update((f"{kind}_{name}", value) for name, value in values.items())
        params.update((f"a_{name}", value) for name, value in entry.items())
        row = connection.execute(statements.open_case, params).one()
        case_id, reference, handoff_id, count = row
        if handoff_id is None:
            raise AlreadyReceived(handoff.external_id)
    else:
        number: int = connection.execute(
            statements.next_number, {"province": sigla, "year": year, "last": 1}
        ).scalar_one()
        reference = f"{sigla}-{year}-{number:04d}"
        case_id = connection.execute(
            statements.insert_case, {"reference": reference, **case_row}
        ).scalar_one()
        handoff_id = connection.execute(
            statements.claim_handoff, {**handoff_row, "case_id": case_id}
        ).scalar_one_or_none()
        if handoff_id is None:
            raise AlreadyReceived(handoff.external_id)
        events["created"]["data"] = created | {"handoff_id": handoff_id}
        params = {
            f"{kind}_{name}": value
            for kind, values in events.items()
            for name, value in (values | {"case_id": case_id}).items()
        }
        connection.execute(statements.insert_events, params)
        connection.execute(
            statements.insert_audit,
            entry
            | {
                "object_id": str(case_id),
                "detail": {"reference": reference, "handoff_id": handoff_id},
            },
        )
        count = connection.execute(
            statements.count_request,
            {"source_id": caller.source_id, "window_start": start, "count": 1},
        ).scalar_one()
    if count > caller.rate_limit:
        raise RateLimited(retry_after)
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


# What a replay's answer tells the source about its case (design §6: every read is audited).
REPLAY_READ_FIELDS = ("reference", "province", "province_source", "status", "routed_to")


def replayed_handoff(
    session: Session, *, caller: Caller, external_id: str, now: datetime
) -> HandoffOutcome:
    """The answer to a hand-off sent again: the case the first one opened, as it is now.
    Reading it is audited like `GET /api/v1/handoffs/<external_id>` (field names only)."""
    case = find_case(session, caller=caller, external_id=external_id)
    if case is None:  # pragma: no cover -- a hand-off row is only ever committed with its case
        raise RuntimeError("hand-off stored without a case")
    audit.record(
        session,
        now=now,
        action="read",
        object_type="case",
        object_id=case.id,
        actor=caller.actor,
        fields=REPLAY_READ_FIELDS,
    )
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
    if "\x00" in external_id:
        return None  # PostgreSQL refuses NUL in text, and no hand-off could have stored it
    return session.scalar(
        select(Case)
        .join(Handoff, Handoff.case_id == Case.id)
        .where(Handoff.source_id == caller.source_id, Handoff.external_id == external_id)
    )
