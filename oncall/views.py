"""Rota pages: month view per province, rotation editor with preview, overrides, on call now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as WerkzeugResponse

from core import audit
from core.auth import can_edit_rota, can_see_province, login_required, visible_provinces
from core.clock import ROME
from core.clock import now as clock_now
from core.config import get_settings
from core.db import get_session
from core.formatting import format_day, format_when, local_date, local_midnight
from core.i18n import current_locale
from core.models import Role, User, users_with_role
from core.nav import NavItem, register_nav
from core.telephony import get_telephony
from oncall import editing, notifications, rota_page
from oncall.calendar import own_duties
from oncall.chain import all_gaps, on_call_chain, province_schedule
from oncall.forms import TIER_LABELS, EndRotationForm, OverrideForm, RotationForm, tier_choices
from oncall.models import MAX_ID, Override, Rotation
from oncall.rules import MAX_ASSIGNMENT
from oncall.schedule import (
    Conflict,
    Shift,
    Tier,
    conflicts,
    gaps,
    preview_rotation,
    rotation_shifts,
)

bp = Blueprint("oncall", __name__, url_prefix="/rota")

# The project-wide coordinators' rota lives at /rota/coordinators, beside the provinces' pages
# (a sigla is two capital letters, so the word cannot name a province).
COORDINATORS = "coordinators"
PREVIEW_SHIFTS = 10
MY_SHIFTS_DAYS = 30
UPCOMING_GAPS_SHOWN = 5


# ---------------------------------------------------------------------------------------
# Access


def _user() -> User:
    user: User = current_user
    return user


@dataclass(frozen=True)
class Scope:
    """What a rota page edits: a province's primary and backup tiers, or (province None)
    the project-wide coordinator tier."""

    key: str
    province: str | None

    @property
    def is_coordinators(self) -> bool:
        return self.province is None

    @property
    def tiers(self) -> tuple[Tier, ...]:
        return (Tier.COORDINATOR,) if self.province is None else rota_page.PROVINCE_TIERS

    @property
    def title(self) -> str:
        if self.province is None:
            return str(_("Coordinators' rota"))
        return str(_("Rota of %(province)s", province=self.province))


def _scope(sigla: str, *, edit: bool = False) -> Scope:
    """The scope of the URL, or 404 when not served, or 403 when the user has no access.

    Every logged-in user may read the coordinators' rota (names only, as on the provinces'
    pages); coordinators and admins edit it.
    """
    user = _user()
    if sigla == COORDINATORS:
        scope = Scope(key=COORDINATORS, province=None)
    else:
        if sigla not in get_settings().provinces:
            abort(404)
        if not can_see_province(user, sigla):
            abort(403)
        scope = Scope(key=sigla, province=sigla)
    if edit and not can_edit_rota(user, scope.province):
        abort(403)
    return scope


def _visible_provinces(user: User) -> list[str]:
    return visible_provinces(user, get_settings().provinces)


def _today() -> date:
    return local_date(clock_now())


# ---------------------------------------------------------------------------------------
# Template helpers (dates, times, durations and phones are core.formatting's filters)


@bp.context_processor
def _helpers() -> dict[str, Any]:
    # Labels are translated once per page (a busy month has ~200 segments), used in every cell.
    tiers = {tier.value: str(label) for tier, label in TIER_LABELS.items()}
    return {
        "tier_label": lambda tier: tiers.get(str(tier or Tier.COORDINATOR.value), str(tier)),
        "month_param": rota_page.month_param,
        "Tier": Tier,
        "txt": {
            "nobody": _("Nobody on call"),
            "all_coordinators": _("all coordinators"),
            "nobody_rostered": _("Nobody rostered: every active coordinator is alerted"),
            "swap": _("swap"),
            "swap_link": _("Swap"),
            "phone_not_verified": _("phone not verified"),
            "no_phone": _("no phone"),
            "no_phone_warning": _("This operator has no phone number: alerts cannot reach them."),
            "phone_warning": _("This operator has no verified phone: alerts may not reach them."),
            "sms_blocked": _("SMS blocked (STOP)"),
            "sms_blocked_warning": _(
                "This operator texted STOP: alerts reach them by call only until they text START."
            ),
        },
    }


# Services speak English (see oncall.editing); users see these, by the field concerned.
def _rota_error_message(exc: editing.RotaError, scope: Scope) -> str:
    by_field = {
        "operator_ids": _(
            "One of the coordinators cannot be on call: each must be active "
            "and have the coordinator role."
        )
        if scope.is_coordinators
        else _(
            "One of the operators cannot be on call here: each must be active, "
            "have the operator role and cover this province."
        ),
        "period_days": _("A rotation hands over every day or every week."),
        "handover": _("Enter the hand-over time as hours and minutes, e.g. 08:00."),
        "start_date": _("Enter a valid date."),
        "end_date": _("The end must be after the first day."),
        "start": _("Enter when the swap starts."),
        "end": _(
            "The end must be after the start, and a swap lasts at most %(days)s days: "
            "use a rotation for longer arrangements.",
            days=MAX_ASSIGNMENT.days,
        ),
    }
    return str(by_field.get(exc.field or "", _("This change cannot be made. Check the form.")))


def _form_error(form: Any, field_name: str | None, message: str) -> None:
    field = getattr(form, field_name, None) if field_name else None
    if field is not None and hasattr(field, "errors"):
        field.errors = [*list(field.errors), message]
    else:
        flash(message, "error")


# ---------------------------------------------------------------------------------------
# Pages


@bp.get("/")
@login_required
def index() -> str | WerkzeugResponse:
    user = _user()
    provinces = _visible_provinces(user)
    if len(provinces) == 1:
        return redirect(url_for("oncall.month", sigla=provinces[0]))
    now = clock_now()
    start, end = notifications.gap_window(now)
    found_gaps = all_gaps(get_session(), provinces=provinces, start=start, end=end)
    return render_template(
        "oncall/index.html",
        provinces=provinces,
        gaps=found_gaps,
        gap_days=notifications.LOOKAHEAD.days,
        editable={p: can_edit_rota(user, p) for p in provinces},
        coordinators=COORDINATORS,
    )


@bp.get("/<sigla>")
@login_required
def month(sigla: str) -> str:
    scope = _scope(sigla)
    try:
        shown = rota_page.parse_month(request.args.get("month"), _today())
    except rota_page.BadMonth:
        abort(400)
    view = rota_page.build_month(
        get_session(),
        province=scope.province,
        month=shown,
        today=_today(),
        locale=current_locale(),
    )
    # Whatever month is shown, the gaps of the next days are what the manager must fix first:
    # the month in view may end before them.
    upcoming = _gaps_now(scope)
    coordinator_column = scope.is_coordinators or view.has_coordinator_rota
    return render_template(
        "oncall/month.html",
        view=view,
        scope=scope,
        coordinators=COORDINATORS,
        upcoming_gaps=upcoming[:UPCOMING_GAPS_SHOWN],
        more_gaps=len(upcoming) - UPCOMING_GAPS_SHOWN,
        gap_days=notifications.LOOKAHEAD.days,
        editable=can_edit_rota(_user(), scope.province),
        columns=[t for t in scope.tiers if t is not Tier.COORDINATOR]
        + ([Tier.COORDINATOR] if coordinator_column else []),
    )


def _rotation_or_404(scope: Scope, rotation_id: int) -> Rotation:
    rotation = get_session().get(Rotation, rotation_id)
    if (
        rotation is None
        or rotation.province != scope.province
        or Tier(rotation.tier) not in scope.tiers
    ):
        abort(404)
    return rotation


Preview = tuple[list[Shift], list[tuple[datetime, datetime]], list[Conflict]]


def _preview(form: RotationForm, scope: Scope, rotation_id: int | None) -> Preview:
    """The next turns the rotation will produce, the primary gaps the province will have from
    now until the last of them once it is saved (other rules included), and the times one
    person would be primary and backup at once.

    A new rotation and an edited one are previewed over the same stretch (ten turns from
    today or its start): an edit that ends a rotation sooner shows the gap it leaves."""
    rule = editing.draft_rule(
        tier=form.tier.data,
        operator_ids=form.operator_ids(),
        handover=form.handover.data,
        period_days=int(form.period_days.data),
        start_date=form.start_date.data,
        end_date=form.end_date.data,
        rotation_id=rotation_id,
    )
    first_day = max(rule.start, _today())
    start = local_midnight(first_day)
    end = local_midnight(first_day + timedelta(days=rule.period_days * (PREVIEW_SHIFTS + 1)))
    # Begin with the first whole turn (the one in force that day, or the first to come).
    turns = rotation_shifts(rule, start, end)
    if turns:
        start = turns[0].start
    shifts = preview_rotation(rule, start, end)[:PREVIEW_SHIFTS]
    if len(shifts) == PREVIEW_SHIFTS:
        end = shifts[-1].end
    holes: list[tuple[datetime, datetime]] = []
    clashes: list[Conflict] = []
    if rule.tier in (Tier.PRIMARY, Tier.BACKUP) and scope.province is not None:
        # From now: a rotation starting in a fortnight leaves the fortnight uncovered.
        since = min(clock_now(), start)
        resolved = {
            tier: province_schedule(
                get_session(),
                province=scope.province,
                tier=tier,
                start=since,
                end=end,
                with_rotation=rule,
            )
            for tier in (Tier.PRIMARY, Tier.BACKUP)
        }
        if rule.tier is Tier.PRIMARY:
            holes = gaps(resolved[Tier.PRIMARY], since, end)
        clashes = conflicts(resolved[Tier.PRIMARY], resolved[Tier.BACKUP])
    return shifts, holes, clashes


def _rotation_page(
    form: RotationForm,
    scope: Scope,
    rotation: Rotation | None,
    operators: list[User],
    *,
    status: int = 200,
    preview: Preview | None = None,
    past: bool = False,
) -> tuple[str, int]:
    form.add_operator_slots(len(form.operator_ids()) + 1)
    return (
        render_template(
            "oncall/rotation_form.html",
            form=form,
            scope=scope,
            rotation=rotation,
            names={user.id: user for user in operators},
            preview=preview,
            fingerprint=form.fingerprint() if preview else "",
            end_form=EndRotationForm(formdata=None) if rotation else None,
            past=past,
        ),
        status,
    )


def _rotation_editor(scope: Scope, rotation: Rotation | None) -> tuple[str, int] | WerkzeugResponse:
    operators = rota_page.province_operators(get_session(), scope.province)
    eligible = {user.id for user in operators}
    former = (
        []
        if rotation is None
        else [member.user for member in rotation.members if member.user_id not in eligible]
    )
    if request.method == "POST":
        return _submit_rotation(scope, rotation, operators, former)
    if rotation is None:
        data: dict[str, Any] = {
            "tier": scope.tiers[0].value,
            "period_days": "7",
            "handover": time(9, 0),
            "start_date": _today() + timedelta(days=1),
            "operators": [],
        }
    else:
        data = {
            "name": rotation.name,
            "tier": rotation.tier,
            "operators": [str(uid) for uid in rotation.operator_ids],
            "handover": rotation.handover,
            "period_days": str(rotation.period_days),
            "start_date": rotation.start_date,
            "end_date": rotation.end_date,
        }
    form = RotationForm(formdata=None, data=data)
    form.tier.choices = tier_choices(scope.tiers)
    form.set_operator_choices(operators, former)
    return _rotation_page(form, scope, rotation, [*operators, *former])


def _submit_rotation(
    scope: Scope, rotation: Rotation | None, operators: list[User], former: list[User]
) -> tuple[str, int] | WerkzeugResponse:
    """Preview (the default action), one more operator slot, or save a previewed rotation."""
    form = RotationForm()
    form.tier.choices = tier_choices(scope.tiers)
    form.set_operator_choices(operators, former)
    operators = [*operators, *former]
    action = request.form.get("action", "preview")
    if action == "more":
        form.add_operator_slots(len(form.operators) + 1)
        return _rotation_page(form, scope, rotation, operators)
    preview = None
    if form.validate():
        try:
            preview = _preview(form, scope, rotation.id if rotation else None)
        except editing.RotaError as exc:
            _form_error(form, exc.field, _rota_error_message(exc, scope))
    if preview is None:
        return _rotation_page(form, scope, rotation, operators, status=400)
    past = not any(shift.end > clock_now() for shift in preview[0])
    if past and rotation is None:
        # A new rotation wholly in the past would cover nobody: surely a mistyped year.
        _form_error(form, "end_date", _("This rotation would end before today: check the dates."))
        return _rotation_page(form, scope, rotation, operators, status=400)
    if action != "save":
        return _rotation_page(form, scope, rotation, operators, preview=preview, past=past)
    if request.form.get("previewed") != form.fingerprint():
        flash(_("Check the preview of these values, then save."), "error")
        return _rotation_page(form, scope, rotation, operators, preview=preview, status=400)
    return _save_rotation(form, scope, rotation, operators)


def _save_rotation(
    form: RotationForm, scope: Scope, rotation: Rotation | None, operators: list[User]
) -> tuple[str, int] | WerkzeugResponse:
    session = get_session()
    values: dict[str, Any] = {
        "tier": form.tier.data,
        "operator_ids": form.operator_ids(),
        "handover": form.handover.data,
        "period_days": int(form.period_days.data),
        "start_date": form.start_date.data,
        "end_date": form.end_date.data,
        "name": form.name.data or "",
    }
    before = _gaps_now(scope)
    try:
        if rotation is None:
            saved = editing.create_rotation(
                session, actor=_user(), now=clock_now(), province=scope.province, **values
            )
        else:
            saved = editing.update_rotation(
                session, rotation, actor=_user(), now=clock_now(), **values
            )
    except editing.RotaError as exc:
        session.rollback()
        _form_error(form, exc.field, _rota_error_message(exc, scope))
        return _rotation_page(form, scope, rotation, operators, status=400)
    _commit_and_warn(session, scope, before)
    flash(_("Rotation saved."), "success")
    shown = max(saved.start_date, _today())
    return redirect(url_for("oncall.month", sigla=scope.key, month=rota_page.month_param(shown)))


@bp.route("/<sigla>/rotations/new", methods=["GET", "POST"])
@login_required
def new_rotation(sigla: str) -> tuple[str, int] | WerkzeugResponse:
    return _rotation_editor(_scope(sigla, edit=True), None)


@bp.route(f"/<sigla>/rotations/<int(max={MAX_ID}):rotation_id>", methods=["GET", "POST"])
@login_required
def edit_rotation(sigla: str, rotation_id: int) -> tuple[str, int] | WerkzeugResponse:
    scope = _scope(sigla, edit=True)
    return _rotation_editor(scope, _rotation_or_404(scope, rotation_id))


@bp.post(f"/<sigla>/rotations/<int(max={MAX_ID}):rotation_id>/end")
@login_required
def end_rotation(sigla: str, rotation_id: int) -> tuple[str, int] | WerkzeugResponse:
    scope = _scope(sigla, edit=True)
    rotation = _rotation_or_404(scope, rotation_id)
    form = EndRotationForm()
    session = get_session()
    if form.validate():
        before = _gaps_now(scope)
        try:
            editing.update_rotation(
                session, rotation, actor=_user(), now=clock_now(), end_date=form.end_date.data
            )
        except editing.RotaError as exc:
            session.rollback()
            flash(_rota_error_message(exc, scope), "error")
        else:
            _commit_and_warn(session, scope, before)
            ends = format_day(form.end_date.data, "d MMMM yyyy")
            flash(_("The rotation ends on %(day)s.", day=ends), "success")
            return redirect(url_for("oncall.month", sigla=scope.key))
    for errors in form.errors.values():
        for message in errors:
            flash(str(message), "error")
    return redirect(url_for("oncall.edit_rotation", sigla=scope.key, rotation_id=rotation.id))


@bp.post(f"/<sigla>/rotations/<int(max={MAX_ID}):rotation_id>/delete")
@login_required
def delete_rotation(sigla: str, rotation_id: int) -> WerkzeugResponse:
    scope = _scope(sigla, edit=True)
    rotation = _rotation_or_404(scope, rotation_id)
    # CSRFProtect checks the token of every POST before the view runs.
    session = get_session()
    before = _gaps_now(scope)
    editing.delete_rotation(session, rotation, actor=_user(), now=clock_now())
    _commit_and_warn(session, scope, before)
    flash(_("Rotation deleted."), "success")
    return redirect(url_for("oncall.month", sigla=scope.key))


def _gaps_now(scope: Scope) -> list[tuple[datetime, datetime]]:
    """The next 14 days' primary gaps of a province, before a change, to tell the change's
    own gaps apart; the coordinators' rota has none (nobody rostered: all are alerted)."""
    if scope.province is None:
        return []
    return notifications.current_gaps(get_session(), province=scope.province, now=clock_now())


def _commit_and_warn(
    session: Session, scope: Scope, before: list[tuple[datetime, datetime]]
) -> None:
    """Commit a rota change, then warn the other rota managers of any gap it opened."""
    session.commit()
    if scope.province is None:
        return
    notifications.warn_new_gaps(
        session,
        get_telephony(),
        province=scope.province,
        before=before,
        now=clock_now(),
        exclude_user_id=_user().id,
    )


def _gap_on(province: str, day: date) -> tuple[datetime, datetime] | None:
    """The first primary gap of the province that touches the local day, whole (looked for
    a month either side, so one that began or ends days away keeps its real edges; an edge
    beyond that, as with no rota at all, is the day's own)."""
    start, end = local_midnight(day - timedelta(days=31)), local_midnight(day + timedelta(days=32))
    schedule = province_schedule(
        get_session(), province=province, tier=Tier.PRIMARY, start=start, end=end
    )
    day_start, day_end = local_midnight(day), local_midnight(day + timedelta(days=1))
    for hole in gaps(schedule, start, end):
        if hole[0] < day_end and hole[1] > day_start:
            return (
                hole[0] if hole[0] > start else day_start,
                hole[1] if hole[1] < end else day_end,
            )
    return None


def _override_prefill(scope: Scope) -> dict[str, Any]:
    """From and to of a swap on the day of the link: that day's hand-over to the next one."""
    tier_text = request.args.get("tier", "")
    tier = next((t for t in scope.tiers if t.value == tier_text), scope.tiers[0])
    try:
        day = date.fromisoformat(request.args.get("day", ""))
    except ValueError:
        day = _today()
    if not rota_page.in_supported_range(day):
        day = _today()
    if tier is Tier.PRIMARY and scope.province is not None:
        hole = _gap_on(scope.province, day)
        if hole is not None:
            # Opened from a red day: the swap that closes that gap, as it is.
            return {
                "tier": tier.value,
                "start": hole[0].astimezone(ROME).replace(tzinfo=None),
                "end": hole[1].astimezone(ROME).replace(tzinfo=None),
            }
    rotations = rota_page.province_rotations(get_session(), scope.province)
    at = rota_page.handover_for(rotations, tier, day)
    return {
        "tier": tier.value,
        "start": datetime.combine(day, at),
        "end": datetime.combine(day + timedelta(days=1), at),
    }


@bp.route("/<sigla>/overrides/new", methods=["GET", "POST"])
@login_required
def new_override(sigla: str) -> tuple[str, int] | WerkzeugResponse:
    scope = _scope(sigla, edit=True)
    session = get_session()
    operators = rota_page.province_operators(session, scope.province)
    if request.method == "GET":
        form = OverrideForm(formdata=None, data=_override_prefill(scope))
        form.tier.choices = tier_choices(scope.tiers)
        form.set_operator_choices(operators)
        return render_template("oncall/override_form.html", form=form, scope=scope), 200

    form = OverrideForm()
    form.tier.choices = tier_choices(scope.tiers)
    form.set_operator_choices(operators)
    if form.validate():
        start, end = form.instants()
        try:
            editing.add_override(
                session,
                actor=_user(),
                now=clock_now(),
                province=scope.province,
                tier=form.tier.data,
                user_id=int(form.user_id.data),
                start=start,
                end=end,
                reason=form.reason.data or "",
            )
        except editing.RotaError as exc:
            session.rollback()
            _form_error(form, exc.field, _rota_error_message(exc, scope))
        else:
            session.commit()
            swap = _(
                "Swap saved: %(start)s – %(end)s.", start=format_when(start), end=format_when(end)
            )
            flash(swap, "success")
            month = rota_page.month_param(local_date(start))
            return redirect(url_for("oncall.month", sigla=scope.key, month=month))
    return render_template("oncall/override_form.html", form=form, scope=scope), 400


@bp.post(f"/<sigla>/overrides/<int(max={MAX_ID}):override_id>/delete")
@login_required
def delete_override(sigla: str, override_id: int) -> WerkzeugResponse:
    scope = _scope(sigla, edit=True)
    session = get_session()
    override = session.get(Override, override_id)
    if (
        override is None
        or override.province != scope.province
        or Tier(override.tier) not in scope.tiers
    ):
        abort(404)
    month = rota_page.month_param(local_date(override.start_at))
    before = _gaps_now(scope)
    editing.delete_override(session, override, actor=_user(), now=clock_now())
    _commit_and_warn(session, scope, before)
    flash(_("Swap deleted."), "success")
    return redirect(url_for("oncall.month", sigla=scope.key, month=month))


@bp.get("/now")
@login_required
def now() -> str:
    user = _user()
    provinces = _visible_provinces(user)
    session = get_session()
    at = clock_now()
    rows = rota_page.on_call_now(session, provinces=provinces, now=at)
    chain = on_call_chain(session, province=provinces[0], at=at) if provinces else None
    coordinators = chain.coordinators if chain else users_with_role(session, Role.COORDINATOR)
    # The page shows colleagues' phone numbers: the read is audited, by field name.
    audit.record(
        session,
        now=at,
        action="read",
        object_type="on_call_now",
        actor=user,
        fields=["display_name", "phone"],
        detail={"provinces": provinces},
    )
    session.commit()
    return render_template(
        "oncall/now.html",
        rows=rows,
        coordinators=coordinators,
        at=at,
        horizon=at + rota_page.LOOKAHEAD,
        me=user.id,
    )


@bp.get("/mine")
@login_required
def mine() -> str:
    user = _user()
    at = clock_now()
    # Whole shifts: the one under way from its real start, the last one to its real end.
    shifts = own_duties(
        get_session(), user_id=user.id, start=at, end=at + timedelta(days=MY_SHIFTS_DAYS)
    )
    # The profile page (phone verification) belongs to another part of oncall; link it when
    # it is installed.
    profile = "oncall_profile.profile"
    return render_template(
        "oncall/mine.html",
        profile_url=url_for(profile) if profile in current_app.view_functions else None,
        shifts=shifts,
        days=MY_SHIFTS_DAYS,
        at=at,
        phone_ok=user.can_be_paged,
    )


def init_app(app: Flask) -> None:
    """Registers the navigation entries of the rota pages."""
    register_nav(app, NavItem("oncall.index", _l("Rota")))
    register_nav(app, NavItem("oncall.now", _l("On call now")))
    register_nav(app, NavItem("oncall.mine", _l("My shifts")))
