"""WSGI entry point for gunicorn: `gunicorn wsgi:app`. Never starts a scheduler."""

from core.app import create_app

app = create_app()
