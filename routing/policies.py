"""Escalation policies: the steps of design §5 per urgency, as stored and as snapshotted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from routing.models import EscalationPolicy, PageChannel, PolicyTarget, Urgency

_BOTH = ["sms", "voice"]
# Used when a row is missing (a database migrated by hand): never a case without a policy.
DEFAULT_POLICIES: dict[str, dict[str, Any]] = {
    "emergency": {
        "steps": [
            {"targets": ["primary"], "channels": _BOTH, "wait_minutes": 3},
            {"targets": ["primary", "backup"], "channels": _BOTH, "wait_minutes": 3},
            {"targets": ["coordinators"], "channels": _BOTH, "wait_minutes": 5},
        ],
        "repeat_last": 3,
    },
    "urgent": {
        "steps": [
            {"targets": ["primary"], "channels": _BOTH, "wait_minutes": 5},
            {"targets": ["primary", "backup"], "channels": _BOTH, "wait_minutes": 5},
            {"targets": ["coordinators"], "channels": _BOTH, "wait_minutes": 10},
        ],
        "repeat_last": 3,
    },
    "ordinary": {
        "steps": [
            {"targets": ["primary"], "channels": ["sms"], "wait_minutes": 15},
            {"targets": ["primary"], "channels": ["voice"], "wait_minutes": 15},
            {"targets": ["backup"], "channels": _BOTH, "wait_minutes": 15},
            {"targets": ["coordinators"], "channels": _BOTH, "wait_minutes": 30},
        ],
        "repeat_last": 2,
    },
}


@dataclass(frozen=True)
class Step:
    """One step of a policy: who is paged, how, and how long to wait for an answer."""

    targets: tuple[PolicyTarget, ...]
    channels: tuple[PageChannel, ...]
    wait_minutes: float


def policy_snapshot(session: Session, urgency: Urgency) -> dict[str, Any]:
    """The policy a new dispatch copies: the stored one, else the design's default."""
    row = session.get(EscalationPolicy, urgency)
    if row is None:
        return DEFAULT_POLICIES[urgency.value]
    return {"steps": row.steps, "repeat_last": row.repeat_last}


def total_steps(policy: dict[str, Any]) -> int:
    """Every step once, then the last one `repeat_last` more times."""
    return len(policy["steps"]) + int(policy.get("repeat_last", 0))


def step_of(policy: dict[str, Any], index: int) -> Step:
    """The step fired as the `index`-th (0-based; past the end it is the last one again)."""
    steps = policy["steps"]
    raw = steps[min(index, len(steps) - 1)]
    return Step(
        targets=tuple(PolicyTarget(t) for t in raw["targets"]),
        channels=tuple(PageChannel(c) for c in raw["channels"]),
        wait_minutes=float(raw["wait_minutes"]),
    )
