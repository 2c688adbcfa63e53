"""Intake's figures for /metrics: hand-offs by source and outcome (source names, codes)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from intake.models import Handoff, Source
from routing.models import Dispatch

NO_DISPATCH = "none"


def intake_metrics(session: Session, _now: datetime) -> Iterable[Metric]:
    received = CounterMetricFamily(
        "ali_handoffs_received",
        "Hand-offs stored (each once per source and external id), by source.",
        labels=["source"],
    )
    outcomes = GaugeMetricFamily(
        "ali_handoffs",
        "Hand-offs by source and where their case's escalation stands now: open, accepted, "
        "exhausted (unanswered) or none.",
        labels=["source", "outcome"],
    )
    totals: dict[str, int] = {}
    for source, state, count in session.execute(
        select(Source.name, Dispatch.state, func.count(Handoff.id))
        .join(Source, Source.id == Handoff.source_id)
        .outerjoin(Dispatch, Dispatch.case_id == Handoff.case_id)
        .group_by(Source.name, Dispatch.state)
        .order_by(Source.name, Dispatch.state)
    ):
        outcomes.add_metric([source, NO_DISPATCH if state is None else str(state)], count)
        totals[source] = totals.get(source, 0) + count
    for source, count in totals.items():
        received.add_metric([source], count)
    yield received
    yield outcomes
