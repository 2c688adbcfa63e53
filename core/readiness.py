"""Readiness checks for /readyz: features register what "ready" means for them."""

# Core cannot import the features (dependency direction), yet /readyz must fail when, say,
# an escalation is overdue: a feature registers a check at init_app, as it registers jobs.

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Readiness:
    """One check's verdict: `status` is "ok" when ready, else a word naming the trouble
    (e.g. "overdue"); `detail` carries ids and counts, never personal data."""

    status: str
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


ReadinessCheck = Callable[[Session, datetime], Readiness]


def register_readiness_check(app: Flask, name: str, check: ReadinessCheck) -> None:
    checks: dict[str, ReadinessCheck] = app.extensions.setdefault("ali.readiness", {})
    if name in checks:
        raise ValueError(f"readiness check {name} registered twice")
    checks[name] = check


def readiness_checks(app: Flask) -> dict[str, ReadinessCheck]:
    checks: dict[str, ReadinessCheck] = app.extensions.get("ali.readiness", {})
    return dict(checks)
