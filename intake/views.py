"""Case pages: the list, manual entry, and the case page (the alert page an SMS links to)
where a case is accepted, worked (notes, status changes) and closed with an outcome.

Thin: who may see a case is routing's one rule (`visible_cases`); status changes go through
routing's lifecycle. Every view of a case is an audit entry (field names, never values).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as WerkzeugResponse

from core import audit
from core.auth import login_required, visible_provinces
from core.clock import now as clock_now
from core.config import get_settings
from core.db import get_session
from core.models import User
from core.text import small_int
from intake.manual import LIST_FIELDS, handoff_body, manual_case_fields
from intake.models import AgeBand, Exploitation, Gender, Minor, Need, ReporterType
from intake.services import BroughtBy, open_case
from intake.validation import MAX_SUMMARY, FieldWarning
from intake.workspace import (
    ALL,
    OPEN,
    CaseFilter,
    Lateness,
    can_enter_cases,
    can_reopen,
    closing_outcomes,
    lateness_of,
    list_cases,
    next_statuses,
)
from routing.dispatch import Answer, FollowUp, answer_alert, dispatch_of_case
from routing.followup import after_response
from routing.lifecycle import (
    MAX_NOTE,
    REOPENED_TO,
    TransitionRefused,
    add_note,
    change_status,
    close_with_outcome,
    record_read,
)
from routing.models import (
    Case,
    CaseEvent,
    CaseStatus,
    Channel,
    ContactSafe,
    Dispatch,
    DispatchState,
    Urgency,
)
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
    "caller_phone",
    "callback_phone",
    "contact_safe",
    "summary",
    "timeline",
    "notes",
)
# What the list shows of each case (no personal data, but still a read of the case).
LISTED_FIELDS = ("reference", "status", "urgency", "province", "received_at", "accepted_by")


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
    "callback_started": _l("Call back requested"),
    "callback": _l("Call back ended"),
    "partner_call": _l("Call on the partner line"),
    "warning": _l("Hand-off not fully understood"),
}
MINOR_LABELS = {
    "yes": _l("yes"),
    "no": _l("no"),
    "presumed": _l("presumed"),
}
CONTACT_SAFE_LABELS = {
    "yes": _l("safe to call or text back"),
    "no": _l("NOT safe to call or text back"),
    "unknown": _l("not known whether it is safe to call or text back"),
}
# Field problems of manual entry, in the reader's language (the validation speaks English
# to the systems that call the API).
FIELD_MESSAGES = {
    "province": _l("Not an Italian province: pick one or leave it empty."),
    "municipality": _l("Not a municipality name."),
    "callback_phone": _l("Not a phone number: an Italian number, or + and the country code."),
    "urgency": _l("Pick an urgency."),
    "reporter_type": _l("Pick who reported it."),
    "exploitation": _l("Pick among the listed kinds of exploitation."),
    "needs": _l("Pick among the listed needs."),
    "person.gender": _l("Pick a gender from the list."),
    "person.age_band": _l("Pick an age band from the list."),
    "person.minor": _l("Pick whether the person is a minor."),
    "person.nationality": _l("A country code of two letters (e.g. NG), or unknown."),
    "person.languages": _l("Language codes separated by commas (e.g. en, pcm)."),
    "summary": _l("At most 2000 characters of text."),
    "contact_safe": _l("Pick whether it is safe to call back."),
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
        "contact_safe_label": lambda code: _label(CONTACT_SAFE_LABELS, code),
        "minor_label": lambda code: _label(MINOR_LABELS, code),
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


# --- the list ----------------------------------------------------------------------------------


def _filter_from_args(provinces: list[str]) -> CaseFilter:
    args = request.args
    province = args.get("province") or None
    status = args.get("status") or OPEN
    urgency = args.get("urgency") or None
    if status not in {OPEN, ALL, *CaseStatus}:
        status = OPEN
    try:
        page = max(1, int(args.get("page", "1")))
    except ValueError:
        page = 1
    return CaseFilter(
        province=province if province in provinces else None,
        status=status,
        urgency=urgency if urgency in set(Urgency) else None,
        unaccepted=args.get("unaccepted") == "1",
        mine=args.get("mine") == "1",
        page=min(page, 100_000),
    )


@bp.get("")
@login_required
def case_list() -> str:
    session = get_session()
    user: User = current_user
    now = clock_now()
    provinces = visible_provinces(user, get_settings().provinces)
    wanted = _filter_from_args(provinces)
    found = list_cases(session, user, wanted)
    names = _names(session, {item.case.accepted_by_id or 0 for item in found.cases})
    audit.record(
        session,
        now=now,
        action="read",
        object_type="case_list",
        actor=user,
        fields=LISTED_FIELDS,
        detail={"case_ids": [item.case.id for item in found.cases]},
    )
    session.commit()
    query = {k: v for k, v in request.args.items() if k != "page"}
    return render_template(
        "intake/list.html",
        found=found,
        wanted=wanted,
        provinces=provinces,
        statuses=list(CaseStatus),
        urgencies=list(Urgency),
        names=names,
        query=query,
        can_enter=can_enter_cases(user),
    )


def _names(session: Session, ids: set[int]) -> dict[int, str]:
    return {u.id: u.display_name for u in session.scalars(select(User).where(User.id.in_(ids)))}


# --- manual entry ------------------------------------------------------------------------------


def _choices() -> dict[str, Any]:
    return {
        "urgencies": list(Urgency),
        "reporter_types": list(ReporterType),
        "exploitations": list(Exploitation),
        "genders": list(Gender),
        "age_bands": list(AgeBand),
        "minors": list(Minor),
        "needs_list": list(Need),
        "contact_safe_values": list(ContactSafe),
        "max_summary": MAX_SUMMARY,
    }


def _entry_allowed(user: User) -> None:
    if not can_enter_cases(user):
        abort(403)


@bp.get("/new")
@login_required
def new_case() -> str:
    user: User = current_user
    _entry_allowed(user)
    return render_template(
        "intake/new.html",
        form={"urgency": Urgency.URGENT.value, "contact_safe": ContactSafe.UNKNOWN.value},
        lists={},
        errors={},
        served=get_settings().provinces,
        **_choices(),
    )


def _field_messages(warnings: Sequence[FieldWarning]) -> dict[str, str]:
    """One message per form field (`person.languages[1]` is the languages field)."""
    found: dict[str, str] = {}
    for warning in warnings:
        name = warning.field.split("[", 1)[0]
        found.setdefault(name, str(FIELD_MESSAGES.get(name, warning.message)))
    return found


@bp.post("/new")
@login_required
def create_case() -> tuple[str, int] | WerkzeugResponse:
    session = get_session()
    user: User = current_user
    _entry_allowed(user)
    now = clock_now()
    settings = get_settings()
    form = {key: value for key, value in request.form.items() if key not in LIST_FIELDS}
    lists = {name: request.form.getlist(name) for name in LIST_FIELDS}
    parsed = manual_case_fields(handoff_body(form, lists), now=now, served=settings.provinces)
    if parsed.warnings and request.form.get("as_it_is") != "1":
        # The person typing is right here: show what was not understood and let them correct
        # it, or open the case as it is (an emergency is never held up by a typo).
        flash(
            _("Some fields were not understood: correct them, or open the case as it is."),
            "error",
        )
        return render_template(
            "intake/new.html",
            form=form,
            lists=lists,
            errors=_field_messages(parsed.warnings),
            as_it_is=True,
            served=settings.provinces,
            **_choices(),
        ), 422
    opened = open_case(
        session,
        channel=Channel.MANUAL,
        brought_by=BroughtBy.user(user),
        fields=parsed.fields,
        now=now,
        warnings=parsed.warnings,
        taken=request.form.get("take") == "1",
    )
    follow_up = FollowUp(to_send={opened.dispatch_id} if opened.dispatch_id else set())
    taken = False
    if request.form.get("take") == "1" and opened.dispatch_id is not None:
        dispatch = session.get(Dispatch, opened.dispatch_id)
        if dispatch is not None:
            answer = answer_alert(session, dispatch, user, accepting=True, via="web", now=now)
            follow_up = answer.follow_up
            taken = answer.accepted
    session.commit()
    after_response(follow_up)
    if taken:
        flash(_("%(reference)s is opened and yours.", reference=opened.reference), "success")
    else:
        flash(
            _(
                "%(reference)s is opened; the on-call operator is being alerted.",
                reference=opened.reference,
            ),
            "success",
        )
    case = session.get(Case, opened.case_id)
    if case is not None and can_see_case(session, user, case):
        return redirect(url_for("cases.case_page", reference=opened.reference))
    return redirect(url_for("cases.case_list"))


# --- the case page -----------------------------------------------------------------------------


@bp.get("/<reference>")
@login_required
def case_page(reference: str) -> str:
    session = get_session()
    user: User = current_user
    case = _case(session, reference, user)
    now = clock_now()
    dispatch = dispatch_of_case(session, case.id)
    events = timeline(session, case)
    names = _names(session, {*_user_ids(events), case.accepted_by_id or 0})
    record_read(session, case, actor=user, fields=SHOWN_FIELDS, now=now)
    session.commit()
    open_alert = dispatch is not None and dispatch.state != DispatchState.ACCEPTED
    # Imported here: placement_views builds on this module's case lookup.
    from intake.placement_views import placement_context  # noqa: PLC0415

    return render_template(
        "intake/case.html",
        **placement_context(session, case),
        case=case,
        dispatch=dispatch,
        events=events,
        names=names,
        can_accept=open_alert,
        can_decline=open_alert and was_paged(session, user, case),
        lateness=lateness_of(dispatch),
        amber=lateness_of(dispatch) == Lateness.AMBER,
        next_statuses=next_statuses(case),
        outcomes=closing_outcomes(case),
        can_reopen=can_reopen(user, case),
        max_note=MAX_NOTE,
    )


def _user_ids(events: list[CaseEvent]) -> set[int]:
    found: set[int] = set()
    for event in events:
        for value in [event.data.get("operator_id"), *(event.data.get("operator_ids") or [])]:
            if isinstance(value, int):
                found.add(value)
        if event.actor.startswith("user:") and (actor_id := small_int(event.actor[5:])):
            found.add(actor_id)
    return found


def _is_text(text: str) -> bool:
    """No control characters but line breaks and tabs, no lone surrogates (PostgreSQL and
    the encryption both need real text)."""
    return not any(
        (ord(c) < 32 and c not in "\n\r\t") or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF
        for c in text
    )


def _back(case: Case) -> WerkzeugResponse:
    return redirect(url_for("cases.case_page", reference=case.reference))


def _locked_case(session: Session, reference: str, user: User) -> Case:
    """The case for a change, its row locked: two people changing it at once take turns."""
    case = _case(session, reference, user)
    session.refresh(case, with_for_update=True)
    return case


def _refused(case: Case) -> WerkzeugResponse:
    flash(
        _(
            "%(reference)s cannot change to that status now: it is %(status)s.",
            reference=case.reference,
            status=_label(STATUS_LABELS, case.status),
        ),
        "error",
    )
    return _back(case)


@bp.post("/<reference>/note")
@login_required
def note_case(reference: str) -> WerkzeugResponse:
    session = get_session()
    user: User = current_user
    case = _case(session, reference, user)
    text = (request.form.get("note") or "").strip()
    if not text:
        flash(_("The note is empty: write something first."), "error")
    elif len(text) > MAX_NOTE:
        flash(_("The note is too long: at most %(max)d characters.", max=MAX_NOTE), "error")
    elif not _is_text(text):
        flash(_("The note holds characters that are not text: remove them."), "error")
    else:
        add_note(session, case, text.replace("\r\n", "\n"), actor=user, now=clock_now())
        session.commit()
        flash(_("Note added."), "success")
    return _back(case)


@bp.post("/<reference>/status")
@login_required
def change_case_status(reference: str) -> WerkzeugResponse:
    session = get_session()
    user: User = current_user
    case = _locked_case(session, reference, user)
    try:
        to = CaseStatus(request.form.get("to", ""))
        if to not in next_statuses(case):
            raise TransitionRefused(to.value)
        change_status(session, case, to, actor=user, now=clock_now(), detail={"via": "web"})
    except (ValueError, TransitionRefused):
        session.rollback()
        return _refused(case)
    session.commit()
    flash(
        _("%(reference)s: %(status)s.", reference=case.reference, status=_label(STATUS_LABELS, to)),
        "success",
    )
    return _back(case)


@bp.post("/<reference>/close")
@login_required
def close_case(reference: str) -> WerkzeugResponse:
    session = get_session()
    user: User = current_user
    case = _locked_case(session, reference, user)
    try:
        outcome = CaseStatus(request.form.get("outcome", ""))
        if outcome not in closing_outcomes(case):
            raise TransitionRefused(outcome.value)
        close_with_outcome(session, case, outcome, actor=user, now=clock_now())
    except (ValueError, TransitionRefused):
        session.rollback()
        return _refused(case)
    session.commit()
    flash(
        _(
            "%(reference)s is closed: %(outcome)s.",
            reference=case.reference,
            outcome=_label(STATUS_LABELS, outcome),
        ),
        "success",
    )
    return _back(case)


@bp.post("/<reference>/reopen")
@login_required
def reopen_case(reference: str) -> WerkzeugResponse:
    session = get_session()
    user: User = current_user
    case = _locked_case(session, reference, user)
    if not can_reopen(user, case):
        if case.status == CaseStatus.CLOSED:
            abort(403)
        session.rollback()
        return _refused(case)
    change_status(session, case, REOPENED_TO, actor=user, now=clock_now(), detail={"via": "web"})
    session.commit()
    flash(_("%(reference)s is open again.", reference=case.reference), "success")
    return _back(case)


def _answer(reference: str, accepting: bool) -> WerkzeugResponse:
    session = get_session()
    user: User = current_user
    case = _case(session, reference, user)
    dispatch = dispatch_of_case(session, case.id)
    if dispatch is None:
        abort(404)
    if not accepting and not was_paged(session, user, case):
        abort(403)  # only an alert one received can be declined
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
