"""Placements from the case page (request, confirm, check in, planned end, check out, cancel,
no-show, correct) and `/shelters`: free beds per shelter and province for everyone in scope,
the registry and the secret addresses for coordinators.

Thin: the rules are in intake.placements and intake.shelters; these routes translate their
refusals. A case is found through intake.views' `_case` (routing's one visibility rule).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as WerkzeugResponse

from core.auth import login_required, roles_required, visible_provinces
from core.clock import now as clock_now
from core.config import get_settings
from core.db import get_session
from core.formatting import LocalTimeError, parse_instant
from core.models import Role, User
from core.nav import NavItem, register_nav
from core.text import has_control, small_int
from intake.models import ExitReason, Placement, PlacementEntry, Shelter, ShelterKind, TargetGroup
from intake.placements import (
    MAX_BEDS,
    MAX_REASON,
    PlacementRefused,
    cancel_placement,
    check_in,
    check_out,
    confirm_placement,
    correct_entry,
    placements_of_case,
    record_no_show,
    request_placement,
    set_planned_end,
)
from intake.shelters import (
    MAX_ADDRESS,
    ShelterError,
    can_see_address,
    create_shelter,
    free_beds_by_province,
    list_shelters,
    read_fields,
    reveal_address,
    set_shelter_open,
    shelter_beds,
    update_shelter,
)
from intake.views import CODE_LABELS, EVENT_LABELS, _back, _case
from routing.models import Case

bp = Blueprint("placements", __name__)

# The codes of the log and the registry, added to the one table the `code_label` filter reads
# (the shelter kind `pronta_accoglienza` shares its label with the need of the same code).
for _code, _text in {
    "residential": _l("residential"),
    "semi_autonomy": _l("semi-autonomy"),
    "women": _l("women"),
    "men": _l("men"),
    "trans": _l("trans people"),
    "mothers_with_children": _l("mothers with children"),
    "minors": _l("minors"),
    "requested": _l("requested"),
    "confirmed": _l("confirmed"),
    "checked_in": _l("checked in"),
    "planned_end": _l("planned end"),
    "checked_out": _l("checked out"),
    "cancelled": _l("cancelled"),
    "no_show": _l("did not arrive"),
    "correction": _l("correction"),
    "full": _l("shelter full"),
    "minor": _l("minor in a shelter not for minors"),
    "moved_residential": _l("moved to a residential shelter"),
    "moved_semi_autonomy": _l("moved to semi-autonomy"),
    "transferred_other_project": _l("transferred to another project"),
    "left_voluntarily": _l("left voluntarily"),
    "returned_home": _l("returned home"),
    "asylum_system": _l("asylum reception system"),
}.items():
    CODE_LABELS.setdefault(_code, _text)
EVENT_LABELS.setdefault("placement", _l("Placement"))


def placement_context(session: Session, case: Case) -> dict[str, Any]:
    """What the case page's placements section shows: the case's placements and the shelters
    of its province with their free beds (pronta accoglienza first)."""
    shelters = list_shelters(session, [case.province]) if case.province else []
    beds = shelter_beds(session, [s for s in shelters if s.open])
    beds.sort(key=lambda b: (b.shelter.kind != ShelterKind.PRONTA_ACCOGLIENZA, b.shelter.name))
    return {
        "placements": placements_of_case(session, case),
        "province_beds": beds,
        "pronta_free": sum(
            b.free for b in beds if b.shelter.kind == ShelterKind.PRONTA_ACCOGLIENZA
        ),
        "exit_reasons": list(ExitReason),
        "max_beds": MAX_BEDS,
        "max_reason": MAX_REASON,
    }


# Services speak English; users read these.
def _refusal(exc: PlacementRefused) -> str:
    messages = {
        "full": _(
            "The shelter has %(free)d bed(s) free: to place anyway, give a reason for the "
            "override.",
            free=max(exc.free or 0, 0),
        ),
        "full_correction": _(
            "The shelter has %(free)d bed(s) free: the correction cannot take more.",
            free=max(exc.free or 0, 0),
        ),
        "minor": _(
            "This shelter does not take minors: to place anyway, give a reason for the override."
        ),
        "state": _("This placement cannot change that way now."),
        "future": _("That time is in the future: write when it happened."),
        "before_check_in": _("The check-out is before the check-in."),
        "beds": _("Beds must be a number from 1 to %(max)d.", max=MAX_BEDS),
        "reason": _("A correction needs a reason."),
        "reason_long": _("The reason is too long: at most %(max)d characters.", max=MAX_REASON),
        "shelter": _("Choose an open shelter of the case's province."),
        "exit_reason": _("Choose an exit reason."),
        "date": _("Write the planned end as a date."),
    }
    return str(messages.get(exc.code, _("This change cannot be made.")))


def _form_text(name: str) -> str:
    value = request.form.get(name) or ""
    if has_control(value, "\n\r\t"):
        raise PlacementRefused("control characters", code="control")
    return value


def _placement(session: Session, case: Case, placement_id: int) -> Placement:
    placement = session.get(Placement, placement_id)
    if placement is None or placement.case_id != case.id:
        abort(404)
    return placement


def _when(name: str) -> Any:
    text = (request.form.get(name) or "").strip()
    return parse_instant(text) if text else None


def _run(reference: str, work: Any) -> WerkzeugResponse:
    """Find the case (404 when not the user's to see), do the work, commit or say why not."""
    session = get_session()
    user: User = current_user
    case = _case(session, reference, user)
    try:
        message = work(session, case, user)
    except PlacementRefused as exc:
        session.rollback()
        if exc.code == "control":
            flash(_("The form holds characters that are not text: remove them."), "error")
        else:
            flash(_refusal(exc), "error")
        return _back(case)
    except LocalTimeError:
        session.rollback()
        flash(_("Write the date and time as shown, e.g. 2026-10-25 14:30."), "error")
        return _back(case)
    session.commit()
    flash(message, "success")
    return redirect(url_for("cases.case_page", reference=case.reference, _anchor="placements"))


def _int(name: str, default: int) -> int:
    value = (request.form.get(name) or "").strip()
    number = small_int(value, digits=4) if value else default
    if number is None:
        raise PlacementRefused("not a number", code="beds")
    return number


@bp.post("/cases/<reference>/placements")
@login_required
def request_bed(reference: str) -> WerkzeugResponse:
    def work(session: Session, case: Case, user: User) -> Any:
        shelter_id = request.form.get("shelter", "")
        found_id = small_int(shelter_id)
        shelter = session.get(Shelter, found_id) if found_id is not None else None
        if shelter is None or shelter.province != case.province or not shelter.open:
            raise PlacementRefused("no such shelter", code="shelter")
        request_placement(
            session,
            case,
            shelter,
            beds=_int("beds", 1),
            actor=user,
            now=clock_now(),
            override_reason=_form_text("override_reason"),
        )
        return _("Placement requested at %(name)s.", name=shelter.name)

    return _run(reference, work)


def _action(reference: str, placement_id: int, action: str) -> WerkzeugResponse:
    def work(session: Session, case: Case, user: User) -> Any:  # noqa: PLR0911 -- one per action
        placement = _placement(session, case, placement_id)
        now = clock_now()
        reason = _form_text("override_reason")
        if action == "confirm":
            confirm_placement(session, placement, actor=user, now=now, override_reason=reason)
            return _("Placement confirmed: the beds are taken.")
        if action == "check-in":
            check_in(
                session,
                placement,
                at=_when("at") or now,
                actor=user,
                now=now,
                override_reason=reason,
            )
            return _("Checked in.")
        if action == "check-out":
            try:
                exit_reason = ExitReason(request.form.get("exit_reason", ""))
            except ValueError:
                raise PlacementRefused("exit reason", code="exit_reason") from None
            check_out(
                session,
                placement,
                at=_when("at") or now,
                exit_reason=exit_reason,
                actor=user,
                now=now,
            )
            return _("Checked out: the beds are free again.")
        if action == "planned-end":
            try:
                day = date.fromisoformat(request.form.get("planned_end", ""))
            except ValueError:
                raise PlacementRefused("date", code="date") from None
            set_planned_end(session, placement, day, actor=user, now=now)
            return _("Planned end recorded.")
        if action == "cancel":
            cancel_placement(session, placement, actor=user, now=now)
            return _("Placement cancelled.")
        if action == "no-show":
            record_no_show(session, placement, actor=user, now=now)
            return _("No-show recorded: the beds are free again.")
        return abort(404)

    return _run(reference, work)


for _name in ("confirm", "check-in", "check-out", "planned-end", "cancel", "no-show"):

    def _view(reference: str, placement_id: int, _action_name: str = _name) -> WerkzeugResponse:
        return _action(reference, placement_id, _action_name)

    bp.add_url_rule(
        f"/cases/<reference>/placements/<int:placement_id>/{_name}",
        endpoint=_name.replace("-", "_"),
        view_func=login_required(_view),
        methods=["POST"],
    )


@bp.post("/cases/<reference>/placements/<int:placement_id>/correct")
@login_required
def correct(reference: str, placement_id: int) -> WerkzeugResponse:
    def work(session: Session, case: Case, user: User) -> Any:
        placement = _placement(session, case, placement_id)
        entry_id = request.form.get("entry", "")
        found_id = small_int(entry_id)
        entry = session.get(PlacementEntry, found_id) if found_id is not None else None
        if entry is None or entry.placement_id != placement.id:
            raise PlacementRefused("no such entry", code="state")
        beds = request.form.get("beds") or ""
        correct_entry(
            session,
            entry,
            reason=_form_text("reason"),
            actor=user,
            now=clock_now(),
            at=_when("at"),
            beds=_int("beds", 0) if beds else None,
        )
        return _("Correction recorded.")

    return _run(reference, work)


# --- /shelters -------------------------------------------------------------------------------


def _shelter_form() -> dict[str, Any]:
    return {
        "kinds": list(ShelterKind),
        "groups": list(TargetGroup),
        "provinces": get_settings().provinces,
        "max_address": MAX_ADDRESS,
    }


def _shelter_messages() -> dict[str, str]:
    return {
        "code_empty": _("Enter the shelter's code."),
        "code": _("The code may hold letters, digits, '-', '_' and '.' only."),
        "code_taken": _("A shelter with this code already exists."),
        "name_empty": _("Enter the shelter's name."),
        "name": _("The name is too long or holds characters that cannot be typed."),
        "province": _("Choose a province from the list."),
        "province_served": _("Choose a province from the list."),
        "kind": _("Choose a kind."),
        "target_groups": _("Choose the target groups from the list."),
        "target_groups_empty": _("Choose at least one target group."),
        "capacity": _("The capacity must be a whole number from 0 to 500."),
        "address": _("The address is too long or holds characters that cannot be typed."),
    }


def _read_shelter_form() -> Any:
    form = request.form
    return read_fields(
        code=form.get("code", ""),
        name=form.get("name", ""),
        province=form.get("province", ""),
        kind=form.get("kind", ""),
        target_groups=form.getlist("target_groups"),
        capacity=form.get("capacity", ""),
        address=form.get("address", ""),
        served=get_settings().provinces,
    )


@bp.route("/shelters", methods=["GET", "POST"])
@login_required
def shelters() -> str | WerkzeugResponse:
    session = get_session()
    user: User = current_user
    provinces = visible_provinces(user, get_settings().provinces)
    if request.method == "POST":
        if not can_see_address(user):
            abort(403)
        try:
            fields = _read_shelter_form()
            created = create_shelter(session, fields, now=clock_now(), actor=user)
        except ShelterError as exc:
            session.rollback()
            flash(_shelter_messages().get(exc.code, _("Check the form.")), "error")
        else:
            session.commit()
            flash(_("Shelter %(name)s added.", name=created.name), "success")
            return redirect(url_for("placements.shelters"))
    beds = shelter_beds(session, list_shelters(session, provinces))
    return render_template(
        "intake/shelters.html",
        beds=beds,
        by_province=free_beds_by_province(session, provinces),
        coordinator=can_see_address(user),
        **_shelter_form(),
    )


def _shelter_or_404(session: Session, shelter_id: int) -> Shelter:
    shelter = session.get(Shelter, shelter_id)
    if shelter is None:
        abort(404)
    return shelter


@bp.route("/shelters/<int:shelter_id>", methods=["GET", "POST"])
@roles_required(Role.COORDINATOR)
def shelter(shelter_id: int) -> str | WerkzeugResponse:
    """The coordinators' page of one shelter: its fields and its address (the view audited)."""
    session = get_session()
    user: User = current_user
    found = _shelter_or_404(session, shelter_id)
    if not can_see_address(user):
        abort(403)  # an admin without the coordinator role does not read addresses
    if request.method == "POST":
        try:
            update_shelter(
                session,
                found,
                _read_shelter_form(),
                now=clock_now(),
                actor=user,
                keep_address=True,
            )
        except ShelterError as exc:
            session.rollback()
            flash(_shelter_messages().get(exc.code, _("Check the form.")), "error")
            found = _shelter_or_404(session, shelter_id)
        else:
            session.commit()
            flash(_("%(name)s saved.", name=found.name), "success")
            return redirect(url_for("placements.shelters"))
    address = reveal_address(session, found, user=user, now=clock_now())
    session.commit()
    return render_template(
        "intake/shelter_form.html", shelter=found, address=address, **_shelter_form()
    )


@bp.post("/shelters/<int:shelter_id>/open")
@roles_required(Role.COORDINATOR)
def set_open(shelter_id: int) -> WerkzeugResponse:
    session = get_session()
    user: User = current_user
    if not can_see_address(user):
        abort(403)
    found = _shelter_or_404(session, shelter_id)
    set_shelter_open(session, found, request.form.get("open") == "1", now=clock_now(), actor=user)
    session.commit()
    return redirect(url_for("placements.shelters"))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    register_nav(
        app,
        NavItem(
            "placements.shelters",
            _l("Shelters"),
            (Role.OPERATOR, Role.COORDINATOR, Role.ROTA_MANAGER),
        ),
    )
