"""Work an edge hands over to run after its response: sending, ending calls, advancing.

The Numero Verde's answer and Twilio's webhooks never wait on Twilio's REST API: the
follow-up runs when the WSGI server closes the response, in its own app context and
transaction. Anything it does not finish, the worker's next tick does.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, after_this_request, current_app, g

from core.db import session_scope
from routing.dispatch import FollowUp, run_follow_up

log = logging.getLogger(__name__)


def after_response(follow_up: FollowUp) -> None:
    """Run `follow_up` once this request's response has been sent."""
    if not follow_up:
        return
    pending: FollowUp | None = g.get("ali_follow_up")
    if pending is not None:
        pending.merge(follow_up)
        return
    g.ali_follow_up = follow_up
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]

    @after_this_request
    def _register(response: Response) -> Response:
        response.call_on_close(lambda: run_now(app, follow_up))
        return response


def run_now(app: Flask, follow_up: FollowUp) -> None:
    try:
        with app.app_context(), session_scope(app) as session:
            now = app.extensions["ali.clock"].now()
            run_follow_up(session, app.extensions["ali.telephony"], now, follow_up)
    except Exception:
        # The rows are committed; the worker's next tick finishes what this could not.
        log.exception("follow-up after the response failed; the worker will retry")
