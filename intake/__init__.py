"""Intake of hand-offs: Numero Verde webhook, partner phone and SMS, manual entry, cases."""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l


def init_app(app: Flask) -> None:
    """Plugs the intake API, CLI and demo into the app."""
    # Imported here: the feature plugs into an app that core has already built.
    from core.app import csrf  # noqa: PLC0415
    from core.cli import add_demo_seeder  # noqa: PLC0415
    from core.metrics import register_metrics  # noqa: PLC0415
    from core.models import Role  # noqa: PLC0415
    from core.nav import NavItem, register_nav  # noqa: PLC0415
    from intake import (  # noqa: PLC0415
        api,
        callback_routes,
        cli,
        dashboard,
        demo,
        jobs,
        partner_views,
        placement_report,
        placement_views,
        recordings,
        report_views,
        reports,
        views,
        voice,
        webhooks,
    )
    from intake.metrics import intake_metrics  # noqa: PLC0415

    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(webhooks.bp)
    csrf.exempt(webhooks.bp)
    app.register_blueprint(voice.bp)
    csrf.exempt(voice.bp)
    recordings.init_app(app)
    # The API authenticates every request with its HMAC signature; there is no session cookie
    # to protect, so the form CSRF token does not apply.
    csrf.exempt(api.bp)
    partner_views.init_app(app)
    placement_views.init_app(app)
    callback_routes.init_app(app)
    jobs.init_app(app)
    cli.init_app(app)
    reports.init_app(app)
    placement_report.init_app(app)
    report_views.init_app(app)
    dashboard.init_app(app)
    add_demo_seeder(app, demo.seed_intake)
    add_demo_seeder(app, demo.seed_partners)
    add_demo_seeder(app, demo.seed_cases)
    add_demo_seeder(app, demo.seed_shelters)
    register_nav(app, NavItem("cases.case_list", _l("Cases"), (Role.OPERATOR, Role.COORDINATOR)))
    register_metrics(app, intake_metrics)
