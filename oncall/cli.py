"""`ali operators` and `ali rota` commands."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Registers the command groups."""
