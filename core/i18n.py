"""Languages: Italian by default, English selectable; the user's preference wins."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, session
from flask_babel import Babel
from flask_login import current_user

LANGUAGES = ("it", "en")
DEFAULT_LOCALE = "it"


def select_locale() -> str:
    """User's saved preference, else the language picked on the login page, else Italian."""
    if current_user and current_user.is_authenticated:
        locale = getattr(current_user, "locale", None)
        if locale in LANGUAGES:
            return str(locale)
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return str(chosen)
    # The browser's Accept-Language is ignored on purpose: the network works in Italian.
    return DEFAULT_LOCALE


def init_app(app: Flask) -> None:
    app.config["BABEL_DEFAULT_LOCALE"] = DEFAULT_LOCALE
    app.config["BABEL_DEFAULT_TIMEZONE"] = "Europe/Rome"
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(Path(__file__).parent / "translations")
    Babel(app, locale_selector=select_locale)
