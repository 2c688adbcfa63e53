"""Routing's figures for /metrics: pages by channel and status, escalation lateness,
unanswered cases (codes only in labels)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from routing.models import Dispatch, DispatchState, Page


def routing_metrics(session: Session, now: datetime) -> Iterable[Metric]:
    pages = GaugeMetricFamily(
        "ali_pages",
        "Alert pages (SMS and calls to operators) by channel and latest delivery status.",
        labels=["channel", "status"],
    )
    for channel, status, count in session.execute(
        select(Page.channel, Page.status, func.count(Page.id))
        .group_by(Page.channel, Page.status)
        .order_by(Page.channel, Page.status)
    ):
        pages.add_metric([str(channel), status], count)
    yield pages

    # Lateness of the escalation now: how long past its due time the most overdue open step
    # is still waiting for the worker (0 when none is). A worker that stops shows at once.
    overdue, oldest_due = session.execute(
        select(func.count(Dispatch.id), func.min(Dispatch.due_at)).where(
            Dispatch.state == DispatchState.OPEN, Dispatch.due_at <= now
        )
    ).one()
    lateness = GaugeMetricFamily(
        "ali_escalation_lateness_seconds",
        "Seconds the most overdue escalation step has been waiting past its due time.",
    )
    lateness.add_metric([], 0.0 if oldest_due is None else (now - oldest_due).total_seconds())
    yield lateness
    due = GaugeMetricFamily(
        "ali_escalation_steps_overdue", "Open escalations whose next step is past due."
    )
    due.add_metric([], overdue)
    yield due

    unanswered = GaugeMetricFamily(
        "ali_unanswered_cases",
        "Cases whose escalation used every step and nobody accepted (red on the dashboard).",
    )
    unanswered.add_metric(
        [],
        session.scalar(
            select(func.count(Dispatch.id)).where(Dispatch.state == DispatchState.EXHAUSTED)
        )
        or 0,
    )
    yield unanswered
