"""Routing: province resolution, dispatch and escalation of cases to the on-call chain."""

from __future__ import annotations

from datetime import datetime

from flask import Flask
from sqlalchemy.orm import Session

from core.models import DeliveryStatus


def init_app(app: Flask) -> None:
    """Plugs the alert-call webhooks, the status listener and the escalation job in."""
    # Imported here: the feature plugs into an app that core has already built.
    from core.app import csrf  # noqa: PLC0415
    from core.delivery import add_status_listener  # noqa: PLC0415
    from routing import cli, jobs, views, webhooks  # noqa: PLC0415

    app.register_blueprint(webhooks.bp)
    csrf.exempt(webhooks.bp)
    add_status_listener(app, _page_status)
    jobs.init_app(app)
    cli.init_app(app)
    views.init_app(app)


def _page_status(session: Session, row: DeliveryStatus, now: datetime) -> None:
    from routing.dispatch import page_status_changed  # noqa: PLC0415
    from routing.followup import after_response  # noqa: PLC0415

    after_response(page_status_changed(session, row, now))
