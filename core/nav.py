"""Navigation: features register their pages; the menu shows what the user may open."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app
from flask_babel.speaklater import LazyString
from flask_login import current_user

from core.i18n import current_locale
from core.models import Role, User


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: str | LazyString
    roles: tuple[Role, ...] = ()


def register_nav(app: Flask, item: NavItem) -> None:
    app.extensions.setdefault("ali.nav", []).append(item)


def nav_items() -> list[NavItem]:
    if not current_user.is_authenticated:
        return []
    user: User = current_user
    items: list[NavItem] = current_app.extensions.get("ali.nav", [])
    return [i for i in items if not i.roles or user.has_role(Role.ADMIN, *i.roles)]


def init_app(app: Flask) -> None:
    app.context_processor(lambda: {"nav_items": nav_items, "current_locale": current_locale})
