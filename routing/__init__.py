"""Routing: province resolution, dispatch and escalation of cases to the on-call chain."""

from __future__ import annotations

from datetime import datetime

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import DeliveryStatus


def init_app(app: Flask) -> None:
    """Plugs the alert-call webhooks, the status listener and the escalation job in."""
    # Imported here: the feature plugs into an app that core has already built.
    from core.app import csrf  # noqa: PLC0415
    from core.audit import register_object_labels  # noqa: PLC0415
    from core.delivery import add_status_listener  # noqa: PLC0415
    from core.metrics import register_metrics  # noqa: PLC0415
    from routing import cli, jobs, views, webhooks  # noqa: PLC0415
    from routing.metrics import routing_metrics  # noqa: PLC0415

    app.register_blueprint(webhooks.bp)
    csrf.exempt(webhooks.bp)
    add_status_listener(app, _page_status)
    jobs.init_app(app)
    register_metrics(app, routing_metrics)
    register_object_labels(app, "case", _case_references)
    cli.init_app(app)
    views.init_app(app)


def _page_status(session: Session, row: DeliveryStatus, now: datetime) -> None:
    from routing.dispatch import page_status_changed  # noqa: PLC0415
    from routing.followup import after_response  # noqa: PLC0415

    after_response(page_status_changed(session, row, now))


def _case_references(session: Session, ids: list[str]) -> dict[str, str]:
    """The audit viewer names a case by its reference (no personal data in it)."""
    from routing.models import Case  # noqa: PLC0415

    numbers = [int(i) for i in ids if i.isdigit()]
    rows = session.execute(select(Case.id, Case.reference).where(Case.id.in_(numbers)))
    return {str(case_id): reference for case_id, reference in rows}
