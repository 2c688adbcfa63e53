"""Escalation policies: the steps of design §5 per urgency, as stored and as snapshotted,
validated (the §4 JSON of `ali policies set` and the admin page), replaced and previewed."""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from core import audit
from core.models import Role, User, users_with_role
from oncall.chain import on_call_chain
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
        policy = {
            "steps": DEFAULT_POLICIES[urgency.value]["steps"],
            "repeat_last": DEFAULT_POLICIES[urgency.value]["repeat_last"],
        }
    else:
        policy = {"steps": row.steps, "repeat_last": row.repeat_last}
    # A copy: the dispatch's JSON must never share a list with the policy row an admin edits.
    return copy.deepcopy(policy)


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


# --- validation --------------------------------------------------------------------------------

URGENCIES = tuple(u.value for u in Urgency)
TARGETS = tuple(t.value for t in PolicyTarget)
CHANNELS = tuple(c.value for c in PageChannel)
# Bounds that no sane policy reaches and that keep an escalation finite and timely: a step
# waiting half a day, or a hundred repeats, is a typo, not a policy.
MAX_STEPS = 10
MAX_WAIT_MINUTES = 240
MAX_REPEAT_LAST = 10


@dataclass(frozen=True)
class PolicyProblem:
    """One thing wrong with a policies document: where (`emergency.steps[1].channels[0]`)
    and what, in the current language."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class PoliciesInvalid(ValueError):
    """A policies document that must not be stored; `problems` says every reason."""

    def __init__(self, problems: Sequence[PolicyProblem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = list(problems)


def _(message: str, **values: object) -> str:
    return str(gettext(message, **values))


def _is_int(value: object) -> bool:
    # JSON true is a Python bool, which is an int: a wait of `true` minutes is not a number.
    return isinstance(value, int) and not isinstance(value, bool)


def _choices(
    value: object, path: str, allowed: Sequence[str], problems: list[PolicyProblem]
) -> list[str]:
    if not isinstance(value, list) or not value:
        problems.append(
            PolicyProblem(
                path, _("must be a non-empty list of %(choices)s", choices=", ".join(allowed))
            )
        )
        return []
    found: list[str] = []
    for index, item in enumerate(value):
        if item not in allowed:
            problems.append(
                PolicyProblem(
                    f"{path}[{index}]", _("must be one of %(choices)s", choices=", ".join(allowed))
                )
            )
        elif item in found:
            problems.append(PolicyProblem(f"{path}[{index}]", _("is listed twice")))
        else:
            found.append(item)
    return found


def _unknown_keys(
    value: dict[str, Any], path: str, known: Sequence[str], problems: list[PolicyProblem]
) -> None:
    for key in value:
        if key not in known:
            where = f"{path}.{key}" if path else str(key)
            problems.append(
                PolicyProblem(
                    where, _("unknown field (expected %(fields)s)", fields=", ".join(known))
                )
            )


def _step(raw: object, path: str, problems: list[PolicyProblem]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        problems.append(
            PolicyProblem(path, _("must be an object with targets, channels and wait_minutes"))
        )
        return {}
    _unknown_keys(raw, path, ("targets", "channels", "wait_minutes"), problems)
    for key in ("targets", "channels", "wait_minutes"):
        if key not in raw:
            problems.append(PolicyProblem(f"{path}.{key}", _("is missing")))
    targets = (
        _choices(raw.get("targets"), f"{path}.targets", TARGETS, problems)
        if "targets" in raw
        else []
    )
    channels = (
        _choices(raw.get("channels"), f"{path}.channels", CHANNELS, problems)
        if "channels" in raw
        else []
    )
    wait = raw.get("wait_minutes")
    if "wait_minutes" in raw and not (_is_int(wait) and 1 <= wait <= MAX_WAIT_MINUTES):  # type: ignore[operator]
        problems.append(
            PolicyProblem(
                f"{path}.wait_minutes",
                _("must be a whole number of minutes from 1 to %(max)d", max=MAX_WAIT_MINUTES),
            )
        )
    return {"targets": targets, "channels": channels, "wait_minutes": wait}


def _policy(raw: object, path: str, problems: list[PolicyProblem]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        problems.append(PolicyProblem(path, _("must be an object with steps and repeat_last")))
        return {}
    _unknown_keys(raw, path, ("steps", "repeat_last"), problems)
    steps_raw = raw.get("steps")
    steps: list[dict[str, Any]] = []
    if not isinstance(steps_raw, list) or not steps_raw:
        problems.append(PolicyProblem(f"{path}.steps", _("must be a non-empty list of steps")))
    elif len(steps_raw) > MAX_STEPS:
        problems.append(PolicyProblem(f"{path}.steps", _("at most %(max)d steps", max=MAX_STEPS)))
    else:
        steps = [_step(step, f"{path}.steps[{i}]", problems) for i, step in enumerate(steps_raw)]
        last = steps[-1].get("targets")
        if last and PolicyTarget.COORDINATORS.value not in last:
            # Fail toward a human: the step that repeats until the end must reach the
            # project-wide tier, or an unanswered case would keep ringing one absent person.
            problems.append(
                PolicyProblem(
                    f"{path}.steps[{len(steps) - 1}].targets",
                    _("the last step must include coordinators"),
                )
            )
    repeat = raw.get("repeat_last")
    if "repeat_last" not in raw:
        problems.append(PolicyProblem(f"{path}.repeat_last", _("is missing")))
    elif not (_is_int(repeat) and 0 <= repeat <= MAX_REPEAT_LAST):  # type: ignore[operator]
        problems.append(
            PolicyProblem(
                f"{path}.repeat_last",
                _("must be a whole number from 0 to %(max)d", max=MAX_REPEAT_LAST),
            )
        )
    return {"steps": steps, "repeat_last": repeat}


def validate_policies(raw: object) -> dict[str, dict[str, Any]]:
    """The policies of the §4 JSON, checked whole: every urgency, every step. Raises
    PoliciesInvalid naming each problem by its path; returns a clean copy (keys in order)."""
    problems: list[PolicyProblem] = []
    if not isinstance(raw, dict):
        raise PoliciesInvalid(
            [PolicyProblem("", _("must be an object with emergency, urgent and ordinary"))]
        )
    _unknown_keys(raw, "", URGENCIES, problems)
    clean: dict[str, dict[str, Any]] = {}
    for urgency in URGENCIES:
        if urgency not in raw:
            problems.append(PolicyProblem(urgency, _("is missing")))
            continue
        clean[urgency] = _policy(raw[urgency], urgency, problems)
    if problems:
        raise PoliciesInvalid(problems)
    return clean


# --- the admin page's form ---------------------------------------------------------------------

_WHOLE = re.compile(r"[0-9]{1,6}")
# A crafted request cannot make the page echo back kilobytes: more is invalid anyway.
_MAX_CHOICES = 5
_MAX_CHOICE_LENGTH = 20


def _number(text: str | None) -> object:
    """A form number as the JSON would hold it: an int when it is one, else the text (which
    validation then names), absent (None) when empty."""
    value = (text or "").strip()
    if not value:
        return None
    return int(value) if _WHOLE.fullmatch(value) else value[:_MAX_CHOICE_LENGTH]


def policies_from_form(form: MultiDict[str, str]) -> dict[str, Any]:
    """The §4 document an admin's form describes, unvalidated (give it to validate_policies).

    Fields per urgency `u` and row `i` (0-based): `u-i-targets` and `u-i-channels`
    (checkboxes, repeated), `u-i-wait`, `u-i-remove`; and `u-repeat_last`. A row marked for
    removal, or left entirely blank (the empty row to add a step), is no step; the others
    keep their order, so `steps[k]` of a problem is the k-th row shown again.
    """
    document: dict[str, Any] = {}
    for urgency in URGENCIES:
        steps: list[dict[str, Any]] = []
        for row in range(MAX_STEPS + 1):
            prefix = f"{urgency}-{row}-"
            targets = [t[:_MAX_CHOICE_LENGTH] for t in form.getlist(prefix + "targets")]
            channels = [c[:_MAX_CHOICE_LENGTH] for c in form.getlist(prefix + "channels")]
            wait = _number(form.get(prefix + "wait"))
            if form.get(prefix + "remove") or not (targets or channels or wait is not None):
                continue
            step: dict[str, Any] = {
                "targets": targets[:_MAX_CHOICES],
                "channels": channels[:_MAX_CHOICES],
            }
            if wait is not None:
                step["wait_minutes"] = wait
            steps.append(step)
        policy: dict[str, Any] = {"steps": steps}
        repeat = _number(form.get(f"{urgency}-repeat_last"))
        if repeat is not None:
            policy["repeat_last"] = repeat
        document[urgency] = policy
    return document


_PATH = re.compile(
    r"(?P<urgency>[a-z]+)(?:\.steps(?:\[(?P<step>[0-9]+)\](?:\.(?P<field>[a-z_]+))?)?"
    r"|\.(?P<policy_field>[a-z_]+))?(?:\[[0-9]+\])?"
)


def locate_problem(problem: PolicyProblem) -> tuple[str, int | None, str]:
    """Where a problem belongs in the form: (urgency or "", step index or None, field)."""
    found = _PATH.fullmatch(problem.path)
    if found is None:
        return "", None, ""
    step = found.group("step")
    field = (
        found.group("field")
        or found.group("policy_field")
        or ("steps" if "steps" in problem.path else "")
    )
    return found.group("urgency"), int(step) if step is not None else None, field


# --- reading and replacing ---------------------------------------------------------------------


def current_policies(session: Session) -> dict[str, dict[str, Any]]:
    """Every urgency's policy in the §4 shape, as a new dispatch would copy it."""
    return {urgency.value: policy_snapshot(session, urgency) for urgency in Urgency}


def replace_policies(
    session: Session, raw: object, *, actor: User | str, now: datetime
) -> dict[str, dict[str, Any]]:
    """Validate the whole document, then replace every urgency's policy (audited). Nothing
    changes when anything is wrong. Open dispatches keep the copy they started with."""
    policies = validate_policies(raw)
    before = current_policies(session)
    for urgency in Urgency:
        policy = policies[urgency.value]
        row = session.get(EscalationPolicy, urgency)
        if row is None:
            row = EscalationPolicy(urgency=urgency)
            session.add(row)
        row.steps = policy["steps"]
        row.repeat_last = policy["repeat_last"]
        row.updated_at = now
        row.updated_by_id = actor.id if isinstance(actor, User) else None
    changed = [u for u in URGENCIES if before[u] != policies[u]]
    audit.record(
        session,
        now=now,
        action="update",
        object_type="escalation_policies",
        object_id=",".join(changed) or None,
        actor=actor,
        fields=["steps", "repeat_last"],
        # Policies hold no personal data: the change itself is worth keeping.
        detail={
            "before": {u: before[u] for u in changed},
            "after": {u: policies[u] for u in changed},
        },
    )
    session.flush()
    return policies


# --- preview -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewTier:
    """Who a step would page for one target: names of the pageable ones, and whether
    anybody holds it without a verified phone."""

    target: PolicyTarget
    names: list[str]
    unreachable: list[str]


@dataclass(frozen=True)
class PreviewStep:
    number: int  # 1-based, repeats counted
    at: datetime
    repeat: bool
    channels: tuple[PageChannel, ...]
    tiers: list[PreviewTier]
    wait_minutes: float


@dataclass(frozen=True)
class Preview:
    province: str
    steps: list[PreviewStep]
    unanswered_at: datetime


def preview_escalation(
    session: Session, policy: dict[str, Any], *, province: str, now: datetime
) -> Preview:
    """What a case of `policy` opened now in `province` would do if nobody answered: each
    step at its time, with who would be on call then (resolved at that instant, as the
    escalation does). A step skipped because nobody is reachable is shown with no names;
    the real escalation would move on at once, so later times are the latest ones."""
    steps: list[PreviewStep] = []
    at = now
    first = len(policy["steps"])
    for index in range(total_steps(policy)):
        step = step_of(policy, index)
        chain = on_call_chain(session, province=province, at=at)
        tiers: list[PreviewTier] = []
        for target in step.targets:
            if target is PolicyTarget.PRIMARY:
                holders = [chain.primary] if chain.primary is not None else []
            elif target is PolicyTarget.BACKUP:
                holders = [chain.backup] if chain.backup is not None else []
            else:
                holders = list(chain.coordinators)
                if not any(u.can_be_paged for u in holders):
                    holders = users_with_role(session, Role.COORDINATOR)
            tiers.append(
                PreviewTier(
                    target=target,
                    names=[u.display_name for u in holders if u.can_be_paged],
                    unreachable=[u.display_name for u in holders if not u.can_be_paged],
                )
            )
        steps.append(
            PreviewStep(
                number=index + 1,
                at=at,
                repeat=index >= first,
                channels=step.channels,
                tiers=tiers,
                wait_minutes=step.wait_minutes,
            )
        )
        at = at + timedelta(minutes=step.wait_minutes)
    return Preview(province=province, steps=steps, unanswered_at=at)
