"""On call: operators, rotas, overrides, gaps, reminders and calendar feeds."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    # Imported here: the feature plugs into an app that core has already built.
    from oncall import cli, deactivation, demo, feeds, jobs, profile, views  # noqa: PLC0415

    app.register_blueprint(views.bp)
    app.register_blueprint(feeds.bp)
    cli.init_app(app)
    jobs.init_app(app)
    views.init_app(app)
    demo.init_app(app)
    profile.init_app(app)
    deactivation.init_app(app)
