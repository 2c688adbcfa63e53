"""The dashboard's panels: features register them; the home page shows those the user gets.

Core cannot import the features (they import core), so each feature plugs its panels in from
its own `init_app` with `register_panel`: a template and a function building its context.
The free-beds panel is one more registration by the shelters feature."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask, current_app
from sqlalchemy.orm import Session

from core.models import User

# Builds a panel's template context; None means the panel has nothing for this user.
PanelBuilder = Callable[[Session, User, datetime], dict[str, Any] | None]
PANELS = "ali.dashboard_panels"
REFRESH_SECONDS = 30


@dataclass(frozen=True)
class Panel:
    name: str  # a stable id, used in the page's HTML ids
    template: str  # rendered with the builder's context
    build: PanelBuilder
    order: int = 50  # lower first


@dataclass(frozen=True)
class ShownPanel:
    panel: Panel
    context: dict[str, Any]


def register_panel(app: Flask, panel: Panel) -> None:
    panels: list[Panel] = app.extensions.setdefault(PANELS, [])
    panels.append(panel)
    panels.sort(key=lambda p: (p.order, p.name))


def panels_for(session: Session, user: User, now: datetime) -> list[ShownPanel]:
    shown = []
    for panel in current_app.extensions.get(PANELS, []):
        context = panel.build(session, user, now)
        if context is not None:
            shown.append(ShownPanel(panel, context))
    return shown
