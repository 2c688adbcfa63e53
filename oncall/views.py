"""Rota pages: month view per province, rotation editor with preview, overrides, on call now."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("oncall", __name__, url_prefix="/rota")


def init_app(app: Flask) -> None:
    """Registers the navigation entries of the rota pages."""
