"""`/partners`: the coordinators' page of the partner registry (list, add, edit, deactivate).

Thin: the registry's rules are in intake.partners; this page translates their errors.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as WerkzeugResponse
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice

from core.auth import roles_required
from core.clock import now as clock_now
from core.config import get_settings
from core.db import get_session
from core.models import Role, User
from core.nav import NavItem, register_nav
from intake.models import Partner
from intake.partners import (
    MAX_NAME,
    PARTNER_KINDS,
    PartnerError,
    create_partner,
    list_partners,
    read_fields,
    set_partner_active,
    update_partner,
)
from intake.views import code_label

bp = Blueprint("partners", __name__, url_prefix="/partners")


class PartnerForm(FlaskForm):  # type: ignore[misc]
    """Text as typed: intake.partners reads and checks it (the CSV import reads the same)."""

    name = StringField(_l("Name"))
    # The service checks the choices, with the same messages as for the CSV import.
    kind = SelectField(_l("Kind"), validate_choice=False)
    province = SelectField(_l("Default province"), validate_choice=False)
    phones = TextAreaField(_l("Phone numbers"))


def _form(partner: Partner | None = None) -> PartnerForm:
    form = PartnerForm(
        data=None
        if partner is None
        else {
            "name": partner.name,
            "kind": partner.kind.value,
            "province": partner.province or "",
            "phones": "\n".join(phone.phone for phone in partner.phones),
        }
    )
    form.kind.choices = [SelectChoice(kind.value, code_label(kind.value)) for kind in PARTNER_KINDS]
    form.province.choices = [SelectChoice("", _("none (from the text or triage)"))] + [
        SelectChoice(sigla, sigla) for sigla in get_settings().provinces
    ]
    return form


# Services speak English; users read these, by the field concerned.
def _error_messages() -> dict[str, tuple[str, str]]:
    return {
        "name_empty": ("name", _("Enter the organisation's name.")),
        "name": ("name", _("The name is too long or holds characters that cannot be typed.")),
        "name_taken": ("name", _("A partner with this name already exists.")),
        "kind": ("kind", _("Choose a kind.")),
        "province": ("province", _("Choose a province from the list.")),
        "province_served": ("province", _("Choose a province from the list.")),
        "phone_invalid": (
            "phones",
            _("One of the numbers is not a valid phone number (e.g. +39 030 123456)."),
        ),
        "phones_many": ("phones", _("At most 20 numbers per partner.")),
        "phone_taken": ("phones", _("One of the numbers already belongs to another partner.")),
        "phone_operator": (
            "phones",
            _("One of the numbers is an operator's: texts from it are read as replies to alerts."),
        ),
    }


def _show_error(form: PartnerForm, exc: PartnerError) -> None:
    field_name, message = _error_messages().get(
        exc.code, ("", _("This change cannot be made. Check the form."))
    )
    field: Any = getattr(form, field_name, None)
    if field is not None:
        field.errors = [*list(field.errors), message]
    flash(message, "error")


def _save(form: PartnerForm, partner: Partner | None) -> Partner | None:
    """Create or update from the posted form; None (and the errors shown) when refused."""
    session = get_session()
    user: User = current_user
    try:
        fields = read_fields(
            name=form.name.data or "",
            kind=form.kind.data or "",
            province=form.province.data or "",
            phones=form.phones.data or "",
            served=get_settings().provinces,
        )
        if partner is None:
            partner = create_partner(session, fields, now=clock_now(), actor=user)
        else:
            update_partner(session, partner, fields, now=clock_now(), actor=user)
    except PartnerError as exc:
        session.rollback()
        _show_error(form, exc)
        return None
    session.commit()
    return partner


@bp.route("", methods=["GET", "POST"])
@roles_required(Role.COORDINATOR)
def index() -> str | WerkzeugResponse:
    form = _form()
    # CSRFProtect has already refused a POST without its token; the fields are read by _save.
    if form.validate_on_submit():
        created = _save(form, None)
        if created is not None:
            flash(_("Partner %(name)s added.", name=created.name), "success")
            return redirect(url_for("partners.index"))
    return render_template(
        "intake/partners.html",
        partners=list_partners(get_session()),
        form=form,
        max_name=MAX_NAME,
    )


def _partner_or_404(partner_id: int) -> Partner:
    partner = get_session().get(Partner, partner_id)
    if partner is None:
        abort(404)
    return partner


@bp.route("/<int:partner_id>", methods=["GET", "POST"])
@roles_required(Role.COORDINATOR)
def edit(partner_id: int) -> str | WerkzeugResponse:
    partner = _partner_or_404(partner_id)
    form = _form(partner) if request.method == "GET" else _form()
    if form.validate_on_submit():
        if _save(form, partner) is not None:
            flash(_("%(name)s saved.", name=partner.name), "success")
            return redirect(url_for("partners.index"))
        partner = _partner_or_404(partner_id)
    return render_template(
        "intake/partner_form.html", partner=partner, form=form, max_name=MAX_NAME
    )


@bp.post("/<int:partner_id>/active")
@roles_required(Role.COORDINATOR)
def set_active(partner_id: int) -> WerkzeugResponse:
    partner = _partner_or_404(partner_id)
    active = request.form.get("active") == "1"
    user: User = current_user
    session = get_session()
    set_partner_active(session, partner, active, now=clock_now(), actor=user)
    session.commit()
    if active:
        flash(_("%(name)s is active again.", name=partner.name), "success")
    else:
        flash(
            _(
                "%(name)s deactivated: its numbers are now treated as unknown senders.",
                name=partner.name,
            ),
            "success",
        )
    return redirect(url_for("partners.index"))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    register_nav(app, NavItem("partners.index", _l("Partners"), (Role.COORDINATOR,)))
