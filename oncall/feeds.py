"""iCal feeds of shifts behind secret, revocable tokens."""

from __future__ import annotations

from typing import NoReturn

from flask import Blueprint, Response, abort, current_app

from core import audit
from core.clock import now as clock_now
from core.config import Settings
from core.db import get_session
from core.models import User
from oncall.calendar import TokenKind, operator_feed, province_feed, token_for_feed

bp = Blueprint("oncall_feeds", __name__, url_prefix="/calendar")


def _not_found() -> NoReturn:
    # One plain answer for unknown, revoked and no-longer-valid tokens: nothing tells them
    # apart, and a calendar app has no use for an HTML page.
    abort(Response("Not found\n", status=404, mimetype="text/plain"))


def _ics(body: bytes) -> Response:
    response = Response(body, mimetype="text/calendar")
    response.headers["Content-Disposition"] = 'inline; filename="ali.ics"'
    return response


@bp.get("/operator/<token>.ics")
def operator(token: str) -> Response:
    """An operator's own shifts (no login: calendar apps cannot log in; the token is it)."""
    settings: Settings = current_app.extensions["ali.settings"]
    db = get_session()
    row = token_for_feed(db, kind=TokenKind.OPERATOR, raw=token, served=settings.provinces)
    if row is None or row.user_id is None:
        _not_found()
    user = db.get(User, row.user_id)
    if user is None:
        _not_found()
    now = clock_now()
    body = operator_feed(db, user=user, now=now)
    audit.record(
        db,
        now=now,
        action="read",
        object_type="calendar_feed",
        object_id=row.id,
        actor=f"calendar_token:{row.id}",
        fields=["shifts"],
    )
    db.commit()
    return _ics(body)


@bp.get("/province/<token>.ics")
def province(token: str) -> Response:
    """A province's primary and backup shifts with the operators' names."""
    settings: Settings = current_app.extensions["ali.settings"]
    db = get_session()
    row = token_for_feed(db, kind=TokenKind.PROVINCE, raw=token, served=settings.provinces)
    if row is None or row.province is None:
        _not_found()
    creator = db.get(User, row.created_by_id) if row.created_by_id is not None else None
    now = clock_now()
    body = province_feed(
        db, province=row.province, locale=creator.locale if creator else "it", now=now
    )
    audit.record(
        db,
        now=now,
        action="read",
        object_type="calendar_feed",
        object_id=row.id,
        actor=f"calendar_token:{row.id}",
        fields=["shifts", "display_name"],
        detail={"province": row.province},
    )
    db.commit()
    return _ics(body)
