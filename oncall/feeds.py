"""iCal feeds of shifts behind secret, revocable tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NoReturn

from flask import Blueprint, Response, abort

from core import audit
from core.clock import now as clock_now
from core.config import get_settings
from core.db import get_session
from core.models import User
from oncall.calendar import TokenKind, operator_feed, province_feed, token_for_feed
from oncall.models import CalendarToken

bp = Blueprint("oncall_feeds", __name__, url_prefix="/calendar")


def _not_found() -> NoReturn:
    # One plain answer for unknown, revoked and no-longer-valid tokens: nothing tells them
    # apart, and a calendar app has no use for an HTML page.
    abort(Response("Not found\n", status=404, mimetype="text/plain"))


def _token(kind: TokenKind, raw: str) -> CalendarToken:
    row = token_for_feed(get_session(), kind=kind, raw=raw, served=get_settings().provinces)
    if row is None:
        _not_found()
    return row


def _ics(
    row: CalendarToken,
    body: bytes,
    *,
    now: datetime,
    fields: list[str],
    detail: dict[str, Any] | None = None,
) -> Response:
    """The feed, once its reading is on the record (by the token: nobody is logged in)."""
    db = get_session()
    audit.record(
        db,
        now=now,
        action="read",
        object_type="calendar_feed",
        object_id=row.id,
        actor=f"calendar_token:{row.id}",
        fields=fields,
        detail=detail,
    )
    db.commit()
    response = Response(body, mimetype="text/calendar")
    response.headers["Content-Disposition"] = 'inline; filename="ali.ics"'
    return response


@bp.get("/operator/<token>.ics")
def operator(token: str) -> Response:
    """An operator's own shifts (no login: calendar apps cannot log in; the token is it)."""
    row = _token(TokenKind.OPERATOR, token)
    user = get_session().get(User, row.user_id) if row.user_id is not None else None
    if user is None:
        _not_found()
    now = clock_now()
    body = operator_feed(get_session(), user=user, now=now)
    return _ics(row, body, now=now, fields=["shifts"])


@bp.get("/province/<token>.ics")
def province(token: str) -> Response:
    """A province's primary and backup shifts with the operators' names."""
    row = _token(TokenKind.PROVINCE, token)
    if row.province is None:
        _not_found()
    db = get_session()
    creator = db.get(User, row.created_by_id) if row.created_by_id is not None else None
    now = clock_now()
    locale = creator.locale if creator else "it"
    body = province_feed(db, province=row.province, locale=locale, now=now)
    return _ics(
        row, body, now=now, fields=["shifts", "display_name"], detail={"province": row.province}
    )
