"""Error pages and JSON errors that leak nothing: no stack traces, no data, just what to do."""

from __future__ import annotations

import logging
import re

from flask import Flask, Response, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.sansio.response import Response as WerkzeugResponse

from core.accesslog import logged_path
from core.db import rollback_session
from core.text import LINE_BREAKS_AND_TABS, has_control

log = logging.getLogger(__name__)


# PostgreSQL's DETAIL repeats the row's values ("Key (email)=(...)", "Failing row contains (...)").
_DETAIL = re.compile(r"^DETAIL: .*(?:\n|$)", re.MULTILINE)


class RedactDatabaseValues(logging.Filter):
    """Keeps personal data out of logged tracebacks of database errors (the engine already
    hides bound parameters); the traceback and the error's first line stay for operators."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        chain: list[BaseException] = []
        while exc is not None and exc not in chain:
            chain.append(exc)
            exc = exc.__cause__ or exc.__context__
        if record.exc_info and any(isinstance(e, DBAPIError) for e in chain):
            record.exc_text = _DETAIL.sub("", logging.Formatter().formatException(record.exc_info))
        return True


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path.startswith("/twilio/")


def _messages() -> dict[int, str]:
    return {
        400: _("The request could not be understood. Go back and try again."),
        401: _("You need to sign in."),
        403: _("You do not have access to this page."),
        404: _("This page does not exist."),
        405: _("This action is not allowed here."),
        413: _("The request is too large."),
        415: _("Unsupported content type."),
        429: _("Too many requests. Wait a moment and try again."),
        500: _("Something went wrong on our side. The team has been notified."),
    }


def _render(code: int, message: str) -> tuple[Response | str, int]:
    # Whatever the request left unfinished is not committed anyway; on PostgreSQL a failed
    # statement would also make the page's own queries fail (and a bare page go out).
    rollback_session()
    if _wants_json():
        return jsonify(error=message, status=code), code
    return render_template("core/error.html", code=code, message=message), code


def _http_error(exc: HTTPException) -> tuple[Response | str, int] | WerkzeugResponse:
    if exc.response is not None:
        # A handler that aborted with its own response (e.g. a JSON error body) keeps it.
        return exc.response
    code = exc.code or 500
    return _render(code, _messages().get(code, exc.name))


def _csrf_error(exc: CSRFError) -> tuple[Response | str, int]:
    log.warning("CSRF check failed on %s: %s", logged_path(), exc.description)
    return _render(400, _("The form expired or was not sent from Ali. Reload the page and retry."))


def _unexpected(exc: Exception) -> tuple[Response | str, int] | WerkzeugResponse:
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    # First: logging the error may itself read the signed-in user.
    rollback_session()
    log.error("unhandled error on %s %s", request.method, logged_path(), exc_info=exc)
    return _render(500, _messages()[500])


def _has_control(values: MultiDict[str, str]) -> bool:
    return any(
        has_control(key) or has_control(value, LINE_BREAKS_AND_TABS)
        for key, value in values.items(multi=True)
    )


def refuse_control_characters() -> tuple[Response | str, int] | None:
    """Before every page: a query parameter or form field holding a control character is
    refused with a message saying so, before any view reads it (PostgreSQL refuses NUL in
    text; none of them is anything a person typed). Line breaks and tabs are text. The JSON
    API and Twilio's webhooks read their input themselves."""
    if _wants_json():
        return None
    if _has_control(request.args):
        return _render(
            400,
            _(
                "The address contains control characters (invisible characters that are not "
                "text). Check the link and try again."
            ),
        )
    if request.method != "GET" and _has_control(request.form):
        log.info("form on %s refused: control characters", logged_path())
        return _render(
            400,
            _(
                "The form contains control characters (invisible characters that are not "
                "text, often pasted from another program). Go back, remove them and send it "
                "again."
            ),
        )
    return None


def init_app(app: Flask) -> None:
    app.before_request(refuse_control_characters)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(InternalServerError, _unexpected)
    app.register_error_handler(Exception, _unexpected)
