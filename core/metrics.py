"""GET /metrics: Prometheus figures read from the database at scrape time, behind a token."""

# Why from the database: the web app runs as many gunicorn processes on many nodes and the
# worker is another process; counters kept in memory would be one process's share. Each
# feature registers a function that reads its own tables (core cannot import them), and the
# scrape runs them all in one read-only session. Labels carry codes and source names only,
# never a person's name, number or a case reference.

from __future__ import annotations

import hmac
import math
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from flask import Blueprint, Flask, Response, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.clock import now as clock_now
from core.config import get_settings
from core.db import get_session
from core.models import WorkerHeartbeat

MetricsSource = Callable[[Session, datetime], Iterable[Metric]]
EXTENSION_KEY = "ali.metrics"

bp = Blueprint("metrics", __name__)


def register_metrics(app: Flask, source: MetricsSource) -> None:
    """A feature's figures, computed at each scrape from its tables."""
    app.extensions.setdefault(EXTENSION_KEY, []).append(source)


class _DatabaseCollector(Collector):
    def __init__(self, sources: Iterable[MetricsSource], session: Session, now: datetime) -> None:
        self._sources = list(sources)
        self._session = session
        self._now = now

    def collect(self) -> Iterator[Metric]:
        for source in self._sources:
            yield from source(self._session, self._now)


def heartbeat_metrics(session: Session, now: datetime) -> Iterable[Metric]:
    """Seconds since the freshest worker heartbeat; +Inf when no worker ever beat."""
    last = session.scalar(select(func.max(WorkerHeartbeat.beat_at)))
    age = GaugeMetricFamily(
        "ali_worker_heartbeat_age_seconds",
        "Seconds since the scheduler (ali worker) last said it was alive; +Inf if never.",
    )
    age.add_metric([], math.inf if last is None else max(0.0, (now - last).total_seconds()))
    yield age


def _authorised(token: str) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


@bp.get("/metrics")
def metrics() -> Response:
    token = get_settings().metrics_token
    if not token:
        # No token configured: monitoring is off and the endpoint does not exist.
        abort(404)
    if not _authorised(token):
        return Response(
            "a Bearer token is required\n",
            status=401,
            mimetype="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    session = get_session()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        _DatabaseCollector(current_app.extensions.get(EXTENSION_KEY, []), session, clock_now())
    )
    body = generate_latest(registry)
    session.rollback()  # read only: nothing to keep
    return Response(body, status=200, headers={"Content-Type": CONTENT_TYPE_LATEST})


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    register_metrics(app, heartbeat_metrics)
