"""Case pages: the alert page an SMS links to, with Accept and Decline and the timeline.

Thin: who may see a case, accept or decline it is decided in routing's services. Every view
of a case is an audit entry (field names, never values).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as WerkzeugResponse

from core.auth import login_required
from core.clock import now as clock_now
from core.db import get_session
from core.models import User
from routing.dispatch import Answer, answer_alert, dispatch_of_case
from routing.followup import after_response
from routing.lifecycle import record_read
from routing.models import Case, CaseEvent, Dispatch, DispatchState
from routing.services import can_see_case, timeline, was_paged

bp = Blueprint("cases", __name__, url_prefix="/cases")
REFERENCE = re.compile(r"[A-Z]{2}-\d{4}-\d{4,6}")
# What the alert page shows of a case, for the audit entry of each view.
SHOWN_FIELDS = (
    "reference",
    "status",
    "urgency",
    "province",
    "channel",
    "reporter_type",
    "exploitation",
    "person",
    "needs",
    "municipality",
    "callback_phone",
    "summary",
    "timeline",
)


URGENCY_LABELS = {
    "emergency": _l("Emergency"),
    "urgent": _l("Urgent"),
    "ordinary": _l("Ordinary"),
}
STATUS_LABELS = {
    "new": _l("new"),
    "dispatched": _l("alerting"),
    "accepted": _l("accepted"),
    "in_contact": _l("in contact"),
    "placed": _l("placed"),
    "referred": _l("referred"),
    "not_pertinent": _l("not pertinent"),
    "out_of_area": _l("out of area"),
    "unreachable": _l("unreachable"),
    "closed": _l("closed"),
}
EVENT_LABELS = {
    "created": _l("Case opened"),
    "routed": _l("Routed"),
    "status_changed": _l("Status changed"),
    "note": _l("Note"),
    "dispatched": _l("Alert started"),
    "step": _l("Alerted"),
    "nobody_on_call": _l("Nobody to alert in this tier: skipped"),
    "page_sent": _l("Sent"),
    "page_failed": _l("Could not be sent"),
    "page_status": _l("Delivery status"),
    "machine_answered": _l("Answered by a machine: not reached"),
    "not_reached": _l("No key pressed: not reached"),
    "key_pressed": _l("Key pressed"),
    "sms_reply": _l("SMS reply"),
    "accepted": _l("Accepted"),
    "declined": _l("Declined"),
    "unanswered": _l("Unanswered: coordinators alerted"),
    "warning": _l("Hand-off not fully understood"),
}


# The stable codes of design §4, as people read them.
CODE_LABELS = {
    # reporter types
    "presumed_victim": _l("presumed victim"),
    "citizen": _l("citizen"),
    "client": _l("client"),
    "law_enforcement": _l("law enforcement"),
    "social_services": _l("social services"),
    "health_services": _l("health services"),
    "ngo": _l("NGO"),
    "commissione_territoriale": _l("Commissione Territoriale"),
    "reception_centre": _l("reception centre (CAS/SAI)"),
    # exploitation
    "sexual": _l("sexual"),
    "labour": _l("labour"),
    "begging": _l("begging"),
    "illegal_economies": _l("illegal economies"),
    "forced_marriage": _l("forced marriage"),
    # gender
    "female": _l("female"),
    "male": _l("male"),
    "trans": _l("trans"),
    "non_binary": _l("non-binary"),
    # needs
    "pronta_accoglienza": _l("emergency shelter"),
    "health": _l("health"),
    "legal": _l("legal"),
    "psychological": _l("psychological"),
    "interpreter": _l("interpreter"),
    "information": _l("information"),
    # channels
    "webhook": _l("Numero Verde"),
    "phone": _l("partner's call"),
    "sms": _l("SMS"),
    "manual": _l("entered by hand"),
    "voice": _l("call"),
    # how the province was found
    "explicit": _l("stated"),
    "municipality": _l("from the municipality"),
    "area_code": _l("from the caller's area code"),
    "partner": _l("from the partner"),
    "unresolved": _l("not found"),
    # tiers
    "primary": _l("primary"),
    "backup": _l("backup"),
    "coordinators": _l("coordinators"),
    # why a tier was skipped
    "nobody_on_call": _l("nobody on call"),
    "declined": _l("declined"),
    "no_verified_phone": _l("no verified phone"),
    # what the provider says of an SMS or a call
    "pending": _l("waiting to be sent"),
    "sending": _l("being sent"),
    "sent": _l("sent"),
    "queued": _l("queued"),
    "delivered": _l("delivered"),
    "undelivered": _l("not delivered"),
    "failed": _l("failed"),
    "initiated": _l("dialling"),
    "ringing": _l("ringing"),
    "in-progress": _l("answered"),
    "completed": _l("ended"),
    "busy": _l("busy"),
    "no-answer": _l("no answer"),
    "canceled": _l("cancelled"),
    # shared
    "other": _l("other"),
    "unknown": _l("unknown"),
}


def _label(table: dict[str, Any], code: str | None) -> str:
    return str(table.get(code or "", code or ""))


@bp.app_template_filter("code_label")
def code_label(code: str | None) -> str:
    return _label(CODE_LABELS, code)


@bp.app_context_processor
def _labels() -> dict[str, Any]:
    return {
        "urgency_label": lambda code: _label(URGENCY_LABELS, code),
        "status_label": lambda code: _label(STATUS_LABELS, code),
        "event_label": lambda code: _label(EVENT_LABELS, code),
        "code_label": code_label,
    }


def _case(session: Session, reference: str, user: User) -> Case:
    """The case, or 404 for a reference that is not one, not there, or not the user's to see
    (the same answer: a reference must not tell a stranger that a case exists)."""
    if not REFERENCE.fullmatch(reference):
        abort(404)
    case = session.scalars(select(Case).where(Case.reference == reference)).first()
    if case is None or not can_see_case(session, user, case):
        abort(404)
    return case


@bp.get("/<reference>")
@login_required
def case_page(reference: str) -> str:
    session = get_session()
    user: User = current_user
    case = _case(session, reference, user)
    now = clock_now()
    dispatch = dispatch_of_case(session, case.id)
    events = timeline(session, case)
    names = {
        u.id: u.display_name
        for u in session.scalars(
            select(User).where(User.id.in_({*_user_ids(events), case.accepted_by_id or 0}))
        )
    }
    record_read(session, case, actor=user, fields=SHOWN_FIELDS, now=now)
    session.commit()
    open_alert = dispatch is not None and dispatch.state != DispatchState.ACCEPTED
    return render_template(
        "intake/case.html",
        case=case,
        dispatch=dispatch,
        events=events,
        names=names,
        can_accept=open_alert,
        can_decline=open_alert and was_paged(session, user, case),
        amber=_amber(dispatch),
    )


def _user_ids(events: list[CaseEvent]) -> set[int]:
    found: set[int] = set()
    for event in events:
        for value in [event.data.get("operator_id"), *(event.data.get("operator_ids") or [])]:
            if isinstance(value, int):
                found.add(value)
        if event.actor.startswith("user:") and event.actor[5:].isdigit():
            found.add(int(event.actor[5:]))
    return found


def _amber(dispatch: Dispatch | None) -> bool:
    """Its first step has passed unaccepted (design §5): amber (red: every step used up)."""
    return (
        dispatch is not None and dispatch.state == DispatchState.OPEN and dispatch.steps_fired > 1
    )


def _answer(reference: str, accepting: bool) -> WerkzeugResponse:
    session = get_session()
    user: User = current_user
    case = _case(session, reference, user)
    dispatch = dispatch_of_case(session, case.id)
    if dispatch is None:
        abort(404)
    now = clock_now()
    answer: Answer = answer_alert(session, dispatch, user, accepting=accepting, via="web", now=now)
    session.commit()
    after_response(answer.follow_up)
    if answer.taken_by is not None and answer.taken_by.id != user.id:
        flash(
            _(
                "%(reference)s was already taken by %(name)s.",
                reference=case.reference,
                name=answer.taken_by.display_name,
            ),
            "warning",
        )
    elif answer.accepted or answer.taken_by is not None:
        flash(_("%(reference)s is yours.", reference=case.reference), "success")
    else:
        flash(
            _(
                "You declined %(reference)s; the next person is being alerted.",
                reference=case.reference,
            ),
            "info",
        )
    return redirect(url_for("cases.case_page", reference=case.reference))


@bp.post("/<reference>/accept")
@login_required
def accept_case(reference: str) -> WerkzeugResponse:
    return _answer(reference, accepting=True)


@bp.post("/<reference>/decline")
@login_required
def decline_case(reference: str) -> WerkzeugResponse:
    return _answer(reference, accepting=False)
