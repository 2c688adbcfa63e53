"""Scheduled rota work: reminders, phone checks, gap warnings."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Registers the rota jobs with the scheduler."""
