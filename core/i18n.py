"""Languages: Italian by default, English selectable; the user's preference wins."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from flask import Flask, session
from flask_babel import Babel, get_locale
from flask_login import current_user
from sqlalchemy.orm import Session

from core import audit
from core.models import User

LANGUAGES = ("it", "en")
DEFAULT_LOCALE = "it"


def select_locale() -> str:
    """The language picked with the footer's switch in this session, else the user's saved
    preference, else Italian.

    The switch changes the pages only: the language of a user's SMS and calls stays the one
    saved in their profile (someone reading the pages in English on a colleague's laptop
    must not start getting alerts they cannot read at night).
    """
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return str(chosen)
    if current_user and current_user.is_authenticated:
        locale = getattr(current_user, "locale", None)
        if locale in LANGUAGES:
            return str(locale)
    # The browser's Accept-Language is ignored on purpose: the network works in Italian.
    return DEFAULT_LOCALE


def set_user_locale(db: Session, *, user: User, locale: str, now: datetime) -> None:
    """Save the language users chose for their pages and messages (audited when it changes)."""
    if locale not in LANGUAGES or locale == user.locale:
        return
    user.locale = locale
    audit.record(
        db,
        now=now,
        action="update",
        object_type="user",
        object_id=user.id,
        actor=user,
        fields=["locale"],
    )


def current_locale() -> str:
    """The language of what is being rendered now (Italian outside any request)."""
    return str(get_locale() or DEFAULT_LOCALE)


def init_app(app: Flask) -> None:
    """Babel with Ali's languages, and the formatters of core.formatting as Jinja filters."""
    # Imported here: core.formatting reads current_locale from this module.
    from core.formatting import JINJA_FILTERS  # noqa: PLC0415

    app.config["BABEL_DEFAULT_LOCALE"] = DEFAULT_LOCALE
    app.config["BABEL_DEFAULT_TIMEZONE"] = "Europe/Rome"
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(Path(__file__).parent / "translations")
    Babel(app, locale_selector=select_locale)
    app.jinja_env.filters.update(JINJA_FILTERS)
