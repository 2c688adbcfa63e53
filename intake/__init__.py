"""Intake of hand-offs: Numero Verde webhook, partner phone and SMS, manual entry, cases."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Plugs the intake API, CLI and demo into the app (filled in by the intake work)."""
