"""The admins' page of the escalation policies: edit steps per urgency, preview an emergency."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.wrappers import Response as WerkzeugResponse

from core.auth import roles_required
from core.clock import now as clock_now
from core.config import get_settings
from core.db import get_session
from core.models import Role, User
from core.nav import NavItem, register_nav
from oncall.forms import TIER_LABELS
from oncall.schedule import Tier
from routing.policies import (
    CHANNELS,
    MAX_REPEAT_LAST,
    MAX_STEPS,
    MAX_WAIT_MINUTES,
    TARGETS,
    URGENCIES,
    PoliciesInvalid,
    PolicyProblem,
    current_policies,
    locate_problem,
    policies_from_form,
    preview_escalation,
    replace_policies,
    validate_policies,
)

bp = Blueprint("routing_admin", __name__, url_prefix="/admin")

URGENCY_LABELS = {"emergency": _l("Emergency"), "urgent": _l("Urgent"), "ordinary": _l("Ordinary")}
TARGET_LABELS = {
    "primary": TIER_LABELS[Tier.PRIMARY],
    "backup": TIER_LABELS[Tier.BACKUP],
    "coordinators": TIER_LABELS[Tier.COORDINATOR],
}
CHANNEL_LABELS = {"sms": _l("SMS"), "voice": _l("Call")}
FIELD_LABELS = {
    "targets": _l("Who is alerted"),
    "channels": _l("How"),
    "wait_minutes": _l("Wait (minutes)"),
    "repeat_last": _l("Repeats of the last step"),
    "steps": _l("Steps"),
}


@dataclass
class Row:
    """One step as the form shows it (what was typed, valid or not)."""

    targets: list[str]
    channels: list[str]
    wait: str
    errors: list[str] = field(default_factory=list)


@dataclass
class PolicyForm:
    urgency: str
    rows: list[Row]
    repeat_last: str
    errors: list[str] = field(default_factory=list)


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _forms(document: dict[str, Any], problems: list[PolicyProblem]) -> list[PolicyForm]:
    """The form's state per urgency, each problem beside its step (or its urgency), and one
    empty row to add a step while there is room."""
    forms: dict[str, PolicyForm] = {}
    for urgency in URGENCIES:
        policy = document.get(urgency) or {}
        rows = [
            Row(
                targets=list(step.get("targets") or []),
                channels=list(step.get("channels") or []),
                wait=_text(step.get("wait_minutes")),
            )
            for step in policy.get("steps") or []
            if isinstance(step, dict)
        ]
        forms[urgency] = PolicyForm(urgency, rows, _text(policy.get("repeat_last")))
    general: list[str] = []
    for problem in problems:
        urgency, step, name = locate_problem(problem)
        label = FIELD_LABELS.get(name)
        message = f"{label}: {problem.message}" if label else problem.message
        target = forms.get(urgency)
        if target is None:
            general.append(str(problem))
        elif step is not None and step < len(target.rows):
            target.rows[step].errors.append(message)
        else:
            target.errors.append(message)
    for form in forms.values():
        if len(form.rows) < MAX_STEPS:
            form.rows.append(Row(targets=[], channels=[], wait=""))
    if general:
        forms["emergency"].errors.extend(general)
    return list(forms.values())


@bp.route("/policies", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def policies() -> str | WerkzeugResponse | tuple[str, int]:
    """GET: the stored policies and the preview of an emergency opened now. POST with
    `action=preview`: the preview of the policies as edited, unsaved; `action=save`: validate
    and replace them (nothing changes when anything is wrong)."""
    session = get_session()
    now = clock_now()
    served = list(get_settings().provinces)
    source = request.form if request.method == "POST" else request.args
    province = source.get("province", served[0] if served else "").strip().upper()
    problems: list[PolicyProblem] = []
    if request.method == "POST":
        document = policies_from_form(request.form)
    else:
        document = current_policies(session)
    clean: dict[str, Any] | None = None
    try:
        clean = validate_policies(document)
    except PoliciesInvalid as exc:
        problems = exc.problems
    province_error = None
    if province not in served:
        province_error = _("Choose one of the served provinces.")
    if clean is not None and request.form.get("action") == "save":
        user: User = current_user
        replace_policies(session, clean, actor=user, now=now)
        session.commit()
        flash(_("Policies saved. Cases already open keep the policy they started with."), "success")
        return redirect(url_for("routing_admin.policies", province=province or None))
    preview = None
    if clean is not None and province_error is None:
        preview = preview_escalation(session, clean["emergency"], province=province, now=now)
    page = render_template(
        "routing/policies.html",
        forms=_forms(document, problems),
        problems=problems,
        preview=preview,
        edited=request.method == "POST",
        province=province,
        province_error=province_error,
        served=served,
        targets=TARGETS,
        channels=CHANNELS,
        urgency_labels=URGENCY_LABELS,
        target_labels=TARGET_LABELS,
        channel_labels=CHANNEL_LABELS,
        max_wait=MAX_WAIT_MINUTES,
        max_repeat=MAX_REPEAT_LAST,
    )
    if problems or province_error:
        return page, 400
    return page


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    register_nav(app, NavItem("routing_admin.policies", _l("Escalation policies"), (Role.ADMIN,)))
