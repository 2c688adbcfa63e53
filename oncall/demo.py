"""Demo rotas for every served province (with one deliberate gap)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Registers the rota demo seeder."""
