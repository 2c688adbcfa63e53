"""iCal feeds of shifts behind secret, revocable tokens."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("oncall_feeds", __name__, url_prefix="/calendar")
