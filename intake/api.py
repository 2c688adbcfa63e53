"""The signed JSON API of design §4: hand-offs, their status, who is on call, the OpenAPI document.

Thin: every request is one short transaction around the services. No personal data is logged.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, jsonify, request
from sqlalchemy.orm import Session

from core import audit
from core.accesslog import logged_path
from core.clock import now as clock_now
from core.config import get_settings
from core.db import get_session, serialised_writes
from core.models import User
from core.provinces import lookup_province
from intake.openapi import openapi_document
from intake.services import (
    AlreadyReceived,
    BroughtBy,
    Caller,
    OpenedCase,
    RateLimited,
    ReceivedHandoff,
    Unauthorised,
    authenticate,
    count_request,
    find_case,
    open_case,
    replayed_handoff,
)
from intake.shelters import free_beds_by_kind
from intake.signing import KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from intake.validation import (
    MAX_BODY_BYTES,
    FieldError,
    FieldWarning,
    ParsedHandoff,
    ValidationFailed,
    parse_body,
    parse_handoff,
)
from oncall.chain import coordinators_to_page, on_call_chain
from routing.dispatch import FollowUp
from routing.followup import after_response
from routing.lifecycle import record_read
from routing.models import Case, Channel

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api/v1")

Answer = tuple[Response, int]


def _error(code: int, message: str) -> Answer:
    return jsonify(error=message), code


def _invalid(errors: list[FieldError]) -> Answer:
    return jsonify(errors=[{"field": e.field, "message": e.message} for e in errors]), 422


def _rate_limited(exc: RateLimited) -> Answer:
    response = jsonify(error="Too many requests from this source; retry later.")
    response.headers["Retry-After"] = str(exc.retry_after)
    return response, 429


def _person(user: User | None) -> dict[str, str | bool | None] | None:
    """Someone on call as a partner sees them: whether the phone was verified says whether
    Ali can page it (an unverified one is skipped by the router)."""
    if user is None:
        return None
    return {
        "name": user.display_name,
        "phone": user.phone,
        "phone_verified": bool(user.phone) and user.phone_verified_at is not None,
    }


def _signed_targets() -> list[str]:
    """The path with query a `v2` signature may cover: as sent (percent-encoded, where the
    server tells it) and as decoded, since clients differ in which one they sign."""
    query = request.query_string.decode("latin-1")
    suffix = f"?{query}" if query else ""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or ""
    raw_path = str(raw).split("?", 1)[0]
    return [f"{path}{suffix}" for path in (raw_path, request.path) if path]


def _authenticate(session: Session, body: bytes, now: datetime) -> Caller | Answer:
    """The calling source, or the 401/429 answer (its transaction rolled back).

    On success the transaction stays open for the request's work: one transaction, one
    connection per request (on SQLite a connection costs an open and a close each time).
    """
    try:
        caller = authenticate(
            session,
            key_id=request.headers.get(KEY_HEADER),
            timestamp=request.headers.get(TIMESTAMP_HEADER),
            signature=request.headers.get(SIGNATURE_HEADER),
            body=body,
            now=now,
            method=request.method,
            targets=_signed_targets(),
        )
    except RateLimited as exc:
        session.rollback()
        log.warning("API request to %s refused: source over its rate limit", logged_path())
        return _rate_limited(exc)
    except Unauthorised as exc:
        session.rollback()
        log.warning("API request to %s refused: %s", logged_path(), exc.reason)
        return _error(401, "Authentication failed: check the key id, timestamp and signature.")
    return caller


def _commit_counted(session: Session, caller: Caller, now: datetime, answer: Answer) -> Answer:
    """Count the request in the source's window, then commit the transaction with `answer`."""
    try:
        count_request(session, caller=caller, now=now)
    except RateLimited as exc:
        session.rollback()
        return _rate_limited(exc)
    session.commit()
    return answer


def _read_body() -> bytes | Answer:
    """The raw JSON body, or the 413/415 answer; never reads more than the limit."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return _too_large()
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if request.mimetype != "application/json" or charset not in {"utf-8", "utf8"}:
        return _error(415, "Send the hand-off as application/json (UTF-8).")
    # Content-Length can be absent (chunked) or wrong: the bytes actually read decide too.
    raw: bytes = request.stream.read(MAX_BODY_BYTES + 1)
    return _too_large() if len(raw) > MAX_BODY_BYTES else raw


def _too_large() -> Answer:
    return _error(413, f"The body is larger than {MAX_BODY_BYTES} bytes.")


@bp.post("/handoffs")
def post_handoff() -> Answer:
    raw = _read_body()
    if not isinstance(raw, bytes):
        return raw
    now = clock_now()
    # Reading the body is pure CPU: done before the transaction so no lock waits for it. Its
    # result is told only to an authenticated source.
    handoff: ParsedHandoff | None = None
    problems: ValidationFailed | None = None
    try:
        handoff = parse_handoff(parse_body(raw), now=now, served=get_settings().provinces)
    except ValidationFailed as exc:
        problems = exc
    session = get_session()
    # SQLite: this process's threads queue here for the write lock instead of sleeping in
    # SQLite's busy handler. Nothing inside opens another connection or sends anything.
    with serialised_writes(session):
        return _receive(session, raw, handoff, problems, now)


def _receive(
    session: Session,
    raw: bytes,
    parsed: ParsedHandoff | None,
    problems: ValidationFailed | None,
    now: datetime,
) -> Answer:
    """The transaction of a hand-off: authenticate, open the case (or find the first one)."""
    caller = _authenticate(session, raw, now)
    if not isinstance(caller, Caller):
        return caller
    if problems is not None or parsed is None:
        errors = problems.errors if problems is not None else []
        log.info("source %s: hand-off refused, fields %s", caller.name, _fields(errors))
        return _commit_counted(session, caller, now, _invalid(errors))

    handoff, warnings = parsed.fields, parsed.warnings
    try:
        outcome = open_case(
            session,
            channel=Channel.WEBHOOK,
            brought_by=BroughtBy.source(caller),
            fields=handoff,
            now=now,
            handoff=ReceivedHandoff(
                source_id=caller.source_id,
                external_id=handoff.external_id,
                # As received (encrypted at rest): JSON escapes a NUL as \u0000, and a raw one
                # is no JSON (refused above), so this text holds none.
                payload=raw.decode("utf-8"),
            ),
            warnings=warnings,
        )
    except AlreadyReceived:
        # Sent before: undo this attempt (its case number too) and answer with the first case.
        session.rollback()
        outcome = replayed_handoff(session, caller=caller, external_id=handoff.external_id, now=now)
        body = _handoff_body(outcome, warnings) | {"duplicate": True}
        return _commit_counted(session, caller, now, (jsonify(body), 200))
    response = jsonify(_handoff_body(outcome, warnings))
    response.headers["Location"] = f"{bp.url_prefix}/handoffs/{quote(handoff.external_id, '')}"
    answer = _commit_counted(session, caller, now, (response, 201))
    if answer[1] == 201 and warnings:
        fields = ",".join(sorted({warning.field for warning in warnings}))
        log.info("case %s: fields not understood: %s", outcome.reference, fields)
    if answer[1] == 201 and outcome.dispatch_id is not None and outcome.pages_queued:
        # The first pages go out once the answer is on its way, not at the next tick.
        after_response(FollowUp(to_send={outcome.dispatch_id}))
    return answer


def _handoff_body(outcome: OpenedCase, warnings: tuple[FieldWarning, ...]) -> dict[str, Any]:
    return {
        "case": outcome.reference,
        "province": outcome.province,
        "province_source": outcome.province_source,
        "status": outcome.status,
        "on_call": _person(outcome.on_call),
        "warnings": [warning.as_json() for warning in warnings],
    }


def _fields(errors: list[FieldError]) -> str:
    return ",".join(sorted({error.field for error in errors}))


@bp.get("/handoffs/<path:external_id>")
def get_handoff(external_id: str) -> Answer:
    session = get_session()
    now = clock_now()
    caller = _authenticate(session, b"", now)
    if not isinstance(caller, Caller):
        return caller
    case: Case | None = find_case(session, caller=caller, external_id=external_id)
    if case is None:
        return _commit_counted(
            session, caller, now, _error(404, "This source sent no hand-off with this external_id.")
        )
    record_read(
        session, case, actor=caller.actor, fields=["status", "accepted_by", "accepted_at"], now=now
    )
    accepted_by = case.accepted_by
    body = {
        "case": case.reference,
        "status": case.status,
        "province": case.province,
        "accepted": accepted_by is not None,
        "accepted_by": accepted_by.display_name if accepted_by is not None else None,
        "accepted_at": case.accepted_at.isoformat() if case.accepted_at else None,
    }
    return _commit_counted(session, caller, now, (jsonify(body), 200))


def _served_province(given: str) -> str | FieldError:
    """The sigla of the `province` query parameter, or what is wrong with it."""
    if not given.strip():
        return FieldError("province", "is required (a sigla, a name or an ISTAT code)")
    found = lookup_province(given)
    if found is None:
        return FieldError("province", "is not an Italian province")
    if found.sigla not in get_settings().provinces:
        return FieldError("province", f"{found.sigla} is not served by this instance of Ali")
    return found.sigla


@bp.get("/oncall")
def get_on_call() -> Answer:
    session = get_session()
    now = clock_now()
    caller = _authenticate(session, b"", now)
    if not isinstance(caller, Caller):
        return caller
    sigla = _served_province(request.args.get("province", ""))
    if isinstance(sigla, FieldError):
        return _commit_counted(session, caller, now, _invalid([sigla]))
    # The router's own chain: the same function and the same coordinators' fallback.
    chain = on_call_chain(session, province=sigla, at=now)
    coordinators, _pageable = coordinators_to_page(session, chain)
    audit.record(
        session,
        now=now,
        action="read",
        object_type="oncall",
        object_id=sigla,
        actor=caller.actor,
        fields=["primary", "backup", "coordinators"],
    )
    body = {
        "province": chain.province,
        "at": chain.at.isoformat(),
        "primary": _person(chain.primary),
        "backup": _person(chain.backup),
        "coordinators": [_person(user) for user in coordinators],
    }
    return _commit_counted(session, caller, now, (jsonify(body), 200))


@bp.get("/beds")
def get_beds() -> Answer:
    """Free beds per shelter kind in a province: counts only, never a shelter's name or
    address (operational figures, not suppressed: design §4)."""
    session = get_session()
    now = clock_now()
    caller = _authenticate(session, b"", now)
    if not isinstance(caller, Caller):
        return caller
    sigla = _served_province(request.args.get("province", ""))
    if isinstance(sigla, FieldError):
        return _commit_counted(session, caller, now, _invalid([sigla]))
    free = free_beds_by_kind(session, sigla)
    audit.record(
        session,
        now=now,
        action="read",
        object_type="beds",
        object_id=sigla,
        actor=caller.actor,
        fields=["free_beds"],
    )
    body = {"province": sigla, "at": now.isoformat(), "free_beds": free}
    return _commit_counted(session, caller, now, (jsonify(body), 200))


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document(get_settings().public_url))
